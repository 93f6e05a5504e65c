// Job spans: `jobworkerp.enqueue` on the front, then on the worker that runs the job `jobworkerp.queue` (the wait),
// `jobworkerp.run` (the runner) and `jobworkerp.finish` (store / publish / retry). The trace context travels in
// the job's metadata, so front and worker may be different processes.
// Off by default: every helper returns undefined at once until `enableTracing` is called (by setup.ts, when
// OTLP_ADDR is set), so the hot path allocates nothing when tracing is disabled.
import { SpanKind, SpanStatusCode, trace, type Context, type Span, type Tracer } from "@opentelemetry/api";
import { ResultStatus } from "../gen/jobworkerp/data/common_pb.js";
import type { Job } from "../gen/jobworkerp/data/job_pb.js";
import type { Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { channelOf } from "../core/workers.js";
import { extractContext, injectContext } from "./trace_context.js";

let tracer: Tracer | undefined;

/** Start recording job spans with the globally registered tracer provider. */
export function enableTracing(name = "jobworkerp"): void {
  tracer = trace.getTracer(name);
}

export function disableTracing(): void {
  tracer = undefined;
}

export const tracingEnabled = (): boolean => tracer !== undefined;

const A = {
  jobId: "jobworkerp.job.id",
  workerId: "jobworkerp.worker.id",
  workerName: "jobworkerp.worker.name",
  runnerId: "jobworkerp.runner.id",
  channel: "jobworkerp.channel",
  retried: "jobworkerp.job.retried",
  status: "jobworkerp.job.status",
  finalStatus: "jobworkerp.job.final_status",
} as const;

function workerAttributes(span: Span, job: Job, worker: Worker): void {
  const w = worker.data!;
  span.setAttribute(A.jobId, job.id!.value.toString());
  span.setAttribute(A.workerId, worker.id!.value.toString());
  span.setAttribute(A.workerName, w.name);
  span.setAttribute(A.runnerId, w.runnerId!.value.toString());
  span.setAttribute(A.channel, channelOf(w));
}

function fail(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}

export interface EnqueueSpan {
  /** The request metadata with the enqueue span as the trace parent: what the job carries. */
  metadata: Record<string, string>;
  /** Ends the span when the enqueue settles; returns `p`'s outcome. */
  around<T extends { job: Job; worker: Worker }>(p: Promise<T>): Promise<T>;
}

/**
 * The span of one Enqueue, continuing the caller's trace when the request carried a `traceparent` header
 * (request headers are the job's metadata). Undefined when tracing is off.
 */
export function startEnqueueSpan(metadata: Record<string, string>): EnqueueSpan | undefined {
  if (!tracer) return undefined;
  const span = tracer.startSpan("jobworkerp.enqueue", { kind: SpanKind.PRODUCER }, extractContext(metadata));
  return {
    metadata: injectContext(metadata, span.spanContext()),
    around: (p) =>
      p.then(
        (out) => {
          workerAttributes(span, out.job, out.worker);
          span.end();
          return out;
        },
        (e: unknown) => {
          fail(span, e);
          span.end();
          throw e;
        },
      ),
  };
}

/** Spans of one delivery of a job on a worker; created when the job is leased. */
export class JobSpans {
  private run?: Span;
  private finish?: Span;
  private readonly parent: Context;

  constructor(
    private readonly t: Tracer,
    private readonly job: Job,
    channel: string,
  ) {
    this.parent = extractContext(job.metadata);
    const now = Date.now();
    const d = job.data!;
    // the wait in the queue: since enqueue, or since the job became due (scheduled jobs, retry back-off)
    const since = Number(d.runAfterTime > d.enqueueTime ? d.runAfterTime : d.enqueueTime);
    if (since > 0) {
      const queued = t.startSpan("jobworkerp.queue", { kind: SpanKind.CONSUMER, startTime: Math.min(since, now) }, this.parent);
      queued.setAttribute(A.jobId, job.id!.value.toString());
      queued.setAttribute(A.channel, channel);
      queued.end(now);
    }
    this.run = t.startSpan("jobworkerp.run", { kind: SpanKind.CONSUMER, startTime: now }, this.parent);
    this.run.setAttribute(A.jobId, job.id!.value.toString());
    this.run.setAttribute(A.channel, channel);
    this.run.setAttribute(A.retried, d.retried);
  }

  /** The runner is done with `status`: ends the run span, starts the finish span under it. */
  ran(worker: Worker, status: ResultStatus): void {
    const run = this.run;
    if (!run) return;
    workerAttributes(run, this.job, worker);
    run.setAttribute(A.status, ResultStatus[status] ?? String(status));
    if (status !== ResultStatus.SUCCESS) run.setStatus({ code: SpanStatusCode.ERROR, message: ResultStatus[status] });
    run.end();
    this.run = undefined;
    this.finish = this.t.startSpan("jobworkerp.finish", { kind: SpanKind.INTERNAL }, trace.setSpan(this.parent, run));
    this.finish.setAttribute(A.jobId, this.job.id!.value.toString());
  }

  /** The job's outcome is settled: its final status, or "RETRY" when it was queued again. */
  settled(outcome: ResultStatus | "RETRY"): void {
    this.finish?.setAttribute(A.finalStatus, outcome === "RETRY" ? outcome : (ResultStatus[outcome] ?? String(outcome)));
  }

  /** Ends whatever is still open (a failure, if `e` is given). Safe to call more than once. */
  end(e?: unknown): void {
    for (const span of [this.run, this.finish]) {
      if (!span) continue;
      if (e !== undefined) fail(span, e);
      span.end();
    }
    this.run = this.finish = undefined;
  }
}

/** Spans for a leased job, or undefined when tracing is off (or the delivery is not a user job). */
export function startJobSpans(job: Job, channel: string, loadOnly = false): JobSpans | undefined {
  return tracer && !loadOnly ? new JobSpans(tracer, job, channel) : undefined;
}
