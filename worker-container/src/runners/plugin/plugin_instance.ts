// A RunnerInstance backed by a plugin worker thread. The plugin's instance lives in the thread; this object
// holds the settings, so when its thread is lost (crash, or terminated after an aborted run) the next run starts
// a fresh thread and creates the plugin instance again: a static pool slot replaces its thread by itself.
import { RunnerError, type RunContext, type RunnerInstance } from "../runner.js";
import type { PluginThread } from "./plugin_thread.js";
import { runnerError } from "./plugin_thread.js";
import type { ThreadMessage, WireContext } from "./protocol.js";

/** How long a plugin may go on after its run was aborted before its thread is terminated. */
export const ABORT_GRACE_MS = 1_000;

/** Where instances get threads with the plugin loaded, and give them back. */
export interface ThreadSource {
  readonly name: string;
  take(): Promise<PluginThread>;
  /** A healthy thread with no plugin instance left in it. */
  give(thread: PluginThread): void;
  createTimeoutMs: number;
}

const wireCtx = (ctx: RunContext): WireContext => ({ using: ctx.using, jobId: ctx.jobId.toString(), metadata: { ...ctx.metadata } });
const abortError = (signal: AbortSignal) =>
  new RunnerError("ERROR_AND_RETRY", (signal.reason as Error | undefined)?.message ?? "aborted");

export class PluginRunnerInstance implements RunnerInstance {
  private thread?: PluginThread;

  private constructor(
    private readonly source: ThreadSource,
    private readonly settings: Uint8Array,
  ) {}

  /** Creates the plugin instance in a thread now, so bad settings fail at create time (FATAL_ERROR by default). */
  static async create(source: ThreadSource, settings: Uint8Array): Promise<PluginRunnerInstance> {
    const i = new PluginRunnerInstance(source, settings);
    await i.ensureThread();
    return i;
  }

  private async ensureThread(): Promise<PluginThread> {
    if (this.thread?.alive) return this.thread;
    this.thread = undefined;
    const t = await this.source.take();
    try {
      await t.call({ op: "create", settings: this.settings }, "FATAL_ERROR", this.source.createTimeoutMs, `${this.source.name} create`);
    } catch (e) {
      if (t.alive) this.source.give(t); // the plugin refused the settings; the thread itself is fine
      throw e;
    }
    this.thread = t;
    return t;
  }

  /**
   * After an abort the plugin gets ABORT_GRACE_MS to wind down, then its thread is terminated; either way the
   * thread is not used again (its state is unknown), and this instance will start a new one if it runs again.
   */
  private retire(t: PluginThread, settled: Promise<unknown>): void {
    if (this.thread === t) this.thread = undefined;
    const grace = new Promise((r) => setTimeout(r, ABORT_GRACE_MS).unref());
    void Promise.race([settled, grace]).then(() => t.terminate());
  }

  async run(args: Uint8Array, ctx: RunContext): Promise<Uint8Array> {
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    const t = await this.ensureThread();
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    return new Promise<Uint8Array>((resolve, reject) => {
      let settle!: () => void;
      const settled = new Promise<void>((r) => (settle = r));
      let id = 0;
      const onAbort = () => {
        t.notify({ op: "abort", id });
        this.retire(t, settled);
        reject(abortError(ctx.signal));
      };
      const finish = () => {
        t.done(id);
        settle();
        ctx.signal.removeEventListener("abort", onAbort);
      };
      ctx.signal.addEventListener("abort", onAbort, { once: true });
      id = t.send(
        { op: "run", args, ctx: wireCtx(ctx) },
        {
          onMessage: (m) => {
            finish();
            if (m.type === "ok") resolve(m.result ?? new Uint8Array());
            else if (m.type === "error") reject(runnerError(m.error, "OTHER_ERROR"));
          },
          onExit: (e) => {
            finish();
            reject(e);
          },
        },
      );
    });
  }

  async *runStream(args: Uint8Array, ctx: RunContext): AsyncGenerator<Uint8Array> {
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    const t = await this.ensureThread();
    const queue: Uint8Array[] = [];
    let end: { error?: Error } | undefined;
    let wake: (() => void) | undefined;
    const notify = () => {
      wake?.();
      wake = undefined;
    };
    let settle!: () => void;
    const settled = new Promise<void>((r) => (settle = r));
    const id = t.send(
      { op: "stream", args, ctx: wireCtx(ctx) },
      {
        onMessage: (m: ThreadMessage & { id: number }) => {
          if (m.type === "chunk") queue.push(m.chunk);
          else {
            t.done(id);
            settle();
            end = m.type === "error" ? { error: runnerError(m.error, "OTHER_ERROR") } : {};
          }
          notify();
        },
        onExit: (e) => {
          settle();
          end = { error: e };
          notify();
        },
      },
    );
    const onAbort = () => notify();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    try {
      for (;;) {
        if (ctx.signal.aborted) throw abortError(ctx.signal);
        const chunk = queue.shift();
        if (chunk) {
          yield chunk;
          t.notify({ op: "ack", id, n: 1 });
          continue;
        }
        if (end) {
          finished = true;
          if (end.error) throw end.error;
          return;
        }
        await new Promise<void>((r) => (wake = r));
      }
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      // aborted, or the consumer stopped early: stop the plugin and do not reuse its thread
      if (!finished) {
        t.notify({ op: "abort", id });
        this.retire(t, settled);
      }
    }
  }

  /**
   * Closes the plugin instance and hands the thread back at once: the thread runs the next instance's create
   * after this close (thread.ts orders them). A close that fails or hangs ends the thread.
   */
  async close(): Promise<void> {
    const t = this.thread;
    this.thread = undefined;
    if (!t?.alive) return;
    const closing = t.call({ op: "close" }, "OTHER_ERROR", this.source.createTimeoutMs, `${this.source.name} close`);
    this.source.give(t);
    await closing.catch(() => t.terminate());
  }
}
