// Scalable acceptance: Redis restarted EMPTY loses the queue, but WITH_BACKUP jobs keep their rows in MySQL.
// JobRestoreService.Restore (or STORAGE_RESTORE_AT_STARTUP=true on restarted processes) puts them back, and a
// worker serving their channel then runs each of them exactly once.
// The cluster runs on a Redis of this file's own (startRedis: save disabled, so a restart comes back empty).
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, describe, expect, it } from "vitest";
import { type Api, COMMAND_RUNNER_ID, collect, shArgs } from "../helpers/client.js";
import type { Cluster } from "../helpers/cluster.js";
import { uniqueName, waitUntil } from "../helpers/fixture.js";
import { type RedisService, startRedis } from "../helpers/services.js";
import { queuedOn, resultsOf, sleep, tally, useHarness } from "./support.js";

const h = useHarness();
const JOBS = 12;
const dir = mkdtempSync(join(tmpdir(), "jwp-redis-restart-"));
const redisClients: Redis[] = [];
afterAll(() => {
  redisClients.forEach((r) => r.disconnect());
  rmSync(dir, { recursive: true, force: true });
});

function redisOf(svc: RedisService): Redis {
  const r = new Redis(svc.url, { maxRetriesPerRequest: 1 });
  r.on("error", () => {});
  redisClients.push(r);
  return r;
}

async function scanCount(r: Redis, pattern: string): Promise<number> {
  let n = 0;
  let cursor = "0";
  do {
    const [next, keys] = await r.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    n += keys.length;
  } while (cursor !== "0");
  return n;
}

/** Queue and job-state keys of this cluster's channel / jobs in Redis. */
async function jobKeys(r: Redis, prefix: string, channel: string): Promise<{ queue: number; state: number }> {
  return {
    queue: await scanCount(r, `${prefix}:{q:${channel}}:*`),
    state: await scanCount(r, `${prefix}:{state}:e:*`),
  };
}

