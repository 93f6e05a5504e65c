// Dialect-neutral Store on Kysely: the same queries run on SQLite, MySQL and PostgreSQL; only the
// column types of the migrations, unique-violation detection and how due jobs are grabbed (SKIP LOCKED or
// compare-and-set) come from the SqlDialect.
import { sql, type ExpressionBuilder, type Expression, type Kysely, type SqlBool } from "kysely";
import { AppError, invalid } from "../../core/errors.js";
import type {
  JobResultBulkDelete,
  JobResultFilter,
  RunnerFilter,
  RunnerRow,
  Store,
  WorkerFilter,
} from "../../core/ports.js";
import type { Job } from "../../gen/jobworkerp/data/job_pb.js";
import type { FunctionSet } from "../../gen/jobworkerp/function/data/function_set_pb.js";
import { JobResultSortField, type JobResult } from "../../gen/jobworkerp/data/job_result_pb.js";
import { RunnerSortField } from "../../gen/jobworkerp/data/runner_pb.js";
import { WorkerSortField, type Worker, type WorkerData } from "../../gen/jobworkerp/data/worker_pb.js";
import type { SqlDialect } from "./dialect.js";
import { functionSetValues, rowToFunctionSet } from "./function_set_mapping.js";
import {
  big,
  bytes,
  jobValues,
  num,
  resultValues,
  rowToJob,
  rowToResult,
  rowToRunner,
  rowToWorker,
  runnerValues,
  workerValues,
} from "./mapping.js";
import { migrateToLatest } from "./migrations/index.js";
import type { Database } from "./schema.js";

export const DEFAULT_CHANNEL = "__default_job_channel__";
export const RESULT_DEFAULT_LIMIT = 100;
export const RESULT_MAX_LIMIT = 1000;

type Dir = "asc" | "desc";

const WORKER_SORT = {
  [WorkerSortField.UNSPECIFIED]: "id",
  [WorkerSortField.ID]: "id",
  [WorkerSortField.NAME]: "name",
  [WorkerSortField.RUNNER_ID]: "runner_id",
  [WorkerSortField.PERIODIC_INTERVAL]: "periodic_interval",
  [WorkerSortField.CREATED_AT]: "created_at",
} as const;

const RUNNER_SORT = {
  [RunnerSortField.UNSPECIFIED]: "id",
  [RunnerSortField.ID]: "id",
  [RunnerSortField.NAME]: "name",
  [RunnerSortField.RUNNER_TYPE]: "type",
  [RunnerSortField.CREATED_AT]: "created_at",
} as const;

const RESULT_SORT = {
  [JobResultSortField.UNSPECIFIED]: "end_time",
  [JobResultSortField.ID]: "id",
  [JobResultSortField.START_TIME]: "start_time",
  [JobResultSortField.END_TIME]: "end_time",
  [JobResultSortField.STATUS]: "status",
} as const;

/** LIKE pattern for a prefix; '!' escapes because a backslash literal means different things per dialect. */
const likePrefix = (prefix: string) => prefix.replace(/[!%_]/g, (c) => "!" + c) + "%";

// Row-count helpers: Kysely reports bigint counts.
const n = (v: bigint | undefined) => Number(v ?? 0n);

