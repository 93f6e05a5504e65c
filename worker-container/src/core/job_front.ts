// The front side of jobs: validate and enqueue (NO_RESULT, DIRECT, streaming), cancel/delete.
import { clone, create } from "@bufbuild/protobuf";
import {
  JobProcessingStatus,
  PrioritySchema,
  QueueType,
  ResponseType,
  ResponseTypeSchema,
  ResultStatus,
  RetryTypeSchema,
  StreamingType,
  type ResultOutputItem,
} from "../gen/jobworkerp/data/common_pb.js";
import { JobSchema, type Job } from "../gen/jobworkerp/data/job_pb.js";
import type { JobResult } from "../gen/jobworkerp/data/job_result_pb.js";
import { DedupMode, type Worker } from "../gen/jobworkerp/data/worker_pb.js";
import type { JobRequest } from "../gen/jobworkerp/service/job_pb.js";
import { observeEnqueue, startEnqueueSpan } from "../observability/index.js";
import { contentKey, reserveContent } from "./dedup.js";
import { AppError, alreadyExists, invalid, notFound } from "./errors.js";
import { effective } from "./outcomes.js";
import type { JobStatusEntry } from "./ports.js";
import { totalRetryDelay } from "./retry.js";
import { canStream, resolveMethod } from "./runners.js";
import { checkEnum, decodeOrInvalid } from "./validate.js";
import type { System } from "./system.js";
import { channelOf } from "./workers.js";

/** jobworkerp's default job timeout when the request gives none: one year. */
export const DEFAULT_TIMEOUT_MS = 1000n * 60n * 60n * 24n * 365n;
const MAX_INT64 = (1n << 63n) - 1n;

export type EnqueueMode = "unary" | "stream";

export interface Enqueued {
  job: Job;
  worker: Worker;
  /** DIRECT (unary) or stream: resolves with the final result, undefined on timeout/abort. */
  result?: Promise<JobResult | undefined>;
  /** stream mode: the job's chunks, ending with an `end` item. */
  chunks?: AsyncIterable<ResultOutputItem>;
  /** Dedup COALESCE: `job` is the pending or running job with the same content; nothing new was queued. */
  coalesced?: boolean;
}

export function statusEntry(job: Job, worker: Worker, now: bigint): JobStatusEntry {
  const d = job.data!;
  return {
    jobId: job.id!.value,
    status: JobProcessingStatus.PENDING,
    workerId: d.workerId!.value,
    channel: channelOf(worker.data!),
    priority: d.priority,
    enqueueTime: d.enqueueTime,
    pendingTime: now,
    isStreamable: d.streamingType !== StreamingType.NONE,
    broadcastResults: effective(job, worker).broadcastResults,
    updatedAt: now,
    job,
  };
}

/** Optional observers of the front (AWS: the scale-from-zero nudge). They must not throw or block. */
export interface JobFrontHooks {
  /** A job was pushed to the queue of `channel` (jobs the clock queues are reported by the Clock's onQueued). */
  onJobQueued?(channel: string): void;
}

export class JobFront {
  constructor(
    private readonly deps: Pick<System, "store" | "queue" | "state" | "bus" | "workers" | "runners" | "outcomes" | "ids" | "clock">,
    private readonly hooks: JobFrontHooks = {},
  ) {}

  /** A dynamic runner (e.g. an MCP server) not loaded in this process yet. */
  private async findDynamic(runnerId: bigint, workerName: string) {
    try {
      return await this.deps.runners.find(runnerId);
    } catch (e) {
      throw new AppError("FAILED_PRECONDITION", `runner ${runnerId} of worker '${workerName}' is not available: ${(e as Error).message}`);
    }
  }

