# engine.sh: sourced by the container and deb suites. Finds the container
# engine that answers (podman, then docker) and the Dockerfile's base image,
# or skips (exit 77) saying why; CI sets LOOPD_REQUIRE_CONTAINER=1, and there
# a skip is a failure. Needs $src (the source tree).

# Prints the first line of the reason, and exits 77 (or 1 under CI).
engine_skip() {
  echo "$1"
  if [ "${LOOPD_REQUIRE_CONTAINER:-0}" = 1 ]; then
    echo "FAIL: LOOPD_REQUIRE_CONTAINER=1"
    exit 1
  fi
  exit 77
}

# Sets engine and base, or skips; $1 says what is skipped ("install test", ...).
engine_find() {
  local what=$1
  engine=""
  if command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then
    engine=podman
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    engine=docker
  fi
  [ -n "$engine" ] || engine_skip "no container engine answers (podman or docker): $what skipped"
  # The base image must be there or pullable (no registry and no local copy: skip).
  base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' "$src/Dockerfile" | head -1)
  $engine image inspect "$base" >/dev/null 2>&1 || $engine pull -q "$base" >/dev/null 2>&1 ||
    engine_skip "base image $base neither local nor pullable: $what skipped"
}
