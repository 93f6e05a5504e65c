// Worker instances in Redis (Scalable mode: every worker process heartbeats its own instance here).
//
// Keys (B = `<prefix>:{instances}`, one cluster slot so `list` can MGET them):
//   B:i:<id>    the encoded WorkerInstance, expiring `ttlMs` after its last heartbeat
//   B:ids       zset of instance ids scored by that expiry, so `list` skips (and sweeps) dead ones
// A process that dies stops heartbeating and its instance disappears after ttlMs. The default (3 min) is six
// heartbeats at the default 30 s interval and twice the default 90 s "alive" window, so FindList can still
// show an instance that just stopped as inactive before it goes.
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ChainableCommander, Redis } from "ioredis";
import { WorkerInstanceSchema, type WorkerInstance } from "../../gen/jobworkerp/data/worker_instance_pb.js";
import type { InstanceRegistry } from "../../core/ports.js";
import { DEFAULT_PREFIX, slotBase } from "./keys.js";

export const DEFAULT_INSTANCE_TTL_MS = 180_000;

export interface RedisInstanceRegistryOptions {
  prefix?: string;
  ttlMs?: number;
}

async function execAll(p: ChainableCommander): Promise<void> {
  for (const [err] of (await p.exec()) ?? []) if (err) throw err;
}

export class RedisInstanceRegistry implements InstanceRegistry {
  private readonly base: string;
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    opts: RedisInstanceRegistryOptions = {},
  ) {
    this.base = slotBase(opts.prefix ?? DEFAULT_PREFIX, "instances");
    this.ttlMs = opts.ttlMs ?? DEFAULT_INSTANCE_TTL_MS;
  }

  private key = (id: bigint | string) => `${this.base}:i:${id}`;
  private get ids() {
    return `${this.base}:ids`;
  }

  async heartbeat(instance: WorkerInstance): Promise<void> {
    const id = instance.id!.value.toString();
    const now = Date.now();
    const bin = toBinary(WorkerInstanceSchema, instance);
    await execAll(
      this.redis
        .multi()
        .set(this.key(id), Buffer.from(bin.buffer, bin.byteOffset, bin.byteLength), "PX", this.ttlMs)
        .zadd(this.ids, now + this.ttlMs, id)
        .zremrangebyscore(this.ids, "-inf", `(${now}`)
        .pexpire(this.ids, this.ttlMs), // the index goes too once every instance is gone
    );
  }

  async list(): Promise<WorkerInstance[]> {
    const ids = await this.redis.zrangebyscore(this.ids, `(${Date.now()}`, "+inf");
    if (ids.length === 0) return [];
    const values = await this.redis.mgetBuffer(ids.map(this.key));
    return values.flatMap((v) => (v ? [fromBinary(WorkerInstanceSchema, v)] : []));
  }

  async find(id: bigint): Promise<WorkerInstance | undefined> {
    const v = await this.redis.getBuffer(this.key(id));
    return v ? fromBinary(WorkerInstanceSchema, v) : undefined;
  }

  async remove(id: bigint): Promise<void> {
    await execAll(this.redis.multi().del(this.key(id)).zrem(this.ids, id.toString()));
  }
}
