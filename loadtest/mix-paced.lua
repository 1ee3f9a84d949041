-- The mix of mix.lua, paced: each connection waits so that all together send about
-- RATE requests/s (wrk -c CONNS). Cheaper on CPU than k6, so the sidecar, not the
-- generator, dominates the measured latency. It is closed-loop: at this low
-- utilisation coordinated omission is small, but k6's open-loop figure is reported too.
dofile("loadtest/mix.lua")
local rate = tonumber(os.getenv("RATE") or "2000")
local conns = tonumber(os.getenv("CONNS") or "20")
local pause = conns * 1000 / rate

-- Random pauses with the right mean: fixed ones fire every connection's timer together
-- and turn a steady rate into bursts of CONNS requests.
function delay()
  return math.random() * 2 * pause
end
