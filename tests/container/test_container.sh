#!/usr/bin/env bash
# test_container.sh: builds the Dockerfile (no warning in the build's output)
# and runs the image with podman or docker (whichever answers; exit 77 =
# skipped when neither does), checks /, /healthz and /lag from the host
# through a published loopback port, runs the image's HEALTHCHECK, then stops
# it with SIGTERM and checks a clean exit. A second container reads its
# config from a mounted directory and listens on another port: the
# HEALTHCHECK follows LOOPD_SERVER_LISTEN (and fails for a port nothing
# serves), SIGHUP applies an edited file, and SIGUSR1 after a rename writes
# the access log to a new file at the path.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/container/engine.sh
. "$src/tests/container/engine.sh"
engine_find "the container test"
tag="loopd-test:$$"
name="loopd-test-$$"
name2="loopd-test2-$$"
tmp=$(mktemp -d)
fail() { echo "FAIL: $*"; $engine logs "$name" 2>&1 | tail -20; $engine logs "$name2" 2>&1 | tail -20; cleanup; exit 1; }
cleanup() {
  $engine rm -f "$name" "$name2" >/dev/null 2>&1
  $engine rmi -f "$tag" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

fmt=()
[ "$engine" = podman ] && fmt=(--format docker) # keep HEALTHCHECK (OCI images drop it)
echo "building with $engine..."
$engine build "${fmt[@]}" -t "$tag" "$src" >"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log"; fail "image build"; }
# what a user sees: no warning from useradd, the compiler or the linker
! grep -i "warning" "$tmp/build.log" || fail "the image build printed warnings"
size=$($engine image inspect --format '{{.Size}}' "$tag")
echo "image size: $((size / 1024 / 1024)) MiB"

$engine run -d --name "$name" -p 127.0.0.1::8080 "$tag" >/dev/null || fail "run"
# wait for the start line (bounded), not for a fixed time
for _ in $(seq 200); do
  grep -q "listening on http://0.0.0.0:8080" <<<"$($engine logs "$name" 2>&1)" && break
  [ "$($engine inspect --format '{{.State.Running}}' "$name")" = true ] || fail "container exited"
  sleep 0.05
done
grep -q "listening on" <<<"$($engine logs "$name" 2>&1)" || fail "no start line"
port=$($engine port "$name" 8080 | head -1 | sed 's/.*://')
[ -n "$port" ] || fail "no published port"
base="http://127.0.0.1:$port"

body=$(curl -fsS "$base/") || fail "GET /"
[ "$body" = "Hello, World!" ] || fail "GET / said: $body"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/healthz")
[ "$code" = 200 ] || fail "GET /healthz: $code"
lag=$(curl -fsS "$base/lag") || fail "GET /lag"
echo "$lag" | grep -q '"mode":"event"' || fail "/lag: $lag"
echo "$lag" | grep -q '"lag_ms":{' || fail "/lag: $lag"
user=$($engine exec "$name" id -u) || fail "exec"
[ "$user" != 0 ] || fail "runs as root"
if [ "$engine" = podman ]; then
  podman healthcheck run "$name" >/dev/null 2>&1 || fail "HEALTHCHECK command failed"
fi

$engine stop -t 15 "$name" >/dev/null || fail "stop"
exit_code=$($engine inspect --format '{{.State.ExitCode}}' "$name")
[ "$exit_code" = 0 ] || fail "exit status $exit_code after SIGTERM"
# read the logs once: `logs | grep -q` under pipefail fails when grep exits
# first and the engine dies of SIGPIPE
logs=$($engine logs "$name" 2>&1)
grep -q "SIGTERM: draining" <<<"$logs" || { tail -20 <<<"$logs"; fail "no drain on SIGTERM"; }
grep -q "loopd: stopped" <<<"$logs" || { tail -20 <<<"$logs"; fail "did not stop cleanly"; }
echo "ok: /, /healthz, /lag, non-root, HEALTHCHECK, SIGTERM -> exit 0"

# ---- another port, a config of our own: HEALTHCHECK, SIGHUP, SIGUSR1 ----
# A directory is mounted (a file would be: a rename on the host would not show).
mkdir "$tmp/etc"
printf '[routes]\nblock = on\n[log]\naccess = /tmp/access.log\n' >"$tmp/etc/loopd.ini"
chmod 755 "$tmp/etc" && chmod 644 "$tmp/etc/loopd.ini"
$engine run -d --name "$name2" -p 127.0.0.1::9000 -e LOOPD_SERVER_LISTEN=0.0.0.0:9000 \
  -v "$tmp/etc:/etc/loopd:ro" "$tag" >/dev/null || fail "run on 9000"
