// Finishing a job: build its JobResult, store it per store_success/store_failure, publish it for DIRECT
// waiters, listeners and streams, then release its state, uniq_key and durable row.
import { create } from "@bufbuild/protobuf";
import { ResponseType, ResultStatus, type RetryPolicy } from "../gen/jobworkerp/data/common_pb.js";
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import { JobResultSchema, type JobResult } from "../gen/jobworkerp/data/job_result_pb.js";
import { DedupMode, type Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { contentKey } from "./dedup.js";
import type { SnowflakeGenerator } from "./ids.js";
import { recordResult } from "../observability/index.js";
import type { Claim, JobState, ResultBus, Store } from "./ports.js";

/** A job's settings after applying its per-job overrides to the worker's defaults. */
export interface Effective {
  responseType: ResponseType;
  storeSuccess: boolean;
  storeFailure: boolean;
  broadcastResults: boolean;
  retryPolicy: RetryPolicy | undefined;
}

export function effective(job: Job, worker: Worker): Effective {
  const o = job.data!.overrides;
  const w = worker.data!;
  return {
    responseType: o?.responseType ?? w.responseType,
    storeSuccess: o?.storeSuccess ?? w.storeSuccess,
    storeFailure: o?.storeFailure ?? w.storeFailure,
    broadcastResults: o?.broadcastResults ?? w.broadcastResults,
    retryPolicy: o?.retryPolicy ?? w.retryPolicy,
  };
}

function wantsStored(status: ResultStatus, e: Effective): boolean {
  return status === ResultStatus.SUCCESS ? e.storeSuccess : e.storeFailure;
}

export interface Timing {
  startTime: bigint;
  endTime: bigint;
}

export class JobOutcomes {
  constructor(
    private readonly store: Store,
    private readonly state: JobState,
    private readonly bus: ResultBus,
    private readonly ids: SnowflakeGenerator,
    private readonly keepResultMs: number,
  ) {}

  build(job: Job, worker: Worker, status: ResultStatus, output: Uint8Array, t: Timing): JobResult {
    const d = job.data!;
    const e = effective(job, worker);
    return create(JobResultSchema, {
      id: { value: this.ids.next() },
      data: {
        jobId: job.id,
        workerId: d.workerId,
        workerName: worker.data!.name,
        args: d.args,
        uniqKey: d.uniqKey,
        status,
        output: { items: output },
        retried: d.retried,
        maxRetry: e.retryPolicy?.maxRetry ?? 0,
        priority: d.priority,
        timeout: d.timeout,
        enqueueTime: d.enqueueTime,
        runAfterTime: d.runAfterTime,
        startTime: t.startTime,
        endTime: t.endTime,
        responseType: e.responseType,
        storeSuccess: e.storeSuccess,
        storeFailure: e.storeFailure,
        using: d.using,
        streamingType: d.streamingType,
        broadcastResults: e.broadcastResults,
        resolvedRetryPolicy: e.retryPolicy,
      },
      metadata: job.metadata,
    });
  }

  /**
   * A job whose worker was deleted while it waited: nothing can run it. Its waiters (DIRECT, Listen, streams)
   * get a FATAL_ERROR result instead of waiting out the job's timeout.
   */
  async orphaned(job: Job): Promise<JobResult> {
    const id = job.id!.value;
    const d = job.data!;
    await this.state.remove(id);
    if (d.uniqKey) await this.state.releaseUniqKey(d.workerId!.value, d.uniqKey, id);
    // the deleted worker may have deduplicated: free the content key (a no-op when this job does not hold it)
    await this.state.releaseUniqKey(d.workerId!.value, contentKey(job), id);
    const now = BigInt(Date.now());
    const result = create(JobResultSchema, {
      id: { value: this.ids.next() },
      data: {
        jobId: job.id, workerId: d.workerId, args: d.args, uniqKey: d.uniqKey, status: ResultStatus.FATAL_ERROR,
        output: { items: new TextEncoder().encode(`worker ${d.workerId!.value} was deleted before the job ran`) },
        retried: d.retried, priority: d.priority, timeout: d.timeout, enqueueTime: d.enqueueTime,
        runAfterTime: d.runAfterTime, startTime: now, endTime: now, using: d.using, streamingType: d.streamingType,
      },
      metadata: job.metadata,
    });
    await this.bus.publishResult(result, { broadcast: false, keepMs: 5_000 });
    return result;
  }

  /** Store the result when the worker asks for it (intermediate retry results count as failures). */
  async storeIfWanted(result: JobResult, e: Effective): Promise<void> {
    if (wantsStored(result.data!.status, e)) await this.store.insertResult(result);
  }

  /**
   * Final outcome of a job. `claim` is the worker's fencing token; without one (a pending job cancelled
   * by Delete) the status is removed unconditionally. Returns false when the claim was stale: a newer
   * attempt owns the job, so this result is dropped.
   */
  async finish(
    job: Job,
    worker: Worker,
    status: ResultStatus,
    /** Builds the result; only called when it is stored or published (most NO_RESULT jobs need neither). */
    makeResult: () => JobResult,
    claim: Claim | undefined,
    /** storeAlways: store the result whatever store_success/store_failure say (a job lost to the DLQ). */
    where: { durable: boolean; periodic: boolean; storeAlways?: boolean },
  ): Promise<boolean> {
    const id = job.id!.value;
    const d = job.data!;
    if (claim) {
      if (!(await this.state.finish(id, claim))) return false;
    } else await this.state.remove(id);
    recordResult(worker, status);
    const e = effective(job, worker);
    const dedup = worker.data!.dedup ?? DedupMode.NONE;
    // COALESCE: DIRECT callers coalesced onto this job wait for its result, whatever this job's own response type
    const keep = e.broadcastResults || e.responseType === ResponseType.DIRECT || d.streamingType !== 0 || dedup === DedupMode.COALESCE;
    const result = keep || where.storeAlways || wantsStored(status, e) ? makeResult() : undefined;
    if (result) await (where.storeAlways ? this.store.insertResult(result) : this.storeIfWanted(result, e));
    if (d.uniqKey) await this.state.releaseUniqKey(d.workerId!.value, d.uniqKey, id);
    if (dedup !== DedupMode.NONE) await this.state.releaseUniqKey(d.workerId!.value, contentKey(job), id);
    // a periodic job's row stays: the clock re-arms it
    if (where.durable && !where.periodic) await this.store.deleteJob(id);
    if (result && keep) {
      await this.bus.publishResult(result, {
        broadcast: e.broadcastResults,
        // late Listen callers find broadcast results for a while; DIRECT/stream waiters subscribe first
        keepMs: e.broadcastResults ? this.keepResultMs : 5_000,
      });
    }
    return true;
  }
}
