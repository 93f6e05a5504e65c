// Traces (OTLP/HTTP to a receiver run by the test), the Prometheus endpoint and the no-op default.
// Scalable shape: enqueue spans come from the fronts and run spans from the workers (other processes), linked
// through the trace context the job carries in its metadata.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commandOutput, encodeCommandArgs, grpc, type JobResult } from "../helpers/client.js";
import { createCommandWorker, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from "../helpers/otlp_receiver.js";
import { isScalable, type ServerHandle } from "../helpers/server.js";

let receiver: OtlpReceiver;
// the receiver must listen before the server starts: useServer's beforeAll runs after this one
beforeAll(async () => {
  receiver = await startOtlpReceiver();
  env.OTLP_ADDR = receiver.url;
});
afterAll(async () => receiver?.close());

const env: Record<string, string> = { OTEL_BSP_SCHEDULE_DELAY: "100", PROMETHEUS_ADDR: "127.0.0.1:0" };
const fx = useServer({ env });

const spansOfJob = (jobId: string) => receiver.spans.filter((s) => s.attributes["jobworkerp.job.id"] === jobId);

async function echoJob(workerName: string, metadata?: grpc.Metadata): Promise<JobResult & { jobId: string }> {
  const { response } = await fx.api.job.Enqueue(
    { worker_name: workerName, args: encodeCommandArgs({ command: "echo", args: ["traced"] }) },
    { timeoutMs: 15_000, metadata },
  );
  expect(response.result?.data.status).toBe("SUCCESS");
  expect(commandOutput(response.result).stdout).toBe("traced\n");
  return { ...response.result!, jobId: response.id.value };
}

/** Waits for the enqueue, queue, run and finish spans of a job. */
async function jobSpans(jobId: string): Promise<Record<"enqueue" | "queue" | "run" | "finish", ReceivedSpan>> {
  return waitUntil(
    () => {
      const byName = Object.fromEntries(spansOfJob(jobId).map((s) => [s.name.replace("jobworkerp.", ""), s]));
      return ["enqueue", "queue", "run", "finish"].every((n) => byName[n]) ? (byName as Record<"enqueue" | "queue" | "run" | "finish", ReceivedSpan>) : undefined;
    },
    { timeoutMs: 15_000, what: `the spans of job ${jobId} (got ${JSON.stringify(spansOfJob(jobId).map((s) => s.name))})` },
  );
}

function isAncestor(ancestor: ReceivedSpan, span: ReceivedSpan): boolean {
  const byId = new Map(receiver.spans.map((s) => [s.spanId, s]));
  for (let p = byId.get(span.parentSpanId); p; p = byId.get(p.parentSpanId)) if (p.spanId === ancestor.spanId) return true;
  return false;
}

describe("tracing (OTLP_ADDR)", () => {
  it("a trace for one job shows spans from front and worker linked in one trace", async () => {
    const name = uniqueName("traced");
    const workerId = await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const r = await echoJob(name);
    const s = await jobSpans(r.jobId);

    for (const span of Object.values(s)) expect(span.traceId).toBe(s.enqueue.traceId);
    expect(s.enqueue.parentSpanId, "no incoming traceparent: the enqueue span starts the trace").toBe("");
    expect(s.run.parentSpanId).toBe(s.enqueue.spanId);
    expect(isAncestor(s.enqueue, s.run)).toBe(true);
    expect(s.finish.parentSpanId).toBe(s.run.spanId);
    expect(s.run.attributes).toMatchObject({
      "jobworkerp.worker.id": workerId,
      "jobworkerp.worker.name": name,
      "jobworkerp.runner.id": "1",
      "jobworkerp.channel": "__default_job_channel__",
      "jobworkerp.job.retried": 0,
      "jobworkerp.job.status": "SUCCESS",
    });
    expect(s.finish.attributes["jobworkerp.job.final_status"]).toBe("SUCCESS");
    expect(s.enqueue.resource["service.name"]).toBe("jobworkerp");
    if (isScalable()) {
      // the context crossed processes through Redis: front and worker are different processes
      expect(s.enqueue.resource["jobworkerp.role"]).toBe("front");
      expect(s.run.resource["jobworkerp.role"]).toBe("worker");
      expect(s.run.resource["process.pid"]).not.toBe(s.enqueue.resource["process.pid"]);
    } else {
      expect(s.enqueue.resource["jobworkerp.role"]).toBe("all-in-one");
    }
    // the job (and so its result) carries the enqueue span as the parent of what follows
    expect(r.metadata.traceparent).toBe(`00-${s.enqueue.traceId}-${s.enqueue.spanId}-01`);
  });

  it("a job enqueued with an incoming traceparent header continues that trace", async () => {
    const name = uniqueName("traced-parent");
    await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    const md = new grpc.Metadata();
    md.set("traceparent", `00-${traceId}-${parentId}-01`);
    md.set("tracestate", "vendor=abc");
    const r = await echoJob(name, md);
    const s = await jobSpans(r.jobId);
    expect(s.enqueue.traceId).toBe(traceId);
    expect(s.enqueue.parentSpanId).toBe(parentId);
    expect(s.run.traceId).toBe(traceId);
    expect(s.run.parentSpanId).toBe(s.enqueue.spanId);
    expect(r.metadata.tracestate).toBe("vendor=abc");
  });

  it("a malformed traceparent header is ignored: the job runs in a new trace", async () => {
    const name = uniqueName("traced-bad");
    await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    const md = new grpc.Metadata();
    md.set("traceparent", "00-not-a-trace-01");
    const r = await echoJob(name, md);
    const s = await jobSpans(r.jobId);
    expect(s.enqueue.parentSpanId).toBe("");
    expect(s.run.traceId).toBe(s.enqueue.traceId);
  });
});

// ---------------------------------------------------------------- Prometheus

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`bad exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The Prometheus port of every process of the server (from its "prometheus endpoint listening" log lines). */
function prometheusPorts(server: ServerHandle): number[] {
  const ports = [...server.logs().matchAll(/"port":(\d+),"path":"\/metrics","msg":"prometheus endpoint listening"/g)].map((m) => Number(m[1]));
  expect(ports.length, "every process serves /metrics").toBe(isScalable() ? 4 : 1);
  return ports;
}

async function scrapeAll(server: ServerHandle): Promise<Sample[]> {
  const all: Sample[] = [];
  for (const port of prometheusPorts(server)) {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    all.push(...parseExposition(await res.text()));
  }
  return all;
}

const total = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);

describe("Prometheus endpoint (PROMETHEUS_ADDR)", () => {
  it("shows job counts by status, enqueue counts, durations, in-flight jobs and queue depth after some jobs", async () => {
    const name = uniqueName("prom");
    await createCommandWorker(fx.api, { name, response_type: "DIRECT" });
    for (let i = 0; i < 3; i++) await echoJob(name);
    const fail = uniqueName("prom-fail");
    await createCommandWorker(fx.api, { name: fail, response_type: "DIRECT" });
    const { response } = await fx.api.job.Enqueue(
      { worker_name: fail, args: encodeCommandArgs({ command: "/nonexistent/command" }) },
      { timeoutMs: 15_000 },
    );
    const failStatus = response.result!.data.status;
    expect(failStatus).not.toBe("SUCCESS");

    const samples = await waitUntil(async () => {
      const s = await scrapeAll(fx.server);
      return total(s, "jobworkerp_job_results_total", { worker: name, status: "SUCCESS" }) === 3 ? s : undefined;
    }, { what: "3 SUCCESS results in the metrics" });
    expect(total(samples, "jobworkerp_job_results_total", { worker: fail, status: failStatus })).toBe(1);
    expect(total(samples, "jobworkerp_job_results_total", { worker: name, channel: "__default_job_channel__" })).toBe(3);
    expect(total(samples, "jobworkerp_jobs_enqueued_total", { worker: name })).toBe(3);
    expect(total(samples, "jobworkerp_job_duration_seconds_count", { worker: name, status: "SUCCESS" })).toBe(3);
    expect(total(samples, "jobworkerp_job_duration_seconds_bucket", { worker: name, status: "SUCCESS", le: "+Inf" })).toBe(3);
    expect(samples.some((s) => s.name === "jobworkerp_jobs_in_flight")).toBe(true);
    expect(samples.some((s) => s.name === "jobworkerp_queue_depth" && s.labels.channel === "__default_job_channel__")).toBe(true);
  });

  it("answers 404 outside /metrics and 405 to other methods", async () => {
    const [port] = prometheusPorts(fx.server);
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST", body: "x" })).status).toBe(405);
  });
});
