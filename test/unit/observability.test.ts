// The observability helpers in-process: W3C trace context, job spans (in-memory exporter), the Prometheus text
// exposition and endpoint (real HTTP), config validation, log fields, and the no-op default.
import { create } from "@bufbuild/protobuf";
import { metrics, trace } from "@opentelemetry/api";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../worker-container/src/cli/config.js";
import { ResultStatus } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { WorkerSchema } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { jobLogFields, observeEnqueue, recordResult, recordRun, startEnqueueSpan, startJobSpans } from "../../worker-container/src/observability/index.js";
import { disableMetrics, enableMetrics } from "../../worker-container/src/observability/metrics.js";
import { PrometheusReader, prometheusText, startPrometheusEndpoint } from "../../worker-container/src/observability/prometheus.js";
import { sampledQueueDepth } from "../../worker-container/src/observability/setup.js";
import { extractContext, formatTraceparent, injectContext, parseTraceparent, traceIdOf } from "../../worker-container/src/observability/trace_context.js";
import { disableTracing, enableTracing } from "../../worker-container/src/observability/tracing.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const worker = create(WorkerSchema, { id: { value: 7n }, data: { name: 'w"1', runnerId: { value: 1n }, channel: "gpu" } });
const job = (metadata: Record<string, string> = {}, retried = 0) =>
  create(JobSchema, { id: { value: 42n }, data: { workerId: { value: 7n }, enqueueTime: BigInt(Date.now() - 5), retried }, metadata });

describe("W3C trace context", () => {
  it("parses valid traceparent values and rejects malformed ones", () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toMatchObject({ traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags).toBe(0);
    for (const bad of [undefined, "", "00-x-y-01", `00-${"0".repeat(32)}-${SPAN}-01`, `00-${TRACE}-${"0".repeat(16)}-01`, `ff-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01-extra`, `00-${TRACE.toUpperCase()}-${SPAN}-01`]) {
      expect(parseTraceparent(bad), String(bad)).toBeUndefined();
    }
    // a future version may append fields
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)?.traceId).toBe(TRACE);
  });

  it("injects a span context into a copy of the metadata and extracts it back", () => {
    const md = { user: "x", tracestate: "old=1" };
    const sc = parseTraceparent(`00-${TRACE}-${SPAN}-01`, "vendor=abc")!;
    const out = injectContext(md, sc);
    expect(out).toEqual({ user: "x", traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: "vendor=abc" });
    expect(md).toEqual({ user: "x", tracestate: "old=1" });
    expect(trace.getSpanContext(extractContext(out))).toMatchObject({ traceId: TRACE, spanId: SPAN });
    expect(trace.getSpanContext(extractContext({}))).toBeUndefined();
    expect(formatTraceparent(sc)).toBe(`00-${TRACE}-${SPAN}-01`);
    expect(traceIdOf(out)).toBe(TRACE);
    expect(traceIdOf({ traceparent: "junk" })).toBeUndefined();
  });
});

describe("job spans", () => {
  afterEach(() => {
    disableTracing();
    trace.disable();
  });

  it("are no-ops until tracing is enabled", async () => {
    expect(startEnqueueSpan({})).toBeUndefined();
    expect(startJobSpans(job(), "ch")).toBeUndefined();
    const p = Promise.resolve({ job: job(), worker });
    expect(observeEnqueue(p, undefined)).toBe(p);
  });

  it("link enqueue → queue / run → finish in one trace, and record failures and retries", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    trace.setGlobalTracerProvider(provider);
    enableTracing();

    const enq = startEnqueueSpan({ traceparent: `00-${TRACE}-${SPAN}-01` })!;
    const j = job(enq.metadata, 1);
    await enq.around(Promise.resolve({ job: j, worker }));
    const spans = startJobSpans(j, "gpu")!;
    spans.ran(worker, ResultStatus.ERROR_AND_RETRY);
    spans.settled("RETRY");
    spans.end();
    spans.end(); // idempotent
    expect(startJobSpans(j, "gpu", true), "WorkerService.Load deliveries are not traced").toBeUndefined();
    const failing = startJobSpans(j, "gpu")!;
    failing.end(new Error("redis down"));
    await expect(startEnqueueSpan({})!.around(Promise.reject(new Error("bad args")))).rejects.toThrow("bad args");

    const done = exporter.getFinishedSpans();
    const by = (name: string) => done.filter((s) => s.name === name);
    const [enqueue] = by("jobworkerp.enqueue");
    const [run, failedRun] = by("jobworkerp.run");
    const [finish] = by("jobworkerp.finish");
    expect(enqueue.spanContext().traceId).toBe(TRACE);
    expect(enqueue.parentSpanContext?.spanId).toBe(SPAN);
    expect(by("jobworkerp.queue")[0].parentSpanContext?.spanId).toBe(enqueue.spanContext().spanId);
    expect(run.parentSpanContext?.spanId).toBe(enqueue.spanContext().spanId);
    expect(run.attributes).toMatchObject({ "jobworkerp.job.id": "42", "jobworkerp.channel": "gpu", "jobworkerp.job.retried": 1, "jobworkerp.job.status": "ERROR_AND_RETRY" });
    expect(run.status.code).toBe(2);
    expect(finish.parentSpanContext?.spanId).toBe(run.spanContext().spanId);
    expect(finish.attributes["jobworkerp.job.final_status"]).toBe("RETRY");
    expect(failedRun.status).toMatchObject({ code: 2, message: "redis down" });
    expect(by("jobworkerp.enqueue")[1].status).toMatchObject({ code: 2, message: "bad args" });
    await provider.shutdown();
  });
});

