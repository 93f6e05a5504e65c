// Scalable: ids minted by several processes must never collide. Every process of a deployment mints snowflake
// ids: fronts mint job ids, workers mint result ids. Two fronts answering Enqueue in the same millisecond must
// still hand out distinct job ids (or two jobs become one in the queue, the job state and the store), and two
// workers finishing jobs in the same millisecond must still store one result each, and run each job once.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Api, COMMAND_RUNNER_ID, shArgs } from "../helpers/client.js";
import type { Cluster } from "../helpers/cluster.js";
import { uniqueName, waitUntil } from "../helpers/fixture.js";
import { queuedOn, resultsOf, sleep, tally, useHarness } from "./support.js";

const h = useHarness();
const UNSERVED = "ids_unserved"; // no process serves it: jobs just wait in the queue
const SERVED = "ids_served";
const dir = mkdtempSync(join(tmpdir(), "jwp-ids-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let c: Cluster;
let apis: Api[];
beforeAll(async () => {
  c = await h.cluster({
    fronts: 2,
    workers: 2,
    env: { WORKER_CHANNELS: SERVED, WORKER_CHANNEL_CONCURRENCIES: "8", WORKER_DEFAULT_CHANNEL_DISABLED: "true" },
  });
  apis = c.addresses.map((a) => h.api(a));
});

const createWorker = async (channel: string, extra: Record<string, unknown> = {}) =>
  (
    await apis[0].worker.Create({
      name: uniqueName("ids"),
      runner_id: { value: COMMAND_RUNNER_ID },
      response_type: "NO_RESULT",
      channel,
      retry_policy: { type: "NONE", interval: 0, max_interval: 0, max_retry: 0, basis: 0 },
      ...extra,
    })
  ).response.id.value;

describe("Scalable: ids across processes", () => {
  it("400 jobs enqueued at once through two fronts get distinct job ids", async () => {
    const JOBS = 400;
    const workerId = await createWorker(UNSERVED);
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i += 40) {
      const batch = await Promise.all(
        Array.from({ length: 40 }, async (_, j) => {
          const { response } = await apis[(i + j) % 2].job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${i + j}`) });
          return response.id.value;
        }),
      );
      ids.push(...batch);
    }
    const dup = [...tally(ids)].filter(([, n]) => n > 1);
    console.log(`[ids] ${JOBS} Enqueue answers through 2 fronts: ${tally(ids).size} distinct job ids, ${dup.length} handed out twice`);
    expect(dup.map(([id, n]) => `${id} ×${n}`), "job ids handed out twice").toEqual([]);
    const queued = await waitUntil(async () => {
      const q = await queuedOn(apis[0], UNSERVED);
      return q.length >= JOBS ? q : undefined;
    }, { timeoutMs: 5000, what: `${JOBS} queued jobs` });
    expect(new Set(queued).size, "every accepted job is in the queue").toBe(JOBS);
  });

  it("400 short jobs finished by two workers store 400 results with distinct ids and run once each", { timeout: 60_000 }, async () => {
    const JOBS = 400;
    const file = join(dir, "runs.log");
    const workerId = await createWorker(SERVED, { store_success: true, store_failure: true });
    const marks = Array.from({ length: JOBS }, (_, i) => `m${i}`);
    // One front mints every job id here, so only result ids (minted by the workers) can collide.
    for (let i = 0; i < JOBS; i += 40) {
      await Promise.all(marks.slice(i, i + 40).map((m) => apis[0].job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${m} >> '${file}'`) })));
    }
    await waitUntil(async () => (await resultsOf(apis[1], workerId)).length >= JOBS, { timeoutMs: 40_000, intervalMs: 250, what: `${JOBS} results` });
    await sleep(3000); // a run whose result could not be stored comes back after its lease (2 s)
    const results = await resultsOf(apis[1], workerId);
    const runs = tally(readFileSync(file, "utf8").split("\n").filter(Boolean));
    const twice = [...runs].filter(([, n]) => n > 1).map(([m]) => m);
    const failures = c.workers.map((w) => (w.logs().match(/"msg":"job processing failed"/g) ?? []).length);
    console.log(
      `[ids] ${JOBS} jobs on 2 workers: ${results.length} results, ${tally(results.map((r) => r.id.value)).size} distinct result ids, ` +
        `${twice.length} jobs ran twice, "job processing failed" logged ${failures.join(" + ")} times`,
    );
    expect(twice, "jobs that ran twice").toEqual([]);
    expect(results.length).toBe(JOBS);
    expect(tally(results.map((r) => r.data.job_id.value)).size, "one result per job").toBe(JOBS);
    expect(tally(results.map((r) => r.id.value)).size, "distinct result ids").toBe(JOBS);
    expect(failures, "no job processing failed on the workers").toEqual([0, 0]);
  });
});
