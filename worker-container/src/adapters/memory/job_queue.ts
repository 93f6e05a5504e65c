// In-process JobQueue: one FIFO per channel and priority, delayed jobs on timers, waiting leasers served directly.
import { Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { MAX_TIMER_MS } from "../../core/async.js";
import type { JobQueue, Lease, QueuedJob } from "../../core/ports.js";

/** Array-backed FIFO with O(1) amortised shift. */
class Fifo<T> {
  private items: T[] = [];
  private head = 0;
  get size() {
    return this.items.length - this.head;
  }
  push(v: T) {
    this.items.push(v);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const v = this.items[this.head];
    this.items[this.head++] = undefined as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return v;
  }
  toArray(): T[] {
    return this.items.slice(this.head);
  }
  removeWhere(pred: (v: T) => boolean): boolean {
    const live = this.toArray();
    const i = live.findIndex(pred);
    if (i < 0) return false;
    live.splice(i, 1);
    this.items = live;
    this.head = 0;
    return true;
  }
}

interface Channel {
  // strict priority order: HIGH, MEDIUM, LOW
  byPriority: [Fifo<QueuedJob>, Fifo<QueuedJob>, Fifo<QueuedJob>];
  waiters: Fifo<(item: QueuedJob) => boolean>;
  /** waitForWork callers (weighted leasers) woken when a job becomes deliverable here. */
  watchers: Set<() => void>;
}

const slot = (p: Priority) => (p === Priority.HIGH ? 0 : p === Priority.LOW ? 2 : 1);

export class MemoryJobQueue implements JobQueue {
  /** Leases in flight: token → job and the timer that re-delivers it if the lease runs out. */
  private leases = new Map<string, { item: QueuedJob; timer: NodeJS.Timeout }>();
  private leaseSeq = 0;

  /** @param leaseMs how long a lease holds without extend (a lost lease re-delivers the job). */
  constructor(private readonly leaseMs = 30_000) {}

  private channels = new Map<string, Channel>();
  // keyed by push, not job id: occurrences of a periodic job share an id and may wait side by side
  private delayed = new Map<number, { item: QueuedJob; timer: NodeJS.Timeout; dueAt: number }>();
  private seq = 0;

  private channel(name: string): Channel {
    let c = this.channels.get(name);
    if (!c) {
      c = { byPriority: [new Fifo(), new Fifo(), new Fifo()], waiters: new Fifo(), watchers: new Set() };
      this.channels.set(name, c);
    }
    return c;
  }

  async push(item: QueuedJob, delayMs = 0): Promise<void> {
    if (delayMs > 0) this.delay(this.seq++, item, Date.now() + delayMs);
    else this.deliver(item);
  }

  /** Timers are capped at ~24.8 days; longer delays re-arm until due. */
  private delay(key: number, item: QueuedJob, dueAt: number) {
    const timer = setTimeout(() => {
      if (Date.now() < dueAt) return this.delay(key, item, dueAt);
      this.delayed.delete(key);
      this.deliver(item);
    }, Math.min(Math.max(dueAt - Date.now(), 0), MAX_TIMER_MS));
    this.delayed.set(key, { item, timer, dueAt });
  }

  private deliver(item: QueuedJob) {
    const c = this.channel(item.channel);
    // A waiter whose lease was aborted returns false; try the next one.
    for (let w = c.waiters.shift(); w; w = c.waiters.shift()) if (w(item)) return;
    c.byPriority[slot(item.job.data!.priority)].push(item);
    for (const wake of c.watchers) wake();
  }

  private take(channel: string): Lease | undefined {
    for (const q of this.channel(channel).byPriority) {
      const item = q.shift();
      if (item) return this.grant(item);
    }
    return undefined;
  }

  async tryLease(channel: string): Promise<Lease | undefined> {
    return this.take(channel);
  }

  waitForWork(channels: string[], maxWaitMs: number, signal: AbortSignal): Promise<void> {
    const cs = channels.map((name) => this.channel(name));
    if (signal.aborted || cs.some((c) => c.byPriority.some((q) => q.size > 0))) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        for (const c of cs) c.watchers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(Math.max(0, maxWaitMs), MAX_TIMER_MS));
      signal.addEventListener("abort", done, { once: true });
      for (const c of cs) c.watchers.add(done);
    });
  }

  lease(channel: string, signal: AbortSignal): Promise<Lease | undefined> {
    const c = this.channel(channel);
    const now = this.take(channel);
    if (now) return Promise.resolve(now);
    if (signal.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let settled = false;
      const onAbort = () => {
        settled = true;
        resolve(undefined);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      c.waiters.push((item) => {
        if (settled) return false;
        settled = true;
        signal.removeEventListener("abort", onAbort);
        resolve(this.grant(item));
        return true;
      });
    });
  }

  private grant(item: QueuedJob, ms = this.leaseMs): Lease {
    const token = `m${++this.leaseSeq}`;
    this.arm(token, item, ms);
    return { item, token };
  }

  private arm(token: string, item: QueuedJob, ms: number) {
    const timer = setTimeout(() => {
      this.leases.delete(token);
      this.deliver(item); // the leaser went silent: someone else gets the job
    }, Math.min(ms, MAX_TIMER_MS));
    timer.unref();
    this.leases.set(token, { item, timer });
  }

  private release(lease: Lease): boolean {
    const held = this.leases.get(lease.token);
    if (!held) return false;
    clearTimeout(held.timer);
    this.leases.delete(lease.token);
    return true;
  }

  async ack(lease: Lease): Promise<boolean> {
    return this.release(lease);
  }

  async extend(lease: Lease, ms: number): Promise<boolean> {
    if (!this.release(lease)) return false;
    this.arm(lease.token, lease.item, ms);
    return true;
  }

  async requeue(lease: Lease, item: QueuedJob, delayMs: number): Promise<boolean> {
    if (!this.release(lease)) return false;
    await this.push(item, delayMs);
    return true;
  }

  /** Removes every waiting entry of the job (a periodic job may have several occurrences queued). */
  async remove(jobId: bigint): Promise<boolean> {
    let removed = false;
    for (const [key, d] of this.delayed) {
      if (d.item.job.id!.value !== jobId) continue;
      clearTimeout(d.timer);
      this.delayed.delete(key);
      removed = true;
    }
    for (const c of this.channels.values())
      for (const q of c.byPriority) while (q.removeWhere((i) => i.job.id!.value === jobId)) removed = true;
    return removed;
  }

  async list(channel: string | undefined, limit: number): Promise<QueuedJob[]> {
    const out: QueuedJob[] = [];
    for (const [name, c] of this.channels) {
      if (channel !== undefined && name !== channel) continue;
      for (const q of c.byPriority) out.push(...q.toArray());
    }
    const delayed = [...this.delayed.values()]
      .filter((d) => channel === undefined || d.item.channel === channel)
      .sort((a, b) => a.dueAt - b.dueAt)
      .map((d) => d.item);
    return out.concat(delayed).slice(0, limit);
  }

  async close(): Promise<void> {
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    for (const l of this.leases.values()) clearTimeout(l.timer);
    this.leases.clear();
  }
}
