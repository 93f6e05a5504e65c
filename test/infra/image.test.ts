// The container image without a Docker engine: the Dockerfile's shape (multi-stage, non-root, an init as PID 1,
// a gRPC health check, copies of files that exist and are in the build context), and the pre-bundled runtime it
// ships, run for real: `node dist/jobworkerp.mjs all-in-one` serves, and `node dist/healthcheck.mjs` tells
// SERVING from not serving.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { IgnoreStrategy } from "aws-cdk-lib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeHealthStatus } from "../../worker-container/src/api/health_probe.js";
import { healthCheckAddr } from "../../worker-container/src/cli/config.js";
import { REPO } from "./synth.js";

const dockerfile = fs.readFileSync(path.join(REPO, "worker-container/Dockerfile"), "utf8");
/** Instructions with line continuations joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const stages = instructions.reduce<string[][]>((acc, l) => (/^FROM\s/i.test(l) ? [...acc, [l]] : (acc.at(-1)?.push(l), acc)), []);

describe("worker-container/Dockerfile", () => {
  it("is multi-stage on a current Node LTS, with a final stage that runs as a non-root user under tini", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    expect(dockerfile).toMatch(/ARG NODE_IMAGE=node:24-bookworm-slim/);
    const final = stages.at(-1)!;
    const user = final.filter((l) => /^USER\s/i.test(l)).at(-1);
    expect(user).toBeDefined();
    expect(user!.split(/\s+/)[1]).not.toMatch(/^(root|0)(:|$)/);
    expect(final.find((l) => /^ENTRYPOINT/i.test(l))).toMatch(/"tini", "--", "node"/);
    expect(final.find((l) => /^HEALTHCHECK/i.test(l))).toMatch(/CMD \["node", "dist\/healthcheck\.mjs"\]/);
    // production dependencies only in the runtime image; dev tools (esbuild) only in the build stage
    expect(instructions.join("\n")).toMatch(/npm ci --omit=dev/);
    expect(final.join("\n")).toMatch(/COPY --from=deps \/app\/node_modules\//);
  });

  it("fetches nothing at build time but packages from npm and Debian", () => {
    for (const l of instructions) {
      expect(l, l).not.toMatch(/\b(curl|wget)\b|^ADD\s+https?:/i);
    }
  });

  it("copies only files that exist and that .dockerignore keeps in the build context", () => {
    const ignore = fs.readFileSync(path.join(REPO, ".dockerignore"), "utf8").split("\n").filter((l) => l.trim() && !l.startsWith("#"));
    const strategy = IgnoreStrategy.docker(REPO, ignore);
    const sources = instructions
      .filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l))
      .flatMap((l) => l.replace(/--\S+/g, "").trim().split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const src of sources) {
      const abs = path.join(REPO, src);
      expect(fs.existsSync(abs), src).toBe(true);
      expect(strategy.ignores(abs), `${src} is excluded by .dockerignore`).toBe(false);
    }
    for (const heavy of ["node_modules", ".git", "cdk.out", "test", "dist"]) expect(strategy.ignores(path.join(REPO, heavy)), heavy).toBe(true);
  });
});

describe("the health probe", () => {
  it("reads the serving status from a HealthCheckResponse", () => {
    expect(decodeHealthStatus(Uint8Array.from([0x08, 0x01]))).toBe(1); // SERVING
    expect(decodeHealthStatus(Uint8Array.from([0x08, 0x02]))).toBe(2); // NOT_SERVING
    expect(decodeHealthStatus(new Uint8Array())).toBe(0); // UNKNOWN (field absent)
    expect(decodeHealthStatus(Uint8Array.from([0x12, 0x01, 0x41, 0x08, 0x01]))).toBe(1); // unknown field skipped
    expect(() => decodeHealthStatus(Uint8Array.from([0x08]))).toThrow(/truncated/);
  });

  it("targets the loopback address of GRPC_ADDR's port", () => {
    expect(healthCheckAddr({})).toBe("127.0.0.1:9000");
    expect(healthCheckAddr({ GRPC_ADDR: "0.0.0.0:9100" })).toBe("127.0.0.1:9100");
    expect(healthCheckAddr({ GRPC_ADDR: "[::]:7000" })).toBe("127.0.0.1:7000");
  });
});

describe("the pre-bundled runtime (dist/, as the image runs it)", () => {
  // inside the repo, so the bundle resolves node_modules and the sources' proto files as the image does
  const dist = path.join(REPO, "test/artifacts", `bundle-${process.pid}`);
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "jobworkerp-bundle-"));
  let server: ChildProcess | undefined;
  let log = "";
  let port = 0;

  const env = () => {
    const e: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const k of ["VITEST", "VITEST_POOL_ID", "VITEST_WORKER_ID", "NODE_OPTIONS", "E2E_SHAPE"]) delete e[k];
    return { ...e, GRPC_ADDR: "127.0.0.1:0", SQLITE_URL: `sqlite://${path.join(data, "db.sqlite3")}?mode=rwc`, LOG_LEVEL: "info" };
  };
  const probe = (addr: string) => {
    try {
      execFileSync(process.execPath, [path.join(dist, "healthcheck.mjs"), addr], { stdio: "pipe", timeout: 20_000 });
      return 0;
    } catch (e) {
      return (e as { status?: number }).status ?? -1;
    }
  };

  beforeAll(async () => {
    execFileSync(process.execPath, [path.join(REPO, "worker-container/bundle.mjs"), dist], { stdio: "pipe" });
    server = spawn(process.execPath, [path.join(dist, "jobworkerp.mjs"), "all-in-one"], { cwd: data, env: env(), stdio: ["ignore", "pipe", "pipe"] });
    server.stdout!.on("data", (c: Buffer) => (log += c.toString()));
    server.stderr!.on("data", (c: Buffer) => (log += c.toString()));
    const deadline = Date.now() + 60_000;
    while (!port && Date.now() < deadline && server.exitCode === null) {
      const m = /"msg":"jobworkerp listening"/.test(log) ? /"port":(\d+)/.exec(log) : null;
      if (m) port = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 100));
    }
    if (!port) throw new Error(`the bundled server did not start:\n${log}`);
  }, 120_000);

  afterAll(() => {
    if (server && server.exitCode === null) server.kill("SIGKILL");
    fs.rmSync(dist, { recursive: true, force: true });
    fs.rmSync(data, { recursive: true, force: true });
  });

  it("serves gRPC: the probe exits 0 on SERVING", () => {
    expect(probe(`127.0.0.1:${port}`)).toBe(0);
  });

  it("serves the runners' proto texts read through the bundle (the sources' paths survive bundling)", () => {
    const out = execFileSync(process.execPath, [path.join(dist, "jobworkerp.mjs"), "-a", `127.0.0.1:${port}`, "runner", "find", "-i", "COMMAND", "--json"], { env: env(), encoding: "utf8", timeout: 30_000 });
    expect(out).toContain("COMMAND");
    expect(out).toMatch(/message CommandArgs/);
  });

  it("exits cleanly on SIGTERM, after which the probe fails", async () => {
    const exited = new Promise<number | null>((r) => server!.once("exit", (code) => r(code)));
    server!.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(probe(`127.0.0.1:${port}`)).toBe(1);
  }, 60_000);
});
