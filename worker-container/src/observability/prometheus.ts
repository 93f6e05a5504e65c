// Prometheus text exposition (format 0.0.4) of the SDK's collected metrics, served on GET /metrics.
// A pull MetricReader with cumulative temporality: each scrape collects the current totals.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Attributes } from "@opentelemetry/api";
import { AggregationTemporality, DataPointType, MetricReader, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";

export class PrometheusReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE });
  }
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function metricName(name: string): string {
  const n = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

const UNIT_SUFFIX: Record<string, string> = { s: "seconds", ms: "milliseconds", By: "bytes", "1": "ratio" };

const escapeHelp = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
const escapeValue = (s: string) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

function labelText(attrs: Attributes, extra?: [string, string]): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    parts.push(`${metricName(k)}="${escapeValue(Array.isArray(v) ? JSON.stringify(v) : String(v))}"`);
  }
  if (extra) parts.push(`${extra[0]}="${escapeValue(extra[1])}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function num(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function writeMetric(out: string[], md: MetricData): void {
  const d = md.descriptor;
  let base = metricName(d.name);
  const unit = UNIT_SUFFIX[d.unit] ?? (d.unit && !d.unit.startsWith("{") ? metricName(d.unit) : "");
  if (unit && !base.endsWith(`_${unit}`)) base += `_${unit}`;
  const help = d.description ? `# HELP ${base} ${escapeHelp(d.description)}\n` : "";
  switch (md.dataPointType) {
    case DataPointType.SUM: {
      const counter = md.isMonotonic;
      const name = counter && !base.endsWith("_total") ? `${base}_total` : base;
      out.push(help.replace(` ${base} `, ` ${name} `), `# TYPE ${name} ${counter ? "counter" : "gauge"}\n`);
      for (const p of md.dataPoints) out.push(`${name}${labelText(p.attributes)} ${num(p.value)}\n`);
      return;
    }
    case DataPointType.GAUGE:
      out.push(help, `# TYPE ${base} gauge\n`);
      for (const p of md.dataPoints) out.push(`${base}${labelText(p.attributes)} ${num(p.value)}\n`);
      return;
    case DataPointType.HISTOGRAM:
      out.push(help, `# TYPE ${base} histogram\n`);
      for (const p of md.dataPoints) {
        const { boundaries, counts } = p.value.buckets;
        let cumulative = 0;
        boundaries.forEach((le, i) => {
          cumulative += counts[i];
          out.push(`${base}_bucket${labelText(p.attributes, ["le", num(le)])} ${cumulative}\n`);
        });
        out.push(`${base}_bucket${labelText(p.attributes, ["le", "+Inf"])} ${p.value.count}\n`);
        out.push(`${base}_sum${labelText(p.attributes)} ${num(p.value.sum ?? 0)}\n`);
        out.push(`${base}_count${labelText(p.attributes)} ${p.value.count}\n`);
      }
      return;
    default:
      // exponential histograms are not configured by this process
      return;
  }
}

/** The text exposition of collected metrics. */
export function prometheusText(rm: ResourceMetrics): string {
  const out: string[] = [];
  for (const sm of rm.scopeMetrics) for (const md of sm.metrics) if (md.dataPoints.length > 0) writeMetric(out, md);
  return out.join("");
}

export interface PrometheusEndpoint {
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics on host:port (port 0: any free port, see `port`). */
export async function startPrometheusEndpoint(reader: PrometheusReader, host: string, port: number, onError: (e: unknown) => void): Promise<PrometheusEndpoint> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    reader.collect().then(
      ({ resourceMetrics, errors }) => {
        if (errors.length > 0) onError(errors[0]);
        const body = prometheusText(resourceMetrics);
        res.writeHead(200, { "content-type": CONTENT_TYPE });
        res.end(req.method === "HEAD" ? undefined : body);
      },
      (e: unknown) => {
        onError(e);
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics collection failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
