// `npm run bench:aws`: AWS API calls per job of the AWS mode (SQS + DynamoDB job state), and what they cost.
//
// Setup: moto server as the AWS endpoint, MariaDB and Redis (all started here: test/helpers), and our processes as in
// a deployment: one `front` and BENCH_AWS_WORKERS (2) `worker` processes with BENCH_AWS_CONCURRENCY (8, the default
// channel's concurrency in channels.json) job loops each, STORAGE_TYPE=Aws. Their AWS_ENDPOINT_URL is a counting proxy
// in front of moto (bench/aws_meter.ts), so every call of every process is counted where AWS would bill it — no
// hook in the runtime. Jobs use the NOOP runner (JOBWORKERP_ENABLE_NOOP_RUNNER) with a 16-byte payload and store no
// results; a job is done when the proxy has seen its job-state entry deleted (finish) and its message deleted (ack).
//
// Passes (after a warm-up that creates the queues and fills the caches):
//  steady  BENCH_AWS_CLIENTS (32) concurrent clients enqueue back to back (DIRECT clients wait for each result)
//  paced   one enqueue every 86.4 ms: 1 million jobs a day, evenly spread (NO_RESULT only)
//  serial  one job at a time: the next is enqueued when the previous one is finished and acked (the worst case)
// The calls an idle deployment makes (long polls) are measured once over BENCH_AWS_IDLE_S (60 s, three long-poll
// periods) and subtracted pro rata from each pass: "raw" counts everything in the pass's wall time, "net" what the
// jobs added. Costs use the net figures at us-east-1 list prices; docs/aws-costs.md explains them.
// Jobs per pass: BENCH_AWS_NO_RESULT_N (2000), BENCH_AWS_PACED_N (600), BENCH_AWS_SERIAL_N (200), BENCH_AWS_DIRECT_N
// (500), BENCH_AWS_DIRECT_SERIAL_N (100); 0 skips a pass. About 6-10 minutes on 2 cores.
// Prints tables and writes bench/results/aws.json.
import { create, toBinary } from "@bufbuild/protobuf";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { Redis } from "ioredis";
import { serviceClient, unary } from "../worker-container/src/api/client.js";
import { createAwsClients } from "../worker-container/src/adapters/aws/clients.js";
import { ensureJobStateTable } from "../worker-container/src/adapters/aws/provision.js";
import { ResponseType, ResultStatus } from "../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { NoopArgsSchema } from "../worker-container/src/gen/jobworkerp/runner/noop_args_pb.js";
import { JobService, type CreateJobResponse } from "../worker-container/src/gen/jobworkerp/service/job_pb.js";
import { RunnerService } from "../worker-container/src/gen/jobworkerp/service/runner_pb.js";
import { WorkerInstanceService } from "../worker-container/src/gen/jobworkerp/service/worker_instance_pb.js";
import { WorkerService } from "../worker-container/src/gen/jobworkerp/service/worker_pb.js";
import { NOOP_RUNNER_ID } from "../worker-container/src/runners/noop/index.js";
import { LOCAL_AWS_CREDENTIALS, LOCAL_AWS_REGION, startMoto } from "../test/helpers/moto.js";
import { freePort, startMariadb, startRedis } from "../test/helpers/services.js";
import { AwsMeter, type OpTally, type Tally } from "./aws_meter.js";

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const WORKERS = num("BENCH_AWS_WORKERS", 2);
const CONCURRENCY = num("BENCH_AWS_CONCURRENCY", 8);
const CLIENTS = num("BENCH_AWS_CLIENTS", 32);
const IDLE_S = num("BENCH_AWS_IDLE_S", 60);
const SIZES = {
  noResultSteady: num("BENCH_AWS_NO_RESULT_N", 2000),
  noResultPaced: num("BENCH_AWS_PACED_N", 600),
  noResultSerial: num("BENCH_AWS_SERIAL_N", 200),
  directSteady: num("BENCH_AWS_DIRECT_N", 500),
  directSerial: num("BENCH_AWS_DIRECT_SERIAL_N", 100),
};
const JOBS_PER_DAY = 1_000_000;
const PACED_INTERVAL_MS = 86_400_000 / JOBS_PER_DAY;
/** 1 million jobs a day, 30 days (as docs/deploy-aws.md counts a month of jobs). */
const JOBS_PER_MONTH = 30 * JOBS_PER_DAY;
/** us-east-1 list prices, USD per million (SQS standard requests; DynamoDB on-demand request units). */
const PRICE = { sqsRequest: 0.4, dynamoWru: 0.625, dynamoRru: 0.125 } as const;
const GOAL_BILLABLE_CALLS = 6;
const PREFIX = "jwpbenchaws";
const PAYLOAD = Buffer.alloc(16, 0x61);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, d = 3) => +x.toFixed(d);
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function spawnRole(role: "front" | "worker", env: NodeJS.ProcessEnv): ChildProcess {
  const c = spawn(process.execPath, ["bin/jobworkerp.mjs", role], { env, stdio: ["ignore", "inherit", "inherit"] });
  children.add(c);
  c.once("exit", (code, signal) => {
    children.delete(c);
    if (!stopping) console.error(`${role} process ${c.pid} exited (code ${code}, signal ${signal})`);
  });
  return c;
}
let stopping = false;

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((r) => c.once("exit", r));
  c.kill("SIGTERM");
  const t = setTimeout(() => c.kill("SIGKILL"), 15_000);
  await gone;
  clearTimeout(t);
}

