#!/usr/bin/env bash
# test_install.sh: `meson install` into a DESTDIR puts the binary, loopd(1), the
# config and the systemd unit where meson's options say (the paths come from the
# build, never from this script), and what it installed works:
#   - the installed binary's --version names loopd's, libuv's and llhttp's versions,
#     and the git commit when built from a checkout (none from a tree without .git);
#   - the installed config checks and serves /healthz;
#   - loopd(1) documents every option, key (with its default), route, exit status
#     and metric the binary has (check_man.py), and man finds it on its MANPATH;
#   - the unit names the installed binary and config and passes systemd-analyze verify;
#     it checks the config before the start, reloads by SIGHUP, is not restarted on
#     exit 2, and its watchdog outlasts work.max_ms;
#   - the logrotate file is installed with the unit (and parses, if logrotate is here).
set -uo pipefail
build=${LOOPD_BUILD_ROOT:?}
here=$(cd "$(dirname "$0")" && pwd)
for v in LOOPD_BINDIR LOOPD_MANDIR LOOPD_SYSCONFDIR LOOPD_UNITDIR LOOPD_VERSION \
  LOOPD_UV_VERSION LOOPD_LLHTTP_VERSION LOOPD_MAN; do
  [ -n "${!v:-}" ] || { echo "FAIL: $v not set (meson sets it)"; exit 1; }
done
tmp=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
dest=$tmp/dest

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "meson install"; }
bin=$dest$LOOPD_BINDIR/loopd
ini=$dest$LOOPD_SYSCONFDIR/loopd/loopd.ini
unit=$dest$LOOPD_UNITDIR/loopd.service
man=$dest$LOOPD_MANDIR/man1/loopd.1
[ -x "$bin" ] || fail "no executable $LOOPD_BINDIR/loopd"
[ -f "$ini" ] || fail "no $LOOPD_SYSCONFDIR/loopd/loopd.ini"
cmp -s "$ini" "$LOOPD_SOURCE_DIR/config/loopd.ini" || fail "installed loopd.ini differs from config/loopd.ini"
if [ "$LOOPD_UNITDIR" != no ]; then
  [ -f "$unit" ] || fail "no $LOOPD_UNITDIR/loopd.service"
fi
if [ "$LOOPD_MAN" = 1 ]; then
  [ -f "$man" ] || fail "no $LOOPD_MANDIR/man1/loopd.1"
else
  echo "FAIL: the man page was not built (scdoc missing? ./dev installs it)"
  exit 1
fi
echo "installed:"
(cd "$dest" && find . -type f | sed 's|^\.|  |' | sort)

# --version: loopd's, the git commit it was built from (with -dirty when the
# tree had changes) when built from a git checkout, and the libraries' it runs with.
libs="libuv $LOOPD_UV_VERSION, llhttp $LOOPD_LLHTTP_VERSION"
want="loopd $LOOPD_VERSION ($libs)"
src=$LOOPD_SOURCE_DIR
if [ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$src" && pwd -P)" ]; then
  commit=$(git -C "$src" rev-parse --short=12 HEAD)
  dirty=$(git -C "$src" status --porcelain --untracked-files=no | head -c1)
  want="loopd $LOOPD_VERSION (commit $commit${dirty:+-dirty}, $libs)"
fi
got=$("$bin" --version) || fail "--version exited non-zero"
[ "$got" = "$want" ] || fail "--version said \"$got\", wanted \"$want\""
echo "ok: $got"

# A release tarball has no .git: the tree still configures, and the commit
# part is left out (vcs_tag's fallback), also when the copy sits inside
# another git checkout.
mkdir -p "$tmp/tree"
tar -C "$src" --exclude=./.git --exclude='./build*' -cf - . | tar -C "$tmp/tree" -xf -
meson setup "$tmp/tree-build" "$tmp/tree" -Dtests=false -Dman=disabled >"$tmp/tree.log" 2>&1 &&
  ninja -C "$tmp/tree-build" server/base/version.c >>"$tmp/tree.log" 2>&1 ||
  { cat "$tmp/tree.log"; fail "a tree without .git does not configure"; }
grep -q 'return "";' "$tmp/tree-build/server/base/version.c" ||
  fail "built without git, version.c names a commit: $(grep return "$tmp/tree-build/server/base/version.c")"
echo "ok: a tree without .git builds version.c with no commit"

"$bin" --config "$ini" --check-config 2>"$tmp/check.err" || { cat "$tmp/check.err"; fail "--check-config on the installed config"; }

