// A Scalable deployment for e2e tests: N `front` and M `worker` processes (`node bin/jobworkerp.mjs front|worker`,
// STORAGE_TYPE=Scalable) sharing a fresh MySQL database on the run's MariaDB and a unique key prefix on the
// run's Redis (test/global-setup.ts provides both through inject()).
import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import { Api, collect, healthCheck } from "./client.js";
import { ensureJobStateTable } from "../../worker-container/src/adapters/aws/provision.js";
import { awsTestConfig, testAwsClients } from "./aws.js";
import { createTestDatabase } from "./databases.js";
import { type ServerProc, baseEnv, freePort, sleep, spawnServer } from "./proc.js";

/** Channel options that make a client spread its calls over all addresses of `Cluster.target`. */
export const ROUND_ROBIN_CHANNEL_OPTIONS: Record<string, string> = {
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
};

/** The data a cluster works on; give it to startCluster({ state }) to start another cluster on the same data. */
export interface ClusterState {
  mysqlUrl: string;
  redisPrefix: string;
  /** STORAGE_TYPE=Aws on the run's local AWS endpoint: the deployment's resource prefix (its queues and table). */
  awsPrefix?: string;
}

export interface Proc {
  role: "front" | "worker";
  pid: number;
  /** host:port (fronts only). */
  address?: string;
  /** Sends `signal` (default SIGTERM), waits for exit (SIGKILL after `timeoutMs`), returns the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (its whole process group); resolves when it is gone. */
  kill(): Promise<void>;
  /** Captured stdout+stderr so far. */
  logs(): string;
  exited(): boolean;
}

export interface Cluster {
  fronts: Proc[];
  workers: Proc[];
  /** host:port of each front, in order. */
  addresses: string[];
  /** grpc-js target over every front (`ipv4:127.0.0.1:A,127.0.0.1:B`); use with ROUND_ROBIN_CHANNEL_OPTIONS. */
  readonly target: string;
  state: ClusterState;
  /** Starts another worker (cluster env + `env`); resolves when it runs. */
  addWorker(env?: Record<string, string>): Promise<Proc>;
  /** Starts another front (cluster env + `env`); resolves when it serves. `target` then includes it. */
  addFront(env?: Record<string, string>): Promise<Proc>;
  /** Stops every process (in parallel); returns their exit codes, fronts first then workers. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<(number | null)[]>;
  /** SIGKILLs every process. */
  kill(): Promise<void>;
  /** Output of every process, merged in time order (pino's `time`), each line tagged with its process. */
  logs(): string;
}

export interface StartClusterOptions {
  /** Number of fronts (default 2). */
  fronts?: number;
  /** Number of workers (default 2). */
  workers?: number;
  /** Env for every process (overrides the defaults below). */
  env?: Record<string, string>;
  /** Extra env of the i-th worker (0-based), over `env`. */
  workerEnv?: (index: number) => Record<string, string>;
  /** Extra env of the i-th front (0-based), over `env`. */
  frontEnv?: (index: number) => Record<string, string>;
  /** Reuse the data (database and Redis prefix) of an earlier cluster; default: fresh ones. */
  state?: ClusterState;
  /** How long each process may take to become ready (default 20 s). */
  readyTimeoutMs?: number;
  /** STORAGE_TYPE=Aws (SQS + DynamoDB on the run's moto server) instead of Scalable; default: the state's choice. */
  aws?: boolean;
}

/** A fresh database on the run's MariaDB and a unique Redis key prefix (and AWS resource prefix for `aws`). */
export async function newClusterState(aws = false): Promise<ClusterState> {
  const db = await createTestDatabase(inject("mysqlUrl"), "e2e");
  const tag = randomBytes(6).toString("hex");
  return { mysqlUrl: db.url, redisPrefix: `e2e-${tag}`, ...(aws ? { awsPrefix: `e2e-${tag}` } : {}) };
}

