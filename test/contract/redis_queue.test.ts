// The JobQueue contract against Redis, plus what only a shared queue has: several processes (instances with
// their own clients) on one prefix, and leases of a killed process delivered again.
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import { RedisJobQueue, type RedisJobQueueOptions } from "../../worker-container/src/adapters/redis/job_queue.js";
import type { QueuedJob } from "../../worker-container/src/core/ports.js";
import { Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";
import { describeJobQueueContract, describeWaitForWorkWakes } from "./job_queue.contract.js";

const clients: Redis[] = [];
afterAll(() => clients.forEach((c) => c.disconnect()));
const client = () => {
  const c = new Redis(inject("redisUrl"));
  clients.push(c);
  return c;
};
let seq = 0;
const newPrefix = () => `test-q-${process.pid}-${Date.now()}-${seq++}`;
// pollMs far above every wait below: the tests pass only if pushes, due times, lease deadlines and aborts wake
// leasers directly, not by polling.
const POLL_MS = 10_000;
/** One "process": an instance with its own client. */
const open = (prefix: string, opts: RedisJobQueueOptions = {}) => new RedisJobQueue(client(), { prefix, pollMs: POLL_MS, ...opts });

describeJobQueueContract("redis", async ({ leaseMs }) => open(newPrefix(), { leaseMs }));
describeWaitForWorkWakes("redis", async () => open(newPrefix(), { pollMs: 30_000 }));

let nextId = (1n << 61n) + BigInt(Date.now()) * 4096n;
const item = (channel: string, priority = Priority.MEDIUM): QueuedJob => ({
  job: create(JobSchema, { id: { value: nextId++ }, data: { priority, args: new Uint8Array([7]) } }),
  channel,
});
const idOf = (x: { item: QueuedJob } | undefined) => x?.item.job.id!.value;
const within = (ms: number) => AbortSignal.timeout(ms);

describe("RedisJobQueue across processes", () => {
  it("instances on one prefix share the queue: push on one, lease, list and remove on the other", async () => {
    const prefix = newPrefix();
    const a = open(prefix);
    const b = open(prefix);
    const [x, y] = [item("ch"), item("ch", Priority.HIGH)];
    const waiting = b.lease("ch", within(2000)); // b blocks before anything is there
    await a.push(x);
    expect(idOf(await waiting)).toBe(x.job.id!.value);
    await a.push(y);
    await a.push(item("other"));
    expect((await b.list("ch", 10)).map((q) => q.job.id!.value)).toEqual([y.job.id!.value]);
    expect(await b.list(undefined, 10)).toHaveLength(2); // b learns of a's channels
    expect(await b.remove(y.job.id!.value)).toBe(true);
    expect(await a.list("ch", 10)).toEqual([]);
    // another prefix is another queue
    const c = open(newPrefix());
    await a.push(item("ch"));
    expect(await c.lease("ch", within(50))).toBeUndefined();
    await Promise.all([a.close(), b.close(), c.close()]);
  });

  it("500 jobs over 2 instances × 8 leasers: none lost, none duplicated", async () => {
    const prefix = newPrefix();
    const qs = [open(prefix), open(prefix)];
    const N = 500;
    const items = Array.from({ length: N }, (_, i) => item("many", [Priority.LOW, Priority.MEDIUM, Priority.HIGH][i % 3]));
    const ac = new AbortController();
    const guard = setTimeout(() => ac.abort(), 10_000);
    let total = 0;
    const leaser = async (q: RedisJobQueue) => {
      const got: bigint[] = [];
      for (let l = await q.lease("many", ac.signal); l; l = await q.lease("many", ac.signal)) {
        got.push(idOf(l)!);
        expect(await q.ack(l)).toBe(true);
        if (++total === N) ac.abort();
      }
      return got;
    };
    const running = qs.flatMap((q) => Array.from({ length: 8 }, () => leaser(q)));
    // both instances push while the leasers run
    for (let i = 0; i < N; i += 10) await Promise.all(items.slice(i, i + 10).map((x, j) => qs[j % 2].push(x)));
    const got = (await Promise.all(running)).flat();
    clearTimeout(guard);
    expect(got).toHaveLength(N);
    expect(new Set(got)).toEqual(new Set(items.map((x) => x.job.id!.value)));
    expect(await qs[1].lease("many", within(30))).toBeUndefined();
    await Promise.all(qs.map((q) => q.close()));
  });

  it("a lease of an instance closed without ack (a killed worker) is delivered to another after leaseMs", async () => {
    const prefix = newPrefix();
    const LEASE = 300;
    const dead = open(prefix, { leaseMs: LEASE });
    const alive = open(prefix, { leaseMs: LEASE });
    const x = item("crash");
    await alive.push(x);
    const lost = await dead.lease("crash", within(1000));
    expect(idOf(lost)).toBe(x.job.id!.value);
    const t0 = performance.now();
    await dead.close();
    // alive is already waiting when the deadline passes: it wakes for it (pollMs is far longer)
    const again = await alive.lease("crash", within(LEASE * 4));
    const waited = performance.now() - t0;
    expect(idOf(again)).toBe(x.job.id!.value);
    expect(waited).toBeGreaterThanOrEqual(LEASE - 50);
    expect(waited).toBeLessThan(LEASE + 500); // not pollMs
    expect(await alive.ack(lost!), "the dead lease is void").toBe(false);
    expect(await alive.ack(again!)).toBe(true);
    expect(await alive.lease("crash", within(LEASE + 100))).toBeUndefined();
    await alive.close();
  });

  it("close() ends waiting leases promptly, and they swallow no later job", async () => {
    const prefix = newPrefix();
    const a = open(prefix);
    const b = open(prefix);
    const waiting = Array.from({ length: 4 }, () => a.lease("close", within(5000)));
    await new Promise((r) => setTimeout(r, 50)); // let them block
    const t0 = performance.now();
    await a.close();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined, undefined, undefined]);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await a.lease("close", within(1000)), "a closed queue leases nothing").toBeUndefined();
    const x = item("close");
    await b.push(x);
    expect(idOf(await b.lease("close", within(1000)))).toBe(x.job.id!.value);
    await b.close();
  });

  it("a delayed push wakes a leaser that is already waiting, on time", async () => {
    const q = open(newPrefix());
    const waiting = q.lease("late", within(3000)); // blocked with nothing scheduled
    await new Promise((r) => setTimeout(r, 30));
    const x = item("late");
    const t0 = performance.now();
    await q.push(x, 150);
    const l = await waiting;
    const waited = performance.now() - t0;
    expect(idOf(l)).toBe(x.job.id!.value);
    expect(waited).toBeGreaterThanOrEqual(145);
    expect(waited).toBeLessThan(150 + 350); // not pollMs
    await q.close();
  });

  it("keeps a channel's keys under one hash tag and adds no key per job", async () => {
    const prefix = newPrefix();
    const q = open(prefix);
    const ch = "tag{x}";
    for (let i = 0; i < 50; i++) await q.push(item(ch, [Priority.LOW, Priority.HIGH][i % 2]), i % 5 === 0 ? 60_000 : 0);
    const l = await q.lease(ch, within(1000));
    const keys = await clients[clients.length - 1].keys(`${prefix}:*`);
    const channelKeys = keys.filter((k) => k !== `${prefix}:q:channels`);
    expect(channelKeys.length).toBeLessThanOrEqual(8);
    const tags = new Set(channelKeys.map((k) => k.slice(k.indexOf("{") + 1, k.indexOf("}"))));
    expect(tags).toEqual(new Set([`q:tag{x`]));
    await q.ack(l!);
    await q.close();
  });
});
