// The JobState and ResultBus contracts against Redis, plus what only a shared Redis can show: two instances
// (separate connections, same prefix, as two processes would have) see each other's results, chunks,
// cancellations, claims and uniq_keys; entries and instances expire; subscriptions are shared and released.
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
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
