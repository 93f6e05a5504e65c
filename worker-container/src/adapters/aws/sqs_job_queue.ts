// JobQueue on SQS (AWS mode): one standard queue per channel and priority (names from `resources.ts`), each with
// a DLQ and redrive. See `sqs_leaser.ts` for how leases are received in strict priority order.
//
// - Lease = one delivery (its receipt handle), invisible to others for `leaseMs` (rounded up to whole seconds);
//   `extend` = ChangeMessageVisibility, never past SQS's 12 h cap from the receive; `ack` = DeleteMessage;
//   all three go through per-turn batches (10 entries a request). A lease whose deadline passed answers false
//   (SQS would accept a stale receipt handle silently, so the deadline is tracked here).
// - Delays: DelaySeconds carries whole seconds up to 15 min (a second early) and the body carries the exact due
//   time, which the leaser waits for. Longer delays go to `longDelay` (the composition puts the job in the store
//   for the clock), or without it hop through the queue in 15-minute steps.
// - A job whose message would exceed `maxMessageBytes` keeps its bytes in `spill` and travels by reference.
// - `remove` cannot delete a message by id: it writes a removal marker the lease path checks (removal_markers.ts).
//   It answers true when the job was not marked yet: SQS cannot tell whether a message was still waiting.
// - `list` cannot peek into SQS: it answers what `listWaiting` knows (the composition passes job state's
//   PENDING entries), else nothing.
// - Undecodable messages are copied to the DLQ with the reason and deleted; polling goes on.
import { ChangeMessageVisibilityBatchCommand, DeleteMessageBatchCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { AppError } from "../../core/errors.js";
import { sqsQueueName } from "../../core/channel_config.js";
import type { JobQueue, JobState, Lease, QueuedJob } from "../../core/ports.js";
import { JobProcessingStatus, Priority } from "../../gen/jobworkerp/data/common_pb.js";
import { awsErrorName } from "./clients.js";
import { KeyedBatcher } from "./batcher.js";
import { missingQueue } from "./errors.js";
import { ensureQueueWithDlq } from "./provision.js";
import { RemovalMarkers } from "./removal_markers.js";
import { JOB_STATE_TABLE } from "./resources.js";
import { ChannelLeaser, type LeaserHost, type Received } from "./sqs_leaser.js";
import { decodeBody, encodeBody, jobBytes, toQueuedJob } from "./sqs_message.js";

/** Bytes of jobs too big for one message, by key (the composition backs it with the store). */
export interface SpillStore {
  put(key: string, bytes: Uint8Array): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  delete(key: string): Promise<void>;
}

export interface SqsJobQueueOptions {
  sqs: SQSClient;
  /** Removal markers live in the job-state table. */
  dynamo: DynamoDBClient;
  /** Resource name prefix (AWS_RESOURCE_PREFIX). */
  resourcePrefix: string;
  /** Job-state table name (default: from the prefix, resources.ts). */
  tableName?: string;
  /** Lease length (visibility timeout), rounded up to whole seconds. Default 30 s. */
  leaseMs?: number;
  /** Long-poll wait of an idle channel, 1..20 s. Default 20. */
  waitSeconds?: number;
  /** Largest message body sent as is (SQS: 256 KiB, or 1 MiB where raised). Default 256 KiB. */
  maxMessageBytes?: number;
  spill?: SpillStore;
  /** Delays beyond SQS's 15 minutes: e.g. store the job as a durable row for the clock. */
  longDelay?: (item: QueuedJob, delayMs: number) => Promise<void>;
  /** What `list` answers (FindQueueList); see pendingJobsFromState. */
  listWaiting?: (channel: string | undefined, limit: number) => Promise<QueuedJob[]>;
  /** Errors the queue survives (receive failures, malformed messages moved to the DLQ). Default: console.error. */
  onError?: (e: unknown, context: string) => void;
  /** Create a channel's queues (with DLQs) on first use instead of failing: tests and local runs. */
  createMissingQueues?: { maxReceiveCount: number };
  /**
   * Removal markers (default true): `remove` marks the job and leases drop its messages (one BatchGetItem per
   * received batch). false saves that call: `remove` answers false, so a deleted job is dropped by its claim
   * (job state says CANCELLING) and reported CANCELLED when a worker picks it up.
   */
  removalMarkers?: boolean;
}

interface LeaseMeta {
  url: string;
  handle: string;
  deadline: number;
  receivedAt: number;
  spillKey?: string;
}

/** SQS keeps a message invisible at most 12 h after it was received. */
const MAX_VISIBILITY_MS = 12 * 60 * 60 * 1000;
const MAX_DELAY_SECONDS = 900;
const DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024;
const ACK_LINGER_MS = 20;
/**
 * A delayed message becomes visible this much before its due time and is held until then: a long poll returns
 * it before it is due even where long polls notice delayed messages late (moto checks once a second).
 */
const EARLY_MS = 1000;
/** A message received longer than this before its due time is sent on (a delay longer than SQS's 15 minutes). */
const HOLD_LIMIT_MS = 2 * EARLY_MS;
const delaySeconds = (ms: number) => Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.floor((ms - EARLY_MS) / 1000)));

