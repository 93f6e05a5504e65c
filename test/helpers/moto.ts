// moto server as the tests' local AWS endpoint (SQS, DynamoDB, Scheduler, ECS API...): a child process on a free
// port, in memory, stopped by its PID. `scripts/test.sh` installs it with pip (`moto[server]`) when missing.
import { spawn, type ChildProcess } from "node:child_process";
import { freePort, findTool } from "./services.js";

export interface MotoServer {
  /** `http://127.0.0.1:PORT`: give it to the AWS clients as their endpoint. */
  endpoint: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const READY_TIMEOUT_MS = 30_000;

/** Static credentials for a local endpoint (moto accepts any). */
export const LOCAL_AWS_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" } as const;
export const LOCAL_AWS_REGION = "us-east-1";

const running = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

/** `moto_server` from PATH, else `python3 -m moto.server` (pip installs the module without the script on PATH sometimes). */
function command(port: number): [string, string[]] {
  const args = ["-H", "127.0.0.1", "-p", String(port)];
  const exe = findTool("moto_server");
  return exe ? [exe, args] : ["python3", ["-m", "moto.server", ...args]];
}

export async function startMoto(): Promise<MotoServer> {
  const port = await freePort();
  const [cmd, args] = command(port);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  running.add(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  child.on("error", () => undefined); // a missing executable shows up as the exit below
  const endpoint = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let done = false;
  void exited.then(() => {
    done = true;
    running.delete(child);
  });
  for (;;) {
    if (done) {
      throw new Error(
        `moto server exited before it was ready (${cmd} ${args.join(" ")}): ${stderr.trim() || "no output"}. Install it with \`python3 -m pip install 'moto[server]'\` (scripts/test.sh does).`,
      );
    }
    // moto answers its dashboard API once Flask is serving
    const ok = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.status < 500,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`moto server did not answer on ${endpoint} within ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint,
    get pid() {
      return done ? undefined : child.pid;
    },
    async stop() {
      if (done) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
