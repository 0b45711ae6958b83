-- heartbeat.lua: GET /heartbeat, the probe of the mixed load (its latency is
-- the loop's responsiveness while /slow jobs run).
local report = dofile((os.getenv("LOOPD_WRK_DIR") or "loadtest/wrk") .. "/report.lua")
wrk.path = "/heartbeat"
done = report.done
