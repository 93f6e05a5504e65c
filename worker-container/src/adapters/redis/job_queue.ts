// JobQueue in Redis (Scalable mode: many front and worker processes share one Redis). Every step is one Lua
// script (queue_scripts.ts) over one channel's keys, so push, lease, ack, extend and requeue are one round trip
// each and atomic: a lease is recorded with its deadline in the same step that pops the job, and ack/requeue
// succeed only while the lease is still recorded. A lease past its deadline goes back to the head of its
// priority inside the next lease call on the channel, from any process.
//
// Key layout (B = `<prefix>:{q:<channel>}`, one hash tag per channel):
//   B:0, B:1, B:2   pending lists for HIGH, MEDIUM, LOW (FIFO: RPUSH, LPOP)
//   B:delayed       zset of delayed jobs scored by due time (ms, Redis clock)
//   B:leases        zset lease token → deadline;  B:leased  hash token → the leased job
//   B:ids           hash job id → waiting occurrences (makes remove() of a job that is not waiting O(1))
//   B:wake          list of notification tokens that waiting leasers block on (BLPOP)
//   <prefix>:q:channels   set of channel names (for list(undefined) and remove(), which know no channel)
//
// Waiting: a leaser that finds nothing blocks with BLPOP on B:wake on a connection of its own (a blocking
// command holds its connection). Redis only times blocked commands out at its `hz` granularity (~100 ms), so
// precise wake-ups (next delayed job, next lease deadline) and aborts are done from here with CLIENT UNBLOCK.
import { randomBytes } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Redis } from "ioredis";
import { Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { JobQueue, Lease, QueuedJob } from "../../core/ports.js";
import { Coalescer } from "./coalescer.js";
import { DEFAULT_PREFIX, slotBase } from "./keys.js";
import { ACK, EXTEND, LEASE, LIST, PUSH, REMOVE, REQUEUE } from "./queue_scripts.js";

export interface RedisJobQueueOptions {
  /** Key prefix (default "jobworkerp"). */
  prefix?: string;
  /** How long a lease holds without extend (default 30 s). */
  leaseMs?: number;
  /**
   * Longest a waiting leaser blocks before looking again (default 1 s). Only a safety net: pushes, new
   * earliest due times and aborts wake leasers directly.
   */
  pollMs?: number;
}

type Arg = string | Buffer | number;
type Script = (...args: Arg[]) => Promise<unknown>;
interface Scripts {
  jwqPush: Script;
  jwqRequeue: Script;
  jwqAck: Script;
  jwqExtend: Script;
  jwqLeaseBuffer: Script;
  jwqRemove: Script;
  jwqListBuffer: Script;
}

const SCRIPTS: [keyof Scripts, number, string][] = [
  ["jwqPush", 6, PUSH],
  ["jwqRequeue", 8, REQUEUE],
  ["jwqAck", 2, ACK],
  ["jwqExtend", 1, EXTEND],
  ["jwqLeaseBuffer", 8, LEASE],
  ["jwqRemove", 5, REMOVE],
  ["jwqListBuffer", 4, LIST],
];

interface ChannelKeys {
  pending: [string, string, string];
  delayed: string;
  leases: string;
  leased: string;
  ids: string;
  wake: string;
  /** KEYS of the push, requeue and lease scripts: pending ×3, delayed, ids, wake, leases, leased. */
  all: string[];
}

const slot = (p: Priority) => (p === Priority.HIGH ? 0 : p === Priority.LOW ? 2 : 1);
const BAR = 0x7c; // "|"
const SPACE = 0x20;

/** Envelope: "<jobId>|<flags>" then the protobuf Job (see queue_scripts.ts). */
function encode(item: QueuedJob): Buffer {
  const flags = (item.durable ? 1 : 0) + (item.loadOnly ? 2 : 0);
  return Buffer.concat([Buffer.from(`${item.job.id!.value}|${flags}`), toBinary(JobSchema, item.job)]);
}

function decode(e: Buffer, channel: string): QueuedJob {
  const bar = e.indexOf(BAR);
  const flags = e[bar + 1] - 48;
  const item: QueuedJob = { job: fromBinary(JobSchema, e.subarray(bar + 2)), channel };
  if (flags & 1) item.durable = true;
  if (flags & 2) item.loadOnly = true;
  return item;
}

// One listener per signal however many leasers wait on it (the dispatcher's loops share one stop signal; a
// listener each would trip Node's MaxListeners warning).
const abortHooks = new WeakMap<AbortSignal, Set<() => void>>();
function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let hooks = abortHooks.get(signal);
  if (!hooks) {
    const set = (hooks = new Set());
    abortHooks.set(signal, set);
    signal.addEventListener("abort", () => set.forEach((f) => f()), { once: true });
  }
  hooks.add(fn);
  return () => hooks.delete(fn);
}

