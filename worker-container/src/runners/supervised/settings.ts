// SUPERVISED_PROCESS settings: decoding, checks (WorkerService.Create answers INVALID_ARGUMENT with them), and
// what to spawn (for Python: the venv's interpreter, built by PYTHON_COMMAND's VenvCache).
import { createHash } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import {
  SupervisedRunnerSettingsSchema,
  SupervisedRunnerSettings_Mode as Mode,
  type SupervisedRunnerSettings,
  type SupervisedRunnerSettings_Python as PythonSettings,
} from "../../gen/jobworkerp/runner/supervised_runner_pb.js";
import type { VenvCache, VenvSpec } from "../python_command/venv.js";
import { RunnerError } from "../runner.js";

export { Mode };

/** python/ at the repository root: jobworkerp_worker.py, put on the PYTHONPATH of Python children. */
export const PYTHON_HELPER_DIR = fileURLToPath(new URL("../../../../python/", import.meta.url));

export const DEFAULT_READY_TIMEOUT_MS = 120_000;
export const DEFAULT_BACKOFF_INITIAL_MS = 100;
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** How a child is supervised (LONG_RUNNING). */
export interface Supervision {
  readyLine?: string;
  readyTimeoutMs: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/** What to spawn. */
export interface Launch {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
}

export function decodeSettings(bytes: Uint8Array): SupervisedRunnerSettings {
  try {
    return fromBinary(SupervisedRunnerSettingsSchema, bytes);
  } catch (e) {
    throw new RunnerError("FATAL_ERROR", `invalid SupervisedRunnerSettings: ${(e as Error).message}`);
  }
}

/** What is wrong with decoded settings, or undefined. */
export function settingsProblem(s: SupervisedRunnerSettings): string | undefined {
  if (s.mode !== Mode.LONG_RUNNING && s.mode !== Mode.ONE_SHOT) return `unknown mode ${s.mode}`;
  switch (s.program.case) {
    case "command":
      if (s.program.value.trim() === "") return "command is empty";
      break;
    case "python": {
      const p = s.program.value;
      if (p.script.case === undefined || p.script.value.trim() === "") return "python needs script_path or script_content";
      if (p.pythonVersion && !/^\d+(\.\d+){0,2}$/.test(p.pythonVersion.trim())) return `python_version must look like "3.11", got ${JSON.stringify(p.pythonVersion)}`;
      break;
    }
    default:
      return "command or python is required";
  }
  if (s.readyTimeoutMs === 0) return "ready_timeout_ms must be > 0 (leave it unset for the default)";
  const { backoffInitialMs, backoffMaxMs } = supervision(s);
  if (backoffInitialMs > backoffMaxMs) return `restart_backoff_initial_ms (${backoffInitialMs}) exceeds restart_backoff_max_ms (${backoffMaxMs})`;
  return undefined;
}

export function supervision(s: SupervisedRunnerSettings): Supervision {
  return {
    readyLine: s.readyLine,
    readyTimeoutMs: s.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
    // at least 10 ms: a child that dies at once must not make a busy loop
    backoffInitialMs: Math.max(10, s.restartBackoffInitialMs ?? DEFAULT_BACKOFF_INITIAL_MS),
    backoffMaxMs: Math.max(10, s.restartBackoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS),
  };
}

/** Resolves the program: for Python, builds (or finds) the venv and the script file. May take minutes the first time. */
export async function resolveLaunch(s: SupervisedRunnerSettings, venvs: VenvCache): Promise<Launch> {
  // Children inherit the worker's environment (as COMMAND's and PYTHON_COMMAND's do), plus the settings' env.
  const env: NodeJS.ProcessEnv = { ...process.env, ...s.env };
  const cwd = s.workingDir || undefined;
  if (cwd) {
    const st = await stat(cwd).catch(() => undefined);
    if (!st?.isDirectory()) throw new RunnerError("FATAL_ERROR", `working_dir does not exist or is not a directory: ${cwd}`);
  }
  if (s.program.case === "command") return { command: s.program.value, args: s.args, env, cwd };
  if (s.program.case !== "python") throw new RunnerError("FATAL_ERROR", "command or python is required");
  const p = s.program.value;
  const spec: VenvSpec = {
    pythonVersion: p.pythonVersion.trim(),
    uvPath: p.uvPath || undefined,
    packages: p.requirementsSpec.case === "packages" ? p.requirementsSpec.value.list : [],
    requirementsUrl: p.requirementsSpec.case === "requirementsUrl" ? p.requirementsSpec.value : undefined,
  };
  const [venv, script] = await Promise.all([venvs.get(spec), scriptFile(p.script)]);
  env.VIRTUAL_ENV = venv.dir;
  env.PYTHONPATH = [PYTHON_HELPER_DIR, env.PYTHONPATH].filter(Boolean).join(":");
  return { command: venv.python, args: ["-u", script, ...s.args], env, cwd };
}

/**
 * A script path to run. Inline sources are written once to a file named by their hash (tracebacks then name a
 * real file, and every child and process with the same source shares it).
 */
async function scriptFile(script: PythonSettings["script"]): Promise<string> {
  if (script.case === "scriptPath") {
    const st = await stat(script.value).catch(() => undefined);
    if (!st?.isFile()) throw new RunnerError("FATAL_ERROR", `script_path is not a file: ${script.value}`);
    return script.value;
  }
  if (script.case !== "scriptContent") throw new RunnerError("FATAL_ERROR", "python needs script_path or script_content");
  const dir = join(tmpdir(), "jobworkerp-supervised-scripts");
  const path = join(dir, `${createHash("sha256").update(script.value).digest("hex").slice(0, 24)}.py`);
  if (await stat(path).then(() => true, () => false)) return path;
  await mkdir(dir, { recursive: true });
  const part = `${path}.${process.pid}.${Date.now()}.part`;
  await writeFile(part, script.value);
  await rename(part, path); // atomic: a concurrent reader never sees half a script
  return path;
}
