-- echo.lua: POST /echo with a 1 KiB body; the answer is the body back.
local report = dofile((os.getenv("LOOPD_WRK_DIR") or "loadtest/wrk") .. "/report.lua")
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"
done = report.done
