// A Redis leader lock: SET NX PX to take it, compare-and-expire to renew, compare-and-delete to release,
// so only the holder (identified by a random token) can extend or drop it.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { LeaderLock } from "../../core/ports.js";

const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class RedisLeaderLock implements LeaderLock {
  private readonly token = randomUUID();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
  ) {}

  async acquire(ttlMs: number): Promise<boolean> {
    if ((await this.redis.set(this.key, this.token, "PX", ttlMs, "NX")) === "OK") return true;
    return this.renew(ttlMs);
  }

  async renew(ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key, this.token, ttlMs)) === 1;
  }

  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key, this.token);
  }
}
