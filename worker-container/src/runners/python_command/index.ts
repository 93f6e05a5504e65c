// PYTHON_COMMAND runner: runs a Python script in a virtual environment built from the worker's settings
// (interpreter version + packages), with the job's input on stdin; returns the exit code and the output.
//
// A non-zero exit is a SUCCESS result carrying the exit code, as COMMAND does without treat_nonzero_as_error
// (and as jobworkerp-rs's PYTHON_COMMAND does): the script's exit code is data for the caller to judge.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { CommandArgsSchema } from "../../gen/jobworkerp/runner/command_args_pb.js";
import { PythonCommandArgsSchema, type PythonCommandArgs } from "../../gen/jobworkerp/runner/python_command_args_pb.js";
import { PythonCommandResultSchema } from "../../gen/jobworkerp/runner/python_command_result_pb.js";
import { PythonCommandRunnerSettingsSchema } from "../../gen/jobworkerp/runner/python_command_runner_pb.js";
import { abortError, startProcess } from "../command/process.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { fetchText } from "./fetch_text.js";
import { VenvCache, type VenvSpec } from "./venv.js";

function decode<D extends DescMessage>(schema: D, bytes: Uint8Array, what: string): MessageShape<D> {
  try {
    return fromBinary(schema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid ${what}: ${(e as Error).message}`);
  }
}

/** Resolves with `p`, or rejects as soon as the job is aborted (the shared venv build goes on for other jobs). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function scriptOf(a: PythonCommandArgs, signal: AbortSignal): Promise<string> {
  switch (a.script.case) {
    case "scriptContent":
      return a.script.value;
    case "scriptUrl":
      return fetchText(a.script.value, "script_url", signal);
    default:
      throw new RunnerError("FATAL_ERROR", "script_content or script_url is required");
  }
}

async function inputOf(a: PythonCommandArgs, signal: AbortSignal): Promise<string> {
  switch (a.inputData.case) {
    case "dataBody":
      return a.inputData.value;
    case "dataUrl":
      return fetchText(a.inputData.value, "data_url", signal);
    default:
      return "";
  }
}

class PythonCommandInstance implements RunnerInstance {
  constructor(
    private readonly venvs: VenvCache,
    private readonly spec: VenvSpec,
  ) {}

  async run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    const a = decode(PythonCommandArgsSchema, bytes, "PythonCommandArgs");
    const [script, input, venv] = await Promise.all([
      scriptOf(a, ctx.signal),
      inputOf(a, ctx.signal),
      untilAborted(this.venvs.get(this.spec), ctx.signal),
    ]);
    // The script goes to a file (not `-c`): no argument-size limit, and tracebacks name a real file.
    const workDir = await mkdtemp(join(tmpdir(), "jobworkerp-python-job-"));
    try {
      const scriptPath = join(workDir, "script.py");
      await writeFile(scriptPath, script);
      const output: Buffer[] = [];
      const proc = await startProcess(
        create(CommandArgsSchema, { command: venv.python, args: ["-u", scriptPath], stdin: input }),
        ctx.signal,
        // with_stderr: both streams into one output, in the order they arrive (like 2>&1).
        { onStdout: (b) => output.push(b), onStderr: (b) => a.withStderr && output.push(b) },
        // Children inherit the worker's environment (as COMMAND's do), plus the job's variables.
        { env: { ...process.env, VIRTUAL_ENV: venv.dir, ...a.envVars } },
      );
      const { exitCode } = await proc.done;
      return toBinary(PythonCommandResultSchema, create(PythonCommandResultSchema, { exitCode, output: Buffer.concat(output).toString("utf8") }));
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }
}

export interface PythonCommandRunnerOptions {
  /** Where venvs are kept (config PYTHON_VENV_DIR). */
  venvDir: string;
}

export function pythonCommandRunner(opts: PythonCommandRunnerOptions): RunnerDefinition & { venvs: VenvCache } {
  const venvs = new VenvCache(opts.venvDir);
  return {
    venvs,
    id: 6n,
    name: "PYTHON_COMMAND",
    description:
      "Runs a Python script (inline or from a URL) with input on stdin in a virtual environment built once per python_version + packages; returns exit code and output.",
    runnerType: RunnerType.PYTHON_COMMAND,
    settingsProto: protoText("jobworkerp/runner/python_command_runner.proto"),
    settingsSchema: PythonCommandRunnerSettingsSchema,
    methods: {
      run: {
        argsProto: protoText("jobworkerp/runner/python_command_args.proto"),
        resultProto: protoText("jobworkerp/runner/python_command_result.proto"),
        argsSchema: PythonCommandArgsSchema,
        resultSchema: PythonCommandResultSchema,
        description: "Run the script once; a non-zero exit code is returned in the result, not as a failure.",
        outputType: StreamingOutputType.NON_STREAMING,
      },
    },
    // Cheap: the venv is built (or found) by the first job that needs it, under that job's timeout.
    async create(settings: Uint8Array) {
      const s = decode(PythonCommandRunnerSettingsSchema, settings, "PythonCommandRunnerSettings");
      const spec: VenvSpec = {
        pythonVersion: s.pythonVersion.trim(),
        uvPath: s.uvPath || undefined,
        packages: s.requirementsSpec.case === "packages" ? s.requirementsSpec.value.list : [],
        requirementsUrl: s.requirementsSpec.case === "requirementsUrl" ? s.requirementsSpec.value : undefined,
      };
      return new PythonCommandInstance(venvs, spec);
    },
  };
}
