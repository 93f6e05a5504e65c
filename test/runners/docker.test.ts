// DOCKER runner against a real Docker Engine API: the run's Podman service (test/global-setup.ts) with a local
// busybox image.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import Docker from "dockerode";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { DockerArgsSchema } from "../../worker-container/src/gen/jobworkerp/runner/docker_args_pb.js";
import { DockerResultSchema, type DockerResult } from "../../worker-container/src/gen/jobworkerp/runner/docker_result_pb.js";
import { DockerRunnerSettingsSchema } from "../../worker-container/src/gen/jobworkerp/runner/docker_settings_pb.js";
import { dockerRunner } from "../../worker-container/src/runners/docker/index.js";
import { connectionOptions } from "../../worker-container/src/runners/docker/dockerode_engine.js";
import type { RunContext, RunnerDefinition, RunnerInstance } from "../../worker-container/src/runners/runner.js";
import { expectRunnerError, rejection } from "../helpers/runner_errors.js";

const dockerHost = inject("dockerHost");
const image = inject("dockerImage");
let docker: Docker;
let runner: RunnerDefinition;
const tmp = mkdtempSync(join(tmpdir(), "docker-runner-"));

beforeAll(() => {
  const err = inject("dockerError");
  if (err) throw new Error(err);
  docker = new Docker(connectionOptions(dockerHost));
  runner = dockerRunner({ dockerHost });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

type Settings = MessageInitShape<typeof DockerRunnerSettingsSchema>;
type Args = MessageInitShape<typeof DockerArgsSchema>;

let nextJobId = BigInt(Date.now()) * 1000n;
const ctx = (signal: AbortSignal = new AbortController().signal): RunContext => ({ signal, using: "run", jobId: ++nextJobId, metadata: {} });
const settingsBytes = (s: Settings) => toBinary(DockerRunnerSettingsSchema, create(DockerRunnerSettingsSchema, s));
const argsBytes = (a: Args) => toBinary(DockerArgsSchema, create(DockerArgsSchema, a));

async function runOn(inst: RunnerInstance, a: Args, c: RunContext = ctx()): Promise<DockerResult> {
  return fromBinary(DockerResultSchema, await inst.run(argsBytes(a), c));
}
/** One job on a one-shot instance (as the dispatcher does: create, run, close). */
async function run(s: Settings, a: Args, c?: RunContext): Promise<DockerResult> {
  const inst = await runner.create(settingsBytes(s), { useStatic: false });
  try {
    return await runOn(inst, a, c);
  } finally {
    await inst.close?.();
  }
}

/** Containers (also stopped ones) the runner created for a job. */
const containersOfJob = (jobId: bigint) =>
  docker.listContainers({ all: true, filters: { label: [`jobworkerp.job_id=${jobId}`] } });
const containerExists = (id: string) =>
  docker.getContainer(id).inspect().then(
    () => true,
    (e: { statusCode?: number }) => (e.statusCode === 404 ? false : Promise.reject(e)),
  );

async function waitFor<T>(f: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("DOCKER one-shot containers", () => {
  it("runs echo and returns its output, exit code, timings and the container id; the container is removed", async () => {
    const before = Date.now();
    const r = await run({ fromImage: image }, { cmd: ["echo", "hello", "docker"] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe("hello docker\n");
    expect(r.stderr).toBe("");
    expect(r.containerId).toMatch(/^[0-9a-f]{12,}$/);
    expect(Number(r.startedAt)).toBeGreaterThanOrEqual(before);
    expect(Number(r.executionTimeMs)).toBeGreaterThanOrEqual(0);
    expect(await containerExists(r.containerId!)).toBe(false);
  });

  it("keeps stdout and stderr apart", async () => {
    const r = await run({ repo: "localhost/busybox", tag: "test" }, { cmd: ["sh", "-c", "echo out; echo err >&2"] });
    expect(r.stdout).toBe("out\n");
    expect(r.stderr).toBe("err\n");
  });

  it("uses the image from the args when the settings name none", async () => {
    const r = await run({}, { image, cmd: ["echo", "from args"] });
    expect(r.stdout).toBe("from args\n");
  });

  it("merges settings env and args env (args win), and applies working dir, user and entrypoint", async () => {
    const script = 'echo "$A $B $C"; pwd; id -u; id -g';
    const r = await run(
      { fromImage: image, env: ["A=1", "B=2"], workingDir: "/tmp", entrypoint: ["sh", "-c"] },
      { env: ["B=3", "C=4"], user: "1000:1000", cmd: [script] },
    );
    expect(r.stdout).toBe("1 3 4\n/tmp\n1000\n1000\n");
    // args working_dir wins over the settings'
    const r2 = await run({ fromImage: image, workingDir: "/tmp" }, { workingDir: "/home/app", cmd: ["pwd"] });
    expect(r2.stdout).toBe("/home/app\n");
  });

  it("binds host directories from settings and args volumes (read-only with :ro)", async () => {
    writeFileSync(join(tmp, "in.txt"), "from the host");
    const r = await run(
      { fromImage: image, volumes: [`${tmp}:/data:ro`] },
      { cmd: ["sh", "-c", "cat /data/in.txt; echo x > /data/out.txt || echo read-only"] },
    );
    expect(r.stdout).toContain("from the host");
    expect(r.stdout).toContain("read-only");
  });

  it("a non-zero exit is a result unless treat_nonzero_as_error; then ERROR_AND_RETRY with a stderr excerpt", async () => {
    const cmd = ["sh", "-c", "echo failing >&2; exit 3"];
    const r = await run({ fromImage: image }, { cmd });
    expect(r.exitCode).toBe(3);
    expect(r.stderr).toBe("failing\n");
    await expectRunnerError(run({ fromImage: image }, { cmd, treatNonzeroAsError: true }), "ERROR_AND_RETRY", /exited with code 3: failing/);
    const ok = await run({ fromImage: image }, { cmd, treatNonzeroAsError: true, successExitCodes: [3] });
    expect(ok.exitCode).toBe(3);
  });

  it("timeout_sec kills and removes the container", async () => {
    const c = ctx();
    const t0 = Date.now();
    const p = run({ fromImage: image, timeoutSec: 30n }, { cmd: ["sleep", "60"], timeoutSec: 1n }, c);
    // it really runs first
    const running = await waitFor(async () => (await containersOfJob(c.jobId)).find((x) => x.State === "running"));
    expect(running).toBeDefined();
    await expectRunnerError(p, "ERROR_AND_RETRY", /timed out after 1 s/);
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(await containersOfJob(c.jobId)).toEqual([]);
    expect(await containerExists(running.Id)).toBe(false);
  });

  it("cancellation (the job's signal) removes the container promptly", async () => {
    const ac = new AbortController();
    const c = ctx(ac.signal);
    const p = run({ fromImage: image }, { cmd: ["sleep", "60"] }, c);
    const running = await waitFor(async () => (await containersOfJob(c.jobId)).find((x) => x.State === "running"));
    const t0 = Date.now();
    const reason = new Error("cancelled by test");
    ac.abort(reason);
    expect(await rejection(p)).toBe(reason);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await containerExists(running.Id)).toBe(false);
  });

  it("a missing image is FATAL_ERROR with a clear message and nothing is pulled", async () => {
    await expectRunnerError(
      run({}, { image: "localhost/no-such-image:1", cmd: ["true"] }),
      "FATAL_ERROR",
      /image localhost\/no-such-image:1 is not present on the container engine.*only the worker settings' from_image is pulled/,
    );
    // repo/tag images are never pulled either
    await expectRunnerError(run({ repo: "localhost/no-such-image", tag: "2" }, { cmd: ["true"] }), "FATAL_ERROR", /not present/);
  });

  it("a missing from_image is pulled; a pull that fails says so", async () => {
    // No registry is reachable here: the pull is attempted and fails with the registry error.
    const e = await rejection(run({ fromImage: "127.0.0.1:9/no-such-image:1" }, { cmd: ["true"] }));
    expect((e as Error).message).toMatch(/cannot pull image 127\.0\.0\.1:9\/no-such-image:1/);
  });

  it("a command missing from the image is FATAL_ERROR", async () => {
    await expectRunnerError(run({ fromImage: image }, { cmd: ["no-such-binary"] }), "FATAL_ERROR", /no-such-binary/);
  });

  it("rejects bad settings and args with FATAL_ERROR", async () => {
    await expectRunnerError(runner.create(settingsBytes({ fromSrc: "git://x" })), "FATAL_ERROR", /from_src/);
    await expectRunnerError(runner.create(settingsBytes({ fromImage: image, env: ["NOEQUALS"] })), "FATAL_ERROR", /KEY=VALUE/);
    await expectRunnerError(runner.create(settingsBytes({ volumes: ["relative:/x"] })), "FATAL_ERROR", /volumes/);
    await expectRunnerError(run({}, { cmd: ["true"] }), "FATAL_ERROR", /no image/);
    await expectRunnerError(runner.create(new Uint8Array([0xff, 0xff])), "FATAL_ERROR", /invalid DockerRunnerSettings/);
  });

  it("an unreachable engine is ERROR_AND_RETRY", async () => {
    const off = dockerRunner({ dockerHost: `unix://${join(tmp, "nothing.sock")}` });
    const inst = await off.create(settingsBytes({ fromImage: image }));
    await expectRunnerError(runOn(inst, { cmd: ["true"] }), "ERROR_AND_RETRY", /cannot reach the container engine/);
  });
});

describe("DOCKER use_static", () => {
  it("reuses one long-lived container for consecutive jobs; close() removes it", async () => {
    const inst = await runner.create(settingsBytes({ fromImage: image, env: ["S=static"] }), { useStatic: true });
    try {
      const r1 = await runOn(inst, { cmd: ["sh", "-c", "echo first > /tmp/mark; echo $S $J"], env: ["J=1"] });
      const r2 = await runOn(inst, { cmd: ["cat", "/tmp/mark"], user: "1000", workingDir: "/home/app" });
      const r3 = await runOn(inst, { cmd: ["sh", "-c", "pwd; id -u; exit 4"], user: "1000", workingDir: "/home/app" });
      expect(r1.stdout).toBe("static 1\n");
      expect(r2.stdout).toBe("first\n");
      expect(r3).toMatchObject({ stdout: "/home/app\n1000\n", exitCode: 4 });
      expect(r2.containerId).toBe(r1.containerId);
      expect(r3.containerId).toBe(r1.containerId);
      expect(await containerExists(r1.containerId!)).toBe(true);
      await expectRunnerError(runOn(inst, { cmd: ["false"], treatNonzeroAsError: true }), "ERROR_AND_RETRY", /exited with code 1/);
      await expectRunnerError(runOn(inst, { cmd: ["true"], volumes: ["/tmp:/x"] }), "FATAL_ERROR", /use_static/);
      await inst.close!();
      expect(await containerExists(r1.containerId!)).toBe(false);
    } finally {
      await inst.close?.();
    }
  });

  it("a timed-out exec removes the container; the next job gets a new one", async () => {
    const inst = await runner.create(settingsBytes({ fromImage: image }), { useStatic: true });
    try {
      const r1 = await runOn(inst, { cmd: ["true"] });
      await expectRunnerError(runOn(inst, { cmd: ["sleep", "60"], timeoutSec: 1n }), "ERROR_AND_RETRY", /timed out/);
      expect(await containerExists(r1.containerId!)).toBe(false);
      const r2 = await runOn(inst, { cmd: ["echo", "again"] });
      expect(r2.stdout).toBe("again\n");
      expect(r2.containerId).not.toBe(r1.containerId);
    } finally {
      await inst.close?.();
    }
  });

  it("a static container removed behind the runner's back is replaced on the next job", async () => {
    const inst = await runner.create(settingsBytes({ fromImage: image }), { useStatic: true });
    try {
      const r1 = await runOn(inst, { cmd: ["true"] });
      await docker.getContainer(r1.containerId!).remove({ force: true });
      await expectRunnerError(runOn(inst, { cmd: ["true"] }), "ERROR_AND_RETRY", /static container/);
      const r2 = await runOn(inst, { cmd: ["echo", "back"] });
      expect(r2.stdout).toBe("back\n");
      expect(r2.containerId).not.toBe(r1.containerId);
    } finally {
      await inst.close?.();
    }
  });

  it("needs the image in the settings, and a missing one fails at creation with FATAL_ERROR", async () => {
    await expectRunnerError(runner.create(settingsBytes({}), { useStatic: true }), "FATAL_ERROR", /needs its image in the settings/);
    await expectRunnerError(
      runner.create(settingsBytes({ repo: "localhost/no-such-image" }), { useStatic: true }),
      "FATAL_ERROR",
      /not present/,
    );
  });
});