// ---- figures ----------------------------------------------------------------------------------------------------
type Totals = Omit<OpTally, "empty" | "ms">;
const ZERO: Totals = { requests: 0, billable: 0, entries: 0, wru: 0, gsiWru: 0, rru: 0, errors: 0 };

/** A tally minus the idle rate over `seconds`, per job. */
function perJob(t: Tally, idle: Tally, idleSeconds: number, seconds: number, jobs: number, net: boolean): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const key of new Set([...t.keys(), ...(net ? idle.keys() : [])])) {
    const a = t.get(key);
    const i = net ? idle.get(key) : undefined;
    const f = (k: keyof Totals) => ((a?.[k] ?? 0) - ((i?.[k] ?? 0) * seconds) / idleSeconds) / jobs;
    out.set(key, { requests: f("requests"), billable: f("billable"), entries: f("entries"), wru: f("wru"), gsiWru: f("gsiWru"), rru: f("rru"), errors: f("errors") });
  }
  return out;
}

function sum(m: Map<string, Totals>, service?: string): Totals {
  const s = { ...ZERO };
  for (const [k, v] of m) {
    if (service && !k.startsWith(`${service} `)) continue;
    for (const f of Object.keys(s) as (keyof Totals)[]) s[f] += v[f];
  }
  return s;
}

function summary(m: Map<string, Totals>) {
  const sqs = sum(m, "SQS");
  const ddb = sum(m, "DynamoDB");
  const all = sum(m);
  const otherRequests = all.requests - sqs.requests - ddb.requests;
  const dollars = {
    sqs: (sqs.billable * JOBS_PER_MONTH * PRICE.sqsRequest) / 1e6,
    dynamodb_writes: ((ddb.wru + ddb.gsiWru) * JOBS_PER_MONTH * PRICE.dynamoWru) / 1e6,
    dynamodb_reads: (ddb.rru * JOBS_PER_MONTH * PRICE.dynamoRru) / 1e6,
  };
  return {
    sqs_requests: round(sqs.requests),
    sqs_billable_requests: round(sqs.billable),
    dynamodb_requests: round(ddb.requests),
    other_aws_requests: round(otherRequests),
    /** the goal's measure: SQS billable requests + DynamoDB requests (+ any other AWS request) */
    billable_calls: round(sqs.billable + ddb.requests + otherRequests),
    dynamodb_wru_table: round(ddb.wru),
    dynamodb_wru_index: round(ddb.gsiWru),
    dynamodb_rru: round(ddb.rru),
    usd_per_month_at_1m_jobs_per_day: {
      sqs: round(dollars.sqs, 2),
      dynamodb_writes: round(dollars.dynamodb_writes, 2),
      dynamodb_reads: round(dollars.dynamodb_reads, 2),
      total: round(dollars.sqs + dollars.dynamodb_writes + dollars.dynamodb_reads, 2),
    },
  };
}

function byOperation(m: Map<string, Totals>) {
  return Object.fromEntries(
    [...m]
      .filter(([, v]) => Math.abs(v.requests) >= 0.0005)
      .sort((a, b) => b[1].requests - a[1].requests)
      .map(([k, v]) => [k, { requests: round(v.requests), billable: round(v.billable), entries: round(v.entries), wru: round(v.wru), gsi_wru: round(v.gsiWru), rru: round(v.rru) }]),
  );
}