describe("Prometheus exposition", () => {
  afterEach(() => disableMetrics());

  it("renders counters, histograms and gauges with escaped labels, and serves them on GET /metrics", async () => {
    const reader = new PrometheusReader();
    const provider = new MeterProvider({ readers: [reader] });
    let depthCalls = 0;
    enableMetrics(provider.getMeter("t"), {
      inFlight: () => 3,
      queueDepth: sampledQueueDepth(async (ch) => (depthCalls++, ch.length), ["a", "bcd"], 60_000),
    });
    recordResult(worker, ResultStatus.SUCCESS);
    recordResult(worker, ResultStatus.SUCCESS);
    recordResult(worker, ResultStatus.FATAL_ERROR);
    recordRun(worker, ResultStatus.SUCCESS, 1000n, 1300n);
    const text = prometheusText((await reader.collect()).resourceMetrics);
    expect(text).toContain('# TYPE jobworkerp_job_results_total counter\n');
    expect(text).toContain('jobworkerp_job_results_total{worker="w\\"1",channel="gpu",status="SUCCESS"} 2\n');
    expect(text).toContain('jobworkerp_job_results_total{worker="w\\"1",channel="gpu",status="FATAL_ERROR"} 1\n');
    expect(text).toContain("# TYPE jobworkerp_job_duration_seconds histogram\n");
    expect(text).toContain('jobworkerp_job_duration_seconds_bucket{worker="w\\"1",channel="gpu",status="SUCCESS",le="0.25"} 0\n');
    expect(text).toContain('jobworkerp_job_duration_seconds_bucket{worker="w\\"1",channel="gpu",status="SUCCESS",le="0.5"} 1\n');
    expect(text).toContain('jobworkerp_job_duration_seconds_bucket{worker="w\\"1",channel="gpu",status="SUCCESS",le="+Inf"} 1\n');
    expect(text).toContain('jobworkerp_job_duration_seconds_sum{worker="w\\"1",channel="gpu",status="SUCCESS"} 0.3\n');
    expect(text).toContain("jobworkerp_jobs_in_flight 3\n");
    expect(text).toContain('jobworkerp_queue_depth{channel="bcd"} 3\n');
    expect(text, "no samples yet: no enqueue series").not.toContain("jobworkerp_jobs_enqueued");

    const ep = await startPrometheusEndpoint(reader, "127.0.0.1", 0, () => undefined);
    try {
      const res = await fetch(`http://127.0.0.1:${ep.port}/metrics`);
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('jobworkerp_queue_depth{channel="a"} 1');
      expect(depthCalls, "queue depth is sampled, not counted on every collection").toBe(2);
      expect((await fetch(`http://127.0.0.1:${ep.port}/`)).status).toBe(404);
    } finally {
      await ep.close();
      await provider.shutdown();
      metrics.disable();
    }
  });
});

describe("configuration and logs", () => {
  it("parses OTLP_ADDR / PROMETHEUS_ADDR and rejects bad values with a clear error", () => {
    expect(loadConfig("all-in-one", {}).observability).toMatchObject({ otlpAddr: undefined, prometheus: undefined, serviceName: "jobworkerp" });
    const c = loadConfig("all-in-one", { OTLP_ADDR: "collector:4318", PROMETHEUS_ADDR: "0.0.0.0:9464", OTEL_SERVICE_NAME: "jw" }).observability;
    expect(c).toMatchObject({ otlpAddr: "http://collector:4318", prometheus: { host: "0.0.0.0", port: 9464 }, serviceName: "jw" });
    expect(loadConfig("all-in-one", { PROMETHEUS_ADDR: "[::1]:9464" }).observability.prometheus).toEqual({ host: "::1", port: 9464 });
    expect(() => loadConfig("all-in-one", { OTLP_ADDR: "ftp://x" })).toThrow(ConfigError);
    expect(() => loadConfig("all-in-one", { PROMETHEUS_ADDR: "9464" })).toThrow(/PROMETHEUS_ADDR must be host:port/);
    expect(() => loadConfig("all-in-one", { PROMETHEUS_ADDR: "h:70000" })).toThrow(/PROMETHEUS_ADDR/);
    expect(() => loadConfig("all-in-one", { OTEL_BSP_SCHEDULE_DELAY: "soon" })).toThrow(/OTEL_BSP_SCHEDULE_DELAY/);
  });

  it("job log fields carry job id, worker id, channel and trace id", () => {
    expect(jobLogFields(job({ traceparent: `00-${TRACE}-${SPAN}-01` }), "gpu")).toEqual({ job_id: "42", worker_id: "7", channel: "gpu", trace_id: TRACE });
    expect(jobLogFields(undefined)).toEqual({ job_id: undefined, worker_id: undefined, channel: undefined, trace_id: undefined });
  });
});
