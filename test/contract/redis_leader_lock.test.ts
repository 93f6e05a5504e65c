// The Redis leader lock: one holder at a time; a silent holder loses it after its TTL; only the holder renews or releases.
import { Redis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import { RedisLeaderLock } from "../../worker-container/src/adapters/redis/leader_lock.js";

const clients: Redis[] = [];
const client = () => {
  const c = new Redis(inject("redisUrl"));
  clients.push(c);
  return c;
};
afterAll(() => clients.forEach((c) => c.disconnect()));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("RedisLeaderLock", () => {
  it("admits one holder, hands over after a silent holder's TTL, and ignores renew/release by others", async () => {
    const key = `test:leader:${process.pid}:${Date.now()}`;
    const a = new RedisLeaderLock(client(), key);
    const b = new RedisLeaderLock(client(), key);
    expect(await a.acquire(300)).toBe(true);
    expect(await a.acquire(300), "re-acquiring our own lock renews it").toBe(true);
    expect(await b.acquire(300)).toBe(false);
    expect(await b.renew(300)).toBe(false);
    await b.release(); // not the holder: no effect
    expect(await b.acquire(300)).toBe(false);
    await sleep(150);
    expect(await a.renew(300)).toBe(true);
    await sleep(200);
    expect(await b.acquire(300), "a renewed lock outlives its first TTL").toBe(false);
    await sleep(350); // a goes silent
    expect(await b.acquire(300), "taken over after the TTL").toBe(true);
    expect(await a.renew(300), "the old holder learns it lost the lock").toBe(false);
    await b.release();
    expect(await a.acquire(300), "free again after release").toBe(true);
  });
});
