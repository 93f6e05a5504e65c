// JobState in Redis (Scalable mode: every front and worker process shares it). Every transition is one Lua
// script that checks the fencing token atomically, so a worker whose lease ran out cannot finish over a newer
// attempt. All keys live under one hash tag (one Redis Cluster slot) because the scripts move a job between
// index keys (and one script serves many jobs); the price is that JobState is not spread over cluster shards.
//
// Key layout (B = `<prefix>:{state}`):
//   B:e:<jobId>             hash: the JobStatusEntry (s status, w, c, p, eq, pt, st, str, bc, u, job bytes) plus
//                           tok (the current fencing token) and dl (deadline: the hash expires at it)
//   B:s:<status>            zset of job ids per status (1..4), scored by the entry's deadline: ids scored in the
//                           past belong to expired entries and are ignored (then swept)
//   B:w:<workerId>          set of job ids per worker }  indexes for findAll/count filters; members are added with
//   B:c:<channel>           set of job ids per channel}  the entry and removed when it ends (lazily if it expired)
//   B:u:<workerId>:<key>    uniq_key reservation: the holder's job id
//   B:token                 global fencing-token counter (INCRBY): a token is never reused, even for a new entry
//
// Entries expire so a dead process cannot leave them forever: `ttlMs` (default 24 h) after setPending or a
// retry, and ttlMs + the job's timeout after a claim (a running job must outlive its own timeout, or its
// finish would be refused as stale). Index sets and uniq_key reservations are kept (at least) one more ttlMs
// beyond that.
//
// Batching: setPending, claim and finish/remove go through Coalescers, so the calls of one event-loop turn
// (32 dispatcher loops finishing together, concurrent Enqueue RPCs) run as ONE script over all their entries.
// The script applies the entries in call order, as if each were its own script, but does the index upkeep once:
// one ZADD/ZREM/SADD/SREM per key with all members, one PTTL(/PEXPIRE) per index set or reservation, one sweep
// of the status zsets, one INCRBY for the batch's tokens: ~9 Redis commands per job instead of ~41 under load.
import { createHash } from "node:crypto";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ChainableCommander, Redis } from "ioredis";
import { JobProcessingStatus } from "../../gen/jobworkerp/data/common_pb.js";
import { JobSchema } from "../../gen/jobworkerp/data/job_pb.js";
import type { Claim, JobState, JobStatusEntry, JobStatusFilter } from "../../core/ports.js";
import { Coalescer } from "./coalescer.js";
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

// The entry scripts have the status zsets at KEYS[1..4] (KEYS[s] is the zset of status s).

// Batch scripts: KEYS[5..] hold the batch's entry hashes, index sets and reservations, each named once; the
// entries in ARGV refer to them by position (0 = none), so a set shared by 30 entries is sent and touched once.
// Index changes are collected while the entries are applied, then written with one command per key: every
// entry of a batch moves its job to the same status, so the ZREMs (from other statuses) and the ZADDs commute.
// Lua's unpack is bounded (~8000 values): batches stay at 256 entries, so a grouped command has ≤ 512 values.
const BATCH = `
local zrem, zadd, sadd, keep, uniq = {}, {}, {}, {}, {}
local function push(t, k, v)
  local l = t[k]
  if not l then l = {}; t[k] = l end
  l[#l + 1] = v
end
-- keep k for at least ms; with slack, for more, so the next batches (wanting a little more each ms) skip PEXPIRE
local function extend(k, ms, slack)
  if redis.call('PTTL', k) < ms then redis.call('PEXPIRE', k, ms + slack) end
end
-- job id moves from status old (nil: new entry) to new, until deadline
local function move(id, old, new, deadline)
  if old and old ~= new then push(zrem, old, id) end
  push(zadd, new, deadline); push(zadd, new, id)
end
-- index the job in its worker/channel sets (KEYS[w], KEYS[c]); its reservation KEYS[u] (u > 0) is kept as
-- long as the sets when the job holds it
local function index(id, w, c, u, ms)
  for _, k in ipairs({w, c}) do
    push(sadd, k, id)
    if not keep[k] or keep[k] < ms then keep[k] = ms end
  end
  if u > 0 then
    uniq[u] = uniq[u] or {}
    if not uniq[u][id] or uniq[u][id] < ms then uniq[u][id] = ms end
  end
end
local function flush(now, margin)
  for s, l in pairs(zrem) do redis.call('ZREM', KEYS[tonumber(s)], unpack(l)) end
  for s, l in pairs(zadd) do redis.call('ZADD', KEYS[tonumber(s)], unpack(l)) end
  for k, l in pairs(sadd) do redis.call('SADD', KEYS[k], unpack(l)) end
  for k, ms in pairs(keep) do extend(KEYS[k], ms, math.floor(margin / 8)) end
  for u, holders in pairs(uniq) do
    local ms = holders[redis.call('GET', KEYS[u]) or '']
    if ms then extend(KEYS[u], ms, 0) end
  end
  -- ids scored in the past belong to expired entries
  for s = 1, 4 do redis.call('ZREMRANGEBYSCORE', KEYS[s], '-inf', '(' .. now) end
end
`;

