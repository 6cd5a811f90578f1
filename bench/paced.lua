-- wrk script: POST /orders (no idempotency key) at a paced rate, for bench/retention.sh's
-- windows (bench/run.sh uses orders-bench-load instead). Arguments after `--`: customer id,
-- target rate per second, connections. Each connection waits connections/rate seconds after
-- each answer, so the rate is at most the target. NOT latency corrected: a slow answer delays
-- the requests behind it instead of counting their wait (coordinated omission).
local customer, pause_ms = "paced", 10
init = function(args)
  customer = args[1] or customer
  local rate, conns = tonumber(args[2] or "100"), tonumber(args[3] or "1")
  pause_ms = conns * 1000 / rate
end
delay = function()
  return pause_ms
end
request = function()
  local body = '{"customerId":"' .. customer .. '","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
end
