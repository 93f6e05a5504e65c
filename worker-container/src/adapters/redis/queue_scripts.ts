// Lua for RedisJobQueue. Every script touches only one channel's keys (passed as KEYS, one hash tag) and reads
// the time from Redis (TIME), so all processes share one clock for due times and lease deadlines.
//
// Values: an envelope E = "<jobId>|<flags>" .. protobuf Job (flags: "0".."3", bit 1 durable, bit 2 loadOnly).
// Pending lists hold E; the delayed zset holds "<slot><uniq> " .. E (slot "0".."2" = HIGH/MEDIUM/LOW, uniq makes
// occurrences of one job distinct); the leased hash holds token → "<slot>" .. E.

/** Notification tokens kept at most: enough to wake every blocked leaser; more are stale anyway. */
const WAKE_CAP = 1000;
/** Due delayed jobs and expired leases moved per lease call (the rest follow on the next calls). */
const SWEEP_BATCH = 500;

const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function job_id(e) return string.sub(e, 1, string.find(e, '|', 1, true) - 1) end
-- one token per newly deliverable job, so that many blocked leasers (BLPOP on the wake list) wake
local function wake(key, n)
  if n <= 0 then return end
  local t = {}
  for i = 1, math.min(n, ${WAKE_CAP}) do t[i] = '1' end
  if redis.call('RPUSH', key, unpack(t)) > ${WAKE_CAP} then redis.call('LTRIM', key, -${WAKE_CAP}, -1) end
end
`;

// Channel keys shared by the scripts below: KEYS[1..3] pending lists HIGH/MEDIUM/LOW, KEYS[4] delayed,
// KEYS[5] ids, KEYS[6] wake (and KEYS[7] leases, KEYS[8] leased where a script needs them).
// push_one: ids counts each job id's waiting (pending + delayed) occurrences, so remove() is O(1) for jobs not
// waiting. Returns 1 when the job is deliverable now, 2 when it is delayed and due before every other.
const PUSH_ONE = `
local function push_one(slot, delay, id, e, member)
  redis.call('HINCRBY', KEYS[5], id, 1)
  if delay > 0 then
    local due = now_ms() + delay
    local first = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
    redis.call('ZADD', KEYS[4], due, member .. e)
    if first[2] == nil or due < tonumber(first[2]) then return 2 end
    return 0
  end
  redis.call('RPUSH', KEYS[slot + 1], e)
  return 1
end
`;

// ARGV: groups of (slot, delayMs, jobId, E, delayed-member prefix). Wakes one leaser per deliverable job, and
// one for a new earliest due time (so that it re-arms its timer for it).
export const PUSH = `${COMMON}${PUSH_ONE}
local n = 0
for i = 1, #ARGV, 5 do
  local r = push_one(tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
  if r > 0 then n = n + 1 end
end
wake(KEYS[6], n)
return 1
`;

// ARGV: token, then one push group. Ack and push as one step.
export const REQUEUE = `${COMMON}${PUSH_ONE}
if redis.call('ZREM', KEYS[7], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[8], ARGV[1])
if push_one(tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]) > 0 then wake(KEYS[6], 1) end
return 1
`;

// KEYS: leases, leased. ARGV: tokens. Returns 1 per token whose lease was held (and is now released), else 0.
export const ACK = `
local held, out = {}, {}
for i, score in ipairs(redis.call('ZMSCORE', KEYS[1], unpack(ARGV))) do
  if score then held[#held + 1] = ARGV[i]; out[i] = 1 else out[i] = 0 end
end
if #held > 0 then
  redis.call('ZREM', KEYS[1], unpack(held))
  redis.call('HDEL', KEYS[2], unpack(held))
end
return out
`;

// KEYS: leases. ARGV: token, ms.
export const EXTEND = `${COMMON}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now_ms() + tonumber(ARGV[2]), ARGV[1])
return 1
`;

// KEYS: the channel keys (1..8). ARGV: token base, leaseMs, n. Leases up to n jobs, the i-th (from 0) under the
// token "<base>.<i>", and returns their E's in order; when nothing is pending, returns the ms until the next due
// delayed job or lease deadline (-1: none), for the caller to sleep on.
export const LEASE = `${COMMON}
local now = now_ms()
local moved = 0
local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, ${SWEEP_BATCH})
if #due > 0 then
  for _, m in ipairs(due) do
    redis.call('RPUSH', KEYS[tonumber(string.sub(m, 1, 1)) + 1], string.sub(m, string.find(m, ' ', 1, true) + 1))
  end
  redis.call('ZREM', KEYS[4], unpack(due))
  moved = #due