const lines = (file: string): string[] => {
  try {
    return readFileSync(file, "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
};

interface Setup {
  redis: RedisService;
  cluster: Cluster;
  api: Api;
  channel: string;
  workerId: string;
  jobIds: string[];
  marks: string[];
  file: string;
}

/** A front (no worker) on an own Redis; JOBS WITH_BACKUP jobs queued on a channel nobody serves. */
async function setup(tag: string): Promise<Setup> {
  const redis = h.own(await startRedis());
  const cluster = await h.cluster({ fronts: 1, workers: 0, env: { REDIS_URL: redis.url } });
  const api = h.api(cluster.addresses[0]);
  const channel = `restore_${tag}`;
  const file = join(dir, `${tag}.log`);
  appendFileSync(file, "");
  const workerId = (
    await api.worker.Create({
      name: uniqueName(`restore-${tag}`),
      runner_id: { value: COMMAND_RUNNER_ID },
      response_type: "NO_RESULT",
      queue_type: "WITH_BACKUP",
      store_success: true,
      store_failure: true,
      channel,
      retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
    })
  ).response.id.value;
  const marks = Array.from({ length: JOBS }, (_, i) => `${tag}-${i}`);
  const jobIds: string[] = [];
  for (const mark of marks) {
    const { response } = await api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${mark} >> '${file}'; echo ${mark}`) });
    jobIds.push(response.id.value);
  }
  expect(new Set(jobIds).size).toBe(JOBS);
  await waitUntil(async () => (await queuedOn(api, channel)).length === JOBS, { timeoutMs: 10_000, what: `${JOBS} jobs in the queue` });
  expect((await queuedOn(api, channel)).sort()).toEqual([...jobIds].sort());
  // Nothing to restore while Redis still has them.
  expect(await collect(api.jobRestore.FindAll({ include_grabbed: true }))).toEqual([]);
  return { redis, cluster, api, channel, workerId, jobIds, marks, file };
}

/** Restart the service on the same port; it comes back empty (no persistence): checked on the keys. */
async function restartEmpty(s: Setup): Promise<void> {
  const r = redisOf(s.redis);
  const before = await jobKeys(r, s.cluster.state.redisPrefix, s.channel);
  expect(before.queue, "queue keys before the restart").toBeGreaterThan(0);
  expect(before.state, "job state entries before the restart").toBeGreaterThanOrEqual(JOBS);
  r.disconnect();
  await s.redis.stop();
  await s.redis.start();
  const r2 = redisOf(s.redis);
  expect(await jobKeys(r2, s.cluster.state.redisPrefix, s.channel), "Redis came back empty").toEqual({ queue: 0, state: 0 });
}

/** After the worker ran them: each job exactly one SUCCESS result and one run (marker line). */
async function expectEachRanOnce(s: Setup, api: Api, expectedIds = s.jobIds, expectedMarks = s.marks): Promise<void> {
  await waitUntil(async () => (await resultsOf(api, s.workerId)).length >= expectedIds.length, {
    timeoutMs: 20_000,
    intervalMs: 200,
    what: `${expectedIds.length} results`,
  });
  await sleep(1500); // room for a duplicate run to show
  const results = await resultsOf(api, s.workerId);
  expect(Object.fromEntries(tally(results.map((r) => r.data.status)))).toEqual({ SUCCESS: expectedIds.length });
  expect(results.map((r) => r.data.job_id.value).sort()).toEqual([...expectedIds].sort());
  expect(lines(s.file).sort(), "each job ran exactly once").toEqual([...expectedMarks].sort());
  expect(await queuedOn(api, s.channel)).toEqual([]);
}

describe("Scalable: Redis restarted empty", () => {
  it("JobRestoreService.Restore through a front puts the lost WITH_BACKUP jobs back; a new worker runs each once", { timeout: 90_000 }, async () => {
    const s = await setup("rpc");
    // Control: before the restart, deleting a queued job takes it out of the queue.
    const extra = (await s.api.job.Enqueue({ worker_id: { value: s.workerId }, args: shArgs(`echo extra >> '${s.file}'`) })).response.id.value;
    await waitUntil(async () => (await queuedOn(s.api, s.channel)).includes(extra), { timeoutMs: 5000, what: "the extra job queued" });
    expect((await s.api.job.Delete({ value: extra })).response.is_success).toBe(true);
    expect(await queuedOn(s.api, s.channel), "a deleted job leaves the queue (before the restart)").not.toContain(extra);
    await restartEmpty(s);

    // The front reconnects; the queue is empty and the jobs are restorable (their rows are in MySQL).
    await waitUntil(async () => (await queuedOn(s.api, s.channel)).length === 0, { timeoutMs: 10_000, what: "the front answering again" });
    const lost = await waitUntil(async () => {
      const jobs = await collect(s.api.jobRestore.FindAll({ include_grabbed: true }));
      return jobs.length === JOBS ? jobs : undefined;
    }, { timeoutMs: 10_000, what: "FindAll listing the lost jobs" });
    expect(lost.map((j) => j.id.value).sort()).toEqual([...s.jobIds].sort());

    expect((await s.api.jobRestore.Restore({})).response.is_success).toBe(true);
    // Put back into the queue by the clock (leader: the only process, once it holds the lock again).
    await waitUntil(async () => (await queuedOn(s.api, s.channel)).length === JOBS, { timeoutMs: 10_000, what: "restored jobs in the queue" });
    expect((await queuedOn(s.api, s.channel)).sort()).toEqual([...s.jobIds].sort());
    expect(await collect(s.api.jobRestore.FindAll({ include_grabbed: true })), "nothing left to restore").toEqual([]);
    // A second Restore must not queue them twice.
    await s.api.jobRestore.Restore({});
    await sleep(600);
    expect((await queuedOn(s.api, s.channel)).length, "Restore is idempotent").toBe(JOBS);

    // A restored job can still be deleted (it must then never run).
    const [victimId, ...keep] = s.jobIds;
    expect((await s.api.job.Delete({ value: victimId })).response.is_success).toBe(true);
    // Diagnostics: JobQueue.remove() only looks at the channels listed in this set.
    const r = redisOf(s.redis);
    h.note(`after the restart, ${s.cluster.state.redisPrefix}:q:channels holds ${s.channel}: ${await r.sismember(`${s.cluster.state.redisPrefix}:q:channels`, s.channel)}`);
    expect.soft(await queuedOn(s.api, s.channel), "the deleted job left the queue (after the restart)").not.toContain(victimId);

    expect(lines(s.file), "nothing ran before a worker serves the channel").toEqual([]);
    await s.cluster.addWorker({ WORKER_CHANNELS: s.channel, WORKER_CHANNEL_CONCURRENCIES: "4" });
    await waitUntil(async () => (await resultsOf(s.api, s.workerId, { statuses: ["SUCCESS"] })).length >= keep.length, {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: `${keep.length} results`,
    });
    await sleep(1500);
    const results = await resultsOf(s.api, s.workerId);
    const victimMark = s.marks[0];
    // (soft: the rest of the restore is still checked when this fails)
    expect.soft(results.filter((r) => r.data.job_id.value === victimId).map((r) => r.data.status), "the deleted job never succeeded").not.toContain("SUCCESS");
    expect.soft(lines(s.file), "the deleted job never ran").not.toContain(victimMark);
    const ok = results.filter((r) => r.data.status === "SUCCESS" && r.data.job_id.value !== victimId);
    expect(ok.map((r) => r.data.job_id.value).sort(), "each kept job succeeded once").toEqual([...keep].sort());
    expect(lines(s.file).filter((l) => l !== victimMark).sort(), "each kept job ran exactly once").toEqual(s.marks.slice(1).sort());
    expect(await queuedOn(s.api, s.channel)).toEqual([]);
  });

  it("processes restarted with STORAGE_RESTORE_AT_STARTUP=true put the lost WITH_BACKUP jobs back by themselves", { timeout: 90_000 }, async () => {
    const s = await setup("startup");
    await restartEmpty(s);
    await waitUntil(async () => (await collect(s.api.jobRestore.FindAll({ include_grabbed: true }))).length === JOBS, {
      timeoutMs: 10_000,
      what: "the lost jobs listed as restorable",
    });
    expect(await queuedOn(s.api, s.channel)).toEqual([]);

    // Restart the deployment on the same data with the flag: a front and a worker that serves the channel
    // (both restore at start-up, concurrently: each job must still run once).
    expect(await s.cluster.stop(), "clean exit").toEqual([0]);
    const c2 = await h.cluster({
      fronts: 1,
      workers: 1,
      state: s.cluster.state,
      env: { REDIS_URL: s.redis.url, STORAGE_RESTORE_AT_STARTUP: "true", WORKER_CHANNELS: s.channel, WORKER_CHANNEL_CONCURRENCIES: "4" },
    });
    for (const p of [...c2.fronts, ...c2.workers]) expect(p.logs(), `${p.role} logged its restore`).toMatch(/"msg":"restored durable jobs missing from the queue"/);
    const api2 = h.api(c2.addresses[0]);
    await expectEachRanOnce(s, api2);
  });
});
