// DOCKER through gRPC: settings and args encoded with the proto texts the server serves, containers run on the
// run's Podman service (Docker Engine API; test/global-setup.ts) from a local busybox image.
import { beforeAll, describe, expect, inject, it } from "vitest";
import Docker from "dockerode";
import { connectionOptions } from "../../worker-container/src/runners/docker/dockerode_engine.js";
import { expectAlive, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { isScalable } from "../helpers/server.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const DOCKER_RUNNER_ID = 4;
const dockerHost = inject("dockerHost");
const image = inject("dockerImage");
const fx = useServer({ env: { DOCKER_HOST: dockerHost } });

let codec: ServedCodec;
let docker: Docker;
beforeAll(async () => {
  const err = inject("dockerError");
  if (err) throw new Error(err);
  docker = new Docker(connectionOptions(dockerHost));
  codec = await servedCodec(fx.api, "DOCKER");
});

async function createDockerWorker(settings: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const { response } = await fx.api.worker.Create({
    name: uniqueName("docker"),
    runner_id: { value: DOCKER_RUNNER_ID },
    runner_settings: codec.encodeSettings(settings),
    response_type: "DIRECT",
    retry_policy: { type: "NONE" },
    ...extra,
  });
  return response.id.value;
}

async function enqueue(workerId: string, args: Record<string, unknown>) {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: codec.encodeArgs(args), timeout: 60_000 }, { timeoutMs: 90_000 });
  return response.result!.data;
}

const exists = (id: string) =>
  docker.getContainer(id).inspect().then(
    () => true,
    () => false,
  );

describe("DOCKER", () => {
  it("DIRECT: runs a one-shot container with env and working dir, returns its output; the container is gone", async () => {
    expect(codec.runner.data.runner_settings_proto).toContain("message DockerRunnerSettings");
    const workerId = await createDockerWorker({ from_image: image, env: ["WHO=e2e"] });
    const r = await enqueue(workerId, { cmd: ["sh", "-c", "echo hello $WHO $X; pwd; echo oops >&2"], env: ["X=1"], working_dir: "/tmp" });
    expect(r.status).toBe("SUCCESS");
    const out = codec.decodeResult(r.output!.items);
    expect(out).toMatchObject({ exit_code: 0, stdout: "hello e2e 1\n/tmp\n", stderr: "oops\n" });
    expect(out.container_id).toMatch(/^[0-9a-f]{12,}$/);
    expect(await exists(out.container_id)).toBe(false);
  });

  it("use_static: jobs exec in the worker's long-lived container; deleting the worker removes it", async () => {
    const workerId = await createDockerWorker({ from_image: image }, { use_static: true });
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await enqueue(workerId, { cmd: ["echo", `job ${i}`] }));
    const outs = results.map((r) => (expect(r.status).toBe("SUCCESS"), codec.decodeResult(r.output!.items)));
    expect(outs.map((o) => o.stdout)).toEqual(["job 0\n", "job 1\n", "job 2\n", "job 3\n"]);
    // one container per worker process (the scalable shape has two)
    const ids = [...new Set(outs.map((o) => o.container_id as string))];
    expect(ids.length).toBeLessThanOrEqual(isScalable() ? 2 : 1);
    for (const id of ids) expect(await exists(id)).toBe(true);
    await fx.api.worker.Delete({ value: workerId });
    await waitUntil(async () => !(await Promise.all(ids.map(exists))).some(Boolean), { what: "static containers removed" });
  });

  it("treat_nonzero_as_error: a failing command ends as a failure with its stderr (no retry → MAX_RETRY)", async () => {
    const workerId = await createDockerWorker({ from_image: image });
    const r = await enqueue(workerId, { cmd: ["sh", "-c", "echo broken >&2; exit 7"], treat_nonzero_as_error: true });
    expect(r.status).toBe("MAX_RETRY");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/exited with code 7: broken/);
  });

  it("a missing image fails with FATAL_ERROR and a clear message; the server stays up", async () => {
    const workerId = await createDockerWorker({ repo: "localhost/no-such-image", tag: "1" });
    const r = await enqueue(workerId, { cmd: ["true"] });
    expect(r.status).toBe("FATAL_ERROR");
    expect(Buffer.from(r.output!.items).toString()).toMatch(/image localhost\/no-such-image:1 is not present on the container engine/);
    await expectAlive(fx);
  });
});
