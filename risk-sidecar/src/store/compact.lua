-- Folds an entity's journal into its block (journal.rs): the sidecar read the string,
-- folded its first ARGV[2] bytes into counters, and sends them here, off the decision's
-- path. Refused (0) when the block's generation is no longer the one it read: the block
-- was replaced since, and those bytes are no longer a prefix of the string. Entries
-- appended after the sidecar's read are kept after the new block, and the label view is
-- taken from the string as it is now (labels.lua may have written it meanwhile).
--
-- KEYS: [1] the entity's counters
-- ARGV: [1] the generation read  [2] the bytes folded  [3] the counters, the layout's
--   string up to its label view  [4] the label view's length

assert(#KEYS == 1 and #ARGV == 4, 'compact.lua: KEYS and ARGV do not match the layout')
local FRAME = 9
local folded, counters, view_len = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local raw = redis.call('GET', KEYS[1])
if not raw or #raw < folded then return 0 end
local generation, view = 0, nil
if string.byte(raw, 1) == 99 and #raw >= FRAME then
  local len
  len, generation = struct.unpack('>I4I4', raw, 2)
  if len >= FRAME + view_len and len <= #raw then view = string.sub(raw, len - view_len + 1, len) end
end
if generation ~= tonumber(ARGV[1]) then return 0 end
view = view or string.rep('\0', view_len)
local len = FRAME + #counters + view_len
redis.call('SET', KEYS[1], 'c' .. struct.pack('>I4I4', len, (generation + 1) % 4294967296) .. counters .. view ..
  string.sub(raw, folded + 1), 'KEEPTTL')
return 1
