-- The mix of mix.lua, paced: each connection waits so that all together send about
-- RATE requests/s (wrk -c CONNS). Cheaper on CPU than k6, so the sidecar, not the
-- generator, dominates the measured latency. It is closed-loop: at this low
-- utilisation coordinated omission is small, but k6's open-loop figure is reported too.
dofile("loadtest/mix.lua")
dofile("loadtest/pace.lua")
