// `npm run bench:supervised`: the per-job overhead of the same trivial Python handler (echo its JSON input) run
// as a warm SUPERVISED_PROCESS child, as a SUPERVISED_PROCESS ONE_SHOT process per job, and as PYTHON_COMMAND
// without use_static (a fresh interpreter per job), through the gRPC API of an embedded all-in-one.
//
// For each case, a DIRECT worker runs WARMUP jobs (sequential, then CONCURRENCY at once so every child slot is
// started), then:
//  - latency: SEQ jobs one after another → p50 / p99 of the client's Enqueue round trip;
//  - throughput: PAR jobs from CONCURRENCY concurrent callers → jobs/s.
// Every job must succeed. Prints a table and writes bench/results/supervised.json.
import { mkdirSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Api } from "../test/helpers/client.js";
import { serverApi } from "../test/helpers/fixture.js";
import { servedCodec } from "../test/helpers/served_protos.js";
import { startServer, stopAllServers } from "../test/helpers/server.js";

const WARMUP = Number(process.env.BENCH_SUPERVISED_WARMUP ?? 5);
const SEQ = Number(process.env.BENCH_SUPERVISED_SEQ ?? 100);
const PAR = Number(process.env.BENCH_SUPERVISED_PAR ?? 300);
const CONCURRENCY = 4;
const here = dirname(fileURLToPath(import.meta.url));

// The same handler three ways: with the helper module (SUPERVISED_PROCESS), and as a stdin → stdout script.
const HELPER_SCRIPT = "import jobworkerp_worker as jw\njw.run(lambda args, ctx: {'echo': args})\n";
const STDIN_SCRIPT = "import json, sys\nprint(json.dumps({'echo': json.loads(sys.stdin.read())}))\n";
const PAYLOAD = { text: "hello", n: 1 };

interface Case {
  name: string;
  runner: string;
  useStatic: boolean;
  settings: Record<string, unknown>;
  args: Record<string, unknown>;
}
const CASES: Case[] = [
  { name: "SUPERVISED long-running (warm child)", runner: "SUPERVISED_PROCESS", useStatic: false, settings: { python: { script_content: HELPER_SCRIPT } }, args: { json: JSON.stringify(PAYLOAD) } },
  { name: "SUPERVISED long-running, use_static", runner: "SUPERVISED_PROCESS", useStatic: true, settings: { python: { script_content: HELPER_SCRIPT } }, args: { json: JSON.stringify(PAYLOAD) } },
  { name: "SUPERVISED one_shot", runner: "SUPERVISED_PROCESS", useStatic: false, settings: { mode: "ONE_SHOT", python: { script_content: HELPER_SCRIPT } }, args: { json: JSON.stringify(PAYLOAD) } },
  { name: "PYTHON_COMMAND (no use_static)", runner: "PYTHON_COMMAND", useStatic: false, settings: { python_version: "" }, args: { script_content: STDIN_SCRIPT, data_body: JSON.stringify(PAYLOAD) } },
];

interface Row {
  case: string;
  p50_ms?: number;
  p99_ms?: number;
  jobs_per_s?: number;
  error?: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (x: number) => +x.toFixed(2);

async function runJob(api: Api, workerId: string, args: Buffer): Promise<void> {
  const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args, timeout: 120_000 }, { timeoutMs: 150_000 });
  const r = response.result?.data;
  if (r?.status !== "SUCCESS") throw new Error(`job ended ${r?.status}: ${r?.output ? Buffer.from(r.output.items).toString("utf8").slice(0, 300) : "(no output)"}`);
}

async function parallel(n: number, fn: () => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next++ < n) await fn();
  }));
}

async function measure(api: Api, c: Case): Promise<Row> {
  const codec = await servedCodec(api, c.runner);
  const { response } = await api.worker.Create({
    name: `bench-${c.runner}-${Date.now()}`,
    runner_id: codec.runner.id,
    runner_settings: codec.encodeSettings(c.settings),
    response_type: "DIRECT",
    use_static: c.useStatic,
  });
  const workerId = response.id.value;
  const args = codec.encodeArgs(c.args);
  const job = () => runJob(api, workerId, args);
  for (let i = 0; i < WARMUP; i++) await job();
  await parallel(2 * CONCURRENCY, job); // starts every slot's child
  const lat: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t = performance.now();
    await job();
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  const t0 = performance.now();
  await parallel(PAR, job);
  const secs = (performance.now() - t0) / 1000;
  await api.worker.Delete({ value: workerId });
  return { case: c.name, p50_ms: round(pct(lat, 50)), p99_ms: round(pct(lat, 99)), jobs_per_s: Math.round(PAR / secs) };
}

async function main(): Promise<void> {
  const venvDir = await mkdtemp(join(tmpdir(), "bench-supervised-venvs-"));
  const server = await startServer({ env: { WORKER_DEFAULT_CONCURRENCY: String(CONCURRENCY), PYTHON_VENV_DIR: venvDir } });
  const api = serverApi(server);
  const rows: Row[] = [];
  try {
    for (const c of CASES) {
      try {
        rows.push(await measure(api, c));
      } catch (e) {
        rows.push({ case: c.name, error: (e as Error).message });
      }
    }
  } finally {
    api.close();
    await server.stop("SIGTERM", 10_000);
    await rm(venvDir, { recursive: true, force: true });
  }
  console.table(rows);
  mkdirSync(join(here, "results"), { recursive: true });
  const out = {
    machine: `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}`,
    date: new Date().toISOString(),
    setup: {
      warmup: WARMUP,
      sequential_jobs: SEQ,
      parallel_jobs: PAR,
      callers: CONCURRENCY,
      channel_concurrency: CONCURRENCY,
      handler: "echo the JSON input (Python 3, no packages)",
      shape: "embedded all-in-one, DIRECT jobs",
    },
    rows,
  };
  writeFileSync(join(here, "results", "supervised.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/supervised.json");
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => stopAllServers());
