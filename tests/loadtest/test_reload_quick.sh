#!/usr/bin/env bash
# test_reload_quick.sh: loadtest/run reload in quick mode. What a user relies
# on: loopd, in both modes, reloaded every 200 ms under a fixed-rate load,
# takes every reload (its live key really changed) and loses no request,
# answering every one with a 2xx; nginx (when installed) has both rows and
# was reloaded. A row per server and phase; a meta.txt and a table.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
"$src/loadtest/run" reload --quick --out "$out/r" >"$out/run.out" 2>&1
rc=$?
[ "$rc" = 0 ] || { tail -20 "$out/run.out"; fail "reload exited $rc"; }
csv="$out/r/results.csv"
head -1 "$csv" | grep -q '^server,phase,run,reloads_asked,reloads_done,sent,answered,errors,unanswered,non2xx' ||
  fail "results.csv header: $(head -1 "$csv")"
servers="event threads"
if command -v nginx >/dev/null; then servers+=" nginx"; else
  grep -q 'nginx skipped: nginx is not installed' "$out/run.out" || fail "a missing nginx is not said"
fi
for s in $servers; do
  for p in steady reload; do
    [ "$(awk -F, -v S="$s" -v P="$p" '$1 == S && $2 == P' "$csv" | wc -l)" = 1 ] || fail "$s $p: no row: $(cat "$csv")"
  done
  # columns: 4 asked, 5 done, 7 answered, 8 errors, 9 unanswered, 10 non2xx
  awk -F, -v S="$s" '$1 == S && $2 == "reload" && $5 + 0 >= 3 {ok = 1} END {exit !ok}' "$csv" ||
    fail "$s: fewer than 3 reloads done in 1.5 s at one per 200 ms: $(cat "$csv")"
  awk -F, -v S="$s" '$1 == S && $2 == "steady" && $4 + 0 == 0 {ok = 1} END {exit !ok}' "$csv" ||
    fail "$s: the steady run was reloaded: $(cat "$csv")"
done
for m in event threads; do
  awk -F, -v S="$m" '$1 == S && $2 == "reload" && $5 == $4 {ok = 1} END {exit !ok}' "$csv" ||
    fail "$m: a reload asked was not taken: $(cat "$csv")"
  # a connection closed or broken under a request, or a non-2xx: never
  awk -F, -v S="$m" '$1 == S && $8 + $10 > 0 {bad = 1} END {exit bad}' "$csv" ||
    fail "$m: requests lost on a closed connection or not 2xx: $(cat "$csv")"
  # every request answered, unless the client itself was starved of its core
  # (column 18, client_runq_pct: seen at 92% under a machine's full load,
  # where the requests it could not send in time stay unanswered)
  while IFS=, read -r _ p _ _ _ _ answered _ unanswered _ _ _ _ _ _ _ _ runq; do
    if [ "${runq%.*}" -ge 50 ]; then
      echo "note: $m $p: the client waited for its core ${runq}% of the run; answered/unanswered not checked"
    elif [ "$unanswered" != 0 ] || [ "$answered" -lt 20000 ]; then
      fail "$m $p: $unanswered unanswered, $answered answered (client run-queue ${runq}%): $(cat "$csv")"
    fi
  done < <(awk -F, -v S="$m" '$1 == S' "$csv")
  grep -q 'SIGHUP: configuration reloaded .*changed: limits.idle_timeout_ms' "$out/r/raw/$m-reload-r1.log" ||
    fail "$m: the live key did not change on reload: $(grep SIGHUP "$out/r/raw/$m-reload-r1.log" | head -3)"
done
grep -q '^repeats: 1' "$out/r/meta.txt" || fail "meta.txt: $(cat "$out/r/meta.txt")"
grep -q '^| event | reload |' "$out/r/summary.md" || fail "no event reload row in summary.md"
echo "ok: reload: $(awk -F, 'NR > 1 && $2 == "reload" {printf "%s %s reloads %s lost; ", $1, $5, $8 + $9}' "$csv")"
