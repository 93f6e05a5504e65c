// Queue types: WITH_BACKUP and DB_ONLY jobs are kept in the store (SQLite) until they finish; the clock
// (JOB_QUEUE_FETCH_INTERVAL) moves them to the queue; the row is gone once the job has finished.
import { describe, expect, it } from "vitest";
import { collect, commandOutput, shArgs } from "../helpers/client.js";
import { createCommandWorker, listen, useServer, waitUntil } from "../helpers/fixture.js";

const UNSERVED = "qt_nobody_serves_this";
const fx = useServer({ env: { JOB_QUEUE_FETCH_INTERVAL: "100" } });

/** Ids of the jobs JobRestoreService.FindAll lists (with and without grabbed ones). */
async function restorableIds(): Promise<string[]> {
  const plain = await collect(fx.api.jobRestore.FindAll({}));
  const grabbed = await collect(fx.api.jobRestore.FindAll({ include_grabbed: true }));
  return [...new Set([...plain, ...grabbed].map((j) => j.id.value))];
}

const finishedJobIds: string[] = [];

describe("queue types", () => {
  it("WITH_BACKUP: a NO_RESULT job runs (Listen gets it, result stored) and its job row is removed afterwards", async () => {
    const workerId = await createCommandWorker(fx.api, {
      queue_type: "WITH_BACKUP",
      response_type: "NO_RESULT",
      broadcast_results: true,
      store_success: true,
    });
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("sleep 0.2; echo backed-up") });
    expect(response.result, "NO_RESULT Enqueue carries no result").toBeUndefined();
    const jobId = response.id.value;
    finishedJobIds.push(jobId);

    const r = await listen(fx.api, jobId, workerId, 8000);
    expect(r.data.job_id.value).toBe(jobId);
    expect(r.data.status).toBe("SUCCESS");
    expect(commandOutput(r).stdout).toBe("backed-up\n");

    // store_success: the result is in JobResultService
    const stored = await waitUntil(
      async () => (await collect(fx.api.jobResult.FindListByJobId({ job_id: { value: jobId } })))[0],
      { timeoutMs: 3000, what: "stored result" },
    );
    expect(stored.data.status).toBe("SUCCESS");
    expect(commandOutput(stored).stdout).toBe("backed-up\n");

    // the backup row is deleted on completion: the job is unknown now
    await waitUntil(async () => (await fx.api.job.Find({ value: jobId })).response.data === undefined, {
      timeoutMs: 3000,
      what: "WITH_BACKUP job row removed",
    });
    expect((await fx.api.jobStatus.Find({ value: jobId })).response.status).toBeUndefined();
    const listed = (await collect(fx.api.job.FindList({ limit: 1000 }))).map((j) => j.id.value);
    expect(listed).not.toContain(jobId);
  });

  it("DB_ONLY: the clock picks the job up from the store and runs it; run_after_time was set to the enqueue time; row removed", async () => {
    const workerId = await createCommandWorker(fx.api, {
      queue_type: "DB_ONLY",
      response_type: "NO_RESULT",
      broadcast_results: true,
      store_success: true,
    });
    const t0 = Date.now();
    const { response } = await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs("echo db-only") });
    const jobId = response.id.value;
    finishedJobIds.push(jobId);

    const r = await listen(fx.api, jobId, workerId, 8000);
    expect(r.data.status).toBe("SUCCESS");
    expect(commandOutput(r).stdout).toBe("db-only\n");
    // jobworkerp sets run_after_time = now for DB_ONLY jobs enqueued without one
    const runAfter = Number(r.data.run_after_time);
    expect(runAfter, "run_after_time of a DB_ONLY job").toBeGreaterThanOrEqual(t0 - 1000);
    expect(runAfter).toBeLessThanOrEqual(Date.now());
    expect(Number(r.data.start_time) - t0, "picked up within a few fetch intervals").toBeLessThan(3000);

    await waitUntil(async () => (await collect(fx.api.jobResult.FindListByJobId({ job_id: { value: jobId } }))).length === 1, {
      timeoutMs: 3000,
      what: "exactly one stored result",
    });
    await waitUntil(async () => (await fx.api.job.Find({ value: jobId })).response.data === undefined, {
      timeoutMs: 3000,
      what: "DB_ONLY job row removed",
    });
  });

  it("several DB_ONLY jobs all run exactly once", async () => {
    const workerId = await createCommandWorker(fx.api, { queue_type: "DB_ONLY", response_type: "NO_RESULT", store_success: true });
    const ids: string[] = [];
    for (const n of [1, 2, 3, 4]) {
      ids.push((await fx.api.job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo n${n}`) })).response.id.value);
    }
    finishedJobIds.push(...ids);
    const results = await waitUntil(
      async () => {
        const rs = await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }));
        return rs.length >= 4 ? rs : null;
      },
      { timeoutMs: 5000, what: "4 stored results" },
    );
    await new Promise((r) => setTimeout(r, 300)); // a duplicate run would show up by now
    const again = await collect(fx.api.jobResult.FindListBy({ worker_ids: [{ value: workerId }] }));
    expect(again.length, "each job runs once").toBe(4);
    expect(results.map((r) => r.data.job_id.value).sort()).toEqual([...ids].sort());
    for (const r of again) expect(r.data.status).toBe("SUCCESS");
    for (const id of ids) expect((await fx.api.job.Find({ value: id })).response.data).toBeUndefined();
  });

  it("JobRestoreService.FindAll lists none of the finished WITH_BACKUP / DB_ONLY jobs", async () => {
    expect(finishedJobIds.length).toBeGreaterThanOrEqual(6);
    const ids = await restorableIds();
    for (const id of finishedJobIds) expect(ids, `finished job ${id} must not be restorable`).not.toContain(id);
    expect(ids, "nothing is left to restore").toEqual([]);
  });

  it("DB_ONLY / WITH_BACKUP jobs on a channel no process serves: JobService.Find returns them and Count counts them", async () => {
    const dbOnly = await createCommandWorker(fx.api, { queue_type: "DB_ONLY", channel: UNSERVED, store_success: true });
    const backup = await createCommandWorker(fx.api, { queue_type: "WITH_BACKUP", channel: UNSERVED, store_success: true });
    const before = Number((await fx.api.job.Count({})).response.total);

    const a = (await fx.api.job.Enqueue({ worker_id: { value: dbOnly }, args: shArgs("echo a"), priority: "PRIORITY_HIGH" })).response.id.value;
    const b = (await fx.api.job.Enqueue({ worker_id: { value: backup }, args: shArgs("echo b"), timeout: 7000 })).response.id.value;
    // give the clock several passes: it may move them to the (unserved) queue, but they must stay known
    await new Promise((r) => setTimeout(r, 400));

    const ja = (await fx.api.job.Find({ value: a })).response.data;
    expect(ja, "DB_ONLY job is found").toBeDefined();
    expect(ja!.id.value).toBe(a);
    expect(ja!.data.worker_id.value).toBe(dbOnly);
    expect(ja!.data.priority).toBe("PRIORITY_HIGH");
    expect(Buffer.compare(ja!.data.args, shArgs("echo a"))).toBe(0);
    expect(Number(ja!.data.run_after_time), "DB_ONLY run_after_time = enqueue time").toBeGreaterThan(0);
    const jb = (await fx.api.job.Find({ value: b })).response.data;
    expect(jb, "WITH_BACKUP job is found").toBeDefined();
    expect(jb!.data.worker_id.value).toBe(backup);
    expect(jb!.data.timeout).toBe("7000");

    expect(Number((await fx.api.job.Count({})).response.total), "Count includes both").toBe(before + 2);
    const listed = (await collect(fx.api.job.FindList({ limit: 1000 }))).map((j) => j.id.value);
    expect(listed).toEqual(expect.arrayContaining([a, b]));
    // nothing ran them
    expect((await fx.api.jobStatus.Find({ value: a })).response.status).toBe("PENDING");
    expect((await fx.api.jobStatus.Find({ value: b })).response.status).toBe("PENDING");
    expect(Number((await fx.api.jobResult.CountBy({ worker_ids: [{ value: dbOnly }, { value: backup }] })).response.total)).toBe(0);

    // deleting them removes the rows
    for (const id of [a, b]) expect((await fx.api.job.Delete({ value: id })).response.is_success).toBe(true);
    for (const id of [a, b]) expect((await fx.api.job.Find({ value: id })).response.data).toBeUndefined();
    expect(Number((await fx.api.job.Count({})).response.total)).toBe(before);
    await new Promise((r) => setTimeout(r, 300)); // the clock must not bring a deleted row back
    for (const id of [a, b]) expect((await fx.api.job.Find({ value: id })).response.data).toBeUndefined();
  });
});
