// Snowflake ids as jobworkerp-rs makes them: (ms since the Twitter epoch) << 22 | node(10 bits) << 12 | sequence(12 bits).
import { afterEach, describe, expect, it, vi } from "vitest";
import { nodeFromHostIp, SnowflakeGenerator, snowflakeTime } from "../../worker-container/src/core/ids.js";

const TWITTER_EPOCH = 1288834974657;
const nodeOf = (id: bigint) => (id >> 12n) & 0x3ffn;
const seqOf = (id: bigint) => id & 0xfffn;

afterEach(() => {
  vi.restoreAllMocks();
});

describe("SnowflakeGenerator", () => {
  it("puts ms since the Twitter epoch in the top bits: snowflakeTime decodes back to ≈ now", () => {
    const g = new SnowflakeGenerator(5n);
    const before = Date.now();
    const id = g.next();
    const after = Date.now();
    expect(snowflakeTime(id)).toBeGreaterThanOrEqual(before);
    expect(snowflakeTime(id)).toBeLessThanOrEqual(after + 1);
    expect(Number(id >> 22n)).toBe(snowflakeTime(id) - TWITTER_EPOCH);
    expect(id).toBeGreaterThan(2n ** 53n); // today's ids do not fit a JS number exactly
    expect(id).toBeLessThan(2n ** 63n); // ...but fit an int64
  });

  it("encodes exactly the layout with a fixed clock", () => {
    const t = 1_700_000_000_123;
    vi.spyOn(Date, "now").mockReturnValue(t);
    const g = new SnowflakeGenerator(0x2abn);
    expect(g.next()).toBe((BigInt(t - TWITTER_EPOCH) << 22n) | (0x2abn << 12n) | 0n);
    expect(g.next()).toBe((BigInt(t - TWITTER_EPOCH) << 22n) | (0x2abn << 12n) | 1n);
  });

  it("carries the node in bits 12..21", () => {
    for (const node of [0n, 1n, 512n, 1023n]) {
      const g = new SnowflakeGenerator(node);
      for (let i = 0; i < 5; i++) expect(nodeOf(g.next())).toBe(node);
    }
  });

  it("is strictly increasing and unique across 10,000 calls in a tight loop", () => {
    const g = new SnowflakeGenerator(77n);
    const ids: bigint[] = new Array(10_000);
    for (let i = 0; i < ids.length; i++) ids[i] = g.next();
    for (let i = 1; i < ids.length; i++) {
      if (!(ids[i] > ids[i - 1])) expect.fail(`id #${i} ${ids[i]} is not greater than #${i - 1} ${ids[i - 1]}`);
    }
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of [ids[0], ids[5000], ids[9999]]) expect(nodeOf(id)).toBe(77n);
    // sequence counts up within a ms and restarts at 0 in the next one
    for (let i = 1; i < ids.length; i++) {
      const same = ids[i] >> 22n === ids[i - 1] >> 22n;
      const want = same ? seqOf(ids[i - 1]) + 1n : 0n;
      if (seqOf(ids[i]) !== want) expect.fail(`id #${i}: sequence ${seqOf(ids[i])}, expected ${want}`);
    }
    // borrowing ms for bursts stays close to real time
    expect(snowflakeTime(ids[9999])).toBeLessThanOrEqual(Date.now() + 5);
  });

  it("borrows the next ms when 4096 ids are made within one ms", () => {
    const t = 1_700_000_000_000;
    vi.spyOn(Date, "now").mockReturnValue(t);
    const g = new SnowflakeGenerator(3n);
    const ids = Array.from({ length: 4097 }, () => g.next());
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    expect(snowflakeTime(ids[4095])).toBe(t);
    expect(seqOf(ids[4095])).toBe(4095n);
    expect(snowflakeTime(ids[4096])).toBe(t + 1);
    expect(seqOf(ids[4096])).toBe(0n);
  });

  it("stays monotonic when the clock goes back", () => {
    const now = vi.spyOn(Date, "now").mockReturnValue(1_700_000_000_500);
    const g = new SnowflakeGenerator(9n);
    const a = g.next();
    now.mockReturnValue(1_700_000_000_100); // clock stepped back 400 ms
    const b = g.next();
    const c = g.next();
    expect(b > a).toBe(true);
    expect(c > b).toBe(true);
  });

  it("rejects a node out of 0..1023", () => {
    expect(() => new SnowflakeGenerator(1024n)).toThrow(RangeError);
    expect(() => new SnowflakeGenerator(-1n)).toThrow(RangeError);
    expect(() => new SnowflakeGenerator(0n)).not.toThrow();
    expect(() => new SnowflakeGenerator(1023n)).not.toThrow();
  });

  it("derives a default node in range", () => {
    const node = nodeFromHostIp();
    expect(node).toBeGreaterThanOrEqual(0n);
    expect(node).toBeLessThanOrEqual(1023n);
    expect(nodeOf(new SnowflakeGenerator().next())).toBe(node);
  });
});
