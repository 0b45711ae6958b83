#!/usr/bin/env bash
# test_peers_quick.sh: the lesson's own world on the bench, in quick mode, so
# it cannot rot. One argument says which part:
#   compare  loadtest/run compare --peers asyncio,uvloop,h2o,nginx,node (GET /, echo)
#   lag      loadtest/run lag-demo --server loopd,asyncio,uvloop (the four phases)
#   c10k     loadtest/run c10k against event, threads, asyncio, nginx (200 and 1000)
# A peer that is not installed is skipped with a message (and the whole test
# with 77 when no peer is there). Not a benchmark: the checks are what must
# hold on any machine (every point served, stalls where /block is and only
# there, every connection held, a thread per connection in thread mode).
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src/loadtest/lib.sh"
part=${1:?usage: test_peers_quick.sh compare|lag|c10k}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
installed() { # the peers of $1 (comma list) that are installed; says which are not
  local p got=()
  for p in ${1//,/ }; do
    if [ -z "$(peer_missing "$p")" ]; then got+=("$p"); else echo "skipped: $p: $(peer_missing "$p")" >&2; fi
  done
  echo "${got[*]:-}"
}

case $part in
  compare)
    command -v wrk >/dev/null || { echo "wrk not installed: skipped"; exit 77; }
    peers=$(installed asyncio,uvloop,h2o,nginx,node)
    [ -n "$peers" ] || { echo "no peer installed: skipped"; exit 77; }
    "$src/loadtest/run" compare --quick --duration 1 --conns 10 --modes event --loads get,echo \
      --peers "${peers// /,}" --out "$out" || fail "compare exited $?"
    csv="$out/results.csv"
    for p in loopd-event $peers; do
      for load in get echo; do
        [ "$p/$load" = h2o/echo ] && continue # static files: no echo
        row=$(awk -F, -v S="$p" -v L="$load" '$1==S && $2==L' "$csv")
        [ -n "$row" ] || fail "no $load point for $p"
        echo "$row" | awk -F, '$5+0 <= 0 || $11+0 > 0 || $16+0 <= 0 {exit 1}' || fail "bad point: $row"
      done
    done
    grep -q '^| asyncio | 10 |' "$out/summary.md" || [[ " $peers " != *" asyncio "* ]] || fail "summary lacks asyncio"
    grep -q 'server/loopd-event' "$out/summary.md" || fail "no same-run ratio table"
    head -c 8 "$out/get-rps.png" | grep -q PNG || fail "get-rps.png is not a PNG"
    echo "ok: compare against loopd-event and $peers"
    ;;
  lag)
    command -v wrk >/dev/null || { echo "wrk not installed: skipped"; exit 77; }
    peers=$(installed asyncio,uvloop)
    [ -n "$peers" ] || { echo "python3-aiohttp not installed: skipped"; exit 77; }
    "$src/loadtest/run" lag-demo --quick --server "loopd,${peers// /,}" --out "$out" || fail "lag-demo exited $?"
    head -c 8 "$out/timeline.png" | grep -q PNG || fail "no side-by-side timeline.png"
    for s in loopd $peers; do
      for phase in baseline block slow cpu; do
        grep -q "^| $s | $phase |" "$out/summary.md" || fail "summary lacks $s $phase"
        beats=$(awk -F, -v P="$phase" '$3==P {n++} END {print n+0}' "$out/$s/timeline.csv")
        [ "$beats" -ge 30 ] || fail "$s: $beats beats in $phase"
      done
      # four 150 ms /block jobs on one loop: a gap of at least one job, in that phase
      awk -F, '$3=="block" && $2+0 >= 140 {hit=1} END {exit !hit}' "$out/$s/timeline.csv" ||
        fail "$s: no /block stall in the block phase"
      # /lag saw it too (read right after the burst)
      lag=$(awk -F, '$1=="block" {print $5}' "$out/$s/raw/phases.csv")
      awk -v l="${lag:-0}" 'BEGIN {exit !(l + 0 >= 140)}' || fail "$s: /lag max after /block is ${lag:-none}"
    done
    echo "ok: lag-demo against loopd and $peers"
    ;;
  c10k)
    peers=$(installed asyncio,nginx)
    "$src/loadtest/run" c10k --quick --servers "event,threads${peers:+,${peers// /,}}" --out "$out" ||
      fail "c10k exited $?"
    csv="$out/results.csv"
    for s in event threads $peers; do
      for n in 200 1000; do
        row=$(awk -F, -v S="$s" -v N="$n" '$1==S && $2==N' "$csv")
        [ -n "$row" ] || fail "no point for $s at $n"
        echo "$row" | awk -F, '$3 != $2 {exit 1}' || fail "$s held fewer than asked: $row"
        # the server really has them: one descriptor each
        echo "$row" | awk -F, '$12 - $11 < $2 * 0.95 {exit 1}' || fail "$s: descriptors did not grow: $row"
      done
    done
    # thread mode: a thread per connection, each reserving its stack (>= 1 MiB
    # of address space each with the default 8 MiB stack) but resident far less
    awk -F, '$1=="threads" && $2==1000 { if ($10 - $9 < 1000 || $20 < 1048576 || $19 > 262144) exit 1 }' "$csv" ||
      fail "thread mode: $(grep '^threads,1000' "$csv")"
    # event mode: no thread per connection, and less resident memory per connection
    awk -F, '$1=="event" && $2==1000 {e=$19; t=$10-$9} $1=="threads" && $2==1000 {h=$19}
      END {exit !(t < 5 && e < h)}' "$csv" || fail "event mode: $(grep '^event,1000' "$csv")"
    grep -q '"a thread needs a 1-8 MB stack"' "$out/summary.md" || fail "no claims table"
    if [ -n "$peers" ] && [[ " $peers " == *" asyncio "* ]]; then
      grep -q 'per_task_b [0-9]' "$out/coroutines.txt" || fail "no asyncio task measurement"
    fi
    for m in rss vmsize per-conn; do
      head -c 8 "$out/c10k-$m.png" | grep -q PNG || fail "c10k-$m.png is not a PNG"
    done
    echo "ok: c10k against event, threads${peers:+, ${peers// /, }}"
    ;;
  *) fail "unknown part $part" ;;
esac