export class RedisJobQueue implements JobQueue {
  private readonly redis: Redis & Scripts;
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly pollMs: number;
  /** Distinguishes this instance's lease tokens and delayed entries from other processes'. */
  private readonly uid = randomBytes(6).toString("base64url");
  private seq = 0;
  private readonly keyCache = new Map<string, ChannelKeys>();
  /** Connections for blocking waits: idle ones are reused; all are closed by close(). */
  private readonly idle: Redis[] = [];
  private readonly conns = new Set<Redis>();
  private readonly closing = new AbortController();

  constructor(client: Redis, opts: RedisJobQueueOptions = {}) {
    for (const [name, numberOfKeys, lua] of SCRIPTS) {
      client.defineCommand(name.replace(/Buffer$/, ""), { numberOfKeys, lua });
    }
    this.redis = client as Redis & Scripts;
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.pollMs = opts.pollMs ?? 1_000;
  }

  private keys(channel: string): ChannelKeys {
    let k = this.keyCache.get(channel);
    if (!k) {
      const b = slotBase(this.prefix, `q:${channel}`);
      const pending: [string, string, string] = [`${b}:0`, `${b}:1`, `${b}:2`];
      const [delayed, ids, wake, leases, leased] = [`${b}:delayed`, `${b}:ids`, `${b}:wake`, `${b}:leases`, `${b}:leased`];
      k = { pending, delayed, leases, leased, ids, wake, all: [...pending, delayed, ids, wake, leases, leased] };
      this.keyCache.set(channel, k);
    }
    return k;
  }

  private get channelsKey() {
    return `${this.prefix}:q:channels`;
  }

  private nextId() {
    return `${this.uid}.${(this.seq++).toString(36)}`;
  }

  /** One push group of the PUSH / REQUEUE scripts: slot, delay, job id, E, delayed-member prefix. */
  private pushGroup(item: QueuedJob, delayMs: number): Arg[] {
    const s = slot(item.job.data!.priority);
    const delay = Math.max(0, Math.ceil(delayMs));
    const member = delay > 0 ? `${s}${this.nextId()} ` : "";
    return [s, delay, item.job.id!.value.toString(), encode(item), member];
  }

  /** Per channel (one hash tag each): pushes, acks and lease waiters of one event-loop turn share one script. */
  private perChannel<T>(map: Map<string, T>, channel: string, make: () => T): T {
    let v = map.get(channel);
    if (!v) map.set(channel, (v = make()));
    return v;
  }
  private readonly pushers = new Map<string, Coalescer<{ item: QueuedJob; delayMs: number }, undefined>>();
  private readonly ackers = new Map<string, Coalescer<string, boolean>>();
  private readonly leasers = new Map<string, ChannelLeaser>();

  push(item: QueuedJob, delayMs = 0): Promise<void> {
    const ch = item.channel;
    const pusher = this.perChannel(this.pushers, ch, () => new Coalescer(async (batch) => {
      const argv = batch.flatMap((b) => this.pushGroup(b.item, b.delayMs));
      // The channel is registered on every push batch (in the same round trip; its key lives in another cluster
      // slot), not once per process: a Redis that restarted empty must learn it again, or remove()/list() miss it.
      await Promise.all([this.redis.jwqPush(...this.keys(ch).all.slice(0, 6), ...argv), this.redis.sadd(this.channelsKey, ch)]);
      return batch.map(() => undefined);
    }, 100));
    return pusher.call({ item, delayMs });
  }

  lease(channel: string, signal: AbortSignal): Promise<Lease | undefined> {
    return this.perChannel(this.leasers, channel, () => new ChannelLeaser(this, channel)).lease(signal);
  }

  // Weighted sub-queues (core/weighted.ts): a path of its own beside the ChannelLeaser. The tryLease calls of one
  // event-loop turn on a channel are one LEASE script for all of them; an empty answer tells when the channel's
  // next delayed job or lease deadline is due, which the idle wait then honours.
  private readonly tryLeasers = new Map<string, Coalescer<undefined, Lease | undefined>>();
  /** Per channel: when (Date.now() ms) its next delayed job or lease deadline is due, as the last empty LEASE said. */
  private readonly nextDue = new Map<string, number>();

  tryLease(channel: string): Promise<Lease | undefined> {
    const leaser = this.perChannel(this.tryLeasers, channel, () => new Coalescer(async (calls: undefined[]) => {
      const r = await this.leaseMany(channel, calls.length);
      if (typeof r === "number") {
        if (r >= 0) this.nextDue.set(channel, Date.now() + r);
        else this.nextDue.delete(channel);
        return calls.map(() => undefined);
      }
      return calls.map((_, i) => r[i]);
    }));
    return leaser.call(undefined);
  }

