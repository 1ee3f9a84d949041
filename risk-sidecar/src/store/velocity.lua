-- Velocity counters for one or more entities (cards, customers, IPs, devices), updated
-- and read atomically. On Redis Cluster the sidecar sends one entity per call (its three
-- keys share a hash tag, so a slot); on a single Redis, all of a decision's entities in one.
--
-- Per entity i (0-based), KEYS[6i+1..6i+6]:
--   ev  sorted set: member = transaction id, score = event time (Unix ms)
--   am  hash: "s<hour>" / "n<hour>" -> amount sum / count of the events in that hour
--       (reference-currency minor units; hour = floor(ms / 3600000)); "^first" -> first seen
--   ln  sorted set: member = linked entity (a card or a customer), score = last seen
--   fr  sorted set: transactions labelled fraud, score = transaction time
--   lb  sorted set: labelled transactions (fraud or legitimate), score = transaction time
--   dc  sorted set: declined payments, score = time of the decline
-- (fr, lb and dc are written by the sidecar when labels and outcomes arrive, never here.)
-- ARGV, all numbers already as strings (formatting doubles in Lua was a tenth of
-- Redis's CPU for this script):
--   [1] transaction id     [2] event time, Unix ms     [3] amount, or "" when unknown
--   [4] -(events kept + 1)  [5] -(linked kept + 1)     [6] key TTL, ms
--   [7..11] "(<ts - window>" for 1m 1h 24h 7d 30d, the exclusive lower bounds
--   [12] "s<hour>"  [13] "n<hour>"  [14] hour
--   then per entity i: [15+2i] linked member or "", [16+2i] flags: "e" count the
--   event (ev, am, ln), "s" keep amount sums, "f" read fr, "h" read lb, "d" read dc
--
-- Returns 19 integers per entity: counts over 1m 1h 24h 7d 30d; amount sums over 24h 7d
-- 30d; the number of events with a known amount over 24h 7d 30d; first-seen ms; distinct
-- linked members over 24h; 1 if the transaction id was counted before (14 zeros without
-- "e"); then fraud over 7d 30d, labelled over 30d, declines over 1h 24h (0 unless read).
--
-- Counts are exact, in event time, and include the transaction: (ts - window, +inf).
-- Old events are not deleted by time (counts look at their window only) but by rank,
-- beyond the cap; keys expire a TTL after their last write. Sums are kept per hour, so
-- their cost does not grow with the number of events: a sum over 24h covers the event's
-- hour and the 23 before it (7d: 168 hours, 30d: 720). The hash holds at most 720
-- hours: beyond that the oldest go (back-dated events cannot grow it), and fields are
-- deleted in chunks (`unpack` has a limit). A transaction id seen before writes
-- nothing, so a retry is counted once.
-- memory.rs implements the same semantics; the store tests run against both.

local tx, ts, amount = ARGV[1], ARGV[2], ARGV[3]
local ev_rank, ln_rank, ttl = ARGV[4], ARGV[5], ARGV[6]
local sum_field, n_field, hour = ARGV[12], ARGV[13], tonumber(ARGV[14])
local HOURS = {24, 168, 720}
local MAX_HOURS = HOURS[3]
local CHUNK = 500
local out = {}

local function has(flags, f) return string.find(flags, f, 1, true) ~= nil end

local function count_events(ev, am, ln, linked, sums_on, base)
  local added = redis.call('ZADD', ev, 'NX', ts, tx) == 1
  if added then
    redis.call('ZREMRANGEBYRANK', ev, 0, ev_rank)
    if sums_on and amount ~= '' then
      redis.call('HINCRBY', am, sum_field, amount)
      redis.call('HINCRBY', am, n_field, 1)
    end
    if linked ~= '' then
      redis.call('ZADD', ln, 'GT', ts, linked)
      redis.call('ZREMRANGEBYRANK', ln, 0, ln_rank)
      redis.call('PEXPIRE', ln, ttl)
    end
    redis.call('PEXPIRE', ev, ttl)
  end

  for i = 1, 5 do out[base + i] = redis.call('ZCOUNT', ev, ARGV[6 + i], '+inf') end
  local sums, ns = {0, 0, 0}, {0, 0, 0}
  local first, stale, kept = nil, {}, {}
  local fields = redis.call('HGETALL', am)
  for i = 1, #fields, 2 do
    local f = fields[i]
    local kind = string.sub(f, 1, 1)
    if kind == '^' then
      first = tonumber(fields[i + 1])
    else
      local h = tonumber(string.sub(f, 2))
      if h <= hour - HOURS[3] then
        stale[#stale + 1] = f
      else
        if kind == 's' then kept[#kept + 1] = h end
        local v = tonumber(fields[i + 1])
        local into = (kind == 's') and sums or ns
        for w = 1, 3 do
          if h > hour - HOURS[w] then into[w] = into[w] + v end
        end
      end
    end
  end
  if added then
    -- Only a write changes the hash (a retry writes nothing).
    if (not first) or tonumber(ts) < first then
      first = tonumber(ts)
      redis.call('HSET', am, '^first', ts)
    end
    if #kept > MAX_HOURS then
      table.sort(kept)
      for i = 1, #kept - MAX_HOURS do
        stale[#stale + 1] = 's' .. kept[i]
        stale[#stale + 1] = 'n' .. kept[i]
      end
    end
    for i = 1, #stale, CHUNK do
      redis.call('HDEL', am, unpack(stale, i, math.min(i + CHUNK - 1, #stale)))
    end
    redis.call('PEXPIRE', am, ttl)
  end
  for i = 1, 3 do out[base + 5 + i] = sums[i]; out[base + 8 + i] = ns[i] end
  out[base + 12] = first or tonumber(ts)
  out[base + 13] = redis.call('ZCOUNT', ln, ARGV[9], '+inf')
  out[base + 14] = added and 0 or 1
end

for e = 0, #KEYS / 6 - 1 do
  local k = 6 * e
  local linked, flags = ARGV[15 + 2 * e], ARGV[16 + 2 * e]
  local base = #out
  if has(flags, 'e') then
    count_events(KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], linked, has(flags, 's'), base)
  else
    for i = 1, 14 do out[base + i] = 0 end
  end
  local fr, lb, dc = KEYS[k + 4], KEYS[k + 5], KEYS[k + 6]
  local f, h, d = has(flags, 'f'), has(flags, 'h'), has(flags, 'd')
  out[base + 15] = f and redis.call('ZCOUNT', fr, ARGV[10], '+inf') or 0
  out[base + 16] = f and redis.call('ZCOUNT', fr, ARGV[11], '+inf') or 0
  out[base + 17] = h and redis.call('ZCOUNT', lb, ARGV[11], '+inf') or 0
  out[base + 18] = d and redis.call('ZCOUNT', dc, ARGV[8], '+inf') or 0
  out[base + 19] = d and redis.call('ZCOUNT', dc, ARGV[9], '+inf') or 0
end
return out
