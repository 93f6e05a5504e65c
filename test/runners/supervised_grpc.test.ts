// SUPERVISED_PROCESS through gRPC on an embedded server (run once, not per e2e shape: it is about child
// processes, which behave the same in every shape). A Python child "loads a model" for 2 s once, then answers
// 50 jobs; kill -9 mid-job fails or retries that job per its retry flag; the restarts show in
// WorkerInstanceService. Settings and args are encoded with the proto texts the server serves.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, type JobResult } from "../helpers/client.js";
import { uniqueName, useServer, waitUntil } from "../helpers/fixture.js";
import { servedCodec, type ServedCodec } from "../helpers/served_protos.js";

const tmp = mkdtempSync(join(tmpdir(), "supervised-grpc-"));
// heartbeats every second: jobs_done (not a lifecycle change, so no early beat) shows without a 30 s wait
const fx = useServer({ env: { PYTHON_VENV_DIR: join(tmp, "venvs"), WORKER_INSTANCE_HEARTBEAT_INTERVAL_SEC: "1" } });
const STARTS = join(tmp, "starts");

const SCRIPT = `import os, time
import jobworkerp_worker as jw

with open(os.environ["STARTS_FILE"], "a") as f:
    f.write("%d\\n" % os.getpid())
time.sleep(2)  # the "model" loads once per child

def handle(args, ctx):
    if args.get("hold") and ctx.retried == 0:
        if args.get("no_retry"):
            ctx.no_retry()
        with open(args["marker"], "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    return {"x": args.get("x"), "pid": os.getpid(), "retried": ctx.retried}

jw.run(handle)
`;

interface SupervisedProcessOut {
  worker_id: string;
  worker_name: string;
  slot: number;
  pid?: number;
  state: string;
  restarts: number;
  last_exit_reason?: string;
  jobs_done: string;
}

let codec: ServedCodec;
let workerId = "";
beforeAll(async () => {
  codec = await servedCodec(fx.api, "SUPERVISED_PROCESS");
  const { response } = await fx.api.worker.Create({
    name: uniqueName("supervised"),
    runner_id: codec.runner.id,
    runner_settings: codec.encodeSettings({
      python: { script_content: SCRIPT },
      env: { STARTS_FILE: STARTS },
    }),
    response_type: "DIRECT",
    retry_policy: { type: "CONSTANT", interval: 200, max_retry: 3 },
  });
  workerId = response.id.value;
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function enqueue(args: Record<string, unknown>): Promise<JobResult["data"]> {
  const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: codec.encodeArgs({ json: JSON.stringify(args) }), timeout: 120_000 }, { timeoutMs: 150_000 });
  return response.result!.data;
}
function output(r: JobResult["data"]) {
  expect(r.status, Buffer.from(r.output?.items ?? []).toString()).toBe("SUCCESS");
  const res = codec.decodeResult<{ json: string; pid: number }>(r.output!.items);
  return { ...(JSON.parse(res.json) as { x: unknown; pid: number; retried: number }), answeredBy: res.pid };
}
async function supervisedSlots(): Promise<SupervisedProcessOut[]> {
  const instances = await collect(fx.api.workerInstance.FindList({}));
  return instances.flatMap((i) => (i.data as unknown as { supervised_processes: SupervisedProcessOut[] }).supervised_processes).filter((p) => p.worker_id === workerId);
}
async function holdUntilStarted(extra: Record<string, unknown>): Promise<[Promise<JobResult["data"]>, number]> {
  const marker = join(tmp, `marker-${Date.now()}`);
  const job = enqueue({ hold: true, marker, ...extra });
  job.catch(() => undefined);
  const pid = await waitUntil(() => (existsSync(marker) ? Number(readFileSync(marker, "utf8")) : undefined), { timeoutMs: 60_000, what: "the held job to start" });
  return [job, pid];
}

describe("SUPERVISED_PROCESS through gRPC", () => {
  it("serves its protos and rejects bad settings with INVALID_ARGUMENT", async () => {
    expect(codec.runner.data.runner_settings_proto).toContain("message SupervisedRunnerSettings");
    const err = await fx.api.worker
      .Create({ name: uniqueName("bad"), runner_id: codec.runner.id, runner_settings: codec.encodeSettings({ command: "" }) })
      .then(() => undefined, (e: { code: number; details: string }) => e);
    expect(err?.code).toBe(3);
    expect(err?.details).toMatch(/runner_settings: command is empty/);
  });

  it("a child that loads once answers 50 jobs; kill -9 mid-job retries or fails the job per its retry flag; restarts show in WorkerInstanceService", async () => {
    const lat: number[] = [];
    const answers = [];
    for (let i = 0; i < 50; i++) {
      const t = performance.now();
      answers.push(output(await enqueue({ x: i })));
      lat.push(performance.now() - t);
    }
    expect(answers.map((a) => a.x)).toEqual([...Array(50).keys()]);
    const pid = answers[0].pid;
    expect(new Set(answers.map((a) => a.pid))).toEqual(new Set([pid]));
    expect(readFileSync(STARTS, "utf8").trim().split("\n")).toEqual([String(pid)]); // one start
    const sorted = lat.slice(1).sort((a, b) => a - b); // the first job waited for the model
    console.log(`SUPERVISED_PROCESS warm child: per-job round trip p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(2)} ms (first job ${lat[0].toFixed(0)} ms, incl. the 2 s load)`);
    const [slot] = await waitUntil(async () => {
      const s = await supervisedSlots();
      return s.length === 1 && s[0].state === "READY" ? s : undefined;
    }, { what: "the slot in WorkerInstanceService" });
    expect(slot).toMatchObject({ pid, restarts: 0, slot: 0 });

    // retryable: the child dies mid-job, the job runs again on the restarted child
    const [retried, heldBy] = await holdUntilStarted({});
    expect(heldBy).toBe(pid);
    process.kill(heldBy, "SIGKILL");
    const again = await retried;
    const second = output(again);
    expect(again.retried).toBe(1);
    expect(second.retried).toBe(1);
    expect(second.pid).not.toBe(pid);

    // retry: false (declared by the child before it died): no retry, whatever the worker's policy
    const [failing, heldBy2] = await holdUntilStarted({ no_retry: true });
    expect(heldBy2).toBe(second.pid);
    process.kill(heldBy2, "SIGKILL");
    const failed = await failing;
    expect(failed.status).toBe("FATAL_ERROR");
    expect(failed.retried).toBe(0);
    expect(Buffer.from(failed.output!.items).toString()).toMatch(/ended while running job \d+: signal SIGKILL/);

    // the next job succeeds on the restarted child
    const next = output(await enqueue({ x: "next" }));
    expect(next.x).toBe("next");
    expect([pid, second.pid]).not.toContain(next.pid);
    expect(readFileSync(STARTS, "utf8").trim().split("\n")).toHaveLength(3);

    const after = await waitUntil(async () => {
      const s = await supervisedSlots();
      return s.length === 1 && s[0].restarts === 2 && s[0].pid === next.pid && Number(s[0].jobs_done) === 52 ? s : undefined;
    }, { timeoutMs: 20_000, what: "two restarts in WorkerInstanceService" });
    expect(after[0].last_exit_reason).toMatch(/SIGKILL/);
    // jobs_done 52 above: 50 + the retried job + "next" (the failed one never answered)
    const { response: health } = await fx.api.workerInstance.Count({});
    expect(Number(health.active)).toBeGreaterThanOrEqual(1); // the worker instance stayed healthy
  }, 180_000);
});
