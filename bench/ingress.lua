-- wrk script: POST to a Restate ingress path with a fresh order id per request, the peer's
-- equivalent of bench/post_orders.lua. Arguments after `--`: the path template with `{uuid}`
-- where the order id goes (SEND_PATH of bench/peers/restate/peer.sh start) and the customer id
-- prefix (default "bench"). The order id is also the `idempotency-key`, and the body is the one
-- Orders gets. Ids are UUID-shaped (version 4 nibble, variant a) and unique by construction:
-- the script's start second, the thread and a per-thread counter, plus random bits.
local template = "/Order/{uuid}/place/send"
local prefix = "bench"
local counter = 0
local thread_id = 0
setup = function(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
end
init = function(args)
  if args[1] then template = args[1] end
  if args[2] then prefix = args[2] end
  -- Every thread starts with the same generator state: seed it with the thread's number.
  math.randomseed(os.time() * 1000 + tid)
  started = os.time()
end
request = function()
  counter = counter + 1
  local id = string.format("%08x-%04x-4%03x-a%03x-%012x", started % 0x100000000, tid % 0x10000,
    math.random(0, 0xfff), math.random(0, 0xfff), counter)
  local path = template:gsub("{uuid}", id)
  local body = '{"customerId":"' .. prefix .. '-' .. (counter % 100) .. '","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
  return wrk.format("POST", path, {["content-type"] = "application/json", ["idempotency-key"] = id}, body)
end
