// The Store contract on MariaDB (the run's server from test/global-setup.ts), MySQL specifics, and outages
// against a private server that the tests stop and start.
import { create, equals, type MessageInitShape } from "@bufbuild/protobuf";
import mysql from "mysql2/promise";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { sql } from "kysely";
import { openMysqlStore, SESSION_SQL_MODE } from "../../worker-container/src/adapters/mysql/index.js";
import type { SqlStore } from "../../worker-container/src/adapters/sql/store.js";
import { RetryType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { WorkerDataSchema, type WorkerData } from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";
import { createTestDatabase, type TestDatabase } from "../helpers/databases.js";
import { startMariadb, type MariadbService } from "../helpers/services.js";
import { BUILTIN_RUNNERS, describeStoreContract } from "./store.contract.js";

const TABLES = ["job_result", "job", "worker", "runner", "function_set"];

let db: TestDatabase;
let admin: mysql.Connection;
beforeAll(async () => {
  db = await createTestDatabase(inject("mysqlUrl"), "store");
  admin = await mysql.createConnection(db.url);
});
afterAll(async () => {
  await admin?.end();
  await db?.drop();
});

/** Empty every table before each test: as fresh as a new database, without re-running the migrations. */
async function emptyTables() {
  for (const t of TABLES) {
    try {
      await admin.query(`DELETE FROM \`${t}\``);
    } catch (e) {
      if ((e as { code?: string }).code !== "ER_NO_SUCH_TABLE") throw e; // before the first migrate
    }
  }
}

describe("MariaDB", () => {
  beforeEach(emptyTables);
  describeStoreContract("mariadb", () => openMysqlStore(db.url, { connectionLimit: 4 }), { durable: true });
});

type WorkerInit = MessageInitShape<typeof WorkerDataSchema>;
const workerData = (name: string, over: WorkerInit = {}): WorkerData =>
  create(WorkerDataSchema, { name, runnerId: { value: 1n }, runnerSettings: new Uint8Array([1]), ...over } as WorkerInit);
const job = (id: bigint, uniqKey?: string, args = new Uint8Array([1])) =>
  create(JobSchema, { id: { value: id }, data: { workerId: { value: 1n }, args, uniqKey, runAfterTime: 1n } });

describe("MySQL specifics", () => {
  let store: SqlStore;
  beforeEach(async () => {
    await emptyTables();
    store = await openMysqlStore(db.url, { connectionLimit: 8 });
    await store.migrate(BUILTIN_RUNNERS);
  });
  afterEach(async () => {
    await store.close();
  });

  it("creates InnoDB tables in utf8mb4 with a binary collation whatever the server default", async () => {
    const [rows] = await admin.query(
      "SELECT table_name AS t, engine AS e, table_collation AS c FROM information_schema.tables WHERE table_schema = ? AND table_name IN (?)",
      [db.name, TABLES],
    );
    expect(rows).toHaveLength(TABLES.length);
    for (const r of rows as { e: string; c: string }[]) expect(r).toMatchObject({ e: "InnoDB", c: "utf8mb4_bin" });
  });

  it("runs every connection in strict mode with backslash escapes", async () => {
    const { rows } = await sql<{ m: string }>`select @@session.sql_mode as m`.execute(store.db);
    expect(rows[0].m).toBe(SESSION_SQL_MODE);
    // strict: an oversized value is an error, not a silently truncated name
    await expect(store.createWorker(workerData("x".repeat(300)), 1)).rejects.toMatchObject({ code: "ER_DATA_TOO_LONG" });
    await store.createWorker(workerData("it's a \\ back'slash"), 1);
    expect(await store.findWorkerByName("it's a \\ back'slash")).toBeDefined();
  });

  it("two processes migrating a fresh database at once both succeed", async () => {
    const fresh = await createTestDatabase(inject("mysqlUrl"), "migrate");
    const stores = await Promise.all([openMysqlStore(fresh.url), openMysqlStore(fresh.url)]);
    try {
      await Promise.all(stores.map((s) => s.migrate(BUILTIN_RUNNERS)));
      expect(await stores[0].countRunners({})).toBe(BUILTIN_RUNNERS.length);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await fresh.drop();
    }
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

  it("compares names byte-wise: case matters for uniqueness, prefix and order", async () => {
    await store.createWorker(workerData("Abc"), 1);
    await store.createWorker(workerData("abc"), 1);
    await store.createWorker(workerData("a_c"), 1);
    const names = async (namePrefix?: string) =>
      (await store.findWorkers({ namePrefix, sortBy: 2 /* NAME */ })).map((w) => w.data!.name);
    expect(await names()).toEqual(["Abc", "a_c", "abc"]);
    expect(await names("a")).toEqual(["a_c", "abc"]);
    expect(await store.findWorkerByName("ABC")).toBeUndefined();
  });

  it("concurrent writers: one name, one uniq_key and one grab win; the others get ALREADY_EXISTS / false", async () => {
    const kinds = (rs: PromiseSettledResult<unknown>[]) =>
      rs.map((r) => (r.status === "fulfilled" ? "ok" : (r.reason as { kind?: string }).kind)).sort();
    const workers = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.createWorker(workerData("same", { description: `${i}` }), 1)));
    expect(kinds(workers)).toEqual(["ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ALREADY_EXISTS", "ok"]);
    const jobs = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => store.insertJob(job(100n + BigInt(i), "uk"))));
    expect(kinds(jobs).filter((k) => k === "ok")).toHaveLength(1);
    expect(kinds(jobs).filter((k) => k === "ALREADY_EXISTS")).toHaveLength(5);
    const other = await openMysqlStore(db.url, { connectionLimit: 8 });
    try {
      await store.insertJob(job(7n));
      const wins = await Promise.all(Array.from({ length: 16 }, (_, i) => (i % 2 ? other : store).grabJob(7n, undefined, 1000n + BigInt(i))));
      expect(wins.filter(Boolean)).toHaveLength(1);
      // Re-grabbing with the value already stored still counts as a win (matched rows, not changed rows).
      const until = (await store.findJob(7n))!.data!.grabbedUntilTime!;
      expect(await store.grabJob(7n, until, until)).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("refuses malformed URLs with INVALID_ARGUMENT", async () => {
    for (const url of ["nonsense", "postgres://u@h/db", "mysql://u@127.0.0.1:1/", "mysql://u@127.0.0.1:1/db?ssl=true"]) {
      await expect(openMysqlStore(url)).rejects.toMatchObject({ kind: "INVALID_ARGUMENT" });
    }
  });

  it("a wrong password is an error of its own, not UNAVAILABLE", async () => {
    const u = new URL(db.url);
    u.password = "wrong";
    const s = await openMysqlStore(u.toString());
    try {
      const err = await s.countJobs().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ER_ACCESS_DENIED_ERROR" });
      expect((err as { kind?: string }).kind).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});

// Needs the mariadbd binary (npm test installs it) even when TEST_MYSQL_URL points the rest at another server.
describe("MariaDB outages (a private server)", () => {
  let svc: MariadbService;
  beforeAll(async () => {
    svc = await startMariadb();
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
    const store = await openMysqlStore(svc.url); // default options
    try {
      await store.migrate(BUILTIN_RUNNERS);
      await store.createWorker(workerData("before"), 1);
      for (const kill of [false, true]) {
        await svc.stop({ kill }); // graceful shutdown, then a crash
        await failsFast(store.countWorkers({}), 2000);
        await failsFast(store.insertJob(job(BigInt(kill ? 2 : 1))), 2000);
        await svc.start();
        expect(await store.countWorkers({})).toBe(kill ? 2 : 1);
        await store.createWorker(workerData(`after-${kill}`), 1);
      }
    } finally {
      await store.close();
    }
  });

  it("a hung server fails calls within the query timeout, then recovers", async () => {
    const store = await openMysqlStore(svc.url, { connectionLimit: 2, connectTimeoutMs: 500, queryTimeoutMs: 500 });
    try {
      await store.migrate(BUILTIN_RUNNERS);
      const before = await store.countWorkers({});
      await svc.freeze();
      try {
        // more calls than connections: the queued ones must not wait forever either
        await Promise.all(Array.from({ length: 4 }, () => failsFast(store.countWorkers({}), 2000)));
      } finally {
        svc.thaw();
      }
      expect(await store.countWorkers({})).toBe(before);
    } finally {
      await store.close();
    }
  });
});