for _ in $(seq 200); do
  grep -q "listening on http://0.0.0.0:9000" <<<"$($engine logs "$name2" 2>&1)" && break
  [ "$($engine inspect --format '{{.State.Running}}' "$name2")" = true ] || fail "container on 9000 exited"
  sleep 0.05
done
port=$($engine port "$name2" 9000 | head -1 | sed 's/.*://')
[ -n "$port" ] || fail "no published port for 9000"
base="http://127.0.0.1:$port"
# The image's own HEALTHCHECK command, as the engine runs it (docker has no
# "healthcheck run": exec the same command), then the same check on a port
# nothing serves, which must fail.
hc='{{join .Config.Healthcheck.Test " "}}'
[ "$engine" = podman ] && hc='{{join .HealthCheck.Test " "}}'
check=$($engine image inspect --format "$hc" "$tag" | sed 's/^CMD //')
[[ "$check" == *"--health"* ]] || fail "HEALTHCHECK is not loopd --health: $check"
if [ "$engine" = podman ]; then
  podman healthcheck run "$name2" >/dev/null 2>&1 || fail "HEALTHCHECK on port 9000 failed"
fi
# shellcheck disable=SC2086
$engine exec "$name2" $check >/dev/null 2>&1 || fail "loopd --health on port 9000 failed"
# shellcheck disable=SC2086
! $engine exec -e LOOPD_SERVER_LISTEN=0.0.0.0:9001 "$name2" $check >/dev/null 2>&1 ||
  fail "loopd --health said healthy for a port nothing listens on"
echo "ok: HEALTHCHECK (loopd --health) follows LOOPD_SERVER_LISTEN=0.0.0.0:9000"

code=$(curl -s -o /dev/null -w '%{http_code}' "$base/block?ms=1")
[ "$code" = 200 ] || fail "GET /block before the reload: $code"
printf '[routes]\nblock = off\n[log]\naccess = /tmp/access.log\n' >"$tmp/etc/loopd.ini.new"
chmod 644 "$tmp/etc/loopd.ini.new" && mv "$tmp/etc/loopd.ini.new" "$tmp/etc/loopd.ini"
$engine kill -s HUP "$name2" >/dev/null || fail "kill -s HUP"
for _ in $(seq 200); do
  grep -q "SIGHUP: configuration reloaded" <<<"$($engine logs "$name2" 2>&1)" && break
  sleep 0.05
done
logs=$($engine logs "$name2" 2>&1)
grep -q "SIGHUP: configuration reloaded from /etc/loopd/loopd.ini, environment (1 variable) (changed: routes.block)" <<<"$logs" ||
  fail "no reload line after SIGHUP"
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/block?ms=1")
[ "$code" = 404 ] || fail "GET /block after the reload (routes.block = off): $code"
echo "ok: SIGHUP applies the edited file (routes.block = off: /block is 404)"

curl -fsS "$base/?before-rotate" >/dev/null || fail "GET /?before-rotate"
for _ in $(seq 100); do
  $engine exec "$name2" grep -q "before-rotate" /tmp/access.log 2>/dev/null && break
  sleep 0.05
done
$engine exec "$name2" mv /tmp/access.log /tmp/access.log.1 || fail "rename the access log"
$engine kill -s USR1 "$name2" >/dev/null || fail "kill -s USR1"
for _ in $(seq 200); do
  grep -q "SIGUSR1: reopening the access log /tmp/access.log" <<<"$($engine logs "$name2" 2>&1)" && break
  sleep 0.05
done
curl -fsS "$base/?after-rotate" >/dev/null || fail "GET /?after-rotate"
for _ in $(seq 100); do
  $engine exec "$name2" grep -q "after-rotate" /tmp/access.log 2>/dev/null && break
  sleep 0.05
done
$engine exec "$name2" grep -q "after-rotate" /tmp/access.log || fail "no new /tmp/access.log after SIGUSR1"
$engine exec "$name2" grep -q "before-rotate" /tmp/access.log.1 || fail "the rotated file lost its lines"
! $engine exec "$name2" grep -q "after-rotate" /tmp/access.log.1 || fail "the rotated file still written after SIGUSR1"
$engine stop -t 15 "$name2" >/dev/null || fail "stop 2"
[ "$($engine inspect --format '{{.State.ExitCode}}' "$name2")" = 0 ] || fail "exit status after SIGTERM (2)"
echo "ok: SIGUSR1 after a rename writes to a new file at the path"
