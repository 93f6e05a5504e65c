// Starts the real server for e2e tests, in the run's shape:
//   embedded (default): one `node bin/jobworkerp.mjs all-in-one` process on a SQLite file;
//   scalable (E2E_SHAPE=scalable, the `e2e-scalable` vitest project): a cluster of 2 fronts and 2 workers on
//   the run's MariaDB and Redis (see cluster.ts), clients spread over both fronts;
//   postgres (E2E_SHAPE=postgres, the `e2e-postgres` project): the embedded shape with a database of its own
//   on the run's PostgreSQL as the store (POSTGRES_URL);
//   aws (E2E_SHAPE=aws, the `e2e-aws` project): the scalable cluster with STORAGE_TYPE=Aws, SQS queues and
//   DynamoDB job state on the run's moto server (cluster.ts).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { healthCheck } from "./client.js";
import { type Cluster, type ClusterState, ROUND_ROBIN_CHANNEL_OPTIONS, newClusterState, startCluster } from "./cluster.js";
import { createPostgresTestDatabase, postgresAdminUrl } from "./databases.js";
import { baseEnv, freePort, killAllProcs, sleep, spawnServer } from "./proc.js";

export { freePort };

/** The shape the e2e suite runs against (the vitest project sets E2E_SHAPE). */
export const E2E_SHAPE: "embedded" | "scalable" | "postgres" | "aws" =
  process.env.E2E_SHAPE === "scalable" || process.env.E2E_SHAPE === "postgres" || process.env.E2E_SHAPE === "aws" ? process.env.E2E_SHAPE : "embedded";
/** A deployment of separate fronts and workers (Scalable, or AWS: the same cluster on SQS + DynamoDB). */
export const isScalable = () => E2E_SHAPE === "scalable" || E2E_SHAPE === "aws";

export interface StartServerOptions {
  /** Extra env vars for the server (override the defaults below). */
  env?: Record<string, string>;
  /**
   * Reuse the data of an earlier server (e.g. to restart on the same data); default: new data.
   * Embedded: the SQLite file. Scalable: a small JSON file holding the cluster's {mysqlUrl, redisPrefix}.
   * Postgres: a small text file holding the database's URL.
   */
  sqlitePath?: string;
  /** How long to wait for health SERVING (default 30 s embedded, 45 s per process scalable: tsx compiles at start). */
  readyTimeoutMs?: number;
}

