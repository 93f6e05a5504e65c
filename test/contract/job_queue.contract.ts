// Shared contract for the JobQueue port: every JobQueue adapter (memory, Redis, SQS, ...) runs this suite.
// Tests use their own channel names and snowflake-sized job ids, so a shared backend does not need flushing.
import { create, equals } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { JobQueue, Lease, QueuedJob } from "../../worker-container/src/core/ports.js";
import { Priority, StreamingType } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema, type Job } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";

/** Snowflake-sized ids (> 2^53): a trip through a JS number would corrupt them. */
let nextJobId = (1n << 60n) + BigInt(Date.now()) * 4096n + BigInt(Math.floor(Math.random() * 4096));
const newId = () => nextJobId++;
let channelSeq = 0;
const newChannel = (tag: string) => `contract-${tag}-${process.pid}-${Date.now()}-${channelSeq++}`;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const job = (id: bigint, priority: Priority = Priority.MEDIUM): Job =>
  create(JobSchema, {
    id: { value: id },
    data: {
      workerId: { value: (1n << 55n) + 3n },
      args: new Uint8Array([1, 2, 3, 0, 255]),
      uniqKey: `u-${id}`,
      enqueueTime: 1_700_000_000_000n,
      runAfterTime: 0n,
      retried: 2,
      priority,
      timeout: 60_000n,
      streamingType: StreamingType.NONE,
    },
    metadata: { trace: `t-${id}` },
  });

const item = (channel: string, priority: Priority = Priority.MEDIUM, id = newId()): QueuedJob => ({ job: job(id, priority), channel });
const idOf = (x: Lease | QueuedJob | undefined): bigint | undefined =>
  x === undefined ? undefined : ("item" in x ? x.item : x).job.id!.value;

/** Lease with a deadline: undefined when nothing arrived within ms. */
const leaseWithin = (q: JobQueue, channel: string, ms: number) => q.lease(channel, AbortSignal.timeout(Math.round(ms)));

/** Lease length the suite opens queues with: short, so expiry is observable. */
const DEFAULT_LEASE_MS = 300;

/** What a backend can do that the suite otherwise assumes. */
export interface JobQueueCaps {
  /** Lease length to test with, for backends whose leases have a coarser granularity (SQS: whole seconds). */
  leaseMs?: number;
  /**
   * false: the backend cannot look into its queues (SQS): `list` answers an injected view (here: nothing) and
   * `remove` cannot tell whether a job was still waiting (it still makes sure a waiting job is never delivered).
   */
  peeks?: boolean;
  /** Delay of the "a delayed push is not delivered before its delay" case (default 80 ms): room for the backend's round trips. */
  delayMs?: number;
}

