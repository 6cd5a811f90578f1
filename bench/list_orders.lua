-- wrk script: GET /orders?customerId=<prefix>-<n>&limit=20, n random below the count given after
-- `--` (the customers bench/seed.py spreads the copied orders over: "seed", 10000).
local prefix, customers = "seed", 10000
init = function(args)
  if args[1] then prefix = args[1] end
  if args[2] then customers = tonumber(args[2]) end
end
request = function()
  return wrk.format("GET", "/orders?customerId=" .. prefix .. "-" .. math.random(0, customers - 1) .. "&limit=20")
end