end
-- leases whose holder went silent: their jobs go back to the head of their priority (they were first in line);
-- walked backwards so that the earliest deadline ends up first
local expired = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now, 'LIMIT', 0, ${SWEEP_BATCH})
if #expired > 0 then
  for i = #expired, 1, -1 do
    local rec = redis.call('HGET', KEYS[8], expired[i])
    if rec then
      local e = string.sub(rec, 2)
      redis.call('LPUSH', KEYS[tonumber(string.sub(rec, 1, 1)) + 1], e)
      redis.call('HINCRBY', KEYS[5], job_id(e), 1)
    end
  end
  redis.call('ZREM', KEYS[7], unpack(expired))
  redis.call('HDEL', KEYS[8], unpack(expired))
  moved = moved + #expired
end
local want, deadline = tonumber(ARGV[3]), now + tonumber(ARGV[2])
local out, scores, recs = {}, {}, {}
for s = 1, 3 do
  if #out >= want then break end
  local es = redis.call('LPOP', KEYS[s], want - #out)
  if es then
    for _, e in ipairs(es) do
      local id = job_id(e)
      if redis.call('HINCRBY', KEYS[5], id, -1) <= 0 then redis.call('HDEL', KEYS[5], id) end
      local token = ARGV[1] .. '.' .. #out
      out[#out + 1] = e
      scores[#scores + 1] = deadline; scores[#scores + 1] = token
      recs[#recs + 1] = token; recs[#recs + 1] = (s - 1) .. e
    end
  end
end
if #out > 0 then
  redis.call('ZADD', KEYS[7], unpack(scores))
  redis.call('HSET', KEYS[8], unpack(recs))
  wake(KEYS[6], moved - #out) -- this call took some of the moved jobs; others must hear of the rest
  return out
end
-- nothing pending: wake tokens left over are stale (a leaser that got a job without waiting left them)
redis.call('DEL', KEYS[6])
local at = nil
for _, k in ipairs({4, 7}) do
  local first = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
  if first[2] and (at == nil or tonumber(first[2]) < at) then at = tonumber(first[2]) end
end
if at == nil then return -1 end
return math.max(at - now, 1)
`;

// KEYS: high, medium, low, delayed, ids. ARGV: jobId. Removes every waiting occurrence; returns how many.
// Scans only when the ids count says the job waits here, and stops once that many were found.
export const REMOVE = `
local want = tonumber(redis.call('HGET', KEYS[5], ARGV[1]) or '0')
if want <= 0 then return 0 end
redis.call('HDEL', KEYS[5], ARGV[1])
local pre = ARGV[1] .. '|'
local found = 0
local function scan(key, is_zset)
  local hits, start = {}, 0
  while found < want do
    local chunk = is_zset and redis.call('ZRANGE', key, start, start + 999) or redis.call('LRANGE', key, start, start + 999)
    if #chunk == 0 then break end
    for _, v in ipairs(chunk) do
      local e = is_zset and string.sub(v, string.find(v, ' ', 1, true) + 1) or v
      if string.sub(e, 1, #pre) == pre then found = found + 1; hits[#hits + 1] = v end
    end
    start = start + 1000
  end
  for _, v in ipairs(hits) do
    if is_zset then redis.call('ZREM', key, v) else redis.call('LREM', key, 0, v) end
  end
end
for s = 1, 3 do scan(KEYS[s], false) end
scan(KEYS[4], true)
return found
`;

// KEYS: high, medium, low, delayed. ARGV: limit. Returns {pending E in delivery order, delayed members with scores}.
export const LIST = `
local lim, out = tonumber(ARGV[1]), {}
for s = 1, 3 do
  if #out >= lim then break end
  for _, e in ipairs(redis.call('LRANGE', KEYS[s], 0, lim - #out - 1)) do out[#out + 1] = e end
end
local delayed = {}
if #out < lim then delayed = redis.call('ZRANGE', KEYS[4], 0, lim - #out - 1, 'WITHSCORES') end
return {out, delayed}
`;
