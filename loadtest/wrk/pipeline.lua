-- pipeline.lua: 16 GET / per write, as TechEmpower's plaintext test does.
-- wrk then counts latency per batch of 16.
local report = dofile((os.getenv("LOOPD_WRK_DIR") or "loadtest/wrk") .. "/report.lua")
local depth = tonumber(os.getenv("LOOPD_PIPELINE") or "16")
init = function(args)
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
done = report.done
