-- One decision's Redis work in one call: the idempotency reservation, then per entity
-- one GET and one SET of its counters (a fixed-size string, laid out as state.rs
-- documents; its last section, the label view, is written by labels.lua only). On Redis
-- Cluster the sidecar sends one call per entity (its keys share a hash tag, so a slot)
-- and the reservation as a plain SET in the same pipeline; on a single Redis, the whole
-- decision in one call. Every string Lua makes costs Redis about a microsecond per
-- kilobyte (Redis's Lua hashes each one whole), so the script cuts and copies as little
-- as it can, and leaves the reading of the counters to the sidecar.
--
-- KEYS: [1] the decision key when ARGV[1] is "1", then per entity i (0-based):
--   [r+i+1] st   the counters and label view (string)
-- ARGV, numbers formatted by the sidecar (formatting in Lua costs Redis CPU):
--   [1] "1": reserve the decision key first, "0": no reservation in this call
--   [2] the reservation record  [3] its TTL, ms
--   [4] event time, Unix ms  [5] CRC-32 of the transaction id (4 bytes)
--   [6] amount in reference minor units, or "" when unknown  [7] counters' TTL, ms
--   [8..10] the event's bucket number in tiers 0, 1, 2  [11..13] the tiers' slots
--   [14] ring size  [15] the label view's length
--   then per entity i: [16+3i] flags: "c" count the event, "s" keep amount sums,
--   "l" read the label view; [17+3i] link slots (0: none kept); [18+3i] CRC-32 of
--   the linked member (4 bytes) or ""
--
-- Returns {record} when the decision key held one (a retry: nothing is counted), else
-- {"", then per entity: 1 if the ring already held the transaction (0 otherwise), and
-- the entity's string after this event ("" when there is none and nothing to count)}.
-- Redis commands: 1 for the reservation, then per entity at most 2 (GET, SET), whatever
-- the entity's history.

local COMMON, PER = 15, 3
local reserve = ARGV[1] == '1'
local r = reserve and 1 or 0
local n = (#ARGV - COMMON) / PER
assert(n >= 0 and n == math.floor(n) and #KEYS == r + n, 'velocity.lua: KEYS and ARGV do not match the layout')

if reserve then
  local prev = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'GET', 'PX', ARGV[3])
  if prev then return {prev} end
end

local ts, txh, amount, ttl = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6]), ARGV[7]
local RING = tonumber(ARGV[14])
local HEADER = 16
local IDS = HEADER + 8 * RING
local BUCKET = {tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])}
local SLOTS = {tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])}
local TIER_AT = {IDS + 4 * RING}
TIER_AT[2] = TIER_AT[1] + 8 * SLOTS[1]
TIER_AT[3] = TIER_AT[2] + 8 * SLOTS[2]
local LINKS_AT = TIER_AT[3] + 8 * SLOTS[3]
local VIEW = tonumber(ARGV[15])
local RING_FMT = '<' .. string.rep('i8', RING)

local function has(flags, f) return string.find(flags, f, 1, true) ~= nil end

-- `len` zero bytes, cut from one string made once per call. Not string.rep: Lua 5.1
-- builds that a byte at a time (a new entity cost 20 times a known one), and every
-- string Lua makes costs Redis about a microsecond a kilobyte.
local ZEROS = nil
local function zeros(len)
  if not ZEROS or #ZEROS < len then
    local z = '\0\0\0\0\0\0\0\0'
    while #z < len do z = z .. z end
    ZEROS = z
  end
  return string.sub(ZEROS, 1, len)
end

