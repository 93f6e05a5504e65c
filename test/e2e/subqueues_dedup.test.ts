// Weighted sub-queues (a process serving `inference` leases from `inference:high` and `inference:low` by weight)
// and content deduplication of a worker's jobs (WorkerData.dedup), through gRPC, in both shapes.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { collect, shArgs, type Api, type RpcError } from "../helpers/client.js";
import { createCommandWorker, expectCode, sleep, Status, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";

const NOOP_RUNNER_ID = "65000";

const fx = useServer({
  env: {
    WORKER_CHANNELS: "inference",
    WORKER_CHANNEL_CONCURRENCIES: "1",
    WORKER_CHANNEL_WEIGHTS: "inference:high=9,inference:low=3",
    WORKER_DEFAULT_CONCURRENCY: "4",
    JOBWORKERP_ENABLE_NOOP_RUNNER: "true",
  },
});

const noopWorker = async (api: Api, channel: string) =>
  (
    await api.worker.Create({
      name: uniqueName("noop"),
      runner_id: { value: NOOP_RUNNER_ID },
      channel,
      response_type: "NO_RESULT",
      store_success: true,
      retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
    })
  ).response.id.value;

/** Runs `fn` over `items` with at most `width` calls in flight. */
async function inParallel<T>(items: T[], width: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

const byId = (a: { id: { value: string } }, b: { id: { value: string } }) => (BigInt(a.id.value) < BigInt(b.id.value) ? -1 : 1);

describe("weighted sub-queues", () => {
  it("with both sub-queues full, weights 9:3 serve 3:1 (± 10 %) over 600 jobs; FindQueueList and FindChannelList know the sub-queues", async () => {
    const go = path.join(fx.server.tmpDir, "weighted-go");
    // The only slot of `inference` is held until both sub-queues are full (however slow the machine is).
    const blockerWorker = await createCommandWorker(fx.api, { channel: "inference:high" });
    const blocker = await fx.api.job.Enqueue({ worker_id: { value: blockerWorker }, args: shArgs(`while [ ! -f '${go}' ]; do sleep 0.02; done`) });
    await waitUntil(async () => (await fx.api.jobStatus.Find(blocker.response.id)).response.status === "RUNNING", { timeoutMs: 20_000, what: "blocker RUNNING" });

    const high = await noopWorker(fx.api, "inference:high");
    const low = await noopWorker(fx.api, "inference:low");
    // 600 served at 3:1 take 450 high and 150 low: both sub-queues still hold jobs when the 600th is served
    const jobs = [...Array.from({ length: 480 }, () => high), ...Array.from({ length: 200 }, () => low)];
    await inParallel(jobs, 16, (w) => fx.api.job.Enqueue({ worker_id: { value: w }, args: Buffer.alloc(0) }));

    const queuedLow = await collect(fx.api.job.FindQueueList({ channel: "inference:low", limit: 1000 }));
    expect(queuedLow).toHaveLength(200);
    const channels = (await fx.api.worker.FindChannelList({})).response.channels;
    for (const name of ["inference:high", "inference:low"]) {
      const c = channels.find((x) => x.name === name);
      expect(c, `FindChannelList lists ${name}: ${JSON.stringify(channels)}`).toBeDefined();
      expect(Number(c!.worker_count)).toBeGreaterThanOrEqual(1);
      expect(c!.total_concurrency).toBe(1);
    }

    fs.writeFileSync(go, "");
    const count = async () => Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: high }, { value: low }] })).response.total);
    await waitUntil(async () => (await count()) >= 600, { timeoutMs: 120_000, intervalMs: 250, what: "600 NOOP results" });
    // one process serves `inference` one job at a time: its result ids (snowflakes) are in the order it served
    const results = [
      ...(await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: high }], limit: 1000 }))),
      ...(await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: low }], limit: 1000 }))),
    ].sort(byId);
    const first = results.slice(0, 600);
    const h = first.filter((r) => r.data.worker_id.value === high).length;
    const l = first.filter((r) => r.data.worker_id.value === low).length;
    console.log(`[sub-queues e2e ${process.env.E2E_SHAPE ?? "embedded"}] first 600 served: high ${h}, low ${l}, ratio ${(h / l).toFixed(3)}`);
    expect(h + l).toBe(600);
    expect(h / l).toBeGreaterThanOrEqual(2.7);
    expect(h / l).toBeLessThanOrEqual(3.3);
    await waitUntil(async () => (await count()) === 680, { timeoutMs: 60_000, intervalMs: 250, what: "all 680 NOOP results" });
  }, 240_000);
});

