-- The hot customer of hot.lua, paced as mix-paced.lua paces the mix: about RATE
-- requests/s from CONNS connections, random pauses with the right mean.
dofile("loadtest/hot.lua")
local rate = tonumber(os.getenv("RATE") or "2000")
local conns = tonumber(os.getenv("CONNS") or "20")
local pause = conns * 1000 / rate

function delay()
  return math.random() * 2 * pause
end
