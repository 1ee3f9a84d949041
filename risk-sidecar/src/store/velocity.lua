-- One decision's counting in one call: the idempotency reservation, then per counted
-- entity one GET of its counters and one BITFIELD writing the fields this event changes
-- (plus a PEXPIRE when the entity is new or its TTL day changed). The counters are a
-- fixed-size string laid out as state.rs documents, the same steps as its `record`.
-- Each string comes back as it was before this event: the sidecar applies the event
-- itself (state.rs `record`, as the memory store does), so the snapshot is the one this
-- event made, with no other decision's between, and the decision needs no second
-- command: fred writes every command of a pipeline on its own, and each write cost a
-- system call here, a read and a reply in Redis, and a wake-up back in the sidecar.
-- Beyond each entity's string, read whole, Lua makes as few strings as it can: Redis's
-- Lua hashes every string it makes, byte by byte. On Redis Cluster the sidecar sends one call per entity (its keys share a hash
-- tag, so a slot), the reservation as a plain SET and a read-only key as a plain GET in
-- the same pipeline; on a single Redis, the whole decision in one call.
--
-- KEYS: [1] the decision key when ARGV[1] is "1", then per counted entity i (0-based):
--   [r+i+1] the entity's counters (string); then keys only read (an e-mail address's
--   label view), returned as they are
-- ARGV, numbers formatted by the sidecar (formatting in Lua costs Redis CPU):
--   [1] "1": reserve the decision key first, "0": no reservation in this call
--   [2] the reservation record  [3] its TTL, ms
--   [4] event time, Unix ms  [5] CRC-32 of the transaction id (4 bytes, big-endian)
--   [6] amount in reference minor units, or "" when unknown  [7] counters' TTL, ms
--   [8..10] the event's bucket number in tiers 0, 1, 2  [11..13] the tiers' slots
--   [14] ring size  [15] the label view's length  [16] layout version
--   [17] the event's TTL day (state.rs `ttl_day`)  [18] ARGV[5] as a decimal
--   then per counted entity i, from j = 19 + 14i: [j] "s" when it keeps amount sums,
--   else ""; [j+1] link slots (0: none kept); [j+2] CRC-32 of the linked member (4
--   bytes) or "", [j+3] the same as a decimal; [j+4..j+9] the bit offsets of the event's
--   slot in tiers 0, 1, 2 (bucket number, then count, per tier); [j+10..j+13] of its
--   sums in tiers 1 and 2 (sum, then count). Offsets and values reach BITFIELD as
--   strings made by the sidecar: Lua turning a number into a string costs Redis about
--   half a microsecond.
--
-- Returns {record} when the decision key held one (a retry: nothing is counted), else
-- {"", then per counted entity 1 if its ring already held the transaction (nothing
-- written), else 0, and its string before this call ("" when none), then each read-only
-- key's string ("" when none)}. Redis commands: 1 for the reservation, then per counted
-- entity 2 (3 when new or on a new TTL day), 1 per read-only key, whatever the entity's
-- history.

local COMMON, PER = 18, 14
local reserve = ARGV[1] == '1'
local r = reserve and 1 or 0
local n = (#ARGV - COMMON) / PER
assert(n >= 0 and n == math.floor(n) and #KEYS >= r + n, 'velocity.lua: KEYS and ARGV do not match the layout')

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
-- transaction (nothing written), else 0, and the string as it was. Written for the Lua
-- VM's cost (about a tenth of a microsecond a statement here): C string searches
-- instead of loops, one op table filled by index, offsets from ARGV[j + ...].
local function count(key, sums, links, link, link_s, j)
  local tier1 = LINKS_AT + 12 * links
  local tier2 = tier1 + 8 * SLOTS[1]
  local tier3 = tier2 + 8 * SLOTS[2]
  local read_len = tier3 + 8 * SLOTS[3]
  local len = (sums and (read_len + 12 * (SLOTS[2] + SLOTS[3])) or read_len) + VIEW
  local raw = redis.call('GET', key) or ''
  local ops, k = {}, 0
  local first, evicted, recorded, day, version, slots = 0, 0, 0, -1, 0, 0
  -- The same test as state.rs's `Layout::holds`, so both sides call the same strings new.
  local fresh = #raw ~= len
  if not fresh then
    first, evicted, recorded, day, version, slots = struct.unpack('>i8i8I4i4I4I4', raw, 1)
    fresh = version ~= VERSION or slots ~= links
  end
  if fresh then
    -- A new entity: BITFIELD makes the string, zero-filled to its last byte. A string of
    -- another layout (rare: a changed setting) is first replaced by zeros.
    if #raw > 0 then
      local z = '\0\0\0\0\0\0\0\0'
      while #z < len do z = z .. z end
      redis.call('SET', key, string.sub(z, 1, len))
    end
    first, evicted, recorded, day = 0, 0, 0, -1
    ops[1], ops[2], ops[3], ops[4] = 'SET', 'u8', string.format('%d', 8 * (len - 1)), '0'
    ops[5], ops[6], ops[7], ops[8] = 'SET', 'u32', '192', ARGV[16]
    ops[9], ops[10], ops[11], ops[12] = 'SET', 'u32', '224', ARGV[j + 1]
    k = 12
  else
    local at = string.find(raw, txh, IDS + 1, true)
    while at and at <= IDS + 4 * RING do
      if (at - 1 - IDS) % 4 == 0 and struct.unpack('>i8', raw, HEADER + 2 * (at - 1 - IDS) + 1) ~= 0 then
        return 1, raw
      end
      at = string.find(raw, txh, at + 1, true)
    end
  end

  if first == 0 or ts < first then
    ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'i64', '0', ts_s
    k = k + 4
  end
  local slot = recorded % RING
  if not fresh then
    local old = struct.unpack('>i8', raw, HEADER + 8 * slot + 1)
    if old > evicted then
      ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'i64', '64', string.format('%d', old)
      k = k + 4
    end
  end
  ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'INCRBY', 'u32', '128', '1'
  ops[k + 5], ops[k + 6], ops[k + 7], ops[k + 8] = 'SET', 'i64', string.format('%d', 8 * (HEADER + 8 * slot)), ts_s
  ops[k + 9], ops[k + 10], ops[k + 11], ops[k + 12] = 'SET', 'u32', string.format('%d', 8 * (IDS + 4 * slot)), txh_s
  k = k + 12
  if day ~= DAY then
    ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'i32', '160', DAY_S
    k = k + 4
  end

  if link ~= '' and links > 0 then
    -- The member's own slot, else the first least recently seen (an empty one).
    local pick, last_seen = nil, ts_s
    if not fresh then
      local at = string.find(raw, link, LINKS_AT + 1, true)
      while at and at < tier1 do
        if (at - 1 - LINKS_AT) % 12 == 0 then
          local last = struct.unpack('>i8', raw, at + 4)
          if last ~= 0 then
            pick = (at - 1 - LINKS_AT) / 12
            if last > ts then last_seen = string.format('%d', last) end
            break
          end
        end
        at = string.find(raw, link, at + 1, true)
      end
      if not pick then
        local lasts = {struct.unpack('>' .. string.rep('xxxxi8', links), raw, LINKS_AT + 1)}
        local least = lasts[1]
        pick = 0
        for i = 2, links do
          if lasts[i] < least then pick, least = i - 1, lasts[i] end
        end
      end
    else
      pick = 0
    end
    local at = 8 * (LINKS_AT + 12 * pick)
    ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'u32', string.format('%d', at), link_s
    ops[k + 5], ops[k + 6], ops[k + 7], ops[k + 8] = 'SET', 'i64', string.format('%d', at + 32), last_seen
    k = k + 8
  end

  local tier_at = {tier1, tier2, tier3}
  for t = 1, 3 do
    local b = BUCKET[t]
    local held, events = 0, 0
    if not fresh then held, events = struct.unpack('>i4I4', raw, tier_at[t] + 8 * (b % SLOTS[t]) + 1) end
    local reset = held < b or events == 0
    if reset or held == b then
      local o = j + 2 * t + 2
      if reset then
        ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'i32', ARGV[o], BUCKET_S[t]
        ops[k + 5], ops[k + 6], ops[k + 7], ops[k + 8] = 'SET', 'u32', ARGV[o + 1], '1'
        k = k + 8
      else
        ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'INCRBY', 'u32', ARGV[o + 1], '1'
        k = k + 4
      end
      if sums and t > 1 then
        local q = j + 2 * t + 6
        if reset then
          ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'SET', 'i64', ARGV[q], amount and amount_s or '0'
          ops[k + 5], ops[k + 6], ops[k + 7], ops[k + 8] = 'SET', 'u32', ARGV[q + 1], amount and '1' or '0'
          k = k + 8
        elseif amount then
          ops[k + 1], ops[k + 2], ops[k + 3], ops[k + 4] = 'INCRBY', 'i64', ARGV[q], amount_s
          ops[k + 5], ops[k + 6], ops[k + 7], ops[k + 8] = 'INCRBY', 'u32', ARGV[q + 1], '1'
          k = k + 8
        end
      end
    end
  end
  redis.call('BITFIELD', key, unpack(ops, 1, k))
  if fresh or day ~= DAY then redis.call('PEXPIRE', key, ttl) end
  return 0, raw
end

local out = {''}
for e = 0, n - 1 do
  local j = COMMON + 1 + PER * e
  out[2 * e + 2], out[2 * e + 3] =
    count(KEYS[r + e + 1], ARGV[j] == 's', tonumber(ARGV[j + 1]), ARGV[j + 2], ARGV[j + 3], j)
end
for i = r + n + 1, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i]) or ''
end
return out
