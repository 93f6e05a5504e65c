// Spawning the real server (`node bin/jobworkerp.mjs <role>`) as a child process for e2e tests: detached in
// its own process group, output captured, and killed (with everything it started) when the test process exits.
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { inject } from "vitest";
import { REPO_ROOT } from "./protos.js";

export type Role = "all-in-one" | "front" | "worker";

/** The package's bin, run through tsx (what `npx jobworkerp` runs). */
export const BIN_ENTRY = path.join(REPO_ROOT, "bin", "jobworkerp.mjs");

/**
 * The server's entry script: JOBWORKERP_E2E_ENTRY (e.g. a patched checkout), else the run's pre-bundled build
 * (test/global-setup.ts bundles the sources once per run, as the container image does: a process then starts on
 * ~1.2 CPU-s less than through tsx), else the sources through tsx (bin/jobworkerp.mjs).
 */
export function serverEntry(): string {
  if (process.env.JOBWORKERP_E2E_ENTRY) return path.resolve(process.env.JOBWORKERP_E2E_ENTRY);
  let bundled = "";
  try {
    bundled = inject("serverBundle");
  } catch {
    /* not inside a vitest worker */
  }
  return bundled || BIN_ENTRY;
}
const LOG_LIMIT = 512 * 1024;

const live = new Set<ChildProcess>();
function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL") {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // detached: the child leads its own process group
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* gone */
    }
  }
}
// Last resort: never leave servers (or the jobs they run) behind when the test process exits.
process.once("exit", () => {
  for (const c of live) killGroup(c);
});
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    for (const c of live) killGroup(c);
    process.exit(130);
  });
}

/** Kills every server process this test process started (use in afterAll as a safety net). */
export async function killAllProcs(): Promise<void> {
  for (const c of [...live]) killGroup(c);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The test process's env minus what must not leak into a server (vitest's own settings). */
export function baseEnv(): Record<string, string> {
  const env = { ...(process.env as Record<string, string>) };
  delete env.VITEST;
  delete env.VITEST_POOL_ID;
  delete env.VITEST_WORKER_ID;
  delete env.NODE_OPTIONS;
  delete env.E2E_SHAPE;
  return env;
}

/** One server process. */
export interface ServerProc {
  role: Role;
  pid: number;
  /** Sends `signal`, waits for exit (SIGKILL after `timeoutMs`) and returns the exit code (null if killed by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL (the whole process group); resolves when it is gone. */
  kill(): Promise<void>;
  /** Captured stdout+stderr so far. */
  logs(): string;
  exited(): boolean;
  /** Resolves with the exit code once the process is gone. */
  readonly exit: Promise<number | null>;
  /** Exit code and signal (undefined while running). */
  exitInfo(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
}

/** Spawns `node <entry> <role>` with exactly `env` (build it from baseEnv()). */
export function spawnServer(role: Role, env: Record<string, string>): ServerProc {
  let log = "";
  const append = (chunk: Buffer) => {
    log += chunk.toString("utf8");
    if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
  };
  const child = spawn(process.execPath, [serverEntry(), role], {
    cwd: REPO_ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  live.add(child);
  child.stdout!.on("data", append);
  child.stderr!.on("data", append);
  let info: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exit = new Promise<number | null>((resolve) => {
    child.once("exit", (code, signal) => {
      info = { code, signal };
      live.delete(child);
      resolve(code);
    });
    child.once("error", (e) => {
      append(Buffer.from(`spawn error: ${e.message}\n`));
      info = { code: -1, signal: null };
      live.delete(child);
      resolve(-1);
    });
  });
  return {
    role,
    pid: child.pid ?? -1,
    exit,
    exitInfo: () => info,
    logs: () => log,
    exited: () => info !== undefined,
    async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000) {
      if (info !== undefined) return info.code;
      child.kill(signal);
      const t = setTimeout(() => {
        append(Buffer.from(`\n[e2e] ${role} did not exit ${timeoutMs} ms after ${signal}; SIGKILL\n`));
        killGroup(child);
      }, timeoutMs);
      const code = await exit;
      clearTimeout(t);
      // Reap anything it left running in its group (e.g. job processes).
      killGroup(child);
      return code;
    },
    async kill() {
      if (info === undefined) killGroup(child);
      await exit;
    },
  };
}
