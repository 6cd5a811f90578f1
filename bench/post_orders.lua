-- wrk script: POST /orders with a unique idempotency key per request (new orders only).
-- Optional arguments after `--`: the customer id prefix, so the harness can find these orders
-- in the database afterwards (default "bench"), and a bearer token sent as `Authorization:
-- Bearer` on every request (identity on; an admin token, since the customers vary).
local counter = 0
local thread_id = 0
local prefix = "bench"
local token = nil
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
init = function(args)
  if args[1] then prefix = args[1] end
  if args[2] and args[2] ~= "" then token = args[2] end
end
request = function()
  counter = counter + 1
  local key = string.format("%s-%d-%d-%d", prefix, tid, counter, math.random(1, 1e9))
  local body = '{"customerId":"' .. prefix .. '-' .. (counter % 100) .. '","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  local headers = {["Content-Type"] = "application/json", ["x-idempotency-key"] = key}
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/orders", headers, body)
end
