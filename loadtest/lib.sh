# lib.sh: what every loadtest scenario shares: one option parser (with
# --help, --quick, --out and --repeat), one result folder naming, the
# provenance of a result set (meta.txt), medians with their spread, the
# binaries, pinning, starting servers and peers, and stopping only what we
# started. Sourced by loadtest/run's scenarios (loadtest/scenarios/*).
# shellcheck shell=bash

LT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LT_DIR/.." && pwd)
export LOOPD_WRK_DIR="$LT_DIR/wrk"
PIDS=()

say() { printf '%s\n' "$*" >&2; }
die() { say "loadtest: $*"; exit 1; }

# ---- options: one parser for every scenario --------------------------------
# A scenario says what it is and which options it takes, then parses:
#   lt_about "one paragraph: what it measures, how long, what quick mode does"
#   lt_opt NAME VAR DEFAULT "help"   an option with a value (--NAME V, --NAME=V)
#   lt_flag NAME VAR "help"          a flag (VAR=1 when given, else 0)
#   lt_args "DIR" "help"             positional arguments (else none is taken)
#   lt_parse "$@"
# --help prints the usage and exits 0 (nothing runs); an unknown option or a
# missing value prints the usage on stderr and exits 2. --quick, --out and
# --repeat are every scenario's (lt_common says their defaults). After the
# parse, lt_quick VAR VALUE sets VAR for quick mode unless it was given.
LT_SCENARIO=${LT_SCENARIO:-$(basename "$0")}
LT_OPTS=()
LT_ARGS=()
LT_ABOUT=""
LT_ARGS_SPEC=""
declare -A LT_GIVEN=()
lt_about() { LT_ABOUT=$1; }
lt_opt() {
  local h=$4
  [ -n "$3" ] && [[ $h != *default* ]] && h+=" (default $3)"
  LT_OPTS+=("$1|$2|val|$h")
  printf -v "$2" '%s' "$3"
}
lt_flag() { LT_OPTS+=("$1|$2|flag|$3"); printf -v "$2" '%s' 0; }
lt_args() { LT_ARGS_SPEC="$1|$2"; }
# lt_common REPEAT_DEFAULT "what --repeat repeats" "what --quick does"
lt_common() {
  lt_flag quick QUICK "quick mode: ${3:-shorter runs}"
  lt_opt out OUT "" "result folder (default loadtest/results/YYYYMMDD-HHMMSS-$LT_SCENARIO/)"
  lt_opt repeat REPEAT "$1" "${2:-runs of every point} (the median is reported, min and max beside it; default $1, 1 in quick mode)"
}
lt_usage() {
  local o name kind help line
  echo "usage: loadtest/run $LT_SCENARIO [options]${LT_ARGS_SPEC:+ ${LT_ARGS_SPEC%%|*}}"
  echo
  printf '%s\n' "$LT_ABOUT" | fold -s -w 78 | sed 's/ *$//; s/^/  /'
  echo
  echo "options:"
  for o in "${LT_OPTS[@]}"; do
    IFS='|' read -r name _ kind help <<<"$o"
    line="--$name"
    [ "$kind" = val ] && line+=" V"
    help=${help//\\n/ }
    printf '  %-18s %s\n' "$line" "$help" | fold -s -w 96 | sed '2,$s/^/                     /'
  done
  printf '  %-18s %s\n' "-h, --help" "this text; runs nothing"
  if [ -n "$LT_ARGS_SPEC" ]; then
    printf '  %-18s %s\n' "${LT_ARGS_SPEC%%|*}" "${LT_ARGS_SPEC#*|}"
  fi
}
lt_bad() { say "loadtest $LT_SCENARIO: $*"; lt_usage >&2; exit 2; }
lt_parse() {
  local a name val o n k kind found
  while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
      -h|--help) lt_usage; exit 0 ;;
      --) LT_ARGS+=("$@"); break ;;
      --*)
        name=${a#--}
        val=""
        case $name in *=*) val=${name#*=}; name=${name%%=*}; set -- "$val" "$@" ;; esac
        found=""
        for o in "${LT_OPTS[@]}"; do
          IFS='|' read -r n k kind _ <<<"$o"
          [ "$n" = "$name" ] && { found=1; break; }
        done
        [ -n "$found" ] || lt_bad "unknown option $a"
        if [ "$kind" = flag ]; then
          [[ $a == *=* ]] && lt_bad "--$name takes no value"
          printf -v "$k" '%s' 1
        else
          [ $# -gt 0 ] || lt_bad "--$name needs a value"
          printf -v "$k" '%s' "$1"
          shift
        fi
        LT_GIVEN[$k]=1 ;;
      -*) lt_bad "unknown option $a" ;;
      *) [ -n "$LT_ARGS_SPEC" ] || lt_bad "unexpected argument $a"; LT_ARGS+=("$a") ;;
    esac
  done
  if [ -n "${REPEAT+x}" ]; then
    [ "${QUICK:-0}" = 1 ] && [ -z "${LT_GIVEN[REPEAT]:-}" ] && REPEAT=1
    [[ $REPEAT =~ ^[1-9][0-9]*$ ]] || lt_bad "--repeat needs a whole number >= 1"
  fi
  return 0
}
lt_quick() { [ "${QUICK:-0}" = 1 ] && [ -z "${LT_GIVEN[$1]:-}" ] && printf -v "$1" '%s' "$2"; return 0; }
lt_given() { [ -n "${LT_GIVEN[$1]:-}" ]; }

