// Real MariaDB, Redis and PostgreSQL for tests, without Docker: ordinary child processes on free ports with their data in a
// temp dir (scripts/test.sh installs the Debian packages). Child processes rather than daemons so that we hold
// their PIDs, reap them ourselves and never signal anything by name. `stop()`/`start()` restart a service on
// the same port and data dir (outage tests); `destroy()` stops it for good and removes the dir.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import pg from "pg";

export interface TestService {
  /** Connection URL (mysql://user:pass@127.0.0.1:PORT/db or redis://127.0.0.1:PORT). */
  url: string;
  port: number;
  dir: string;
  /** PID of the running process, undefined while stopped. */
  readonly pid: number | undefined;
  /** Stop the process (SIGTERM, or `kill: true` for SIGKILL, a crash); data and port are kept. */
  stop(opts?: { kill?: boolean }): Promise<void>;
  /** Start it again on the same port and data dir; resolves when it accepts connections. */
  start(): Promise<void>;
  /** SIGSTOP: a hung server (connections stay open, nothing answers). Resolves once every thread is stopped. */
  freeze(): Promise<void>;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** Stop and remove the temp dir. */
  destroy(): Promise<void>;
}
export type MariadbService = TestService;
export type RedisService = TestService;
export type PostgresService = TestService;

const READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

// Killed with the run (vitest exiting on an error or Ctrl-C) so no server outlives it.
const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** Absolute path of a tool; sbin dirs are searched too since mariadbd lives in /usr/sbin. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}

function tool(name: string, pkg: string): string {
  const path = findTool(name);
  if (!path) {
    throw new Error(`${name} not found: install ${pkg} (scripts/test.sh, i.e. \`npm test\`, installs it on Debian)`);
  }
  return path;
}

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

