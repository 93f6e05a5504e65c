// Shared contract for the ResultBus port: every ResultBus adapter (memory, Redis, ...) runs this suite.
// Tests use their own snowflake-sized job/worker ids, so a shared backend does not need flushing.
// Cross-process delivery may be asynchronous: receipt is awaited (with a deadline), and "not received"
// is proven with a marker published afterwards on the same path (ordering), not by sleeping.
import { create, equals } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ResultBus } from "../../worker-container/src/core/ports.js";
import {
  Priority,
  ResponseType,
  ResultOutputItemSchema,
  ResultStatus,
  StreamingType,
  type ResultOutputItem,
} from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobResultSchema, type JobResult } from "../../worker-container/src/gen/jobworkerp/data/job_result_pb.js";

let nextId = (1n << 60n) + BigInt(Date.now()) * 4096n + BigInt(Math.floor(Math.random() * 4096));
const newId = () => nextId++;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const utf8 = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | undefined) => new TextDecoder().decode(b);

function result(jobId: bigint, workerId: bigint, tag = "out"): JobResult {
  return create(JobResultSchema, {
    id: { value: newId() },
    data: {
      jobId: { value: jobId },
      workerId: { value: workerId },
      workerName: "contract-worker",
      args: new Uint8Array([1, 2, 3]),
      uniqKey: `u-${jobId}`,
      status: ResultStatus.SUCCESS,
      output: { items: utf8(tag) },
      retried: 1,
      maxRetry: 3,
      priority: Priority.HIGH,
      timeout: 1000n,
      enqueueTime: 1_700_000_000_000n,
      runAfterTime: 0n,
      startTime: 1_700_000_000_100n,
      endTime: 1_700_000_000_200n,
      responseType: ResponseType.DIRECT,
      storeSuccess: false,
      storeFailure: true,
      streamingType: StreamingType.NONE,
      broadcastResults: true,
    },
    metadata: { trace: tag },
  });
}
const tagOf = (r: JobResult | undefined) => text(r?.data?.output?.items);

const dataItem = (s: string): ResultOutputItem => create(ResultOutputItemSchema, { item: { case: "data", value: utf8(s) } });
const endItem = (): ResultOutputItem => create(ResultOutputItemSchema, { item: { case: "end", value: { metadata: { k: "v" } } } });
const finalItem = (s: string): ResultOutputItem => create(ResultOutputItemSchema, { item: { case: "finalCollected", value: utf8(s) } });
const describeItem = (i: ResultOutputItem) =>
  i.item.case === "data" ? `data:${text(i.item.value)}` : i.item.case === "finalCollected" ? `final:${text(i.item.value)}` : String(i.item.case);