// ARGV: now, deadline, margin (index lifetime beyond the deadline), then per entry: entry, worker set, channel
// set, uniq_key (KEYS positions), id, n, then the n field/value items of the entry.
const SET_PENDING = `${BATCH}
local now, dl, margin = ARGV[1], ARGV[2], tonumber(ARGV[3])
local ms = tonumber(dl) + margin - tonumber(now)
local i = 4
while i <= #ARGV do
  local E, id, n = KEYS[tonumber(ARGV[i])], ARGV[i + 4], tonumber(ARGV[i + 5])
  local cur = redis.call('HMGET', E, 's', 'st', 'tok')
  if cur[2] then redis.call('HDEL', E, 'st') end
  if cur[3] then redis.call('HSET', E, 'dl', dl, unpack(ARGV, i + 6, i + 5 + n))
  else redis.call('HSET', E, 'tok', 0, 'dl', dl, unpack(ARGV, i + 6, i + 5 + n)) end
  redis.call('PEXPIREAT', E, dl)
  move(id, cur[1], '1', dl)
  index(id, tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), ms)
  i = i + 6 + n
end
flush(now, margin)
return 1`;

// KEYS[5]: token counter. ARGV: now, margin (index lifetime beyond the deadline), then per entry: entry,
// worker set, channel set, uniq_key (KEYS positions), id, deadline, start time, n, then n field/value items.
// n = 0 claims an existing entry only (the usual case: setPending came first); a missing one answers -1 and
// the caller sends it again with its fields (n > 0), which create it. Per entry: the token, or 0 (CANCELLING).
const CLAIM = `${BATCH}
local now, margin = ARGV[1], tonumber(ARGV[2])
local todo, out, status, n = {}, {}, {}, 0
local i = 3
while i <= #ARGV do
  local e = {E = KEYS[tonumber(ARGV[i])], id = ARGV[i + 4], f = i + 8, nf = tonumber(ARGV[i + 7]), at = i}
  -- the status as this entry finds it: read once, then as the batch's earlier entries left it
  local s = status[e.id]
  if s == nil then s = redis.call('HGET', e.E, 's') end
  status[e.id] = s
  if s == '4' then out[#out + 1] = 0
  elseif not s and e.nf == 0 then out[#out + 1] = -1
  else
    e.old, e.k = s, #out + 1
    out[#out + 1] = 0
    todo[#todo + 1] = e
    status[e.id] = '2'
    n = n + 1
  end
  i = i + 8 + e.nf
end
if n == 0 then return out end
local tok = redis.call('INCRBY', KEYS[5], n) - n
for _, e in ipairs(todo) do
  tok = tok + 1
  out[e.k] = tok
  local dl, start = ARGV[e.at + 5], ARGV[e.at + 6]
  if not e.old then redis.call('HSET', e.E, unpack(ARGV, e.f, e.f + e.nf - 1)) end
  redis.call('HSET', e.E, 'tok', tok, 'st', start, 'u', start, 's', '2', 'dl', dl)
  redis.call('PEXPIREAT', e.E, dl)
  move(e.id, e.old, '2', dl)
  local ms = tonumber(dl) + margin - tonumber(now)
  index(e.id, tonumber(ARGV[e.at + 1]), tonumber(ARGV[e.at + 2]), tonumber(ARGV[e.at + 3]), ms)
end
flush(now, margin)
return out`;