/**
 * STORAGE_TYPE=Aws against the run's moto server: the job-state table is created here (as `jobworkerp aws
 * bootstrap` or the CDK app would); queues are created on first use because the suite's workers pick channel
 * names freely; the clock and the dead-letter recorder run in-process since no scheduler or Lambda runs here.
 */
async function awsEnv(prefix: string): Promise<Record<string, string>> {
  const clients = testAwsClients();
  try {
    await ensureJobStateTable(clients.dynamo, prefix);
  } finally {
    clients.destroy();
  }
  const cfg = awsTestConfig();
  return {
    STORAGE_TYPE: "Aws",
    AWS_REGION: cfg.region,
    AWS_ENDPOINT_URL: cfg.endpointUrl!,
    AWS_ACCESS_KEY_ID: cfg.credentials!.accessKeyId,
    AWS_SECRET_ACCESS_KEY: cfg.credentials!.secretAccessKey,
    AWS_RESOURCE_PREFIX: prefix,
    AWS_LOCAL_FUNCTIONS: "true",
    AWS_CREATE_MISSING_QUEUES: "true",
  };
}

const READY_LINE = /"msg":"jobworkerp worker running"/;

async function waitReady(p: ServerProc, check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastErr = "";
  for (;;) {
    const info = p.exitInfo();
    if (info !== undefined) {
      throw new Error(`${what} exited before becoming ready (code ${info.code}, signal ${info.signal})\n--- output ---\n${p.logs()}`);
    }
    try {
      if (await check()) return;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    if (Date.now() > deadline) {
      await p.kill();
      throw new Error(`${what} not ready within ${timeoutMs} ms (${lastErr})\n--- output ---\n${p.logs()}`);
    }
    await sleep(100);
  }
}

export async function startCluster(opts: StartClusterOptions = {}): Promise<Cluster> {
  const state = opts.state ?? (await newClusterState(opts.aws));
  const readyTimeoutMs = opts.readyTimeoutMs ?? 45_000; // generous: tsx compiles each process's code at start, slow on a loaded CI machine
  const common: Record<string, string> = {
    ...baseEnv(),
    STORAGE_TYPE: "Scalable",
    ...(state.awsPrefix ? await awsEnv(state.awsPrefix) : {}),
    MYSQL_URL: state.mysqlUrl,
    REDIS_URL: inject("redisUrl"),
    REDIS_KEY_PREFIX: state.redisPrefix,
    // Short leases: a SIGKILLed worker's jobs come back within ~2 s.
    JOB_QUEUE_LEASE_MS: "2000",
    JOB_QUEUE_FETCH_INTERVAL: "100",
    ...opts.env,
  };
  const fronts: Proc[] = [];
  const workers: Proc[] = [];
  const all: { proc: Proc; sp: ServerProc }[] = [];

  const wrap = (sp: ServerProc, role: "front" | "worker", address?: string): Proc => ({
    role,
    pid: sp.pid,
    address,
    stop: (signal, timeoutMs) => sp.stop(signal, timeoutMs),
    kill: () => sp.kill(),
    logs: () => sp.logs(),
    exited: () => sp.exited(),
  });

  const launchFront = async (env: Record<string, string>): Promise<Proc> => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const sp = spawnServer("front", { ...common, ...env, GRPC_ADDR: address });
    const proc = wrap(sp, "front", address);
    all.push({ proc, sp });
    await waitReady(sp, async () => (await healthCheck(address, "", 500)) === "SERVING", readyTimeoutMs, `front ${address} (pid ${sp.pid})`);
    return proc;
  };
  // Instances already matched to a worker process (readiness without info logs, see launchWorker).
  const claimed = new Set<string>();
  const newInstance = async (since: number, token?: string): Promise<boolean> => {
    const address = fronts[0]?.address ?? all.find((x) => x.proc.role === "front" && !x.proc.exited())?.proc.address;
    if (!address) return false;
    const api = new Api(address, { token });
    try {
      const found = (await collect(api.workerInstance.FindList({}), 2000)).find(
        (i) => !claimed.has(i.id.value) && Number(i.data.registered_at) >= since - 1000,
      );
      if (found) claimed.add(found.id.value);
      return found !== undefined;
    } finally {
      api.close();
    }
  };
  const launchWorker = async (extra: Record<string, string>): Promise<Proc> => {
    // A worker serves no gRPC; GRPC_ADDR is irrelevant but set to a free port in case a role ever listens.
    const env: Record<string, string> = { ...common, GRPC_ADDR: `127.0.0.1:${await freePort()}`, ...extra };
    const since = Date.now();
    const sp = spawnServer("worker", env);
    const proc = wrap(sp, "worker");
    all.push({ proc, sp });
    // The line is logged once it registered its WorkerInstance and started leasing. With info logs off,
    // wait for a WorkerInstance registered since the spawn that no other worker of this cluster claimed.
    const infoLogs = !["warn", "error", "fatal", "silent"].includes((env.LOG_LEVEL ?? "info").toLowerCase());
    const ready = infoLogs ? async () => READY_LINE.test(sp.logs()) : () => newInstance(since, env.AUTH_TOKEN || undefined);
    await waitReady(sp, ready, readyTimeoutMs, `worker (pid ${sp.pid})`);
    return proc;
  };

  const cluster: Cluster = {
    fronts,
    workers,
    get addresses() {
      return fronts.map((f) => f.address!);
    },
    get target() {
      return `ipv4:${fronts.map((f) => f.address!).join(",")}`;
    },
    state,
    async addWorker(env = {}) {
      const p = await launchWorker(env);
      workers.push(p);
      return p;
    },
    async addFront(env = {}) {
      const p = await launchFront(env);
      fronts.push(p);
      return p;
    },
    async stop(signal = "SIGTERM", timeoutMs = 10_000) {
      const procs = [...fronts, ...workers];
      return Promise.all(procs.map((p) => p.stop(signal, timeoutMs)));
    },
    async kill() {
      await Promise.all(all.map(({ proc }) => proc.kill()));
    },
    logs() {
      return mergeLogs(all.map(({ proc }) => proc));
    },
  };
  const nFronts = opts.fronts ?? 2;
  const nWorkers = opts.workers ?? 2;
  try {
    // All at once, as a deployment starts (they migrate the same fresh database concurrently).
    const [fs, ws] = await Promise.all([
      Promise.all(Array.from({ length: nFronts }, (_, i) => launchFront(opts.frontEnv?.(i) ?? {}))),
      Promise.all(Array.from({ length: nWorkers }, (_, i) => launchWorker(opts.workerEnv?.(i) ?? {}))),
    ]);
    fronts.push(...fs);
    workers.push(...ws);
  } catch (e) {
    await cluster.kill();
    throw e;
  }
  return cluster;
}

/**
 * Merges the processes' output into one chronological text (so that the tail of it shows the last events of
 * the whole cluster): each line is tagged `[front 127.0.0.1:PORT]` / `[worker pid]`; lines without a pino
 * `time` (stack traces, plain stderr) keep the time of the line before them.
 */
function mergeLogs(procs: Proc[]): string {
  const lines: { t: number; seq: number; text: string }[] = [];
  let seq = 0;
  for (const p of procs) {
    const tag = `[${p.role} ${p.address ?? p.pid}${p.exited() ? ", exited" : ""}]`;
    let t = 0;
    for (const line of p.logs().split("\n")) {
      if (!line) continue;
      const m = /"time":(\d+)/.exec(line);
      if (m) t = Number(m[1]);
      lines.push({ t, seq: seq++, text: `${tag} ${line}` });
    }
  }
  lines.sort((a, b) => a.t - b.t || a.seq - b.seq);
  const header = procs.map((p) => `${p.role}${p.address ? ` ${p.address}` : ""} pid ${p.pid}${p.exited() ? " (exited)" : ""}`).join("; ");
  return `cluster: ${header}\n${lines.map((l) => l.text).join("\n")}\n`;
}
