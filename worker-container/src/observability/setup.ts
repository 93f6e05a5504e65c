// Registers the OpenTelemetry SDK for this process, only for what is configured:
//   OTLP_ADDR        traces (BatchSpanProcessor) and metrics (periodic) to an OTLP/HTTP collector (JSON);
//   PROMETHEUS_ADDR  metrics as Prometheus text on GET /metrics.
// With neither, nothing is registered and the job helpers stay no-ops. `shutdown` flushes the exporters.
import { hostname } from "node:os";
import { diag, DiagLogLevel, metrics, trace } from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { BatchSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import type { Logger } from "pino";
import type { System } from "../core/system.js";
import { JobProcessingStatus } from "../gen/jobworkerp/data/common_pb.js";
import { disableMetrics, enableMetrics, type MetricSources } from "./metrics.js";
import { PrometheusReader, startPrometheusEndpoint, type PrometheusEndpoint } from "./prometheus.js";
import { disableTracing, enableTracing } from "./tracing.js";

export interface ObservabilityConfig {
  /** OTLP/HTTP collector base URL (OTLP_ADDR, e.g. http://127.0.0.1:4318): /v1/traces and /v1/metrics are added. */
  otlpAddr?: string;
  /** Where to serve Prometheus text (PROMETHEUS_ADDR, host:port; port 0 picks a free one). */
  prometheus?: { host: string; port: number };
  /** service.name of the telemetry (OTEL_SERVICE_NAME). */
  serviceName: string;
  /** Longest a finished span waits before it is exported (OTEL_BSP_SCHEDULE_DELAY). */
  spanExportDelayMs: number;
  /** How often metrics are pushed to OTLP_ADDR (OTEL_METRIC_EXPORT_INTERVAL). */
  metricExportIntervalMs: number;
}

export interface Observability {
  /** The port of the Prometheus endpoint, when one is served. */
  prometheusPort?: number;
  /** Flush and stop the exporters (after the last job has finished). */
  shutdown(): Promise<void>;
}

const SHUTDOWN_FLUSH_MS = 3_000;

const NONE: Observability = { shutdown: async () => undefined };

export async function startObservability(cfg: ObservabilityConfig, role: string, sources: MetricSources, log: Logger): Promise<Observability> {
  if (!cfg.otlpAddr && !cfg.prometheus) return NONE;
  // the SDK reports export failures (collector down, ...) through diag: into our logs, never thrown
  const text = (args: unknown[]) => args.map((a) => (a instanceof Error ? a.message : String(a)));
  diag.setLogger(
    {
      error: (msg, ...args) => log.warn({ args: text(args) }, `opentelemetry: ${msg}`),
      warn: (msg, ...args) => log.warn({ args: text(args) }, `opentelemetry: ${msg}`),
      info: () => undefined,
      debug: () => undefined,
      verbose: () => undefined,
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const resource = resourceFromAttributes({
    "service.name": cfg.serviceName,
    "service.instance.id": `${hostname()}:${process.pid}`,
    "jobworkerp.role": role,
    "process.pid": process.pid,
  });
  const base = cfg.otlpAddr?.replace(/\/+$/, "");

  let tracerProvider: TracerProvider | undefined;
  if (base) {
    const exporter = new OTLPTraceExporter({ url: `${base}/v1/traces` });
    tracerProvider = new TracerProvider({
      resource,
      spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: cfg.spanExportDelayMs })],
    });
    trace.setGlobalTracerProvider(tracerProvider);
    enableTracing();
  }

  const readers: MetricReader[] = [];
  if (base) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: `${base}/v1/metrics` }),
        exportIntervalMillis: cfg.metricExportIntervalMs,
        exportTimeoutMillis: Math.min(30_000, cfg.metricExportIntervalMs),
      }),
    );
  }
  const prometheusReader = cfg.prometheus ? new PrometheusReader() : undefined;
  if (prometheusReader) readers.push(prometheusReader);
  const meterProvider = new MeterProvider({ resource, readers });
  metrics.setGlobalMeterProvider(meterProvider);
  enableMetrics(meterProvider.getMeter("jobworkerp"), sources);

  let endpoint: PrometheusEndpoint | undefined;
  if (prometheusReader && cfg.prometheus) {
    const { host, port } = cfg.prometheus;
    endpoint = await startPrometheusEndpoint(prometheusReader, host, port, (err) => log.warn({ err }, "metrics collection failed"));
    log.info({ host, port: endpoint.port, path: "/metrics" }, "prometheus endpoint listening");
  }
  if (base) log.info({ otlp: base }, "exporting traces and metrics over OTLP/HTTP");

  return {
    prometheusPort: endpoint?.port,
    async shutdown() {
      disableTracing();
      disableMetrics();
      await endpoint?.close();
      // a collector that does not answer must not hold the process: flushing gets a bounded time
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), SHUTDOWN_FLUSH_MS)));
      const flushed = Promise.allSettled([tracerProvider?.shutdown(), meterProvider.shutdown()]);
      const results = await Promise.race([flushed, bound]);
      clearTimeout(timer);
      if (results === "timeout") log.warn({ ms: SHUTDOWN_FLUSH_MS }, "flushing telemetry timed out; unsent spans/metrics dropped");
      else for (const r of results) if (r.status === "rejected") log.warn({ err: r.reason }, "flushing telemetry failed");
      trace.disable();
      metrics.disable();
    },
  };
}

/** Pending jobs per channel, sampled at most every `minIntervalMs` (a collection asks for it on every scrape/export). */
export function sampledQueueDepth(count: (channel: string) => Promise<number>, channels: string[], minIntervalMs = 5_000): () => Promise<Map<string, number>> {
  let last: Map<string, number> | undefined;
  let at = 0;
  let pending: Promise<Map<string, number>> | undefined;
  return () => {
    if (last && Date.now() - at < minIntervalMs) return Promise.resolve(last);
    pending ??= Promise.all(channels.map(async (ch) => [ch, await count(ch)] as const))
      .then((entries) => {
        last = new Map(entries);
        at = Date.now();
        return last;
      })
      .finally(() => (pending = undefined));
    return pending;
  };
}

/** The gauges' sources: this process's running jobs, and the pending jobs of the channels it knows. */
export function systemMetricSources(sys: Pick<System, "dispatcher" | "state" | "channels">): MetricSources {
  const { dispatcher, state } = sys;
  const pending = async (channel: string) =>
    (await state.count({ channel, status: JobProcessingStatus.PENDING })).get(JobProcessingStatus.PENDING) ?? 0;
  return {
    inFlight: dispatcher ? () => dispatcher.inFlight : undefined,
    queueDepth: sampledQueueDepth(pending, sys.channels.map((c) => c.name)),
  };
}
