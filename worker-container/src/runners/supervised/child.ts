// One supervised slot: a long-running child process that answers one job at a time over the JSON-lines
// protocol (protocol.ts), started again with exponential backoff whenever it dies.
//
// Life of a slot: STOPPED → STARTING (spawned, waiting for the ready line) → READY ⇄ BUSY; when the child dies
// (exit, signal, a hung job killed on timeout/cancel, no ready line in time) → RESTARTING (backoff delay) →
// STARTING... A job in flight when the child dies fails: retryable, unless the child said `retry: false` for it.
// A job waiting for the child to (re)start fails only if that start fails. A program that cannot be spawned at
// all (not found, bad Python settings) leaves the slot STOPPED: nothing loops, the next job tries again.
//
// Each child leads its own process group (detached), so killing it also kills anything it started.
import { spawn, type ChildProcess } from "node:child_process";
import { constants } from "node:os";
import { abortError } from "../command/process.js";
import { RunnerError } from "../runner.js";
import { LineSplitter, Tail } from "./lines.js";
import { isReadyLine, parseChildLine } from "./protocol.js";
import type { Launch, Supervision } from "./settings.js";

export type SlotState = "STARTING" | "READY" | "BUSY" | "RESTARTING" | "STOPPED";

/** A child that stayed up this long resets the backoff to its initial delay. */
export const HEALTHY_MS = 10_000;
/** How long a stopping child may take to exit after its stdin closes, before it is killed. */
const STOP_GRACE_MS = 3_000;
/** After the child exits, how long to wait for its pipes to close (a grandchild outside the group may hold them). */
const CLOSE_GRACE_MS = 2_000;
const MAX_LINE_BYTES = 32 * 1024 * 1024;
const NOISE_EXCERPT = 500;

export interface Answer {
  /** The child's result, as JSON text. */
  json: string;
  pid: number;
}

export interface ChildEvents {
  /** A lifecycle change (started, ready, died, stopped): worth an early heartbeat. */
  notable(): void;
  log(level: "info" | "warn", fields: Record<string, unknown>, msg: string): void;
}

export interface SlotStatus {
  slot: number;
  pid?: number;
  state: SlotState;
  restarts: number;
  lastExitReason?: string;
  lastStartedAt?: number;
  jobsDone: number;
}

interface Proc {
  child: ChildProcess;
  pid: number;
  stderr: Tail;
  readyTimer?: NodeJS.Timeout;
  readyAt?: number;
  /** Why we killed it (reported instead of "signal SIGKILL"). */
  killReason?: string;
  finished: boolean;
  gone: Promise<void>;
  markGone(): void;
}

interface InFlight {
  jobId: string;
  /** false once the child declared the job must not be retried. */
  retry: boolean;
  resolve(a: Answer): void;
  reject(e: Error): void;
}

interface Waiter {
  resolve(): void;
  reject(e: Error): void;
}

const released = () => new RunnerError("ERROR_AND_RETRY", "the worker's child processes were released (worker changed or shutting down)");

export class SupervisedChild {
  state: SlotState = "STOPPED";
  private starts = 0;
  private lastExitReason?: string;
  private lastStartedAt?: number;
  private jobsDone = 0;
  private proc?: Proc;
  /** Consecutive deaths, for the backoff. */
  private failures = 0;
  private restartTimer?: NodeJS.Timeout;
  private waiters = new Set<Waiter>();
  private inFlight?: InFlight;
  /** A job holds the slot (waiting for the child or running): one at a time, or answers could not be matched. */
  private taken = false;
  private stopped = false;

  constructor(
    readonly slot: number,
    private readonly launch: () => Promise<Launch>,
    private readonly sup: Supervision,
    private readonly events: ChildEvents,
  ) {}

  status(): SlotStatus {
    return {
      slot: this.slot,
      pid: this.proc?.pid,
      state: this.state,
      restarts: Math.max(0, this.starts - 1),
      lastExitReason: this.lastExitReason,
      lastStartedAt: this.lastStartedAt,
      jobsDone: this.jobsDone,
    };
  }

  /** Starts the child unless one runs, starts, or restarts soon. */
  ensureStarted(): void {
    if (!this.stopped && this.state === "STOPPED") void this.start();
  }

  /** Runs one job (`line` is its protocol line) once the child is ready. The caller runs one job at a time. */
  async run(jobId: string, line: string, signal: AbortSignal): Promise<Answer> {
    if (signal.aborted) throw abortError(signal);
    if (this.taken) throw new RunnerError("OTHER_ERROR", `slot ${this.slot} is already running a job`);
    this.taken = true;
    try {
      return await this.runTaken(jobId, line, signal);
    } finally {
      this.taken = false;
    }
  }

