#!/usr/bin/env bash
# in_container.sh: run by test_deb.sh inside a clean Debian 12 container with the
# .deb in /pkg. Installs it with apt (dependencies from the mirror), checks what
# it put where and that the unit is enabled the Debian way, runs the installed
# binary as an unprivileged user on the installed config and asks /healthz,
# reloads it by SIGHUP after an edit of the installed config, rotates its
# access log with the installed logrotate file (logrotate -d first) and
# reopens it by SIGUSR1 (no systemd runs here: by signal, as the unit's
# ExecReload and the postrotate would), runs systemd-analyze verify on the
# installed unit, then purges the package (the log directory goes too).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
fail() { echo "FAIL (in container): $*"; exit 1; }
# Slim images drop man pages (dpkg path-exclude); a Debian system keeps them.
rm -f /etc/dpkg/dpkg.cfg.d/docker /etc/dpkg/dpkg.cfg.d/excludes
apt-get update -qq
apt-get install -y -qq --no-install-recommends /pkg/loopd_*.deb >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get install the .deb"; }
for f in /usr/bin/loopd /etc/loopd/loopd.ini /lib/systemd/system/loopd.service \
  /etc/logrotate.d/loopd /usr/share/man/man1/loopd.1.gz /usr/share/doc/loopd/copyright; do
  [ -e "$f" ] || fail "$f not installed"
done
dpkg-query -W -f='${Conffiles}\n' loopd | grep -q "^ /etc/loopd/loopd.ini " || fail "loopd.ini is not a conffile"
dpkg-query -W -f='${Conffiles}\n' loopd | grep -q "^ /etc/logrotate.d/loopd " || fail "the logrotate file is not a conffile"
# dh_installsystemd's postinst enabled it (deb-systemd-helper; not started: no systemd runs here).
[ -L /etc/systemd/system/multi-user.target.wants/loopd.service ] || fail "loopd.service not enabled"
echo "ok: installed; /etc/loopd/loopd.ini a conffile; loopd.service enabled"

uv=$(dpkg-query -W -f='${Version}' libuv1 | sed 's/^[0-9]*://; s/-[^-]*$//')
v=$(loopd --version)
[[ "$v" =~ ^loopd\ $LOOPD_VERSION\ \(libuv\ $uv,\ llhttp\ [0-9]+\.[0-9]+\.[0-9]+\)$ ]] ||
  fail "--version said \"$v\" (libuv1 here is $uv)"
echo "ok: $v"

# As nobody, as the unit's DynamicUser would: the config must be readable.
# The log directory is the unit's LogsDirectory, made here as systemd would.
mkdir -p /var/log/loopd && chown nobody:nogroup /var/log/loopd
cp /etc/loopd/loopd.ini /tmp/loopd.ini.orig
sed -i 's|^access = off$|access = /var/log/loopd/access.log|' /etc/loopd/loopd.ini
setpriv --reuid=nobody --regid=nogroup --clear-groups \
  loopd --config /etc/loopd/loopd.ini --listen 127.0.0.1:0 2>/tmp/loopd.err &
pid=$!
for _ in $(seq 200); do
  grep -q "listening on" /tmp/loopd.err && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
port=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' /tmp/loopd.err | head -1)
[ -n "$port" ] || { cat /tmp/loopd.err; fail "installed loopd did not start"; }
# No curl in a clean system: bash's /dev/tcp asks. The whole answer of GET $1.
get() {
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$1" >&3
  timeout 5 cat <&3
  exec 3<&-
}
# Waits (bounded) until file $1 holds $2.
wait_grep() {
  for _ in $(seq 200); do grep -q -- "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
resp=$(get /healthz)
[[ "$resp" == "HTTP/1.1 200 "* ]] || fail "/healthz: $resp"
[[ "$resp" == *$'\r\n\r\nok'* ]] || fail "/healthz body: $resp"
echo "ok: installed loopd as nobody: GET /healthz 200 ok"

# Reload: the edited conffile applies without a restart.
[[ "$(get '/block?ms=1')" == "HTTP/1.1 200 "* ]] || fail "GET /block before the reload"
sed -i 's|^block = on$|block = off|' /etc/loopd/loopd.ini
kill -HUP $pid
wait_grep /tmp/loopd.err "SIGHUP: configuration reloaded from /etc/loopd/loopd.ini, 1 option (changed: routes.block)" ||
  { cat /tmp/loopd.err; fail "no reload line after SIGHUP"; }
[[ "$(get '/block?ms=1')" == "HTTP/1.1 404 "* ]] || fail "GET /block after the reload (routes.block = off)"
echo "ok: SIGHUP applies the edited /etc/loopd/loopd.ini (/block 404)"

# logrotate with the installed file: it parses, then a forced rotation
# renames the log; its postrotate finds no active unit here and says
# nothing, so USR1 is sent by hand, as it would send it.
apt-get install -y -qq --no-install-recommends logrotate >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get install logrotate"; }
out=$(logrotate -d /etc/logrotate.d/loopd 2>&1) || fail "logrotate -d: $out"
! grep -qi "error" <<<"$out" || fail "logrotate -d: $out"
get /?before-rotate >/dev/null
wait_grep /var/log/loopd/access.log "before-rotate" || fail "no access log line"
logrotate -f -s /tmp/logrotate.state /etc/logrotate.d/loopd || fail "logrotate -f"
[ -f /var/log/loopd/access.log.1 ] || fail "logrotate did not rotate: $(ls -l /var/log/loopd)"
kill -USR1 $pid
wait_grep /tmp/loopd.err "SIGUSR1: reopening the access log /var/log/loopd/access.log" || fail "no USR1 line"
get /?after-rotate >/dev/null
wait_grep /var/log/loopd/access.log "after-rotate" || fail "no new access.log after USR1: $(ls -l /var/log/loopd)"
! grep -q "after-rotate" /var/log/loopd/access.log.1 || fail "the rotated file still written"
echo "ok: logrotate -d parses /etc/logrotate.d/loopd; a rotation plus SIGUSR1 writes a new access.log"

kill -TERM $pid
st=0
wait $pid || st=$?
[ $st = 0 ] || fail "exit status $st after SIGTERM"
cp /tmp/loopd.ini.orig /etc/loopd/loopd.ini
echo "ok: SIGTERM -> 0"

# systemd-analyze verify on the installed unit (man-db: it checks Documentation=man:loopd(1)).
apt-get install -y -qq --no-install-recommends systemd man-db >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get install systemd man-db"; }
out=$(systemd-analyze verify /lib/systemd/system/loopd.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
echo "ok: systemd-analyze verify /lib/systemd/system/loopd.service: clean"

apt-get purge -y -qq loopd >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; fail "apt-get purge loopd"; }
for f in /usr/bin/loopd /etc/loopd /lib/systemd/system/loopd.service /etc/logrotate.d/loopd \
  /etc/systemd/system/multi-user.target.wants/loopd.service /var/log/loopd; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f left after purge"
done
echo "ok: purge removes the binary, the config, the logrotate file, the enablement and /var/log/loopd"
