#!/usr/bin/env bash
# test_openloop_quick.sh: the open-loop client and scenario. First the
# property the client exists for: a 300 ms /block in the middle of a
# constant-rate run is charged to every request due while it lasted, not
# only to the few in flight (a client that timed from the actual send would
# put p99 near the normal latency). Then loadtest/run openloop --quick: the
# reference maximum measured, every server (those installed) at every rate,
# percentiles in order, no errors, the summary, the plot and meta.txt.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src/loadtest/lib.sh"
command -v wrk >/dev/null || { echo "wrk not installed: skipped"; exit 77; }
out=$(mktemp -d)
trap 'stop_all; rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
client=$(tool_bin loadtest/openloop)
SRV_PIN=()
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2"; }

# 2,000 req/s on 20 connections for 3 s; at 1.2 s one /block?ms=300 stalls the loop
start_loopd "$out/loopd.log"
"$client" "$SRV_PORT" 2000 20 3 --warmup 0.2 >"$out/co.txt" 2>&1 &
cl=$!
PIDS+=("$cl")
sleep 1.2 # into the run, so the stall falls among scheduled requests
curl -s -o /dev/null "http://127.0.0.1:$SRV_PORT/block?ms=300" || fail "/block failed"
wait "$cl" || fail "openloop exited $?: $(cat "$out/co.txt")"
stop_pid "$SRV_PID"
cat "$out/co.txt"
p50=$(kv p50_us "$out/co.txt") p99=$(kv p99_us "$out/co.txt") max=$(kv max_us "$out/co.txt")
ans=$(kv answered "$out/co.txt") err=$(kv errors "$out/co.txt")
[ "${ans:-0}" -ge 5000 ] || fail "only ${ans:-0} answers of 5,600"
[ "${err:-1}" = 0 ] || fail "$err errors"
# about 10% of the requests are due during the 300 ms stall: p99 is a wait of
# over 150 ms, the max about 300 ms; the median is untouched
awk -v p="$p99" 'BEGIN {exit !(p >= 150000)}' || fail "p99 $p99 us: the stall is not charged to the requests due during it"
awk -v m="$max" 'BEGIN {exit !(m >= 250000 && m < 2000000)}' || fail "max $max us for a 300 ms stall"
awk -v p="$p50" 'BEGIN {exit !(p < 100000)}' || fail "p50 $p50 us: more than the stall was slow"

"$src/loadtest/run" openloop --quick --out "$out/run" >"$out/run.out" 2>&1 ||
  { tail -20 "$out/run.out"; fail "openloop --quick exited $?"; }
csv="$out/run/results.csv"
servers="event threads"
for p in nginx h2o; do
  if [ -z "$(peer_missing "$p")" ]; then servers+=" $p"; else echo "skipped: $p: $(peer_missing "$p")"; fi
done
grep -q 'maximum at 100 connections: [0-9]* req/s' "$out/run.out" || fail "no reference maximum"
for s in $servers; do
  for pct in 25 50 75 90; do
    row=$(awk -F, -v S="$s" -v P="$pct" '$1==S && $2==100 && $3==P' "$csv")
    [ -n "$row" ] || fail "no point for $s at $pct%"
    # answered, percentiles in order, no connection errors
    echo "$row" | awk -F, '$6+0 <= 0 || $7+0 <= 0 || $9+0 < $7+0 || $10+0 < $9+0 || $11+0 < $10+0 || $13+0 > 0 {exit 1}' ||
      fail "bad point: $row"
  done
done
grep -q '^| event | 25% |' "$out/run/summary.md" || fail "summary lacks event at 25%"
head -c 8 "$out/run/latency-100.png" | grep -q PNG || fail "latency-100.png is not a PNG"
grep -q '^reference maximum: ' "$out/run/meta.txt" || fail "meta.txt does not say the reference maximum"
echo "ok: the stall charged to the requests due during it (p99 $p99 us); openloop --quick: $servers"
