// `npm run bench:runners [file]`: the per-job overhead of each runner against a trivial target (a 200 OK
// endpoint, an echo tool, a `true` container, ...), measured through the gRPC API of an embedded all-in-one.
//
// Cases come from bench/runners/<runner>.ts (`cases: RunnerBenchCase[]`). For each case, a DIRECT worker without
// and with use_static (a pool of CONCURRENCY instances) runs:
//  - latency: SEQ jobs one after another (after WARMUP) → p50 / p99 of the client's Enqueue round trip;
//  - throughput: PAR jobs from CONCURRENCY concurrent callers → jobs/s.
// Every job's result must be SUCCESS (a failed case is reported, not measured). Settings and args are encoded
// with the proto texts the runner serves, as a client would. Prints a table and writes bench/results/runners.json.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Api } from "../test/helpers/client.js";
import { serverApi } from "../test/helpers/fixture.js";
import { servedCodec } from "../test/helpers/served_protos.js";
import { startServer, stopAllServers } from "../test/helpers/server.js";
import type { RunnerBenchCase } from "./runners/case.js";

const WARMUP = Number(process.env.BENCH_RUNNERS_WARMUP ?? 5);
const SEQ = Number(process.env.BENCH_RUNNERS_SEQ ?? 50);
const PAR = Number(process.env.BENCH_RUNNERS_PAR ?? 200);
const CONCURRENCY = 8;
const here = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2]?.toLowerCase();

interface Row {
  case: string;
  use_static: boolean;
  p50_ms?: number;
  p99_ms?: number;
  jobs_per_s?: number;
  error?: string;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const round = (x: number) => +x.toFixed(2);

async function loadCases(): Promise<RunnerBenchCase[]> {
  const files = readdirSync(join(here, "runners")).filter((f) => f.endsWith(".ts") && f !== "case.ts").sort();
  const all: RunnerBenchCase[] = [];
  for (const f of files) {
    if (filter && !f.includes(filter)) continue; // the filter names a file: builtin, docker, mcp, ...
    all.push(...((await import(join(here, "runners", f))) as { cases: RunnerBenchCase[] }).cases);
  }
  return all;
}

async function runJob(api: Api, workerId: string, args: Buffer, using: string | undefined): Promise<void> {
  const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args, using });
  const status = response.result?.data.status;
  if (status !== "SUCCESS") {
    const out = response.result?.data.output?.items;
    throw new Error(`job ended ${status}: ${out ? Buffer.from(out).toString("utf8").slice(0, 300) : "(no output)"}`);
  }
}

async function measure(api: Api, c: RunnerBenchCase, settings: Buffer, args: Buffer, useStatic: boolean): Promise<Row> {
  const { response } = await api.worker.Create({
    name: `bench-${c.runner}-${useStatic ? "static" : "fresh"}-${Date.now()}`,
    runner_id: (await servedCodec(api, c.runner)).runner.id,
    runner_settings: settings,
    response_type: "DIRECT",
    use_static: useStatic,
  });
  const workerId = response.id.value;
  for (let i = 0; i < WARMUP; i++) await runJob(api, workerId, args, c.using);
  const lat: number[] = [];
  for (let i = 0; i < SEQ; i++) {
    const t = performance.now();
    await runJob(api, workerId, args, c.using);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < PAR) await runJob(api, workerId, args, c.using);
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await api.worker.Delete({ value: workerId });
  return { case: c.name, use_static: useStatic, p50_ms: round(pct(lat, 50)), p99_ms: round(pct(lat, 99)), jobs_per_s: Math.round(PAR / secs) };
}

async function main(): Promise<void> {
  const cases = await loadCases();
  if (cases.length === 0) throw new Error(`no benchmark case matches ${filter}`);
  const rows: Row[] = [];
  for (const c of cases) {
    const prepared = await c.prepare();
    const server = await startServer({ env: { WORKER_DEFAULT_CONCURRENCY: String(CONCURRENCY), ...prepared.env } });
    const api = serverApi(server);
    try {
      const codec = await servedCodec(api, c.runner);
      const settings = codec.encodeSettings(prepared.settings);
      const args = codec.encodeArgs(prepared.args, c.using);
      for (const useStatic of [false, true]) {
        try {
          rows.push(await measure(api, c, settings, args, useStatic));
        } catch (e) {
          rows.push({ case: c.name, use_static: useStatic, error: (e as Error).message });
        }
      }
    } finally {
      api.close();
      await server.stop("SIGTERM", 5000);
      await prepared.cleanup();
    }
  }
  console.table(rows);
  mkdirSync(join(here, "results"), { recursive: true });
  const out = {
    machine: `${cpus().length} x ${cpus()[0]?.model ?? "cpu"}`,
    date: new Date().toISOString(),
    setup: { warmup: WARMUP, sequential_jobs: SEQ, parallel_jobs: PAR, callers: CONCURRENCY, shape: "embedded all-in-one, DIRECT jobs" },
    rows,
  };
  writeFileSync(join(here, "results", "runners.json"), `${JSON.stringify(out, null, 2)}\n`);
  console.log("wrote bench/results/runners.json");
  if (rows.some((r) => r.error)) process.exitCode = 1;
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => stopAllServers());
