// In-process ResultBus: DIRECT/Listen rendezvous with a keep window for late waiters,
// per-worker fan-out, streamed chunks, and cancellation signals.
import type { ResultOutputItem } from "../../gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { AsyncQueue, MAX_TIMER_MS } from "../../core/async.js";
import type { DefinitionKind, ResultBus } from "../../core/ports.js";

export class MemoryResultBus implements ResultBus {
  private kept = new Map<bigint, { result: JobResult; timer: NodeJS.Timeout }>();
  private waiters = new Map<bigint, Set<(r: JobResult) => void>>();
  private workerSubs = new Map<bigint, Set<AsyncQueue<JobResult>>>();
  private chunkSubs = new Map<bigint, Set<AsyncQueue<ResultOutputItem>>>();
  private cancelListeners = new Set<(jobId: bigint) => void>();
  private changeListeners = new Set<(kind: DefinitionKind, id: bigint) => void>();

  async publishResult(result: JobResult, opts: { broadcast: boolean; keepMs: number }): Promise<void> {
    const jobId = result.data!.jobId!.value;
    const ws = this.waiters.get(jobId);
    if (ws) {
      this.waiters.delete(jobId);
      for (const w of ws) w(result);
    }
    if (opts.keepMs > 0) {
      const old = this.kept.get(jobId);
      if (old) clearTimeout(old.timer);
      const timer = setTimeout(() => this.kept.delete(jobId), Math.min(opts.keepMs, MAX_TIMER_MS));
      timer.unref();
      this.kept.set(jobId, { result, timer });
    }
    if (opts.broadcast) {
      for (const q of this.workerSubs.get(result.data!.workerId!.value) ?? []) q.push(result);
    }
  }

  waitResult(jobId: bigint, timeoutMs: number, signal?: AbortSignal): Promise<JobResult | undefined> {
    const kept = this.kept.get(jobId);
    if (kept) return Promise.resolve(kept.result);
    if (signal?.aborted || timeoutMs <= 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      const finish = (r: JobResult | undefined) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const s = this.waiters.get(jobId);
        s?.delete(waiter);
        if (s?.size === 0) this.waiters.delete(jobId);
        resolve(r);
      };
      const waiter = (r: JobResult) => finish(r);
      const onAbort = () => finish(undefined);
      const timer = setTimeout(() => finish(undefined), Math.min(timeoutMs, MAX_TIMER_MS));
      set.add(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  subscribeWorker(workerId: bigint, signal: AbortSignal): AsyncIterable<JobResult> {
    return this.subscribe(this.workerSubs, workerId, signal);
  }

  async publishChunk(jobId: bigint, item: ResultOutputItem): Promise<void> {
    const subs = this.chunkSubs.get(jobId);
    if (!subs) return;
    const last = item.item.case === "end" || item.item.case === "finalCollected";
    for (const q of subs) {
      q.push(item);
      if (last) q.end();
    }
    if (last) this.chunkSubs.delete(jobId);
  }

  subscribeChunks(jobId: bigint, signal: AbortSignal): AsyncIterable<ResultOutputItem> {
    return this.subscribe(this.chunkSubs, jobId, signal);
  }

  private subscribe<T>(map: Map<bigint, Set<AsyncQueue<T>>>, key: bigint, signal: AbortSignal): AsyncIterable<T> {
    const q = new AsyncQueue<T>();
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(q);
    const drop = () => {
      q.end();
      const s = map.get(key);
      s?.delete(q);
      if (s?.size === 0) map.delete(key);
    };
    if (signal.aborted) drop();
    else signal.addEventListener("abort", drop, { once: true });
    return q;
  }

  async publishCancel(jobId: bigint): Promise<void> {
    for (const l of this.cancelListeners) l(jobId);
  }

  onCancel(listener: (jobId: bigint) => void): () => void {
    this.cancelListeners.add(listener);
    return () => this.cancelListeners.delete(listener);
  }

  async publishChanged(kind: DefinitionKind, id: bigint): Promise<void> {
    for (const l of this.changeListeners) l(kind, id);
  }

  onChanged(listener: (kind: DefinitionKind, id: bigint) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const k of this.kept.values()) clearTimeout(k.timer);
    this.kept.clear();
    for (const subs of [...this.workerSubs.values(), ...this.chunkSubs.values()]) for (const q of subs) q.end();
  }
}
