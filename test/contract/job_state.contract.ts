// Shared contract for the JobState port: every JobState adapter (memory, Redis, DynamoDB, ...) runs this suite.
// Each test works under its own worker ids / channel names and snowflake-sized job ids, so a shared backend
// does not need flushing between tests.
import { create, equals } from "@bufbuild/protobuf";
import { beforeEach, describe, expect, it } from "vitest";
import type { JobState, JobStatusEntry } from "../../worker-container/src/core/ports.js";
import { JobProcessingStatus, Priority, StreamingType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";

const { PENDING, RUNNING, WAIT_RESULT, CANCELLING } = JobProcessingStatus;

let nextJobId = (1n << 60n) + BigInt(Date.now()) * 4096n + BigInt(Math.floor(Math.random() * 4096));
const newId = () => (nextJobId += 7n);
let nextWorkerId = (1n << 56n) + BigInt(Date.now()) * 1024n + BigInt(Math.floor(Math.random() * 1024));
const newWorker = () => nextWorkerId++;
let channelSeq = 0;
const newChannel = (tag: string) => `contract-${tag}-${process.pid}-${Date.now()}-${channelSeq++}`;

const nowMs = () => BigInt(Date.now());

function entry(jobId: bigint, workerId: bigint, over: Partial<JobStatusEntry> = {}): JobStatusEntry {
  const now = nowMs();
  return {
    jobId,
    status: PENDING,
    workerId,
    channel: "__default_job_channel__",
    priority: Priority.HIGH,
    enqueueTime: now,
    pendingTime: now,
    isStreamable: true,
    broadcastResults: true,
    updatedAt: now,
    job: create(JobSchema, {
      id: { value: jobId },
      data: {
        workerId: { value: workerId },
        args: new Uint8Array([9, 8, 7]),
        enqueueTime: over.enqueueTime ?? now,
        priority: Priority.HIGH,
        timeout: 1000n,
        streamingType: StreamingType.RESPONSE,
      },
      metadata: { k: "v" },
    }),
    ...over,
  };
}

const sortIds = (xs: bigint[]) => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const count = (m: Map<JobProcessingStatus, number>, s: JobProcessingStatus) => m.get(s) ?? 0;
const total = (m: Map<JobProcessingStatus, number>) => [...m.values()].reduce((a, b) => a + b, 0);

export function describeJobStateContract(name: string, open: () => Promise<JobState>) {
  describe(`JobState contract: ${name}`, () => {
    let s: JobState;
    let W: bigint;
    beforeEach(async () => {
      s = await open();
      W = newWorker();
    });

    /** Put a job into the given status through the port's own transitions. */
    async function put(status: JobProcessingStatus, over: Partial<JobStatusEntry> = {}, id = newId()) {
      const e = entry(id, over.workerId ?? W, over);
      await s.setPending(e);
      if (status === RUNNING || status === WAIT_RESULT) {
        const c = await s.claim(e, nowMs());
        if (status === WAIT_RESULT) expect(await s.markWaitResult(id, c!)).toBe(true);
      } else if (status === CANCELLING) await s.requestCancel(id);
      return id;
    }

    it("setPending records a PENDING entry that find returns; unknown ids are undefined", async () => {
      const id = newId();
      const e = entry(id, W, { channel: "chan-a", priority: Priority.LOW, isStreamable: true, broadcastResults: false });
      await s.setPending(e);
      const got = await s.find(id);
      expect(got).toBeDefined();
      expect(got!.jobId).toBe(id);
      expect(got!.status).toBe(PENDING);
      expect(got!.workerId).toBe(W);
      expect(got!.channel).toBe("chan-a");
      expect(got!.priority).toBe(Priority.LOW);
      expect(got!.enqueueTime).toBe(e.enqueueTime);
      expect(got!.pendingTime).toBe(e.pendingTime);
      expect(got!.isStreamable).toBe(true);
      expect(got!.broadcastResults).toBe(false);
      expect(equals(JobSchema, got!.job, e.job)).toBe(true);
      expect(await s.find(newId())).toBeUndefined();
    });

    it("claim moves the job to RUNNING with increasing fencing tokens", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      const t1 = nowMs() + 5n;
      const c1 = await s.claim(e, t1);
      expect(c1).toBeDefined();
      const got = await s.find(id);
      expect(got!.status).toBe(RUNNING);
      expect(got!.startTime).toBe(t1);
      const c2 = await s.claim(e, t1 + 1n);
      const c3 = await s.claim(e, t1 + 2n);
      expect(c2!.token).toBeGreaterThan(c1!.token);
      expect(c3!.token).toBeGreaterThan(c2!.token);
    });

    it("claim creates the entry when it is missing", async () => {
      const id = newId();
      const e = { ...entry(id, W, { channel: "chan-new" }), status: RUNNING };
      const t = nowMs();
      const c = await s.claim(e, t);
      expect(c).toBeDefined();
      const got = await s.find(id);
      expect(got!.status).toBe(RUNNING);
      expect(got!.workerId).toBe(W);
      expect(got!.channel).toBe("chan-new");
      expect(got!.startTime).toBe(t);
      expect(equals(JobSchema, got!.job, e.job)).toBe(true);
      expect(await s.finish(id, c!)).toBe(true);
    });

    it("the current claim moves RUNNING → WAIT_RESULT, → PENDING for a retry, and finishes (removes) the job", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      const c1 = await s.claim(e, nowMs());
      expect(await s.markWaitResult(id, c1!)).toBe(true);
      expect((await s.find(id))!.status).toBe(WAIT_RESULT);

      const c2 = await s.claim(e, nowMs());
      const retryAt = nowMs() + 1234n;
      expect(await s.markPendingForRetry(id, c2!, retryAt)).toBe(true);
      const pending = await s.find(id);
      expect(pending!.status).toBe(PENDING);
      expect(pending!.pendingTime).toBe(retryAt);

      const c3 = await s.claim(e, nowMs());
      expect(c3!.token).toBeGreaterThan(c2!.token);
      expect(await s.finish(id, c3!)).toBe(true);
      expect(await s.find(id)).toBeUndefined();
    });

    it("a stale claim cannot markWaitResult / markPendingForRetry / finish after a newer claim", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      const stale = await s.claim(e, nowMs());
      const fresh = await s.claim(e, nowMs());
      expect(await s.markWaitResult(id, stale!)).toBe(false);
      expect(await s.markPendingForRetry(id, stale!, nowMs())).toBe(false);
      expect(await s.finish(id, stale!)).toBe(false);
      // the stale attempts changed nothing
      const got = await s.find(id);
      expect(got!.status).toBe(RUNNING);
      // the fresh claim still works, and after a retry + re-claim it is stale too
      expect(await s.markPendingForRetry(id, fresh!, nowMs())).toBe(true);
      const newest = await s.claim(e, nowMs());
      expect(await s.finish(id, fresh!)).toBe(false);
      expect(await s.find(id)).toBeDefined();
      expect(await s.finish(id, newest!)).toBe(true);
      expect(await s.finish(id, newest!)).toBe(false); // already finished
    });

    it("setPending while a claim runs (a periodic job's next occurrence, same id) leaves that claim able to finish", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      const running = await s.claim(e, nowMs());
      await s.setPending({ ...e, pendingTime: nowMs(), updatedAt: nowMs() });
      expect((await s.find(id))!.status).toBe(PENDING);
      expect(await s.markWaitResult(id, running!)).toBe(true);
      expect(await s.finish(id, running!)).toBe(true);
      // the next occurrence claims the job again (its entry is created anew) and finishes it
      const next = await s.claim({ ...e, status: RUNNING }, nowMs());
      expect(await s.finish(id, next!)).toBe(true);
      expect(await s.find(id)).toBeUndefined();
    });

    it("remove drops an entry regardless of claims", async () => {
      const id = await put(RUNNING);
      await s.remove(id);
      expect(await s.find(id)).toBeUndefined();
      await s.remove(newId()); // unknown: no throw
    });

    it("requestCancel on a PENDING job returns PENDING, marks it CANCELLING, and the next claim returns undefined", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      expect(await s.requestCancel(id)).toBe(PENDING);
      expect((await s.find(id))!.status).toBe(CANCELLING);
      expect(await s.claim(e, nowMs())).toBeUndefined();
      expect((await s.find(id))!.status).toBe(CANCELLING);
    });

    it("requestCancel on a RUNNING job returns RUNNING; it can neither be re-claimed nor put back for retry", async () => {
      const id = newId();
      const e = entry(id, W);
      await s.setPending(e);
      const c = await s.claim(e, nowMs());
      expect(await s.requestCancel(id)).toBe(RUNNING);
      expect((await s.find(id))!.status).toBe(CANCELLING);
      expect(await s.claim(e, nowMs())).toBeUndefined();
      expect(await s.markPendingForRetry(id, c!, nowMs())).toBe(false);
      // the running holder still ends it
      expect(await s.finish(id, c!)).toBe(true);
      expect(await s.find(id)).toBeUndefined();
    });

    it("requestCancel on an unknown job returns undefined", async () => {
      expect(await s.requestCancel(newId())).toBeUndefined();
    });

    it("findAll filters by status, workerId and channel", async () => {
      const W2 = newWorker();
      const chA = newChannel("a");
      const chB = newChannel("b");
      const p1 = await put(PENDING, { channel: chA });
      const p2 = await put(PENDING, { channel: chB });
      const r1 = await put(RUNNING, { channel: chA });
      const w1 = await put(WAIT_RESULT, { channel: chB });
      const x1 = await put(CANCELLING, { channel: chA });
      const o1 = await put(PENDING, { channel: chA, workerId: W2 });
      const o2 = await put(RUNNING, { channel: chB, workerId: W2 });

      const ids = async (f: Parameters<JobState["findAll"]>[0]) => (await s.findAll(f)).map((e) => e.jobId);
      const sorted = sortIds;

      expect(sorted(await ids({ workerId: W }))).toEqual(sorted([p1, p2, r1, w1, x1]));
      expect(sorted(await ids({ workerId: W2 }))).toEqual(sorted([o1, o2]));
      expect(sorted(await ids({ workerId: W, status: PENDING }))).toEqual(sorted([p1, p2]));
      expect(await ids({ workerId: W, status: RUNNING })).toEqual([r1]);
      expect(await ids({ workerId: W, status: WAIT_RESULT })).toEqual([w1]);
      expect(await ids({ workerId: W, status: CANCELLING })).toEqual([x1]);
      expect(sorted(await ids({ channel: chA }))).toEqual(sorted([p1, r1, x1, o1]));
      expect(sorted(await ids({ channel: chB, status: RUNNING }))).toEqual([o2]);
      expect(sorted(await ids({ channel: chA, workerId: W2 }))).toEqual([o1]);
      expect(await ids({ channel: newChannel("empty") })).toEqual([]);
      const all = await ids({});
      for (const id of [p1, p2, r1, w1, x1, o1, o2]) expect(all).toContain(id);
      const entries = await s.findAll({ workerId: W, status: RUNNING });
      expect(entries[0].channel).toBe(chA);
      expect(entries[0].workerId).toBe(W);
    });

    it("findAll filters by minElapsedTimeMs: running jobs by the time since they started", async () => {
      const now = nowMs();
      const old = now - 60_000n;
      const startedLongAgo = newId();
      const eOld = entry(startedLongAgo, W, { enqueueTime: old, pendingTime: old, updatedAt: old });
      await s.setPending(eOld);
      await s.claim(eOld, old + 1_000n);
      // enqueued long ago but started just now (e.g. it waited in the queue): not elapsed
      const startedNow = newId();
      const eNow = entry(startedNow, W, { enqueueTime: old, pendingTime: old, updatedAt: old });
      await s.setPending(eNow);
      await s.claim(eNow, now);
      const fresh = await put(RUNNING);

      const ids = async (min: number) => sortIds((await s.findAll({ workerId: W, status: RUNNING, minElapsedTimeMs: min })).map((e) => e.jobId));
      expect(await ids(30_000)).toEqual([startedLongAgo]);
      expect(await ids(0)).toEqual(sortIds([startedLongAgo, startedNow, fresh]));
      expect(await ids(120_000)).toEqual([]);
      const c = await s.count({ workerId: W, status: RUNNING, minElapsedTimeMs: 30_000 });
      expect(count(c, RUNNING)).toBe(1);
      expect(total(c)).toBe(1);
    });

    it("findAll orders by job id (ascending, or descending), with limit and offset", async () => {
      const base = newId();
      nextJobId += 100n;
      const ids = [base + 3n, base + 1n, base + 5n, base + 2n, base + 4n];
      for (const id of ids) await put(PENDING, {}, id);
      const asc = sortIds(ids);
      const desc = [...asc].reverse();
      const q = async (f: Parameters<JobState["findAll"]>[0]) => (await s.findAll({ workerId: W, ...f })).map((e) => e.jobId);
      expect(await q({})).toEqual(asc);
      expect(await q({ descending: false })).toEqual(asc);
      expect(await q({ descending: true })).toEqual(desc);
      expect(await q({ limit: 2 })).toEqual(asc.slice(0, 2));
      expect(await q({ limit: 2, offset: 1 })).toEqual(asc.slice(1, 3));
      expect(await q({ limit: 2, offset: 1, descending: true })).toEqual(desc.slice(1, 3));
      expect(await q({ offset: 3 })).toEqual(asc.slice(3));
      expect(await q({ limit: 10, offset: 5 })).toEqual([]);
      expect(await q({ limit: 0 })).toEqual([]);
    });

    it("count groups by status and honours the filters", async () => {
      const ch = newChannel("count");
      await put(PENDING, { channel: ch });
      await put(PENDING, { channel: ch });
      await put(PENDING);
      await put(RUNNING, { channel: ch });
      await put(WAIT_RESULT);
      await put(WAIT_RESULT);
      await put(CANCELLING, { channel: ch });
      await put(PENDING, { workerId: newWorker() });

      const all = await s.count({ workerId: W });
      expect(count(all, PENDING)).toBe(3);
      expect(count(all, RUNNING)).toBe(1);
      expect(count(all, WAIT_RESULT)).toBe(2);
      expect(count(all, CANCELLING)).toBe(1);
      expect(total(all)).toBe(7);

      const onlyPending = await s.count({ workerId: W, status: PENDING });
      expect(count(onlyPending, PENDING)).toBe(3);
      expect(total(onlyPending)).toBe(3);

      const inCh = await s.count({ channel: ch });
      expect(count(inCh, PENDING)).toBe(2);
      expect(count(inCh, RUNNING)).toBe(1);
      expect(count(inCh, CANCELLING)).toBe(1);
      expect(total(inCh)).toBe(4);

      expect(total(await s.count({ workerId: newWorker() }))).toBe(0);
    });

    it("uniq_key: one live job per (worker, key); the holder may re-reserve; another worker may use the key", async () => {
      const key = `k-${newId()}`;
      const j1 = newId();
      const j2 = newId();
      const W2 = newWorker();
      expect(await s.reserveUniqKey(W, key, j1)).toBe(true);
      expect(await s.reserveUniqKey(W, key, j2)).toBe(false);
      expect(await s.reserveUniqKey(W, key, j1)).toBe(true); // same job again (e.g. a retry)
      expect(await s.reserveUniqKey(W2, key, j2)).toBe(true); // same key, another worker
      expect(await s.reserveUniqKey(W, `${key}-other`, j2)).toBe(true); // another key, same worker
    });

    it("uniq_key: release by the holder frees it, release by a non-holder does not", async () => {
      const key = `k-${newId()}`;
      const j1 = newId();
      const j2 = newId();
      const j3 = newId();
      expect(await s.reserveUniqKey(W, key, j1)).toBe(true);
      await s.releaseUniqKey(W, key, j2); // not the holder: no effect
      await s.releaseUniqKey(newWorker(), key, j1); // other worker's key: no effect
      expect(await s.reserveUniqKey(W, key, j2)).toBe(false);
      await s.releaseUniqKey(W, key, j1);
      expect(await s.reserveUniqKey(W, key, j2)).toBe(true);
      expect(await s.reserveUniqKey(W, key, j3)).toBe(false);
      await s.releaseUniqKey(W, `k-unknown-${newId()}`, j1); // unknown key: no throw
    });

    it("uniqKeyHolder names the job holding a key, and undefined once released or for an unknown key", async () => {
      const key = `dedup:${newId()}`;
      const j1 = newId();
      const j2 = newId();
      expect(await s.uniqKeyHolder(W, key)).toBeUndefined();
      expect(await s.reserveUniqKey(W, key, j1)).toBe(true);
      expect(await s.uniqKeyHolder(W, key)).toBe(j1); // a bigint above 2^53 survives
      expect(await s.uniqKeyHolder(newWorker(), key), "keys are per worker").toBeUndefined();
      await s.releaseUniqKey(W, key, j2); // not the holder
      expect(await s.uniqKeyHolder(W, key)).toBe(j1);
      await s.releaseUniqKey(W, key, j1);
      expect(await s.uniqKeyHolder(W, key)).toBeUndefined();
      expect(await s.reserveUniqKey(W, key, j2)).toBe(true);
      expect(await s.uniqKeyHolder(W, key)).toBe(j2);
    });

    it("concurrent reservations of one key: exactly one job wins, and uniqKeyHolder names it", async () => {
      const key = `dedup:${newId()}`;
      const jobs = Array.from({ length: 12 }, newId);
      const won = await Promise.all(jobs.map((j) => s.reserveUniqKey(W, key, j)));
      expect(won.filter(Boolean)).toHaveLength(1);
      expect(await s.uniqKeyHolder(W, key)).toBe(jobs[won.indexOf(true)]);
    });
  });
}
