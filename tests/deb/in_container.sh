#!/usr/bin/env bash
# in_container.sh: run by test_deb.sh inside a clean Debian 12 container with the
# .deb in /pkg. Installs it with apt (dependencies from the mirror), checks what
# it put where and that the unit is enabled the Debian way, runs the installed
# binary as an unprivileged user on the installed config and asks /healthz,
# runs systemd-analyze verify on the installed unit, then purges the package.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
fail() { echo "FAIL (in container): $*"; exit 1; }
# Slim images drop man pages (dpkg path-exclude); a Debian system keeps them.
rm -f /etc/dpkg/dpkg.cfg.d/docker /etc/dpkg/dpkg.cfg.d/excludes
apt-get update -qq
apt-get install -y -qq --no-install-recommends /pkg/loopd_*.deb >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get install the .deb"; }
for f in /usr/bin/loopd /etc/loopd/loopd.ini /lib/systemd/system/loopd.service \
  /usr/share/man/man1/loopd.1.gz /usr/share/doc/loopd/copyright; do
  [ -e "$f" ] || fail "$f not installed"
done
dpkg-query -W -f='${Conffiles}\n' loopd | grep -q "^ /etc/loopd/loopd.ini " || fail "loopd.ini is not a conffile"
# dh_installsystemd's postinst enabled it (deb-systemd-helper; not started: no systemd runs here).
[ -L /etc/systemd/system/multi-user.target.wants/loopd.service ] || fail "loopd.service not enabled"
echo "ok: installed; /etc/loopd/loopd.ini a conffile; loopd.service enabled"

uv=$(dpkg-query -W -f='${Version}' libuv1 | sed 's/^[0-9]*://; s/-[^-]*$//')
v=$(loopd --version)
[[ "$v" =~ ^loopd\ $LOOPD_VERSION\ \(libuv\ $uv,\ llhttp\ [0-9]+\.[0-9]+\.[0-9]+\)$ ]] ||
  fail "--version said \"$v\" (libuv1 here is $uv)"
echo "ok: $v"

# As nobody, as the unit's DynamicUser would: the config must be readable.
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
# No curl in a clean system: bash's /dev/tcp asks.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
resp=$(timeout 5 cat <&3)
exec 3<&-
[[ "$resp" == "HTTP/1.1 200 "* ]] || fail "/healthz: $resp"
[[ "$resp" == *$'\r\n\r\nok'* ]] || fail "/healthz body: $resp"
kill -TERM $pid
st=0
wait $pid || st=$?
[ $st = 0 ] || fail "exit status $st after SIGTERM"
echo "ok: installed loopd as nobody: GET /healthz 200 ok; SIGTERM -> 0"

# systemd-analyze verify on the installed unit (man-db: it checks Documentation=man:loopd(1)).
apt-get install -y -qq --no-install-recommends systemd man-db >/tmp/apt.log 2>&1 ||
  { tail -20 /tmp/apt.log; fail "apt-get install systemd man-db"; }
out=$(systemd-analyze verify /lib/systemd/system/loopd.service 2>&1) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
echo "ok: systemd-analyze verify /lib/systemd/system/loopd.service: clean"

apt-get purge -y -qq loopd >/tmp/apt.log 2>&1 || { tail -20 /tmp/apt.log; fail "apt-get purge loopd"; }
for f in /usr/bin/loopd /etc/loopd /lib/systemd/system/loopd.service \
  /etc/systemd/system/multi-user.target.wants/loopd.service; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f left after purge"
done
echo "ok: purge removes the binary, the config and the enablement"
