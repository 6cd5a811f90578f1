-- wrk script: POST /orders replaying one idempotency key (the harness created it first), so
-- every request is answered from the stored idempotency record.
request = function()
  local body = '{"customerId":"bench-replay","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json", ["x-idempotency-key"] = "bench-replay-key"}, body)
end
