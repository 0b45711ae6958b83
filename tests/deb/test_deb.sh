#!/usr/bin/env bash
# test_deb.sh: the Debian package. Builds it from a copy of the source tree with
# `dpkg-buildpackage -b -us -uc` (debhelper 13), runs lintian (no errors, no
# warnings: what is left is explained in debian/loopd.lintian-overrides), checks
# that debian/changelog's version is meson's, then installs the .deb into a clean
# Debian 12 container with podman or docker (the container suite's engines; exit
# 77 = skipped when neither answers, a failure with LOOPD_REQUIRE_CONTAINER=1)
# and runs in_container.sh there.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
version=${LOOPD_VERSION:?LOOPD_VERSION: meson project version}
tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
for tool in dpkg-buildpackage dh lintian fakeroot; do
  command -v $tool >/dev/null || fail "$tool missing (Debian: dpkg-dev debhelper lintian fakeroot; ./dev installs them)"
done

changelog_version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
[ "$changelog_version" = "$version" ] ||
  fail "debian/changelog says $changelog_version, meson.build $version: keep them one version"

# Build from a copy of what git tracks (and new files not ignored), not from
# the work tree: no build dirs in the package, nothing written next to it.
mkdir "$tmp/loopd"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  (cd "$src" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) | tar -C "$tmp/loopd" -xf -
else # an unpacked tarball: everything but build directories
  tar -C "$src" --exclude='./build*' --exclude='./obj-*' -cf - . | tar -C "$tmp/loopd" -xf -
fi || fail "copying the source tree"
echo "building the package..."
(cd "$tmp/loopd" && dpkg-buildpackage -b -us -uc) >"$tmp/build.log" 2>&1 ||
  { tail -30 "$tmp/build.log"; fail "dpkg-buildpackage -b -us -uc"; }
deb=$tmp/loopd_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[ -f "$deb" ] || fail "no $(basename "$deb") built"
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes): $(dpkg-deb -f "$deb" Depends)"

# lintian as root warns that it runs as root; that line is not a finding.
lintian --fail-on error,warning --display-level '>=warning' "$tmp"/loopd_*.changes >"$tmp/lintian.log" 2>&1
st=$?
grep -v "running with root privileges" "$tmp/lintian.log"
[ $st = 0 ] || fail "lintian found errors or warnings"
echo "ok: lintian: no errors, no warnings"

echo "built and linted"
# shellcheck source=tests/container/engine.sh
. "$src/tests/container/engine.sh"
engine_find "the install test"

mkdir "$tmp/pkg"
cp "$deb" "$tmp/pkg/"
name="loopd-deb-test-$$"
echo "installing into a clean $base container with $engine..."
timeout 900 $engine run --rm --name "$name" -e LOOPD_VERSION="$version" \
  -v "$tmp/pkg:/pkg:ro" -v "$src/tests/deb/in_container.sh:/in_container.sh:ro" \
  "$base" bash /in_container.sh
st=$?
$engine rm -f "$name" >/dev/null 2>&1
[ $st = 0 ] || fail "in the container (exit $st)"