const TIMEOUT = Symbol("timeout");
/** next() of an iterator, or TIMEOUT when nothing arrives within ms. */
async function nextWithin<T>(it: AsyncIterator<T>, ms: number): Promise<IteratorResult<T> | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([it.next(), new Promise<typeof TIMEOUT>((res) => (timer = setTimeout(() => res(TIMEOUT), ms)))]);
  clearTimeout(timer);
  return r;
}
async function expectNext<T>(it: AsyncIterator<T>, ms = 1000): Promise<T> {
  const r = await nextWithin(it, ms);
  expect(r).not.toBe(TIMEOUT);
  expect((r as IteratorResult<T>).done).toBe(false);
  return (r as IteratorResult<T>).value as T;
}
async function expectDone<T>(it: AsyncIterator<T>, ms = 1000) {
  const r = await nextWithin(it, ms);
  expect(r).not.toBe(TIMEOUT);
  expect((r as IteratorResult<T>).done).toBe(true);
}
/** Collect a whole stream (with a deadline so a stream that never ends fails instead of hanging). */
async function collect<T>(iterable: AsyncIterable<T>, ms = 2000): Promise<T[] | typeof TIMEOUT> {
  const out: T[] = [];
  const it = iterable[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await nextWithin(it, Math.max(1, deadline - Date.now()));
    if (r === TIMEOUT) return TIMEOUT;
    if (r.done) return out;
    out.push(r.value);
  }
}
/** Resolves with a value racing a deadline (TIMEOUT when the promise is still pending). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | typeof TIMEOUT> {
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([p, new Promise<typeof TIMEOUT>((res) => (timer = setTimeout(() => res(TIMEOUT), ms)))]);
  clearTimeout(timer);
  return r;
}
async function until(cond: () => boolean, ms = 1000) {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(2);
  expect(cond()).toBe(true);
}

export function describeResultBusContract(name: string, open: () => Promise<ResultBus>) {
  describe(`ResultBus contract: ${name}`, () => {
    let bus: ResultBus;
    const controllers: AbortController[] = [];
    const signal = () => {
      const ac = new AbortController();
      controllers.push(ac);
      return ac;
    };
    beforeEach(async () => {
      bus = await open();
    });
    afterEach(async () => {
      for (const ac of controllers.splice(0)) ac.abort();
      await bus.close();
    });

    // ------------------------------------------------------------ waitResult

    it("waitResult before publish resolves with the published result", async () => {
      const job = newId();
      const r = result(job, newId(), "direct");
      const waiting = bus.waitResult(job, 2000);
      await sleep(10);
      await bus.publishResult(r, { broadcast: false, keepMs: 0 });
      const got = await waiting;
      expect(got).toBeDefined();
      expect(equals(JobResultSchema, got!, r)).toBe(true);
      expect(got!.data!.jobId!.value).toBe(job); // bigint above 2^53 survives
    });

    it("many concurrent waiters on one job all get the result", async () => {
      const job = newId();
      const r = result(job, newId(), "fan");
      const waiters = Array.from({ length: 25 }, () => bus.waitResult(job, 2000));
      await sleep(10);
      await bus.publishResult(r, { broadcast: false, keepMs: 0 });
      const got = await Promise.all(waiters);
      for (const g of got) expect(g && equals(JobResultSchema, g, r)).toBe(true);
    });

    it("a waiter only gets its own job's result", async () => {
      const job = newId();
      const other = newId();
      const waiting = bus.waitResult(job, 80);
      await bus.publishResult(result(other, newId()), { broadcast: true, keepMs: 1000 });
      expect(await waiting).toBeUndefined();
    });

    it("waitResult after publish gets the kept result when keepMs > 0", async () => {
      const job = newId();
      const r = result(job, newId(), "kept");
      await bus.publishResult(r, { broadcast: false, keepMs: 2000 });
      const t0 = performance.now();
      const got = await bus.waitResult(job, 1000);
      expect(got && equals(JobResultSchema, got, r)).toBe(true);
      expect(performance.now() - t0).toBeLessThan(500); // from the keep, not a timeout race
      // kept for more than one late waiter, and readable with timeout 0 (a peek)
      expect(tagOf(await bus.waitResult(job, 0))).toBe("kept");
    });

    it("waitResult after publish times out (undefined) when keepMs = 0", async () => {
      const job = newId();
      await bus.publishResult(result(job, newId()), { broadcast: false, keepMs: 0 });
      const t0 = performance.now();
      expect(await bus.waitResult(job, 40)).toBeUndefined();
      expect(performance.now() - t0).toBeGreaterThanOrEqual(35);
    });

    it("a kept result expires after keepMs", async () => {
      const job = newId();
      await bus.publishResult(result(job, newId()), { broadcast: false, keepMs: 30 });
      await sleep(120);
      expect(await bus.waitResult(job, 20)).toBeUndefined();
    });

    it("waitResult resolves undefined on timeout", async () => {
      const job = newId();
      const t0 = performance.now();
      expect(await bus.waitResult(job, 40)).toBeUndefined();
      const elapsed = performance.now() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(35);
      expect(elapsed).toBeLessThan(1000);
      // a result published after the timeout still reaches a new waiter
      const again = bus.waitResult(job, 2000);
      await bus.publishResult(result(job, newId(), "late"), { broadcast: false, keepMs: 0 });
      expect(tagOf(await again)).toBe("late");
    });

    it("waitResult resolves undefined when its signal aborts; other waiters are unaffected", async () => {
      const job = newId();
      const ac = signal();
      const t0 = performance.now();
      const aborted = bus.waitResult(job, 5000, ac.signal);
      const other = bus.waitResult(job, 5000);
      setTimeout(() => ac.abort(), 20);
      expect(await aborted).toBeUndefined();
      expect(performance.now() - t0).toBeLessThan(1000);
      await bus.publishResult(result(job, newId(), "after-abort"), { broadcast: false, keepMs: 0 });
      expect(tagOf(await other)).toBe("after-abort");
    });

    it("waitResult with an already-aborted signal resolves undefined at once", async () => {
      const job = newId();
      const got = await within(bus.waitResult(job, 2000, AbortSignal.abort()), 300);
      expect(got).toBeUndefined(); // TIMEOUT here means it ignored the abort and waited for the timeout
    });

    // ------------------------------------------------------------ subscribeWorker

    it("subscribeWorker receives that worker's broadcast results in order; not other workers', not broadcast=false", async () => {
      const W = newId();
      const other = newId();
      const ac = signal();
      const it = bus.subscribeWorker(W, ac.signal)[Symbol.asyncIterator]();
      await bus.publishResult(result(newId(), W, "r1"), { broadcast: true, keepMs: 0 });
      await bus.publishResult(result(newId(), other, "other-worker"), { broadcast: true, keepMs: 0 });
      await bus.publishResult(result(newId(), W, "r2"), { broadcast: true, keepMs: 0 });
      await bus.publishResult(result(newId(), W, "not-broadcast"), { broadcast: false, keepMs: 0 });
      await bus.publishResult(result(newId(), W, "r3"), { broadcast: true, keepMs: 0 });
      const got: string[] = [];
      for (let i = 0; i < 3; i++) got.push(tagOf(await expectNext(it)));
      expect(got).toEqual(["r1", "r2", "r3"]);
      const r4 = result(newId(), W, "r4");
      await bus.publishResult(r4, { broadcast: true, keepMs: 0 });
      const g4 = await expectNext(it);
      expect(equals(JobResultSchema, g4, r4)).toBe(true);
      expect(g4.data!.workerId!.value).toBe(W);
    });

    it("subscribeWorker fans out to every subscriber of the worker", async () => {
      const W = newId();
      const a = bus.subscribeWorker(W, signal().signal)[Symbol.asyncIterator]();
      const b = bus.subscribeWorker(W, signal().signal)[Symbol.asyncIterator]();
      await bus.publishResult(result(newId(), W, "x"), { broadcast: true, keepMs: 0 });
      await bus.publishResult(result(newId(), W, "y"), { broadcast: true, keepMs: 0 });
      expect([tagOf(await expectNext(a)), tagOf(await expectNext(a))]).toEqual(["x", "y"]);
      expect([tagOf(await expectNext(b)), tagOf(await expectNext(b))]).toEqual(["x", "y"]);
    });

    it("a worker subscriber that aborts stops receiving and its stream ends", async () => {
      const W = newId();
      const ac = signal();
      const stays = bus.subscribeWorker(W, signal().signal)[Symbol.asyncIterator]();
      const it = bus.subscribeWorker(W, ac.signal)[Symbol.asyncIterator]();
      await bus.publishResult(result(newId(), W, "before"), { broadcast: true, keepMs: 0 });
      expect(tagOf(await expectNext(it))).toBe("before");
      expect(tagOf(await expectNext(stays))).toBe("before");
      ac.abort();
      await bus.publishResult(result(newId(), W, "after"), { broadcast: true, keepMs: 0 });
      expect(tagOf(await expectNext(stays))).toBe("after"); // published and delivered to live subscribers
      await expectDone(it); // ...but not to the aborted one
      const pre = bus.subscribeWorker(W, AbortSignal.abort())[Symbol.asyncIterator]();
      await expectDone(pre);
    });

    // ------------------------------------------------------------ chunks

    it("subscribeChunks receives data items in order, then the end item, then ends", async () => {
      const job = newId();
      const ac = signal();
      const chunks = bus.subscribeChunks(job, ac.signal);
      const otherJob = bus.subscribeChunks(newId(), signal().signal)[Symbol.asyncIterator]();
      const collected = collect(chunks);
      for (const s of ["a", "b", "c", "d"]) await bus.publishChunk(job, dataItem(s));
      await bus.publishChunk(job, endItem());
      await bus.publishChunk(job, dataItem("after-end"));
      const got = await collected;
      expect(got).not.toBe(TIMEOUT);
      expect((got as ResultOutputItem[]).map(describeItem)).toEqual(["data:a", "data:b", "data:c", "data:d", "end"]);
      const end = (got as ResultOutputItem[])[4];
      expect(end.item.case === "end" && end.item.value.metadata).toEqual({ k: "v" });
      expect(await nextWithin(otherJob, 30)).toBe(TIMEOUT); // another job's subscriber saw nothing
    });

    it("a finalCollected item also ends the chunk stream", async () => {
      const job = newId();
      const collected = collect(bus.subscribeChunks(job, signal().signal));
      await bus.publishChunk(job, dataItem("x"));
      await bus.publishChunk(job, finalItem("all"));
      const got = await collected;
      expect(got).not.toBe(TIMEOUT);
      expect((got as ResultOutputItem[]).map(describeItem)).toEqual(["data:x", "final:all"]);
    });

    it("every chunk subscriber of a job gets the stream", async () => {
      const job = newId();
      const a = collect(bus.subscribeChunks(job, signal().signal));
      const b = collect(bus.subscribeChunks(job, signal().signal));
      await bus.publishChunk(job, dataItem("1"));
      await bus.publishChunk(job, dataItem("2"));
      await bus.publishChunk(job, endItem());
      const want = ["data:1", "data:2", "end"];
      for (const got of await Promise.all([a, b])) {
        expect(got).not.toBe(TIMEOUT);
        expect((got as ResultOutputItem[]).map(describeItem)).toEqual(want);
      }
    });

    it("a chunk subscriber that aborts stops receiving and its stream ends", async () => {
      const job = newId();
      const ac = signal();
      const it = bus.subscribeChunks(job, ac.signal)[Symbol.asyncIterator]();
      const stays = bus.subscribeChunks(job, signal().signal)[Symbol.asyncIterator]();
      await bus.publishChunk(job, dataItem("1"));
      expect(describeItem(await expectNext(it))).toBe("data:1");
      expect(describeItem(await expectNext(stays))).toBe("data:1");
      ac.abort();
      await bus.publishChunk(job, dataItem("2"));
      expect(describeItem(await expectNext(stays))).toBe("data:2");
      await expectDone(it);
      const pre = bus.subscribeChunks(job, AbortSignal.abort())[Symbol.asyncIterator]();
      await expectDone(pre);
    });

    // ------------------------------------------------------------ definition changes

    it("publishChanged reaches onChanged listeners with the kind (worker or runner) and the id", async () => {
      const heard: [string, bigint][] = [];
      const off = bus.onChanged((kind, id) => heard.push([kind, id]));
      const [w, r] = [newId(), newId()];
      await bus.publishChanged("worker", w);
      await bus.publishChanged("runner", r);
      await until(() => heard.length === 2);
      expect(heard).toEqual([["worker", w], ["runner", r]]);
      off();
      await bus.publishChanged("worker", newId());
      await sleep(20);
      expect(heard).toHaveLength(2);
    });

    // ------------------------------------------------------------ cancel

    it("publishCancel reaches every onCancel listener; the returned function unsubscribes", async () => {
      const a: bigint[] = [];
      const b: bigint[] = [];
      const offA = bus.onCancel((id) => a.push(id));
      const offB = bus.onCancel((id) => b.push(id));
      const j1 = newId();
      await bus.publishCancel(j1);
      await until(() => a.length === 1 && b.length === 1);
      expect(a).toEqual([j1]);
      expect(b).toEqual([j1]);

      offA();
      const j2 = newId();
      const j3 = newId();
      await bus.publishCancel(j2);
      await bus.publishCancel(j3);
      await until(() => b.length === 3); // b (still subscribed) saw both: a had the same chance
      expect(b).toEqual([j1, j2, j3]);
      expect(a).toEqual([j1]);
      offB();
      await bus.publishCancel(newId());
      await sleep(20);
      expect(b).toEqual([j1, j2, j3]);
    });
  });
}