# ---- result sets ------------------------------------------------------------
# lt_outdir: OUT is --out, or loadtest/results/YYYYMMDD-HHMMSS-SCENARIO (UTC);
# created, absolute, with raw/ inside.
lt_outdir() {
  [ -n "${OUT:-}" ] || OUT="$LT_DIR/results/$(date -u +%Y%m%d-%H%M%S)-$LT_SCENARIO"
  mkdir -p "$OUT/raw" || die "cannot create $OUT"
  OUT=$(cd "$OUT" && pwd)
}

# lt_meta_begin [extra lines...]: OUT/meta.txt, how this result set was made:
# the commit (and whether the tree was dirty), the exact command line, the
# binaries' versions, the machine, the pinning, the repeats, the load average
# before. lt_meta_end adds the load average after and the time it took.
LT_T0=$SECONDS
lt_meta_begin() {
  local commit dirty
  commit=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  dirty=clean
  [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=dirty
  LT_COMMIT=$commit
  if [ "$dirty" = dirty ]; then LT_COMMIT="$commit-dirty"; fi
  {
    echo "scenario: $LT_SCENARIO"
    echo "command: ${LT_CMDLINE:-loadtest/run $LT_SCENARIO}"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $commit ($dirty)"
    echo "loopd: $("$(loopd_bin)" --version 2>&1 | head -1)"
    echo "host: $(hostname)"
    echo "kernel: $(uname -srm)"
    echo "cpu: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo) x $(nproc)"
    echo "memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "open files (hard): $(ulimit -Hn)"
    echo "pinning: ${LT_PINNING:-server on core 0, load generator on core 1 (taskset)}"
    echo "repeats: ${REPEAT:-1}${LT_REPEAT_NOTE:+ ($LT_REPEAT_NOTE)}"
    echo "quick: $([ "${QUICK:-0}" = 1 ] && echo yes || echo no)"
    if command -v wrk >/dev/null; then echo "wrk: $(wrk -v 2>&1 | head -1)"; fi
    if command -v nginx >/dev/null; then echo "nginx: $(nginx -v 2>&1)"; fi
    if command -v h2o >/dev/null; then echo "h2o: $(h2o --version 2>&1 | head -1)"; fi
    if command -v node >/dev/null; then echo "node: $(node --version)"; fi
    "$PEER_PY" -c 'import sys, aiohttp; print("asyncio peer: python", sys.version.split()[0], "aiohttp", aiohttp.__version__)' 2>/dev/null || true
    "$PEER_PY" -c 'import uvloop; print("uvloop:", uvloop.__version__)' 2>/dev/null || true
    local l
    for l in "$@"; do echo "$l"; done
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; the machine may be shared)"
  } >"$OUT/meta.txt"
  LT_T0=$SECONDS
}
lt_meta_end() {
  [ -f "$OUT/meta.txt" ] || return 0
  {
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "took: $((SECONDS - LT_T0)) s"
  } >>"$OUT/meta.txt"
}
# A line for plot titles: the machine and the commit.
lt_title_tag() {
  local cpu
  cpu=$(awk -F': ' '/^cpu:/{print $2; exit}' "${1:-$OUT}/meta.txt" 2>/dev/null)
  echo "$(awk -F': ' '/^host:/{print $2; exit}' "${1:-$OUT}/meta.txt" 2>/dev/null) ($cpu), $(awk '/^commit:/{print $2, $3; exit}' "${1:-$OUT}/meta.txt" 2>/dev/null)"
}