-- Replaces byte ranges; `edits` are {0-based offset, bytes}, ascending, disjoint.
local function splice(raw, edits)
  local parts, pos = {}, 1
  for _, e in ipairs(edits) do
    parts[#parts + 1] = string.sub(raw, pos, e[1])
    parts[#parts + 1] = e[2]
    pos = e[1] + #e[2] + 1
  end
  parts[#parts + 1] = string.sub(raw, pos)
  return table.concat(parts)
end

-- The same steps as state.rs's `record`; returns (already counted, counters).
local function count(key, sums, links, link)
  local sums1 = LINKS_AT + 12 * links
  local sums_at = {nil, sums1, sums1 + 12 * SLOTS[2]}
  local len = (sums and (sums_at[3] + 12 * SLOTS[3]) or sums1) + VIEW
  local raw = redis.call('GET', key)
  if (not raw) or #raw ~= len then raw = zeros(len) end

  local times = {struct.unpack(RING_FMT, raw, HEADER + 1)}
  local ids = string.sub(raw, IDS + 1, IDS + 4 * RING)
  local from = 1
  while true do
    local at = string.find(ids, txh, from, true)
    if not at then break end
    if (at - 1) % 4 == 0 and times[(at - 1) / 4 + 1] ~= 0 then return 1, raw end
    from = at + 1
  end

  local edits = {}
  local first = struct.unpack('<i8', raw, 1)
  if first == 0 or ts < first then edits[#edits + 1] = {0, struct.pack('<i8', ts)} end
  for i = 1, RING do
    if times[i] < ts then
      local tsec = string.sub(raw, HEADER + 1, IDS)
      edits[#edits + 1] = {HEADER, string.sub(tsec, 1, 8 * (i - 1)) .. struct.pack('<i8', ts)
        .. string.sub(tsec, 8 * (i - 1) + 1, 8 * (RING - 1))}
      edits[#edits + 1] = {IDS, string.sub(ids, 1, 4 * (i - 1)) .. txh .. string.sub(ids, 4 * (i - 1) + 1, 4 * (RING - 1))}
      break
    end
  end
  local sum_edits = {}
  for t = 1, 3 do
    local b = BUCKET[t]
    local slot = b % SLOTS[t]
    local at = TIER_AT[t] + 8 * slot
    local held, events = struct.unpack('<i4I4', raw, at + 1)
    local reset = held < b or events == 0
    if reset or held == b then
      edits[#edits + 1] = {at, struct.pack('<i4I4', b, reset and 1 or events + 1)}
      if sums and t > 1 then
        local s = sums_at[t] + 12 * slot
        local sum, k = 0, 0
        if not reset then sum, k = struct.unpack('<i8I4', raw, s + 1) end
        if amount then sum, k = sum + amount, k + 1 end
        sum_edits[#sum_edits + 1] = {s, struct.pack('<i8I4', sum, k)}
      end
    end
  end
  if link ~= '' and links > 0 then
    -- The member's own slot, else the first least recently seen (an empty one first).
    local pick, pick_last, last_seen = nil, nil, ts
    for i = 0, links - 1 do
      local member, last = struct.unpack('<I4i8', raw, LINKS_AT + 12 * i + 1)
      if last ~= 0 and string.sub(raw, LINKS_AT + 12 * i + 1, LINKS_AT + 12 * i + 4) == link then
        pick, last_seen = i, math.max(last, ts)
        break
      end
      if pick == nil or last < pick_last then pick, pick_last = i, last end
    end
    edits[#edits + 1] = {LINKS_AT + 12 * pick, link .. struct.pack('<i8', last_seen)}
  end
  for _, e in ipairs(sum_edits) do edits[#edits + 1] = e end
  local updated = splice(raw, edits)
  redis.call('SET', key, updated, 'PX', ttl)
  return 0, updated
end

local out = {''}
for e = 0, n - 1 do
  local flags, links, link = ARGV[COMMON + 1 + PER * e], tonumber(ARGV[COMMON + 2 + PER * e]), ARGV[COMMON + 3 + PER * e]
  local st = KEYS[r + e + 1]
  local dup, state = 0, ''
  if has(flags, 'c') then
    dup, state = count(st, has(flags, 's'), links, link)
  elseif has(flags, 'l') then
    state = redis.call('GET', st) or ''
  end
  out[#out + 1] = dup
  out[#out + 1] = state
end
return out
