-- wrk script: POST /orders with a unique idempotency key per request (new orders only).
-- Optional argument after `--`: the customer id prefix, so the harness can find these orders
-- in the database afterwards (default "bench").
local counter = 0
local thread_id = 0
local prefix = "bench"
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
init = function(args)
  if args[1] then prefix = args[1] end
end
request = function()
  counter = counter + 1
  local key = string.format("%s-%d-%d-%d", prefix, tid, counter, math.random(1, 1e9))
  local body = '{"customerId":"' .. prefix .. '-' .. (counter % 100) .. '","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json", ["x-idempotency-key"] = key}, body)
end