describe("content deduplication", () => {
  const hold = (log: string, go: string) => shArgs(`echo run >> '${log}'; while [ ! -f '${go}' ]; do sleep 0.02; done; echo done`);
  const lines = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8").trim().split("\n").filter(Boolean) : []);

  it("COALESCE: two concurrent identical DIRECT enqueues run one job and both get its id and result; afterwards it runs again", async () => {
    const dir = fs.mkdtempSync(path.join(fx.server.tmpDir, "coalesce-"));
    const [log, go] = [path.join(dir, "log"), path.join(dir, "go")];
    const worker = await createCommandWorker(fx.api, { response_type: "DIRECT", dedup: "DEDUP_MODE_COALESCE" });
    expect((await fx.api.worker.Find({ value: worker })).response.data?.data.dedup).toBe("DEDUP_MODE_COALESCE");
    const args = hold(log, go);
    const calls = [0, 1].map(() => fx.api.job.Enqueue({ worker_id: { value: worker }, args }, { timeoutMs: 60_000 }));
    await waitUntil(() => lines(log).length >= 1, { timeoutMs: 20_000, what: "the job started" });
    // a stream cannot join the running job midway
    const streamErr = await collect(fx.api.job.EnqueueForStream({ worker_id: { value: worker }, args })).then(
      () => undefined,
      (e: RpcError) => e,
    );
    expectCode(streamErr!, Status.ALREADY_EXISTS);
    fs.writeFileSync(go, "");
    const [a, b] = await Promise.all(calls);
    expect(a.response.id.value).toBe(b.response.id.value);
    expect(a.response.result?.data.status).toBe("SUCCESS");
    expect(b.response.result?.id.value).toBe(a.response.result?.id.value);
    expect(lines(log), "exactly one run").toEqual(["run"]);

    // finished: the content is free again, and a new identical job runs
    const again = await fx.api.job.Enqueue({ worker_id: { value: worker }, args }, { timeoutMs: 60_000 });
    expect(again.response.id.value).not.toBe(a.response.id.value);
    expect(again.response.result?.data.status).toBe("SUCCESS");
    expect(lines(log)).toEqual(["run", "run"]);
  }, 120_000);

  it("REJECT: an identical job while one is pending or running is ALREADY_EXISTS naming it; other args run", async () => {
    const dir = fs.mkdtempSync(path.join(fx.server.tmpDir, "reject-"));
    const [log, go] = [path.join(dir, "log"), path.join(dir, "go")];
    const worker = await createCommandWorker(fx.api, { dedup: "DEDUP_MODE_REJECT" });
    const args = hold(log, go);
    const settled = await Promise.allSettled([0, 1].map(() => fx.api.job.Enqueue({ worker_id: { value: worker }, args })));
    const ok = settled.filter((s) => s.status === "fulfilled");
    const failed = settled.filter((s): s is PromiseRejectedResult => s.status === "rejected");
    expect(ok, "exactly one of two concurrent identical enqueues is accepted").toHaveLength(1);
    const first = (ok[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof fx.api.job.Enqueue>>>).value.response.id.value;
    expectCode(failed[0].reason, Status.ALREADY_EXISTS);
    expect((failed[0].reason as RpcError).details).toContain(`job ${first}`);

    const other = await fx.api.job.Enqueue({ worker_id: { value: worker }, args: shArgs(`echo other >> '${log}'`) });
    expect(other.response.id.value).not.toBe(first);
    fs.writeFileSync(go, "");
    await waitUntil(() => lines(log).includes("other") && lines(log).filter((l) => l === "run").length === 1, { timeoutMs: 20_000, what: "both jobs ran" });
    // once the first has finished (and released its content key), the same args are accepted again
    await waitUntil(async () => (await fx.api.job.Enqueue({ worker_id: { value: worker }, args }).then(() => true, () => false)), { timeoutMs: 20_000, what: "identical enqueue accepted after the job finished" });
    await waitUntil(() => lines(log).filter((l) => l === "run").length === 2, { timeoutMs: 20_000, what: "second run" });
    await sleep(50);
  }, 120_000);

  it("bad dedup settings are INVALID_ARGUMENT: an unknown mode, and dedup on a periodic worker", async () => {
    const unknown = await createCommandWorker(fx.api, { dedup: 7 as unknown as string }).then(() => undefined, (e: RpcError) => e);
    expectCode(unknown!, Status.INVALID_ARGUMENT);
    expect(unknown!.details).toMatch(/dedup/);
    const periodic = await createCommandWorker(fx.api, { periodic_interval: 60_000, dedup: "DEDUP_MODE_REJECT" }).then(() => undefined, (e: RpcError) => e);
    expectCode(periodic!, Status.INVALID_ARGUMENT);
    expect(periodic!.details).toMatch(/periodic/);
  });
});
