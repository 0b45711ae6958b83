# lib.sh: what loadtest/compare and loadtest/lag-demo share: the binary,
# pinning, starting servers and stopping only what we started.
# shellcheck shell=bash

LT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LT_DIR/.." && pwd)
export LOOPD_WRK_DIR="$LT_DIR/wrk"
PIDS=()

say() { printf '%s\n' "$*" >&2; }
die() { say "loadtest: $*"; exit 1; }

# The release binary: reused when it exists, else built (after ./dev build).
loopd_bin() {
  local bin=${LOOPD_BIN:-$ROOT/build/loopd}
  if [ ! -x "$bin" ]; then
    say "loadtest: building $bin"
    (cd "$ROOT" && { [ -f build/build.ninja ] || meson setup build >/dev/null; } && ninja -C build loopd >/dev/null) ||
      die "build failed (run ./dev build first)"
  fi
  echo "$bin"
}

# Server on core 0, load generator on core 1, when there are two cores.
pinning() {
  if [ "$(nproc)" -ge 2 ]; then
    SRV_PIN=(taskset -c 0)
    CLI_PIN=(taskset -c 1)
  else
    SRV_PIN=()
    CLI_PIN=()
    say "loadtest: only one core: server and wrk share it, so numbers are pessimistic"
  fi
}

# Starts loopd with extra args; sets SRV_PID and SRV_PORT. Its stderr goes to $1.
start_loopd() {
  local log=$1
  shift
  "${SRV_PIN[@]}" "$(loopd_bin)" --listen 127.0.0.1:0 --set log.access=off "$@" 2>"$log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_listen_line "$log" loopd
}

# Starts the asyncio peer (aiohttp; uvloop when $2 is "uvloop") on a port the
# kernel picks, with Debian's interpreter; extra args after $2. Sets SRV_PID
# and SRV_PORT from its listen line. Its stderr goes to $1.
PEER_PY=${LOOPD_PEER_PYTHON:-/usr/bin/python3}
start_asyncio() {
  local log=$1 kind=$2
  shift 2
  local extra=()
  [ "$kind" = uvloop ] && extra=(--uvloop)
  "${SRV_PIN[@]}" "$PEER_PY" "$LT_DIR/peers/asyncio_server.py" --port 0 "${extra[@]}" "$@" 2>"$log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_listen_line "$log" "$kind peer"
}

# Reads SRV_PORT from the "listening on http://127.0.0.1:PORT" line in $1.
wait_listen_line() {
  local log=$1 what=$2 i
  for i in $(seq 300); do
    SRV_PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log" 2>/dev/null | head -1)
    [ -n "$SRV_PORT" ] && return 0
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$log" >&2
  die "$what did not start"
}

# Which peers are installed: "yes", or why not. The asyncio peer needs
# Debian's python3-aiohttp (and python3-uvloop for uvloop).
peer_missing() {
  case $1 in
    asyncio) "$PEER_PY" -c 'import aiohttp' 2>/dev/null || echo "python3-aiohttp is not installed (for $PEER_PY)" ;;
    uvloop) "$PEER_PY" -c 'import aiohttp, uvloop' 2>/dev/null || echo "python3-aiohttp or python3-uvloop is not installed (for $PEER_PY)" ;;
    h2o) command -v h2o >/dev/null || echo "h2o is not installed" ;;
    nginx) command -v nginx >/dev/null || echo "nginx is not installed" ;;
    node) command -v node >/dev/null || echo "node is not installed" ;;
    *) echo "unknown peer (asyncio, uvloop, h2o, nginx or node)" ;;
  esac
}

# A TCP port on 127.0.0.1 that nothing listens on now, for the peers whose
# config takes a fixed port (nginx, h2o, node): the kernel picks it.
free_port() {
  local py
  for py in "$PEER_PY" /usr/bin/python3 python3; do
    "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null &&
      return 0
  done
  die "no python3 to pick a free port with"
}