export interface ServerHandle {
  /** host:port, as given to GRPC_ADDR (scalable: the first front). */
  address: string;
  port: number;
  /** What the clients of the tests should dial (scalable: every front, round-robin); default `address`. */
  clientTarget?: string;
  /** Channel options that go with `clientTarget`. */
  clientChannelOptions?: Record<string, string>;
  /** "The same data" (see StartServerOptions.sqlitePath). */
  sqlitePath: string;
  /** Temp dir created for this server (holds the SQLite file unless one was given); scratch space for tests. */
  tmpDir: string;
  /** The server's pid (scalable: the first front's; see `cluster` for the others). */
  pid: number;
  /** Scalable: the processes behind this handle. */
  cluster?: Cluster;
  /**
   * Sends `signal` (to every process), waits for exit (SIGKILL after `timeoutMs`) and returns the exit code
   * (null if killed by a signal; scalable: 0 when every process exited 0, else the first other code).
   */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (the server's whole process group; scalable: every process); resolves when it is gone. */
  kill(): Promise<void>;
  /** Captured stdout+stderr so far (scalable: of every process, each under a header). */
  logs(): string;
  /** Whether the server exited (scalable: whether any of its processes did, i.e. the deployment is no longer whole). */
  exited(): boolean;
}

/** Kills every server this process started (use in afterAll as a safety net). */
export async function stopAllServers(): Promise<void> {
  await killAllProcs();
}

export async function startServer(opts: StartServerOptions = {}): Promise<ServerHandle> {
  return isScalable() ? startScalable(opts) : startEmbedded(opts);
}

async function startEmbedded(opts: StartServerOptions): Promise<ServerHandle> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-e2e-"));
  const postgres = E2E_SHAPE === "postgres";
  const sqlitePath = opts.sqlitePath ?? path.join(tmpDir, postgres ? "postgres-url.txt" : "jobworkerp.sqlite3");
  const env: Record<string, string> = {
    ...baseEnv(),
    GRPC_ADDR: address,
    ...(postgres ? { POSTGRES_URL: await postgresDatabase(sqlitePath) } : { SQLITE_URL: sqlitePath }),
    JOB_QUEUE_FETCH_INTERVAL: "100",
    ...opts.env,
  };
  const p = spawnServer("all-in-one", env);
  const handle: ServerHandle = {
    address,
    port,
    sqlitePath,
    tmpDir,
    pid: p.pid,
    logs: p.logs,
    exited: p.exited,
    stop: p.stop,
    kill: p.kill,
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  let lastErr = "";
  for (;;) {
    const info = p.exitInfo();
    if (info !== undefined) {
      throw new Error(`server exited before becoming ready (code ${info.code}, signal ${info.signal})\n--- server output ---\n${p.logs()}`);
    }
    try {
      const st = await healthCheck(address, "", 500);
      if (st === "SERVING") break;
      lastErr = `health status ${st}`;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    if (Date.now() > deadline) {
      await handle.kill();
      throw new Error(`server not SERVING within ${opts.readyTimeoutMs ?? 30_000} ms (${lastErr})\n--- server output ---\n${p.logs()}`);
    }
    await sleep(100);
  }
  return handle;
}

/** The database whose URL `file` holds; a new one (URL written there) when the file is missing or empty. */
async function postgresDatabase(file: string): Promise<string> {
  if (fs.existsSync(file) && fs.statSync(file).size > 0) return fs.readFileSync(file, "utf8");
  const { url } = await createPostgresTestDatabase(postgresAdminUrl(), "e2e");
  fs.writeFileSync(file, url);
  return url;
}

const DEFAULT_CHANNEL = "__default_job_channel__";

/**
 * The env a test gives describes the deployment's total job capacity; split it over the two workers without
 * doubling it: worker 0 serves the default channel (WORKER_DEFAULT_CONCURRENCY), worker 1 the WORKER_CHANNELS
 * list with the default channel disabled. Without WORKER_CHANNELS both serve the default channel, so the
 * default capacity is then doubled (no test of such a server counts default-channel concurrency).
 * Further workers (index >= 2) serve everything.
 */
export function splitWorkerEnv(env: Record<string, string>, index: number): Record<string, string> {
  const names = (env.WORKER_CHANNELS ?? "").split(",").map((s) => s.trim());
  const concs = (env.WORKER_CHANNEL_CONCURRENCIES ?? "").split(",").map((s) => s.trim());
  const extra = names.map((n, i) => ({ n, c: concs[i] ?? "" })).filter((x) => x.n && x.n !== DEFAULT_CHANNEL);
  const explicitDefault = names.indexOf(DEFAULT_CHANNEL);
  if (extra.length === 0 || index >= 2) return {};
  if (index === 0) {
    // The default channel only (a concurrency listed for it in WORKER_CHANNELS wins, as in parseChannels).
    return explicitDefault >= 0
      ? { WORKER_CHANNELS: DEFAULT_CHANNEL, WORKER_CHANNEL_CONCURRENCIES: concs[explicitDefault] ?? "" }
      : { WORKER_CHANNELS: "", WORKER_CHANNEL_CONCURRENCIES: "" };
  }
  return {
    WORKER_CHANNELS: extra.map((x) => x.n).join(","),
    WORKER_CHANNEL_CONCURRENCIES: extra.map((x) => x.c || "1").join(","),
    WORKER_DEFAULT_CHANNEL_DISABLED: "true",
  };
}

async function startScalable(opts: StartServerOptions): Promise<ServerHandle> {
  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-e2e-"));
  const sqlitePath = opts.sqlitePath ?? path.join(tmpDir, "cluster-state.json");
  let state: ClusterState;
  if (fs.existsSync(sqlitePath) && fs.statSync(sqlitePath).size > 0) {
    state = JSON.parse(fs.readFileSync(sqlitePath, "utf8")) as ClusterState;
  } else {
    state = await newClusterState(E2E_SHAPE === "aws");
    fs.writeFileSync(sqlitePath, JSON.stringify(state));
  }
  const env = opts.env ?? {};
  const cluster = await startCluster({
    fronts: 2,
    workers: 2,
    env,
    workerEnv: (i) => splitWorkerEnv(env, i),
    state,
    readyTimeoutMs: opts.readyTimeoutMs ?? 45_000,
  });
  const first = cluster.fronts[0];
  const procs = () => [...cluster.fronts, ...cluster.workers];
  return {
    address: first.address!,
    port: Number(first.address!.split(":")[1]),
    get clientTarget() {
      return cluster.target;
    },
    clientChannelOptions: ROUND_ROBIN_CHANNEL_OPTIONS,
    sqlitePath,
    tmpDir,
    pid: first.pid,
    cluster,
    logs: () => cluster.logs(),
    exited: () => procs().some((p) => p.exited()),
    async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000) {
      const codes = await cluster.stop(signal, timeoutMs);
      const bad = codes.findIndex((c) => c !== 0);
      return bad < 0 ? 0 : codes[bad];
    },
    kill: () => cluster.kill(),
  };
}