export class SqlStore implements Store {
  private closed = false;
  private readonly returning: boolean;

  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: SqlDialect,
    /** Extra teardown after the Kysely instance is destroyed (e.g. closing a client the dialect does not own). */
    private readonly onClose?: () => void | Promise<void>,
  ) {
    this.returning = db.getExecutor().adapter.supportsReturning;
  }

  async migrate(builtinRunners: RunnerRow[]): Promise<void> {
    await migrateToLatest(this.db as Kysely<any>, this.dialect.types);
    if (builtinRunners.length === 0) return;
    const ids = builtinRunners.map((r) => r.id);
    const present = await this.db.selectFrom("runner").select("id").where("id", "in", ids).execute();
    const have = new Set(present.map((r) => big(r.id)));
    for (const r of builtinRunners) {
      if (have.has(r.id)) continue;
      try {
        await this.db.insertInto("runner").values(runnerValues(r)).execute();
      } catch (e) {
        // INSERT OR IGNORE semantics: another process seeded it, or the name is taken.
        if (!this.dialect.isUniqueViolation(e)) throw e;
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.destroy();
    await this.onClose?.();
  }

  /** Runs op, turning a unique-key violation into ALREADY_EXISTS. */
  private async unique<T>(what: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      if (this.dialect.isUniqueViolation(e)) throw new AppError("ALREADY_EXISTS", `${what} already exists`);
      throw e;
    }
  }

  // ------------------------------------------------------------------ workers

  async createWorker(data: WorkerData, createdAt: number): Promise<bigint> {
    const values = { ...workerValues(data), created_at: BigInt(Math.trunc(createdAt)) };
    return this.unique(`worker name '${data.name}'`, async () => {
      if (this.returning) {
        const row = await this.db.insertInto("worker").values(values).returning("id").executeTakeFirstOrThrow();
        return big(row.id);
      }
      const res = await this.db.insertInto("worker").values(values).executeTakeFirstOrThrow();
      return big(res.insertId);
    });
  }

  async updateWorker(id: bigint, data: WorkerData): Promise<boolean> {
    const res = await this.unique(`worker name '${data.name}'`, () =>
      this.db.updateTable("worker").set(workerValues(data)).where("id", "=", id).executeTakeFirst(),
    );
    // MySQL counts changed (not matched) rows unless FOUND_ROWS is set: tell "unchanged" from "gone".
    return res.numUpdatedRows > 0n || (await this.findWorker(id)) !== undefined;
  }

  async deleteWorker(id: bigint): Promise<boolean> {
    const res = await this.db.deleteFrom("worker").where("id", "=", id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async findWorker(id: bigint): Promise<Worker | undefined> {
    const row = await this.db.selectFrom("worker").selectAll().where("id", "=", id).executeTakeFirst();
    return row && rowToWorker(row);
  }

  async findWorkerByName(name: string): Promise<Worker | undefined> {
    const row = await this.db.selectFrom("worker").selectAll().where("name", "=", name).executeTakeFirst();
    return row && rowToWorker(row);
  }

  async findWorkers(f: WorkerFilter): Promise<Worker[]> {
    const col = WORKER_SORT[f.sortBy ?? WorkerSortField.UNSPECIFIED] ?? "id";
    const dir: Dir = f.ascending === false ? "desc" : "asc";
    let q = this.db
      .selectFrom("worker")
      .selectAll()
      .where((eb) => eb.and(workerConds(eb, f)))
      .orderBy(col, dir);
    if (col !== "id") q = q.orderBy("id", dir);
    const rows = await page(q, f.limit, f.offset).execute();
    return rows.map(rowToWorker);
  }

  async countWorkers(f: WorkerFilter): Promise<number> {
    const row = await this.db
      .selectFrom("worker")
      .select((eb) => eb.fn.countAll().as("n"))
      .where((eb) => eb.and(workerConds(eb, f)))
      .executeTakeFirstOrThrow();
    return num(row.n);
  }

  async countWorkersByChannel(defaultChannel: string): Promise<Map<string, number>> {
    const rows = await this.db
      .selectFrom("worker")
      .select((eb) => ["channel", eb.fn.countAll().as("n")])
      .groupBy("channel")
      .execute();
    const out = new Map<string, number>();
    for (const r of rows) {
      // NULL, "" and the default channel's own name all mean the default channel.
      const ch = r.channel === null || r.channel === "" || r.channel === DEFAULT_CHANNEL ? defaultChannel : r.channel;
      out.set(ch, (out.get(ch) ?? 0) + num(r.n));
    }
    return out;
  }

  // ------------------------------------------------------------------ runners

  async createRunner(row: RunnerRow): Promise<void> {
    await this.unique(`runner '${row.name}' (id ${row.id})`, () =>
      this.db.insertInto("runner").values(runnerValues(row)).execute(),
    );
  }

  async updateRunner(id: bigint, patch: { description: string; definition: string }): Promise<boolean> {
    const res = await this.db
      .updateTable("runner")
      .set({ description: patch.description, definition: patch.definition })
      .where("id", "=", id)
      .executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }

  async deleteRunner(id: bigint): Promise<boolean> {
    const res = await this.db.deleteFrom("runner").where("id", "=", id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async findRunner(id: bigint): Promise<RunnerRow | undefined> {
    const row = await this.db.selectFrom("runner").selectAll().where("id", "=", id).executeTakeFirst();
    return row && rowToRunner(row);
  }

  async findRunnerByName(name: string): Promise<RunnerRow | undefined> {
    const row = await this.db.selectFrom("runner").selectAll().where("name", "=", name).executeTakeFirst();
    return row && rowToRunner(row);
  }

  async findRunners(f: RunnerFilter): Promise<RunnerRow[]> {
    const col = RUNNER_SORT[f.sortBy ?? RunnerSortField.UNSPECIFIED] ?? "id";
    // FindRunnerListRequest: ascending defaults to false.
    const dir: Dir = f.ascending ? "asc" : "desc";
    let q = this.db
      .selectFrom("runner")
      .selectAll()
      .where((eb) => eb.and(runnerConds(eb, f)))
      .orderBy(col, dir);
    if (col !== "id") q = q.orderBy("id", dir);
    const rows = await page(q, f.limit, f.offset).execute();
    return rows.map(rowToRunner);
  }

  async countRunners(f: RunnerFilter): Promise<number> {
    const row = await this.db
      .selectFrom("runner")
      .select((eb) => eb.fn.countAll().as("n"))
      .where((eb) => eb.and(runnerConds(eb, f)))
      .executeTakeFirstOrThrow();
    return num(row.n);
  }

  // ------------------------------------------------------------------ jobs

  async insertJob(job: Job): Promise<void> {
    await this.unique(`job ${job.id?.value} (id or uniq_key)`, () =>
      this.db.insertInto("job").values(jobValues(job)).execute(),
    );
  }

  async updateJob(job: Job): Promise<boolean> {
    const { id, ...values } = jobValues(job);
    const res = await this.unique(`job uniq_key '${job.data?.uniqKey}'`, () =>
      this.db.updateTable("job").set(values).where("id", "=", id).executeTakeFirst(),
    );
    return res.numUpdatedRows > 0n || (await this.findJob(big(id))) !== undefined;
  }

  async deleteJob(id: bigint): Promise<boolean> {
    const res = await this.db.deleteFrom("job").where("id", "=", id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async deleteJobsOfWorker(workerId: bigint): Promise<number> {
    const res = await this.db.deleteFrom("job").where("worker_id", "=", workerId).executeTakeFirst();
    return n(res.numDeletedRows);
  }

  async findJob(id: bigint): Promise<Job | undefined> {
    const row = await this.db.selectFrom("job").selectAll().where("id", "=", id).executeTakeFirst();
    return row && rowToJob(row);
  }

  async findJobs(limit: number, offset: number): Promise<Job[]> {
    const q = this.db.selectFrom("job").selectAll().orderBy("id", "asc");
    return (await page(q, limit, offset).execute()).map(rowToJob);
  }

  async countJobs(): Promise<number> {
    const row = await this.db
      .selectFrom("job")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    return num(row.n);
  }

  async findDueJobs(until: bigint, now: bigint, limit: number): Promise<Job[]> {
    const rows = await dueJobs(this.db, until, now, limit).execute();
    return rows.map(rowToJob);
  }

  async grabDueJobs(until: bigint, now: bigint, limit: number, grabUntil: bigint): Promise<Job[]> {
    const grabbed = (job: Job) => {
      job.data!.grabbedUntilTime = grabUntil;
      return job;
    };
    if (!this.dialect.skipLocked) {
      // One writer at a time (SQLite): a row another handle grabbed in between just loses its compare-and-set.
      const won: Job[] = [];
      for (const job of await this.findDueJobs(until, now, limit)) {
        if (await this.grabJob(job.id!.value, job.data!.grabbedUntilTime, grabUntil)) won.push(grabbed(job));
      }
      return won;
    }
    // Rows another transaction holds are skipped rather than waited for, and a row it grabbed and committed
    // meanwhile is re-checked against the WHERE clause, so concurrent grabbers get disjoint rows. READ
    // COMMITTED keeps InnoDB from also locking the gaps between rows (which would block the fronts' inserts).
    return this.db
      .transaction()
      .setIsolationLevel("read committed")
      .execute(async (trx) => {
        const rows = await dueJobs(trx, until, now, limit).forUpdate().skipLocked().execute();
        if (rows.length === 0) return [];
        await trx
          .updateTable("job")
          .set({ grabbed_until_time: grabUntil })
          .where("id", "in", rows.map((r) => big(r.id)))
          .execute();
        return rows.map((r) => grabbed(rowToJob(r)));
      });
  }

  async grabJob(id: bigint, expected: bigint | undefined, grabUntil: bigint): Promise<boolean> {
    const res = await this.db
      .updateTable("job")
      .set({ grabbed_until_time: grabUntil })
      .where("id", "=", id)
      .where((eb) =>
        expected === undefined || expected === 0n
          ? eb.or([eb("grabbed_until_time", "is", null), eb("grabbed_until_time", "=", 0n)])
          : eb("grabbed_until_time", "=", expected),
      )
      .executeTakeFirst();
    return res.numUpdatedRows > 0n;
  }

  async releaseAllGrabs(): Promise<number> {
    const res = await this.db
      .updateTable("job")
      .set({ grabbed_until_time: null })
      .where("grabbed_until_time", "is not", null)
      .executeTakeFirst();
    return n(res.numUpdatedRows);
  }

  // ------------------------------------------------------------------ job results

  async insertResult(result: JobResult): Promise<boolean> {
    try {
      await this.db.insertInto("job_result").values(resultValues(result)).execute();
      return true;
    } catch (e) {
      if (!this.dialect.isUniqueViolation(e)) throw e;
      // two unique keys: the id (a clash is an error) and the attempt (a re-run's result is dropped)
      if (await this.findResult(result.id!.value)) throw new AppError("ALREADY_EXISTS", `job result ${result.id!.value} already exists`);
      return false;
    }
  }

  async findResult(id: bigint): Promise<JobResult | undefined> {
    const row = await this.db.selectFrom("job_result").selectAll().where("id", "=", id).executeTakeFirst();
    return row && rowToResult(row);
  }

  /** Newest first, like the default result listing. */
  async findResultsByJobId(jobId: bigint): Promise<JobResult[]> {
    const rows = await this.db
      .selectFrom("job_result")
      .selectAll()
      .where("job_id", "=", jobId)
      .orderBy("end_time", "desc")
      .orderBy("id", "desc")
      .execute();
    return rows.map(rowToResult);
  }

  async findResults(f: JobResultFilter): Promise<JobResult[]> {
    const col = RESULT_SORT[f.sortBy ?? JobResultSortField.UNSPECIFIED] ?? "end_time";
    const dir: Dir = f.ascending ? "asc" : "desc";
    let q = this.db
      .selectFrom("job_result")
      .selectAll()
      .where((eb) => eb.and(resultConds(eb, f)))
      .orderBy(col, dir);
    if (col !== "id") q = q.orderBy("id", dir);
    const limit = Math.min(Math.max(0, f.limit ?? RESULT_DEFAULT_LIMIT), RESULT_MAX_LIMIT);
    return (await page(q, limit, f.offset).execute()).map(rowToResult);
  }

  async countResults(f: JobResultFilter): Promise<number> {
    const row = await this.db
      .selectFrom("job_result")
      .select((eb) => eb.fn.countAll().as("n"))
      .where((eb) => eb.and(resultConds(eb, f)))
      .executeTakeFirstOrThrow();
    return num(row.n);
  }

  async deleteResult(id: bigint): Promise<boolean> {
    const res = await this.db.deleteFrom("job_result").where("id", "=", id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async deleteResults(f: JobResultBulkDelete): Promise<number> {
    const conds = (eb: ExpressionBuilder<Database, "job_result">) => {
      const c: Expression<SqlBool>[] = [];
      if (f.endTimeBefore !== undefined) c.push(eb("end_time", "<", f.endTimeBefore));
      if (f.statuses?.length) c.push(eb("status", "in", f.statuses));
      if (f.workerIds?.length) c.push(eb("worker_id", "in", f.workerIds));
      return c;
    };
    // An empty request would wipe the table; make the caller say so explicitly.
    if (f.endTimeBefore === undefined && !f.statuses?.length && !f.workerIds?.length) {
      throw invalid("bulk delete of job results needs at least one condition");
    }
    const res = await this.db
      .deleteFrom("job_result")
      .where((eb) => eb.and(conds(eb)))
      .executeTakeFirst();
    return n(res.numDeletedRows);
  }

  // ------------------------------------------------------------------ function sets

  async createFunctionSet(set: FunctionSet, createdAt: number): Promise<void> {
    const values = { ...functionSetValues(set), created_at: BigInt(Math.trunc(createdAt)) };
    await this.unique(`function set '${set.data!.name}'`, () => this.db.insertInto("function_set").values(values).execute());
  }

  async updateFunctionSet(set: FunctionSet): Promise<boolean> {
    const { id, ...values } = functionSetValues(set);
    const res = await this.unique(`function set '${set.data!.name}'`, () =>
      this.db.updateTable("function_set").set(values).where("id", "=", id).executeTakeFirst(),
    );
    // MySQL counts changed rows only: an update to identical values must still say "found".
    return res.numUpdatedRows > 0n || (await this.findFunctionSet(id)) !== undefined;
  }

  async deleteFunctionSet(id: bigint): Promise<boolean> {
    const res = await this.db.deleteFrom("function_set").where("id", "=", id).executeTakeFirst();
    return res.numDeletedRows > 0n;
  }

  async findFunctionSet(id: bigint): Promise<FunctionSet | undefined> {
    const row = await this.db.selectFrom("function_set").selectAll().where("id", "=", id).executeTakeFirst();
    return row && rowToFunctionSet(row);
  }

  async findFunctionSetByName(name: string): Promise<FunctionSet | undefined> {
    const row = await this.db.selectFrom("function_set").selectAll().where("name", "=", name).executeTakeFirst();
    return row && rowToFunctionSet(row);
  }

  async findFunctionSets(limit?: number, offset?: number): Promise<FunctionSet[]> {
    const rows = await page(this.db.selectFrom("function_set").selectAll().orderBy("id", "asc"), limit, offset).execute();
    return rows.map(rowToFunctionSet);
  }

  async countFunctionSets(): Promise<number> {
    const row = await this.db
      .selectFrom("function_set")
      .select((eb) => eb.fn.countAll().as("n"))
      .executeTakeFirstOrThrow();
    return num(row.n);
  }

  // ------------------------------------------------------------------ workflow checkpoints

  async saveWorkflowCheckpoint(executionKey: string, position: string, data: string, savedAt: number): Promise<void> {
    const row = { execution_key: executionKey, position, data, saved_at: BigInt(Math.trunc(savedAt)) };
    // insert, or replace on a duplicate key (portable; no dialect-specific upsert)
    try {
      await this.db.insertInto("workflow_checkpoint").values(row).execute();
    } catch (e) {
      if (!this.dialect.isUniqueViolation(e)) throw e;
      await this.db
        .updateTable("workflow_checkpoint")
        .set({ data, saved_at: row.saved_at })
        .where("execution_key", "=", executionKey)
        .where("position", "=", position)
        .execute();
    }
  }

  async loadWorkflowCheckpoint(executionKey: string, position: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("workflow_checkpoint")
      .select("data")
      .where("execution_key", "=", executionKey)
      .where("position", "=", position)
      .executeTakeFirst();
    return row?.data;
  }

  async deleteWorkflowCheckpoints(executionKey: string): Promise<number> {
    const res = await this.db.deleteFrom("workflow_checkpoint").where("execution_key", "=", executionKey).executeTakeFirst();
    return n(res.numDeletedRows);
  }

  async putSpill(key: string, data: Uint8Array, createdAt: number): Promise<void> {
    await this.unique(`spilled job bytes '${key}'`, () =>
      this.db.insertInto("job_spill").values({ spill_key: key, data, created_at: BigInt(Math.trunc(createdAt)) }).execute(),
    );
  }

  async getSpill(key: string): Promise<Uint8Array | undefined> {
    const row = await this.db.selectFrom("job_spill").select("data").where("spill_key", "=", key).executeTakeFirst();
    return row ? bytes(row.data) : undefined;
  }

  async deleteSpill(key: string): Promise<boolean> {
    const res = await this.db.deleteFrom("job_spill").where("spill_key", "=", key).executeTakeFirst();
    return n(res.numDeletedRows) > 0;
  }
}

// ------------------------------------------------------------------ filters

/** Jobs due by `until` whose grab (if any) ran out before `now`, in the order the clock queues them. */
function dueJobs(db: Kysely<Database>, until: bigint, now: bigint, limit: number) {
  return db
    .selectFrom("job")
    .selectAll()
    .where("run_after_time", "<=", until)
    .where((eb) => eb.or([eb("grabbed_until_time", "is", null), eb("grabbed_until_time", "<", now)]))
    .orderBy("run_after_time", "asc")
    .orderBy("priority", "desc")
    .orderBy("id", "asc")
    .limit(Math.max(0, limit));
}

/** limit/offset; SQLite and MySQL reject OFFSET without LIMIT. */
function page<Q extends { limit(v: number): Q; offset(v: number): Q }>(q: Q, limit?: number, offset?: number): Q {
  if (limit !== undefined) q = q.limit(Math.max(0, limit));
  if (offset !== undefined && offset > 0) {
    if (limit === undefined) q = q.limit(Number.MAX_SAFE_INTEGER);
    q = q.offset(offset);
  }
  return q;
}

const nameLike = (prefix: string) => sql<SqlBool>`${sql.ref("name")} like ${likePrefix(prefix)} escape '!'`;

function workerConds(eb: ExpressionBuilder<Database, "worker">, f: WorkerFilter): Expression<SqlBool>[] {
  const c: Expression<SqlBool>[] = [];
  if (f.runnerTypes?.length) {
    c.push(eb("runner_id", "in", eb.selectFrom("runner").select("runner.id").where("runner.type", "in", f.runnerTypes)));
  }
  if (f.runnerIds?.length) c.push(eb("runner_id", "in", f.runnerIds));
  if (f.channel !== undefined) {
    c.push(
      f.channel === "" || f.channel === DEFAULT_CHANNEL
        ? eb.or([eb("channel", "is", null), eb("channel", "in", ["", DEFAULT_CHANNEL])])
        : eb("channel", "=", f.channel),
    );
  }
  if (f.namePrefix) c.push(nameLike(f.namePrefix));
  if (f.isPeriodic !== undefined) c.push(eb("periodic_interval", f.isPeriodic ? ">" : "=", 0));
  return c;
}

function runnerConds(eb: ExpressionBuilder<Database, "runner">, f: RunnerFilter): Expression<SqlBool>[] {
  const c: Expression<SqlBool>[] = [];
  if (f.runnerTypes?.length) c.push(eb("type", "in", f.runnerTypes));
  if (f.namePrefix) c.push(nameLike(f.namePrefix));
  return c;
}

function resultConds(eb: ExpressionBuilder<Database, "job_result">, f: JobResultFilter): Expression<SqlBool>[] {
  const c: Expression<SqlBool>[] = [];
  if (f.workerIds?.length) c.push(eb("worker_id", "in", f.workerIds));
  if (f.statuses?.length) c.push(eb("status", "in", f.statuses));
  if (f.startTimeFrom !== undefined) c.push(eb("start_time", ">=", f.startTimeFrom));
  if (f.startTimeTo !== undefined) c.push(eb("start_time", "<=", f.startTimeTo));
  if (f.endTimeFrom !== undefined) c.push(eb("end_time", ">=", f.endTimeFrom));
  if (f.endTimeTo !== undefined) c.push(eb("end_time", "<=", f.endTimeTo));
  if (f.priorities?.length) c.push(eb("priority", "in", f.priorities));
  if (f.uniqKey !== undefined) c.push(eb("uniq_key", "=", f.uniqKey));
  return c;
}
