// The Store contract on PostgreSQL (the run's server from test/global-setup.ts), PostgreSQL specifics, and
// outages against a private server that the tests stop, kill, freeze and start.
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openPostgresStore } from "../../worker-container/src/adapters/postgres/index.js";
import type { SqlStore } from "../../worker-container/src/adapters/sql/store.js";
import { RetryType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { WorkerDataSchema, type WorkerData } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { createPostgresTestDatabase, postgresAdminUrl, type TestDatabase } from "../helpers/databases.js";
import { startPostgres, type PostgresService } from "../helpers/services.js";
import { BUILTIN_RUNNERS, describeStoreContract } from "./store.contract.js";

const TABLES = ["job_result", "job", "worker", "runner", "function_set", "workflow_checkpoint"];

let db: TestDatabase;
let admin: pg.Client;
beforeAll(async () => {
  db = await createPostgresTestDatabase(postgresAdminUrl(), "store");
  admin = new pg.Client(db.url);
  await admin.connect();
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

/** Empty every table before each test: as fresh as a new database, without re-running the migrations. */
async function emptyTables() {
  const { rows } = await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1)", [TABLES]);
  if (rows.length) await admin.query(`TRUNCATE ${rows.map((r) => `"${r.t}"`).join(", ")} RESTART IDENTITY`);
}

describe("PostgreSQL", () => {
  beforeEach(emptyTables);
  describeStoreContract("postgresql", () => openPostgresStore(db.url, { max: 4 }), { durable: true });
});

type WorkerInit = MessageInitShape<typeof WorkerDataSchema>;
const workerData = (name: string, over: WorkerInit = {}): WorkerData =>
  create(WorkerDataSchema, { name, runnerId: { value: 1n }, runnerSettings: new Uint8Array([1]), ...over } as WorkerInit);
const job = (id: bigint, uniqKey?: string, args = new Uint8Array([1])) =>
  create(JobSchema, { id: { value: id }, data: { workerId: { value: 1n }, args, uniqKey, runAfterTime: 1n } });

describe("PostgreSQL specifics", () => {
  let store: SqlStore;
  beforeEach(async () => {
    await emptyTables();
    store = await openPostgresStore(db.url, { max: 8 });
    await store.migrate(BUILTIN_RUNNERS);
  });
  afterEach(async () => {
    await store.close();
  });

  it("keeps ids in int8 columns and reads them back as bigint, past 2^53", async () => {
    const { rows: cols } = await admin.query<{ c: string; t: string }>(
      "SELECT table_name || '.' || column_name AS c, data_type AS t FROM information_schema.columns WHERE table_name = ANY($1) AND column_name IN ('id', 'job_id', 'worker_id')",
      [TABLES],
    );
    expect(cols.length).toBeGreaterThanOrEqual(6);
    for (const col of cols) expect(col, col.c).toMatchObject({ t: "bigint" });
    const id = (1n << 62n) + 3n; // 2^53 + 1 would already round through a JS number
    await store.insertJob(job(id));
    const { rows } = await sql<{ id: unknown; n: unknown }>`select id, (select count(*) from job) as n from job`.execute(store.db);
    expect(rows).toEqual([{ id, n: 1n }]);
    expect((await store.findJob(id))!.id!.value).toBe(id);
  });

  it("round-trips uint32 maxima, 4-byte UTF-8 and multi-megabyte blobs", async () => {
    const max = 4_294_967_295;
    const data = workerData("ü🚀 worker", {
      description: "emoji 🎉",
      periodicInterval: max,
      retryPolicy: { type: RetryType.LINEAR, interval: max, maxInterval: max, maxRetry: max, basis: 1.5 },
      runnerSettings: new Uint8Array(3 << 20).map((_, i) => i % 251),
    });
    const id = await store.createWorker(data, 1);
    // protobuf equals, not toEqual: vitest compares megabytes of bytes one by one for seconds.
    expect(equals(WorkerDataSchema, (await store.findWorker(id))!.data!, data)).toBe(true);
    const big = job((1n << 62n) + 1n, "k🚀", new Uint8Array(2 << 20).fill(7));
    big.data!.retried = max;
    big.metadata = { "x-ü": "🚀" };
    await store.insertJob(big);
    expect(equals(JobSchema, (await store.findJob((1n << 62n) + 1n))!, big)).toBe(true);
  });

  it("compares names byte-wise even in a database with a linguistic (ICU) collation", async () => {
    const icu = await createPostgresTestDatabase(postgresAdminUrl(), "icu", "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'");
    const s = await openPostgresStore(icu.url, { max: 2 });
    try {
      await s.migrate(BUILTIN_RUNNERS);
      // the database itself would sort a_c < abc < Abc
      const { rows } = await sql<{ n: string }>`select n from (values ('Abc'), ('abc'), ('a_c')) v(n) order by n`.execute(s.db);
      expect(rows.map((r) => r.n)).toEqual(["a_c", "abc", "Abc"]);
      for (const name of ["Abc", "abc", "a_c"]) await s.createWorker(workerData(name), 1);
      const names = async (namePrefix?: string) => (await s.findWorkers({ namePrefix, sortBy: 2 /* NAME */ })).map((w) => w.data!.name);
      expect(await names()).toEqual(["Abc", "a_c", "abc"]);
      expect(await names("a")).toEqual(["a_c", "abc"]);
      expect(await s.findWorkerByName("ABC")).toBeUndefined();
    } finally {
      await s.close();
      await icu.drop();
    }
  });

  it("concurrent writers: one name, one uniq_key and one grab win; the others get ALREADY_EXISTS / false", async () => {
    const kinds = (rs: PromiseSettledResult<unknown>[]) =>
      rs.map((r) => (r.status === "fulfilled" ? "ok" : (r.reason as { kind?: string }).kind)).sort();
    const workers = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.createWorker(workerData("same", { description: `${i}` }), 1)));
    expect(kinds(workers)).toEqual(["ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ok"]);
    const jobs = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.insertJob(job(100n + BigInt(i), "uk"))));
    expect(kinds(jobs)).toEqual(["ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ok"]);
    const other = await openPostgresStore(db.url, { max: 8 });
    try {
      await store.insertJob(job(7n));
      const wins = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? other : store).grabJob(7n, undefined, 1000n + BigInt(i))));
      expect(wins.filter(Boolean)).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  it("grabDueJobs skips a row another transaction has locked instead of waiting for it", async () => {
    for (const id of [1n, 2n, 3n]) await store.insertJob(job(id));
    await admin.query("BEGIN");
    try {
      await admin.query("SELECT id FROM job WHERE id = 2 FOR UPDATE");
      // a compare-and-set UPDATE would block here until the admin transaction ends
      const got = await store.grabDueJobs(10n, 5n, 10, 100n);
      expect(got.map((j) => j.id!.value)).toEqual([1n, 3n]);
    } finally {
      await admin.query("ROLLBACK");
    }
    expect((await store.grabDueJobs(10n, 5n, 10, 100n)).map((j) => j.id!.value)).toEqual([2n]);
  });

  it("two processes migrating a fresh database at once both succeed", async () => {
    const fresh = await createPostgresTestDatabase(postgresAdminUrl(), "migrate");
    const stores = await Promise.all([openPostgresStore(fresh.url), openPostgresStore(fresh.url)]);
    try {
      await Promise.all(stores.map((s) => s.migrate(BUILTIN_RUNNERS)));
      expect(await stores[0].countRunners({})).toBe(BUILTIN_RUNNERS.length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await fresh.drop();
    }
  });

  it("refuses malformed URLs with INVALID_ARGUMENT", async () => {
    for (const url of ["nonsense", "mysql://u@h/db", "postgres://u@127.0.0.1:1", "postgresql://u@127.0.0.1:1/"]) {
      await expect(openPostgresStore(url)).rejects.toMatchObject({ kind: "INVALID_ARGUMENT" });
    }
    // both schemes are accepted
    for (const scheme of ["postgres", "postgresql"]) {
      const u = new URL(db.url);
      const s = await openPostgresStore(`${scheme}://${u.username}@${u.host}${u.pathname}`);
      expect(await s.countRunners({})).toBe(BUILTIN_RUNNERS.length);
      await s.close();
    }
  });

  it("text PostgreSQL cannot hold (NUL characters, which SQLite and MySQL store) is INVALID_ARGUMENT", async () => {
    await expect(store.createWorker(workerData("a\u0000b"), 1)).rejects.toMatchObject({ name: "AppError", kind: "INVALID_ARGUMENT" });
    await expect(store.insertJob(job(1n, "k\u0000"))).rejects.toMatchObject({ name: "AppError", kind: "INVALID_ARGUMENT" });
    expect(await store.countWorkers({})).toBe(0);
  });

  it("a missing database is an error of its own, not UNAVAILABLE", async () => {
    const u = new URL(db.url);
    u.pathname = "/no_such_database";
    const s = await openPostgresStore(u.toString());
    try {
      const err = await s.countJobs().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "3D000" }); // invalid_catalog_name
      expect((err as { kind?: string }).kind).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});