  /** Blocks on the wake lists of all the channels at once (one wait each; the first to wake ends the others). */
  async waitForWork(channels: string[], maxWaitMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closed || channels.length === 0) return;
    const done = new AbortController();
    const unhook = onAbort(signal, () => done.abort());
    const now = Date.now();
    try {
      await Promise.race(
        channels.map((ch) => {
          const due = this.nextDue.get(ch);
          const dueMs = Math.max(0, Math.min(maxWaitMs, due === undefined ? maxWaitMs : due - now));
          return this.waitOn(ch, dueMs, done.signal).catch(() => {}); // a failed connection just ends the wait
        }),
      );
    } finally {
      unhook();
      done.abort(); // the other waits end now (a wake token one of them took is passed on, see wait())
    }
  }

  /** One LEASE call for up to n jobs (the leaser's waiters): the jobs, or the ms to wait (-1: none due). */
  async leaseMany(channel: string, n: number): Promise<Lease[] | number> {
    const base = this.nextId();
    const r = (await this.redis.jwqLeaseBuffer(...this.keys(channel).all, base, this.leaseMs, n)) as Buffer[] | number;
    if (typeof r === "number") return r;
    return r.map((e, i) => ({ item: decode(e, channel), token: `${base}.${i}` }));
  }

  /** Waits on the channel's wake list (see `wait`) unless the queue is closing. */
  waitOn(channel: string, dueMs: number, signal: AbortSignal): Promise<void> {
    return this.wait(this.keys(channel).wake, dueMs, signal);
  }

  get closed(): boolean {
    return this.closing.signal.aborted;
  }

  /** Blocks until a wake token arrives, `dueMs` passes (if ≥ 0), pollMs passes, or the signal aborts. */
  private async wait(wakeKey: string, dueMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closing.signal.aborted) return;
    const conn = this.idle.pop() ?? this.connect();
    // The id is asked right before each wait: it changes when ioredis reconnects.
    const id = conn.client("ID") as Promise<number>;
    id.catch(() => {}); // a failure shows in the BLPOP too
    const popped = conn.blpop(wakeKey, this.pollMs / 1000);
    let unblocking: Promise<unknown> | undefined;
    let broken = false;
    const kick = () => {
      unblocking ??= id
        .then((i) => this.redis.client("UNBLOCK", i, "TIMEOUT"))
        .catch(() => {
          broken = true; // cannot unblock (e.g. ACL): drop the connection instead, which ends the wait
          conn.disconnect();
        });
    };
    const timer = dueMs >= 0 && dueMs < this.pollMs ? setTimeout(kick, dueMs) : undefined;
    const unhook = onAbort(signal, kick);
    let got: unknown = null;
    try {
      got = await popped;
    } catch (e) {
      broken = true;
      if (!this.closing.signal.aborted && !signal.aborted && !unblocking) throw e;
    } finally {
      clearTimeout(timer);
      unhook();
      // A late UNBLOCK must not hit this connection's next wait.
      await unblocking;
      if (broken || this.closing.signal.aborted) {
        this.conns.delete(conn);
        conn.disconnect();
      } else this.idle.push(conn);
    }
    // We took a wake token but will not lease: pass it on to another waiter.
    if (got && (signal.aborted || this.closing.signal.aborted)) await this.redis.rpush(wakeKey, "1").catch(() => {});
  }

  private connect(): Redis {
    const conn = this.redis.duplicate();
    conn.on("error", () => {}); // failures surface as rejected commands
    this.conns.add(conn);
    return conn;
  }

  ack(lease: Lease): Promise<boolean> {
    const ch = lease.item.channel;
    const acker = this.perChannel(this.ackers, ch, () => new Coalescer(async (tokens: string[]) => {
      const k = this.keys(ch);
      return ((await this.redis.jwqAck(k.leases, k.leased, ...tokens)) as number[]).map((r) => r === 1);
    }));
    return acker.call(lease.token);
  }

  async extend(lease: Lease, ms: number): Promise<boolean> {
    return (await this.redis.jwqExtend(this.keys(lease.item.channel).leases, lease.token, Math.ceil(ms))) === 1;
  }

  async requeue(lease: Lease, item: QueuedJob, delayMs: number): Promise<boolean> {
    if (item.channel !== lease.item.channel) {
      // Another channel is another hash tag: one script cannot touch both in a cluster. Ack first: a crash in
      // between loses the retry rather than running the job twice.
      return (await this.ack(lease)) && (await this.push(item, delayMs), true);
    }
    const keys = this.keys(lease.item.channel).all;
    return (await this.redis.jwqRequeue(...keys, lease.token, ...this.pushGroup(item, delayMs))) === 1;
  }

  async remove(jobId: bigint): Promise<boolean> {
    const id = jobId.toString();
    const removed = await Promise.all(
      (await this.channels()).map((ch) => {
        const k = this.keys(ch);
        return this.redis.jwqRemove(...k.pending, k.delayed, k.ids, id) as Promise<number>;
      }),
    );
    return removed.some((n) => n > 0);
  }

  async list(channel: string | undefined, limit: number): Promise<QueuedJob[]> {
    if (limit <= 0) return [];
    const names = channel === undefined ? await this.channels() : [channel];
    const parts = await Promise.all(
      names.map((ch) => {
        const k = this.keys(ch);
        return this.redis.jwqListBuffer(...k.pending, k.delayed, limit) as Promise<[Buffer[], Buffer[]]>;
      }),
    );
    const pending: QueuedJob[] = [];
    const delayed: { item: QueuedJob; due: number }[] = [];
    parts.forEach(([p, d], i) => {
      for (const e of p) pending.push(decode(e, names[i]));
      for (let j = 0; j < d.length; j += 2) {
        delayed.push({ item: decode(d[j].subarray(d[j].indexOf(SPACE) + 1), names[i]), due: Number(d[j + 1].toString()) });
      }
    });
    delayed.sort((a, b) => a.due - b.due);
    return pending.concat(delayed.map((d) => d.item)).slice(0, limit);
  }

  private async channels(): Promise<string[]> {
    return this.redis.smembers(this.channelsKey);
  }

  /** Ends waiting leases and closes the blocking connections; the client passed in stays open (it is shared). */
  async close(): Promise<void> {
    this.closing.abort();
    for (const c of this.conns) c.disconnect(); // rejects blocked BLPOPs: their leases resolve undefined
    this.idle.length = 0;
    this.conns.clear();
  }
}

