-- wrk request mix for POST /v1/decisions (used by scripts/bench.sh for saturation).
-- 95 %: shoppers from a base of 50,000, each with two cards and one device;
-- 5 %: a card-testing ring (5 devices, 20 IPs, 2,000 cards, small amounts).
-- Transaction ids are unique per run and thread, so every request is a new decision.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  run = string.format("%d-%d", os.time(), tid)
  counter = 0
  math.randomseed(os.time() * 100 + tid)
end

request = function()
  counter = counter + 1
  local c = math.random(1, 50000)
  local card, device, ip, amount
  if math.random() < 0.05 then
    card = "fp-ring-" .. math.random(1, 2000)
    device = "dev-ring-" .. math.random(1, 5)
    ip = "198.51.100." .. math.random(1, 20)
    amount = math.random(100, 500)
  else
    card = "fp-" .. c .. "-" .. math.random(1, 2)
    device = "dev-" .. c
    ip = string.format("203.0.%d.%d", c % 250, c % 200)
    amount = math.floor(math.exp(6 + math.random() * 4))
  end
  -- 85 % of shoppers have an account (its date fixed per shopper); the rest check out as guests.
  local account = ""
  if c % 100 < 85 then
    account = string.format(',"account_created_at":"20%02d-%02d-%02dT10:00:00Z"', 22 + c % 4, 1 + c % 12, 1 + c % 28)
  end
  local body = string.format(
    '{"transaction_id":"wrk-%s-%d","amount":{"value_minor":%d,"currency":"EUR"},' ..
    '"customer":{"id":"cus-%d","email":"c%d@example.com"%s},' ..
    '"payment":{"method":"card","card_fingerprint":"%s","bin":"411111","last4":"0042","card_country":"DE"},' ..
    '"device":{"ip":"%s","id":"%s"},"shipping":{"country":"DE"},"billing":{"country":"DE"},' ..
    '"items":[{"sku":"sku-%d","quantity":1,"unit_price_minor":%d}]}',
    run, counter, amount, c, c, account, card, ip, device, c % 100, amount)
  return wrk.format("POST", "/v1/decisions", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("WRK rps=%.0f p50_us=%d p99_us=%d p999_us=%d requests=%d non2xx=%d socket_errors=%d\n",
    summary.requests / secs, latency:percentile(50), latency:percentile(99), latency:percentile(99.9),
    summary.requests, summary.errors.status, errors))
end