# ---- medians and spread -------------------------------------------------------
# lt_agg CSV KEYS COLS: for every distinct key (KEYS: comma list of column
# numbers, in the order first seen), "key...,n" then "median,min,max" for
# each column of COLS (a comma list), over the rows (header skipped; an empty
# or "null" value is left out; a column with no value gives null,null,null).
lt_agg() {
  awk -F, -v keys="$2" -v cols="$3" '
    NR == 1 { next }
    { nk = split(keys, kk, ","); k = $kk[1]; for (i = 2; i <= nk; i++) k = k "," $kk[i]
      if (!(k in rows)) order[++no] = k
      rows[k]++
      nc = split(cols, cc, ",")
      for (c = 1; c <= nc; c++) { x = $cc[c]; if (x == "" || x == "null") continue; v[k, c, ++n[k, c]] = x + 0 } }
    END { for (o = 1; o <= no; o++) { k = order[o]; line = k "," rows[k]
        for (c = 1; c <= nc; c++) { m = n[k, c] + 0
          if (m == 0) { line = line ",null,null,null"; continue }
          for (i = 1; i <= m; i++) a[i] = v[k, c, i]
          for (i = 2; i <= m; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
          med = (m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2)
          line = line "," med "," a[1] "," a[m] }
        print line } }' "$1"
}
# In awk programs: "median (min-max)" with format f, the median alone when
# min and max are the same, "-" for null. Paste LT_AWK_SPREAD into a program.
LT_AWK_SPREAD='function spread(f, m, lo, hi) { if (m == "null" || m == "") return "-"
  if (sprintf(f, lo) == sprintf(f, hi)) return sprintf(f, m)
  return sprintf(f, m) " (" sprintf(f, lo) "-" sprintf(f, hi) ")" }'
# Whether the values (one a line on stdin) span more than a factor of 10:
# then a plot of them wants a log axis.
lt_spans_decade() { awk '$1 > 0 { if (lo == "" || $1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { exit !(lo != "" && hi / lo > 10) }'; }

# lt_kv_csv FILE KEY...: the lines of FILE that hold key=value pairs, as CSV
# with one column per KEY (in that order; "null" where a line lacks one). A
# value runs from the first "=" to the next blank (work=/block?ms=50 is one).
lt_kv_csv() {
  local f=$1
  shift
  awk -v keys="$*" 'BEGIN { nk = split(keys, k, " "); h = k[1]; for (i = 2; i <= nk; i++) h = h "," k[i]; print h }
    /=/ { delete v; for (i = 1; i <= NF; i++) if ((e = index($i, "=")) > 1) v[substr($i, 1, e - 1)] = substr($i, e + 1)
      if (!(k[1] in v)) next
      line = v[k[1]]; for (i = 2; i <= nk; i++) line = line "," ((k[i] in v) ? v[k[i]] : "null"); print line }' "$f"
}

# ---- binaries -------------------------------------------------------------------
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

