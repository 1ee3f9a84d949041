-- Velocity counters for one or more entities (cards, customers, IPs, devices), updated
-- and read atomically. On Redis Cluster the sidecar sends one entity per call (its three
-- keys share a hash tag, so a slot); on a single Redis, all of a decision's entities in one.
--
-- Per entity i (0-based), KEYS[3i+1..3i+3]:
--   ev  sorted set: member = transaction id, score = event time (Unix ms)
--   am  hash: "s<hour>" / "n<hour>" -> amount sum / count of the events in that hour
--       (reference-currency minor units; hour = floor(ms / 3600000)); "^first" -> first seen
--   ln  sorted set: member = linked entity (a card or a customer), score = last seen
-- ARGV[1]  transaction id            ARGV[2]  event time, Unix ms
-- ARGV[3]  amount in reference minor units, or "" when unknown
-- ARGV[4]  events kept per entity (the oldest beyond are dropped; counts saturate there)
-- ARGV[5]  linked members kept per entity
-- ARGV[6]  TTL of the keys, ms
-- then per entity i: ARGV[7+2i] linked member or "", ARGV[8+2i] "1" to keep amount sums
--
-- Returns 14 integers per entity: counts over 1m 1h 24h 7d 30d; amount sums over 24h 7d
-- 30d; the number of events with a known amount over 24h 7d 30d; first-seen ms; distinct
-- linked members over 24h; 1 if the transaction id was counted before.
--
-- Counts are exact, in event time, and include the transaction: (ts - window, +inf).
-- Old events are not deleted by time (counts look at their window only) but by rank,
-- beyond the cap; keys expire a TTL after their last write. Sums are kept per hour, so
-- their cost does not grow with the number of events: a sum over 24h covers the event's
-- hour and the 23 before it (7d: 168 hours, 30d: 720). A transaction id seen before
-- writes nothing, so a retry is counted once.
-- memory.rs implements the same semantics; the store tests run against both.

local tx, ts, amount = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local max_ev, max_ln, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local HOUR, DAY = 3600000, 86400000
local W = {60000, HOUR, DAY, 7 * DAY, 30 * DAY}
local HOURS = {24, 168, 720}
local hour = math.floor(ts / HOUR)
local out = {}

for e = 0, #KEYS / 3 - 1 do
  local ev, am, ln = KEYS[3 * e + 1], KEYS[3 * e + 2], KEYS[3 * e + 3]
  local linked, sums_on = ARGV[7 + 2 * e], ARGV[8 + 2 * e] == '1'
  local added = redis.call('ZADD', ev, 'NX', ts, tx) == 1
  if added then
    redis.call('ZREMRANGEBYRANK', ev, 0, -(max_ev + 1))
    if sums_on and amount ~= '' then
      redis.call('HINCRBY', am, 's' .. hour, amount)
      redis.call('HINCRBY', am, 'n' .. hour, 1)
    end
    if linked ~= '' then
      redis.call('ZADD', ln, 'GT', ts, linked)
      redis.call('ZREMRANGEBYRANK', ln, 0, -(max_ln + 1))
      redis.call('PEXPIRE', ln, ttl)
    end
    redis.call('PEXPIRE', ev, ttl)
  end

  local base = #out
  for i = 1, 5 do out[base + i] = redis.call('ZCOUNT', ev, '(' .. (ts - W[i]), '+inf') end
  local sums, ns = {0, 0, 0}, {0, 0, 0}
  local first, stale = nil, {}
  local fields = redis.call('HGETALL', am)
  for i = 1, #fields, 2 do
    local f, v = fields[i], tonumber(fields[i + 1])
    local kind = string.sub(f, 1, 1)
    if kind == '^' then
      first = v
    else
      local h = tonumber(string.sub(f, 2))
      if h <= hour - HOURS[3] then
        stale[#stale + 1] = f
      else
        local into = (kind == 's') and sums or ns
        for w = 1, 3 do
          if h > hour - HOURS[w] then into[w] = into[w] + v end
        end
      end
    end
  end
  if added then
    -- Only a write changes the hash (a retry writes nothing).
    if (not first) or ts < first then
      first = ts
      redis.call('HSET', am, '^first', ts)
    end
    if #stale > 0 then redis.call('HDEL', am, unpack(stale)) end
    redis.call('PEXPIRE', am, ttl)
  end
  for i = 1, 3 do out[base + 5 + i] = sums[i]; out[base + 8 + i] = ns[i] end
  out[base + 12] = first or ts
  out[base + 13] = redis.call('ZCOUNT', ln, '(' .. (ts - DAY), '+inf')
  out[base + 14] = added and 0 or 1
end
return out
