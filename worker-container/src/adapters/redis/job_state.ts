// JobState in Redis (Scalable mode: every front and worker process shares it). Every transition is one Lua
// script that checks the fencing token atomically, so a worker whose lease ran out cannot finish over a newer
// attempt. All keys live under one hash tag (one Redis Cluster slot) because the scripts move a job between
// index keys; the price is that JobState is not spread over cluster shards.
//
// Key layout (B = `<prefix>:{state}`):
//   B:e:<jobId>             hash: the JobStatusEntry (s status, w, c, p, eq, pt, st, str, bc, u, job bytes) plus
//                           tok (the current fencing token) and dl (deadline: the hash expires at it)
//   B:s:<status>            zset of job ids per status (1..4), scored by the entry's deadline: ids scored in the
//                           past belong to expired entries and are ignored (then swept)
//   B:w:<workerId>          set of job ids per worker }  indexes for findAll/count filters; members are added with
//   B:c:<channel>           set of job ids per channel}  the entry and removed when it ends (lazily if it expired)
//   B:u:<workerId>:<key>    uniq_key reservation: the holder's job id
//   B:token                 global fencing-token counter (INCR): a token is never reused, even for a new entry
//
// Entries expire so a dead process cannot leave them forever: `ttlMs` (default 24 h) after setPending or a
// retry, and ttlMs + the job's timeout after a claim (a running job must outlive its own timeout, or its
// finish would be refused as stale). Index sets and uniq_key reservations are kept one more ttlMs beyond that.
import { createHash } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ChainableCommander, Redis } from "ioredis";
import { JobProcessingStatus } from "../../gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { Claim, JobState, JobStatusEntry, JobStatusFilter } from "../../core/ports.js";
import { DEFAULT_PREFIX, slotBase } from "./keys.js";

export const DEFAULT_STATE_TTL_MS = 24 * 60 * 60 * 1000;
/** The claim's extra lifetime is capped (jobworkerp's default job timeout is one year). */
const MAX_TIMEOUT_EXTENSION_MS = 400 * 24 * 60 * 60 * 1000;
const STATUSES = [1, 2, 3, 4] as const; // PENDING, RUNNING, WAIT_RESULT, CANCELLING

export interface RedisJobStateOptions {
  prefix?: string;
  ttlMs?: number;
}

/** The claim also remembers where the job is indexed, so `finish` removes it from those sets in one trip. */
export interface RedisClaim extends Claim {
  workerId: bigint;
  channel: string;
}

// Shared by every script. KEYS[1] is the entry hash, KEYS[2..5] the status zsets; setPending/claim add
// KEYS[6] worker set, KEYS[7] channel set, KEYS[8] token counter, KEYS[9] the job's uniq_key (optional).
const PRELUDE = `
local E = KEYS[1]
local function zkey(s) return KEYS[1 + tonumber(s)] end
local function place(id, old, new, deadline)
  if old and old ~= new then redis.call('ZREM', zkey(old), id) end
  redis.call('ZADD', zkey(new), deadline, id)
  redis.call('HSET', E, 's', new, 'dl', deadline)
  redis.call('PEXPIREAT', E, deadline)
end
local function extend(k, ms)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms) end
end
local function index(id, now, deadline, margin)
  local keep = deadline + margin - now
  for i = 6, 7 do redis.call('SADD', KEYS[i], id); extend(KEYS[i], keep) end
  if KEYS[9] and redis.call('GET', KEYS[9]) == id then extend(KEYS[9], keep) end
  for s = 1, 4 do redis.call('ZREMRANGEBYSCORE', KEYS[1 + s], '-inf', '(' .. now) end
end
`;

// ARGV: id, now, deadline, margin, field/value pairs of the entry
const SET_PENDING = `${PRELUDE}
local id, now, deadline = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local old = redis.call('HGET', E, 's')
redis.call('HDEL', E, 'st')
redis.call('HSET', E, unpack(ARGV, 5))
redis.call('HSETNX', E, 'tok', 0)
place(id, old, '1', deadline)
index(id, now, deadline, tonumber(ARGV[4]))
return 1`;

// ARGV: id, now, deadline, margin, startTime, field/value pairs of the entry (used when it is missing)
const CLAIM = `${PRELUDE}
local id, now, deadline = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local old = redis.call('HGET', E, 's')
if old == '4' then return false end
if not old then redis.call('HSET', E, unpack(ARGV, 6)) end
local tok = redis.call('INCR', KEYS[8])
redis.call('HSET', E, 'tok', tok, 'st', ARGV[5], 'u', ARGV[5])
place(id, old, '2', deadline)
index(id, now, deadline, tonumber(ARGV[4]))
return tok`;