# A helper built beside loopd (NAME: loadtest/openloop, loadtest/peers/uvmin,
# ...), built when missing; the build folder is loopd's.
tool_bin() {
  local build
  build=$(dirname "$(loopd_bin)")
  if [ ! -x "$build/$1" ]; then
    ninja -C "$build" "$1" >/dev/null 2>&1 || die "no $build/$1 (ninja -C $build)"
  fi
  echo "$build/$1"
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
  # Emptied here, not by the background redirection: a log reused from an
  # earlier run would otherwise show that run's port to wait_listen_line.
  : >"$log"
  "${SRV_PIN[@]}" "$(loopd_bin)" --listen 127.0.0.1:0 --set log.access=off "$@" 2>>"$log" &
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
  : >"$log" # see start_loopd
  "${SRV_PIN[@]}" "$PEER_PY" "$LT_DIR/peers/asyncio_server.py" --port 0 "${extra[@]}" "$@" 2>>"$log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  wait_listen_line "$log" "$kind peer"
}

# Reads SRV_PORT from the "listening on http://127.0.0.1:PORT" line in $1,
# polling every 50 ms for up to $2 polls (default 300: 15 s) while SRV_PID
# lives. 1 when the line never came.
listen_line() {
  local log=$1 tries=${2:-300} i
  for i in $(seq "$tries"); do
    SRV_PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\).*|\1|p' "$log" 2>/dev/null | head -1)
    [ -n "$SRV_PORT" ] && return 0
    kill -0 "$SRV_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# listen_line, or the end of the run with the server's stderr.
wait_listen_line() {
  listen_line "$1" && return 0
  cat "$1" >&2
  die "$2 did not start"
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
    uvmin|floor) [ -x "$(dirname "$(loopd_bin)")/loadtest/peers/$1" ] || tool_bin "loadtest/peers/$1" >/dev/null ||
      echo "loadtest/peers/$1 is not built (ninja -C build)" ;;
    *) echo "unknown peer (asyncio, uvloop, h2o, nginx, node, uvmin or floor)" ;;
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

# Starts a peer: the project's own (uvmin, floor) on port 0; the others from
# their config file in loadtest/peers/, on a free port (retried when it was
# taken between the pick and the bind).
# Sets SRV_PID, SRV_PORT and STAT_PID (the process serving the requests).
# $1 peer, $2 its log, $3 a directory for its config and files.
start_peer() {
  local p=$1 log=$2 dir=$3
  case $p in
    asyncio|uvloop)
      start_asyncio "$log" "$p" --threads 4
      STAT_PID=$SRV_PID
      return 0 ;;
    uvmin|floor) # the project's own: port 0, the port read from their listen line
      : >"$log" # see start_loopd
      "${SRV_PIN[@]}" "$(tool_bin "loadtest/peers/$p")" 0 2>>"$log" &
      SRV_PID=$!
      PIDS+=("$SRV_PID")
      wait_listen_line "$log" "$p"
      STAT_PID=$SRV_PID
      return 0 ;;
  esac
  local try
  for try in 1 2 3 4 5; do
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
      *) die "unknown peer $p" ;;
    esac
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    # ours only when the listening socket is this process's (the port may
    # have been taken between the pick and the bind: then pick again)
    if wait_port "$SRV_PORT" && kill -0 "$SRV_PID" 2>/dev/null && port_owned_by "$SRV_PORT" "$SRV_PID"; then
      break
    fi
    say "loadtest: $p did not start on port $SRV_PORT (try $try of 5): $(tail -1 "$log")"
    stop_pid "$SRV_PID"
    [ "$try" = 5 ] && die "$p did not start"
  done
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

# Whether the socket listening on 127.0.0.1:$1 is held by process $2.
port_owned_by() {
  local hex inode fd
  hex=$(printf '%04X' "$1")
  inode=$(awk -v p=":$hex" '$4 == "0A" && $2 ~ p"$" {print $10; exit}' /proc/net/tcp)
  [ -n "$inode" ] || return 1
  for fd in /proc/"$2"/fd/*; do
    [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$inode]" ] && return 0
  done
  return 1
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
  local keep=() p
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