// Per entry in ARGV: entry, worker set, channel set (KEYS positions: the sets to leave, 0 = unknown), id,
// token ('' = regardless of claims). Per entry: 0 when refused, else the entry's worker and channel, so the
// caller can leave sets it did not know about. An id leaves only its current status zset: it is in no other
// one with a future score (moves ZREM the old status; members of expired entries have past scores).
const FINISH = `${BATCH}
local out, srem = {}, {}
for i = 1, #ARGV, 5 do
  local E, id, tok = KEYS[tonumber(ARGV[i])], ARGV[i + 3], ARGV[i + 4]
  local cur = redis.call('HMGET', E, 'tok', 'w', 'c', 's')
  if not cur[2] or (tok ~= '' and cur[1] ~= tok) then out[#out + 1] = 0
  else
    redis.call('DEL', E)
    if cur[4] then push(zrem, cur[4], id) else for s = 1, 4 do push(zrem, s, id) end end
    for j = 1, 2 do
      local k = tonumber(ARGV[i + j])
      if k > 0 then push(srem, k, id) end
    end
    out[#out + 1] = {cur[2], cur[3]}
  end
end
for s, l in pairs(zrem) do redis.call('ZREM', KEYS[tonumber(s)], unpack(l)) end
for k, l in pairs(srem) do redis.call('SREM', KEYS[k], unpack(l)) end
return out`;

// Single-job scripts: KEYS[5] is the entry hash.
const SINGLE = `
local E = KEYS[5]
local function place(id, old, new, deadline)
  if old and old ~= new then redis.call('ZREM', KEYS[tonumber(old)], id) end
  redis.call('ZADD', KEYS[tonumber(new)], deadline, id)
  redis.call('HSET', E, 's', new, 'dl', deadline)
  redis.call('PEXPIREAT', E, deadline)
end
`;

// ARGV: id, token
const MARK_WAIT_RESULT = `${SINGLE}
local cur = redis.call('HMGET', E, 's', 'tok', 'dl')
if not cur[1] or cur[2] ~= ARGV[2] then return 0 end
if cur[1] ~= '4' then place(ARGV[1], cur[1], '3', cur[3]) end
return 1`;

// ARGV: id, token, now (pending time), deadline
const MARK_PENDING_FOR_RETRY = `${SINGLE}
local cur = redis.call('HMGET', E, 's', 'tok')
if not cur[1] or cur[2] ~= ARGV[2] or cur[1] == '4' then return 0 end
redis.call('HSET', E, 'pt', ARGV[3], 'u', ARGV[3])
place(ARGV[1], cur[1], '1', ARGV[4])
return 1`;

