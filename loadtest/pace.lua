-- Pacing for a wrk script: each connection waits so that all together send about RATE
-- requests/s (wrk -c CONNS). Random pauses with the right mean: fixed ones fire every
-- connection's timer together and turn a steady rate into bursts of CONNS requests.
local rate = tonumber(os.getenv("RATE") or "2000")
local conns = tonumber(os.getenv("CONNS") or "20")
local pause = conns * 1000 / rate

function delay()
  return math.random() * 2 * pause
end
