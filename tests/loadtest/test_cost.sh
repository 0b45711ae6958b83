#!/usr/bin/env bash
# test_cost.sh: loadtest/run cost in quick mode against the committed budgets
# (loadtest/cost-budget.txt): instructions per request are deterministic, so
# a slower hot path fails here where a wall-clock test could not tell.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v valgrind >/dev/null || { echo "valgrind not installed: skipped"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$src/loadtest/run" cost --quick --out "$out" --check "$src/loadtest/cost-budget.txt"
status=$?
[ "$status" = 0 ] || { echo "FAIL: cost exited $status"; exit 1; }
rows=$(($(wc -l <"$out/results.csv") - 1))
[ "$rows" = 6 ] || { echo "FAIL: expected 6 cases, got $rows"; exit 1; }
echo "ok: $rows cases within budget"
