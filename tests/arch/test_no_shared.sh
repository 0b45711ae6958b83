#!/usr/bin/env bash
# test_no_shared.sh: nothing a user runs or reads refers to the coordinator's
# kit beside the repository (its shared folder and the peers in it): every
# figure must be reproducible from a clone. Only .ci/ (CI's container
# preparation) may, and loadtest/results/ (old result sets, kept as they were
# measured). The patterns are spelt in two halves so this file does not match
# itself.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$src" || exit 1
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files)
else # a tarball: every file but the build folders
  files=$(find . -type f -not -path './.git/*' -not -path './build*' | sed 's|^\./||')
fi
up='..'
kit='/shared'
hits=$(echo "$files" | grep -v -e '^\.ci/' -e '^loadtest/results/' |
  tr '\n' '\0' | xargs -0 grep -n -I -F -e "$up$kit" -e "shared""/peers" -e "/work$kit" 2>/dev/null)
if [ -n "$hits" ]; then
  echo "FAIL: files outside .ci/ refer to the kit beside the repository:"
  echo "$hits"
  exit 1
fi
echo "ok: $(echo "$files" | wc -l) tracked files, none refers to $up$kit"
