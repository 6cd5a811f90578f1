-- wrk script: GET /orders/{id} over the ids listed (one a line) in the file given after `--`.
local ids = {}
init = function(args)
  for line in io.lines(args[1]) do
    ids[#ids + 1] = line
  end
end
request = function()
  return wrk.format("GET", "/orders/" .. ids[math.random(#ids)])
end
