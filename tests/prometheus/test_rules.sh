#!/usr/bin/env bash
# test_rules.sh: config/prometheus/loopd.rules.yml is valid (promtool check
# rules) and each alert fires on the series it is for and stays quiet on the
# others (promtool test rules with loopd.rules.test.yml).
set -euo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v promtool >/dev/null || { echo "FAIL: promtool missing (Debian: prometheus; ./dev installs it)"; exit 1; }
promtool check rules "$src/config/prometheus/loopd.rules.yml"
# The test file names the rules relative to itself.
cd "$src/tests/prometheus"
promtool test rules loopd.rules.test.yml
