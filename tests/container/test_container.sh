#!/usr/bin/env bash
# test_container.sh: builds the Dockerfile and runs the image with podman or
# docker (whichever answers; exit 77 = skipped when neither does), checks /,
# /healthz and /lag from the host through a published loopback port, runs the
# image's HEALTHCHECK, then stops it with SIGTERM and checks a clean exit.
set -uo pipefail
src=${LOOPD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=tests/container/engine.sh
. "$src/tests/container/engine.sh"
engine_find "the container test"
tag="loopd-test:$$"
name="loopd-test-$$"
fail() { echo "FAIL: $*"; $engine logs "$name" 2>&1 | tail -20; cleanup; exit 1; }
cleanup() {
  $engine rm -f "$name" >/dev/null 2>&1
  $engine rmi -f "$tag" >/dev/null 2>&1
}
trap cleanup EXIT

fmt=()
[ "$engine" = podman ] && fmt=(--format docker) # keep HEALTHCHECK (OCI images drop it)
echo "building with $engine..."
$engine build "${fmt[@]}" -q -t "$tag" "$src" >/dev/null || fail "image build"
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
