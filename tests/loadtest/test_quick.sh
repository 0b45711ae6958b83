#!/usr/bin/env bash
# test_quick.sh: the loadtest harness in quick mode (a second per point
# here), so it cannot rot: every point measured, the CSV, the summary, the
# plots and each result set's meta.txt written. Skipped (77) without wrk. Not a benchmark: numbers unchecked
# beyond "requests were served".
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v wrk >/dev/null || { echo "wrk not installed: skipped"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$src/loadtest/run" compare --quick --duration 1 --conns 10,50 --modes event,threads \
  --out "$out" || fail "compare exited $?"
csv="$out/results.csv"
rows=$(($(wc -l <"$csv") - 1))
[ "$rows" = 16 ] || fail "expected 16 points (2 modes x 4 loads x 2), got $rows"
awk -F, 'NR>1 && $5+0 <= 0 {bad=1; print "no requests:", $0} END{exit bad}' "$csv" || fail "empty point"
awk -F, 'NR>1 && $2!="mixed" && $11+0 > 0 {bad=1; print "non-2xx:", $0} END{exit bad}' "$csv" || fail "errors"
awk -F, 'NR>1 && ($16+0 <= 0 || $17+0 <= 0) {bad=1; print "no proc sample:", $0} END{exit bad}' "$csv" ||
  fail "RSS/threads not sampled"
for load in get echo pipeline mixed; do
  grep -q "^## $load" "$out/summary.md" || fail "summary lacks $load"
  for m in rps rss; do
    head -c 8 "$out/$load-$m.png" | grep -q PNG || fail "$load-$m.png is not a PNG"
  done
done
grep -q "event/threads" "$out/summary.md" || fail "no ratio table"

"$src/loadtest/run" lag-demo --quick --out "$out/lag" || fail "lag-demo exited $?"
for f in summary.md timeline.png timeline.csv; do
  [ -s "$out/lag/$f" ] || fail "lag-demo wrote no $f"
done
for phase in baseline block block_budgets_off slow cpu; do
  grep -q "| $phase |" "$out/lag/summary.md" || fail "lag-demo table lacks $phase"
  # every phase has its beats (3 s at one per 20 ms: about 150)
  beats=$(awk -F, -v P="$phase" '$3==P {n++} END {print n+0}' "$out/lag/timeline.csv")
  [ "$beats" -ge 50 ] || fail "lag-demo timeline has $beats beats in $phase"
done
# the /block burst (150 ms jobs) shows in the block phase, and only there
awk -F, '$3=="block" && $2+0 >= 140 {hit=1} END {exit !hit}' "$out/lag/timeline.csv" ||
  fail "lag-demo timeline shows no /block stall in the block phase"
awk -F, '$3=="baseline" && $2+0 >= 140 {hit=1} END {exit hit}' "$out/lag/timeline.csv" ||
  fail "lag-demo timeline puts a stall in the baseline"
# with server.turn_budgets = off the 150 ms jobs that are ready together run
# in one turn (all four on a quiet machine: one gap of ~600 ms; on a loaded
# one the four curls start up to ~200 ms apart, and two or three meet), where
# the budgets run one a turn (gaps of ~150): 270 ms is two jobs back to back
awk -F, '$3=="block_budgets_off" && $2+0 >= 270 {hit=1} END {exit !hit}' "$out/lag/timeline.csv" ||
  fail "lag-demo: no two /block in one turn with server.turn_budgets = off"
awk -F, '$3=="block" && $2+0 >= 270 {hit=1} END {exit hit}' "$out/lag/timeline.csv" ||
  fail "lag-demo: two /block in one turn with the turn budgets on"
"$src/loadtest/run" monitor-cost --quick --out "$out/cost" || fail "monitor-cost exited $?"
[ "$(grep -c '^o[nf]*,1,[0-9]' "$out/cost/results.csv")" = 2 ] || fail "monitor-cost: expected an on and an off run"
grep -q '^Medians: on [0-9]* req/s, off [0-9]* req/s' "$out/cost/summary.md" || fail "monitor-cost summary"
"$src/loadtest/run" events-cost --quick --out "$out/ev" >/dev/null || fail "events-cost exited $?"
grep -q '^median: process CPU .* us per snapshot per viewer' "$out/ev/results.txt" ||
  fail "events-cost: $(cat "$out/ev/results.txt")"
# every result set says how it was made
for d in "$out" "$out/lag" "$out/cost" "$out/ev"; do
  for k in commit command loopd kernel cpu pinning repeats 'load before' 'load after'; do
    grep -q "^$k: ." "$d/meta.txt" || fail "$d/meta.txt lacks $k"
  done
done
grep -q '^command: loadtest/run compare --quick --duration 1' "$out/meta.txt" || fail "meta.txt: $(grep command "$out/meta.txt")"
echo "ok: $rows points, summary, plots, lag-demo, monitor-cost, events-cost"