  private async runTaken(jobId: string, line: string, signal: AbortSignal): Promise<Answer> {
    await this.whenReady(signal);
    const p = this.proc!;
    this.state = "BUSY";
    return new Promise<Answer>((resolve, reject) => {
      const done = () => signal.removeEventListener("abort", onAbort);
      const onAbort = () => {
        this.inFlight = undefined;
        done();
        reject(abortError(signal));
        // The child is busy with (or stuck in) a job nobody waits for any more: only killing it frees the slot.
        const why = signal.reason instanceof Error ? signal.reason.message : "aborted";
        this.kill(p, `killed: job ${jobId}: ${why}`);
      };
      this.inFlight = {
        jobId,
        retry: true,
        resolve: (a) => (done(), resolve(a)),
        reject: (e) => (done(), reject(e)),
      };
      signal.addEventListener("abort", onAbort, { once: true });
      p.child.stdin!.write(line);
    });
  }

  /** Stops for good: the child gets EOF on stdin, then is killed after a grace period. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.restartTimer);
    this.rejectWaiters(released());
    const p = this.proc;
    if (!p) {
      this.setState("STOPPED");
      return;
    }
    p.killReason ??= "stopped";
    p.child.stdin!.end();
    const grace = new Promise<void>((r) => setTimeout(r, STOP_GRACE_MS).unref());
    await Promise.race([p.gone, grace]);
    this.kill(p, "stopped");
    await p.gone;
  }

  private whenReady(signal: AbortSignal): Promise<void> {
    if (this.state === "READY" && this.proc?.readyAt !== undefined) return Promise.resolve();
    if (this.stopped) return Promise.reject(released());
    this.ensureStarted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => w.reject(abortError(signal));
      const w: Waiter = {
        resolve: () => (this.waiters.delete(w), signal.removeEventListener("abort", onAbort), resolve()),
        reject: (e) => (this.waiters.delete(w), signal.removeEventListener("abort", onAbort), reject(e)),
      };
      this.waiters.add(w);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private rejectWaiters(e: Error): void {
    for (const w of [...this.waiters]) w.reject(e);
  }

  private setState(s: SlotState): void {
    if (this.state === s) return;
    this.state = s;
    this.events.notable();
  }

  private async start(): Promise<void> {
    this.setState("STARTING");
    let launch: Launch;
    try {
      launch = await this.launch();
    } catch (e) {
      const err = e instanceof RunnerError ? e : new RunnerError("ERROR_AND_RETRY", `cannot prepare the child: ${(e as Error).message}`);
      this.lastExitReason = `not started: ${err.message}`;
      this.rejectWaiters(err);
      this.setState("STOPPED"); // the next job tries again (a venv build, a fetch may succeed then)
      return;
    }
    if (this.stopped) return this.setState("STOPPED");

    let child: ChildProcess;
    try {
      child = spawn(launch.command, launch.args, { cwd: launch.cwd, env: launch.env, detached: true, stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      return this.cannotSpawn(launch.command, e as NodeJS.ErrnoException);
    }
    if (child.pid === undefined) {
      child.once("error", (e: NodeJS.ErrnoException) => this.cannotSpawn(launch.command, e));
      return;
    }
    this.starts++;
    this.lastStartedAt = Date.now();
    let markGone!: () => void;
    const gone = new Promise<void>((r) => (markGone = r));
    const p: Proc = { child, pid: child.pid, stderr: new Tail(), finished: false, gone, markGone };
    this.proc = p;
    const fields = { slot: this.slot, pid: p.pid };
    this.events.log("info", fields, "supervised child started");

    const out = new LineSplitter((l) => this.onStdout(p, l), MAX_LINE_BYTES, () => this.kill(p, `wrote a stdout line over ${MAX_LINE_BYTES} bytes`));
    const err = new LineSplitter(
      (l) => {
        p.stderr.add(`${l}\n`);
        this.events.log("info", { ...fields, stderr: l }, "supervised child stderr");
      },
      MAX_LINE_BYTES,
      () => undefined, // an endless stderr line is dropped, not fatal
    );
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    child.stdin!.on("error", () => {}); // EPIPE when the child died; its exit is handled below
    child.once("error", (e) => this.kill(p, `process error: ${e.message}`));
    let closeTimer: NodeJS.Timeout | undefined;
    child.once("exit", (code, sig) => {
      this.killGroup(p); // leftovers of its group would keep the pipes open (and outlive it)
      closeTimer = setTimeout(() => this.gone(p, exitText(code, sig)), CLOSE_GRACE_MS);
      closeTimer.unref();
    });
    child.once("close", (code: number | null, sig: NodeJS.Signals | null) => {
      clearTimeout(closeTimer);
      out.end();
      err.end();
      this.gone(p, exitText(code, sig));
    });
    p.readyTimer = setTimeout(() => this.kill(p, `no ready line within ${this.sup.readyTimeoutMs} ms`), this.sup.readyTimeoutMs);
    p.readyTimer.unref();
  }

  private cannotSpawn(command: string, e: NodeJS.ErrnoException): void {
    const fatal = e.code === "ENOENT" || e.code === "EACCES" || e.code === "ENOTDIR" || e.code === "EISDIR" || e.code === undefined;
    const msg = e.code === "ENOENT" ? `command not found: ${command}` : `cannot spawn ${command}: ${e.message}`;
    this.lastExitReason = `not started: ${msg}`;
    this.rejectWaiters(new RunnerError(fatal ? "FATAL_ERROR" : "ERROR_AND_RETRY", msg));
    this.setState("STOPPED");
  }

  private onStdout(p: Proc, line: string): void {
    if (p.finished) return;
    if (p.readyAt === undefined) {
      if (isReadyLine(line, this.sup.readyLine)) return this.ready(p);
      return this.noise(p, line);
    }
    const m = parseChildLine(line);
    if (m.kind === "other") return this.noise(p, line);
    const f = this.inFlight;
    if (!f || f.jobId !== m.jobId) {
      this.events.log("warn", { slot: this.slot, pid: p.pid, jobId: m.jobId }, "supervised child answered a job it is not running; ignored");
      return;
    }
    if (m.kind === "no_retry") {
      f.retry = false;
      return;
    }
    this.inFlight = undefined;
    this.jobsDone++;
    this.state = "READY"; // not notable: heartbeats pick up READY/BUSY as they come
    if (m.kind === "result") f.resolve({ json: m.json, pid: p.pid });
    else f.reject(new RunnerError(m.retry ? "ERROR_AND_RETRY" : "FATAL_ERROR", m.message));
  }

  private ready(p: Proc): void {
    clearTimeout(p.readyTimer);
    p.readyAt = Date.now();
    this.events.log("info", { slot: this.slot, pid: p.pid, startMs: p.readyAt - (this.lastStartedAt ?? p.readyAt) }, "supervised child ready");
    this.setState("READY");
    for (const w of [...this.waiters]) w.resolve();
  }

  private noise(p: Proc, line: string): void {
    if (line.trim() === "") return;
    this.events.log("warn", { slot: this.slot, pid: p.pid, line: line.slice(0, NOISE_EXCERPT) }, "supervised child wrote a non-protocol stdout line; ignored");
  }

  private killGroup(p: Proc): void {
    if (p.finished) return; // after 'close' the pid (= pgid) may belong to someone else
    try {
      process.kill(-p.pid, "SIGKILL");
    } catch {
      // ESRCH: already gone
    }
  }

  private kill(p: Proc, reason: string): void {
    if (p.finished) return;
    p.killReason ??= reason;
    this.killGroup(p);
  }

  /** The child is gone (once per process): fail its job, then restart after the backoff delay. */
  private gone(p: Proc, exit: string): void {
    if (p.finished) return;
    p.finished = true;
    clearTimeout(p.readyTimer);
    if (this.proc === p) this.proc = undefined;
    const reason = p.killReason ?? exit;
    this.lastExitReason = reason;
    const tail = p.stderr.value;
    const detail = `${reason}${tail ? `; stderr: ${tail}` : ""}`;
    this.events.log("warn", { slot: this.slot, pid: p.pid, reason }, "supervised child ended");
    const f = this.inFlight;
    if (f) {
      this.inFlight = undefined;
      f.reject(new RunnerError(f.retry ? "ERROR_AND_RETRY" : "FATAL_ERROR", `child process ${p.pid} ended while running job ${f.jobId}: ${detail}`));
    }
    const wasReady = p.readyAt !== undefined;
    if (!wasReady) this.rejectWaiters(new RunnerError("ERROR_AND_RETRY", `child process failed to start: ${detail}`));
    p.markGone();
    if (this.stopped) return this.setState("STOPPED");
    if (wasReady && Date.now() - p.readyAt! >= HEALTHY_MS) this.failures = 0;
    const delay = Math.min(this.sup.backoffMaxMs, this.sup.backoffInitialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    this.setState("RESTARTING");
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) void this.start();
    }, delay);
    this.restartTimer.unref();
  }
}

function exitText(code: number | null, sig: NodeJS.Signals | null): string {
  if (code !== null) return `exit code ${code}`;
  return sig ? `signal ${sig} (${128 + (constants.signals[sig] ?? 0)})` : "exited";
}