# Starts a peer from its config file in loadtest/peers/, on a free port.
# Sets SRV_PID, SRV_PORT and STAT_PID (the process serving the requests).
# $1 peer, $2 its log, $3 a directory for its config and files.
start_peer() {
  local p=$1 log=$2 dir=$3
  case $p in
    asyncio|uvloop)
      start_asyncio "$log" "$p" --threads 4
      STAT_PID=$SRV_PID
      return 0 ;;
  esac
  SRV_PORT=$(free_port)
  case $p in
    nginx)
      sed -e "s|@PORT@|$SRV_PORT|" -e "s|@DIR@|$dir|" "$LT_DIR/peers/nginx.conf.in" >"$dir/nginx.conf"
      "${SRV_PIN[@]}" nginx -c "$dir/nginx.conf" 2>"$log" & ;;
    h2o)
      mkdir -p "$dir/h2o-www"
      printf 'Hello, World!' >"$dir/h2o-www/index.html"
      sed -e "s|@PORT@|$SRV_PORT|" -e "s|@DIR@|$dir|" -e "s|@USER@|$(id -un)|" \
        "$LT_DIR/peers/h2o.conf.in" >"$dir/h2o.conf"
      "${SRV_PIN[@]}" h2o -c "$dir/h2o.conf" 2>"$log" & ;;
    node)
      "${SRV_PIN[@]}" node "$LT_DIR/peers/node-http.js" "$SRV_PORT" 2>"$log" & ;;
  esac
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_port "$SRV_PORT" || { cat "$log" >&2; die "$p did not start on port $SRV_PORT"; }
  STAT_PID=$SRV_PID
  if [ "$p" = nginx ]; then # the worker, once the master has forked it
    local w=""
    for _ in $(seq 100); do
      w=$(pgrep -P "$SRV_PID" | head -1)
      [ -n "$w" ] && break
      sleep 0.02
    done
    [ -n "$w" ] && STAT_PID=$w
  fi
}

# Waits until something accepts on 127.0.0.1:$1.
wait_port() {
  local i
  for i in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# Stops one process we started, by PID.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  local keep=()
  for p in "${PIDS[@]}"; do [ "$p" != "$pid" ] && keep+=("$p"); done
  PIDS=("${keep[@]}")
}

stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  PIDS=()
}

# Peak RSS (KiB: sampled, and VmHWM at the end), peak thread count and CPU
# seconds of $1, sampled every 0.2 s into the file $2 until the file $3 exists.
sample_proc() {
  local pid=$1 out=$2 stopfile=$3 rss=0 thr=0 r t
  local hz
  hz=$(getconf CLK_TCK)
  local cpu0
  cpu0=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
  while [ ! -e "$stopfile" ] && [ -d "/proc/$pid" ]; do
    r=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null)
    t=$(awk '/^Threads:/{print $2}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
    [ -n "$t" ] && [ "$t" -gt "$thr" ] && thr=$t
    sleep 0.2
  done
  # the kernel's own high-water mark catches a peak between two samples
  r=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$r" ] && [ "$r" -gt "$rss" ] && rss=$r
  local cpu1
  cpu1=$(awk '{print $14+$15}' "/proc/$pid/stat" 2>/dev/null || echo "$cpu0")
  echo "$rss $thr $(echo "scale=3; ($cpu1 - $cpu0) / $hz" | bc)" >"$out"
}

# The LOOPD_RESULT line of a wrk run, as shell variables R_*.
parse_result() {
  local line
  line=$(grep -o 'LOOPD_RESULT .*' "$1" | head -1)
  num() { echo "$line" | grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }
  R_RPS=$(num rps)
  R_P50=$(num p50)
  R_P90=$(num p90)
  R_P99=$(num p99)
  R_MAX=$(num max)
  R_REQS=$(num requests)
  R_CONNECT=$(num connect)
  R_READ=$(num read)
  R_WRITE=$(num write)
  R_STATUS=$(num status)
  R_TIMEOUT=$(num timeout)
  [ -n "$line" ]
}

machine_description() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(hostname)"
  echo "kernel: $(uname -sr)"
  echo "cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
  echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "open files (hard): $(ulimit -Hn)"
  echo "loopd: $("$(loopd_bin)" --version)"
  echo "wrk: $(wrk -v 2>&1 | head -1)"
  command -v nginx >/dev/null && echo "nginx: $(nginx -v 2>&1)"
  command -v node >/dev/null && echo "node: $(node --version)"
  command -v h2o >/dev/null && echo "h2o: $(h2o --version 2>&1 | head -1)"
  "$PEER_PY" -c 'import sys, aiohttp; print("asyncio peer: python", sys.version.split()[0], "aiohttp", aiohttp.__version__)' 2>/dev/null
  "$PEER_PY" -c 'import uvloop; print("uvloop:", uvloop.__version__)' 2>/dev/null
  echo "pinning: server on core 0, clients on core 1 (taskset), one wrk thread"
  echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) when the run began: the machine is shared"
}
