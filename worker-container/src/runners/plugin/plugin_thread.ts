// Host side of one plugin worker thread: starts it, waits for the module to load, and matches replies to
// requests. When the thread dies (process.exit, uncaught error, terminate), every request still waiting fails
// with a RunnerError: only the jobs in flight on this thread fail; the worker process goes on.
import { Worker } from "node:worker_threads";
import { RunnerError, type RunnerErrorKind } from "../runner.js";
import type { HostMessage, HostRequest, PluginMeta, ThreadMessage, WireError } from "./protocol.js";

const ENTRY = new URL("./thread_entry.mjs", import.meta.url);

export interface Pending {
  /** A reply (ok / error / chunk) for this request id. */
  onMessage(m: ThreadMessage & { id: number }): void;
  /** The thread is gone. */
  onExit(err: RunnerError): void;
}

let live = 0;
/** Plugin threads alive in this process (for tests and diagnostics). */
export const livePluginThreads = () => live;

export function runnerError(e: WireError, defaultKind: RunnerErrorKind): RunnerError {
  return new RunnerError(e.kind ?? defaultKind, e.message);
}

export class PluginThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exitError?: RunnerError;
  /** Resolves with the plugin's metadata once its module is imported; rejects if it fails to load or the thread dies. */
  readonly loaded: Promise<PluginMeta>;
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>;

  constructor(readonly path: string) {
    // stdout/stderr of plugins go to the process's own (console.log in a plugin is the plugin's business).
    this.worker = new Worker(ENTRY, { workerData: { path } });
    // Idle threads must not keep the process alive; a job in flight is awaited by its dispatcher anyway.
    this.worker.unref();
    live++;
    let onLoaded!: (m: PluginMeta) => void;
    let onLoadFailed!: (e: Error) => void;
    this.loaded = new Promise((res, rej) => ((onLoaded = res), (onLoadFailed = rej)));
    this.loaded.catch(() => undefined);
    this.worker.on("message", (m: ThreadMessage) => {
      if (m.type === "loaded") onLoaded(m.meta);
      else if (m.type === "loadError") onLoadFailed(new Error(`plugin ${path}: ${m.error.message}`));
      else this.pending.get(m.id)?.onMessage(m);
    });
    let uncaught: Error | undefined;
    this.worker.on("error", (e) => (uncaught = e));
    this.exited = new Promise((resolve) =>
      this.worker.on("exit", (code) => {
        live--;
        const why = uncaught ? `plugin thread failed: ${uncaught.message}` : `plugin thread exited (code ${code})`;
        this.exitError = new RunnerError("OTHER_ERROR", why);
        onLoadFailed(new Error(`plugin ${path}: ${why}`));
        for (const p of [...this.pending.values()]) p.onExit(this.exitError);
        this.pending.clear();
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.exitError === undefined;
  }

  /** Sends a request; `handler` gets its replies until `done(id)`. Fails at once if the thread is gone. */
  send(msg: HostRequest, handler: Pending): number {
    const id = this.nextId++;
    if (this.exitError) {
      handler.onExit(this.exitError);
      return id;
    }
    this.pending.set(id, handler);
    this.worker.postMessage({ ...msg, id } as HostMessage);
    return id;
  }

  /** A message about request `id` that expects no reply (ack, abort). */
  notify(msg: HostMessage): void {
    if (!this.exitError) this.worker.postMessage(msg);
  }

  done(id: number): void {
    this.pending.delete(id);
  }

  /** One request, one reply: resolves with the ok reply's result; rejects with the plugin's error, the thread's death or a timeout. */
  call(msg: HostRequest, defaultKind: RunnerErrorKind, timeoutMs?: number, what: string = msg.op): Promise<Uint8Array | undefined> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const id = this.send(msg, {
        onMessage: (m) => {
          clearTimeout(timer);
          this.done(id);
          if (m.type === "ok") resolve(m.result);
          else if (m.type === "error") reject(runnerError(m.error, defaultKind));
        },
        onExit: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      if (timeoutMs !== undefined && this.pending.has(id)) {
        timer = setTimeout(() => {
          this.done(id);
          reject(new RunnerError(defaultKind, `plugin ${what} did not finish within ${timeoutMs} ms`));
          void this.terminate(); // its state is unknown: never reuse it
        }, timeoutMs);
      }
    });
  }

  async terminate(): Promise<void> {
    if (this.alive) await this.worker.terminate();
    await this.exited;
  }
}