async function tail(path: string): Promise<string> {
  try {
    return (await readFile(path, "utf8")).split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * A restartable child process: `launch` spawns it, `ready` probes it until it answers. Start-up fails fast
 * (with the log's tail) when the process exits before it is ready.
 */
function supervise(name: string, log: string, launch: () => ChildProcess, ready: () => Promise<boolean>) {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let frozen = false;

  async function start(): Promise<void> {
    if (child) return;
    const c = launch();
    child = c;
    running.add(c);
    let dead = false;
    exited = new Promise((resolve) => {
      // "error" without "exit" when the spawn itself fails
      const gone = () => {
        dead = true;
        running.delete(c);
        if (child === c) child = undefined;
        resolve();
      };
      c.once("exit", gone);
      c.once("error", gone);
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (dead) throw new Error(`${name} exited during start-up; ${log}:\n${await tail(log)}`);
      if (await ready()) return;
      if (Date.now() > deadline) {
        await stop({ kill: true });
        throw new Error(`${name} not ready after ${READY_TIMEOUT_MS} ms; ${log}:\n${await tail(log)}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function stop(opts: { kill?: boolean } = {}): Promise<void> {
    const c = child;
    if (!c) return;
    c.kill(opts.kill ? "SIGKILL" : "SIGTERM");
    if (frozen) thaw(); // a stopped process would only see SIGTERM once continued
    const timer = setTimeout(() => c.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async function freeze(): Promise<void> {
    if (!child?.pid) throw new Error(`${name} is not running`);
    child.kill("SIGSTOP");
    frozen = true;
    // Stopping is asynchronous per thread: a busy thread can still answer a query right after kill().
    const deadline = Date.now() + 5000;
    while (!allThreadsStopped(child.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  function thaw(): void {
    frozen = false;
    child?.kill("SIGCONT");
  }

  return { start, stop, freeze, thaw, pid: () => child?.pid };
}

/** Every thread of the process in state T (stopped); true where /proc is missing (nothing to wait for). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
    });
  } catch {
    return true;
  }
}

/** First start on a free port; on another one if a concurrent process took that port in the meantime. */
async function startOnFreePort(proc: { start(): Promise<void> }, usePort: (port: number) => void): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    usePort(await freePort());
    try {
      return await proc.start();
    } catch (e) {
      if (attempt >= 3 || !/address already in use/i.test(String(e))) throw e;
    }
  }
}

function tcpProbe(port: number, send: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = createConnection({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write(send));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\n")) done(buf.startsWith(expect));
    });
  });
}

export async function startRedis(): Promise<RedisService> {
  const bin = tool("redis-server", "redis-server");
  const dir = await mkdtemp(join(tmpdir(), "jwp-redis-"));
  const log = join(dir, "redis.log");
  let port = 0;
  const args = () => [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no",
    "--dir", dir, "--pidfile", join(dir, "redis.pid"), "--logfile", log,
  ];
  const proc = supervise("redis-server", log, () => spawn(bin, args(), { stdio: "ignore" }), () =>
    tcpProbe(port, "PING\r\n", "+PONG"),
  );
  try {
    await startOnFreePort(proc, (p) => (port = p));
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get pid() {
      return proc.pid();
    },
    stop: proc.stop,
    start: proc.start,
    freeze: proc.freeze,
    thaw: proc.thaw,
    destroy: async () => {
      await proc.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface MariadbOptions {
  /** Database created for the URL (default "jobworkerp"). */
  database?: string;
}

/**
 * MariaDB with a TCP user that may create databases (tests create one per file: see databases.ts).
 * The URL's user has every privilege, so it also serves as the admin URL.
 */
export async function startMariadb(opts: MariadbOptions = {}): Promise<MariadbService> {
  const mariadbd = tool("mariadbd", "mariadb-server");
  const installDb = tool("mariadb-install-db", "mariadb-server");
  const dir = await mkdtemp(join(tmpdir(), "jwp-mariadb-"));
  try {
    let port = 0;
    const data = join(dir, "data");
    const socket = join(dir, "mysqld.sock");
    const log = join(dir, "err.log");
    // Internal temp tables (ORDER BY spills) in our own dir, not in a /tmp that other programs clean up.
    const tmp = join(dir, "tmp");
    await mkdir(tmp);
    // --user is only accepted when running as root (CI); otherwise the server runs as the caller anyway.
    const asUser = process.getuid?.() === 0 ? ["--user=root"] : [];
    await run(installDb, [
      "--no-defaults", `--datadir=${data}`, ...asUser, "--auth-root-authentication-method=normal", "--skip-test-db",
    ]);
    const args = () => [
      "--no-defaults", `--datadir=${data}`, ...asUser, `--port=${port}`, "--bind-address=127.0.0.1",
      `--socket=${socket}`, `--pid-file=${join(dir, "mysqld.pid")}`, `--log-error=${log}`, `--tmpdir=${tmp}`, "--skip-log-bin",
      "--innodb-buffer-pool-size=64M",
      // No fsyncs (commits still reach the OS at once, so a killed server keeps them: outage tests), no DNS
      // lookups, room for the pools of parallel test files.
      "--innodb-flush-log-at-trx-commit=2", "--innodb-doublewrite=0", "--skip-name-resolve", "--max-connections=1000",
    ];
    // Readiness over the socket as root (no password with --auth-root-authentication-method=normal).
    const proc = supervise("mariadbd", log, () => spawn(mariadbd, args(), { stdio: "ignore" }), async () => {
      try {
        const c = await mysql.createConnection({ socketPath: socket, user: "root", connectTimeout: 1000 });
        await c.end();
        return true;
      } catch {
        return false;
      }
    });
    await startOnFreePort(proc, (p) => (port = p));

    const user = "jobworkerp";
    const password = randomBytes(12).toString("hex");
    const database = opts.database ?? "jobworkerp";
    try {
      const root = await mysql.createConnection({ socketPath: socket, user: "root" });
      try {
        await root.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, password]);
        await root.query(`GRANT ALL PRIVILEGES ON *.* TO ?@'%' WITH GRANT OPTION`, [user]);
        await root.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
      } finally {
        await root.end();
      }
    } catch (e) {
      await proc.stop({ kill: true });
      throw e;
    }
    return {
      url: `mysql://${user}:${password}@127.0.0.1:${port}/${database}`,
      port,
      dir,
      get pid() {
        return proc.pid();
      },
      stop: proc.stop,
      start: proc.start,
      freeze: proc.freeze,
      thaw: proc.thaw,
      destroy: async () => {
        await proc.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

/** initdb and postgres of one PostgreSQL version: Debian keeps them off PATH, in /usr/lib/postgresql/<ver>/bin. */
function postgresTools(): { initdb: string; postgres: string } {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "postgres"))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest) return { initdb: join(root, newest, "bin", "initdb"), postgres: join(root, newest, "bin", "postgres") };
  return { initdb: tool("initdb", "postgresql"), postgres: tool("postgres", "postgresql") };
}

/** PostgreSQL refuses to run as root: then it runs as `nobody` (uid/gid from /etc/passwd). */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync("/etc/passwd", "utf8").split("\n").find((l) => l.startsWith("nobody:"));
  const [, , uid, gid] = line?.split(":") ?? [];
  if (uid === undefined || gid === undefined) throw new Error("PostgreSQL cannot run as root and there is no 'nobody' user to run it as");
  return { uid: Number(uid), gid: Number(gid) };
}

/** `pid` and its children (PostgreSQL: the postmaster and its backends, each in a process group of its own). */
function withChildren(pid: number): number[] {
  const pids = [pid];
  try {
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) pids.push(Number(entry));
      } catch {
        // exited meanwhile
      }
    }
  } catch {
    // no /proc: the pid alone
  }
  return pids;
}

/**
 * PostgreSQL with trust authentication on 127.0.0.1; the URL's user (`postgres`) is a superuser, so it also
 * serves as the admin URL (tests create a database per file: see databases.ts). The server is a postmaster
 * plus one process per connection: freeze(), thaw() and stop({ kill: true }) signal all of them; a graceful
 * stop is PostgreSQL's fast shutdown (SIGINT: SIGTERM would wait for every client to leave).
 */
export async function startPostgres(): Promise<PostgresService> {
  const bin = postgresTools();
  const user = postgresUser();
  const dir = await mkdtemp(join(tmpdir(), "jwp-postgres-"));
  try {
    if (user) await chown(dir, user.uid, user.gid);
    const data = join(dir, "data");
    const log = join(dir, "postgres.log");
    let port = 0;
    // C locale: byte-wise text order whatever the machine's locale; --no-sync: nothing here must survive a reboot.
    await run(bin.initdb, ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"], { ...user });
    const args = () => [
      "-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir,
      // No fsyncs (commits still reach the OS at once, so a killed server keeps them: outage tests); room for
      // the pools of parallel test files and e2e servers.
      "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
      "-c", "shared_buffers=32MB",
    ];
    const launch = () => {
      const out = openSync(log, "a");
      try {
        return spawn(bin.postgres, args(), { ...user, stdio: ["ignore", out, out] });
      } finally {
        closeSync(out);
      }
    };
    const proc = supervise("postgres", log, launch, async () => {
      const c = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres", connectionTimeoutMillis: 1000 });
      c.on("error", () => {});
      try {
        await c.connect();
        await c.query("select 1");
        return true;
      } catch {
        return false;
      } finally {
        await c.end().catch(() => {});
      }
    });
    await startOnFreePort(proc, (p) => (port = p));

    let frozen = false;
    // The postmaster first (it forks no more backends once stopped or dead), then its children as they were.
    const signalAll = (signal: NodeJS.Signals) => {
      const pid = proc.pid();
      if (!pid) return [];
      const pids = withChildren(pid);
      for (const p of pids) {
        try {
          process.kill(p, signal);
        } catch {
          // gone already
        }
      }
      return pids;
    };
    const thaw = () => {
      frozen = false;
      signalAll("SIGCONT");
    };
    const stop = async (opts: { kill?: boolean } = {}) => {
      if (frozen) thaw(); // stopped processes would only see the shutdown signal once continued
      if (opts.kill) signalAll("SIGKILL"); // a crash of the whole server, backends included
      else proc.pid() && process.kill(proc.pid()!, "SIGINT"); // the postmaster's fast shutdown
      await proc.stop(opts);
    };
    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dir,
      get pid() {
        return proc.pid();
      },
      stop,
      start: proc.start,
      async freeze() {
        if (!proc.pid()) throw new Error("postgres is not running");
        const pids = signalAll("SIGSTOP");
        frozen = true;
        // Stopping is asynchronous per process: a busy backend could still answer a query right after kill().
        const deadline = Date.now() + 5000;
        while (!pids.every(allThreadsStopped) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      },
      thaw,
      destroy: async () => {
        await stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
