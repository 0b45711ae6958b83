-- report.lua: shared by the loadtest wrk scripts. done() prints one line,
-- "LOOPD_RESULT {json}", so the harness parses no free text.
local M = {}

-- wrk counts every pipelined request but records one latency per batch, so
-- its high percentiles come back 0 for pipelined loads: say null, not 0.
local function pct(latency, p)
  local v = latency:percentile(p)
  if v == 0 and latency.max > 0 then return "null" end
  return string.format("%.3f", v / 1e3)
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'LOOPD_RESULT {"requests":%d,"duration_s":%.3f,"rps":%.1f,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_ms":{"p50":%s,"p90":%s,"p99":%s,"max":%.3f,"mean":%.3f}}\n',
    summary.requests, secs, summary.requests / secs, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    pct(latency, 50), pct(latency, 90), pct(latency, 99),
    latency.max / 1e3, latency.mean / 1e3))
end

return M
