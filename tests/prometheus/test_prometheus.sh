#!/usr/bin/env bash
# test_prometheus.sh: Debian's real Prometheus scrapes a real loopd every
# second, with config/prometheus/loopd.rules.yml loaded, and its HTTP API
# answers PromQL the way a dashboard would ask:
#   - rate(loopd_http_requests_total{route="/metrics"}[10s]) is the scrape rate (~1/s),
#     and a burst of 200 GET / shows up exactly in the counter and in its rate;
#   - histogram_quantile(0.99, rate(loopd_event_loop_lag_seconds_bucket[20s])) is
#     small at rest, and after 30 x /block?ms=200 it is between 0.1 s and 0.5 s;
#   - loopd_loop_stalls_total counts those 30 stalls, and the LoopdLoopStalls
#     alert fires; every rule evaluates without error.
# No fixed ports (loopd on port 0, Prometheus on a port the kernel picked, retried
# if taken meanwhile) and no fixed sleeps: everything polls with a deadline.
set -uo pipefail
bin=${LOOPD_BIN:?LOOPD_BIN: the loopd binary}
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
py=/usr/bin/python3
for tool in prometheus curl "$py"; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool missing (./dev installs the test packages)"; exit 1; }
done

tmp=$(mktemp -d)
loopd_pid="" prom_pid=""
cleanup() {
  [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null && wait "$prom_pid" 2>/dev/null
  [ -n "$loopd_pid" ] && kill "$loopd_pid" 2>/dev/null && wait "$loopd_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  echo "--- loopd stderr:"; tail -5 "$tmp/loopd.err" 2>/dev/null
  echo "--- prometheus log:"; tail -15 "$tmp/prom.err" 2>/dev/null
  exit 1
}

# until_ok SECONDS CMD...: runs CMD every 0.2 s until it succeeds or time is up.
until_ok() {
  local end=$((SECONDS + $1))
  shift
  while ! "$@"; do
    [ $SECONDS -lt $end ] || return 1
    sleep 0.2
  done
}

# ---- loopd on a free port; a stall is a turn over 100 ms (the default) ----
"$bin" --listen 127.0.0.1:0 --set monitor.stall_ms=100 2>"$tmp/loopd.err" &
loopd_pid=$!
until_ok 10 grep -q "listening on" "$tmp/loopd.err" || fail "loopd did not start"
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/loopd.err" | head -1)
[ -n "$port" ] || fail "no port in loopd's start line"
loopd_url="http://127.0.0.1:$port"

# ---- Prometheus: scrape and evaluate every second ----
cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $src/config/prometheus/loopd.rules.yml
scrape_configs:
  - job_name: loopd
    static_configs:
      - targets: ['127.0.0.1:$port']
EOF
free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
prom_ready() { curl -fs --max-time 2 -o /dev/null "$api/-/ready"; }
for attempt in 1 2 3 4 5; do
  pport=$(free_port)
  api="http://127.0.0.1:$pport"
  rm -rf "$tmp/data"
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn 2>"$tmp/prom.err" &
  prom_pid=$!
  end=$((SECONDS + 60))
  while ! prom_ready && kill -0 "$prom_pid" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
  prom_ready && break
  kill "$prom_pid" 2>/dev/null; wait "$prom_pid" 2>/dev/null; prom_pid=""
  grep -q "address already in use" "$tmp/prom.err" || fail "prometheus did not become ready"
  echo "port $pport taken meanwhile (attempt $attempt); another"
done
[ -n "$prom_pid" ] || fail "prometheus found no free port in 5 attempts"
echo "loopd on $port, prometheus $(prometheus --version 2>&1 | head -1 | awk '{print $3}') on $pport"

# q QUERY: the first sample's value of an instant query ("none" when empty).
q() {
  curl -fsS --max-time 5 "$api/api/v1/query" --data-urlencode "query=$1" |
    "$py" -c 'import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
res = r["data"]["result"]
print(res[0]["value"][1] if res else "none")'
}
# holds QUERY PYEXPR: PYEXPR (on v, the value as a float) holds now.
holds() {
  local v
  v=$(q "$1") || return 1
  [ "$v" != none ] || return 1
  last_value=$v
  "$py" -c "import math, sys; v = float(sys.argv[1]); sys.exit(0 if ($2) else 1)" "$v"
}
# expect SECONDS QUERY PYEXPR WHAT: waits until it holds; says the value.
expect() {
  last_value=none
  until_ok "$1" holds "$2" "$3" || fail "$4: $2 = $last_value, wanted $3"
  echo "ok: $4: $2 = $last_value"
}

expect 30 'up{job="loopd"}' 'v == 1' "loopd scraped"
# A scrape a second: once 15 s of them are in (the series began at the second), the
# /metrics counter's rate over 10 s is about 1/s (margins: a loaded machine delays scrapes).
expect 40 'count_over_time(up{job="loopd"}[20s])' 'v >= 15' "15 s of scrapes"
expect 5 'rate(loopd_http_requests_total{route="/metrics",code="200"}[10s])' \
  '0.75 <= v <= 1.25' "scrape rate"

# A series is born at its first request, and rate() needs it seen before the burst
# (Prometheus cannot know a new series started from 0): one GET / first, then 200
# on one connection. The counter says exactly 201, and its rate moves.
curl -fsS --max-time 5 "$loopd_url/" >/dev/null || fail "GET /"
expect 15 'loopd_http_requests_total{route="/",code="200"}' 'v == 1' "first request counted"
curl -fsS --max-time 30 "$loopd_url/?n=[1-200]" >/dev/null || fail "GET / x200"
expect 15 'loopd_http_requests_total{route="/",code="200"}' 'v == 201' "burst counted"
expect 15 'rate(loopd_http_requests_total{route="/",code="200"}[30s])' 'v > 0' "request rate"

# Lag at rest: p99 well under a stall (a number, not NaN: samples come every 10 ms).
expect 15 'histogram_quantile(0.99, rate(loopd_event_loop_lag_seconds_bucket[20s]))' \
  '0 <= v < 0.1' "p99 lag at rest"
expect 5 'loopd_loop_stalls_total' 'v == 0' "no stall yet"

# 30 blocks of 200 ms: 30 late samples (~0.2 s each) among ~1,400 in 20 s, over 1%,
# so the p99 lands in the (0.1, 0.25] bucket; each block is one stall.
for i in $(seq 30); do
  curl -fsS --max-time 5 -o /dev/null "$loopd_url/block?ms=200" || fail "/block #$i"
done
expect 20 'histogram_quantile(0.99, rate(loopd_event_loop_lag_seconds_bucket[20s]))' \
  '0.1 <= v <= 0.5' "p99 lag after /block"
expect 15 'loopd_loop_stalls_total' 'v >= 30' "stalls counted"
expect 15 'increase(loopd_loop_stalls_total[1m])' 'v > 0' "stall increase"
grep -q "loop stalled [0-9]* ms: GET /block?ms=200" "$tmp/loopd.err" || fail "no stall line naming /block"

# The rules: every one loaded and evaluating cleanly, and the stall alert firing.
rules() {
  curl -fsS --max-time 5 "$api/api/v1/$1" | "$py" -c "$2"
}
until_ok 15 rules rules 'import json, sys
r = json.load(sys.stdin)["data"]["groups"]
rs = [x for g in r for x in g["rules"]]
names = sorted(x["name"] for x in rs)
want = sorted(["LoopdEventLoopLagHigh", "LoopdLoopStalls", "LoopdWorkPoolSaturated",
               "LoopdLoopGone", "LoopdDown"])
bad = [(x["name"], x.get("lastError")) for x in rs if x.get("health") != "ok"]
if names != want or bad:
    print("rules:", names, "unhealthy:", bad)
    sys.exit(1)' || fail "rules not all loaded and healthy"
echo "ok: 5 rules loaded, all healthy"
until_ok 15 rules alerts 'import json, sys
a = json.load(sys.stdin)["data"]["alerts"]
firing = sorted(x["labels"]["alertname"] for x in a if x["state"] == "firing")
if firing != ["LoopdLoopStalls"]:
    print("firing:", firing)
    sys.exit(1)' || fail "LoopdLoopStalls should be the one alert firing"
echo "ok: LoopdLoopStalls firing (and nothing else)"
