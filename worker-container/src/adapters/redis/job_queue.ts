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
  ["jwqPush", 4, PUSH],
  ["jwqRequeue", 6, REQUEUE],
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
      k = {
        pending: [`${b}:0`, `${b}:1`, `${b}:2`],
        delayed: `${b}:delayed`,
        leases: `${b}:leases`,
        leased: `${b}:leased`,
        ids: `${b}:ids`,
        wake: `${b}:wake`,
      };
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

  /** KEYS and ARGV of PUSH (REQUEUE appends to both). */
  private pushArgs(item: QueuedJob, delayMs: number): Arg[] {
    const k = this.keys(item.channel);
    const s = slot(item.job.data!.priority);
    const delay = Math.max(0, Math.ceil(delayMs));
    const member = delay > 0 ? `${s}${this.nextId()} ` : "";
    return [k.pending[s], k.delayed, k.ids, k.wake, delay, item.job.id!.value.toString(), encode(item), member];
  }

  async push(item: QueuedJob, delayMs = 0): Promise<void> {
    // The channel is registered on every push (in the same round trip; its key lives in another cluster slot),
    // not once per process: a Redis that restarted empty must learn it again, or remove()/list() miss the channel.
    await Promise.all([this.redis.jwqPush(...this.pushArgs(item, delayMs)), this.redis.sadd(this.channelsKey, item.channel)]);
  }

  async lease(channel: string, signal: AbortSignal): Promise<Lease | undefined> {
    const k = this.keys(channel);
    const keys = [...k.pending, k.delayed, k.leases, k.leased, k.ids, k.wake];
    while (!signal.aborted && !this.closing.signal.aborted) {
      const token = this.nextId();
      const r = (await this.redis.jwqLeaseBuffer(...keys, token, this.leaseMs)) as Buffer | number;
      // Even if the signal aborted meanwhile the job is ours now: hand it over rather than lose it.
      if (Buffer.isBuffer(r)) return { item: decode(r, channel), token };
      await this.wait(k.wake, r, signal);
    }
    return undefined;
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

  async ack(lease: Lease): Promise<boolean> {
    const k = this.keys(lease.item.channel);
    return (await this.redis.jwqAck(k.leases, k.leased, lease.token)) === 1;
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
    const k = this.keys(lease.item.channel);
    const [pending, delayed, ids, wake, ...argv] = this.pushArgs(item, delayMs);
    return (await this.redis.jwqRequeue(pending, delayed, ids, wake, k.leases, k.leased, ...argv, lease.token)) === 1;
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
