#!/usr/bin/env bash
# test_wrappers_quick.sh: the small scenarios around loadtest's C probes, in
# quick mode, so they cannot rot: idle-rss (memory per idle connection, both
# modes), expiry-burst (a slowloris burst reaching the header timeout),
# probe-latency (GET / while /block, /slow, /cpu run) and turn-probe (GET /
# while a hostile client works the loop). Checks what holds on any machine:
# every row there, the connections held and closed, /block on the loop seen
# by the probe and /slow not.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# bad SCENARIO MSG: fails with the scenario's last output lines (why a run gave no row)
bad() { tail -15 "$out/$1.out"; fail "$1: $2"; }
run() {
  "$src/loadtest/run" "$@" >"$out/$1.out" 2>&1
  local rc=$?
  [ "$rc" = 0 ] || { tail -20 "$out/$1.out"; fail "$1 exited $rc"; }
}

run idle-rss --quick --out "$out/idle"
for m in event threads; do
  awk -F, -v M="$m" '$1==M && $3==500 && $5+0 > $4+0 && $6+0 > 0 {ok=1} END {exit !ok}' "$out/idle/results.csv" ||
    bad idle-rss "$m: $(cat "$out/idle/results.csv")"
done
run expiry-burst --quick --out "$out/exp"
awk -F, 'NR==2 && $2==1000 && $5+0 > 0 && $8 != "null" {ok=1} END {exit !ok}' "$out/exp/results.csv" ||
  bad expiry-burst "$(cat "$out/exp/results.csv")"
run probe-latency --quick --out "$out/probe"
csv="$out/probe/results.csv"
# a 50 ms /block on the loop holds every probe behind it; /slow runs beside it
awk -F, '$1 ~ /^\/block/ && $5+0 >= 30 {ok=1} END {exit !ok}' "$csv" || bad probe-latency "/block not seen: $(cat "$csv")"
awk -F, '$1 ~ /^\/slow/ && $4+0 < 20 {ok=1} END {exit !ok}' "$csv" || bad probe-latency "/slow held GET /: $(cat "$csv")"
[ "$(awk -F, 'NR>1' "$csv" | wc -l)" = 4 ] || bad probe-latency "expected 4 rows: $(cat "$csv")"
run turn-probe --quick --out "$out/turn"
[ "$(awk -F, 'NR>1 && $3+0 > 0' "$out/turn/results.csv" | wc -l)" = 5 ] || bad turn-probe "$(cat "$out/turn/results.csv")"
for d in idle exp probe turn; do
  grep -q '^repeats: 1' "$out/$d/meta.txt" || fail "$d/meta.txt"
  grep -q '^| ' "$out/$d/summary.md" || fail "$d: no table in summary.md"
done
echo "ok: idle-rss, expiry-burst, probe-latency, turn-probe"