interface Waiter {
  signal: AbortSignal;
  resolve: (lease: Lease | undefined) => void;
  reject: (e: unknown) => void;
}

/**
 * The lease side of one channel in one process: the dispatcher's loops wait here, and one LEASE call at a time
 * fetches a job for each of them (so 32 idle loops cost one script, not 32), or blocks on the wake list once for
 * all of them. Jobs are leased only for loops already waiting, so none sits here unhandled while its lease runs.
 */
class ChannelLeaser {
  private waiters: Waiter[] = [];
  private running = false;
  /** Ends the current wait early (a waiter gave up: the next round must not lease for it). */
  private kick?: () => void;

  constructor(
    private readonly q: RedisJobQueue,
    private readonly channel: string,
  ) {}

  lease(signal: AbortSignal): Promise<Lease | undefined> {
    if (signal.aborted || this.q.closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      const unhook = onAbort(signal, () => this.kick?.());
      this.waiters.push({ signal, resolve: (l) => (unhook(), resolve(l)), reject: (e) => (unhook(), reject(e)) });
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.run()); // the loops that free up in this turn join the first call
      }
    });
  }

  private async run(): Promise<void> {
    for (;;) {
      // Between calls no job is in flight to anyone: waiters that gave up leave now.
      const gone = this.q.closed ? this.waiters : this.waiters.filter((w) => w.signal.aborted);
      if (gone.length > 0) {
        this.waiters = this.waiters.filter((w) => !gone.includes(w));
        gone.forEach((w) => w.resolve(undefined));
      }
      if (this.waiters.length === 0) {
        this.running = false; // in the same synchronous step as the check: a new waiter restarts the loop
        return;
      }
      let r: Lease[] | number;
      try {
        r = await this.q.leaseMany(this.channel, this.waiters.length);
      } catch (e) {
        // Redis failed: every waiter sees it (the dispatcher reports it and asks again)
        const failed = this.waiters;
        this.waiters = [];
        this.running = false;
        failed.forEach((w) => w.reject(e));
        return;
      }
      if (typeof r !== "number") {
        // Even a waiter whose signal aborted meanwhile gets its job: it is leased now, hand it over rather than lose it.
        for (const lease of r) this.waiters.shift()!.resolve(lease);
        continue;
      }
      const stop = new AbortController();
      this.kick = () => stop.abort();
      try {
        await this.q.waitOn(this.channel, r, stop.signal);
      } catch {
        // the blocking connection failed: look again (a Redis outage shows in the next LEASE call)
      } finally {
        this.kick = undefined;
      }
    }
  }
}