// ARGV: id. Returns the status before, or nil when unknown.
const REQUEST_CANCEL = `${SINGLE}
local cur = redis.call('HMGET', E, 's', 'dl')
if not cur[1] then return false end
if cur[1] ~= '4' then place(ARGV[1], cur[1], '4', cur[2]) end
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

/** The keys of one batch script: the status zsets, then each other key once (Lua refers to them by position). */
class KeyList {
  readonly list: string[];
  private readonly pos = new Map<string, number>();
  constructor(fixed: string[]) {
    this.list = [...fixed];
  }
  /** 1-based position of the key in KEYS. */
  of(k: string): number {
    let p = this.pos.get(k);
    if (p === undefined) {
      p = this.list.push(k);
      this.pos.set(k, p);
    }
    return p;
  }
}

/** Claim script answer for an entry it could not find without its fields. */
const MISSING = -1;

interface ClaimCall {
  entry: JobStatusEntry;
  start: bigint;
  /** Send the entry's fields, so a missing entry is created. */
  full: boolean;
}

interface DropCall {
  jobId: bigint;
  token: string; // '' = regardless of claims
  /** The worker and channel the caller believes the entry is indexed under. */
  at?: { workerId: bigint; channel: string };
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
  private readonly pendings = new Coalescer((es: JobStatusEntry[]) => this.setPendingBatch(es));
  private readonly claims = new Coalescer((cs: ClaimCall[]) => this.claimBatch(cs));
  private readonly drops = new Coalescer((ds: DropCall[]) => this.dropBatch(ds));

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

  /** KEYS positions of an entry's hash, worker and channel sets, and uniq_key reservation (0: none). */
  private refs(k: KeyList, e: JobStatusEntry): number[] {
    const uniq = e.job.data?.uniqKey;
    return [
      k.of(this.entryKey(e.jobId)), k.of(this.workerKey(e.workerId)), k.of(this.channelKey(e.channel)),
      uniq === undefined ? 0 : k.of(this.uniqKey(e.workerId, uniq)),
    ];
  }

  async setPending(entry: JobStatusEntry): Promise<void> {
    await this.pendings.call(entry);
  }

  private async setPendingBatch(entries: JobStatusEntry[]): Promise<void[]> {
    const now = Date.now();
    const k = new KeyList(this.statusKeys());
    const args: Arg[] = [now, now + this.ttlMs, this.ttlMs];
    for (const e of entries) {
      const fs = fields(e, JobProcessingStatus.PENDING, e.pendingTime ?? e.updatedAt);
      args.push(...this.refs(k, e), e.jobId.toString(), fs.length, ...fs);
    }
    await S.setPending.run(this.redis, k.list, args);
    return entries.map(() => undefined);
  }

  async claim(entry: JobStatusEntry, now: bigint): Promise<Claim | undefined> {
    let token = await this.claims.call({ entry, start: now, full: false });
    // Missing (a periodic occurrence, or setPending lost): claim again with the fields that create it. What
    // happened in between (it appeared, was cancelled, ...) is seen by that second script, so the result is
    // that of one atomic claim made then.
    if (token === MISSING) token = await this.claims.call({ entry, start: now, full: true });
    if (token === 0) return undefined;
    const claim: RedisClaim = { token, workerId: entry.workerId, channel: entry.channel };
    return claim;
  }

  private async claimBatch(calls: ClaimCall[]): Promise<number[]> {
    const now = Date.now();
    const k = new KeyList([...this.statusKeys(), `${this.base}:token`]);
    const args: Arg[] = [now, this.ttlMs];
    for (const { entry, start, full } of calls) {
      const timeout = entry.job.data?.timeout ?? 0n;
      const extra = timeout > BigInt(MAX_TIMEOUT_EXTENSION_MS) ? MAX_TIMEOUT_EXTENSION_MS : Number(timeout);
      const fs = full ? fields({ ...entry, startTime: undefined }, JobProcessingStatus.RUNNING, entry.pendingTime) : [];
      const deadline = now + this.ttlMs + extra;
      args.push(...this.refs(k, entry), entry.jobId.toString(), deadline, start.toString(), fs.length, ...fs);
    }
    return (await S.claim.run(this.redis, k.list, args)) as number[];
  }

  async markWaitResult(jobId: bigint, claim: Claim): Promise<boolean> {
    const keys = [...this.statusKeys(), this.entryKey(jobId)];
    return (await S.markWaitResult.run(this.redis, keys, [jobId.toString(), claim.token])) === 1;
  }

  async markPendingForRetry(jobId: bigint, claim: Claim, now: bigint): Promise<boolean> {
    const keys = [...this.statusKeys(), this.entryKey(jobId)];
    const args = [jobId.toString(), claim.token, now.toString(), Date.now() + this.ttlMs];
    return (await S.markPendingForRetry.run(this.redis, keys, args)) === 1;
  }

  async finish(jobId: bigint, claim: Claim): Promise<boolean> {
    const { workerId, channel } = claim as Partial<RedisClaim>;
    const at = workerId !== undefined && channel !== undefined ? { workerId, channel } : undefined;
    return this.drops.call({ jobId, token: String(claim.token), at });
  }

  async remove(jobId: bigint): Promise<void> {
    await this.drops.call({ jobId, token: "" });
  }

  private async dropBatch(calls: DropCall[]): Promise<boolean[]> {
    const k = new KeyList(this.statusKeys());
    const args: Arg[] = [];
    for (const { jobId, token, at } of calls) {
      const sets = at ? [k.of(this.workerKey(at.workerId)), k.of(this.channelKey(at.channel))] : [0, 0];
      args.push(k.of(this.entryKey(jobId)), ...sets, jobId.toString(), token);
    }
    const replies = (await S.finish.run(this.redis, k.list, args)) as (0 | [string, string])[];
    // the sets the entries were really indexed in, when the callers could not name them (or named others)
    const missed = new Map<string, string[]>();
    replies.forEach((r, i) => {
      if (r === 0) return;
      const { jobId, at } = calls[i];
      const named = at ? [this.workerKey(at.workerId), this.channelKey(at.channel)] : [];
      for (const key of [this.workerKey(r[0]), this.channelKey(r[1])]) {
        if (!named.includes(key)) missed.set(key, [...(missed.get(key) ?? []), jobId.toString()]);
      }
    });
    if (missed.size > 0) {
      const p = this.redis.pipeline();
      for (const [key, ids] of missed) p.srem(key, ...ids);
      await execAll(p);
    }
    return replies.map((r) => r !== 0);
  }

  async requestCancel(jobId: bigint): Promise<JobProcessingStatus | undefined> {
    const keys = [...this.statusKeys(), this.entryKey(jobId)];
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

  async uniqKeyHolder(workerId: bigint, key: string): Promise<bigint | undefined> {
    const holder = await this.redis.get(this.uniqKey(workerId, key));
    return holder ? BigInt(holder) : undefined;
  }
}
