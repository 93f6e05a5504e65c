// WorkerService operations beyond plain CRUD: Load, use_static + ReleaseStaticWorker, FindChannelList,
// UpsertByName, Update/Delete errors, and Delete stopping a periodic worker.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import {
  COMMAND_RUNNER_ID,
  DEFAULT_CHANNEL,
  type ChannelInfo,
  type JobResult,
  StreamTap,
  Status,
  collect,
  commandOutput,
  expectRpcError,
  shArgs,
} from "../helpers/client.js";
import { createCommandWorker, expectCode, sleep, uniqueName, useServer, waitUntil } from "../helpers/fixture.js";

const fx = useServer({
  env: { WORKER_CHANNELS: "ops_a,ops_b", WORKER_CHANNEL_CONCURRENCIES: "2,1", WORKER_DEFAULT_CONCURRENCY: "3" },
});

const NO_RETRY = { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 };

async function channels(): Promise<Map<string, ChannelInfo>> {
  const { response } = await fx.api.worker.FindChannelList({});
  return new Map(response.channels.map((c) => [c.name, c]));
}

describe("WorkerService.Load", () => {
  it("Load by id and by name returns is_success true; it is not a user job (no stored or broadcast result)", async () => {
    const name = uniqueName("load");
    const workerId = await createCommandWorker(fx.api, { name, store_success: true, store_failure: true, broadcast_results: true });
    const tap = new StreamTap<JobResult>(fx.api.jobResult.ListenByWorker({ worker_id: { value: workerId } }));
    try {
      await sleep(100);
      const byId = await fx.api.worker.Load({ worker_id: { value: workerId } }, { timeoutMs: 10_000 });
      expect(byId.response.is_success).toBe(true);
      const byName = await fx.api.worker.Load({ name, timeout_ms: 5000 }, { timeoutMs: 10_000 });
      expect(byName.response.is_success).toBe(true);
      await sleep(200);
      expect(tap.items, "Load must not broadcast a job result").toEqual([]);
      expect(Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: workerId }] })).response.total), "nothing stored").toBe(0);
      // the worker still runs ordinary jobs afterwards
      await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo after-load") });
      const [r] = await tap.waitFor(1, 5000);
      expect(commandOutput(r).stdout).toBe("after-load\n");
    } finally {
      tap.close();
    }
  });

  it("Load of an unknown worker name or id -> NOT_FOUND", async () => {
    expectCode(await expectRpcError(fx.api.worker.Load({ name: uniqueName("no-such-worker") }, { timeoutMs: 5000 })), Status.NOT_FOUND);
    expectCode(await expectRpcError(fx.api.worker.Load({ worker_id: { value: 987654321 } }, { timeoutMs: 5000 })), Status.NOT_FOUND);
  });

  it("Load really goes through a worker process: on a channel nobody serves it fails with DEADLINE_EXCEEDED after timeout_ms", async () => {
    const workerId = await createCommandWorker(fx.api, { channel: "ops_nobody_serves_this" });
    const t0 = Date.now();
    const err = await expectRpcError(fx.api.worker.Load({ worker_id: { value: workerId }, timeout_ms: 300 }, { timeoutMs: 5000 }));
    expectCode(err, Status.DEADLINE_EXCEEDED);
    expect(err.details ?? "", "answered by the server, not by the client's deadline").not.toMatch(/Deadline exceeded after/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(Date.now() - t0).toBeLessThan(3000);
  });
});

describe("use_static workers", () => {
  it("a use_static COMMAND worker runs several jobs (also concurrently); ReleaseStaticWorker returns is_success true; jobs still run after", async () => {
    const name = uniqueName("static");
    const workerId = await createCommandWorker(fx.api, { name, use_static: true, response_type: "DIRECT", channel: "ops_a" });
    const run = async (n: number) => {
      const { response } = await fx.api.job.Enqueue(
        { worker_id: { value: workerId }, args: shArgs(`sleep 0.1; echo static-${n}`) },
        { timeoutMs: 10_000 },
      );
      expect(response.result?.data.status).toBe("SUCCESS");
      return commandOutput(response.result).stdout;
    };
    for (const n of [1, 2]) expect(await run(n)).toBe(`static-${n}\n`);
    // more concurrent jobs than the pool (channel concurrency 2) has instances
    expect(await Promise.all([3, 4, 5, 6].map(run))).toEqual(["static-3\n", "static-4\n", "static-5\n", "static-6\n"]);

    const rel = await fx.api.worker.ReleaseStaticWorker({ worker_id: { value: workerId } });
    expect(rel.response.is_success).toBe(true);
    expect(await run(7), "a job after the release gets a fresh instance").toBe("static-7\n");
    const relByName = await fx.api.worker.ReleaseStaticWorker({ name });
    expect(relByName.response.is_success).toBe(true);
    expect(await run(8)).toBe("static-8\n");

    expectCode(await expectRpcError(fx.api.worker.ReleaseStaticWorker({ name: uniqueName("no-such-worker") })), Status.NOT_FOUND);
  });
});