// ---- main ---------------------------------------------------------------------------------------------------------
async function main() {
  console.log(`starting moto, MariaDB and Redis; 1 front + ${WORKERS} workers x ${CONCURRENCY} loops`);
  const [moto, mariadb, redisSvc] = await Promise.all([startMoto(), startMariadb(), startRedis()]);
  const meter = new AwsMeter(moto.endpoint);
  const endpoint = await meter.start();
  const redis = new Redis(redisSvc.url);
  const setup = createAwsClients({ region: LOCAL_AWS_REGION, endpointUrl: moto.endpoint, credentials: { ...LOCAL_AWS_CREDENTIALS } });
  await ensureJobStateTable(setup.dynamo, PREFIX);
  setup.destroy();

  const addr = `127.0.0.1:${await freePort()}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    STORAGE_TYPE: "Aws",
    AWS_REGION: LOCAL_AWS_REGION,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_AWS_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_AWS_CREDENTIALS.secretAccessKey,
    AWS_RESOURCE_PREFIX: PREFIX,
    AWS_CREATE_MISSING_QUEUES: "true",
    AWS_LOCAL_FUNCTIONS: "false",
    MYSQL_URL: mariadb.url,
    REDIS_URL: redisSvc.url,
    REDIS_KEY_PREFIX: PREFIX,
    JOBWORKERP_ENABLE_NOOP_RUNNER: "true",
    WORKER_DEFAULT_CONCURRENCY: String(CONCURRENCY),
    LOG_LEVEL: "warn",
    GRPC_ADDR: addr,
  };
  const procs: ChildProcess[] = [spawnRole("front", env)];
  const workerClient = serviceClient(WorkerService, addr);
  const runnerClient = serviceClient(RunnerService, addr);
  const instanceClient = serviceClient(WorkerInstanceService, addr);
  const jobClient = serviceClient(JobService, addr);
  try {
    await waitFor(() => unary(workerClient, "count", {}).then(() => true, () => false), "the front", 60_000);
    const runner = (await unary(runnerClient, "find", { value: NOOP_RUNNER_ID })) as unknown as { data?: { data?: { name: string } } };
    if (runner.data?.data?.name !== "NOOP") throw new Error("RunnerService does not list the NOOP runner");
    for (let i = 0; i < WORKERS; i++) procs.push(spawnRole("worker", env));
    await waitFor(async () => ((await unary(instanceClient, "count", {})) as unknown as { total: bigint }).total >= BigInt(WORKERS), "worker processes", 60_000);
    await sleep(1000); // job loops start right after the instance registers

    const mkWorker = async (name: string, responseType: ResponseType) =>
      ((await unary(workerClient, "create", { name, runnerId: { value: NOOP_RUNNER_ID }, responseType, storeSuccess: false, storeFailure: false })) as unknown as { id: { value: bigint } }).id
        .value;
    const workerIds = { NO_RESULT: await mkWorker("bench-aws-no-result", ResponseType.NO_RESULT), DIRECT: await mkWorker("bench-aws-direct", ResponseType.DIRECT) };
    const args = toBinary(NoopArgsSchema, create(NoopArgsSchema, { payload: PAYLOAD }));

    type Kind = keyof typeof workerIds;
    const enqueue = async (kind: Kind): Promise<string> => {
      const res = (await unary(jobClient, "enqueue", { worker: { case: "workerId", value: { value: workerIds[kind] } }, args })) as unknown as CreateJobResponse;
      if (kind === "DIRECT" && res.result?.data?.status !== ResultStatus.SUCCESS) throw new Error(`DIRECT job ${res.id?.value} answered ${JSON.stringify(res.result?.data?.status)}`);
      return String(res.id!.value);
    };
    const done = (ids: string[]) => ids.every((id) => meter.finished.has(id)) && meter.deletedMessages >= ids.length;

    type Mode = "steady" | "paced" | "serial";
    async function load(kind: Kind, mode: Mode, n: number): Promise<string[]> {
      const ids: string[] = [];
      if (mode === "steady") {
        let next = 0;
        await Promise.all(
          Array.from({ length: Math.min(CLIENTS, n) }, async () => {
            while (next < n) {
              next++;
              ids.push(await enqueue(kind));
            }
          }),
        );
      } else if (mode === "paced") {
        const t0 = Date.now();
        const calls: Promise<void>[] = [];
        for (let i = 0; i < n; i++) {
          const wait = t0 + i * PACED_INTERVAL_MS - Date.now();
          if (wait > 0) await sleep(wait);
          calls.push(enqueue(kind).then((id) => void ids.push(id)));
        }
        await Promise.all(calls);
      } else {
        for (let i = 0; i < n; i++) {
          const id = await enqueue(kind);
          ids.push(id);
          await waitFor(() => done(ids), `job ${id} to finish`, 60_000);
        }
      }
      return ids;
    }

    /** Waits until every job is finished and acked; fails when nothing moves for a minute (two lease lengths). */
    async function settle(ids: string[], what: string): Promise<void> {
      let seen = -1;
      let movedAt = Date.now();
      await waitFor(() => {
        const now = meter.finished.size + meter.deletedMessages;
        if (now !== seen) [seen, movedAt] = [now, Date.now()];
        if (Date.now() - movedAt > 60_000) {
          const missing = ids.filter((id) => !meter.finished.has(id));
          throw new Error(`${what}: stuck with ${missing.length} jobs unfinished (${missing.slice(0, 5).join(", ")}…) and ${meter.deletedMessages}/${ids.length} messages deleted`);
        }
        return done(ids);
      }, what, 900_000);
    }

    /** One measured pass: the tally of the calls from the first enqueue until every job is finished and acked. */
    async function pass(kind: Kind, mode: Mode, n: number) {
      meter.reset();
      await redis.config("RESETSTAT");
      const t0 = Date.now();
      const ids = await load(kind, mode, n);
      await settle(ids, `${kind} ${mode}: ${n} jobs to finish`);
      const seconds = (Date.now() - t0) / 1000;
      const tally = meter.snapshot();
      // moto is not thread-safe: a message deleted while another thread rewrites the queue can come back, and its
      // job runs again (claim, run, finish). Those runs are counted as runs: figures are per job run.
      const mine = new Set(ids);
      const extraRuns = meter.repeatedFinishes + [...meter.finished].filter((id) => !mine.has(id)).length;
      const stats = await redis.info("commandstats");
      const redisCommands = [...stats.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)].filter(([, k]) => k !== "info" && !k.startsWith("config")).reduce((a, m) => a + Number(m[2]), 0);
      if (new Set(ids).size !== n) throw new Error(`${kind} ${mode}: ${new Set(ids).size} distinct job ids for ${n} jobs`);
      return { kind, mode, jobs: n, extraRuns, seconds: round(seconds, 2), jobs_per_s: round(n / seconds, 1), tally, redisCommandsPerJob: round(redisCommands / n, 2) };
    }

    console.log("warm-up");
    await pass("NO_RESULT", "steady", 200);
    await pass("DIRECT", "steady", 64);
    await sleep(1000);

    // an idle window in which a job ran (a message moto brought back) is measured again
    let idle: Tally = new Map();
    for (let attempt = 1; attempt <= 3; attempt++) {
      console.log(`idle deployment, ${IDLE_S} s`);
      meter.reset();
      await sleep(IDLE_S * 1000);
      const ran = meter.finished.size;
      idle = meter.reset();
      if (ran === 0) break;
      console.log(`${ran} jobs ran during the idle window (redelivered by moto): measuring again`);
    }
    const idleCalls = Object.fromEntries([...idle].map(([k, v]) => [k, v.requests]));
    console.log(`idle calls in ${IDLE_S} s: ${JSON.stringify(idleCalls)}`);

    const plan: [Kind, Mode, number][] = [
      ["NO_RESULT", "steady", SIZES.noResultSteady],
      ["NO_RESULT", "paced", SIZES.noResultPaced],
      ["NO_RESULT", "serial", SIZES.noResultSerial],
      ["DIRECT", "steady", SIZES.directSteady],
      ["DIRECT", "serial", SIZES.directSerial],
    ];
    const passes = [];
    for (const [kind, mode, n] of plan) {
      if (n <= 0) continue;
      console.log(`${kind} ${mode}: ${n} jobs`);
      const p = await pass(kind, mode, n);
      const runs = n + p.extraRuns;
      if (p.extraRuns > 0) console.log(`  ${p.extraRuns} jobs ran twice (moto redelivered a deleted message): figures are per run (${runs})`);
      const raw = perJob(p.tally, idle, IDLE_S, p.seconds, runs, false);
      const net = perJob(p.tally, idle, IDLE_S, p.seconds, runs, true);
      passes.push({
        response_type: kind,
        mode,
        jobs: n,
        extra_runs: p.extraRuns,
        seconds: p.seconds,
        jobs_per_s: p.jobs_per_s,
        raw: summary(raw),
        net: summary(net),
        net_by_operation: byOperation(net),
        raw_totals: Object.fromEntries([...p.tally].map(([k, v]) => [k, { ...v, ms: Math.round(v.ms) }])),
        endpoint_ms_per_call: Object.fromEntries([...p.tally].map(([k, v]) => [k, round(v.ms / v.requests, 1)])),
        redis_commands_per_job: p.redisCommandsPerJob,
      });
      await sleep(500);
    }

    console.table(
      passes.map((p) => ({
        job: p.response_type,
        mode: p.mode,
        jobs: p.jobs,
        "jobs/s": p.jobs_per_s,
        "calls raw": p.raw.billable_calls,
        "calls net": p.net.billable_calls,
        "SQS bill.": p.net.sqs_billable_requests,
        "DDB req": p.net.dynamodb_requests,
        "WRU tbl": p.net.dynamodb_wru_table,
        "WRU idx": p.net.dynamodb_wru_index,
        RRU: p.net.dynamodb_rru,
        "$/mo @1M/day": p.net.usd_per_month_at_1m_jobs_per_day.total,
      })),
    );
    for (const p of passes) {
      const ops = Object.entries(p.net_by_operation).map(([k, v]) => `${k} ${v.requests}`).join(", ");
      console.log(`${p.response_type} ${p.mode} (net per job): ${ops}`);
    }
    const steady = passes.find((p) => p.response_type === "NO_RESULT" && p.mode === "steady");
    if (steady) {
      const met = steady.net.billable_calls <= GOAL_BILLABLE_CALLS;
      console.log(`goal: <= ${GOAL_BILLABLE_CALLS} billable calls per NO_RESULT job (steady stream): ${steady.net.billable_calls} net, ${steady.raw.billable_calls} raw — ${met ? "met" : "NOT met"}`);
    }

    const out = {
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      date: new Date().toISOString(),
      setup: {
        endpoint: "moto server behind a counting proxy (bench/aws_meter.ts)",
        processes: `1 front + ${WORKERS} workers x ${CONCURRENCY} job loops, STORAGE_TYPE=Aws, NOOP runner, 16-byte payload, results not stored`,
        steady_clients: CLIENTS,
        paced_interval_ms: PACED_INTERVAL_MS,
        idle_seconds: IDLE_S,
        idle_calls: idleCalls,
        largest_dynamodb_item_bytes: meter.largestItem,
        counted: "a call is tallied when its answer passes the proxy; net = raw minus the idle rate x the pass's wall time; per job run (a job moto delivered again after its delete counts as a second run: extra_runs)",
        billable_calls: "SQS requests as billed (one per started 64 KiB of payload) + DynamoDB requests + any other AWS request",
        prices_usd_per_million: PRICE,
        jobs_per_month: JOBS_PER_MONTH,
      },
      goal: `<= ${GOAL_BILLABLE_CALLS} billable calls per NO_RESULT job (steady stream)`,
      goal_met: steady ? steady.net.billable_calls <= GOAL_BILLABLE_CALLS : undefined,
      passes,
    };
    mkdirSync("bench/results", { recursive: true });
    writeFileSync("bench/results/aws.json", JSON.stringify(out, null, 2) + "\n");
    console.log("wrote bench/results/aws.json");
  } finally {
    stopping = true;
    for (const c of [workerClient, runnerClient, instanceClient, jobClient]) c.close();
    await Promise.all(procs.slice(1).map(stopChild));
    await stopChild(procs[0]);
    redis.disconnect();
    await meter.stop();
    await Promise.all([moto.stop(), mariadb.destroy(), redisSvc.destroy()]);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    for (const c of children) c.kill("SIGKILL");
    process.exit(1);
  },
);
