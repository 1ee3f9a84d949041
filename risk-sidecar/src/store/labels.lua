-- The label and decline counters of one entity (its keys share a hash tag, so a slot):
-- each sorted set changed, then the view decisions read rebuilt from them, atomically.
-- The sets are the record (one member per transaction, so a label sent again changes
-- nothing and a superseding one moves the counts back); the view is the last section of
-- the entity's counters (state.rs), in its block (journal.rs), which velocity.lua reads
-- in its one GET: per set its newest scores, newest first, as i64 (0: empty), in the
-- order fr, lb, dc (labels.rs, `VIEW_SLOTS`). A missing or mis-sized block is started
-- from zeros.
--
-- KEYS: [1] fr  [2] lb  [3] dc  [4] st (the counters)
-- ARGV: [1] member (the transaction id)  [2] TTL, ms  [3] members kept per set
--   [4..6] the change to fr, lb, dc: "" none, "-" remove, else the score to add at
--   [7..9] the trim bound of fr, lb, dc after an add (members at or below it go)
--   [10..12] view slots of fr, lb, dc  [13] where the view starts in the layout, bytes
--   [14] the layout's length  [15] its layout version  [16] its link slots

assert(#KEYS == 4 and #ARGV == 16, 'labels.lua: KEYS and ARGV do not match the layout')
local member, ttl, keep = ARGV[1], ARGV[2], -(tonumber(ARGV[3]) + 1)
local view = {}
local ZERO = '\0\0\0\0\0\0\0\0'
for i = 1, 3 do
  local key, change = KEYS[i], ARGV[3 + i]
  if change == '-' then
    redis.call('ZREM', key, member)
  elseif change ~= '' then
    redis.call('ZADD', key, change, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[6 + i])
    redis.call('ZREMRANGEBYRANK', key, 0, keep)
    redis.call('PEXPIRE', key, ttl)
  end
  local slots = tonumber(ARGV[9 + i])
  local scores = redis.call('ZRANGE', key, '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, slots, 'WITHSCORES')
  for j = 2, #scores, 2 do view[#view + 1] = struct.pack('>i8', tonumber(scores[j])) end
  for _ = #scores / 2 + 1, slots do view[#view + 1] = ZERO end
end
view = table.concat(view)
-- The view is the end of the entity's block (journal.rs); entries journalled after the
-- block are kept. Written in place when the block is of the layout (its generation
-- kept: a compaction pending copies the view as it then is); otherwise a new empty
-- block, of a new generation, so a compaction made from the old one is refused.
local FRAME = 9
local at, total, version, links = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16])
local raw = redis.call('GET', KEYS[4]) or ''
local tag = string.byte(raw, 1)
local len, generation, valid, entries = 0, 0, false, ''
if tag == 99 and #raw >= FRAME then
  len, generation = struct.unpack('>I4I4', raw, 2)
  if len >= FRAME and len <= #raw then
    entries = string.sub(raw, len + 1)
    if len == FRAME + total then
      local v, l = struct.unpack('>I4I4', raw, FRAME + 25)
      valid = v == version and l == links
    end
  end
elseif tag == 101 then
  entries = raw
end
local block
if valid then
  block = string.sub(raw, 1, FRAME + at)
else
  local z = ZERO
  while #z < at do z = z .. z end
  block = 'c' .. struct.pack('>I4I4', FRAME + total, (generation + 1) % 4294967296) ..
    string.sub(z, 1, 24) .. struct.pack('>I4I4', version, links) .. string.sub(z, 33, at)
end
redis.call('SET', KEYS[4], block .. view .. entries, 'PX', ttl)
return 1
