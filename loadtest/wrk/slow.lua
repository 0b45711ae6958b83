-- slow.lua: GET /slow?ms=N (LOOPD_SLOW_MS, default 50), the background of the mixed load.
local report = dofile((os.getenv("LOOPD_WRK_DIR") or "loadtest/wrk") .. "/report.lua")
wrk.path = "/slow?ms=" .. (os.getenv("LOOPD_SLOW_MS") or "50")
done = report.done
