-- One decision's counting in one call: the idempotency reservation, then per counted
-- entity one GETRANGE of its counters' prefix and one BITFIELD writing the fields this
-- event changes (plus a PEXPIRE when the entity is new or its TTL day changed). The
-- counters are a fixed-size string laid out as state.rs documents, the same steps as its
-- `record`; the sidecar reads them whole with a plain GET sent after this call in the
-- same pipeline. Lua reads as few bytes as it can: Redis's Lua hashes every string it
-- makes, byte by byte, and that was most of this script's cost when it copied the whole
-- string. On Redis Cluster the sidecar sends one call per entity (its keys share a hash
-- tag, so a slot) and the reservation as a plain SET in the same pipeline; on a single
-- Redis, the whole decision in one call.
--
-- KEYS: [1] the decision key when ARGV[1] is "1", then per entity i (0-based):
--   [r+i+1] the entity's counters (string)
-- ARGV, numbers formatted by the sidecar (formatting in Lua costs Redis CPU):
--   [1] "1": reserve the decision key first, "0": no reservation in this call
--   [2] the reservation record  [3] its TTL, ms
--   [4] event time, Unix ms  [5] CRC-32 of the transaction id (4 bytes, big-endian)
--   [6] amount in reference minor units, or "" when unknown  [7] counters' TTL, ms
--   [8..10] the event's bucket number in tiers 0, 1, 2  [11..13] the tiers' slots
--   [14] ring size  [15] the label view's length  [16] layout version
--   [17] the event's TTL day (state.rs `ttl_day`)  [18] ARGV[5] as a decimal
--   then per entity i, from j = 19 + 14i: [j] "s" when it keeps amount sums, else "";
--   [j+1] link slots (0: none kept); [j+2] CRC-32 of the linked member (4 bytes) or "",
--   [j+3] the same as a decimal; [j+4..j+9] the bit offsets of the event's slot in tiers
--   0, 1, 2 (bucket number, then count, per tier); [j+10..j+13] of its sums in tiers 1
--   and 2 (sum, then count). Offsets and values reach BITFIELD as strings made by the
--   sidecar: Lua turning a number into a string costs Redis about half a microsecond.
--
-- Returns {record} when the decision key held one (a retry: nothing is counted), else
-- {"", then per entity 1 if its ring already held the transaction, else 0}. Redis
-- commands: 1 for the reservation, then per entity 2 (3 when new or on a new TTL day),
-- whatever the entity's history.

local COMMON, PER = 18, 14
local reserve = ARGV[1] == '1'
local r = reserve and 1 or 0
local n = (#ARGV - COMMON) / PER
assert(n >= 0 and n == math.floor(n) and #KEYS == r + n, 'velocity.lua: KEYS and ARGV do not match the layout')

if reserve then
  local prev = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'GET', 'PX', ARGV[3])
  if prev then return {prev} end
end

local ts_s, txh, amount_s, ttl = ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local ts, amount = tonumber(ts_s), tonumber(amount_s)
local txh_s = ARGV[18]
local BUCKET = {tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])}
local BUCKET_S = {ARGV[8], ARGV[9], ARGV[10]}
local SLOTS = {tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])}
local RING, VIEW, VERSION, DAY_S = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]), ARGV[17]
local DAY = tonumber(DAY_S)
local HEADER = 32
local IDS = HEADER + 8 * RING
local LINKS_AT = IDS + 4 * RING

