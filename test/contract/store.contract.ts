// Shared contract for the Store port: every Store adapter (SQLite, MySQL, PostgreSQL, ...) runs this suite.
import { create, equals, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { RunnerRow, Store } from "../../worker-container/src/core/ports.js";
import {
  Priority,
  QueueType,
  ResponseType,
  ResultStatus,
  RetryType,
  RunnerType,
  StreamingType,
} from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobDataSchema, JobSchema, type Job } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import {
  JobResultDataSchema,
  JobResultSchema,
  JobResultSortField,
  type JobResult,
} from "../../worker-container/src/gen/jobworkerp/data/job_result_pb.js";
import { RunnerSortField } from "../../worker-container/src/gen/jobworkerp/data/runner_pb.js";
import { FunctionSetSchema, type FunctionSet } from "../../worker-container/src/gen/jobworkerp/function/data/function_set_pb.js";
import {
  WorkerDataSchema,
  WorkerSchema,
  WorkerSortField,
  type WorkerData,
} from "../../worker-container/src/gen/jobworkerp/data/worker_pb.js";

export interface StoreContractOptions {
  /**
   * open() called again within one test opens another handle on the same database, and data
   * survives close() (file/server databases). Enables the reopen and cross-handle tests.
   */
  durable?: boolean;
}

const DEFAULT_CHANNEL = "__default_job_channel__";
/** Snowflake-sized ids: above 2^53, so any trip through a JS number would corrupt them. */
const BIG = (1n << 60n) + 12345n;
const BIG_RUNNER = (1n << 59n) + 7n;

const runner = (id: bigint, name: string, runnerType: RunnerType, createdAt = 0): RunnerRow => ({
  id,
  name,
  description: `${name} runner`,
  runnerType,
  definition: `builtin${id}`,
  createdAt,
});

export const BUILTIN_RUNNERS: RunnerRow[] = [
  runner(1n, "COMMAND", RunnerType.COMMAND),
  runner(2n, "HTTP_REQUEST", RunnerType.HTTP_REQUEST),
  runner(32768n, "LLM", RunnerType.LLM),
];

// Fixture overrides are plain partial shapes; the casts below only merge them over the defaults.
type WorkerInit = MessageInitShape<typeof WorkerDataSchema>;
type JobDataInit = MessageInitShape<typeof JobDataSchema>;
type ResultDataInit = MessageInitShape<typeof JobResultDataSchema>;

const workerData = (name: string, over: Omit<WorkerInit, "name"> = {}): WorkerData =>
  create(WorkerDataSchema, {
    name,
    description: `worker ${name}`,
    runnerId: { value: 1n },
    runnerSettings: new Uint8Array([10, 3, 97, 98, 99]),
    retryPolicy: { type: RetryType.EXPONENTIAL, interval: 3000, maxInterval: 60000, maxRetry: 3, basis: 2 },
    periodicInterval: 0,
    queueType: QueueType.WITH_BACKUP,
    responseType: ResponseType.NO_RESULT,
    storeSuccess: true,
    storeFailure: false,
    useStatic: true,
    broadcastResults: true,
    ...over,
  } as WorkerInit);

const job = (id: bigint, over: JobDataInit = {}, metadata: Record<string, string> = {}): Job =>
  create(JobSchema, {
    id: { value: id },
    data: {
      workerId: { value: 7n },
      args: new Uint8Array([1, 2, 3, 0, 255]),
      enqueueTime: 1_700_000_000_000n,
      runAfterTime: 1_700_000_001_000n,
      retried: 0,
      priority: Priority.MEDIUM,
      timeout: 60_000n,
      streamingType: StreamingType.NONE,
      ...over,
    } as JobDataInit,
    metadata,
  });

const result = (
  id: bigint,
  over: ResultDataInit = {},
  metadata: Record<string, string> = {},
): JobResult =>
  create(JobResultSchema, {
    id: { value: id },
    data: {
      jobId: { value: id + 1n }, // one attempt per result unless a test says otherwise
      workerId: { value: 7n },
      workerName: "w7",
      args: new Uint8Array([4, 5, 6]),
      status: ResultStatus.SUCCESS,
      output: { items: new Uint8Array([42, 43]) },
      retried: 0,
      maxRetry: 3,
      priority: Priority.MEDIUM,
      timeout: 60_000n,
      enqueueTime: 1000n,
      runAfterTime: 0n,
      startTime: 2000n,
      endTime: 3000n,
      responseType: ResponseType.DIRECT,
      storeSuccess: true,
      storeFailure: true,
      streamingType: StreamingType.NONE,
      broadcastResults: false,
      ...over,
    } as ResultDataInit,
    metadata,
  });

/** Deep equality plus protobuf presence semantics (toEqual alone ignores absent-vs-undefined). */
function expectSame<D extends DescMessage>(schema: D, got: MessageShape<D> | undefined, want: MessageShape<D>) {
  expect(got).toBeDefined();
  expect(got).toEqual(want);
  expect(equals(schema, got!, want)).toBe(true);
}

async function expectKind(p: Promise<unknown>, kind: string) {
  await expect(p).rejects.toMatchObject({ name: "AppError", kind });
}

const ids = (xs: { id?: { value: bigint } }[]) => xs.map((x) => x.id!.value);

const functionSet = (id: bigint, name: string, category = 0): FunctionSet =>
  create(FunctionSetSchema, {
    id: { value: id },
    data: {
      name,
      description: `set ${name}`,
      category,
      targets: [
        { functionId: { id: { case: "workerId", value: { value: 5n } } } },
        { functionId: { id: { case: "runnerId", value: { value: BIG_RUNNER } } }, using: "fetch" },
        { functionId: { id: { case: "runnerId", value: { value: 1n } } }, using: "" },
      ],
    },
  });

