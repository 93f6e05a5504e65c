// `npm run bench`: the embedded all-in-one, measured through gRPC.
//  - DIRECT round-trip latency (p50/p99) for HTTP_REQUEST against a local HTTP server, and for COMMAND `true`
//  - NO_RESULT enqueue throughput with 32 concurrent callers: jobs left queued, and jobs run as they arrive
// Load comes from h2load (nghttp2, a C HTTP/2 client sending gRPC frames), so the client is not what is
// measured; h2load cannot read gRPC trailers, so every figure is checked against the server's own count
// of results (ListenByWorker) or queued jobs (JobService.Count).
// Prints a table and writes bench/results/embedded.json. Figures depend on the machine; run it idle.
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { execFile, execFileSync, spawn } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { serviceClient, unary } from "../worker-container/src/api/client.js";
import { freePort } from "../test/helpers/services.js";
import { ResponseType, ResultStatus } from "../worker-container/src/gen/jobworkerp/data/common_pb.js";
import type { JobResult } from "../worker-container/src/gen/jobworkerp/data/job_result_pb.js";
import { CommandArgsSchema } from "../worker-container/src/gen/jobworkerp/runner/command_args_pb.js";
import { HttpRequestArgsSchema } from "../worker-container/src/gen/jobworkerp/runner/http_request_args_pb.js";
import { HttpRequestRunnerSettingsSchema } from "../worker-container/src/gen/jobworkerp/runner/http_request_settings_pb.js";
import { JobRequestSchema, JobService } from "../worker-container/src/gen/jobworkerp/service/job_pb.js";
import { JobResultService } from "../worker-container/src/gen/jobworkerp/service/job_result_pb.js";
import { WorkerService } from "../worker-container/src/gen/jobworkerp/service/worker_pb.js";

const HTTP_N = Number(process.env.BENCH_HTTP_N ?? 5000);
const CMD_N = Number(process.env.BENCH_CMD_N ?? 1000);
const ENQ_N = Number(process.env.BENCH_ENQUEUE_N ?? 50000);
const CALLERS = 32; // 4 connections x 8 concurrent streams
const dir = mkdtempSync(join(tmpdir(), "jobworkerp-bench-"));

function ensureH2load(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    console.log("installing h2load (Debian package nghttp2-client)");
    execFileSync("bash", ["-c", "(apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client"], { stdio: "inherit" });
  }
}

/** A gRPC request body file: 5-byte frame header + the protobuf message. */
function frameFile(name: string, schema: DescMessage, msg: MessageInitShape<DescMessage>): string {
  const bytes = toBinary(schema, create(schema, msg));
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  const path = join(dir, name);
  writeFileSync(path, frame);
  return path;
}

/**
 * Runs h2load against JobService/Enqueue; returns per-request elapsed ms (from its log) and wall seconds.
 * Asynchronous on purpose: this process also serves the HTTP endpoint the jobs call.
 */
