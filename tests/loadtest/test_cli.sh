#!/usr/bin/env bash
# test_cli.sh: loadtest/run as one tool. Every scenario's --help prints its
# usage (with its quick mode) and exits 0 without running anything: the
# binaries it would start (loopd, wrk, nginx, valgrind, ...) are stand-ins
# that leave a mark, and no result folder appears. An unknown option is an
# error with the usage on stderr (exit 2), and so are an unknown scenario and
# no scenario at all. Every C helper answers --help (exit 0) and a wrong
# command line (exit 2).
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=$(dirname "${LOOPD_BIN:-$src/build/loopd}")
run="$src/loadtest/run"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# stand-ins: any of these started by a --help is a failure
mkdir -p "$tmp/bin"
for t in loopd wrk nginx h2o node valgrind taskset curl gnuplot python3 h2load bc prlimit; do
  printf '#!/bin/sh\necho "%s $*" >>"%s/ran"\nexit 1\n' "$t" "$tmp" >"$tmp/bin/$t"
  chmod +x "$tmp/bin/$t"
done
export PATH="$tmp/bin:$PATH" LOOPD_BIN="$tmp/bin/loopd" LOOPD_PEER_PYTHON="$tmp/bin/python3"
touch "$tmp/start"

scenarios=$("$run" --list) || fail "loadtest/run --list exited $?"
[ "$(echo "$scenarios" | wc -l)" -ge 10 ] || fail "only $(echo "$scenarios" | wc -l) scenarios: $scenarios"
"$run" --help >"$tmp/list" || fail "loadtest/run --help exited $?"
n=0
for s in $scenarios; do
  grep -q "^  $s " "$tmp/list" || fail "loadtest/run --help does not list $s"
  timeout 10 "$run" "$s" --help >"$tmp/$s.out" 2>"$tmp/$s.err"
  rc=$?
  [ "$rc" = 0 ] || fail "$s --help exited $rc: $(head -3 "$tmp/$s.err")"
  head -1 "$tmp/$s.out" | grep -q "^usage: loadtest/run $s" || fail "$s --help: no usage line: $(head -1 "$tmp/$s.out")"
  grep -q -- '-h, --help' "$tmp/$s.out" || fail "$s --help lists no options"
  if [ "$s" != report ]; then
    grep -q -- '--quick ' "$tmp/$s.out" || fail "$s has no --quick"
    grep -q -- '--repeat ' "$tmp/$s.out" || fail "$s has no --repeat"
    grep -q -- '--out ' "$tmp/$s.out" || fail "$s has no --out"
    grep -qi 'quick mode' "$tmp/$s.out" || fail "$s --help does not say what quick mode does"
  fi
  timeout 10 "$run" "$s" --no-such-option >"$tmp/$s.bad.out" 2>"$tmp/$s.bad.err"
  rc=$?
  [ "$rc" = 2 ] || fail "$s --no-such-option exited $rc, not 2"
  grep -q 'unknown option --no-such-option' "$tmp/$s.bad.err" || fail "$s: no error line for an unknown option"
  grep -q "^usage: loadtest/run $s" "$tmp/$s.bad.err" || fail "$s: no usage on stderr for an unknown option"
  [ ! -s "$tmp/$s.bad.out" ] || fail "$s: an unknown option printed on stdout"
  # a value-taking option without its value
  opt=$(sed -n 's/^  \(--[a-z0-9-]*\) V .*/\1/p' "$tmp/$s.out" | head -1)
  if [ -n "$opt" ]; then
    timeout 10 "$run" "$s" "$opt" >/dev/null 2>&1
    rc=$?
    [ "$rc" = 2 ] || fail "$s $opt without a value exited $rc, not 2"
  fi
  n=$((n + 1))
done
[ ! -e "$tmp/ran" ] || fail "a --help or a bad option ran something: $(cat "$tmp/ran")"
new=$(find "$src/loadtest/results" -mindepth 1 -maxdepth 1 -newer "$tmp/start" 2>/dev/null)
[ -z "$new" ] || fail "a --help made a result folder: $new"

"$run" >/dev/null 2>&1
[ $? = 2 ] || fail "loadtest/run with no scenario should exit 2"
"$run" no-such-scenario >/dev/null 2>"$tmp/nos.err"
[ $? = 2 ] || fail "an unknown scenario should exit 2"
grep -q 'no scenario no-such-scenario' "$tmp/nos.err" || fail "an unknown scenario is not said"
"$run" expiry_burst --help >/dev/null || fail "expiry_burst (underscore) is not expiry-burst"
"$run" compare --modes event,bogus >/dev/null 2>"$tmp/mode.err"
[ $? = 2 ] || fail "compare --modes with an unknown mode should exit 2"
grep -q 'unknown mode bogus' "$tmp/mode.err" || fail "compare: an unknown mode is not said"

for t in openloop idle_rss expiry_burst probe_latency turn_probe cost_client c10k_hold hostile_client \
  peers/uvmin peers/floor; do
  bin="$build/loadtest/$t"
  [ -x "$bin" ] || fail "$bin not built"
  "$bin" --help >"$tmp/c.out" 2>&1 || fail "$t --help exited $?"
  grep -q "^usage: $(basename "$t")" "$tmp/c.out" || fail "$t --help: $(head -1 "$tmp/c.out")"
  "$bin" 1 2 3 4 5 6 7 8 >/dev/null 2>&1 </dev/null
  [ $? = 2 ] || fail "$t with a wrong command line should exit 2"
done
echo "ok: $n scenarios and 10 helpers answer --help and refuse bad options"