describe("WorkerService.FindChannelList", () => {
  it("reports the configured channels with their concurrency and the number of workers on each", async () => {
    const before = await channels();
    expect(before.get(DEFAULT_CHANNEL)?.concurrency, `channels: ${JSON.stringify([...before.values()])}`).toBe(3);
    expect(before.get("ops_a")?.concurrency).toBe(2);
    expect(before.get("ops_b")?.concurrency).toBe(1);

    const created = [
      await createCommandWorker(fx.api, { channel: "ops_b" }),
      await createCommandWorker(fx.api, { channel: "ops_b" }),
      await createCommandWorker(fx.api, {}), // default channel
    ];
    const after = await channels();
    const count = (m: Map<string, ChannelInfo>, ch: string) => Number(m.get(ch)?.worker_count ?? 0);
    expect(count(after, "ops_b") - count(before, "ops_b"), "two more workers on ops_b").toBe(2);
    expect(count(after, DEFAULT_CHANNEL) - count(before, DEFAULT_CHANNEL), "one more on the default channel").toBe(1);
    expect(count(after, "ops_a"), "ops_a unchanged").toBe(count(before, "ops_a"));
    expect(count(after, "ops_b")).toBe(Number((await fx.api.worker.CountBy({ channel: "ops_b" })).response.total));
    expect(after.get("ops_b")?.concurrency).toBe(1);

    await fx.api.worker.Delete({ value: created[0] });
    expect(count(await channels(), "ops_b") - count(before, "ops_b"), "Delete lowers the count").toBe(1);
    for (const id of created.slice(1)) await fx.api.worker.Delete({ value: id });
  });
});

describe("UpsertByName / Update / Delete", () => {
  it("UpsertByName updates an existing worker in place (same id) and creates a new one for a new name", async () => {
    const name = uniqueName("upsert");
    const base = { name, description: "v1", runner_id: { value: COMMAND_RUNNER_ID }, retry_policy: NO_RETRY, response_type: "NO_RESULT" };
    const created = (await fx.api.worker.Create(base)).response.id.value;

    const up = await fx.api.worker.UpsertByName({ ...base, description: "v2", response_type: "DIRECT", channel: "ops_a" });
    expect(up.response.id.value, "same id").toBe(created);
    const w = (await fx.api.worker.Find({ value: created })).response.data!;
    expect(w.data.description).toBe("v2");
    expect(w.data.response_type).toBe("DIRECT");
    expect(w.data.channel).toBe("ops_a");
    expect(Number((await fx.api.worker.CountBy({ name_filter: name })).response.total), "no second worker of that name").toBe(1);
    // the updated definition is what runs
    const direct = await fx.api.job.Enqueue({ worker_name: name, args: shArgs("echo upserted") }, { timeoutMs: 10_000 });
    expect(commandOutput(direct.response.result).stdout).toBe("upserted\n");

    const newName = uniqueName("upsert-new");
    const fresh = await fx.api.worker.UpsertByName({ ...base, name: newName, description: "new" });
    expect(fresh.response.id.value).not.toBe(created);
    const found = (await fx.api.worker.FindByName({ name: newName })).response.data!;
    expect(found.id.value).toBe(fresh.response.id.value);
    expect(found.data.description).toBe("new");

    for (const id of [created, fresh.response.id.value]) await fx.api.worker.Delete({ value: id });
  });

  it("Update with an unknown id -> NOT_FOUND (and creates nothing); Delete of an unknown id -> NOT_FOUND", async () => {
    const name = uniqueName("ghost");
    const err = await expectRpcError(
      fx.api.worker.Update({
        id: { value: 987654321 },
        data: { name, runner_id: { value: COMMAND_RUNNER_ID }, retry_policy: NO_RETRY },
      }),
    );
    expectCode(err, Status.NOT_FOUND);
    expect((await fx.api.worker.FindByName({ name })).response.data).toBeUndefined();
    expect((await fx.api.worker.Find({ value: 987654321 })).response.data).toBeUndefined();
    expectCode(await expectRpcError(fx.api.worker.Delete({ value: 987654321 })), Status.NOT_FOUND);
  });

  it("Delete of a periodic worker stops its periodic job: no new runs or results afterwards", async () => {
    const runs = path.join(fx.server.tmpDir, "periodic-runs.log");
    const workerId = await createCommandWorker(fx.api, { periodic_interval: 300, store_success: true });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`date +%s%3N >> '${runs}'`) });
    const jobId = response.id.value;
    const lines = () => (fs.existsSync(runs) ? fs.readFileSync(runs, "utf8").trim().split("\n").filter(Boolean).length : 0);
    await waitUntil(() => lines() >= 2, { timeoutMs: 5000, what: "2 periodic runs" });

    expect((await fx.api.worker.Delete({ value: workerId })).response.is_success).toBe(true);
    await sleep(250); // a run in flight at Delete time may still finish
    const runsAtDelete = lines();
    const storedAtDelete = Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: workerId }] })).response.total);
    await sleep(1000); // > 3 intervals
    expect(lines(), "no periodic run after the worker was deleted").toBe(runsAtDelete);
    expect(Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: workerId }] })).response.total), "no new results").toBe(
      storedAtDelete,
    );
    expect((await fx.api.job.Find({ value: jobId })).response.data, "the periodic job is gone").toBeUndefined();
    const listed = (await collect(fx.api.job.FindList({ limit: 1000 }))).map((j) => j.id.value);
    expect(listed).not.toContain(jobId);
  });
});
