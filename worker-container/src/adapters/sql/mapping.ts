// Rows <-> protobuf messages. Driver values are normalized here (see schema.ts for why they vary).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RetryPolicySchema, type RetryPolicy } from "../../gen/jobworkerp/data/common_pb.js";
import { JobExecutionOverridesSchema, JobSchema, type Job } from "../../gen/jobworkerp/data/job_pb.js";
import { JobResultSchema, type JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { WorkerSchema, type Worker, type WorkerData } from "../../gen/jobworkerp/data/worker_pb.js";
import type { RunnerRow } from "../../core/ports.js";
import type { Insertable, Selectable } from "kysely";
import type { JobResultTable, JobTable, RunnerTable, WorkerTable } from "./schema.js";

type Raw = bigint | number | string | boolean | null | undefined;

export const big = (v: Raw): bigint => (typeof v === "bigint" ? v : BigInt(v ?? 0));
export const num = (v: Raw): number => Number(v ?? 0);
const bool = (v: Raw): boolean => v === true || v === 1 || v === 1n || v === "1" || v === "t" || v === "true";
const optBig = (v: Raw): bigint | undefined => (v === null || v === undefined ? undefined : big(v));
const optStr = (v: string | null): string | undefined => v ?? undefined;

/** Plain Uint8Array of a driver blob: libsql hands out a fresh ArrayBuffer; Buffers (mysql2, pg) are copied. */
export function bytes(v: ArrayBuffer | Uint8Array | null | undefined): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(0);
  return new Uint8Array(v);
}

const metaToText = (m: { [k: string]: string }): string | null => (Object.keys(m).length ? JSON.stringify(m) : null);
const metaFromText = (s: string | null): { [k: string]: string } => (s ? (JSON.parse(s) as { [k: string]: string }) : {});

// ------------------------------------------------------------------ worker

export function workerValues(d: WorkerData): Omit<Insertable<WorkerTable>, "id" | "created_at"> {
  const rp = d.retryPolicy;
  return {
    name: d.name,
    description: d.description,
    runner_id: d.runnerId?.value ?? 0n,
    runner_settings: d.runnerSettings,
    retry_type: rp ? rp.type : null,
    retry_interval: rp ? rp.interval : null,
    retry_max_interval: rp ? rp.maxInterval : null,
    retry_max_retry: rp ? rp.maxRetry : null,
    retry_basis: rp ? rp.basis : null,
    periodic_interval: d.periodicInterval,
    channel: d.channel ?? null,
    queue_type: d.queueType,
    response_type: d.responseType,
    store_success: d.storeSuccess,
    store_failure: d.storeFailure,
    use_static: d.useStatic,
    broadcast_results: d.broadcastResults,
    dedup: d.dedup,
  };
}

export function rowToWorker(r: Selectable<WorkerTable>): Worker {
  return create(WorkerSchema, {
    id: { value: big(r.id) },
    data: {
      name: r.name,
      description: r.description,
      runnerId: { value: big(r.runner_id) },
      runnerSettings: bytes(r.runner_settings),
      retryPolicy:
        r.retry_type === null
          ? undefined
          : {
              type: num(r.retry_type),
              interval: num(r.retry_interval),
              maxInterval: num(r.retry_max_interval),
              maxRetry: num(r.retry_max_retry),
              basis: num(r.retry_basis),
            },
      periodicInterval: num(r.periodic_interval),
      channel: optStr(r.channel),
      queueType: num(r.queue_type),
      responseType: num(r.response_type),
      storeSuccess: bool(r.store_success),
      storeFailure: bool(r.store_failure),
      useStatic: bool(r.use_static),
      broadcastResults: bool(r.broadcast_results),
      dedup: num(r.dedup),
    },
  });
}

// ------------------------------------------------------------------ runner

export const runnerValues = (r: RunnerRow): Insertable<RunnerTable> => ({
  id: r.id,
  name: r.name,
  description: r.description,
  definition: r.definition,
  type: r.runnerType,
  created_at: BigInt(Math.trunc(r.createdAt)),
});

export const rowToRunner = (r: Selectable<RunnerTable>): RunnerRow => ({
  id: big(r.id),
  name: r.name,
  description: r.description,
  runnerType: num(r.type),
  definition: r.definition,
  createdAt: num(r.created_at),
});

// ------------------------------------------------------------------ job

