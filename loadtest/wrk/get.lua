-- get.lua: GET / on keep-alive connections (the wrk baseline).
local report = dofile((os.getenv("LOOPD_WRK_DIR") or "loadtest/wrk") .. "/report.lua")
done = report.done
