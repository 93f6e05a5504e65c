// The JobState and ResultBus contracts against Redis, plus what only a shared Redis can show: two instances
// (separate connections, same prefix, as two processes would have) see each other's results, chunks,
// cancellations, claims and uniq_keys; entries and instances expire; subscriptions are shared and released.
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it, vi } from "vitest";
import { RedisInstanceRegistry } from "../../worker-container/src/adapters/redis/instance_registry.js";
import { RedisJobState } from "../../worker-container/src/adapters/redis/job_state.js";
import { RedisResultBus } from "../../worker-container/src/adapters/redis/result_bus.js";
import type { JobStatusEntry } from "../../worker-container/src/core/ports.js";
import { JobProcessingStatus, Priority, ResultOutputItemSchema, type ResultOutputItem } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { JobResultSchema, type JobResult } from "../../worker-container/src/gen/jobworkerp/data/job_result_pb.js";
import { WorkerInstanceSchema } from "../../worker-container/src/gen/jobworkerp/data/worker_instance_pb.js";
import { describeJobStateContract } from "./job_state.contract.js";
import { describeResultBusContract } from "./result_bus.contract.js";

const clients: Redis[] = [];
const client = () => {
  const c = new Redis(inject("redisUrl"));
  clients.push(c);
  return c;
};
afterAll(() => clients.forEach((c) => c.disconnect()));

let seq = 0;
const newPrefix = () => `test:${process.pid}:${Date.now()}:${seq++}`;
let nextId = (1n << 60n) + BigInt(Date.now()) * 4096n + BigInt(Math.floor(Math.random() * 4096));
const newId = () => (nextId += 3n);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

const shared = client();
describeJobStateContract("redis", async () => new RedisJobState(shared, { prefix: newPrefix() }));
describeResultBusContract("redis", async () => new RedisResultBus(shared, { prefix: newPrefix() }));

function result(jobId: bigint, workerId: bigint, tag: string): JobResult {
  return create(JobResultSchema, {
    id: { value: newId() },
    data: { jobId: { value: jobId }, workerId: { value: workerId }, output: { items: new TextEncoder().encode(tag) } },
  });
}
const tagOf = (r: JobResult | undefined) => (r ? text(r.data!.output!.items) : undefined);
const data = (s: string): ResultOutputItem => create(ResultOutputItemSchema, { item: { case: "data", value: new TextEncoder().encode(s) } });
const end = (): ResultOutputItem => create(ResultOutputItemSchema, { item: { case: "end", value: { metadata: {} } } });

function entry(jobId: bigint, workerId: bigint, timeoutMs = 1000n): JobStatusEntry {
  const now = BigInt(Date.now());
  return {
    jobId, status: JobProcessingStatus.PENDING, workerId, channel: "c", priority: Priority.MEDIUM, enqueueTime: now,
    isStreamable: false, broadcastResults: false, updatedAt: now,
    job: create(JobSchema, { id: { value: jobId }, data: { workerId: { value: workerId }, timeout: timeoutMs } }),
  };
}

/** Two buses on one prefix, as a front and a worker process would have. */
function twoBuses() {
  const prefix = newPrefix();
  const a = new RedisResultBus(client(), { prefix });
  const b = new RedisResultBus(client(), { prefix });
  return { a, b, prefix, close: () => Promise.all([a.close(), b.close()]) };
}
const numsub = async (channel: string) => Number(((await shared.pubsub("NUMSUB", channel)) as [string, number])[1]);

