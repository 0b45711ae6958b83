#!/usr/bin/env bash
# test_hostile_quick.sh: loadtest/run hostile in quick mode (seconds per attack),
# so the suite cannot rot: every attack has its rows (loopd, and nginx where
# it applies), each measured or skipped with a reason, nothing crashed, the
# CSV and summary written. Not a benchmark: latency targets are not checked,
# and "hung" (a known defect of the current server, a stall the test records) is a result.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$src/loadtest/run" hostile --quick --out "$out" >"$out/stdout" 2>"$out/stderr" ||
  { tail -20 "$out/stderr"; fail "hostile exited $?"; }
csv="$out/results.csv"
[ -s "$csv" ] || fail "no results.csv"
both="baseline slowloris slowbody slowread pipeline-root"
for a in $("$src/loadtest/run" hostile --list); do
  servers=loopd
  case " $both " in *" $a "*) servers="loopd nginx" ;; esac
  for s in $servers; do
    row=$(awk -F, -v A="$a" -v S="$s" '$1==A && $2==S' "$csv")
    [ -n "$row" ] || fail "no row for $a on $s"
    st=$(echo "$row" | cut -d, -f3)
    case $st in
      ok | hung) ;;
      skip) echo "skipped: $row" ;;
      *) grep -h -A5 -E "AddressSanitizer|runtime error|Segmentation" "$out"/raw/"$a-$s".err 2>/dev/null | head -20
         fail "$a on $s: $st: $row" ;;
    esac
    # a measured row has the probe's samples and the server's fds
    if [ "$st" != skip ]; then
      echo "$row" | awk -F, '$4=="" || $10=="" {exit 1}' || fail "$a on $s: row not filled: $row"
    fi
    grep -q "^| $a | $s |" "$out/summary.md" || fail "summary lacks $a on $s"
  done
done
# the probe saw a baseline and the pipelining flood was served
awk -F, '$1=="baseline" && $2=="loopd" && $4+0 >= 10 {ok=1} END {exit !ok}' "$csv" || fail "baseline probe"
grep -q '^pipeline-root,loopd,.*answered=[1-9]' "$csv" || fail "the flood got no answers"
# a second run of the same attack samples and checks as the first: the
# sampler's stop file and haproxy's socket are the last run's no more
"$src/loadtest/run" hostile --quick --repeat 2 --attacks baseline,smuggle --out "$out/again" \
  >"$out/again.stdout" 2>"$out/again.stderr" || { tail -20 "$out/again.stderr"; fail "hostile --repeat 2 exited $?"; }
for run in 1 2; do
  row=$(awk -F, -v R="$run" '$1=="baseline" && $2=="loopd" && $16==R' "$out/again/results.csv")
  echo "$row" | awk -F, '$9+0 > 0 && $11+0 > $10+0 {ok=1} END {exit !ok}' ||
    fail "run $run: no RSS or fd peak sampled: $row"
  if command -v haproxy >/dev/null; then
    row=$(awk -F, -v R="$run" '$1=="smuggle" && $16==R' "$out/again/results.csv")
    [ "$(echo "$row" | cut -d, -f3)" = ok ] || fail "run $run: smuggle: $row"
  fi
done
echo "ok: $(($(wc -l <"$csv") - 1)) rows"