async function h2load(port: number, body: string, n: number, connections: number, streams: number) {
  const log = join(dir, "h2load.log");
  rmSync(log, { force: true });
  const { stdout: out } = await promisify(execFile)("h2load", [
    "-n", String(n), "-c", String(connections), "-m", String(streams), "-d", body, `--log-file=${log}`,
    "-H", "content-type: application/grpc", "-H", "te: trailers",
    `http://127.0.0.1:${port}/jobworkerp.service.JobService/Enqueue`,
  ]);
  const [, value, unit] = /finished in ([\d.]+)(ms|s)/.exec(out)!;
  const secs = Number(value) / (unit === "ms" ? 1000 : 1);
  const failed = Number(/(\d+) failed/.exec(out)![1]) + Number(/(\d+) errored/.exec(out)![1]);
  if (failed > 0) throw new Error(`h2load reported ${failed} failed requests:\n${out}`);
  const elapsed = readFileSync(log, "utf8").trim().split("\n").map((l) => Number(l.split(/\s+/)[2]) / 1000);
  return { secs, elapsed };
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  ensureH2load();
  const http = createServer((_req, res) => res.end("ok")).listen(0, "127.0.0.1");
  await new Promise((r) => http.once("listening", r));
  const baseUrl = `http://127.0.0.1:${(http.address() as { port: number }).port}`;
  const port = await freePort();
  const server = spawn(process.execPath, [...(process.env.PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.PROF}`] : []), "bin/jobworkerp.mjs", "all-in-one"], {
    env: { ...process.env, GRPC_ADDR: `127.0.0.1:${port}`, SQLITE_URL: join(dir, "bench.sqlite3"), LOG_LEVEL: "warn" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const addr = `127.0.0.1:${port}`;
  const workers = serviceClient(WorkerService, addr);
  const jobs = serviceClient(JobService, addr);
  const results = serviceClient(JobResultService, addr);
  for (let i = 0; ; i++) {
    try {
      await unary(workers, "count", {});
      break;
    } catch (e) {
      if (i > 150) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const httpSettings = toBinary(HttpRequestRunnerSettingsSchema, create(HttpRequestRunnerSettingsSchema, { baseUrl }));
  const mkWorker = async (data: object) => ((await unary(workers, "create", { broadcastResults: true, ...data })) as unknown as { id: { value: bigint } }).id.value;
  /** Counts successful results of a worker as the server reports them. */
  const countResults = (workerId: bigint) => {
    const stream = (results as unknown as { listenByWorker(req: object): ClientReadableStream<JobResult> }).listenByWorker({
      worker: { case: "workerId", value: { value: workerId } },
    });
    const c = { ok: 0, failed: 0, stop: () => stream.cancel() };
    stream.on("data", (r: JobResult) => (r.data!.status === ResultStatus.SUCCESS ? c.ok++ : c.failed++));
    stream.on("error", () => {});
    return c;
  };
  const waitFor = async (cond: () => boolean | Promise<boolean>, what: string, ms = 120_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const body = (name: string, workerId: bigint, args: Uint8Array) => frameFile(name, JobRequestSchema, { worker: { case: "workerId", value: { value: workerId } }, args });
  const httpArgs = toBinary(HttpRequestArgsSchema, create(HttpRequestArgsSchema, { method: "GET", path: "/" }));
  const cmdArgs = toBinary(CommandArgsSchema, create(CommandArgsSchema, { command: "true" }));

  async function direct(name: string, workerId: bigint, args: Uint8Array, n: number) {
    const counted = countResults(workerId);
    await new Promise((r) => setTimeout(r, 200)); // listener subscribed
    await h2load(port, body(`${name}-warm.bin`, workerId, args), 100, 1, 1);
    const { elapsed } = await h2load(port, body(`${name}.bin`, workerId, args), n, 1, 1);
    await waitFor(() => counted.ok + counted.failed >= n + 100, `${name} results`);
    counted.stop();
    if (counted.failed > 0) throw new Error(`${name}: ${counted.failed} jobs did not succeed`);
    elapsed.sort((a, b) => a - b);
    return { n, p50_ms: +pct(elapsed, 50).toFixed(3), p99_ms: +pct(elapsed, 99).toFixed(3), mean_ms: +(elapsed.reduce((a, b) => a + b, 0) / n).toFixed(3) };
  }

  const out: Record<string, unknown> = {
    machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
    date: new Date().toISOString(),
    client: "h2load (nghttp2), verified by server-side result/queue counts",
  };
  out.direct_http_request = await direct("http", await mkWorker({ name: "bench-http", runnerId: { value: 2n }, responseType: ResponseType.DIRECT, runnerSettings: httpSettings }), httpArgs, HTTP_N);
  out.direct_command_true = await direct("cmd", await mkWorker({ name: "bench-cmd", runnerId: { value: 1n }, responseType: ResponseType.DIRECT }), cmdArgs, CMD_N);

  // NO_RESULT jobs on a channel no process serves: the enqueue path alone.
  const queued = await mkWorker({ name: "bench-queued", runnerId: { value: 2n }, channel: "not-served", runnerSettings: httpSettings });
  const q = await h2load(port, body("queued.bin", queued, httpArgs), ENQ_N, 4, CALLERS / 4);
  const total = ((await unary(jobs, "count", {})) as unknown as { total: bigint }).total;
  if (total !== BigInt(ENQ_N)) throw new Error(`expected ${ENQ_N} queued jobs, the server counts ${total}`);
  out.no_result_enqueue_queued = { jobs: ENQ_N, callers: CALLERS, seconds: q.secs, jobs_per_s: Math.round(ENQ_N / q.secs) };
  await unary(workers, "delete", { value: queued });

  // NO_RESULT jobs the 8 default loops run (HTTP_REQUEST) while they arrive.
  const running = await mkWorker({ name: "bench-running", runnerId: { value: 2n }, runnerSettings: httpSettings });
  const counted = countResults(running);
  await new Promise((r) => setTimeout(r, 200));
  const t0 = performance.now();
  const r = await h2load(port, body("running.bin", running, httpArgs), ENQ_N, 4, CALLERS / 4);
  await waitFor(() => counted.ok + counted.failed >= ENQ_N, "all NO_RESULT jobs to run");
  const drained = (performance.now() - t0) / 1000;
  counted.stop();
  if (counted.failed > 0) throw new Error(`${counted.failed} NO_RESULT jobs did not succeed`);
  out.no_result_enqueue_while_running = { jobs: ENQ_N, callers: CALLERS, seconds: r.secs, jobs_per_s: Math.round(ENQ_N / r.secs), all_run_after_s: +drained.toFixed(3), run_per_s: Math.round(ENQ_N / drained) };

  const d = out.direct_http_request as { p50_ms: number; p99_ms: number };
  const c = out.direct_command_true as { p50_ms: number; p99_ms: number };
  const nq = out.no_result_enqueue_queued as { jobs_per_s: number };
  const nr = out.no_result_enqueue_while_running as { jobs_per_s: number; run_per_s: number };
  console.table([
    { measure: "DIRECT HTTP_REQUEST round trip", p50_ms: d.p50_ms, p99_ms: d.p99_ms, goal: "p50 <= 2 ms" },
    { measure: "DIRECT COMMAND `true` round trip", p50_ms: c.p50_ms, p99_ms: c.p99_ms, goal: "" },
    { measure: "NO_RESULT enqueue, 32 callers, queued", jobs_per_s: nq.jobs_per_s, goal: ">= 5000 jobs/s" },
    { measure: "NO_RESULT enqueue, 32 callers, run as they come", jobs_per_s: nr.jobs_per_s, run_per_s: nr.run_per_s, goal: "" },
  ]);
  mkdirSync("bench/results", { recursive: true });
  writeFileSync("bench/results/embedded.json", JSON.stringify(out, null, 2) + "\n");
  console.log("wrote bench/results/embedded.json");

  for (const c of [workers, jobs, results]) c.close();
  server.kill("SIGTERM");
  await new Promise((res) => server.once("exit", res));
  http.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
