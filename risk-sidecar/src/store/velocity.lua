-- One decision's counting in one call: the idempotency reservation, then per counted
-- entity one GET of its string and one APPEND of the event's entry (journal.rs has the
-- format; the sidecar makes the entry). The sidecar folds the journal into the counters
-- itself, with the memory store's code, so this script does no arithmetic on them:
-- building the changed fields here was most of Redis's CPU per decision. Each string
-- comes back as it was before this event, so the counters a decision reads are the ones
-- its own event made, with no other decision's between.
-- On Redis Cluster the sidecar sends one call per entity (its keys share a hash tag, so
-- a slot), the reservation as a plain SET and a read-only key as a plain GET in the
-- same pipeline; on a single Redis, the whole decision in one call.
--
-- KEYS: [1] the decision key when ARGV[1] is "1", then per counted entity i (0-based):
--   [r+i+1] the entity's counters (string); then keys only read (an e-mail address's
--   label view), returned as they are
-- ARGV: [1] "1": reserve the decision key first, "0": no reservation in this call
--   [2] the reservation record  [3] its TTL, ms  [4] counters' TTL, ms
--   [5] the event's TTL day (state.rs `ttl_day`), then per counted entity i
--   [6+i] its entry (journal.rs `entry`)
--
-- Returns {record} when the decision key held one (a retry: nothing is counted), else
-- {"", then per counted entity its string before this call ("" when none, or when it
-- was not of the journal's format and was replaced), then each read-only key's string
-- ("" when none)}. Redis commands: 1 for the reservation, then per counted entity 2 (3
-- on the first event of a day, when the TTL is set again), 1 per read-only key,
-- whatever the entity's history.

local COMMON = 5
local reserve = ARGV[1] == '1'
local r = reserve and 1 or 0
local n = #ARGV - COMMON
assert(n >= 0 and #KEYS >= r + n, 'velocity.lua: KEYS and ARGV do not match the layout')

if reserve then
  local prev = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'GET', 'PX', ARGV[3])
  if prev then return {prev} end
end

local ttl, day = ARGV[4], tonumber(ARGV[5])
local BLOCK, ENTRY = 99, 101 -- 'c', 'e'

local out = {''}
for i = 1, n do
  local key, entry = KEYS[r + i], ARGV[COMMON + i]
  local raw = redis.call('GET', key)
  local tag = raw and string.byte(raw, 1)
  if tag ~= BLOCK and tag ~= ENTRY then
    -- None yet, or of another format: the journal starts with this event.
    redis.call('SET', key, entry, 'PX', ttl)
    raw = ''
  else
    redis.call('APPEND', key, entry)
    -- The TTL is set again on the first event of a day: the last entry's day, or the
    -- block's (its header's TTL day, state.rs) when nothing is journalled after it.
    local last = -1
    if tag == ENTRY then
      last = struct.unpack('>i4', raw, #raw - 3)
    elseif #raw >= 33 then
      local len = struct.unpack('>I4', raw, 2)
      last = struct.unpack('>i4', raw, #raw > len and #raw - 3 or 30)
    end
    if last ~= day then redis.call('PEXPIRE', key, ttl) end
  end
  out[i + 1] = raw
end
for i = r + n + 1, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
end
return out
