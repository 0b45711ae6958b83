#!/usr/bin/env bash
# test_peers_bare.sh: the project's own yardsticks. uvmin (libuv + strict
# llhttp) gives loopd's GET / answer (status, Content-Type, Content-Length,
# body, a Date), floor the same minus the Date; both on port 0; floor counts a
# request whose end is split across writes once; uvmin refuses what strict
# llhttp refuses and closes after Connection: close. Then cpu-peers in quick
# mode on its pipelined load: the peers' own counts show 16 requests per read,
# so the "pipelined" row really is pipelined, and every figure is non-zero.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$src/loadtest/lib.sh"
out=$(mktemp -d)
trap 'stop_all; rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
SRV_PIN=()

# ask PORT REQUEST...: writes each REQUEST (printf format) in its own write,
# prints everything the server sends within 1 s
ask() {
  local port=$1
  shift
  exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
  local r
  for r in "$@"; do printf "$r" >&3; sleep 0.05; done
  timeout 1 cat <&3
  exec 3<&-
}
heads() { tr -d '\r' | sed -n '1,/^$/p' | grep -v -i -e '^date:' -e '^server:' -e '^$' | sort; }

start_loopd "$out/loopd.log"
ask "$SRV_PORT" 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >"$out/loopd.txt"
grep -q '^HTTP/1.1 200' "$out/loopd.txt" || fail "loopd's own answer is not a 200: $(head -1 "$out/loopd.txt")"
stop_pid "$SRV_PID"
for p in uvmin floor; do
  start_peer "$p" "$out/$p.log" "$out"
  [ "$SRV_PORT" -gt 0 ] || fail "$p: no port"
  grep -q "^$p: listening on http://127.0.0.1:$SRV_PORT" "$out/$p.log" || fail "$p: no listen line"
  ask "$SRV_PORT" 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >"$out/$p.txt"
  [ "$(heads <"$out/$p.txt")" = "$(heads <"$out/loopd.txt")" ] ||
    fail "$p answers otherwise than loopd: $(heads <"$out/$p.txt" | tr '\n' '|') vs $(heads <"$out/loopd.txt" | tr '\n' '|')"
  [ "$(tail -c 13 "$out/$p.txt")" = "Hello, World!" ] || fail "$p body: $(tail -c 20 "$out/$p.txt")"
  # two requests, the second's end split across two writes: two answers
  n=$(ask "$SRV_PORT" 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r' '\n' | grep -o 'HTTP/1.1 200' | wc -l)
  [ "$n" = 2 ] || fail "$p: $n answers to two requests (one split across writes)"
  if [ "$p" = uvmin ]; then
    grep -qi '^date: ' "$out/$p.txt" || fail "uvmin sends no Date"
    n=$(ask "$SRV_PORT" 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n' | grep -o 'HTTP/1' | wc -l)
    [ "$n" = 0 ] || fail "uvmin answered a request strict llhttp refuses"
    # Connection: close: one answer, then the server closes (cat ends before its timeout)
    exec 3<>"/dev/tcp/127.0.0.1/$SRV_PORT" || fail "uvmin: no connection"
    printf 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
    timeout 2 cat <&3 >"$out/close.txt"
    rc=$?
    exec 3<&-
    [ "$rc" = 0 ] || fail "uvmin kept the connection open after Connection: close (cat: $rc)"
    n=$(grep -o 'HTTP/1.1 200' "$out/close.txt" | wc -l)
    [ "$n" = 1 ] || fail "uvmin sent $n answers to one request with Connection: close"
  fi
  stop_pid "$SRV_PID"
  grep -q "^$p: reads=[0-9]* requests=[0-9]*" "$out/$p.log" || fail "$p printed no counts on SIGTERM"
done

command -v wrk >/dev/null || { echo "ok: uvmin and floor (wrk not installed: cpu-peers skipped)"; exit 0; }
"$src/loadtest/run" cpu-peers --quick --servers loopd,uvmin,floor --loads pipe100 --out "$out/cpu" >"$out/cpu.out" 2>&1 ||
  { tail -20 "$out/cpu.out"; fail "cpu-peers exited $?"; }
for p in uvmin floor; do
  ratio=$(sed -n "s/^$p: reads=\([0-9]*\) requests=\([0-9]*\)/\1 \2/p" "$out/cpu/raw/$p.log" |
    awk '$1 > 0 {printf "%.1f", $2 / $1}')
  awk -v r="${ratio:-0}" 'BEGIN {exit !(r >= 8)}' || fail "$p saw ${ratio:-no} requests per read under pipe100: not pipelined"
  echo "$p: $ratio requests per read under pipe100"
done
for s in loopd uvmin floor; do
  awk -F, -v S="$s" '$1=="pipe100" && $2==S && $4+0 > 0 && $7+0 > 0 {ok=1} END {exit !ok}' "$out/cpu/results.csv" ||
    fail "cpu-peers: no figure for $s: $(cat "$out/cpu/results.csv")"
done
grep -q '^| pipe100 | loopd | 1 |' "$out/cpu/summary.md" || fail "cpu-peers summary"
echo "ok: uvmin and floor answer as loopd does; cpu-peers pipelines"