describe("RedisResultBus across processes", () => {
  it("a result published on one reaches waiters and worker subscribers on the other, and is kept for late waiters", async () => {
    const { a, b, close } = twoBuses();
    const job = newId();
    const W = newId();
    const ac = new AbortController();
    try {
      const waiting = b.waitResult(job, 2000);
      const listener = b.subscribeWorker(W, ac.signal)[Symbol.asyncIterator]();
      await b.subscribed();
      await a.publishResult(result(job, W, "done"), { broadcast: true, keepMs: 2000 });
      expect(tagOf(await waiting)).toBe("done");
      const got = await listener.next();
      expect(tagOf(got.value as JobResult)).toBe("done");
      expect((got.value as JobResult).data!.jobId!.value).toBe(job);
      expect(tagOf(await b.waitResult(job, 0)), "kept, readable by any process").toBe("done");
    } finally {
      ac.abort();
      await close();
    }
  });

  it("no waiter misses a result published while it is still subscribing (subscribe first, then read the kept key)", async () => {
    const { a, b, close } = twoBuses();
    try {
      await Promise.all([a.waitResult(newId(), 0), b.waitResult(newId(), 0)]); // both connected
      const jobs = Array.from({ length: 40 }, () => newId());
      // publish without waiting for the other side's subscriptions: each result lands before, between or
      // after the waiter's SUBSCRIBE and its read of the kept key
      const waits = jobs.map((j, i) => {
        const w = b.waitResult(j, 2000);
        setTimeout(() => void a.publishResult(result(j, 1n, `r${i}`), { broadcast: false, keepMs: 2000 }), i % 4);
        return w;
      });
      expect((await Promise.all(waits)).map(tagOf)).toEqual(jobs.map((_, i) => `r${i}`));
    } finally {
      await close();
    }
  });

  it("chunks published on one stream to the other in order, ending with the end item", async () => {
    const { a, b, close } = twoBuses();
    const job = newId();
    const ac = new AbortController();
    try {
      const chunks = b.subscribeChunks(job, ac.signal);
      await b.subscribed();
      const sent = Array.from({ length: 200 }, (_, i) => `c${i}`);
      await Promise.all([...sent.map((s) => a.publishChunk(job, data(s))), a.publishChunk(job, end())]);
      const got: string[] = [];
      for await (const c of chunks) got.push(c.item.case === "data" ? text(c.item.value) : String(c.item.case));
      expect(got).toEqual([...sent, "end"]);
    } finally {
      ac.abort();
      await close();
    }
  });

  it("a cancel published on one reaches the other's onCancel listeners", async () => {
    const { a, b, close } = twoBuses();
    const heard: bigint[] = [];
    try {
      const off = b.onCancel((id) => heard.push(id));
      await b.subscribed();
      const job = newId();
      await a.publishCancel(job);
      const deadline = Date.now() + 1000;
      while (heard.length === 0 && Date.now() < deadline) await sleep(2);
      expect(heard).toEqual([job]); // a bigint above 2^53, intact
      off();
    } finally {
      await close();
    }
  });

  it("a definition change published on one reaches the other's onChanged listeners (worker and runner ids intact)", async () => {
    const { a, b, close } = twoBuses();
    const heard: [string, bigint][] = [];
    try {
      const off = b.onChanged((kind, id) => heard.push([kind, id]));
      await b.subscribed();
      const [w, r] = [newId(), newId()];
      await a.publishChanged("worker", w);
      await a.publishChanged("runner", r);
      const deadline = Date.now() + 1000;
      while (heard.length < 2 && Date.now() < deadline) await sleep(2);
      expect(heard).toEqual([["worker", w], ["runner", r]]);
      off();
    } finally {
      await close();
    }
  });

  it("listeners share one subscription per channel, released when the last one leaves", async () => {
    const { b, prefix, close } = twoBuses();
    const job = newId();
    const channel = `${prefix}:ch:result:${job}`;
    try {
      const acs = Array.from({ length: 10 }, () => new AbortController());
      const waits = acs.map((ac) => b.waitResult(job, 5000, ac.signal));
      await b.subscribed();
      expect(await numsub(channel), "one subscriber connection for ten waiters").toBe(1);
      acs.slice(1).forEach((ac) => ac.abort());
      await Promise.all(waits.slice(1));
      expect(await numsub(channel), "still subscribed for the last waiter").toBe(1);
      acs[0].abort();
      await waits[0];
      const deadline = Date.now() + 1000;
      while ((await numsub(channel)) > 0 && Date.now() < deadline) await sleep(5);
      expect(await numsub(channel)).toBe(0);
    } finally {
      await close();
    }
  });
});

