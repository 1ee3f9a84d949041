-- The hot customer: every request the same customer, card, device and IP, under a fresh
-- transaction id, to show that a decision's cost does not grow with an entity's history.
-- HOT_HISTORY=N: the first N requests are back-dated evenly over the last 30 days (the
-- month of history, sent once before the measured run); after them, the event time is
-- now. HOT_ID names the entities (a fresh one per bench run).
local hot = os.getenv("HOT_ID") or "hot"
local history = tonumber(os.getenv("HOT_HISTORY") or "0")
local run = string.format("%dh", os.time())
local counter = 0
local month = 30 * 86400

local template = [[{"transaction_id":"%s","occurred_at":"%s",]] ..
  [["amount":{"value_minor":%d,"currency":"EUR"},]] ..
  [["customer":{"id":"cus-%s","email":"hot@example.com","account_created_at":"2024-01-01T00:00:00Z"},]] ..
  [["payment":{"method":"card","card_fingerprint":"card-%s","bin":"411111","last4":"1111","card_country":"DE"},]] ..
  [["device":{"ip":"203.0.113.77","id":"dev-%s"},"shipping":{"country":"DE"},"billing":{"country":"DE"},]] ..
  [["items":[{"sku":"sku-1","quantity":1,"unit_price_minor":2599}]}]]

request = function()
  counter = counter + 1
  local at = os.time()
  if counter <= history then
    at = at - month + math.floor(counter * month / history)
  end
  -- Letters between the numbers: digits joined by dashes alone could make a 13-19 digit
  -- Luhn-valid run, which the sidecar refuses as a card number.
  local body = string.format(template, string.format("hot%sx%sn%d", hot, run, counter),
    os.date("!%Y-%m-%dT%H:%M:%SZ", at), 1000 + counter % 5000, hot, hot, hot)
  return wrk.format("POST", "/v1/decisions", {["Content-Type"] = "application/json"}, body)
end

dofile("loadtest/report.lua")