// ARGV: id, token
const MARK_WAIT_RESULT = `${PRELUDE}
local cur = redis.call('HMGET', E, 's', 'tok', 'dl')
if not cur[1] or cur[2] ~= ARGV[2] then return 0 end
if cur[1] ~= '4' then place(ARGV[1], cur[1], '3', tonumber(cur[3])) end
return 1`;

// ARGV: id, token, now (pending time), deadline
const MARK_PENDING_FOR_RETRY = `${PRELUDE}
local cur = redis.call('HMGET', E, 's', 'tok')
if not cur[1] or cur[2] ~= ARGV[2] or cur[1] == '4' then return 0 end
redis.call('HSET', E, 'pt', ARGV[3], 'u', ARGV[3])
place(ARGV[1], cur[1], '1', tonumber(ARGV[4]))
return 1`;

// KEYS[6..] (optional): index sets to leave. ARGV: id, token ('' = regardless of claims).
// Returns the entry's worker and channel so the caller can leave sets it did not know about.
const FINISH = `${PRELUDE}
local cur = redis.call('HMGET', E, 'tok', 'w', 'c')
if not cur[2] or (ARGV[2] ~= '' and cur[1] ~= ARGV[2]) then return false end
redis.call('DEL', E)
for s = 1, 4 do redis.call('ZREM', zkey(s), ARGV[1]) end
for i = 6, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
return {cur[2], cur[3]}`;

// ARGV: id. Returns the status before, or nil when unknown.
const REQUEST_CANCEL = `${PRELUDE}
local cur = redis.call('HMGET', E, 's', 'dl')
if not cur[1] then return false end
if cur[1] ~= '4' then place(ARGV[1], cur[1], '4', tonumber(cur[2])) end
return tonumber(cur[1])`;

