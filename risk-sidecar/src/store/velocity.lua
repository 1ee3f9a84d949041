-- One entity's velocity counters (a card, customer, IP or device), updated and read
-- atomically. All keys carry the entity's hash tag, so they share a Redis Cluster slot.
--
-- KEYS[1]  sorted set: member = transaction id, score = event time (Unix ms)
-- KEYS[2]  hash: "s<hour>" / "n<hour>" -> amount sum / count of the events in that hour
--          (reference-currency minor units; hour = floor(ms / 3600000));
--          "^first" -> first-seen event time
-- KEYS[3]  sorted set: member = linked entity (a card or a customer), score = last seen
-- ARGV[1]  transaction id
-- ARGV[2]  event time, Unix ms
-- ARGV[3]  amount in reference minor units, or "" when unknown
-- ARGV[4]  linked member, or "" for none
-- ARGV[5]  events kept per entity (the oldest beyond are dropped; counts saturate there)
-- ARGV[6]  linked members kept per entity
-- ARGV[7]  TTL of the three keys, ms
-- ARGV[8]  "1" to keep and return amount sums (cards, customers), "0" to skip that work
--
-- Returns 14 integers: counts over 1m 1h 24h 7d 30d; amount sums over 24h 7d 30d;
-- the number of events with a known amount over 24h 7d 30d; first-seen ms;
-- distinct linked members over 24h; 1 if the transaction id was counted before.
--
-- Counts are exact, in event time, and include the transaction: (ts - window, +inf).
-- Sums are kept per hour so their cost does not grow with the number of events: a sum
-- over 24h covers the event's hour and the 23 before it (7d: 168 hours, 30d: 720).
-- A transaction id seen before writes nothing, so a retry is counted once.
-- memory.rs implements the same semantics; the store tests run against both.

local ev, am, ln = KEYS[1], KEYS[2], KEYS[3]
local tx, ts = ARGV[1], tonumber(ARGV[2])
local amount, linked = ARGV[3], ARGV[4]
local max_ev, max_ln, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local sums_on = ARGV[8] == '1'
local HOUR, DAY = 3600000, 86400000
local W = {60000, HOUR, DAY, 7 * DAY, 30 * DAY}
local HOURS = {24, 168, 720}
local hour = math.floor(ts / HOUR)

local seen = redis.call('ZSCORE', ev, tx)
if not seen then
  redis.call('ZADD', ev, ts, tx)
  redis.call('ZREMRANGEBYSCORE', ev, '-inf', '(' .. (ts - W[5]))
  local n = redis.call('ZCARD', ev)
  if n > max_ev then redis.call('ZREMRANGEBYRANK', ev, 0, n - max_ev - 1) end
  if sums_on and amount ~= '' then
    redis.call('HINCRBY', am, 's' .. hour, amount)
    redis.call('HINCRBY', am, 'n' .. hour, 1)
  end
  local first = tonumber(redis.call('HGET', am, '^first'))
  if (not first) or ts < first then redis.call('HSET', am, '^first', ts) end
  if linked ~= '' then
    redis.call('ZADD', ln, 'GT', ts, linked)
    redis.call('ZREMRANGEBYSCORE', ln, '-inf', '(' .. (ts - DAY))
    local m = redis.call('ZCARD', ln)
    if m > max_ln then redis.call('ZREMRANGEBYRANK', ln, 0, m - max_ln - 1) end
    redis.call('PEXPIRE', ln, ttl)
  end
  redis.call('PEXPIRE', ev, ttl)
  redis.call('PEXPIRE', am, ttl)
end

local out = {}
for i = 1, 5 do out[i] = redis.call('ZCOUNT', ev, '(' .. (ts - W[i]), '+inf') end
local sums, ns = {0, 0, 0}, {0, 0, 0}
local first = ts
local fields = redis.call('HGETALL', am)
local stale = {}
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
-- Hours older than the longest window go; only a write may delete (a retry writes nothing).
if (not seen) and #stale > 0 then redis.call('HDEL', am, unpack(stale)) end
for i = 1, 3 do out[5 + i] = sums[i]; out[8 + i] = ns[i] end
out[12] = first
out[13] = redis.call('ZCOUNT', ln, '(' .. (ts - DAY), '+inf')
out[14] = seen and 1 or 0
return out
