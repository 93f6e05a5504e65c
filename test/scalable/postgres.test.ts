// Scalable shape with PostgreSQL as the store (POSTGRES_URL replaces MySQL; Redis still carries the queues):
// DB_ONLY jobs enqueued on both fronts wait in PostgreSQL until the clock grabs them (SKIP LOCKED), and each
// runs exactly once. The worker definition is read back from PostgreSQL itself, so the store really is
// PostgreSQL and not the cluster's MariaDB.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { shArgs } from "../helpers/client.js";
import { createPostgresTestDatabase, postgresAdminUrl } from "../helpers/databases.js";
import { createCommandWorker, uniqueName, waitUntil } from "../helpers/fixture.js";
import { countResults, resultsOf, tally, useHarness } from "./support.js";

const h = useHarness();
const JOBS = 40;

describe("Scalable: PostgreSQL as the store", () => {
  it(`${JOBS} DB_ONLY jobs enqueued on two fronts run exactly once each; definitions live in PostgreSQL`, { timeout: 120_000 }, async () => {
    const db = await createPostgresTestDatabase(postgresAdminUrl(), "scalable");
    const c = await h.cluster({ fronts: 2, workers: 1, env: { POSTGRES_URL: db.url } });
    const apis = c.addresses.map((a) => h.api(a));
    const name = uniqueName("pg");
    const workerId = await createCommandWorker(apis[0], { name, queue_type: "DB_ONLY", store_success: true, store_failure: true });

    const jobIds = await Promise.all(
      Array.from({ length: JOBS }, async (_, i) => (await apis[i % 2].job.Enqueue({ worker_id: { value: workerId }, args: shArgs(`echo ${i}`) })).response.id.value),
    );
    await waitUntil(async () => (await countResults(apis[1], workerId)) >= JOBS, { timeoutMs: 60_000, what: `${JOBS} stored results` });
    // every job row is deleted once its job has finished: nothing is left for a late second run
    await waitUntil(async () => Number((await apis[0].job.Count({})).response.total) === 0, { timeoutMs: 10_000, what: "job rows removed" });
    const results = await resultsOf(apis[0], workerId);
    expect(results.every((r) => r.data.status === "SUCCESS")).toBe(true);
    const perJob = tally(results.map((r) => r.data.job_id.value));
    expect([...perJob.keys()].sort()).toEqual([...jobIds].sort());
    expect([...perJob.values()].every((n) => n === 1), "one result per job").toBe(true);

    const client = new pg.Client(db.url);
    await client.connect();
    try {
      const { rows } = await client.query<{ id: string }>("SELECT id FROM worker WHERE name = $1", [name]);
      expect(rows).toEqual([{ id: workerId }]);
    } finally {
      await client.end();
    }
  });
});
