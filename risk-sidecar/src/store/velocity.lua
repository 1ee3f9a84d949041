-- One entity's velocity counters (a card, customer, IP or device), updated and read
-- atomically. All keys carry the entity's hash tag, so they share a Redis Cluster slot.
--
-- KEYS[1]  sorted set: member = transaction id, score = event time (Unix ms)
-- KEYS[2]  hash: transaction id -> amount (reference-currency minor units);
--          field "^first" -> first-seen event time (no transaction id contains "^")
-- KEYS[3]  sorted set: member = linked entity (a card or a customer), score = last seen
-- ARGV[1]  transaction id
-- ARGV[2]  event time, Unix ms
-- ARGV[3]  amount in reference minor units, or "" when unknown
-- ARGV[4]  linked member, or "" for none
-- ARGV[5]  events kept per entity (the oldest beyond are dropped; counts saturate there)
-- ARGV[6]  linked members kept per entity
-- ARGV[7]  TTL of the three keys, ms
-- ARGV[8]  "1" to return amount sums (cards, customers), "0" to skip that work
--
-- Returns 14 integers: counts over 1m 1h 24h 7d 30d; amount sums over 24h 7d 30d;
-- the number of events with a known amount over 24h 7d 30d; first-seen ms;
-- distinct linked members over 24h; 1 if the transaction id was counted before.
--
-- Windows are in event time and include the transaction itself: (ts - window, +inf).
-- A transaction id seen before writes nothing, so a retry is counted once.
-- memory.rs implements the same semantics; the store tests run against both.

local ev, am, ln = KEYS[1], KEYS[2], KEYS[3]
local tx, ts = ARGV[1], tonumber(ARGV[2])
local amount, linked = ARGV[3], ARGV[4]
local max_ev, max_ln, ttl = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local want_sums = ARGV[8] == '1'
local DAY = 86400000
local W = {60000, 3600000, DAY, 7 * DAY, 30 * DAY}

local function drop(members)
  if #members > 0 then
    redis.call('ZREM', ev, unpack(members))
    redis.call('HDEL', am, unpack(members))
  end
end

local seen = redis.call('ZSCORE', ev, tx)
if not seen then
  redis.call('ZADD', ev, ts, tx)
  if amount ~= '' then redis.call('HSET', am, tx, amount) end
  local first = tonumber(redis.call('HGET', am, '^first'))
  if (not first) or ts < first then redis.call('HSET', am, '^first', ts) end
  drop(redis.call('ZRANGEBYSCORE', ev, '-inf', '(' .. (ts - W[5]), 'LIMIT', 0, 512))
  local n = redis.call('ZCARD', ev)
  if n > max_ev then drop(redis.call('ZRANGE', ev, 0, n - max_ev - 1)) end
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
if want_sums then
  local rows = redis.call('ZRANGEBYSCORE', ev, '(' .. (ts - W[5]), '+inf', 'WITHSCORES')
  local members, times = {}, {}
  for i = 1, #rows, 2 do
    members[#members + 1] = rows[i]
    times[#times + 1] = tonumber(rows[i + 1])
  end
  if #members > 0 then
    local amounts = redis.call('HMGET', am, unpack(members))
    for i = 1, #members do
      local a = tonumber(amounts[i])
      if a then
        for w = 3, 5 do
          if times[i] > ts - W[w] then
            sums[w - 2] = sums[w - 2] + a
            ns[w - 2] = ns[w - 2] + 1
          end
        end
      end
    end
  end
end
for i = 1, 3 do out[5 + i] = sums[i]; out[8 + i] = ns[i] end
out[12] = tonumber(redis.call('HGET', am, '^first')) or ts
out[13] = redis.call('ZCOUNT', ln, '(' .. (ts - DAY), '+inf')
out[14] = seen and 1 or 0
return out