-- The same steps as state.rs's `record`; returns 1 when the ring already held the
-- transaction (nothing written), else 0.
local function count(key, sums, links, link, link_s, offsets)
  local tier_at = {LINKS_AT + 12 * links}
  tier_at[2] = tier_at[1] + 8 * SLOTS[1]
  tier_at[3] = tier_at[2] + 8 * SLOTS[2]
  local read_len = tier_at[3] + 8 * SLOTS[3]
  local sums_at = {nil, read_len, read_len + 12 * SLOTS[2]}
  local len = (sums and (sums_at[3] + 12 * SLOTS[3]) or read_len) + VIEW

  local raw = redis.call('GETRANGE', key, '0', string.format('%d', read_len - 1))
  local fresh = #raw < read_len
  if not fresh then
    local version, slots = struct.unpack('>I4I4', raw, 25)
    fresh = version ~= VERSION or slots ~= links
  end
  local ops = {}
  -- `at`: a bit offset, as a string.
  local function op(kind, ty, at, v)
    ops[#ops + 1] = kind; ops[#ops + 1] = ty; ops[#ops + 1] = at; ops[#ops + 1] = v
  end
  local function bit(byte) return string.format('%d', byte * 8) end
  local first, evicted, recorded, day = 0, 0, 0, -1
  if fresh then
    -- A new entity: BITFIELD makes the string, zero-filled to its last byte. A string of
    -- another layout (rare: a changed setting) is first replaced by zeros.
    if #raw > 0 then
      local z = '\0\0\0\0\0\0\0\0'
      while #z < len do z = z .. z end
      redis.call('SET', key, string.sub(z, 1, len))
    end
    op('SET', 'u8', bit(len - 1), '0')
    op('SET', 'u32', '192', ARGV[16])
    op('SET', 'u32', '224', string.format('%d', links))
  else
    local ids = string.sub(raw, IDS + 1, IDS + 4 * RING)
    local from = 1
    while true do
      local at = string.find(ids, txh, from, true)
      if not at then break end
      if (at - 1) % 4 == 0 and struct.unpack('>i8', raw, HEADER + 2 * (at - 1) + 1) ~= 0 then return 1 end
      from = at + 1
    end
    first, evicted, recorded, day = struct.unpack('>i8i8I4i4', raw, 1)
  end

  if first == 0 or ts < first then op('SET', 'i64', '0', ts_s) end
  local slot = recorded % RING
  local old = 0
  if not fresh then old = struct.unpack('>i8', raw, HEADER + 8 * slot + 1) end
  if old > evicted then op('SET', 'i64', '64', string.format('%d', old)) end
  op('INCRBY', 'u32', '128', '1')
  if day ~= DAY then op('SET', 'i32', '160', DAY_S) end
  op('SET', 'i64', bit(HEADER + 8 * slot), ts_s)
  op('SET', 'u32', bit(IDS + 4 * slot), txh_s)

  if link ~= '' and links > 0 then
    -- The member's own slot, else the first least recently seen (an empty one).
    local pick, pick_last, last_seen = nil, nil, ts
    for i = 0, links - 1 do
      local at = LINKS_AT + 12 * i
      local last = fresh and 0 or struct.unpack('>i8', raw, at + 5)
      if last ~= 0 and string.sub(raw, at + 1, at + 4) == link then
        pick, last_seen = i, math.max(last, ts)
        break
      end
      if pick == nil or last < pick_last then pick, pick_last = i, last end
    end
    op('SET', 'u32', bit(LINKS_AT + 12 * pick), link_s)
    op('SET', 'i64', bit(LINKS_AT + 12 * pick + 4), last_seen == ts and ts_s or string.format('%d', last_seen))
  end

  for t = 1, 3 do
    local b = BUCKET[t]
    local slot_t = b % SLOTS[t]
    local at = tier_at[t] + 8 * slot_t
    local held, events = 0, 0
    if not fresh then held, events = struct.unpack('>i4I4', raw, at + 1) end
    local reset = held < b or events == 0
    if reset or held == b then
      local stamp_at, count_at = offsets[2 * t - 1], offsets[2 * t]
      if reset then
        op('SET', 'i32', stamp_at, BUCKET_S[t])
        op('SET', 'u32', count_at, '1')
      else
        op('INCRBY', 'u32', count_at, '1')
      end
      if sums and t > 1 then
        local sum_at, n_at = offsets[2 * t + 3], offsets[2 * t + 4]
        if reset then
          op('SET', 'i64', sum_at, amount and amount_s or '0')
          op('SET', 'u32', n_at, amount and '1' or '0')
        elseif amount then
          op('INCRBY', 'i64', sum_at, amount_s)
          op('INCRBY', 'u32', n_at, '1')
        end
      end
    end
  end
  redis.call('BITFIELD', key, unpack(ops))
  if fresh or day ~= DAY then redis.call('PEXPIRE', key, ttl) end
  return 0
end

local out = {''}
for e = 0, n - 1 do
  local j = COMMON + 1 + PER * e
  local offsets = {}
  for k = 1, 10 do offsets[k] = ARGV[j + 3 + k] end
  out[#out + 1] = count(KEYS[r + e + 1], ARGV[j] == 's', tonumber(ARGV[j + 1]), ARGV[j + 2], ARGV[j + 3], offsets)
end
return out
