// COMMAND runner: runs a program (no shell) and returns its exit code and output.
import { StringDecoder } from "node:string_decoder";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { RunnerType } from "../../gen/jobworkerp/data/common_pb.js";
import { StreamingOutputType } from "../../gen/jobworkerp/data/runner_pb.js";
import { CommandArgsSchema, type CommandArgs } from "../../gen/jobworkerp/runner/command_args_pb.js";
import { CommandResultSchema } from "../../gen/jobworkerp/runner/command_result_pb.js";
import { protoText } from "../proto_text.js";
import { RunnerError, type RunContext, type RunnerDefinition, type RunnerInstance } from "../runner.js";
import { startProcess, type ProcessOutcome } from "./process.js";

const STDERR_EXCERPT_CHARS = 1000;
// Streaming flow control: pause the child's pipes while this many chunks wait for the consumer.
const QUEUE_HIGH = 256;
const QUEUE_LOW = 64;

type ResultInit = MessageInitShape<typeof CommandResultSchema>;

function decodeArgs(bytes: Uint8Array): CommandArgs {
  try {
    return fromBinary(CommandArgsSchema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid CommandArgs: ${(e as Error).message}`);
  }
}

const encode = (r: ResultInit) => toBinary(CommandResultSchema, create(CommandResultSchema, r));

/** Throws when the exit code counts as a failure under the args' rules. */
function checkExit(a: CommandArgs, exitCode: number, stderr: string): void {
  if (exitCode === 0 || !a.treatNonzeroAsError || a.successExitCodes.includes(exitCode)) return;
  const excerpt = stderr.trim().slice(-STDERR_EXCERPT_CHARS);
  throw new RunnerError(
    "ERROR_AND_RETRY",
    `${a.command} exited with code ${exitCode}${excerpt ? `: ${excerpt}` : ""}`,
  );
}

const summary = (o: ProcessOutcome): ResultInit => ({
  exitCode: o.exitCode,
  executionTimeMs: BigInt(o.executionTimeMs),
  startedAt: BigInt(o.startedAt),
  maxMemoryUsageKb: o.maxMemoryKb === undefined ? undefined : BigInt(o.maxMemoryKb),
});

async function run(bytes: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
  const a = decodeArgs(bytes);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const proc = await startProcess(a, ctx.signal, { onStdout: (b) => out.push(b), onStderr: (b) => err.push(b) });
  const o = await proc.done;
  const stdout = Buffer.concat(out).toString("utf8");
  const stderr = Buffer.concat(err).toString("utf8");
  checkExit(a, o.exitCode, stderr);
  return encode({ ...summary(o), stdout, stderr });
}

/** Yields {stdout} / {stderr} chunks as the process writes them, then a final chunk with the exit code. */
async function* runStream(bytes: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
  const a = decodeArgs(bytes);
  const queue: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  let paused = false;
  let stderrTail = "";
  // StringDecoder keeps multi-byte UTF-8 characters split across reads intact.
  const outDec = new StringDecoder("utf8");
  const errDec = new StringDecoder("utf8");
  const pushOut = (s: string) => s && queue.push(encode({ stdout: s }));
  const pushErr = (s: string) => {
    if (!s) return;
    stderrTail = (stderrTail + s).slice(-STDERR_EXCERPT_CHARS);
    queue.push(encode({ stderr: s }));
  };
  const afterPush = () => {
    if (!paused && queue.length >= QUEUE_HIGH) {
      paused = true;
      proc.pause();
    }
    notify();
  };
  const proc = await startProcess(a, ctx.signal, {
    onStdout: (b) => (pushOut(outDec.write(b)), afterPush()),
    onStderr: (b) => (pushErr(errDec.write(b)), afterPush()),
  });

  let outcome: ProcessOutcome | undefined;
  let failure: unknown;
  proc.done.then(
    (o) => ((outcome = o), notify()),
    (e) => ((failure = e), notify()),
  );
  try {
    for (;;) {
      if (failure !== undefined) throw failure; // abort/spawn failure: stop without draining
      const chunk = queue.shift();
      if (chunk) {
        if (paused && queue.length <= QUEUE_LOW) {
          paused = false;
          proc.resume();
        }
        yield chunk;
        continue;
      }
      if (outcome) break;
      await new Promise<void>((r) => (wake = r));
    }
    pushOut(outDec.end());
    pushErr(errDec.end());
    yield* queue.splice(0);
    checkExit(a, outcome.exitCode, stderrTail);
    yield encode(summary(outcome));
  } finally {
    proc.kill(); // consumer stopped early: don't leave the process running
  }
}

/** A stream as one result: the stdout/stderr pieces joined, the rest (exit code, timings) from the final chunk. */
export function collectCommandStream(chunks: Uint8Array[]): Uint8Array {
  const parts = chunks.map((c) => fromBinary(CommandResultSchema, c));
  const last = parts.at(-1);
  const join = (k: "stdout" | "stderr") => parts.map((p) => p[k] ?? "").join("");
  return encode({ ...last, stdout: join("stdout"), stderr: join("stderr") });
}

const instance: RunnerInstance = { run, runStream };

export const commandRunner: RunnerDefinition = {
  id: 1n,
  name: "COMMAND",
  description: "Runs a command (no shell) with arguments, optional stdin and working directory; returns exit code, stdout and stderr.",
  runnerType: RunnerType.COMMAND,
  settingsProto: "",
  methods: {
    run: {
      argsProto: protoText("jobworkerp/runner/command_args.proto"),
      resultProto: protoText("jobworkerp/runner/command_result.proto"),
      argsSchema: CommandArgsSchema,
      resultSchema: CommandResultSchema,
      description: "Run the command once; streaming emits stdout/stderr chunks then a final chunk with the exit code.",
      outputType: StreamingOutputType.BOTH,
      collectStream: collectCommandStream,
    },
  },
  // No settings and no per-instance state: one shared instance.
  async create() {
    return instance;
  },
};