export function jobValues(job: Job): Insertable<JobTable> {
  const d = job.data;
  return {
    id: job.id?.value ?? 0n,
    worker_id: d?.workerId?.value ?? 0n,
    args: d?.args ?? new Uint8Array(0),
    uniq_key: d?.uniqKey ?? null,
    enqueue_time: d?.enqueueTime ?? 0n,
    grabbed_until_time: d?.grabbedUntilTime ?? null,
    run_after_time: d?.runAfterTime ?? 0n,
    retried: d?.retried ?? 0,
    priority: d?.priority ?? 0,
    timeout: d?.timeout ?? 0n,
    streaming_type: d?.streamingType ?? 0,
    using: d?.using ?? null,
    overrides: d?.overrides ? toBinary(JobExecutionOverridesSchema, d.overrides) : null,
    metadata: metaToText(job.metadata),
  };
}

export function rowToJob(r: Selectable<JobTable>): Job {
  return create(JobSchema, {
    id: { value: big(r.id) },
    data: {
      workerId: { value: big(r.worker_id) },
      args: bytes(r.args),
      uniqKey: optStr(r.uniq_key),
      enqueueTime: big(r.enqueue_time),
      grabbedUntilTime: optBig(r.grabbed_until_time),
      runAfterTime: big(r.run_after_time),
      retried: num(r.retried),
      priority: num(r.priority),
      timeout: big(r.timeout),
      using: optStr(r.using),
      streamingType: num(r.streaming_type),
      overrides: r.overrides === null ? undefined : fromBinary(JobExecutionOverridesSchema, bytes(r.overrides)),
    },
    metadata: metaFromText(r.metadata),
  });
}

// ------------------------------------------------------------------ job result

export function resultValues(res: JobResult): Insertable<JobResultTable> {
  const d = res.data;
  const rp: RetryPolicy | undefined = d?.resolvedRetryPolicy;
  return {
    id: res.id?.value ?? 0n,
    job_id: d?.jobId?.value ?? 0n,
    worker_id: d?.workerId?.value ?? 0n,
    worker_name: d?.workerName ?? "",
    args: d?.args ?? new Uint8Array(0),
    uniq_key: d?.uniqKey ?? null,
    status: d?.status ?? 0,
    output: d?.output ? d.output.items : null,
    retried: d?.retried ?? 0,
    max_retry: d?.maxRetry ?? 0,
    priority: d?.priority ?? 0,
    timeout: d?.timeout ?? 0n,
    enqueue_time: d?.enqueueTime ?? 0n,
    run_after_time: d?.runAfterTime ?? 0n,
    start_time: d?.startTime ?? 0n,
    end_time: d?.endTime ?? 0n,
    response_type: d?.responseType ?? 0,
    store_success: d?.storeSuccess ?? false,
    store_failure: d?.storeFailure ?? false,
    using: d?.using ?? null,
    streaming_type: d?.streamingType ?? 0,
    broadcast_results: d?.broadcastResults ?? false,
    resolved_retry_policy: rp ? toBinary(RetryPolicySchema, rp) : null,
    metadata: metaToText(res.metadata),
  };
}

export function rowToResult(r: Selectable<JobResultTable>): JobResult {
  return create(JobResultSchema, {
    id: { value: big(r.id) },
    data: {
      jobId: { value: big(r.job_id) },
      workerId: { value: big(r.worker_id) },
      workerName: r.worker_name,
      args: bytes(r.args),
      uniqKey: optStr(r.uniq_key),
      status: num(r.status),
      output: r.output === null ? undefined : { items: bytes(r.output) },
      retried: num(r.retried),
      maxRetry: num(r.max_retry),
      priority: num(r.priority),
      timeout: big(r.timeout),
      enqueueTime: big(r.enqueue_time),
      runAfterTime: big(r.run_after_time),
      startTime: big(r.start_time),
      endTime: big(r.end_time),
      responseType: num(r.response_type),
      storeSuccess: bool(r.store_success),
      storeFailure: bool(r.store_failure),
      using: optStr(r.using),
      streamingType: num(r.streaming_type),
      broadcastResults: bool(r.broadcast_results),
      resolvedRetryPolicy:
        r.resolved_retry_policy === null ? undefined : fromBinary(RetryPolicySchema, bytes(r.resolved_retry_policy)),
    },
    metadata: metaFromText(r.metadata),
  });
}