  /** Validate a request into a Job (no side effects). */
  async prepare(req: JobRequest, metadata: Record<string, string>, mode: EnqueueMode): Promise<{ job: Job; worker: Worker }> {
    const worker = await this.deps.workers.resolve(req.worker);
    const w = worker.data!;
    const def = this.deps.runners.get(w.runnerId!.value) ?? (await this.findDynamic(w.runnerId!.value, w.name));
    if (!def) throw new AppError("FAILED_PRECONDITION", `runner ${w.runnerId!.value} of worker '${w.name}' is not available`);
    const [using, method] = resolveMethod(def, req.using);
    if (!(method.acceptsJsonArgs && isJsonObjectText(req.args))) decodeOrInvalid(method.argsSchema, req.args, "args");
    if (method.requireClientStream) throw invalid(`method '${using}' of ${def.name} needs EnqueueWithClientStream`);

    const priority = req.priority ?? 0;
    checkEnum(PrioritySchema, priority, "priority");
    const runAfter = req.runAfterTime ?? 0n;
    if (runAfter < 0n) throw invalid("run_after_time must be >= 0 (unix milliseconds)");
    if (req.timeout !== undefined && req.timeout > MAX_INT64) throw invalid("timeout is too large");
    const o = req.overrides;
    if (o?.responseType !== undefined) checkEnum(ResponseTypeSchema, o.responseType, "overrides.response_type");
    if (o?.retryPolicy) checkEnum(RetryTypeSchema, o.retryPolicy.type, "overrides.retry_policy.type");
    // the stores keep uniq_key in varchar(255) columns (jobs and results)
    if (req.uniqKey !== undefined && req.uniqKey.length > 255) throw invalid("uniq_key is longer than 255 characters");

    const responseType = o?.responseType ?? w.responseType;
    const periodic = w.periodicInterval > 0;
    if (responseType === ResponseType.DIRECT && runAfter > 0n) throw invalid("run_after_time cannot be used with a DIRECT response");
    if (responseType === ResponseType.DIRECT && periodic) throw invalid("a periodic worker cannot answer DIRECT");
    if (mode === "stream" && !canStream(method)) throw invalid(`method '${using}' of ${def.name} does not stream its output`);
    if (mode === "stream" && periodic) throw invalid("a periodic worker cannot be enqueued for a stream");

    const now = BigInt(Date.now());
    const job = create(JobSchema, {
      id: { value: this.deps.ids.next() },
      data: {
        workerId: worker.id,
        args: req.args,
        uniqKey: req.uniqKey,
        enqueueTime: now,
        runAfterTime: runAfter === 0n && (periodic || w.queueType === QueueType.DB_ONLY) ? now : runAfter,
        retried: 0,
        priority,
        timeout: req.timeout ?? DEFAULT_TIMEOUT_MS,
        // a deduplicating worker keys on the method actually run, so `using` omitted and named alike are one content
        using: w.dedup !== DedupMode.NONE ? using : req.using,
        streamingType: mode === "stream" ? StreamingType.RESPONSE : StreamingType.NONE,
        overrides: o,
      },
      metadata,
    });
    return { job, worker };
  }

  enqueue(req: JobRequest, metadata: Record<string, string>, mode: EnqueueMode, signal: AbortSignal): Promise<Enqueued> {
    // tracing (when enabled): the job carries the enqueue span as the parent of its run
    const span = startEnqueueSpan(metadata);
    return observeEnqueue(this.enqueueJob(req, span?.metadata ?? metadata, mode, signal), span);
  }

  private async enqueueJob(req: JobRequest, metadata: Record<string, string>, mode: EnqueueMode, signal: AbortSignal): Promise<Enqueued> {
    const { job, worker } = await this.prepare(req, metadata, mode);
    const { store, queue, state, bus, clock } = this.deps;
    const d = job.data!;
    const w = worker.data!;
    const id = job.id!.value;
    const now = BigInt(Date.now());
    const e = effective(job, worker);
    const live = e.responseType === ResponseType.DIRECT || mode === "stream";
    const durable = !live && (w.periodicInterval > 0 || d.runAfterTime > now || w.queueType !== QueueType.NORMAL);

    if (d.uniqKey !== undefined && !(await state.reserveUniqKey(d.workerId!.value, d.uniqKey, id))) {
      throw alreadyExists(`a job with uniq_key '${d.uniqKey}' is already queued for worker '${w.name}'`);
    }
    const dedupKey = w.dedup !== DedupMode.NONE && w.periodicInterval === 0 ? contentKey(job) : undefined;
    const waitMs = Number(d.timeout) * ((e.retryPolicy?.maxRetry ?? 0) + 1) + totalRetryDelay(e.retryPolicy) + 1000;
    const resultWaitMs = Number.isFinite(waitMs) ? waitMs : Number.MAX_SAFE_INTEGER;
    if (dedupKey !== undefined) {
      const existing = await this.reserveContent(job, worker, dedupKey, now);
      if (existing) {
        const holder = existing.jobId;
        if (w.dedup === DedupMode.COALESCE && mode !== "stream") {
          return { job: existing.job, worker, coalesced: true, result: live ? bus.waitResult(holder, resultWaitMs, signal) : undefined };
        }
        throw alreadyExists(
          `job ${holder} with the same arguments is already pending or running for worker '${w.name}' (dedup)` +
            (mode === "stream" ? "; a stream cannot join it midway: use ListenStream on that job" : ""),
        );
      }
    }
    const out: Enqueued = { job, worker };
    // Subscribe before the job can run, so no chunk or result is missed.
    if (live) {
      out.result = bus.waitResult(id, resultWaitMs, signal);
      if (mode === "stream") out.chunks = bus.subscribeChunks(id, signal);
    }
    try {
      if (durable) {
        await store.insertJob(job);
        if (dedupKey === undefined) await state.setPending(statusEntry(job, worker, now)); // else recorded already
        // due soon: queue it now with its exact delay (DB_ONLY jobs wait for the clock's poll, by definition)
        if (w.queueType !== QueueType.DB_ONLY) await clock.dispatchIfDue(job, true);
        clock.wake(); // the leading clock looks ahead (e.g. the next occurrences of a fast periodic job)
      } else {
        if (dedupKey === undefined) await state.setPending(statusEntry(job, worker, now));
        await queue.push({ job, channel: channelOf(w) });
        this.hooks.onJobQueued?.(channelOf(w));
      }
    } catch (err) {
      // the caller is told the enqueue failed: its row must not run later (first: the cleanups below may fail alike)
      if (durable) await store.deleteJob(id).catch(() => undefined);
      if (d.uniqKey !== undefined) await state.releaseUniqKey(d.workerId!.value, d.uniqKey, id);
      if (dedupKey !== undefined) await state.releaseUniqKey(d.workerId!.value, dedupKey, id);
      await state.remove(id);
      throw err;
    }
    return out;
  }

