-- wrk script: POST /orders with a unique idempotency key per request (new orders only).
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
request = function()
  counter = counter + 1
  local key = string.format("bench-%d-%d-%d", tid, counter, math.random(1, 1e9))
  local body = '{"customerId":"bench-' .. (counter % 100) .. '","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json", ["x-idempotency-key"] = key}, body)
end