/** Queue index 0..2 → priority (strict order of delivery). */
const PRIORITY_ORDER = [Priority.HIGH, Priority.MEDIUM, Priority.LOW] as const;
const prioIndex = (p: Priority | undefined) => (p === Priority.HIGH ? 0 : p === Priority.LOW ? 2 : 1);

export class SqsJobQueue implements JobQueue {
  readonly leaseMs: number;
  readonly waitSeconds: number;
  private readonly sqs: SQSClient;
  private readonly prefix: string;
  private readonly maxMessageBytes: number;
  private readonly markers?: RemovalMarkers;
  private readonly urls = new Map<string, Promise<string>>();
  private readonly leasers = new Map<string, ChannelLeaser>();
  private readonly leases = new Map<string, LeaseMeta>();
  private readonly sends: KeyedBatcher<{ body: string; delaySeconds: number }, string | undefined>;
  private readonly deletes: KeyedBatcher<string, boolean>;
  private readonly visibility: KeyedBatcher<{ handle: string; seconds: number }, boolean>;
  private readonly host: LeaserHost;
  private closed = false;
  private readonly stopped = new AbortController();
  /** Calls nobody awaits (releases, deletes of dropped messages): close() waits for them. */
  private readonly background = new Set<Promise<unknown>>();
  private lastSweep = Date.now();

  constructor(private readonly opts: SqsJobQueueOptions) {
    this.sqs = opts.sqs;
    this.prefix = opts.resourcePrefix;
    this.leaseMs = opts.leaseMs ?? 30_000;
    this.waitSeconds = Math.min(20, Math.max(1, opts.waitSeconds ?? 20));
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    if (opts.removalMarkers ?? true) this.markers = new RemovalMarkers(opts.dynamo, opts.tableName ?? JOB_STATE_TABLE.name(opts.resourcePrefix));
    this.sends = new KeyedBatcher((url, xs) => this.sendBatch(url, xs), { maxEntries: 10, maxBytes: this.maxMessageBytes, sizeOf: (x) => Buffer.byteLength(x.body) });
    // acks are not awaited by the dispatcher: they wait a little for the acks of other loops (fewer calls)
    this.deletes = new KeyedBatcher((url, hs) => this.deleteBatch(url, hs), { maxEntries: 10, lingerMs: ACK_LINGER_MS });
    this.visibility = new KeyedBatcher((url, xs) => this.visibilityBatch(url, xs), { maxEntries: 10 });
    const self = this;
    this.host = {
      leaseMs: this.leaseMs,
      waitSeconds: this.waitSeconds,
      receive: (channel, prio, max, wait, signal) => self.receive(channel, prio, max, wait, signal),
      handOut: (r) => self.handOut(r),
      stillWanted: (r) => self.stillWanted(r),
      release: (rs) => self.release(rs),
      onError: (e, context) => self.onError(e, context),
    };
  }

  // ------------------------------------------------------------------ names and URLs

  private names(channel: string, prio: number) {
    const priority = PRIORITY_ORDER[prio];
    return { name: sqsQueueName(this.prefix, channel, priority), dlqName: sqsQueueName(this.prefix, channel, priority, true) };
  }