describe("RedisJobState across processes", () => {
  const two = () => {
    const prefix = newPrefix();
    return [new RedisJobState(client(), { prefix }), new RedisJobState(client(), { prefix }), prefix] as const;
  };

  it("a claim on one fences the stale claim made on the other", async () => {
    const [a, b, prefix] = two();
    const id = newId();
    const e = entry(id, newId());
    await a.setPending(e);
    const stale = await a.claim(e, BigInt(Date.now()));
    const fresh = await b.claim(e, BigInt(Date.now())); // a's lease ran out; the job was delivered to b
    expect(fresh!.token).toBeGreaterThan(stale!.token);
    expect(await a.markWaitResult(id, stale!)).toBe(false);
    expect(await a.markPendingForRetry(id, stale!, BigInt(Date.now()))).toBe(false);
    expect(await a.finish(id, stale!)).toBe(false);
    expect((await a.find(id))!.status).toBe(JobProcessingStatus.RUNNING);
    expect(await b.finish(id, fresh!)).toBe(true);
    expect(await a.find(id)).toBeUndefined();
    // a claim object built elsewhere (no index hints) finishes too, and leaves the worker/channel indexes
    const id2 = newId();
    await a.setPending(entry(id2, e.workerId));
    const c2 = await a.claim(entry(id2, e.workerId), 1n);
    expect(await b.finish(id2, { token: c2!.token })).toBe(true);
    expect(await shared.scard(`${prefix}:{state}:w:${e.workerId}`), "worker index emptied by finish").toBe(0);
    expect(await shared.scard(`${prefix}:{state}:c:c`), "channel index emptied by finish").toBe(0);
  });

  it("a uniq_key reserved on one is refused on the other until the holder releases it", async () => {
    const [a, b] = two();
    const W = newId();
    const [j1, j2] = [newId(), newId()];
    expect(await a.reserveUniqKey(W, "k", j1)).toBe(true);
    expect(await b.reserveUniqKey(W, "k", j2)).toBe(false);
    await b.releaseUniqKey(W, "k", j2); // not the holder
    expect(await b.reserveUniqKey(W, "k", j2)).toBe(false);
    await a.releaseUniqKey(W, "k", j1);
    expect(await b.reserveUniqKey(W, "k", j2)).toBe(true);
  });

  it("entries expire after the TTL (a claimed one only after its job's timeout too), leaving no index behind", async () => {
    const prefix = newPrefix();
    const s = new RedisJobState(shared, { prefix, ttlMs: 100 });
    const W = newId();
    const pending = newId();
    const running = newId();
    await s.setPending(entry(pending, W));
    await s.setPending(entry(running, W, 600n));
    await s.claim(entry(running, W, 600n), BigInt(Date.now()));
    expect((await s.findAll({ workerId: W })).length).toBe(2);
    await sleep(250);
    expect(await s.find(pending)).toBeUndefined();
    expect((await s.find(running))?.status, "a claim lives ttl + the job's timeout").toBe(JobProcessingStatus.RUNNING);
    expect((await s.findAll({ workerId: W })).map((x) => x.jobId)).toEqual([running]);
    expect(await shared.scard(`${prefix}:{state}:w:${W}`), "the expired id was swept from the worker index").toBe(1);
    expect(await s.count({})).toEqual(new Map([[JobProcessingStatus.RUNNING, 1]]));
    await sleep(550);
    expect(await s.find(running)).toBeUndefined();
    expect(await s.findAll({ workerId: W })).toEqual([]);
    expect(await s.count({})).toEqual(new Map());
    expect(await shared.scard(`${prefix}:{state}:w:${W}`), "no index left behind").toBe(0);
  });
  it("concurrent calls share one script each: distinct, increasing tokens in call order", async () => {
    const prefix = newPrefix();
    const c = client();
    const evalsha = vi.spyOn(c, "evalsha");
    const a = new RedisJobState(c, { prefix });
    const W = newId();
    const es = Array.from({ length: 50 }, () => entry(newId(), W));
    await Promise.all(es.map((e) => a.setPending(e)));
    expect(evalsha, "one setPending script for the 50 calls").toHaveBeenCalledTimes(1);
    const claims = await Promise.all(es.map((e) => a.claim(e, BigInt(Date.now()))));
    expect(evalsha, "one claim script for the 50 claims").toHaveBeenCalledTimes(2);
    const tokens = claims.map((c) => c!.token);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    expect(new Set(tokens).size).toBe(50);
    expect(await a.count({ workerId: W })).toEqual(new Map([[JobProcessingStatus.RUNNING, 50]]));
    // finish half, remove the rest, and re-finish some (stale: already gone), all in one turn
    const done = await Promise.all([
      ...es.map((e, i) => (i % 2 === 0 ? a.finish(e.jobId, claims[i]!) : a.remove(e.jobId).then(() => true))),
      ...es.slice(0, 5).map((e) => a.finish(e.jobId, claims[0]!)),
    ]);
    expect(done).toEqual([...es.map(() => true), ...es.slice(0, 5).map(() => false)]);
    expect(await a.count({})).toEqual(new Map());
    expect(await shared.exists(`${prefix}:{state}:w:${W}`, `${prefix}:{state}:c:c`), "indexes emptied").toBe(0);
  });

  it("calls for the same job within one batch behave as if made one after the other", async () => {
    const [a] = two();
    const e = entry(newId(), newId());
    const missing = entry(newId(), e.workerId);
    await a.setPending(e);
    const [c1, c2, m1, m2] = await Promise.all([a.claim(e, 1n), a.claim(e, 2n), a.claim(missing, 3n), a.claim(missing, 4n)]);
    expect(c2!.token).toBeGreaterThan(c1!.token);
    expect(m2!.token).toBeGreaterThan(m1!.token);
    expect((await a.find(e.jobId))!.startTime).toBe(2n);
    expect((await a.find(missing.jobId))!.status).toBe(JobProcessingStatus.RUNNING);
    expect(await Promise.all([a.finish(e.jobId, c1!), a.finish(e.jobId, c2!), a.finish(e.jobId, c2!)])).toEqual([false, true, false]);
    // setPending twice in one turn: the later wins
    await Promise.all([a.setPending(e), a.setPending({ ...e, priority: 1 })]);
    expect((await a.find(e.jobId))!.priority).toBe(1);
    expect(await a.count({ workerId: e.workerId })).toEqual(new Map([
      [JobProcessingStatus.PENDING, 1], [JobProcessingStatus.RUNNING, 1],
    ]));
  });

  it("a claim of a missing entry acts atomically though it takes two calls (the entry may appear in between)", async () => {
    const prefix = newPrefix();
    const other = new RedisJobState(client(), { prefix });
    let between: (() => Promise<void>) | undefined;
    const c = client();
    const evalsha = c.evalsha.bind(c) as (...a: unknown[]) => Promise<unknown>;
    // run `between` after the first claim script answered "missing" and before the second is sent
    (c as unknown as { evalsha: typeof evalsha }).evalsha = async (...args) => {
      const r = await evalsha(...args);
      if (Array.isArray(r) && r.includes(-1) && between) await between();
      return r;
    };
    const s = new RedisJobState(c, { prefix });
    const W = newId();

    const cancelled = entry(newId(), W);
    between = async () => {
      await other.setPending(cancelled);
      expect(await other.requestCancel(cancelled.jobId)).toBe(JobProcessingStatus.PENDING);
    };
    expect(await s.claim(cancelled, 1n), "cancelled in between: not claimed").toBeUndefined();
    expect((await s.find(cancelled.jobId))!.status).toBe(JobProcessingStatus.CANCELLING);

    const appeared = entry(newId(), W);
    between = () => other.setPending({ ...appeared, priority: 1, channel: "c2" });
    const claim = await s.claim(appeared, 5n);
    const got = (await s.find(appeared.jobId))!;
    expect([got.status, got.startTime, got.priority, got.channel], "claimed, keeping the entry it found").toEqual([JobProcessingStatus.RUNNING, 5n, 1, "c2"]);
    expect(await s.finish(appeared.jobId, claim!)).toBe(true);
    const id = appeared.jobId.toString();
    const left = [await shared.sismember(`${prefix}:{state}:c:c2`, id), await shared.sismember(`${prefix}:{state}:c:c`, id)];
    expect(left, "left both channel sets (the entry's and the claim's)").toEqual([0, 0]);

    const racing = entry(newId(), W);
    const raced = entry(newId(), W);
    between = async () => {
      await other.setPending(racing);
      const c2 = await other.claim(racing, 7n); // another worker got it first
      expect(await other.finish(racing.jobId, c2!)).toBe(true);
    };
    const [late, plain] = await Promise.all([s.claim(racing, 8n), s.claim(raced, 9n)]);
    expect(late, "finished in between: re-created and claimed, as one claim made then would").toBeDefined();
    expect((await s.find(racing.jobId))!.startTime).toBe(8n);
    expect(plain!.token).toBeGreaterThan(0);
  });

  it("a claim racing a requestCancel either runs the job or is refused, never both", async () => {
    const [a, b] = two();
    const W = newId();
    const es = Array.from({ length: 60 }, () => entry(newId(), W));
    await Promise.all(es.map((e) => a.setPending(e)));
    const outcomes = await Promise.all(
      es.map(async (e, i) => {
        if (i % 3 === 0) await sleep(0);
        const [claim, before] = await Promise.all([a.claim(e, 1n), (i % 2 ? sleep(0) : Promise.resolve()).then(() => b.requestCancel(e.jobId))]);
        return { claim, before, now: (await a.find(e.jobId))!.status };
      }),
    );
    for (const o of outcomes) {
      expect(o.now).toBe(JobProcessingStatus.CANCELLING);
      expect(o.before).toBe(o.claim ? JobProcessingStatus.RUNNING : JobProcessingStatus.PENDING);
    }
  });
});

