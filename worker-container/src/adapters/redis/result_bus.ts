// ResultBus over Redis pub/sub (Scalable mode: results, chunks and cancellations cross processes).
//
// Keys and channels (P = prefix):
//   P:result:<jobId>           key: the kept final result (SET PX keepMs), for late waiters
//   P:ch:result:<jobId>        channel: the job's final result (DIRECT / Listen waiters)
//   P:ch:worker:<workerId>     channel: broadcast results of a worker (ListenByWorker)
//   P:ch:chunk:<jobId>         channel: streamed chunks of a job, in publish order, up to the end item
//   P:ch:cancel                channel: ids of jobs to cancel, heard by every process's onCancel listeners
//   P:ch:changed               channel: "worker:<id>" / "runner:<id>" of definitions that changed (caches, pools)
// Messages are the protobuf bytes (JobResult, ResultOutputItem) or the job id in decimal: ids never pass
// through JS numbers.
//
// One subscriber connection per bus (a duplicate of the given client) carries every subscription; a channel is
// subscribed when its first local listener arrives and unsubscribed when its last one leaves. A publish first
// waits for this bus's own pending SUBSCRIBE of the channels it publishes on, so "subscribe, then publish"
// in one process never loses a message; across processes the core subscribes before the job can run.
//
// waitResult subscribes first and reads the kept key once the subscription is confirmed: publishResult sets the
// key before publishing (in one MULTI), so a result published before the subscription is found in the key and
// one published after it arrives on the channel. (A list + BLPOP per waiter would need one blocked connection
// per waiter.)
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ChainableCommander, Redis } from "ioredis";
import { ResultOutputItemSchema, type ResultOutputItem } from "../../gen/jobworkerp/data/common_pb.js";
import { JobResultSchema, type JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { AsyncQueue, MAX_TIMER_MS } from "../../core/async.js";
import type { DefinitionKind, ResultBus } from "../../core/ports.js";
import { DEFAULT_PREFIX } from "./keys.js";

export interface RedisResultBusOptions {
  prefix?: string;
}

interface Channel {
  handlers: Set<(message: Buffer) => void>;
  /** Settles when Redis has confirmed the SUBSCRIBE. */
  ready: Promise<void>;
}

const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const noop = () => {};

async function execAll(p: ChainableCommander): Promise<void> {
  for (const [err] of (await p.exec()) ?? []) if (err) throw err;
}

export class RedisResultBus implements ResultBus {
  private readonly sub: Redis;
  private readonly prefix: string;
  private readonly channels = new Map<string, Channel>();
  /** Ends every local listener (waiters resolve undefined, streams end) when the bus closes. */
  private readonly closers = new Set<() => void>();
  /** Result waiters re-read their kept key after a reconnect: messages published meanwhile were lost. */
  private readonly rechecks = new Set<() => void>();

  constructor(
    private readonly redis: Redis,
    opts: RedisResultBusOptions = {},
  ) {
    this.prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.sub = redis.duplicate();
    this.sub.on("messageBuffer", (channel: Buffer, message: Buffer) => {
      const ch = this.channels.get(channel.toString());
      if (!ch) return;
      for (const h of [...ch.handlers]) {
        try {
          h(message);
        } catch {
          // a message this version cannot decode (another version on the same prefix) is dropped
        }
      }
    });
    this.sub.on("error", noop); // ioredis reconnects by itself; pending calls see their own errors
    let connectedBefore = false;
    this.sub.on("ready", () => {
      if (connectedBefore) for (const r of this.rechecks) r();
      connectedBefore = true;
    });
  }

  private keptKey = (jobId: bigint) => `${this.prefix}:result:${jobId}`;
  private resultChannel = (jobId: bigint) => `${this.prefix}:ch:result:${jobId}`;
  private workerChannel = (workerId: bigint) => `${this.prefix}:ch:worker:${workerId}`;
  private chunkChannel = (jobId: bigint) => `${this.prefix}:ch:chunk:${jobId}`;
  private cancelChannel = () => `${this.prefix}:ch:cancel`;
  private changedChannel = () => `${this.prefix}:ch:changed`;

  /** Add a local listener of a channel (subscribing it if it is the first); returns the remover. */
  private listen(name: string, handler: (message: Buffer) => void): { off: () => void; ready: Promise<void> } {
    let ch = this.channels.get(name);
    if (!ch) {
      const ready = this.sub.subscribe(name).then(noop);
      ready.catch(noop); // failures reach whoever awaits `ready`
      this.channels.set(name, (ch = { handlers: new Set(), ready }));
    }
    const entry = ch;
    entry.handlers.add(handler);
    const off = () => {
      if (!entry.handlers.delete(handler) || entry.handlers.size > 0 || this.channels.get(name) !== entry) return;
      this.channels.delete(name);
      // sent after the SUBSCRIBE on the same connection; a later re-subscribe is sent after it in turn
      this.sub.unsubscribe(name).catch(noop);
    };
    return { off, ready: entry.ready };
  }

  /** Wait for this bus's pending subscriptions of these channels, so a local subscriber sees what follows. */
  private async settled(...names: string[]): Promise<void> {
    for (const n of names) await this.channels.get(n)?.ready.catch(noop);
  }

  /** Resolves when every subscription made so far is confirmed by Redis (for callers that hand off to other processes). */
  async subscribed(): Promise<void> {
    await Promise.all([...this.channels.values()].map((c) => c.ready.catch(noop)));
  }

  async publishResult(result: JobResult, opts: { broadcast: boolean; keepMs: number }): Promise<void> {
    const jobId = result.data!.jobId!.value;
    const workerId = result.data!.workerId!.value;
    const channel = this.resultChannel(jobId);
    const worker = this.workerChannel(workerId);
    await this.settled(channel, ...(opts.broadcast ? [worker] : []));
    const bin = bytes(toBinary(JobResultSchema, result));
    const m = this.redis.multi();
    if (opts.keepMs > 0) m.set(this.keptKey(jobId), bin, "PX", Math.ceil(opts.keepMs));
    m.publish(channel, bin);
    if (opts.broadcast) m.publish(worker, bin);
    await execAll(m);
  }

  private async peek(jobId: bigint): Promise<JobResult | undefined> {
    const kept = await this.redis.getBuffer(this.keptKey(jobId));
    return kept ? fromBinary(JobResultSchema, kept) : undefined;
  }

  waitResult(jobId: bigint, timeoutMs: number, signal?: AbortSignal): Promise<JobResult | undefined> {
    if (signal?.aborted || timeoutMs <= 0) return this.peek(jobId);
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: JobResult | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.closers.delete(onAbort);
        this.rechecks.delete(recheck);
        off();
        resolve(r);
      };
      const onAbort = () => finish(undefined);
      const recheck = () => void this.peek(jobId).then((r) => r && finish(r), noop);
      const { off, ready } = this.listen(this.resultChannel(jobId), (msg) => finish(fromBinary(JobResultSchema, msg)));
      const timer = setTimeout(onAbort, Math.min(timeoutMs, MAX_TIMER_MS));
      signal?.addEventListener("abort", onAbort, { once: true });
      this.closers.add(onAbort);
      this.rechecks.add(recheck);
      ready.then(recheck, onAbort);
    });
  }

  subscribeWorker(workerId: bigint, signal: AbortSignal): AsyncIterable<JobResult> {
    return this.stream(this.workerChannel(workerId), signal, (msg) => [fromBinary(JobResultSchema, msg), false]);
  }

  async publishChunk(jobId: bigint, item: ResultOutputItem): Promise<void> {
    const channel = this.chunkChannel(jobId);
    await this.settled(channel);
    await this.redis.publish(channel, bytes(toBinary(ResultOutputItemSchema, item)));
  }

  subscribeChunks(jobId: bigint, signal: AbortSignal): AsyncIterable<ResultOutputItem> {
    return this.stream(this.chunkChannel(jobId), signal, (msg) => {
      const item = fromBinary(ResultOutputItemSchema, msg);
      return [item, item.item.case === "end" || item.item.case === "finalCollected"];
    });
  }

  /** A channel's messages as an async stream, until the signal aborts or a message is the last. */
  private stream<T>(name: string, signal: AbortSignal, decode: (msg: Buffer) => [T, boolean]): AsyncIterable<T> {
    const q = new AsyncQueue<T>();
    if (signal.aborted) {
      q.end();
      return q;
    }
    const end = () => {
      q.end();
      off();
      signal.removeEventListener("abort", end);
      this.closers.delete(end);
    };
    const { off, ready } = this.listen(name, (msg) => {
      const [value, last] = decode(msg);
      q.push(value);
      if (last) end();
    });
    ready.catch((e) => {
      q.fail(e);
      end();
    });
    signal.addEventListener("abort", end, { once: true });
    this.closers.add(end);
    return q;
  }

  async publishCancel(jobId: bigint): Promise<void> {
    const channel = this.cancelChannel();
    await this.settled(channel);
    await this.redis.publish(channel, jobId.toString());
  }

  onCancel(listener: (jobId: bigint) => void): () => void {
    const { off } = this.listen(this.cancelChannel(), (msg) => listener(BigInt(msg.toString())));
    return off;
  }

  /** Message "<kind>:<id>". */
  async publishChanged(kind: DefinitionKind, id: bigint): Promise<void> {
    const channel = this.changedChannel();
    await this.settled(channel);
    await this.redis.publish(channel, `${kind}:${id}`);
  }

  onChanged(listener: (kind: DefinitionKind, id: bigint) => void): () => void {
    const { off } = this.listen(this.changedChannel(), (msg) => {
      const [kind, id] = msg.toString().split(":");
      if ((kind === "worker" || kind === "runner") && /^\d+$/.test(id ?? "")) listener(kind, BigInt(id));
    });
    return off;
  }

  /** Ends local listeners and the subscriber connection; the command client given to the constructor stays open. */
  async close(): Promise<void> {
    for (const c of [...this.closers]) c();
    this.channels.clear();
    this.rechecks.clear();
    this.sub.disconnect(); // subscriptions need no graceful QUIT
  }
}