  private url(channel: string, prio: number, dlq = false): Promise<string> {
    const { name, dlqName } = this.names(channel, prio);
    const key = dlq ? dlqName : name;
    let p = this.urls.get(key);
    if (!p) {
      p = this.resolveUrl(key, dlq ? undefined : channel);
      this.urls.set(key, p);
      p.catch(() => this.urls.delete(key));
    }
    return p;
  }

  private async resolveUrl(name: string, channel?: string): Promise<string> {
    try {
      return (await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
    } catch (e) {
      if (!isMissingQueue(e)) throw e;
      const create = this.opts.createMissingQueues;
      if (channel !== undefined && create) {
        // the channel's three priorities at once: its other queues will be wanted in a moment
        await Promise.all([0, 1, 2].map((p) => ensureQueueWithDlq(this.sqs, { ...this.names(channel, p), maxReceiveCount: create.maxReceiveCount })));
        return (await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
      }
      throw missingQueue(name);
    }
  }

  /** A queue deleted after its URL was cached: forget the URL and say which queue is missing. */
  private rethrow(e: unknown, url: string): never {
    if (isMissingQueue(e)) {
      for (const [k, v] of this.urls) void v.then((u) => u === url && this.urls.delete(k), () => undefined);
      throw missingQueue(url.slice(url.lastIndexOf("/") + 1));
    }
    throw e;
  }

  private onError(e: unknown, context: string): void {
    if (this.opts.onError) this.opts.onError(e, context);
    else console.error(`sqs job queue: ${context}:`, e instanceof Error ? e.message : e);
  }

  // ------------------------------------------------------------------ push

  async push(item: QueuedJob, delayMs = 0): Promise<void> {
    if (this.closed) throw new AppError("UNAVAILABLE", "the job queue is closed");
    if (delayMs > MAX_DELAY_SECONDS * 1000 && this.opts.longDelay) return this.opts.longDelay(item, delayMs);
    const prio = prioIndex(item.job.data?.priority);
    const url = await this.url(item.channel, prio);
    const notBefore = delayMs > 0 ? Date.now() + delayMs : 0;
    const bytes = jobBytes(item);
    let body = encodeBody(item, notBefore, bytes);
    if (Buffer.byteLength(body) > this.maxMessageBytes) body = await this.spillBody(item, notBefore, bytes);
    const failure = await this.sends.call(url, { body, delaySeconds: delaySeconds(delayMs) });
    if (failure) throw new AppError("UNAVAILABLE", `SQS refused job ${item.job.id!.value}: ${failure}`);
  }

  private async spillBody(item: QueuedJob, notBefore: number, bytes: Uint8Array): Promise<string> {
    const id = item.job.id!.value;
    if (!this.opts.spill) {
      throw new AppError("INVALID_ARGUMENT", `job ${id} is ${bytes.length} bytes, too big for one SQS message (${this.maxMessageBytes} bytes) and no spill store is configured`);
    }
    const ref = `sqs-spill/${id}/${Date.now()}-${Math.random().toString(36).slice(2, 10)}`;
    await this.opts.spill.put(ref, bytes);
    return encodeBody(item, notBefore, { ref });
  }

  private async sendBatch(url: string, xs: { body: string; delaySeconds: number }[]): Promise<(string | undefined)[]> {
    let out;
    try {
      out = await this.sqs.send(
        new SendMessageBatchCommand({ QueueUrl: url, Entries: xs.map((x, i) => ({ Id: String(i), MessageBody: x.body, DelaySeconds: x.delaySeconds })) }),
      );
    } catch (e) {
      this.rethrow(e, url);
    }
    const failed = new Map((out.Failed ?? []).map((f) => [f.Id!, `${f.Code}: ${f.Message}`]));
    return xs.map((_, i) => failed.get(String(i)));
  }

  // ------------------------------------------------------------------ lease

  lease(channel: string, signal: AbortSignal): Promise<Lease | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    return this.leaser(channel).lease(signal);
  }

  private leaser(channel: string): ChannelLeaser {
    let l = this.leasers.get(channel);
    if (!l) this.leasers.set(channel, (l = new ChannelLeaser(this.host, channel)));
    return l;
  }

  /** Non-blocking: see ChannelLeaser.tryLease (messages already received, else short polls in priority order). */
  async tryLease(channel: string): Promise<Lease | undefined> {
    if (this.closed) return undefined;
    return this.leaser(channel).tryLease();
  }

  /**
   * Until a message arrives for one of the channels (tryLease leaves long polls on the queues it found empty), a
   * message held for its due time comes due, maxWaitMs passes or the signal aborts. Never leases.
   */
  async waitForWork(channels: string[], maxWaitMs: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.closed) return;
    const leasers = channels.map((c) => this.leaser(c));
    if (leasers.some((l) => l.hasReady())) return; // arrived since the caller's tryLease
    const due = Math.min(...leasers.map((l) => l.nextDue()));
    const ms = Math.max(0, Math.min(maxWaitMs, due - Date.now()));
    await new Promise<void>((resolve) => {
      const offs: (() => void)[] = [];
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        for (const off of offs) off();
        resolve();
      };
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      for (const l of leasers) offs.push(l.onArrival(done));
    });
  }

  private visibilitySeconds(ms: number): number {
    return Math.min(MAX_VISIBILITY_MS / 1000, Math.max(1, Math.ceil(ms / 1000)));
  }

  private async receive(channel: string, prio: number, max: number, waitSeconds: number, signal: AbortSignal): Promise<{ got: Received[]; raw: number }> {
    const url = await this.url(channel, prio);
    const seconds = this.visibilitySeconds(this.leaseMs);
    const started = Date.now();
    let out;
    try {
      out = await this.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: Math.min(10, Math.max(1, max)), WaitTimeSeconds: waitSeconds, VisibilityTimeout: seconds }),
        { abortSignal: signal },
      );
    } catch (e) {
      if (signal.aborted) return { got: [], raw: 0 };
      this.rethrow(e, url);
    }
    const messages = out.Messages ?? [];
    // the visibility started when SQS picked the messages: at the call for a short poll, just before the answer
    // for a long poll that waited (less a margin for the answer's way back)
    const visibleUntil = Math.max(started, Date.now() - 200) + seconds * 1000;
    const got = await Promise.all(messages.map((m) => this.accept(channel, prio, url, m.Body, m.ReceiptHandle!, started, visibleUntil)));
    // a dependency failed (job-state table, spill store): those messages come back after their visibility, and
    // the leaser backs off instead of receiving them again at once
    const failed = got.find((r): r is Error => r instanceof Error);
    if (failed && !got.some((r) => r !== undefined && !(r instanceof Error))) throw failed;
    if (failed) this.onError(failed, "receiving jobs");
    return { got: got.filter((r): r is Received => r !== undefined && !(r instanceof Error)), raw: messages.length };
  }

  /**
   * A received message as a leasable job; undefined when it was malformed, removed, or re-deferred; an Error
   * when it cannot be judged now (it stays invisible until its visibility ends).
   */
  private async accept(channel: string, prio: number, url: string, body: string | undefined, handle: string, receivedAt: number, visibleUntil: number): Promise<Received | Error | undefined> {
    const d = decodeBody(body);
    if (!d.ok) {
      await this.quarantine(channel, prio, url, body, handle, d.reason);
      return undefined;
    }
    try {
      if (this.markers && (await this.markers.isRemoved(d.jobId))) {
        this.drop(url, handle, d.ref);
        return undefined;
      }
    } catch (e) {
      // without the check the job could run after a Delete: leave the message for a later receive
      return e instanceof AppError ? e : new Error(`checking whether job ${d.jobId} was removed: ${(e as Error).message}`);
    }
    let bytes = d.jobBytes;
    if (d.ref) {
      try {
        bytes = await this.opts.spill?.get(d.ref);
      } catch (e) {
        return new Error(`loading the spilled bytes of job ${d.jobId}: ${(e as Error).message}`);
      }
      if (!bytes) {
        await this.quarantine(channel, prio, url, body, handle, `the spilled bytes '${d.ref}' of job ${d.jobId} are gone`);
        return undefined;
      }
    }
    let item: QueuedJob;
    try {
      item = toQueuedJob(d, bytes!);
    } catch (e) {
      await this.quarantine(channel, prio, url, body, handle, `job bytes do not decode: ${(e as Error).message}`);
      return undefined;
    }
    // still a while to go (a long delay hopping through the queue): send it on, due at its time
    if (d.notBefore - Date.now() > HOLD_LIMIT_MS) {
      const left = d.notBefore - Date.now();
      const failure = await this.sends.call(url, { body: body!, delaySeconds: delaySeconds(left) }).catch((e: unknown) => String(e));
      if (failure) {
        this.onError(new Error(failure), `re-deferring job ${d.jobId}`);
        this.release([{ url, handle }]);
      } else this.deletes.call(url, handle).catch((e: unknown) => this.onError(e, `deleting the re-deferred message of job ${d.jobId}`));
      return undefined;
    }
    // held until a due time past its visibility (short leases): keep it invisible until due + a lease
    if (d.notBefore > visibleUntil - 500) {
      const asked = Date.now();
      const seconds = this.visibilitySeconds(d.notBefore - asked + this.leaseMs);
      if (await this.visibility.call(url, { handle, seconds }).catch(() => false)) visibleUntil = asked + seconds * 1000;
    }
    return { lease: { item, token: handle }, url, handle, prio, visibleUntil, dueAt: d.notBefore, spillKey: d.ref, receivedAt };
  }

  private track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private drop(url: string, handle: string, spillKey: string | undefined): void {
    this.track(this.deletes.call(url, handle).then(
      async (ok) => {
        if (ok && spillKey) await this.opts.spill?.delete(spillKey).catch(() => undefined);
      },
      (e: unknown) => this.onError(e, "deleting the message of a removed job"),
    ));
  }

  /** A message that is not a job of ours: a copy with the reason goes to the DLQ, the original is deleted. */
  private async quarantine(channel: string, prio: number, url: string, body: string | undefined, handle: string, reason: string): Promise<void> {
    const { dlqName } = this.names(channel, prio);
    this.onError(new Error(`malformed message on ${url.slice(url.lastIndexOf("/") + 1)}: ${reason}; moved to ${dlqName}`), "receiving jobs");
    try {
      const dlq = await this.url(channel, prio, true);
      await this.sqs.send(
        new SendMessageCommand({
          QueueUrl: dlq,
          MessageBody: body || "(empty)",
          MessageAttributes: { jobworkerp_error: { DataType: "String", StringValue: reason.slice(0, 1000) } },
        }),
      );
      await this.deletes.call(url, handle);
    } catch (e) {
      // left in place: redrive moves it to the DLQ after maxReceiveCount deliveries
      this.onError(e, `moving a malformed message to ${dlqName}`);
    }
  }

  private async stillWanted(r: Received): Promise<boolean> {
    if (!this.markers) return true;
    try {
      if (!(await this.markers.isRemoved(r.lease.item.job.id!.value))) return true;
    } catch (e) {
      this.onError(e, `checking whether held job ${r.lease.item.job.id!.value} was removed`);
      return true;
    }
    this.drop(r.url, r.handle, r.spillKey);
    return false;
  }

  private handOut(r: Received): Lease | undefined {
    const now = Date.now();
    if (r.visibleUntil - now < 50) return undefined;
    const meta: LeaseMeta = { url: r.url, handle: r.handle, deadline: r.visibleUntil, receivedAt: r.receivedAt, spillKey: r.spillKey };
    this.sweepLeases(now);
    this.leases.set(r.handle, meta);
    // held for its due time a good part of the lease: renew before the dispatcher's first heartbeat would
    if (r.visibleUntil - now < (this.leaseMs * 2) / 3) {
      void this.extend(r.lease, this.leaseMs).catch((e: unknown) => this.onError(e, "renewing a held lease"));
    }
    return r.lease;
  }

  /** Leases nobody acked (a dispatcher error path) are forgotten a minute after their deadline. */
  private sweepLeases(now: number): void {
    if (now - this.lastSweep < 60_000) return;
    this.lastSweep = now;
    for (const [token, m] of this.leases) if (m.deadline < now - 60_000) this.leases.delete(token);
  }

  private release(rs: Pick<Received, "url" | "handle">[]): void {
    for (const r of rs) {
      this.track(this.visibility.call(r.url, { handle: r.handle, seconds: 0 }).catch((e: unknown) => this.onError(e, "releasing a message")));
    }
  }

  // ------------------------------------------------------------------ ack / extend / requeue

  private current(lease: Lease): LeaseMeta | undefined {
    const m = this.leases.get(lease.token);
    if (m && m.deadline <= Date.now()) {
      this.leases.delete(lease.token);
      return undefined;
    }
    return m;
  }

  async ack(lease: Lease): Promise<boolean> {
    const m = this.leases.get(lease.token);
    if (!m) return false;
    this.leases.delete(lease.token);
    // past its deadline the message may be delivered elsewhere; deleting is still right if nobody took it
    // (SQS ignores a stale receipt handle), but the lease is reported lost
    const held = m.deadline > Date.now();
    let ok: boolean;
    try {
      ok = await this.deletes.call(m.url, m.handle);
    } catch (e) {
      this.rethrow(e, m.url);
    }
    if (ok && m.spillKey) await this.opts.spill?.delete(m.spillKey).catch((e: unknown) => this.onError(e, "deleting spilled job bytes"));
    return ok && held;
  }

  async extend(lease: Lease, ms: number): Promise<boolean> {
    const m = this.current(lease);
    if (!m) return false;
    const now = Date.now();
    const room = m.receivedAt + MAX_VISIBILITY_MS - 60_000 - now;
    if (room <= 1000) return false; // SQS's 12 h cap: the job will be delivered again
    const seconds = Math.min(this.visibilitySeconds(ms), Math.floor(room / 1000));
    let ok: boolean;
    try {
      ok = await this.visibility.call(m.url, { handle: m.handle, seconds });
    } catch (e) {
      this.rethrow(e, m.url);
    }
    if (!ok) {
      this.leases.delete(lease.token);
      return false;
    }
    m.deadline = now + seconds * 1000; // the new visibility counts from now, also when shorter
    return true;
  }

  async requeue(lease: Lease, item: QueuedJob, delayMs: number): Promise<boolean> {
    if (!this.current(lease)) return false;
    await this.push(item, delayMs);
    return this.ack(lease);
  }

  private async deleteBatch(url: string, handles: string[]): Promise<boolean[]> {
    const out = await this.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })) }));
    const failed = new Set((out.Failed ?? []).map((f) => f.Id));
    return handles.map((_, i) => !failed.has(String(i)));
  }

  private async visibilityBatch(url: string, xs: { handle: string; seconds: number }[]): Promise<boolean[]> {
    const out = await this.sqs.send(
      new ChangeMessageVisibilityBatchCommand({ QueueUrl: url, Entries: xs.map((x, i) => ({ Id: String(i), ReceiptHandle: x.handle, VisibilityTimeout: x.seconds })) }),
    );
    const failed = new Set((out.Failed ?? []).map((f) => f.Id));
    return xs.map((_, i) => !failed.has(String(i)));
  }

  // ------------------------------------------------------------------ remove / list / close

  async remove(jobId: bigint): Promise<boolean> {
    return this.markers ? this.markers.mark(jobId) : false;
  }

  async list(channel: string | undefined, limit: number): Promise<QueuedJob[]> {
    return this.opts.listWaiting ? this.opts.listWaiting(channel, limit) : [];
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopped.abort();
    for (const l of this.leasers.values()) l.close();
    this.leasers.clear();
    // the releases of held messages and other calls in flight go out before the clients may be destroyed
    await new Promise((r) => setImmediate(r));
    await Promise.race([Promise.allSettled([...this.background]), new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

function isMissingQueue(e: unknown): boolean {
  const n = awsErrorName(e);
  return n === "QueueDoesNotExist" || n === "AWS.SimpleQueueService.NonExistentQueue";
}

/**
 * `list` for FindQueueList from job state: the PENDING entries of the channel (jobs waiting in SQS, and durable
 * jobs waiting for their time), by job id.
 */
export function pendingJobsFromState(state: JobState): (channel: string | undefined, limit: number) => Promise<QueuedJob[]> {
  return async (channel, limit) =>
    (await state.findAll({ status: JobProcessingStatus.PENDING, channel, limit })).map((e) => ({ job: e.job, channel: e.channel }));
}