// Needs the postgres binaries even when TEST_POSTGRES_URL points the rest at another server.
describe("PostgreSQL outages (a private server)", () => {
  let svc: PostgresService;
  beforeAll(async () => {
    svc = await startPostgres();
  });
  afterAll(async () => {
    await svc?.destroy(); // continues a server a failed test left frozen
  });

  const failsFast = async (op: Promise<unknown>, withinMs: number) => {
    const t0 = Date.now();
    await expect(op).rejects.toMatchObject({ name: "AppError", kind: "UNAVAILABLE" });
    expect(Date.now() - t0).toBeLessThan(withinMs);
  };

  it("a stopped or crashed server fails calls promptly with UNAVAILABLE; the same store recovers after a restart", async () => {
    const store = await openPostgresStore(svc.url); // default options
    try {
      await store.migrate(BUILTIN_RUNNERS);
      await store.createWorker(workerData("before"), 1);
      for (const kill of [false, true]) {
        await svc.stop({ kill }); // fast shutdown, then a crash of every server process
        await failsFast(store.countWorkers({}), 5000);
        await failsFast(store.insertJob(job(BigInt(kill ? 2 : 1))), 5000);
        await failsFast(store.grabDueJobs(10n, 5n, 10, 100n), 5000);
        await svc.start();
        expect(await store.countWorkers({})).toBe(kill ? 2 : 1);
        await store.createWorker(workerData(`after-${kill}`), 1);
      }
    } finally {
      await store.close();
    }
  });

  it("a hung server fails calls within the query timeout, then recovers", async () => {
    const store = await openPostgresStore(svc.url, { max: 2, connectTimeoutMs: 500, queryTimeoutMs: 500 });
    try {
      await store.migrate(BUILTIN_RUNNERS);
      const before = await store.countWorkers({});
      await svc.freeze();
      try {
        // more calls than connections: the queued ones must not wait forever either
        await Promise.all(Array.from({ length: 4 }, () => failsFast(store.countWorkers({}), 5000)));
      } finally {
        svc.thaw();
      }
      expect(await store.countWorkers({})).toBe(before);
    } finally {
      await store.close();
    }
  });
});
