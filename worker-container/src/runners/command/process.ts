// Child-process lifecycle shared by COMMAND's run and runStream: spawn in its own process group,
// feed stdin, sample memory, and kill the whole group on abort or when the leader exits.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { constants } from "node:os";
import type { CommandArgs } from "../../gen/jobworkerp/runner/command_args_pb.js";
import { RunnerError } from "../runner.js";

export interface ProcessOutcome {
  /** Exit code, or 128 + signal number when killed by a signal. */
  exitCode: number;
  /** Unix ms. */
  startedAt: number;
  executionTimeMs: number;
  maxMemoryKb?: number;
}

export interface ProcessIo {
  onStdout(chunk: Buffer): void;
  onStderr(chunk: Buffer): void;
}

export interface RunningProcess {
  /** Settles after the process exited and its stdout/stderr closed; rejects on spawn failure or abort. */
  done: Promise<ProcessOutcome>;
  /** Flow control for stdout/stderr (the child blocks on a full pipe). */
  pause(): void;
  resume(): void;
  /** Kill the process group (no-op once it is gone). */
  kill(): void;
  pid?: number;
}

const MEMORY_SAMPLE_MS = 50;
// After SIGKILL the 'close' event normally follows within milliseconds; don't hang if it doesn't.
const CLOSE_GRACE_MS = 2000;

/** The error a runner throws when ctx.signal aborted. */
export function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new RunnerError("ERROR_AND_RETRY", "cancelled");
}

export interface ProcessOptions {
  /** Environment of the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

export async function startProcess(a: CommandArgs, signal: AbortSignal, io: ProcessIo, opts: ProcessOptions = {}): Promise<RunningProcess> {
  if (!a.command) throw new RunnerError("FATAL_ERROR", "command is empty");
  if (signal.aborted) throw abortError(signal);
  if (a.workingDir) {
    const st = await stat(a.workingDir).catch(() => undefined);
    if (!st?.isDirectory()) throw new RunnerError("FATAL_ERROR", `working_dir does not exist or is not a directory: ${a.workingDir}`);
    if (signal.aborted) throw abortError(signal);
  }

  let child: ChildProcess;
  try {
    // detached: the child leads its own process group so grandchildren can be killed with it.
    child = spawn(a.command, a.args, { cwd: a.workingDir || undefined, env: opts.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  } catch (e) {
    // Synchronous failures are argument problems (e.g. NUL bytes).
    throw new RunnerError("FATAL_ERROR", `cannot spawn ${a.command}: ${(e as Error).message}`);
  }
  const pid = child.pid;
  const startedAt = Date.now();
  const t0 = performance.now();
  let exited = false;
  let closed = false;

  const killGroup = () => {
    // After 'close' the pid (= pgid) may be reused by an unrelated process group.
    if (pid === undefined || closed) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // ESRCH: the group is already gone.
    }
  };

  let maxMemoryKb: number | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const sample = () => {
    if (pid === undefined || exited) return;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const m = /^VmHWM:\s+(\d+)/m.exec(status) ?? /^VmRSS:\s+(\d+)/m.exec(status);
      if (m) maxMemoryKb = Math.max(maxMemoryKb ?? 0, Number(m[1]));
    } catch {
      // Process already gone or /proc unavailable: best effort.
    }
  };
  if (a.withMemoryMonitoring && pid !== undefined) {
    sample(); // spawn() returns after exec, so this already sees the command's own memory
    sampler = setInterval(sample, MEMORY_SAMPLE_MS);
  }

  child.stdout!.on("data", io.onStdout);
  child.stderr!.on("data", io.onStderr);
  child.stdin!.on("error", () => {}); // EPIPE when the command doesn't read stdin
  child.stdin!.end(a.stdin);

  const done = new Promise<ProcessOutcome>((resolve, reject) => {
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearInterval(sampler);
      signal.removeEventListener("abort", onAbort);
      f();
    };
    const onAbort = () => {
      killGroup(); // 'close' then rejects (below)
      // Don't let a paused (backpressured) pipe delay 'close'.
      child.stdout!.destroy();
      child.stderr!.destroy();
      setTimeout(() => finish(() => reject(abortError(signal))), CLOSE_GRACE_MS).unref();
    };
    signal.addEventListener("abort", onAbort, { once: true });

    child.once("error", (e: NodeJS.ErrnoException) => {
      killGroup();
      const fatal = e.code === "ENOENT" || e.code === "EACCES" || e.code === "ENOTDIR" || e.code === "EISDIR";
      const msg = e.code === "ENOENT" ? `command not found: ${a.command}` : `cannot spawn ${a.command}: ${e.message}`;
      finish(() => reject(new RunnerError(fatal ? "FATAL_ERROR" : "ERROR_AND_RETRY", msg)));
    });
    child.once("exit", () => {
      exited = true;
      clearInterval(sampler);
      // Background grandchildren would keep the pipes open (and outlive the job): kill the rest of the group.
      killGroup();
    });
    child.once("close", (code: number | null, sig: NodeJS.Signals | null) => {
      closed = true;
      if (signal.aborted) return finish(() => reject(abortError(signal)));
      const exitCode = code ?? 128 + (sig ? (constants.signals[sig] ?? 0) : 0);
      finish(() => resolve({ exitCode, startedAt, executionTimeMs: Math.round(performance.now() - t0), maxMemoryKb }));
    });
  });
  done.catch(() => {}); // callers may attach late; avoid an unhandled-rejection warning

  return {
    done,
    pause: () => {
      child.stdout!.pause();
      child.stderr!.pause();
    },
    resume: () => {
      child.stdout!.resume();
      child.stderr!.resume();
    },
    kill: killGroup,
    pid,
  };
}