/** `open` must return a queue whose leases last `leaseMs` unless extended. */
export function describeJobQueueContract(name: string, open: (opts: { leaseMs: number }) => Promise<JobQueue>, caps: JobQueueCaps = {}) {
  const LEASE_MS = caps.leaseMs ?? DEFAULT_LEASE_MS;
  const peeks = caps.peeks ?? true;
  describe(`JobQueue contract: ${name}`, () => {
    let q: JobQueue;
    beforeEach(async () => {
      q = await open({ leaseMs: LEASE_MS });
    });
    afterEach(async () => {
      await q.close();
    });

    it("delivers the queued item intact (job, channel, durable, loadOnly)", async () => {
      const ch = newChannel("intact");
      const a: QueuedJob = { ...item(ch, Priority.HIGH), durable: true, loadOnly: true };
      await q.push(a);
      const l = await leaseWithin(q, ch, 1000);
      expect(l).toBeDefined();
      expect(typeof l!.token).toBe("string");
      expect(l!.item.channel).toBe(ch);
      expect(l!.item.durable).toBe(true);
      expect(l!.item.loadOnly).toBe(true);
      expect(equals(JobSchema, l!.item.job, a.job)).toBe(true);
      expect(l!.item.job.id!.value).toBe(a.job.id!.value); // bigint above 2^53 survives
      await q.ack(l!);
    });

    it("delivers in strict priority order HIGH > MEDIUM > LOW, FIFO within a priority", async () => {
      const ch = newChannel("prio");
      const pushed = [
        item(ch, Priority.LOW),
        item(ch, Priority.MEDIUM),
        item(ch, Priority.HIGH),
        item(ch, Priority.LOW),
        item(ch, Priority.HIGH),
        item(ch, Priority.MEDIUM),
        item(ch, Priority.HIGH),
        item(ch, Priority.LOW),
      ];
      for (const p of pushed) await q.push(p);
      const want = [Priority.HIGH, Priority.MEDIUM, Priority.LOW].flatMap((p) =>
        pushed.filter((x) => x.job.data!.priority === p).map((x) => x.job.id!.value),
      );
      const got: bigint[] = [];
      for (let i = 0; i < pushed.length; i++) {
        const l = await leaseWithin(q, ch, 1000);
        expect(l).toBeDefined();
        got.push(l!.item.job.id!.value);
        await q.ack(l!);
      }
      expect(got).toEqual(want);
      expect(await leaseWithin(q, ch, 30)).toBeUndefined(); // nothing left, nothing delivered twice
    });

    it("keeps channels independent", async () => {
      const ch1 = newChannel("ch1");
      const ch2 = newChannel("ch2");
      const a = item(ch1, Priority.HIGH);
      const b = item(ch2, Priority.LOW);
      await q.push(a);
      await q.push(b);
      // ch2's LOW job is served on ch2 although ch1 holds a HIGH one
      expect(idOf(await leaseWithin(q, ch2, 1000))).toBe(b.job.id!.value);
      expect(await leaseWithin(q, ch2, 30)).toBeUndefined();
      expect(idOf(await leaseWithin(q, ch1, 1000))).toBe(a.job.id!.value);

      // a leaser waiting on ch1 is not handed a job pushed to ch2
      const waiting = leaseWithin(q, ch1, 60);
      const c = item(ch2);
      await q.push(c);
      expect(await waiting).toBeUndefined();
      expect(idOf(await leaseWithin(q, ch2, 1000))).toBe(c.job.id!.value);
    });

    it("a lease waits until a push arrives", async () => {
      const ch = newChannel("wait");
      let settled = false;
      const p = leaseWithin(q, ch, 2000).then((l) => {
        settled = true;
        return l;
      });
      await sleep(30);
      expect(settled).toBe(false);
      const a = item(ch);
      await q.push(a);
      const l = await p;
      expect(idOf(l)).toBe(a.job.id!.value);
    });

    it("a lease resolves undefined when its signal aborts (also when already aborted)", async () => {
      const ch = newChannel("abort");
      const ac = new AbortController();
      const t0 = performance.now();
      const p = q.lease(ch, ac.signal);
      setTimeout(() => ac.abort(), 20);
      expect(await p).toBeUndefined();
      expect(performance.now() - t0).toBeLessThan(1000);

      const pre = AbortSignal.abort();
      const t1 = performance.now();
      expect(await q.lease(ch, pre)).toBeUndefined();
      expect(performance.now() - t1).toBeLessThan(500);
    });

    it("an aborted leaser does not swallow a later job: a waiting leaser gets it", async () => {
      const ch = newChannel("swallow1");
      const ac = new AbortController();
      const aborted = q.lease(ch, ac.signal); // queued first
      const second = leaseWithin(q, ch, 2000); // queued second
      ac.abort();
      expect(await aborted).toBeUndefined();
      const a = item(ch);
      await q.push(a);
      expect(idOf(await second)).toBe(a.job.id!.value);
    });

    it("an aborted leaser does not swallow a later job: the next leaser gets it", async () => {
      const ch = newChannel("swallow2");
      const acs = [new AbortController(), new AbortController(), new AbortController()];
      const aborted = acs.map((ac) => q.lease(ch, ac.signal));
      for (const ac of acs) ac.abort();
      expect(await Promise.all(aborted)).toEqual([undefined, undefined, undefined]);
      const a = item(ch);
      await q.push(a);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(a.job.id!.value);
    });

    it("a delayed push is not delivered before its delay and is delivered after it", async () => {
      const ch = newChannel("delay");
      const DELAY = caps.delayMs ?? 80;
      const a = item(ch, Priority.HIGH);
      const t0 = performance.now();
      await q.push(a, DELAY);
      // not yet: a short lease sees nothing, and an immediate job overtakes the delayed one
      expect(await leaseWithin(q, ch, 20)).toBeUndefined();
      const b = item(ch, Priority.LOW);
      await q.push(b);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(b.job.id!.value);
      // then it arrives, not earlier than its delay
      const l = await leaseWithin(q, ch, 2000);
      const elapsed = performance.now() - t0;
      expect(idOf(l)).toBe(a.job.id!.value);
      expect(elapsed).toBeGreaterThanOrEqual(DELAY - 5);
      expect(await leaseWithin(q, ch, 30)).toBeUndefined(); // delivered once
    });

    it("a delayed job that came due while nobody leased is waiting for the next lease", async () => {
      const ch = newChannel("due");
      const a = item(ch);
      await q.push(a, 20);
      await sleep(80);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(a.job.id!.value);
    });

    it("remove takes out a pending job", async () => {
      const ch = newChannel("rm-pending");
      const a = item(ch);
      const b = item(ch);
      const c = item(ch);
      for (const x of [a, b, c]) await q.push(x);
      expect(await q.remove(b.job.id!.value)).toBe(true);
      expect(await q.remove(b.job.id!.value)).toBe(false); // already gone
      if (peeks) expect((await q.list(ch, 100)).map(idOf)).toEqual([a.job.id!.value, c.job.id!.value]);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(a.job.id!.value);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(c.job.id!.value);
      expect(await leaseWithin(q, ch, 30)).toBeUndefined();
    });

    it("remove takes out a delayed job: it is never delivered", async () => {
      const ch = newChannel("rm-delayed");
      const a = item(ch);
      await q.push(a, 40);
      expect(await q.remove(a.job.id!.value)).toBe(true);
      expect(await q.list(ch, 100)).toEqual([]);
      expect(await leaseWithin(q, ch, 120)).toBeUndefined(); // well past its due time
      expect(await q.remove(a.job.id!.value)).toBe(false);
    });

    it("occurrences of one job id wait side by side (periodic jobs): each delayed push is delivered", async () => {
      const ch = newChannel("occurrences");
      const id = newId();
      const first = item(ch, Priority.MEDIUM, id);
      const second = item(ch, Priority.MEDIUM, id);
      second.job.data!.runAfterTime = 42n; // tell the occurrences apart
      await q.push(first, 20);
      await q.push(second, 40); // must not replace the first one
      const a = await leaseWithin(q, ch, 1000);
      const b = await leaseWithin(q, ch, 1000);
      expect(idOf(a)).toBe(id);
      expect(idOf(b)).toBe(id);
      expect([a!.item.job.data!.runAfterTime, b!.item.job.data!.runAfterTime]).toEqual([0n, 42n]);
      expect(await leaseWithin(q, ch, 30)).toBeUndefined();
    });

    it("remove takes out every waiting occurrence of the job, pending and delayed", async () => {
      const ch = newChannel("rm-all");
      const id = newId();
      const keep = item(ch);
      await q.push(item(ch, Priority.MEDIUM, id));
      await q.push(keep);
      await q.push(item(ch, Priority.MEDIUM, id));
      await q.push(item(ch, Priority.HIGH, id));
      await q.push(item(ch, Priority.MEDIUM, id), 30);
      await q.push(item(ch, Priority.MEDIUM, id), 40);
      expect(await q.remove(id)).toBe(true);
      if (peeks) expect((await q.list(ch, 100)).map(idOf)).toEqual([keep.job.id!.value]);
      expect(idOf(await leaseWithin(q, ch, 1000))).toBe(keep.job.id!.value);
      expect(await leaseWithin(q, ch, 100)).toBeUndefined(); // past the delays: nothing of the removed job
      expect(await q.remove(id)).toBe(false);
    });

    it("remove returns false for an unknown id and for a job already leased", async () => {
      const ch = newChannel("rm-unknown");
      if (peeks) expect(await q.remove(newId())).toBe(false);
      const a = item(ch);
      await q.push(a);
      const l = await leaseWithin(q, ch, 1000);
      expect(idOf(l)).toBe(a.job.id!.value);
      // a backend that cannot peek only marks the job; the holder of the lease keeps it either way
      if (peeks) expect(await q.remove(a.job.id!.value)).toBe(false);
      else await q.remove(a.job.id!.value);
      await expect(q.ack(l!)).resolves.toBe(true);
    });

    it("list shows pending jobs in delivery order, delayed ones after, without consuming them", async () => {
      const ch = newChannel("list");
      const other = newChannel("list-other");
      const low1 = item(ch, Priority.LOW);
      const high1 = item(ch, Priority.HIGH);
      const med1 = item(ch, Priority.MEDIUM);
      const high2 = item(ch, Priority.HIGH);
      const low2 = item(ch, Priority.LOW);
      const d1 = item(ch, Priority.HIGH);
      const d2 = item(ch, Priority.HIGH);
      const elsewhere = item(other, Priority.HIGH);
      await q.push(d1, 5_000);
      await q.push(low1);
      await q.push(high1);
      await q.push(d2, 6_000);
      await q.push(med1);
      await q.push(high2);
      await q.push(low2);
      await q.push(elsewhere);

      const pendingOrder = [high1, high2, med1, low1, low2].map((x) => x.job.id!.value);
      if (peeks) {
        const listed = await q.list(ch, 100);
        expect(listed.map(idOf).slice(0, 5)).toEqual(pendingOrder);
        expect(new Set(listed.map(idOf).slice(5))).toEqual(new Set([d1.job.id!.value, d2.job.id!.value]));
        expect(listed).toHaveLength(7);
        expect(listed.every((x) => x.channel === ch)).toBe(true);
        const l0 = listed[0];
        expect(equals(JobSchema, l0.job, high1.job)).toBe(true);

        expect((await q.list(ch, 3)).map(idOf)).toEqual(pendingOrder.slice(0, 3));

        const all = (await q.list(undefined, 1000)).map(idOf);
        for (const x of [...pendingOrder, d1.job.id!.value, d2.job.id!.value, elsewhere.job.id!.value]) expect(all).toContain(x);
      } else expect(await q.list(ch, 100)).toEqual([]); // no view injected: nothing to show

      // listing consumed nothing: the jobs are still delivered in the listed order
      for (const want of pendingOrder) expect(idOf(await leaseWithin(q, ch, 1000))).toBe(want);
      if (peeks) expect((await q.list(ch, 100)).map(idOf).sort()).toEqual([d1.job.id!.value, d2.job.id!.value].sort());
    });

    it("many concurrent leasers each get distinct jobs: none duplicated, none lost", async () => {
      const ch = newChannel("concurrent");
      const N = 200;
      const LEASERS = 8;
      const items = Array.from({ length: N }, (_, i) => item(ch, [Priority.LOW, Priority.MEDIUM, Priority.HIGH][i % 3]));
      // half queued before the leasers start, half pushed concurrently while they wait
      await Promise.all(items.slice(0, N / 2).map((x) => q.push(x)));

      const ac = new AbortController();
      const guard = setTimeout(() => ac.abort(), 10_000);
      let total = 0;
      const leaser = async () => {
        const mine: bigint[] = [];
        while (!ac.signal.aborted) {
          const l = await q.lease(ch, ac.signal);
          if (!l) break;
          mine.push(l.item.job.id!.value);
          await q.ack(l);
          if (++total === N) ac.abort();
        }
        return mine;
      };
      const running = Array.from({ length: LEASERS }, leaser);
      // the rest arrives while leasers wait: in bursts, some as concurrent pushes, yielding in between
      const rest = items.slice(N / 2);
      for (let i = 0; i < rest.length; i += 4) {
        await Promise.all(rest.slice(i, i + 4).map((x) => q.push(x)));
        await new Promise((r) => setImmediate(r));
      }
      const got = await Promise.all(running);
      clearTimeout(guard);

      const flat = got.flat();
      expect(flat).toHaveLength(N);
      expect(new Set(flat).size).toBe(N);
      expect(new Set(flat)).toEqual(new Set(items.map((x) => x.job.id!.value)));
      expect(await leaseWithin(q, ch, 30)).toBeUndefined();
    });

    it("ack and extend succeed for the current lease, and an acked job is not delivered again", async () => {
      const ch = newChannel("ack");
      const a = item(ch);
      await q.push(a);
      const l = await leaseWithin(q, ch, 1000);
      expect(idOf(l)).toBe(a.job.id!.value);
      await expect(q.extend(l!, 30_000)).resolves.toBe(true);
      await expect(q.ack(l!)).resolves.toBe(true);
      await expect(q.ack(l!), "a second ack of the same lease").resolves.toBe(false);
      expect(await leaseWithin(q, ch, LEASE_MS + 200), "not re-delivered after its lease time").toBeUndefined();
    });

    it("a lease that runs out re-delivers the job; the old lease can then neither ack, extend nor requeue", async () => {
      const ch = newChannel("expire");
      const a = item(ch);
      await q.push(a);
      const first = await leaseWithin(q, ch, 1000);
      expect(idOf(first)).toBe(a.job.id!.value);
      expect(await leaseWithin(q, ch, LEASE_MS / 3), "not before the lease runs out").toBeUndefined();
      const second = await leaseWithin(q, ch, LEASE_MS * 5);
      expect(idOf(second), "delivered again after the lease ran out").toBe(a.job.id!.value);
      expect(second!.token).not.toBe(first!.token);
      await expect(q.ack(first!)).resolves.toBe(false);
      await expect(q.extend(first!, 30_000)).resolves.toBe(false);
      await expect(q.requeue(first!, item(ch), 0)).resolves.toBe(false);
      expect(await leaseWithin(q, ch, 50), "a refused requeue enqueues nothing").toBeUndefined();
      await expect(q.ack(second!)).resolves.toBe(true);
    });

    it("extend keeps a lease alive past its original length", async () => {
      const ch = newChannel("extend");
      await q.push(item(ch));
      const l = await leaseWithin(q, ch, 1000);
      for (let i = 0; i < 4; i++) {
        await sleep(LEASE_MS / 2);
        await expect(q.extend(l!, LEASE_MS)).resolves.toBe(true);
      }
      expect(await leaseWithin(q, ch, LEASE_MS / 2), "still held after twice its length").toBeUndefined();
      await expect(q.ack(l!)).resolves.toBe(true);
    });

    it("requeue acks the lease and enqueues the retry (after its delay) in one step", async () => {
      const ch = newChannel("requeue");
      const a = item(ch);
      await q.push(a);
      const l = await leaseWithin(q, ch, 1000);
      const retry: QueuedJob = { ...a, job: job(a.job.id!.value) };
      retry.job.data!.retried = 3;
      const t0 = Date.now();
      await expect(q.requeue(l!, retry, 120)).resolves.toBe(true);
      await expect(q.ack(l!), "the lease is gone after requeue").resolves.toBe(false);
      const again = await leaseWithin(q, ch, 2000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(115);
      expect(idOf(again)).toBe(a.job.id!.value);
      expect(again!.item.job.data!.retried).toBe(3);
      await q.ack(again!);
      expect(await leaseWithin(q, ch, LEASE_MS + 200), "exactly one delivery of the retry").toBeUndefined();
    });

    // ---- weighted sub-queues: tryLease (non-blocking) and waitForWork (idle wait), see core/weighted.ts

    /** tryLease until it returns a job or the deadline passes (a backend may need a moment to make a push visible). */
    const tryLeaseWithin = async (channel: string, ms: number): Promise<Lease | undefined> => {
      const until = Date.now() + ms;
      for (;;) {
        const l = await q.tryLease(channel);
        if (l || Date.now() > until) return l;
        await sleep(20);
      }
    };

    it("tryLease answers undefined for an empty channel (without waiting for a push)", async () => {
      const ch = newChannel("try-empty");
      expect(await q.tryLease(ch)).toBeUndefined();
      // a push made after the empty answer is still there for the next lease
      const a = item(ch);
      await q.push(a);
      const l = await tryLeaseWithin(ch, 5000);
      expect(idOf(l)).toBe(a.job.id!.value);
      await q.ack(l!);
    });

    it("tryLease serves sub-queue channels (`name:sub`) in strict priority order, independent of the bare channel", async () => {
      const base = newChannel("try-prio");
      const ch = `${base}:high`;
      const pushed = [item(ch, Priority.LOW), item(ch, Priority.HIGH), item(ch, Priority.MEDIUM), item(ch, Priority.HIGH)];
      const bare = item(base, Priority.HIGH);
      await q.push(bare);
      for (const p of pushed) await q.push(p);
      const want = [pushed[1], pushed[3], pushed[2], pushed[0]].map((x) => x.job.id!.value);
      const got: bigint[] = [];
      for (let i = 0; i < want.length; i++) {
        const l = await tryLeaseWithin(ch, 5000);
        expect(l, `job ${i} of the sub-queue`).toBeDefined();
        expect(l!.item.channel).toBe(ch);
        got.push(l!.item.job.id!.value);
        await q.ack(l!);
      }
      expect(got).toEqual(want);
      expect(await q.tryLease(ch), "drained: nothing delivered twice").toBeUndefined();
      expect(idOf(await tryLeaseWithin(base, 5000)), "the bare channel keeps its own job").toBe(bare.job.id!.value);
    });

    it("a tryLease lease is a normal lease: extend, requeue and ack work on it, and a lapsed one is delivered again", async () => {
      const ch = newChannel("try-lease");
      const a = item(ch);
      await q.push(a);
      const l = await tryLeaseWithin(ch, 5000);
      expect(idOf(l)).toBe(a.job.id!.value);
      await expect(q.extend(l!, 30_000)).resolves.toBe(true);
      await expect(q.requeue(l!, a, 0)).resolves.toBe(true);
      const again = await tryLeaseWithin(ch, 5000);
      expect(idOf(again), "the requeued job").toBe(a.job.id!.value);
      // let this lease lapse: the job comes back
      const third = await tryLeaseWithin(ch, LEASE_MS * 20);
      expect(idOf(third), "delivered again after the lease ran out").toBe(a.job.id!.value);
      await expect(q.ack(again!)).resolves.toBe(false);
      await expect(q.ack(third!)).resolves.toBe(true);
    });

    it("tryLease does not hand out a delayed job before its delay", async () => {
      const ch = newChannel("try-delay");
      const a = item(ch);
      const t0 = Date.now();
      await q.push(a, 300);
      expect(await q.tryLease(ch)).toBeUndefined();
      const l = await tryLeaseWithin(ch, 10_000);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(295);
      expect(idOf(l)).toBe(a.job.id!.value);
      await q.ack(l!);
    });

    it("concurrent tryLease calls get distinct jobs: none duplicated, none lost", async () => {
      const ch = newChannel("try-concurrent");
      const items = Array.from({ length: 60 }, (_, i) => item(ch, [Priority.LOW, Priority.MEDIUM, Priority.HIGH][i % 3]));
      await Promise.all(items.map((x) => q.push(x)));
      const got: bigint[] = [];
      const until = Date.now() + 10_000;
      while (got.length < items.length && Date.now() < until) {
        const batch = await Promise.all(Array.from({ length: 16 }, () => q.tryLease(ch)));
        for (const l of batch) if (l) (got.push(l.item.job.id!.value), await q.ack(l));
      }
      expect(got).toHaveLength(items.length);
      expect(new Set(got)).toEqual(new Set(items.map((x) => x.job.id!.value)));
      expect(await q.tryLease(ch)).toBeUndefined();
    });

    it("waitForWork returns by maxWaitMs, at once on an aborted signal, and never takes a job", async () => {
      const ch1 = newChannel("wait-a");
      const ch2 = newChannel("wait-b");
      const done = (p: Promise<void>) => p.then(() => true);
      // nothing queued: it still returns (here within a generous bound of its 100 ms)
      expect(await Promise.race([done(q.waitForWork([ch1, ch2], 100, new AbortController().signal)), sleep(10_000).then(() => false)])).toBe(true);
      const aborted = AbortSignal.abort();
      expect(await Promise.race([done(q.waitForWork([ch1, ch2], 60_000, aborted)), sleep(10_000).then(() => false)])).toBe(true);
      const ac = new AbortController();
      const waiting = done(q.waitForWork([ch1, ch2], 60_000, ac.signal));
      const a = item(ch2);
      await q.push(a);
      setTimeout(() => ac.abort(), 100);
      expect(await Promise.race([waiting, sleep(10_000).then(() => false)])).toBe(true);
      const l = await tryLeaseWithin(ch2, 5000);
      expect(idOf(l), "the job is still there after the wait").toBe(a.job.id!.value);
      await q.ack(l!);
    });
  });
}

/**
 * For adapters that watch their queues (memory, Redis): waitForWork wakes on a push to any of its channels long
 * before maxWaitMs. An adapter that sleeps instead (allowed by the port) does not run this.
 */
export function describeWaitForWorkWakes(name: string, open: () => Promise<JobQueue>) {
  describe(`JobQueue waitForWork wakes on pushes: ${name}`, () => {
    it("a push to one of the channels (or a delayed job coming due) ends the wait", async () => {
      const q = await open();
      try {
        const ch1 = newChannel("wake-a");
        const ch2 = `${newChannel("wake-b")}:low`;
        const MAX = 60_000;
        const t0 = Date.now();
        const waiting = q.waitForWork([ch1, ch2], MAX, new AbortController().signal);
        await sleep(50);
        await q.push(item(ch2));
        // 8 s: far above a wake-up (milliseconds), far below maxWaitMs and the adapter's own poll (open it with a long one)
        await Promise.race([waiting, sleep(8_000).then(() => Promise.reject(new Error("waitForWork did not wake on the push")))]);
        expect(Date.now() - t0).toBeLessThan(MAX);
        expect(await q.tryLease(ch2)).toBeDefined();

        // a delayed job: the wait ends once it is due (an empty tryLease first, as the weighted leaser does)
        await q.push(item(ch1), 200);
        expect(await q.tryLease(ch1)).toBeUndefined();
        const t1 = Date.now();
        await Promise.race([
          q.waitForWork([ch1, ch2], MAX, new AbortController().signal),
          sleep(8_000).then(() => Promise.reject(new Error("waitForWork did not wake when the delayed job came due"))),
        ]);
        expect(Date.now() - t1).toBeLessThan(MAX);
      } finally {
        await q.close();
      }
    });
  });
}
