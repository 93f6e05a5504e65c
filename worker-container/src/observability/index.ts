// What the core calls: each helper is a no-op (no allocation) unless tracing or metrics are enabled by setup.ts.
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import type { Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { metricsEnabled, recordEnqueued } from "./metrics.js";
import { traceIdOf } from "./trace_context.js";
import type { EnqueueSpan } from "./tracing.js";

export { recordResult, recordRun } from "./metrics.js";
export { JobSpans, startEnqueueSpan, startJobSpans } from "./tracing.js";

/** Ends the enqueue span and counts the job once `p` settles; `p` itself when neither is enabled. */
export function observeEnqueue<T extends { job: Job; worker: Worker }>(p: Promise<T>, span: EnqueueSpan | undefined): Promise<T> {
  const counted = metricsEnabled()
    ? p.then((out) => {
        recordEnqueued(out.worker);
        return out;
      })
    : p;
  return span ? span.around(counted) : counted;
}

/** Fields of a job-related log line: job id, worker id, channel and trace id (from the job's metadata). */
export function jobLogFields(job: Job | undefined, channel?: string): Record<string, string | undefined> {
  return {
    job_id: job?.id?.value.toString(),
    worker_id: job?.data?.workerId?.value.toString(),
    channel,
    trace_id: traceIdOf(job?.metadata),
  };
}
