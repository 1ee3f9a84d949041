-- wrk request mix for POST /v1/decisions: the simulator's history (HISTORY, default
-- build/history.jsonl: shoppers with habits and ~1.3 % fraud campaigns), cycled through
-- in order, each request under a fresh transaction id so every one is a new decision.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  -- Letters between the numbers: digits joined by dashes alone could make a 13-19 digit
  -- Luhn-valid run, which the sidecar refuses as a card number.
  run = string.format("%dt%d", os.time(), tid)
  counter = 0
  lines = {}
  local path = os.getenv("HISTORY") or "build/history.jsonl"
  for line in io.lines(path) do
    lines[#lines + 1] = line
  end
  -- Threads start at different places of the history.
  position = math.floor(#lines * (tid - 1) / math.max(#threads, 1))
end

request = function()
  counter = counter + 1
  position = position % #lines + 1
  local body = string.gsub(lines[position], '"transaction_id":"[^"]*"',
    string.format('"transaction_id":"wrk-%s-n%d"', run, counter), 1)
  return wrk.format("POST", "/v1/decisions", {["Content-Type"] = "application/json"}, body)
end

dofile("loadtest/report.lua")
