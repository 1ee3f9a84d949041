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

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK rps=%.0f p50_us=%d p99_us=%d p999_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status, errors))
end