export function describeStoreContract(name: string, open: () => Promise<Store>, opts: StoreContractOptions = {}) {
  // Reopen tests exist only for stores that outlive close() (not registered, rather than skipped, for :memory:).
  const itDurable: typeof it = opts.durable ? it : ((() => undefined) as unknown as typeof it);
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let handles: Store[] = [];

    const openMigrated = async (runners = BUILTIN_RUNNERS) => {
      const s = await open();
      handles.push(s);
      await s.migrate(runners);
      return s;
    };
    const closeHandle = async (s: Store) => {
      handles = handles.filter((h) => h !== s);
      await s.close();
    };

    beforeEach(async () => {
      store = await openMigrated();
    });
    afterEach(async () => {
      for (const s of handles.splice(0)) await s.close();
    });

    // ------------------------------------------------------------------ migrate / runners

    describe("migrate and runners", () => {
      it("seeds the built-in runners", async () => {
        expect(await store.countRunners({})).toBe(BUILTIN_RUNNERS.length);
        expect(await store.findRunner(1n)).toEqual(BUILTIN_RUNNERS[0]);
        expect(await store.findRunnerByName("LLM")).toEqual(BUILTIN_RUNNERS[2]);
      });

      it("migrate() again is idempotent and never overwrites seeded or user rows", async () => {
        await store.createRunner(runner(BIG_RUNNER, "my_plugin", RunnerType.PLUGIN, 5));
        const changed = BUILTIN_RUNNERS.map((r) => ({ ...r, description: "changed" }));
        await store.migrate(changed);
        await store.migrate(BUILTIN_RUNNERS);
        expect(await store.countRunners({})).toBe(BUILTIN_RUNNERS.length + 1);
        expect((await store.findRunner(2n))?.description).toBe("HTTP_REQUEST runner");
        expect((await store.findRunner(BIG_RUNNER))?.name).toBe("my_plugin");
      });

      it("migrate() seeds runners added later, and ignores a seed whose name is taken", async () => {
        await store.createRunner(runner(500n, "TAKEN", RunnerType.PLUGIN));
        await store.migrate([...BUILTIN_RUNNERS, runner(8n, "FUNCTION_SET_SELECTOR", RunnerType.FUNCTION_SET_SELECTOR), runner(9n, "TAKEN", RunnerType.PLUGIN)]);
        expect((await store.findRunner(8n))?.name).toBe("FUNCTION_SET_SELECTOR");
        expect(await store.findRunner(9n)).toBeUndefined();
        expect((await store.findRunnerByName("TAKEN"))?.id).toBe(500n);
      });

      it("creates, finds and deletes runners; bigint ids round-trip", async () => {
        const r = runner(BIG_RUNNER, "mcp", RunnerType.MCP_SERVER, 1_700_000_000_123);
        r.definition = '[server]\ncommand = "x"';
        await store.createRunner(r);
        expect(await store.findRunner(BIG_RUNNER)).toEqual(r);
        expect(await store.findRunnerByName("mcp")).toEqual(r);
        expect(await store.findRunner(BIG_RUNNER + 1n)).toBeUndefined();
        expect(await store.findRunnerByName("nope")).toBeUndefined();
        expect(await store.updateRunner(BIG_RUNNER, { description: "new", definition: '{"transport":"stdio"}' })).toBe(true);
        expect(await store.findRunner(BIG_RUNNER)).toEqual({ ...r, description: "new", definition: '{"transport":"stdio"}' });
        expect(await store.updateRunner(BIG_RUNNER + 1n, { description: "x", definition: "y" })).toBe(false);
        expect(await store.deleteRunner(BIG_RUNNER)).toBe(true);
        expect(await store.deleteRunner(BIG_RUNNER)).toBe(false);
        expect(await store.findRunner(BIG_RUNNER)).toBeUndefined();
      });

      it("duplicate runner name or id → ALREADY_EXISTS", async () => {
        await expectKind(store.createRunner(runner(99n, "COMMAND", RunnerType.PLUGIN)), "ALREADY_EXISTS");
        await expectKind(store.createRunner(runner(1n, "other", RunnerType.PLUGIN)), "ALREADY_EXISTS");
        expect(await store.countRunners({})).toBe(BUILTIN_RUNNERS.length);
      });

      it("filters, sorts and pages runners", async () => {
        await store.createRunner(runner(100n, "plug_a", RunnerType.PLUGIN, 30));
        await store.createRunner(runner(101n, "plugxb", RunnerType.PLUGIN, 10));
        await store.createRunner(runner(102n, "mcp_1", RunnerType.MCP_SERVER, 20));
        const names = (rs: RunnerRow[]) => rs.map((r) => r.name);
        // default: id, descending (FindRunnerListRequest.ascending defaults to false)
        expect((await store.findRunners({})).map((r) => r.id)).toEqual([32768n, 102n, 101n, 100n, 2n, 1n]);
        expect((await store.findRunners({ ascending: true })).map((r) => r.id)).toEqual([1n, 2n, 100n, 101n, 102n, 32768n]);
        expect(names(await store.findRunners({ runnerTypes: [RunnerType.PLUGIN], ascending: true }))).toEqual(["plug_a", "plugxb"]);
        expect(names(await store.findRunners({ runnerTypes: [RunnerType.PLUGIN, RunnerType.COMMAND], ascending: true }))).toEqual([
          "COMMAND",
          "plug_a",
          "plugxb",
        ]);
        // "_" in the prefix is literal, not a LIKE wildcard
        expect(names(await store.findRunners({ namePrefix: "plug_" }))).toEqual(["plug_a"]);
        expect(names(await store.findRunners({ namePrefix: "plug", sortBy: RunnerSortField.NAME, ascending: true }))).toEqual(["plug_a", "plugxb"]);
        expect(names(await store.findRunners({ runnerTypes: [RunnerType.PLUGIN, RunnerType.MCP_SERVER], sortBy: RunnerSortField.CREATED_AT, ascending: true }))).toEqual([
          "plugxb",
          "mcp_1",
          "plug_a",
        ]);
        expect((await store.findRunners({ sortBy: RunnerSortField.RUNNER_TYPE, ascending: false, limit: 2 })).map((r) => r.id)).toEqual([32768n, 102n]);
        expect((await store.findRunners({ ascending: true, limit: 2, offset: 2 })).map((r) => r.id)).toEqual([100n, 101n]);
        expect((await store.findRunners({ ascending: true, offset: 4 })).map((r) => r.id)).toEqual([102n, 32768n]);
        expect(await store.countRunners({ runnerTypes: [RunnerType.PLUGIN] })).toBe(2);
        expect(await store.countRunners({ namePrefix: "plug_" })).toBe(1);
        expect(await store.countRunners({ namePrefix: "zzz" })).toBe(0);
      });
    });

    // ------------------------------------------------------------------ workers

    describe("workers", () => {
      it("creates and finds a worker with every field round-tripping", async () => {
        const data = workerData("w1", { channel: "gpu", periodicInterval: 1500, runnerId: { value: BIG_RUNNER } });
        const id = await store.createWorker(data, 1_700_000_000_000);
        const want = create(WorkerSchema, { id: { value: id }, data });
        expectSame(WorkerSchema, await store.findWorker(id), want);
        expectSame(WorkerSchema, await store.findWorkerByName("w1"), want);
        expect(await store.findWorker(id + 1000n)).toBeUndefined();
        expect(await store.findWorkerByName("nope")).toBeUndefined();
      });

      it("keeps optional channel and retry_policy absent vs present", async () => {
        const absent = await store.createWorker(workerData("a", { retryPolicy: undefined }), 1);
        const empty = await store.createWorker(workerData("b", { channel: "" }), 1);
        const named = await store.createWorker(
          workerData("c", { channel: "x", retryPolicy: { type: RetryType.NONE, interval: 0, maxInterval: 0, maxRetry: 0, basis: 0 } }),
          1,
        );
        const wa = (await store.findWorker(absent))!.data!;
        expect(wa.channel).toBeUndefined();
        expect(wa.retryPolicy).toBeUndefined();
        const wb = (await store.findWorker(empty))!.data!;
        expect(wb.channel).toBe("");
        expect(wb.retryPolicy?.type).toBe(RetryType.EXPONENTIAL);
        const wc = (await store.findWorker(named))!.data!;
        expect(wc.channel).toBe("x");
        expect(wc.retryPolicy).toBeDefined(); // all-default policy is still present
        expect(wc.retryPolicy?.basis).toBe(0);
      });

      it("assigns increasing ids that are not reused after a delete", async () => {
        const a = await store.createWorker(workerData("a"), 1);
        const b = await store.createWorker(workerData("b"), 1);
        expect(b).toBeGreaterThan(a);
        expect(await store.deleteWorker(b)).toBe(true);
        const c = await store.createWorker(workerData("c"), 1);
        expect(c).toBeGreaterThan(b);
      });

      it("duplicate name → ALREADY_EXISTS on create and update", async () => {
        const a = await store.createWorker(workerData("a"), 1);
        await store.createWorker(workerData("b"), 1);
        await expectKind(store.createWorker(workerData("a", { description: "again" }), 2), "ALREADY_EXISTS");
        await expectKind(store.updateWorker(a, workerData("b")), "ALREADY_EXISTS");
        expect((await store.findWorker(a))?.data?.name).toBe("a");
        expect(await store.countWorkers({})).toBe(2);
      });

      it("updates a worker (also with unchanged data) and reports a missing one", async () => {
        const id = await store.createWorker(workerData("a", { channel: "x" }), 1);
        const next = workerData("a2", { channel: undefined, retryPolicy: undefined, storeSuccess: false, periodicInterval: 9 });
        expect(await store.updateWorker(id, next)).toBe(true);
        expectSame(WorkerSchema, await store.findWorker(id), create(WorkerSchema, { id: { value: id }, data: next }));
        expect(await store.findWorkerByName("a")).toBeUndefined();
        expect(await store.updateWorker(id, next)).toBe(true); // nothing changed, still found
        expect(await store.updateWorker(id + 1000n, next)).toBe(false);
      });

      it("deletes a worker", async () => {
        const id = await store.createWorker(workerData("a"), 1);
        expect(await store.deleteWorker(id)).toBe(true);
        expect(await store.deleteWorker(id)).toBe(false);
        expect(await store.findWorker(id)).toBeUndefined();
      });

      describe("listing", () => {
        // [name, runner id, channel, periodic interval, created at]
        const rows: [string, bigint, string | undefined, number, number][] = [
          ["w_cmd_1", 1n, undefined, 0, 30],
          ["w_cmd_2", 1n, "", 1000, 10],
          ["w_http_1", 2n, "ch1", 0, 20],
          ["wxhttp_2", 2n, "ch1", 5000, 50],
          ["plug%1", BIG_RUNNER, DEFAULT_CHANNEL, 0, 40],
          ["plugz1", BIG_RUNNER, "ch2", 0, 60],
        ];
        let w: bigint[];
        beforeEach(async () => {
          await store.createRunner(runner(BIG_RUNNER, "my_plugin", RunnerType.PLUGIN));
          w = [];
          for (const [name, runnerId, channel, periodicInterval, createdAt] of rows) {
            w.push(await store.createWorker(workerData(name, { runnerId: { value: runnerId }, channel, periodicInterval }), createdAt));
          }
        });
        const pick = (...i: number[]) => i.map((k) => w[k]);

        it("lists all by id ascending by default, with limit/offset", async () => {
          expect(ids(await store.findWorkers({}))).toEqual(w);
          expect(ids(await store.findWorkers({ limit: 2 }))).toEqual(pick(0, 1));
          expect(ids(await store.findWorkers({ limit: 2, offset: 1 }))).toEqual(pick(1, 2));
          expect(ids(await store.findWorkers({ offset: 4 }))).toEqual(pick(4, 5));
          expect(ids(await store.findWorkers({ limit: 0 }))).toEqual([]);
          expect(ids(await store.findWorkers({ ascending: false }))).toEqual([...w].reverse());
          expect(await store.countWorkers({ limit: 1, offset: 1 })).toBe(6); // paging does not affect counts
        });

        it("filters by runner type (through the runner table) and runner id", async () => {
          expect(ids(await store.findWorkers({ runnerTypes: [RunnerType.COMMAND] }))).toEqual(pick(0, 1));
          expect(ids(await store.findWorkers({ runnerTypes: [RunnerType.HTTP_REQUEST, RunnerType.PLUGIN] }))).toEqual(pick(2, 3, 4, 5));
          expect(ids(await store.findWorkers({ runnerTypes: [RunnerType.LLM] }))).toEqual([]);
          expect(ids(await store.findWorkers({ runnerIds: [BIG_RUNNER] }))).toEqual(pick(4, 5));
          expect(ids(await store.findWorkers({ runnerIds: [1n, 2n], runnerTypes: [RunnerType.HTTP_REQUEST] }))).toEqual(pick(2, 3));
          expect(await store.countWorkers({ runnerTypes: [RunnerType.PLUGIN] })).toBe(2);
          expect(await store.countWorkers({ runnerIds: [1n] })).toBe(2);
        });

        it("filters by channel; absent, empty and the default name are the default channel", async () => {
          expect(ids(await store.findWorkers({ channel: "ch1" }))).toEqual(pick(2, 3));
          expect(ids(await store.findWorkers({ channel: DEFAULT_CHANNEL }))).toEqual(pick(0, 1, 4));
          expect(ids(await store.findWorkers({ channel: "" }))).toEqual(pick(0, 1, 4));
          expect(ids(await store.findWorkers({ channel: "nope" }))).toEqual([]);
          expect(await store.countWorkers({ channel: DEFAULT_CHANNEL })).toBe(3);
          expect(await store.countWorkersByChannel(DEFAULT_CHANNEL)).toEqual(
            new Map([
              [DEFAULT_CHANNEL, 3],
              ["ch1", 2],
              ["ch2", 1],
            ]),
          );
        });

        it("filters by name prefix with LIKE wildcards taken literally", async () => {
          expect(ids(await store.findWorkers({ namePrefix: "w_" }))).toEqual(pick(0, 1, 2));
          expect(ids(await store.findWorkers({ namePrefix: "w" }))).toEqual(pick(0, 1, 2, 3));
          expect(ids(await store.findWorkers({ namePrefix: "plug%" }))).toEqual(pick(4));
          expect(ids(await store.findWorkers({ namePrefix: "w_cmd_" }))).toEqual(pick(0, 1));
          expect(ids(await store.findWorkers({ namePrefix: "wxhttp_2" }))).toEqual(pick(3));
          expect(ids(await store.findWorkers({ namePrefix: "nope" }))).toEqual([]);
          expect(await store.countWorkers({ namePrefix: "plug" })).toBe(2);
        });

        it("filters by periodic, and combines filters", async () => {
          expect(ids(await store.findWorkers({ isPeriodic: true }))).toEqual(pick(1, 3));
          expect(ids(await store.findWorkers({ isPeriodic: false }))).toEqual(pick(0, 2, 4, 5));
          expect(ids(await store.findWorkers({ isPeriodic: false, runnerTypes: [RunnerType.HTTP_REQUEST] }))).toEqual(pick(2));
          expect(ids(await store.findWorkers({ isPeriodic: true, channel: "ch1", namePrefix: "wx" }))).toEqual(pick(3));
          expect(await store.countWorkers({ isPeriodic: true })).toBe(2);
          expect(await store.countWorkers({ isPeriodic: false, channel: DEFAULT_CHANNEL })).toBe(2);
        });

        it("sorts by each field, ties broken by id in the same direction", async () => {
          const sorted = async (sortBy: WorkerSortField, ascending?: boolean) => ids(await store.findWorkers({ sortBy, ascending }));
          expect(await sorted(WorkerSortField.NAME, true)).toEqual(pick(4, 5, 0, 1, 2, 3));
          expect(await sorted(WorkerSortField.NAME, false)).toEqual(pick(3, 2, 1, 0, 5, 4));
          expect(await sorted(WorkerSortField.NAME)).toEqual(pick(4, 5, 0, 1, 2, 3)); // ascending by default
          expect(await sorted(WorkerSortField.CREATED_AT, false)).toEqual(pick(5, 3, 4, 0, 2, 1));
          expect(await sorted(WorkerSortField.PERIODIC_INTERVAL, true)).toEqual(pick(0, 2, 4, 5, 1, 3));
          expect(await sorted(WorkerSortField.RUNNER_ID, false)).toEqual(pick(5, 4, 3, 2, 1, 0));
          expect(await sorted(WorkerSortField.ID, false)).toEqual(pick(5, 4, 3, 2, 1, 0));
          expect(ids(await store.findWorkers({ sortBy: WorkerSortField.CREATED_AT, ascending: true, limit: 2, offset: 1 }))).toEqual(pick(2, 0));
        });
      });
    });

    // ------------------------------------------------------------------ jobs

    describe("jobs", () => {
      it("inserts and finds a job with every field, bigint ids and metadata", async () => {
        const j = job(
          BIG,
          {
            workerId: { value: BIG - 5n },
            uniqKey: "k1",
            grabbedUntilTime: 1_700_000_009_000n,
            retried: 2,
            priority: Priority.LOW,
            timeout: 31_536_000_000n,
            using: "chat",
            streamingType: StreamingType.RESPONSE,
            overrides: { responseType: ResponseType.DIRECT, storeSuccess: false, retryPolicy: { type: RetryType.LINEAR, interval: 5, maxRetry: 1 } },
          },
          { traceparent: "00-abc-def-01", "x-user": "ü" },
        );
        await store.insertJob(j);
        expectSame(JobSchema, await store.findJob(BIG), j);
        expect(await store.findJob(BIG + 1n)).toBeUndefined();
        expect(await store.countJobs()).toBe(1);
      });

      it("keeps optional fields absent vs present", async () => {
        const bare = job(BIG);
        await store.insertJob(bare);
        const got = (await store.findJob(BIG))!;
        expectSame(JobSchema, got, bare);
        expect(got.data!.uniqKey).toBeUndefined();
        expect(got.data!.using).toBeUndefined();
        expect(got.data!.grabbedUntilTime).toBeUndefined();
        expect(got.data!.overrides).toBeUndefined();
        expect(got.metadata).toEqual({});

        const present = job(BIG + 1n, { uniqKey: "", using: "", grabbedUntilTime: 0n, overrides: {}, args: new Uint8Array(0) });
        await store.insertJob(present);
        const got2 = (await store.findJob(BIG + 1n))!;
        expectSame(JobSchema, got2, present);
        expect(got2.data!.uniqKey).toBe("");
        expect(got2.data!.using).toBe("");
        expect(got2.data!.grabbedUntilTime).toBe(0n);
        expect(got2.data!.overrides).toBeDefined();
        expect(got2.data!.overrides!.storeSuccess).toBeUndefined();
        expect(got2.data!.args).toEqual(new Uint8Array(0));
      });

      it("duplicate id or uniq_key → ALREADY_EXISTS; many jobs may have no uniq_key", async () => {
        await store.insertJob(job(BIG, { uniqKey: "u" }));
        await expectKind(store.insertJob(job(BIG)), "ALREADY_EXISTS");
        await expectKind(store.insertJob(job(BIG + 1n, { uniqKey: "u" })), "ALREADY_EXISTS");
        await store.insertJob(job(BIG + 2n));
        await store.insertJob(job(BIG + 3n));
        expect(await store.countJobs()).toBe(3);
      });

      it("updates a job in place and reports a missing one", async () => {
        await store.insertJob(job(BIG, { uniqKey: "u", grabbedUntilTime: 5n, overrides: { storeFailure: true } }, { a: "1" }));
        await store.insertJob(job(BIG + 1n, { uniqKey: "v" }));
        const next = job(BIG, { runAfterTime: 99n, retried: 1, priority: Priority.HIGH }, { b: "2" });
        expect(await store.updateJob(next)).toBe(true);
        expectSame(JobSchema, await store.findJob(BIG), next); // uniq_key, grab and overrides cleared
        expect(await store.updateJob(next)).toBe(true); // unchanged data
        expect(await store.updateJob(job(BIG + 9n))).toBe(false);
        expect(await store.findJob(BIG + 9n)).toBeUndefined();
        await expectKind(store.updateJob(job(BIG, { uniqKey: "v" })), "ALREADY_EXISTS");
        // uniq_key is free again after the update cleared it
        await store.insertJob(job(BIG + 2n, { uniqKey: "u" }));
      });

      it("deletes jobs, singly and per worker", async () => {
        await store.insertJob(job(BIG, { workerId: { value: 1n } }));
        await store.insertJob(job(BIG + 1n, { workerId: { value: 2n } }));
        await store.insertJob(job(BIG + 2n, { workerId: { value: 2n } }));
        expect(await store.deleteJob(BIG)).toBe(true);
        expect(await store.deleteJob(BIG)).toBe(false);
        expect(await store.deleteJobsOfWorker(2n)).toBe(2);
        expect(await store.deleteJobsOfWorker(2n)).toBe(0);
        expect(await store.countJobs()).toBe(0);
      });

      it("lists jobs by id with limit/offset", async () => {
        for (const id of [BIG + 3n, BIG + 1n, BIG + 2n, 5n]) await store.insertJob(job(id));
        expect(ids(await store.findJobs(10, 0))).toEqual([5n, BIG + 1n, BIG + 2n, BIG + 3n]);
        expect(ids(await store.findJobs(2, 1))).toEqual([BIG + 1n, BIG + 2n]);
        expect(ids(await store.findJobs(10, 3))).toEqual([BIG + 3n]);
        expect(ids(await store.findJobs(10, 4))).toEqual([]);
      });

      it("finds due jobs: run_after <= until, not grabbed past now, by run_after then priority desc", async () => {
        const now = 10_000n;
        await store.insertJob(job(1n, { runAfterTime: 500n, priority: Priority.LOW }));
        await store.insertJob(job(2n, { runAfterTime: 500n, priority: Priority.HIGH }));
        await store.insertJob(job(3n, { runAfterTime: 100n, priority: Priority.LOW }));
        await store.insertJob(job(4n, { runAfterTime: 500n, priority: Priority.MEDIUM, grabbedUntilTime: 0n }));
        await store.insertJob(job(5n, { runAfterTime: 200n, grabbedUntilTime: now - 1n })); // grab expired
        await store.insertJob(job(6n, { runAfterTime: 200n, grabbedUntilTime: now })); // still grabbed
        await store.insertJob(job(7n, { runAfterTime: 200n, grabbedUntilTime: now + 5000n })); // still grabbed
        await store.insertJob(job(8n, { runAfterTime: 12_001n })); // after `until`
        await store.insertJob(job(9n, { runAfterTime: 12_000n, priority: Priority.HIGH })); // exactly `until`
        expect(ids(await store.findDueJobs(12_000n, now, 100))).toEqual([3n, 5n, 2n, 4n, 1n, 9n]);
        expect(ids(await store.findDueJobs(12_000n, now, 2))).toEqual([3n, 5n]);
        expect(ids(await store.findDueJobs(99n, now, 100))).toEqual([]);
        expect(ids(await store.findDueJobs(20_000n, 20_000n, 100))).toEqual([3n, 5n, 6n, 7n, 2n, 4n, 1n, 9n, 8n]);
      });

      it("grabJob is a compare-and-set on grabbed_until_time", async () => {
        await store.insertJob(job(BIG));
        expect(await store.grabJob(BIG, undefined, 100n)).toBe(true);
        expect((await store.findJob(BIG))!.data!.grabbedUntilTime).toBe(100n);
        expect(await store.grabJob(BIG, undefined, 200n)).toBe(false); // someone else holds it
        expect(await store.grabJob(BIG, 99n, 200n)).toBe(false); // stale expectation
        expect(await store.grabJob(BIG, 100n, 200n)).toBe(true);
        expect((await store.findJob(BIG))!.data!.grabbedUntilTime).toBe(200n);
        expect(await store.grabJob(BIG + 1n, undefined, 1n)).toBe(false); // no such job

        await store.insertJob(job(BIG + 1n, { grabbedUntilTime: 0n })); // 0 means not grabbed
        expect(await store.grabJob(BIG + 1n, 0n, 300n)).toBe(true);
        await store.insertJob(job(BIG + 2n, { grabbedUntilTime: 0n }));
        expect(await store.grabJob(BIG + 2n, undefined, 300n)).toBe(true);
        await store.insertJob(job(BIG + 3n));
        expect(await store.grabJob(BIG + 3n, 0n, 300n)).toBe(true);
      });

      it("only one of several concurrent grabs wins", async () => {
        await store.insertJob(job(BIG));
        const wins = await Promise.all(Array.from({ length: 8 }, (_, i) => store.grabJob(BIG, undefined, 1000n + BigInt(i))));
        expect(wins.filter(Boolean)).toHaveLength(1);
        const until = (await store.findJob(BIG))!.data!.grabbedUntilTime!;
        expect(until - 1000n).toBe(BigInt(wins.indexOf(true)));
      });

      itDurable("only one grab wins across two handles on the same database", async () => {
        const other = await openMigrated();
        await store.insertJob(job(BIG, { grabbedUntilTime: 50n }));
        const wins = await Promise.all(
          Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).grabJob(BIG, 50n, 2000n + BigInt(i))),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
      });

      it("grabDueJobs grabs exactly the due rows it returns, in findDueJobs order", async () => {
        const now = 10_000n;
        await store.insertJob(job(1n, { runAfterTime: 500n, priority: Priority.LOW }));
        await store.insertJob(job(2n, { runAfterTime: 500n, priority: Priority.HIGH }));
        await store.insertJob(job(3n, { runAfterTime: 100n, priority: Priority.LOW }));
        await store.insertJob(job(4n, { runAfterTime: 500n, grabbedUntilTime: 0n }));
        await store.insertJob(job(5n, { runAfterTime: 200n, grabbedUntilTime: now - 1n })); // grab expired
        await store.insertJob(job(6n, { runAfterTime: 200n, grabbedUntilTime: now })); // still grabbed
        await store.insertJob(job(7n, { runAfterTime: 12_001n })); // after `until`
        const first = await store.grabDueJobs(12_000n, now, 2, 50_000n);
        expect(ids(first)).toEqual([3n, 5n]);
        expect(first.map((j) => j.data!.grabbedUntilTime)).toEqual([50_000n, 50_000n]);
        expect((await store.findJob(5n))!.data!.grabbedUntilTime).toBe(50_000n);
        expect((await store.findJob(2n))!.data!.grabbedUntilTime).toBeUndefined(); // beyond the limit: untouched
        expect(ids(await store.grabDueJobs(12_000n, now, 100, 50_000n))).toEqual([2n, 4n, 1n]);
        expect(await store.grabDueJobs(12_000n, now, 100, 50_000n)).toEqual([]);
        // once the grabs run out, every row is due again
        expect(ids(await store.grabDueJobs(20_000n, 50_001n, 100, 60_000n))).toEqual([3n, 5n, 6n, 2n, 4n, 1n, 7n]);
        expect((await store.findJob(7n))!.data!.grabbedUntilTime).toBe(60_000n);
      });

      it("concurrent grabDueJobs calls never get the same row, and together get every row", async () => {
        // Two handles where the store allows it (separate connections), else concurrent calls on one.
        const other = opts.durable ? await openMigrated() : store;
        const rows = Array.from({ length: 60 }, (_, i) => BIG + BigInt(i));
        for (const [i, id] of rows.entries()) await store.insertJob(job(id, { runAfterTime: BigInt(i) }));
        // Each grabber takes small batches until nothing is left for it; its grabs are marked with its own time.
        const grabber = async (s: Store, k: number) => {
          const got: bigint[] = [];
          for (let batch = await s.grabDueJobs(1_000n, 500n, 7, 9_000n + BigInt(k)); batch.length > 0; batch = await s.grabDueJobs(1_000n, 500n, 7, 9_000n + BigInt(k))) {
            got.push(...ids(batch));
          }
          return got;
        };
        const perGrabber = await Promise.all([0, 1, 2, 3].map((k) => grabber(k % 2 ? other : store, k)));
        const all = perGrabber.flat();
        expect(new Set(all).size, "no row returned twice").toBe(all.length);
        expect([...all].sort((a, b) => (a < b ? -1 : 1))).toEqual(rows);
        for (const [k, got] of perGrabber.entries()) {
          for (const id of got) expect((await store.findJob(id))!.data!.grabbedUntilTime).toBe(9_000n + BigInt(k));
        }
      });

      it("releaseAllGrabs clears every grab", async () => {
        await store.insertJob(job(1n, { grabbedUntilTime: 100n }));
        await store.insertJob(job(2n, { grabbedUntilTime: 200n }));
        await store.insertJob(job(3n));
        expect(await store.releaseAllGrabs()).toBe(2);
        for (const id of [1n, 2n, 3n]) expect((await store.findJob(id))!.data!.grabbedUntilTime).toBeUndefined();
        expect(await store.releaseAllGrabs()).toBe(0);
        expect(await store.grabJob(1n, undefined, 5n)).toBe(true);
      });
    });

    // ------------------------------------------------------------------ job results

    describe("job results", () => {
      it("inserts and finds a result exactly as written", async () => {
        const r = result(
          BIG,
          {
            jobId: { value: BIG - 1n },
            workerId: { value: BIG - 2n },
            uniqKey: "uk",
            status: ResultStatus.ERROR_AND_RETRY,
            output: { items: new TextEncoder().encode("boom: ünïcode") },
            retried: 2,
            maxRetry: 5,
            priority: Priority.HIGH,
            timeout: 31_536_000_000n,
            enqueueTime: 1_700_000_000_000n,
            runAfterTime: 1_700_000_000_500n,
            startTime: 1_700_000_001_000n,
            endTime: 1_700_000_002_000n,
            responseType: ResponseType.NO_RESULT,
            storeSuccess: false,
            storeFailure: true,
            using: "run",
            streamingType: StreamingType.INTERNAL,
            broadcastResults: true,
            resolvedRetryPolicy: { type: RetryType.CONSTANT, interval: 1000, maxInterval: 0, maxRetry: 5, basis: 1.5 },
          },
          { traceparent: "t" },
        );
        await store.insertResult(r);
        expectSame(JobResultSchema, await store.findResult(BIG), r);
        expect(await store.findResult(BIG + 1n)).toBeUndefined();
      });

      it("keeps optional fields absent vs present", async () => {
        const bare = result(1n, { output: undefined });
        await store.insertResult(bare);
        const got = (await store.findResult(1n))!;
        expectSame(JobResultSchema, got, bare);
        expect(got.data!.output).toBeUndefined();
        expect(got.data!.uniqKey).toBeUndefined();
        expect(got.data!.using).toBeUndefined();
        expect(got.data!.resolvedRetryPolicy).toBeUndefined();

        const present = result(2n, { output: { items: new Uint8Array(0) }, uniqKey: "", using: "", resolvedRetryPolicy: {} });
        await store.insertResult(present);
        const got2 = (await store.findResult(2n))!;
        expectSame(JobResultSchema, got2, present);
        expect(got2.data!.output?.items).toEqual(new Uint8Array(0));
        expect(got2.data!.uniqKey).toBe("");
        expect(got2.data!.resolvedRetryPolicy).toBeDefined();
      });

      it("duplicate result id → ALREADY_EXISTS", async () => {
        await store.insertResult(result(BIG));
        await expectKind(store.insertResult(result(BIG)), "ALREADY_EXISTS");
      });

      it("keeps one result per attempt (job id, retried, run_after_time): a re-run's result is dropped", async () => {
        const attempt = { jobId: { value: BIG }, retried: 1, runAfterTime: 5000n };
        expect(await store.insertResult(result(1n, { ...attempt, status: ResultStatus.SUCCESS }))).toBe(true);
        expect(await store.insertResult(result(2n, { ...attempt, status: ResultStatus.OTHER_ERROR }))).toBe(false);
        // another retry and another periodic occurrence of the same job are other attempts
        expect(await store.insertResult(result(3n, { ...attempt, retried: 2 }))).toBe(true);
        expect(await store.insertResult(result(4n, { ...attempt, runAfterTime: 6000n }))).toBe(true);
        expect(ids(await store.findResultsByJobId(BIG)).sort()).toEqual([1n, 3n, 4n]);
        expect((await store.findResult(1n))!.data!.status).toBe(ResultStatus.SUCCESS);
        expect(await store.findResult(2n)).toBeUndefined();
        // an id clash is still an error, whatever the attempt
        await expectKind(store.insertResult(result(1n, { jobId: { value: BIG + 7n } })), "ALREADY_EXISTS");
      });

      it("finds results of a job, newest first", async () => {
        await store.insertResult(result(1n, { jobId: { value: BIG }, retried: 0, endTime: 100n }));
        await store.insertResult(result(2n, { jobId: { value: BIG }, retried: 1, endTime: 300n }));
        await store.insertResult(result(3n, { jobId: { value: BIG + 1n }, endTime: 200n }));
        await store.insertResult(result(4n, { jobId: { value: BIG }, retried: 2, endTime: 200n }));
        expect(ids(await store.findResultsByJobId(BIG))).toEqual([2n, 4n, 1n]);
        expect(ids(await store.findResultsByJobId(BIG + 2n))).toEqual([]);
      });

      describe("listing", () => {
        // [id, worker, status, priority, start, end, uniq key]
        const rows: [bigint, bigint, ResultStatus, Priority, bigint, bigint, string?][] = [
          [BIG + 1n, 1n, ResultStatus.SUCCESS, Priority.MEDIUM, 100n, 150n, "a"],
          [BIG + 2n, 1n, ResultStatus.FATAL_ERROR, Priority.HIGH, 200n, 400n],
          [BIG + 3n, 2n, ResultStatus.SUCCESS, Priority.LOW, 300n, 350n, "a"],
          [BIG + 4n, 2n, ResultStatus.MAX_RETRY, Priority.MEDIUM, 50n, 500n, "b"],
          [BIG + 5n, 3n, ResultStatus.CANCELLED, Priority.HIGH, 250n, 350n],
        ];
        beforeEach(async () => {
          for (const [id, w, status, priority, startTime, endTime, uniqKey] of rows) {
            await store.insertResult(result(id, { workerId: { value: w }, status, priority, startTime, endTime, uniqKey }));
          }
        });
        const b = (...k: number[]) => k.map((i) => BIG + BigInt(i));

        it("lists by end_time descending by default (ties by id)", async () => {
          expect(ids(await store.findResults({}))).toEqual(b(4, 2, 5, 3, 1));
          expect(ids(await store.findResults({ ascending: true }))).toEqual(b(1, 3, 5, 2, 4));
          expect(ids(await store.findResults({ limit: 2, offset: 1 }))).toEqual(b(2, 5));
          expect(ids(await store.findResults({ offset: 3 }))).toEqual(b(3, 1));
          expect(await store.countResults({})).toBe(5);
        });

        it("sorts by id, start_time and status", async () => {
          expect(ids(await store.findResults({ sortBy: JobResultSortField.ID, ascending: true }))).toEqual(b(1, 2, 3, 4, 5));
          expect(ids(await store.findResults({ sortBy: JobResultSortField.START_TIME }))).toEqual(b(3, 5, 2, 1, 4));
          expect(ids(await store.findResults({ sortBy: JobResultSortField.STATUS, ascending: true }))).toEqual(b(1, 3, 2, 4, 5));
          expect(ids(await store.findResults({ sortBy: JobResultSortField.END_TIME, ascending: true, limit: 1 }))).toEqual(b(1));
        });

        it("filters by worker, status, priority, uniq_key and inclusive time ranges", async () => {
          const asc = { sortBy: JobResultSortField.ID, ascending: true };
          const find = async (f: object) => ids(await store.findResults({ ...asc, ...f }));
          expect(await find({ workerIds: [1n, 3n] })).toEqual(b(1, 2, 5));
          expect(await find({ statuses: [ResultStatus.SUCCESS] })).toEqual(b(1, 3));
          expect(await find({ statuses: [ResultStatus.MAX_RETRY, ResultStatus.CANCELLED] })).toEqual(b(4, 5));
          expect(await find({ priorities: [Priority.HIGH, Priority.LOW] })).toEqual(b(2, 3, 5));
          expect(await find({ uniqKey: "a" })).toEqual(b(1, 3));
          expect(await find({ startTimeFrom: 200n, startTimeTo: 300n })).toEqual(b(2, 3, 5));
          expect(await find({ endTimeFrom: 350n })).toEqual(b(2, 3, 4, 5));
          expect(await find({ endTimeTo: 350n })).toEqual(b(1, 3, 5));
          expect(await find({ workerIds: [2n], statuses: [ResultStatus.SUCCESS], endTimeTo: 400n })).toEqual(b(3));
          expect(await find({ workerIds: [9n] })).toEqual([]);
          expect(await find({ workerIds: [], statuses: [] })).toEqual(b(1, 2, 3, 4, 5)); // empty lists do not filter
          expect(await store.countResults({ workerIds: [2n] })).toBe(2);
          expect(await store.countResults({ startTimeFrom: 200n, endTimeTo: 350n, priorities: [Priority.HIGH] })).toBe(1);
          expect(await store.countResults({ uniqKey: "zz" })).toBe(0);
        });

        it("deletes one result", async () => {
          expect(await store.deleteResult(BIG + 1n)).toBe(true);
          expect(await store.deleteResult(BIG + 1n)).toBe(false);
          expect(await store.countResults({})).toBe(4);
        });

        it("bulk-deletes by end time, status and worker (all conditions must hold)", async () => {
          expect(await store.deleteResults({ endTimeBefore: 350n })).toBe(1); // end_time < 350: only #1
          expect(await store.deleteResults({ statuses: [ResultStatus.SUCCESS], workerIds: [1n] })).toBe(0);
          expect(await store.deleteResults({ endTimeBefore: 450n, workerIds: [2n, 3n] })).toBe(2);
          expect(ids(await store.findResults({}))).toEqual(b(4, 2));
          expect(await store.deleteResults({ statuses: [ResultStatus.FATAL_ERROR, ResultStatus.MAX_RETRY] })).toBe(2);
          expect(await store.countResults({})).toBe(0);
        });

        it("refuses a bulk delete without any condition", async () => {
          await expectKind(store.deleteResults({}), "INVALID_ARGUMENT");
          await expectKind(store.deleteResults({ statuses: [], workerIds: [] }), "INVALID_ARGUMENT");
          expect(await store.countResults({})).toBe(5);
        });
      });

      it("limits listings to 100 by default and 1000 at most", async () => {
        for (let i = 0; i < 1005; i++) await store.insertResult(result(BIG + BigInt(i), { endTime: BigInt(i) }));
        const def = await store.findResults({});
        expect(def).toHaveLength(100);
        expect(def[0].id!.value).toBe(BIG + 1004n);
        expect(await store.findResults({ limit: 5000 })).toHaveLength(1000);
        expect(await store.findResults({ limit: 3, offset: 1003 })).toHaveLength(2);
        expect(await store.countResults({})).toBe(1005);
      });
    });

    // ------------------------------------------------------------------ function sets

    describe("function sets", () => {
      it("round-trip with their targets in order (using present, empty or absent; bigint ids)", async () => {
        const a = functionSet(BIG, "tools", 2);
        await store.createFunctionSet(a, 1);
        expectSame(FunctionSetSchema, await store.findFunctionSet(BIG), a);
        expectSame(FunctionSetSchema, await store.findFunctionSetByName("tools"), a);
        expect(await store.findFunctionSet(BIG + 1n)).toBeUndefined();
        expect(await store.findFunctionSetByName("Tools")).toBeUndefined();
        const empty = create(FunctionSetSchema, { id: { value: 3n }, data: { name: "empty" } });
        await store.createFunctionSet(empty, 2);
        expectSame(FunctionSetSchema, await store.findFunctionSet(3n), empty);
      });

      it("duplicate names are ALREADY_EXISTS on create and update; update replaces everything; unknown ids say false", async () => {
        await store.createFunctionSet(functionSet(10n, "a"), 1);
        await store.createFunctionSet(functionSet(11n, "b"), 1);
        await expectKind(store.createFunctionSet(functionSet(12n, "a"), 1), "ALREADY_EXISTS");
        await expectKind(store.createFunctionSet(functionSet(10n, "c"), 1), "ALREADY_EXISTS"); // same id
        await expectKind(store.updateFunctionSet(functionSet(11n, "a")), "ALREADY_EXISTS");

        const replaced = create(FunctionSetSchema, {
          id: { value: 11n },
          data: { name: "b2", description: "", category: 1, targets: [{ functionId: { id: { case: "workerId", value: { value: 9n } } } }] },
        });
        expect(await store.updateFunctionSet(replaced)).toBe(true);
        expect(await store.updateFunctionSet(replaced)).toBe(true); // unchanged values: still found
        expectSame(FunctionSetSchema, await store.findFunctionSet(11n), replaced);
        expect(await store.findFunctionSetByName("b")).toBeUndefined();
        expect(await store.updateFunctionSet(functionSet(99n, "zz"))).toBe(false);
        expect(await store.findFunctionSetByName("zz")).toBeUndefined();

        expect(await store.deleteFunctionSet(10n)).toBe(true);
        expect(await store.deleteFunctionSet(10n)).toBe(false);
        await store.createFunctionSet(functionSet(13n, "a"), 1); // the name is free again
        expect(await store.countFunctionSets()).toBe(2);
      });

      it("lists by id with limit and offset, and counts", async () => {
        for (const id of [BIG, 7n, 500n]) await store.createFunctionSet(functionSet(id, `s${id}`), 1);
        expect(ids(await store.findFunctionSets())).toEqual([7n, 500n, BIG]);
        expect(ids(await store.findFunctionSets(2))).toEqual([7n, 500n]);
        expect(ids(await store.findFunctionSets(5, 1))).toEqual([500n, BIG]);
        expect(ids(await store.findFunctionSets(undefined, 2))).toEqual([BIG]);
        expect(await store.countFunctionSets()).toBe(3);
      });
    });

    describe("workflow checkpoints", () => {
      it("save/load per (execution, position); a later save replaces; delete removes an execution's", async () => {
        const big = JSON.stringify({ workflow: { name: "w", input: "x".repeat(100_000) } });
        await store.saveWorkflowCheckpoint("wf:e1", "/do/0/a", '{"n":1}', 1);
        await store.saveWorkflowCheckpoint("wf:e1", "/do/1/b", big, 2);
        await store.saveWorkflowCheckpoint("wf:e2", "/do/0/a", '{"n":3}', 3);
        expect(await store.loadWorkflowCheckpoint("wf:e1", "/do/0/a")).toBe('{"n":1}');
        expect(await store.loadWorkflowCheckpoint("wf:e1", "/do/1/b")).toBe(big);
        expect(await store.loadWorkflowCheckpoint("wf:e1", "/do/2/c")).toBeUndefined();
        await store.saveWorkflowCheckpoint("wf:e1", "/do/0/a", '{"n":1}', 4); // same data again (MySQL: 0 rows changed)
        await store.saveWorkflowCheckpoint("wf:e1", "/do/0/a", '{"n":2}', 5);
        expect(await store.loadWorkflowCheckpoint("wf:e1", "/do/0/a")).toBe('{"n":2}');
        expect(await store.deleteWorkflowCheckpoints("wf:e1")).toBe(2);
        expect(await store.loadWorkflowCheckpoint("wf:e1", "/do/0/a")).toBeUndefined();
        expect(await store.loadWorkflowCheckpoint("wf:e2", "/do/0/a")).toBe('{"n":3}');
      });
    });

    describe("spilled job bytes", () => {
      it("put/get/delete by key, bytes intact (2 MiB, every byte value); a duplicate key is ALREADY_EXISTS", async () => {
        const data = new Uint8Array(2 * 1024 * 1024).map((_, i) => (i * 7) % 256);
        await store.putSpill("sqs-spill/1/a", data, 1);
        await store.putSpill("sqs-spill/2/b", new Uint8Array([0, 255]), 2);
        expect(Buffer.from((await store.getSpill("sqs-spill/1/a"))!).equals(Buffer.from(data))).toBe(true);
        await expectKind(store.putSpill("sqs-spill/1/a", new Uint8Array([1]), 3), "ALREADY_EXISTS");
        expect(await store.deleteSpill("sqs-spill/1/a")).toBe(true);
        expect(await store.deleteSpill("sqs-spill/1/a")).toBe(false);
        expect(await store.getSpill("sqs-spill/1/a")).toBeUndefined();
        expect([...(await store.getSpill("sqs-spill/2/b"))!]).toEqual([0, 255]);
      });
    });

    // ------------------------------------------------------------------ durability

    itDurable("keeps data across close and reopen, and migrate() on reopen changes nothing", async () => {
      await store.createRunner(runner(BIG_RUNNER, "my_plugin", RunnerType.PLUGIN, 77));
      const w = workerData("persist", { channel: "c", runnerId: { value: BIG_RUNNER } });
      const wid = await store.createWorker(w, 123);
      const j = job(BIG, { uniqKey: "p", grabbedUntilTime: 9n, overrides: { broadcastResults: true } }, { m: "1" });
      await store.insertJob(j);
      const r = result(BIG + 1n, { resolvedRetryPolicy: { maxRetry: 2 } }, { m: "2" });
      await store.insertResult(r);
      const fs = functionSet(BIG + 2n, "persisted set");
      await store.createFunctionSet(fs, 1);
      await closeHandle(store);

      const again = await openMigrated();
      expect(await again.countRunners({})).toBe(BUILTIN_RUNNERS.length + 1);
      expect((await again.findRunner(BIG_RUNNER))?.createdAt).toBe(77);
      expectSame(WorkerSchema, await again.findWorker(wid), create(WorkerSchema, { id: { value: wid }, data: w }));
      expectSame(JobSchema, await again.findJob(BIG), j);
      expectSame(JobResultSchema, await again.findResult(BIG + 1n), r);
      expectSame(FunctionSetSchema, await again.findFunctionSet(BIG + 2n), fs);
      expect(await again.createWorker(workerData("next"), 124)).toBeGreaterThan(wid);
      await expectKind(again.insertJob(job(BIG + 5n, { uniqKey: "p" })), "ALREADY_EXISTS");
    });
  });
}
