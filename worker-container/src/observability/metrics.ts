// Job metrics through the OpenTelemetry metrics API. Off by default: the record helpers return at once until
// `enableMetrics` gives them a Meter (setup.ts does, when OTLP_ADDR or PROMETHEUS_ADDR is set).
import type { Attributes, Counter, Histogram, Meter, ObservableResult } from "@opentelemetry/api";
import { ResultStatus } from "../gen/jobworkerp/data/common_pb.js";
import type { Worker } from "../gen/jobworkerp/data/worker_pb.js";
import { channelOf } from "../core/workers.js";

interface Instruments {
  enqueued: Counter;
  results: Counter;
  duration: Histogram;
}

let m: Instruments | undefined;

export interface MetricSources {
  /** Jobs running in this process now. */
  inFlight?: () => number;
  /** Jobs waiting per channel; called when metrics are collected (it may cache). */
  queueDepth?: () => Promise<Map<string, number>>;
}

// job durations from milliseconds to minutes; Prometheus-style cumulative buckets, in seconds
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export function enableMetrics(meter: Meter, sources: MetricSources): void {
  m = {
    enqueued: meter.createCounter("jobworkerp.jobs.enqueued", { description: "Jobs accepted by Enqueue" }),
    results: meter.createCounter("jobworkerp.job.results", { description: "Final job results by status" }),
    duration: meter.createHistogram("jobworkerp.job.duration", {
      description: "Time a runner took for one attempt of a job",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    }),
  };
  const { inFlight, queueDepth } = sources;
  if (inFlight) {
    meter
      .createObservableGauge("jobworkerp.jobs.in_flight", { description: "Jobs running in this process" })
      .addCallback((r: ObservableResult) => r.observe(inFlight()));
  }
  if (queueDepth) {
    meter
      .createObservableGauge("jobworkerp.queue.depth", { description: "Jobs waiting (pending) per channel" })
      .addCallback(async (r: ObservableResult) => {
        for (const [channel, n] of await queueDepth()) r.observe(n, { channel });
      });
  }
}

export function disableMetrics(): void {
  m = undefined;
}

function labels(worker: Worker, status?: ResultStatus): Attributes {
  const w = worker.data!;
  const a: Attributes = { worker: w.name, channel: channelOf(w) };
  if (status !== undefined) a.status = ResultStatus[status] ?? String(status);
  return a;
}

export function recordEnqueued(worker: Worker): void {
  m?.enqueued.add(1, labels(worker));
}

/** One attempt of a job ran from `startMs` to `endMs` (unix ms) with the runner's `status`. */
export function recordRun(worker: Worker, status: ResultStatus, startMs: bigint, endMs: bigint): void {
  m?.duration.record(Number(endMs - startMs) / 1000, labels(worker, status));
}

/** A job's final result (whichever process settles it: the worker, or the front cancelling a pending job). */
export function recordResult(worker: Worker, status: ResultStatus): void {
  m?.results.add(1, labels(worker, status));
}

export const metricsEnabled = (): boolean => m !== undefined;