  /**
   * Dedup: record the job PENDING, then reserve its content key (the order lets a holder without an entry count as
   * gone). Returns the entry of the job holding the key, after undoing this job's uniq_key and entry.
   */
  private async reserveContent(job: Job, worker: Worker, key: string, now: bigint): Promise<JobStatusEntry | undefined> {
    const { state } = this.deps;
    const d = job.data!;
    const id = job.id!.value;
    let existing: JobStatusEntry | undefined;
    try {
      await state.setPending(statusEntry(job, worker, now));
      existing = await reserveContent(state, d.workerId!.value, key, id);
    } catch (err) {
      await this.undoReservation(job);
      throw err;
    }
    if (existing) await this.undoReservation(job);
    return existing;
  }

  private async undoReservation(job: Job): Promise<void> {
    const d = job.data!;
    const id = job.id!.value;
    if (d.uniqKey !== undefined) await this.deps.state.releaseUniqKey(d.workerId!.value, d.uniqKey, id);
    await this.deps.state.remove(id);
  }

  /** Cancel a pending or running job, or stop a scheduled/periodic one. */
  async delete(id: bigint): Promise<boolean> {
    const { store, queue, state, bus, workers, outcomes } = this.deps;
    const entry = await state.find(id);
    const row = await store.findJob(id);
    if (!entry && !row) throw notFound(`job ${id} not found (it may have finished already)`);
    if (row) await store.deleteJob(id);
    const removed = await queue.remove(id);
    const before = await state.requestCancel(id);
    if (before === JobProcessingStatus.RUNNING || before === JobProcessingStatus.WAIT_RESULT) {
      await bus.publishCancel(id); // the running worker aborts and reports CANCELLED
      return true;
    }
    if (before === JobProcessingStatus.PENDING && !removed && !row) return true; // leased right now: its claim sees CANCELLING
    // Never going to run: report it CANCELLED so DIRECT waiters and listeners are released.
    const job = entry?.job ?? row!;
    const worker = await workers.find(job.data!.workerId!.value);
    if (worker) {
      const t = BigInt(Date.now());
      const result = () => outcomes.build(job, worker, ResultStatus.CANCELLED, new TextEncoder().encode("job cancelled"), { startTime: t, endTime: t });
      await outcomes.finish(job, worker, ResultStatus.CANCELLED, result, undefined, { durable: false, periodic: false });
    } else await state.remove(id);
    return true;
  }

  /** A job by id: queued/running (from job state) or durable (from the store). */
  async find(id: bigint): Promise<Job | undefined> {
    return (await this.deps.state.find(id))?.job ?? (await this.deps.store.findJob(id));
  }
}

/** UTF-8 JSON object text (accepted as args by runners with acceptsJsonArgs; a proto3 message never starts with '{'). */
function isJsonObjectText(b: Uint8Array): boolean {
  if (b.length === 0 || b[0] !== 0x7b) return false;
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b)) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

export const cloneJob = (job: Job) => clone(JobSchema, job);
