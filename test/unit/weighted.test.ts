// Weighted sub-queues: the picker (smooth weighted round robin), the leaser over real queues (memory and Redis),
// and the channel configuration (WORKER_CHANNEL_WEIGHTS, CHANNELS_CONFIG).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { create } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import { MemoryJobQueue } from "../../worker-container/src/adapters/memory/job_queue.js";
import { RedisJobQueue } from "../../worker-container/src/adapters/redis/job_queue.js";
import { ConfigError, parseChannels } from "../../worker-container/src/cli/config.js";
import type { JobQueue, QueuedJob } from "../../worker-container/src/core/ports.js";
import { servedChannels, WeightedLeaser, WeightedPicker, weightedMembers } from "../../worker-container/src/core/weighted.js";
import { Priority } from "../../worker-container/src/gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../worker-container/src/gen/jobworkerp/data/job_pb.js";

const DEFAULT = "__default_job_channel__";

describe("WeightedPicker", () => {
  const run = (p: WeightedPicker, n: number, empty = new Set<number>()) => {
    const out: number[] = [];
    while (out.length < n) {
      const skip = new Set<number>();
      for (let pick = p.pick(skip); pick; pick = p.pick(skip)) {
        if (!empty.has(pick.index)) {
          out.push(pick.index);
          break;
        }
        pick.undo();
        skip.add(pick.index);
      }
    }
    return out;
  };

  it("serves weights 9:3 exactly 3:1 in every 12 picks, never two of the light one in a row", () => {
    const seq = run(new WeightedPicker([{ channel: "a", weight: 9 }, { channel: "b", weight: 3 }]), 1200);
    for (let i = 0; i < seq.length; i += 12) expect(seq.slice(i, i + 12).filter((x) => x === 1)).toHaveLength(3);
    expect(seq.join("")).not.toContain("11");
  });

  it("an empty member's share goes to the others, and it earns no credit to burst with later", () => {
    const p = new WeightedPicker([{ channel: "a", weight: 9 }, { channel: "b", weight: 3 }]);
    expect(new Set(run(p, 500, new Set([0])))).toEqual(new Set([1])); // a empty: b gets every lease
    const after = run(p, 120); // a fills up: back to 3:1 at once, no run of a's paying back its idle time
    for (let i = 0; i < after.length; i += 12) expect(after.slice(i, i + 12).filter((x) => x === 1)).toHaveLength(3);
  });

  it("rejects weights below 1 and an empty member list", () => {
    expect(() => new WeightedPicker([{ channel: "a", weight: 0 }])).toThrow(/integer >= 1/);
    expect(() => new WeightedPicker([])).toThrow(/at least one/);
  });
});

// ---------------------------------------------------------------- the leaser over real queues

const redisClients: Redis[] = [];
afterAll(() => redisClients.forEach((c) => c.disconnect()));

let nextId = (1n << 60n) + BigInt(Date.now()) * 4096n;
const item = (channel: string, priority = Priority.MEDIUM): QueuedJob => ({
  job: create(JobSchema, { id: { value: nextId++ }, data: { priority, args: new Uint8Array([1]) } }),
  channel,
});

const backends: [string, () => JobQueue][] = [
  ["memory", () => new MemoryJobQueue()],
  [
    "redis",
    () => {
      const c = new Redis(inject("redisUrl"));
      redisClients.push(c);
      return new RedisJobQueue(c, { prefix: `test-weighted-${process.pid}-${Date.now()}-${nextId}`, pollMs: 30_000 });
    },
  ],
];

describe.each(backends)("WeightedLeaser on %s", (_name, open) => {
  it("with both sub-queues full, weights 9:3 serve 3:1 (± 10 %) over 600 leases by 4 loops", async () => {
    const q = open();
    const base = `infer-${nextId}`;
    const members = weightedMembers(base, [{ name: "high", weight: 9 }, { name: "low", weight: 3 }]);
    for (const sub of ["high", "low"]) for (let i = 0; i < 600; i++) await q.push(item(`${base}:${sub}`));
    const leaser = new WeightedLeaser(q, members);
    const stop = new AbortController();
    const served: string[] = [];
    const loop = async () => {
      while (served.length < 600) {
        const l = await leaser.lease(stop.signal);
        if (!l) return;
        served.push(l.item.channel);
        await q.ack(l);
      }
    };
    await Promise.all([loop(), loop(), loop(), loop()]);
    const first = served.slice(0, 600);
    const high = first.filter((c) => c.endsWith(":high")).length;
    const low = first.filter((c) => c.endsWith(":low")).length;
    expect(high + low).toBe(600);
    const ratio = high / low;
    console.log(`[weighted ${_name}] first 600 leases: high ${high}, low ${low}, ratio ${ratio.toFixed(3)}`);
    expect(ratio).toBeGreaterThanOrEqual(2.7);
    expect(ratio).toBeLessThanOrEqual(3.3);
    await q.close();
  });

  it("serves an only-busy sub-queue alone (the idle ones' share), then waits and wakes on a push, strict priority inside", async () => {
    const q = open();
    const base = `idle-${nextId}`;
    const leaser = new WeightedLeaser(q, weightedMembers(base, [{ name: "high", weight: 9 }, { name: "low", weight: 3 }]), 30_000);
    const lows = [item(`${base}:low`, Priority.LOW), item(`${base}:low`, Priority.HIGH), item(`${base}:low`)];
    for (const x of lows) await q.push(x);
    const stop = new AbortController();
    const got: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const l = await leaser.lease(stop.signal);
      got.push(l!.item.job.id!.value);
      await q.ack(l!);
    }
    expect(got).toEqual([lows[1], lows[2], lows[0]].map((x) => x.job.id!.value));

    // all empty: the loops wait (one shared wait) until a push reaches any member, the bare channel included
    const waiting = [leaser.lease(stop.signal), leaser.lease(stop.signal)];
    const bare = item(base);
    await q.push(bare);
    const first = await Promise.race(waiting);
    expect(first?.item.job.id!.value).toBe(bare.job.id!.value);
    await q.ack(first!);
    stop.abort();
    const rest = await Promise.all(waiting);
    expect(rest.filter(Boolean)).toHaveLength(1); // the other loop ends with undefined on abort
    await q.close();
  });
});