// KEYS[1]: reservation. ARGV: job id, ttl. The holder may reserve again.
const RESERVE_UNIQ = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0`;

const RELEASE_UNIQ = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type Arg = string | number | Buffer;

/** A Lua script run by EVALSHA, loading it with EVAL when the server does not know it (yet, or after a restart). */
class Lua {
  private readonly sha: string;
  constructor(private readonly src: string) {
    this.sha = createHash("sha1").update(src).digest("hex");
  }
  async run(redis: Redis, keys: string[], args: Arg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (e) {
      if (!(e instanceof Error) || !e.message.startsWith("NOSCRIPT")) throw e;
      return redis.eval(this.src, keys.length, ...keys, ...args);
    }
  }
}

const S = {
  setPending: new Lua(SET_PENDING),
  claim: new Lua(CLAIM),
  markWaitResult: new Lua(MARK_WAIT_RESULT),
  markPendingForRetry: new Lua(MARK_PENDING_FOR_RETRY),
  finish: new Lua(FINISH),
  requestCancel: new Lua(REQUEST_CANCEL),
  reserveUniq: new Lua(RESERVE_UNIQ),
  releaseUniq: new Lua(RELEASE_UNIQ),
};

/** Runs a pipeline and returns its replies, throwing the first command error. */
async function execAll(p: ChainableCommander): Promise<unknown[]> {
  const replies = (await p.exec()) ?? [];
  for (const [err] of replies) if (err) throw err;
  return replies.map(([, r]) => r);
}

const bytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const byId = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

function fields(e: JobStatusEntry, status: JobProcessingStatus, pendingTime: bigint | undefined): Arg[] {
  const f: Arg[] = [
    "s", status, "w", e.workerId.toString(), "c", e.channel, "p", e.priority, "eq", e.enqueueTime.toString(),
    "str", e.isStreamable ? 1 : 0, "bc", e.broadcastResults ? 1 : 0, "u", e.updatedAt.toString(),
    "job", bytes(toBinary(JobSchema, e.job)),
  ];
  if (pendingTime !== undefined) f.push("pt", pendingTime.toString());
  if (e.startTime !== undefined) f.push("st", e.startTime.toString());
  return f;
}

function decode(jobId: bigint, h: Record<string, Buffer>): JobStatusEntry | undefined {
  if (!h.s || !h.job) return undefined; // gone (finished or expired)
  const str = (k: string) => h[k]?.toString();
  const big = (k: string) => (h[k] ? BigInt(h[k].toString()) : undefined);
  return {
    jobId,
    status: Number(str("s")) as JobProcessingStatus,
    workerId: big("w")!,
    channel: str("c") ?? "",
    priority: Number(str("p")),
    enqueueTime: big("eq") ?? 0n,
    pendingTime: big("pt"),
    startTime: big("st"),
    isStreamable: str("str") === "1",
    broadcastResults: str("bc") === "1",
    updatedAt: big("u") ?? 0n,
    job: fromBinary(JobSchema, h.job),
  };
}

interface Row {
  id: bigint;
  status: JobProcessingStatus;
}

export class RedisJobState implements JobState {
  private readonly base: string;
  private readonly ttlMs: number;

  constructor(
    private readonly redis: Redis,
    opts: RedisJobStateOptions = {},
  ) {
    this.base = slotBase(opts.prefix ?? DEFAULT_PREFIX, "state");
    this.ttlMs = opts.ttlMs ?? DEFAULT_STATE_TTL_MS;
  }

  private entryKey = (id: bigint | string) => `${this.base}:e:${id}`;
  private statusKey = (s: number) => `${this.base}:s:${s}`;
  private workerKey = (w: bigint | string) => `${this.base}:w:${w}`;
  private channelKey = (c: string) => `${this.base}:c:${c}`;
  private uniqKey = (w: bigint, key: string) => `${this.base}:u:${w}:${key}`;
  private statusKeys = () => STATUSES.map(this.statusKey);

  /** Keys of setPending/claim: entry, statuses, its worker and channel sets, token counter, uniq_key. */
  private entryKeys(e: JobStatusEntry): string[] {
    const keys = [this.entryKey(e.jobId), ...this.statusKeys(), this.workerKey(e.workerId), this.channelKey(e.channel), `${this.base}:token`];
    const uniq = e.job.data?.uniqKey;
    if (uniq !== undefined) keys.push(this.uniqKey(e.workerId, uniq));
    return keys;
  }

  async setPending(entry: JobStatusEntry): Promise<void> {
    const now = Date.now();
    const fs = fields(entry, JobProcessingStatus.PENDING, entry.pendingTime ?? entry.updatedAt);
    await S.setPending.run(this.redis, this.entryKeys(entry), [entry.jobId.toString(), now, now + this.ttlMs, this.ttlMs, ...fs]);
  }

  async claim(entry: JobStatusEntry, now: bigint): Promise<Claim | undefined> {
    const t = Date.now();
    const timeout = entry.job.data?.timeout ?? 0n;
    const extra = timeout > BigInt(MAX_TIMEOUT_EXTENSION_MS) ? MAX_TIMEOUT_EXTENSION_MS : Number(timeout);
    const fs = fields({ ...entry, startTime: undefined }, JobProcessingStatus.RUNNING, entry.pendingTime);
    const args = [entry.jobId.toString(), t, t + this.ttlMs + extra, this.ttlMs, now.toString(), ...fs];
    const token = await S.claim.run(this.redis, this.entryKeys(entry), args);
    if (token === null) return undefined;
    const claim: RedisClaim = { token: Number(token), workerId: entry.workerId, channel: entry.channel };
    return claim;
  }

  async markWaitResult(jobId: bigint, claim: Claim): Promise<boolean> {
    const keys = [this.entryKey(jobId), ...this.statusKeys()];
    return (await S.markWaitResult.run(this.redis, keys, [jobId.toString(), claim.token])) === 1;
  }

  async markPendingForRetry(jobId: bigint, claim: Claim, now: bigint): Promise<boolean> {
    const keys = [this.entryKey(jobId), ...this.statusKeys()];
    const args = [jobId.toString(), claim.token, now.toString(), Date.now() + this.ttlMs];
    return (await S.markPendingForRetry.run(this.redis, keys, args)) === 1;
  }

  async finish(jobId: bigint, claim: Claim): Promise<boolean> {
    const c = claim as Partial<RedisClaim>;
    const sets = c.workerId !== undefined && c.channel !== undefined ? [this.workerKey(c.workerId), this.channelKey(c.channel)] : [];
    return this.drop(jobId, String(claim.token), sets);
  }

  async remove(jobId: bigint): Promise<void> {
    await this.drop(jobId, "", []);
  }

  private async drop(jobId: bigint, token: string, sets: string[]): Promise<boolean> {
    const keys = [this.entryKey(jobId), ...this.statusKeys(), ...sets];
    const r = (await S.finish.run(this.redis, keys, [jobId.toString(), token])) as [string, string] | null;
    if (!r) return false;
    // the sets the entry was really indexed in, when the caller could not name them (or named others)
    const missed = [this.workerKey(r[0]), this.channelKey(r[1])].filter((k) => !sets.includes(k));
    if (missed.length > 0) await execAll(missed.reduce((p, k) => p.srem(k, jobId.toString()), this.redis.pipeline()));
    return true;
  }

  async requestCancel(jobId: bigint): Promise<JobProcessingStatus | undefined> {
    const keys = [this.entryKey(jobId), ...this.statusKeys()];
    const before = await S.requestCancel.run(this.redis, keys, [jobId.toString()]);
    return before === null ? undefined : (Number(before) as JobProcessingStatus);
  }

  async find(jobId: bigint): Promise<JobStatusEntry | undefined> {
    return decode(jobId, await this.redis.hgetallBuffer(this.entryKey(jobId)));
  }

  /**
   * Job ids and statuses matching the filter. Candidates come from the narrowest index (worker/channel sets,
   * else the status zsets); their status/worker/channel/start are then read and checked, and ids whose entry
   * is gone are dropped from the set they came from (entries that expired never left their sets).
   */
  private async matching(f: JobStatusFilter): Promise<Row[]> {
    const now = Date.now();
    let ids: string[];
    const sets: string[] = [];
    if (f.workerId !== undefined) sets.push(this.workerKey(f.workerId));
    if (f.channel !== undefined) sets.push(this.channelKey(f.channel));
    if (sets.length > 0) {
      ids = sets.length === 2 ? await this.redis.sinter(sets) : await this.redis.smembers(sets[0]);
    } else {
      const statuses = f.status === undefined ? STATUSES : STATUSES.filter((s) => s === f.status);
      const p = this.redis.pipeline();
      for (const s of statuses) p.zrangebyscore(this.statusKey(s), `(${now}`, "+inf");
      ids = ((await execAll(p)) as string[][]).flat();
    }
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hmget(this.entryKey(id), "s", "w", "c", "st");
    const replies = (await execAll(p)) as (string | null)[][];
    const rows: Row[] = [];
    const gone: string[] = [];
    const moved: string[] = []; // indexed under a channel it has left (its worker's channel changed between attempts)
    replies.forEach(([s, w, c, st], i) => {
      if (s === null) return void gone.push(ids[i]);
      if (f.channel !== undefined && c !== f.channel) return void moved.push(ids[i]);
      if (f.status !== undefined && Number(s) !== f.status) return;
      if (f.workerId !== undefined && w !== f.workerId.toString()) return;
      // as jobworkerp-rs: elapsed is measured from the start of running; jobs not started do not match
      if (f.minElapsedTimeMs !== undefined && (st === null || now - Number(st) < f.minElapsedTimeMs)) return;
      rows.push({ id: BigInt(ids[i]), status: Number(s) as JobProcessingStatus });
    });
    if (sets.length > 0 && gone.length + moved.length > 0) {
      const p = this.redis.pipeline();
      for (const k of sets) if (gone.length > 0) p.srem(k, ...gone);
      if (moved.length > 0) p.srem(this.channelKey(f.channel!), ...moved);
      await execAll(p);
    }
    return rows;
  }

  async findAll(f: JobStatusFilter): Promise<JobStatusEntry[]> {
    const ids = (await this.matching(f)).map((r) => r.id).sort(byId);
    if (f.descending) ids.reverse();
    const offset = f.offset ?? 0;
    const page = ids.slice(offset, f.limit === undefined ? undefined : offset + f.limit);
    if (page.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of page) p.hgetallBuffer(this.entryKey(id));
    const hashes = (await execAll(p)) as Record<string, Buffer>[];
    return hashes.flatMap((h, i) => decode(page[i], h) ?? []);
  }

  async count(f: JobStatusFilter): Promise<Map<JobProcessingStatus, number>> {
    const counts = new Map<JobProcessingStatus, number>();
    if (f.workerId === undefined && f.channel === undefined && f.minElapsedTimeMs === undefined) {
      // the status zsets alone answer it: live ids are those scored after now
      const statuses = f.status === undefined ? STATUSES : STATUSES.filter((s) => s === f.status);
      const p = this.redis.pipeline();
      for (const s of statuses) p.zcount(this.statusKey(s), `(${Date.now()}`, "+inf");
      const n = (await execAll(p)) as number[];
      statuses.forEach((s, i) => n[i] > 0 && counts.set(s, n[i]));
      return counts;
    }
    for (const r of await this.matching(f)) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
    return counts;
  }

  async reserveUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<boolean> {
    const r = await S.reserveUniq.run(this.redis, [this.uniqKey(workerId, key)], [jobId.toString(), this.ttlMs]);
    return r === 1;
  }

  async releaseUniqKey(workerId: bigint, key: string, jobId: bigint): Promise<void> {
    await S.releaseUniq.run(this.redis, [this.uniqKey(workerId, key)], [jobId.toString()]);
  }
}