describe("RedisInstanceRegistry", () => {
  const instance = (id: bigint) =>
    create(WorkerInstanceSchema, {
      id: { value: id },
      data: { ipAddress: "10.0.0.1", channels: [{ name: "c", concurrency: 4 }], registeredAt: 1n, lastHeartbeat: BigInt(Date.now()) },
    });

  it("lists and finds heartbeating instances; one whose heartbeat lapses disappears; remove drops one", async () => {
    const prefix = newPrefix();
    const a = new RedisInstanceRegistry(client(), { prefix, ttlMs: 300 });
    const b = new RedisInstanceRegistry(client(), { prefix, ttlMs: 300 });
    const [dies, lives, removed] = [newId(), newId(), newId()];
    await a.heartbeat(instance(dies));
    await b.heartbeat(instance(lives));
    await b.heartbeat(instance(removed));
    const ids = async () => (await a.list()).map((i) => i.id!.value).sort();
    expect(await ids()).toEqual([dies, lives, removed].sort());
    expect((await b.find(dies))!.data!.channels[0].concurrency).toBe(4);
    await b.remove(removed);
    expect(await a.find(removed)).toBeUndefined();
    for (let i = 0; i < 8; i++) {
      await sleep(60);
      await b.heartbeat(instance(lives)); // `dies` stopped heartbeating
    }
    expect(await ids()).toEqual([lives]);
    expect(await a.find(dies)).toBeUndefined();
    expect((await a.find(lives))!.id!.value).toBe(lives);
  });
});