// ---------------------------------------------------------------- configuration

describe("channel weights configuration", () => {
  const base = { WORKER_DEFAULT_CONCURRENCY: "2" };

  it("WORKER_CHANNEL_WEIGHTS splits a served channel into weighted sub-queues (bare channel last, smallest weight)", () => {
    const chs = parseChannels({ ...base, WORKER_CHANNELS: "inference", WORKER_CHANNEL_CONCURRENCIES: "3", WORKER_CHANNEL_WEIGHTS: "inference:high=9, inference:low=3, other:x=5" });
    const inf = chs.find((c) => c.name === "inference")!;
    expect(inf.concurrency).toBe(3);
    expect(inf.subQueues).toEqual([
      { channel: "inference:high", weight: 9 },
      { channel: "inference:low", weight: 3 },
      { channel: "inference", weight: 3 },
    ]);
    expect(chs.find((c) => c.name === DEFAULT)?.subQueues).toBeUndefined();
    expect(servedChannels(chs).map((c) => `${c.name}=${c.concurrency}`)).toEqual([`${DEFAULT}=2`, "inference=3", "inference:high=3", "inference:low=3"]);
  });

  it("bad weights are clear config errors", () => {
    const bad = (w: string) => () => parseChannels({ ...base, WORKER_CHANNELS: "inference", WORKER_CHANNEL_WEIGHTS: w });
    expect(bad("inference:high=0")).toThrow(ConfigError);
    expect(bad("inference:high=0")).toThrow(/weight of 'inference:high' must be an integer in 1..1000, got '0'/);
    expect(bad("inference:high=1.5")).toThrow(/integer in 1..1000/);
    expect(bad("inference=9")).toThrow(/<channel>:<sub-queue>=<weight>/);
    expect(bad("inference:high")).toThrow(/<channel>:<sub-queue>=<weight>/);
    expect(bad("inference:hi gh=2")).toThrow(/sub-queue name/);
    expect(bad("inference:high=2,inference:high=3")).toThrow(/given twice/);
  });

  it("CHANNELS_CONFIG gives concurrency (unless WORKER_CHANNEL_CONCURRENCIES has one) and sub-queues; env weights win", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "channels-config-"));
    const file = path.join(dir, "channels.json");
    fs.writeFileSync(file, JSON.stringify({ channels: [{ name: "llm", concurrency: 4, subQueues: [{ name: "high", weight: 9 }, { name: "low", weight: 3 }] }, { name: "batch", concurrency: 6 }] }));
    const chs = parseChannels({ ...base, CHANNELS_CONFIG: file, WORKER_CHANNELS: "llm,batch,llm:high" });
    expect(chs.map((c) => [c.name, c.concurrency, c.subQueues?.map((s) => `${s.channel}=${s.weight}`)])).toEqual([
      [DEFAULT, 2, undefined],
      ["llm", 4, ["llm:high=9", "llm:low=3", "llm=3"]],
      ["batch", 6, undefined],
      ["llm:high", 4, undefined], // serving one sub-queue alone is a plain channel
    ]);
    const explicit = parseChannels({ ...base, CHANNELS_CONFIG: file, WORKER_CHANNELS: "llm", WORKER_CHANNEL_CONCURRENCIES: "1", WORKER_CHANNEL_WEIGHTS: "llm:a=1,llm:b=2" });
    expect(explicit[1]).toEqual({ name: "llm", concurrency: 1, subQueues: [{ channel: "llm:a", weight: 1 }, { channel: "llm:b", weight: 2 }, { channel: "llm", weight: 1 }] });
  });

  it("an unreadable or invalid CHANNELS_CONFIG is a clear config error naming the file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "channels-config-"));
    const missing = path.join(dir, "nope.json");
    expect(() => parseChannels({ CHANNELS_CONFIG: missing })).toThrow(ConfigError);
    expect(() => parseChannels({ CHANNELS_CONFIG: missing })).toThrow(new RegExp(`CHANNELS_CONFIG '${missing}'`));
    const zero = path.join(dir, "zero.json");
    fs.writeFileSync(zero, JSON.stringify({ channels: [{ name: "llm", subQueues: [{ name: "high", weight: 0 }] }] }));
    expect(() => parseChannels({ CHANNELS_CONFIG: zero })).toThrow(/subQueues\[0\]\.weight must be an integer in 1..1000/);
    const junk = path.join(dir, "junk.json");
    fs.writeFileSync(junk, "{ not json");
    expect(() => parseChannels({ CHANNELS_CONFIG: junk })).toThrow(ConfigError);
  });

  it("the repository's channels.json is valid", () => {
    const chs = parseChannels({ CHANNELS_CONFIG: path.join(process.cwd(), "channels.json"), WORKER_CHANNELS: "llm" });
    expect(chs.find((c) => c.name === "llm")?.subQueues?.length).toBeGreaterThan(0);
  });
});