# The installed binary with the installed config, on a free port.
"$bin" --config "$ini" --listen 127.0.0.1:0 2>"$tmp/loopd.err" &
pid=$!
for _ in $(seq 200); do
  grep -q "listening on" "$tmp/loopd.err" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.05
done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$tmp/loopd.err" | head -1)
[ -n "$port" ] || { cat "$tmp/loopd.err"; fail "the installed loopd did not start"; }
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/healthz") || fail "GET /healthz"
[ "$body" = ok ] || fail "/healthz said: $body"
curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" >"$tmp/metrics" || fail "GET /metrics"
kill -TERM "$pid"
wait "$pid"
st=$?
pid=""
[ "$st" = 0 ] || fail "exit status $st after SIGTERM"
echo "ok: installed binary + config: /healthz ok, SIGTERM -> 0"

/usr/bin/python3 "$here/check_man.py" "$man" "$bin" "$tmp/metrics" || fail "loopd(1) incomplete"
if command -v man >/dev/null; then
  MANPATH=$dest$LOOPD_MANDIR man -w loopd >/dev/null || fail "man -w loopd on the installed MANPATH"
  warn=$(MANPATH=$dest$LOOPD_MANDIR LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
    man --warnings -E UTF-8 -l -Tutf8 -Z "$man" 2>&1 >/dev/null)
  [ -z "$warn" ] || fail "groff warnings in loopd(1): $warn"
  echo "ok: man finds loopd(1); groff renders it without warnings"
fi

[ "$LOOPD_UNITDIR" = no ] && { echo "unit not installed (-Dsystemdsystemunitdir=no)"; exit 0; }
grep -qx "ExecStart=$LOOPD_BINDIR/loopd --config $LOOPD_SYSCONFDIR/loopd/loopd.ini" "$unit" ||
  fail "the unit's ExecStart does not name $LOOPD_BINDIR/loopd and $LOOPD_SYSCONFDIR/loopd/loopd.ini: $(grep ExecStart "$unit")"
! grep -n '@[a-z_]*@' "$unit" || fail "unsubstituted @...@ left in the unit"
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (Debian: systemd)"
# verify checks that ExecStart's binary exists and that man finds Documentation=:
# point both into the DESTDIR. It exits 0 on warnings, so any output fails.
mkdir -p "$tmp/unit"
sed "s|^\(ExecStart\(Pre\)\?\)=$LOOPD_BINDIR/|\1=$dest$LOOPD_BINDIR/|" "$unit" >"$tmp/unit/loopd.service"
out=$(MANPATH=$dest$LOOPD_MANDIR systemd-analyze verify "$tmp/unit/loopd.service" 2>&1)
st=$?
[ $st = 0 ] && [ -z "$out" ] || fail "systemd-analyze verify (exit $st): $out"
echo "ok: systemd-analyze verify: clean"

# The service's life as nginx users know it: the config checked before the
# start (quietly), reload by SIGHUP, no restart on a config error.
for line in "ExecStartPre=$LOOPD_BINDIR/loopd --config $LOOPD_SYSCONFDIR/loopd/loopd.ini --check-config -q" \
  'ExecReload=/bin/kill -HUP $MAINPID' RestartPreventExitStatus=2; do
  grep -qxF "$line" "$unit" || fail "the unit lacks $line"
done
# The watchdog outlasts the longest loop hold the installed config allows:
# 3/4 of WatchdogSec (loop 0 pings every quarter of it) above work.max_ms.
wd=$(sed -n 's/^WatchdogSec=\([0-9]*\)s$/\1/p' "$unit")
max_ms=$("$bin" --config "$ini" --print-config | sed -n 's/^max_ms = //p')
[ -n "$wd" ] && [ $((wd * 1000 * 3 / 4)) -gt "$((max_ms + 100))" ] ||
  fail "WatchdogSec=${wd}s lets a /block of work.max_ms=$max_ms get loopd killed"
echo "ok: the unit checks the config first, reloads by SIGHUP, and its watchdog outlasts work.max_ms=$max_ms"

rot=$dest$LOOPD_SYSCONFDIR/logrotate.d/loopd
[ -f "$rot" ] || fail "no $LOOPD_SYSCONFDIR/logrotate.d/loopd"
grep -q 'systemctl kill --kill-whom=main --signal=USR1 loopd.service' "$rot" || fail "logrotate: no USR1 in postrotate"
if command -v logrotate >/dev/null; then
  out=$(logrotate -d "$rot" 2>&1) || fail "logrotate -d: $out"
  ! grep -qi "error" <<<"$out" || fail "logrotate -d: $out"
  echo "ok: logrotate -d $LOOPD_SYSCONFDIR/logrotate.d/loopd: parses"
fi
