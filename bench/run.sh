#!/usr/bin/env bash
# csgi's benchmark: examples/hello against libevent's evhttp (bench/evhttp_hello.c).
#
#   bench/run.sh [throughput] [callgrind] [idle]     (default: all three)
#
# 1. throughput  wrk -t1 -c64 keep-alive, server pinned to core 0 and wrk to
#                core 1; the two servers alternate, ROUNDS rounds, medians
# 2. callgrind   user-space instructions per request: two runs of different
#                length under callgrind, the difference divided by the
#                difference in requests (start-up and shut-down cancel)
# 3. idle        anonymous memory a server holds per idle keep-alive connection
#
# Then a summary block for docs/performance.md, with PASS/FAIL per target.
# Everything listens on 127.0.0.1 only; servers started here are stopped on
# exit. Environment (defaults in brackets):
#   DURATION [10]   seconds per wrk run      ROUNDS [3]      wrk rounds per server
#   CONNECTIONS [64] wrk connections         WARMUP [2]      seconds of wrk warm-up
#   CG_SMALL [2000] CG_LARGE [22000]          requests of the two callgrind runs
#   CG_CONNECTIONS [32]                       connections of the callgrind runs
#   IDLE_CONNS [3000]                         idle connections per server
#   BUILD_DIR [build-bench]                   STRICT [0]: exit 1 if a target fails
# The callgrind profiles and per-function costs are kept in BUILD_DIR/results
# (callgrind_annotate or kcachegrind read them).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-22000}
CG_CONNECTIONS=${CG_CONNECTIONS:-32}
IDLE_CONNS=${IDLE_CONNS:-3000}
STRICT=${STRICT:-0}

# Targets.
TARGET_THROUGHPUT=1.5 # csgi req/s >= 1.5 x evhttp
TARGET_INSTRUCTIONS=0.5 # csgi instructions/request <= 0.5 x evhttp
TARGET_IDLE_BYTES=1024  # csgi bytes per idle connection <= 1 KiB
# A wrk run during which other processes used more than this % of a core is
# repeated (once) and flagged.
BUSY_LIMIT=10

RUN_THROUGHPUT=0 RUN_CALLGRIND=0 RUN_IDLE=0
if [ $# -eq 0 ]; then
  RUN_THROUGHPUT=1 RUN_CALLGRIND=1 RUN_IDLE=1
fi
for arg in "$@"; do
  case $arg in
    throughput) RUN_THROUGHPUT=1 ;;
    callgrind) RUN_CALLGRIND=1 ;;
    idle) RUN_IDLE=1 ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown part '$arg' (throughput, callgrind, idle)" >&2; exit 2 ;;
  esac
done

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

# ---- Tools -----------------------------------------------------------------
missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian: $2)"); }
need cmake cmake
need cc gcc
need pkg-config pkg-config
need taskset util-linux
need nproc coreutils
need timeout coreutils
[ $RUN_THROUGHPUT = 1 ] && need wrk wrk
[ $RUN_CALLGRIND = 1 ] && need valgrind valgrind && need callgrind_annotate valgrind
pkg-config --exists libevent 2>/dev/null || missing+=("libevent.pc (Debian: libevent-dev)")
if [ ${#missing[@]} -gt 0 ]; then
  log "run.sh: missing tools:"
  for m in "${missing[@]}"; do log "  $m"; done
  log "install with: apt-get install -y cmake gcc pkg-config libevent-dev wrk valgrind util-linux"
  log "(libc6-dbg is optional: it names glibc's internal functions in the callgrind profile)"
  exit 1
fi

# ---- Servers and clean-up ---------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/csgi-bench.XXXXXX")
SERVER_PIDS=()
CLIENT_PID=""

# shellcheck disable=SC2317 # called by the trap
cleanup() {
  local pid
  for pid in $CLIENT_PID "${SERVER_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $CLIENT_PID "${SERVER_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_client SECONDS OUTPUT COMMAND...: runs a load tool with a time limit,
# output to OUTPUT. It runs in the background so that a signal to this
# script stops it at once (bash runs traps only between foreground commands).
run_client() {
  local seconds=$1 output=$2 status=0
  shift 2
  timeout "$seconds" "$@" >"$output" 2>&1 &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || status=$?
  CLIENT_PID=""
  return "$status"
}

# children_seconds: sets CHILDREN_SECONDS to the user + system CPU seconds
# of this script's finished children. `times` must run in this shell, not in
# a $(...) subshell, whose children are its own.
children_seconds() {
  times >"$TMP/times"
  CHILDREN_SECONDS=$(awk 'NR == 2 {
    t = 0
    for (i = 1; i <= 2; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] }
    print t }' "$TMP/times")
}

# start_server NAME TIMEOUT COMMAND...: runs COMMAND in the background with
# its output in $TMP/NAME.log, waits for its "serving on http://...:PORT/"
# line and sets SERVER_PID and SERVER_PORT.
start_server() {
  local name=$1 timeout=$2
  shift 2
  : >"$TMP/$name.log"
  "$@" >"$TMP/$name.log" 2>&1 &
  SERVER_PID=$!
  SERVER_PIDS+=("$SERVER_PID")
  local i
  for ((i = 0; i < timeout * 10; i++)); do
    SERVER_PORT=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/$name.log")
    [ -n "$SERVER_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/$name.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  cat "$TMP/$name.log" >&2
  die "$name did not start within $timeout s"
}

# stop_server PID TIMEOUT: SIGINT (callgrind then writes its profile), wait,
# SIGKILL after TIMEOUT seconds.
stop_server() {
  local pid=$1 timeout=$2 i
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "run.sh: process $pid ignored SIGINT for $timeout s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${SERVER_PIDS[@]}"; do
    [ "$p" = "$pid" ] || kept+=("$p")
  done
  SERVER_PIDS=("${kept[@]+"${kept[@]}"}")
}

median() { # numbers as arguments
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1}
    END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# busy_percent: share of all cores' time not idle over one second, in %. The
# throughput runs need a quiet machine; this is how the script notices one
# that is not.
busy_percent() {
  local a b
  a=$(head -n 1 /proc/stat)
  sleep 1
  b=$(head -n 1 /proc/stat)
  printf '%s\n%s\n' "$a" "$b" | awk '{
      t = 0; for (i = 2; i <= NF; i++) t += $i
      total[NR] = t; idle[NR] = $5 + $6 }
    END { d = total[2] - total[1]; printf "%.0f", d ? 100 * (d - (idle[2] - idle[1])) / d : 0 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "nan"; else printf "%.2f", a / b }'; }
verdict() { # verdict VALUE OP LIMIT -> PASS or FAIL
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    ok = (op == ">=") ? v >= l : v <= l; print ok ? "PASS" : "FAIL" }'
}

# ---- 1. Build -----------------------------------------------------------------
CORES=$(nproc)
log "== Building a Release build (-O2) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" \
  -DCSGI_BUILD_BENCH=ON -DCSGI_BUILD_TESTS=OFF -DCSGI_BUILD_EXAMPLES=ON \
  -DCSGI_BUILD_FUZZERS=OFF -DCSGI_SANITIZE=OFF >"$TMP/cmake.log" 2>&1 ||
  { cat "$TMP/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD_DIR" -j "$CORES" --target hello evhttp_hello fixed_load idle_conns \
  >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "build failed"; }
HELLO=$BUILD_DIR/examples/hello
EVHTTP=$BUILD_DIR/bench/evhttp_hello
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
IDLE=$BUILD_DIR/bench/idle_conns
for bin in "$HELLO" "$EVHTTP" "$FIXED_LOAD" "$IDLE"; do
  [ -x "$bin" ] || die "$bin was not built"
done

# Enough descriptors for the idle connections (both ends run under this limit;
# raising the hard limit needs root).
want_fds=$((IDLE_CONNS + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  if ! ulimit -n "$want_fds" 2>/dev/null; then
    if ! { ulimit -Hn "$want_fds" && ulimit -n "$want_fds"; } 2>/dev/null; then
      log "run.sh: warning: cannot raise ulimit -n to $want_fds (now $(ulimit -n))"
    fi
  fi
fi

# Results, filled in by the parts that run.
CSGI_RPS="" EVHTTP_RPS="" CSGI_P99="" EVHTTP_P99="" CSGI_CPU="" EVHTTP_CPU=""
CSGI_CPU_US="" EVHTTP_CPU_US=""
PIN_NOTE="" BUSY_NOTE="" CLIENT_NOTE=""
CSGI_IPR="" EVHTTP_IPR="" CSGI_MALLOC_SHARE=""
CSGI_IDLE="" EVHTTP_IDLE=""

# ---- 2. Throughput --------------------------------------------------------------
# cpu_ticks PID: user + system CPU time of a process, in clock ticks.
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
CLOCK_TICKS=$(getconf CLK_TCK)

# busy_ticks: CPU time all cores spent not idle since boot, in clock ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# wrk_run NAME PORT PID DURATION: one wrk run. Sets WRK_RPS, WRK_P99 (us),
# WRK_CPU and WRK_CLIENT, the server's and wrk's CPU use in % of one core
# (the one near 100 was the bottleneck), and WRK_OTHER, the CPU that neither
# used during the run, in % of one core: other processes competing for the
# two cores make req/s and latency meaningless.
wrk_run() {
  local name=$1 port=$2 pid=$3 duration=$4 out=$TMP/wrk.$1.txt ticks busy start children
  ticks=$(cpu_ticks "$pid")
  busy=$(busy_ticks)
  children_seconds
  children=$CHILDREN_SECONDS
  start=$(date +%s.%N)
  run_client $((duration + 30)) "$out" "${WRK_PIN[@]}" wrk -t1 -c"$CONNECTIONS" \
    -d"${duration}s" --latency "http://127.0.0.1:$port/" ||
    { cat "$out" >&2; die "wrk against $name failed"; }
  children_seconds
  read -r WRK_CPU WRK_OTHER WRK_CLIENT < <(awk -v t="$(($(cpu_ticks "$pid") - ticks))" \
    -v b="$(($(busy_ticks) - busy))" -v hz="$CLOCK_TICKS" -v s="$start" -v e="$(date +%s.%N)" \
    -v w="$(awk -v a="$children" -v b="$CHILDREN_SECONDS" 'BEGIN { print b - a }')" 'BEGIN {
      other = (b - t) / hz - w; if (other < 0) other = 0
      d = e - s; printf "%.1f %.0f %.0f\n", 100 * t / hz / d, 100 * other / d, 100 * w / d }')
  if grep -Eq 'Non-2xx|Socket errors' "$out"; then
    log "run.sh: warning: wrk against $name reported errors:"
    grep -E 'Non-2xx|Socket errors' "$out" >&2
  fi
  local parsed
  parsed=$(awk '/^Requests\/sec:/ { rps = $2 }
       $1 == "99%" {
         v = $2; unit = v; sub(/^[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
         p99 = (unit == "us") ? v : (unit == "ms") ? v * 1000 : (unit == "s") ? v * 1e6 : v * 6e7
       }
       END { if (rps == "" || p99 == "") exit 1; printf "%s %.0f\n", rps, p99 }' "$out") ||
    { cat "$out" >&2; die "cannot parse wrk output"; }
  read -r WRK_RPS WRK_P99 <<<"$parsed"
}

# The server's CPU time (user + kernel) per request of the last wrk run, in
# us: steadier than req/s when the client or other processes set the pace.
cpu_per_request() { awk -v c="$WRK_CPU" -v r="$WRK_RPS" 'BEGIN { printf "%.2f", c * 1e4 / r }'; }

if [ $RUN_THROUGHPUT = 1 ]; then
  if [ "$CORES" -ge 2 ]; then
    SRV_PIN=(taskset -c 0) WRK_PIN=(taskset -c 1)
    PIN_NOTE="server pinned to core 0, wrk to core 1"
  else
    SRV_PIN=() WRK_PIN=()
    PIN_NOTE="UNPINNED: only $CORES core, server and wrk share it"
    log "run.sh: only $CORES core: running server and wrk unpinned on the same core"
  fi
  log "== Throughput: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, $PIN_NOTE"
  busy_before=$(busy_percent)
  if [ "$busy_before" -gt "$BUSY_LIMIT" ]; then
    log "run.sh: warning: the machine is ${busy_before}% busy before the throughput runs"
  fi
  start_server csgi 10 "${SRV_PIN[@]}" "$HELLO" --port 0
  CSGI_PID=$SERVER_PID CSGI_PORT=$SERVER_PORT
  start_server evhttp 10 "${SRV_PIN[@]}" "$EVHTTP" 0
  EVHTTP_PID=$SERVER_PID EVHTTP_PORT=$SERVER_PORT

  wrk_run csgi "$CSGI_PORT" "$CSGI_PID" "$WARMUP"
  wrk_run evhttp "$EVHTTP_PORT" "$EVHTTP_PID" "$WARMUP"
  csgi_rps=() csgi_p99=() csgi_cpu=() csgi_client=() csgi_cpu_us=()
  evhttp_rps=() evhttp_p99=() evhttp_cpu=() evhttp_client=() evhttp_cpu_us=()
  max_other=0 retries=$ROUNDS
  for ((round = 1; round <= ROUNDS; round++)); do
    # Alternate which server goes first, so drift favours neither.
    if ((round % 2)); then order="csgi evhttp"; else order="evhttp csgi"; fi
    for name in $order; do
      port=$CSGI_PORT pid=$CSGI_PID
      [ "$name" = csgi ] || port=$EVHTTP_PORT pid=$EVHTTP_PID
      while :; do
        wrk_run "$name" "$port" "$pid" "$DURATION"
        log "   round $round  $(printf '%-6s' "$name")  $(printf '%10.0f' "$WRK_RPS") req/s" \
          " p99 $(printf '%6s' "$WRK_P99") us  CPU: server $(printf '%5s' "$WRK_CPU")%" \
          " wrk $(printf '%3s' "$WRK_CLIENT")%  other processes $WRK_OTHER%"
        # A run other processes disturbed is repeated once, ROUNDS times at most.
        ((WRK_OTHER > BUSY_LIMIT && retries > 0)) || break
        retries=$((retries - 1))
        log "   (other processes used $WRK_OTHER% of a core: repeating this run)"
      done
      ((WRK_OTHER > max_other)) && max_other=$WRK_OTHER
      if [ "$name" = csgi ]; then
        csgi_rps+=("$WRK_RPS") csgi_p99+=("$WRK_P99") csgi_cpu+=("$WRK_CPU")
        csgi_client+=("$WRK_CLIENT") csgi_cpu_us+=("$(cpu_per_request)")
      else
        evhttp_rps+=("$WRK_RPS") evhttp_p99+=("$WRK_P99") evhttp_cpu+=("$WRK_CPU")
        evhttp_client+=("$WRK_CLIENT") evhttp_cpu_us+=("$(cpu_per_request)")
      fi
    done
  done
  stop_server "$CSGI_PID" 15
  stop_server "$EVHTTP_PID" 15
  if [ "$max_other" -gt "$BUSY_LIMIT" ]; then
    BUSY_NOTE="WARNING: other processes used up to ${max_other}% of a core during the wrk runs:"
    BUSY_NOTE+=" req/s and latency are unreliable"
    log "run.sh: $BUSY_NOTE"
  fi
  CSGI_RPS=$(median "${csgi_rps[@]}") EVHTTP_RPS=$(median "${evhttp_rps[@]}")
  CSGI_P99=$(median "${csgi_p99[@]}") EVHTTP_P99=$(median "${evhttp_p99[@]}")
  CSGI_CPU=$(median "${csgi_cpu[@]}") EVHTTP_CPU=$(median "${evhttp_cpu[@]}")
  # One wrk thread saturating its core means the client, not the server, set
  # the pace: that server's req/s is a lower bound.
  for name in csgi evhttp; do
    c=$(median "${csgi_client[@]}")
    [ "$name" = csgi ] || c=$(median "${evhttp_client[@]}")
    if awk -v c="$c" 'BEGIN { exit !(c >= 95) }'; then
      CLIENT_NOTE+="${CLIENT_NOTE:+ }wrk used ${c}% of its core against $name:"
      CLIENT_NOTE+=" $name's req/s is a lower bound (client-bound)."
    fi
  done
  CSGI_CPU_US=$(median "${csgi_cpu_us[@]}") EVHTTP_CPU_US=$(median "${evhttp_cpu_us[@]}")
  echo
  echo "Throughput (median of $ROUNDS x ${DURATION}s, wrk -t1 -c$CONNECTIONS, keep-alive;" \
    "$PIN_NOTE)"
  printf '  %-8s %12s %12s %12s %14s\n' server "req/s" "p99 (us)" "server CPU" "CPU us/request"
  printf '  %-8s %12.0f %12.0f %11.0f%% %14s\n' csgi "$CSGI_RPS" "$CSGI_P99" "$CSGI_CPU" \
    "$CSGI_CPU_US"
  printf '  %-8s %12.0f %12.0f %11.0f%% %14s\n' evhttp "$EVHTTP_RPS" "$EVHTTP_P99" "$EVHTTP_CPU" \
    "$EVHTTP_CPU_US"
  echo "  csgi/evhttp req/s: $(ratio "$CSGI_RPS" "$EVHTTP_RPS")  (target >= $TARGET_THROUGHPUT)"
  [ -z "$BUSY_NOTE" ] || echo "  $BUSY_NOTE"
  [ -z "$CLIENT_NOTE" ] || echo "  $CLIENT_NOTE"
  echo
fi

# ---- 3. Instructions per request (callgrind) -----------------------------------
# callgrind_run NAME REQUESTS COMMAND...: profile of one server run serving
# REQUESTS requests, in $TMP/cg.NAME.REQUESTS; sets CG_IR to its total Ir.
callgrind_run() {
  local name=$1 requests=$2
  shift 2
  local out=$TMP/cg.$name.$requests
  start_server "cg-$name-$requests" 60 valgrind --tool=callgrind --callgrind-out-file="$out" "$@"
  local pid=$SERVER_PID
  run_client 660 "$TMP/load.log" "$FIXED_LOAD" "$SERVER_PORT" "$CG_CONNECTIONS" "$requests" 600 ||
    { cat "$TMP/load.log" >&2; die "fixed_load against $name under callgrind failed"; }
  log "   $name: $(cat "$TMP/load.log")"
  stop_server "$pid" 60
  [ -s "$out" ] || die "callgrind wrote no profile for $name"
  CG_IR=$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 }
       END { print (t != "") ? t : s }' "$out")
  [ -n "$CG_IR" ] || die "no totals in the callgrind profile of $name"
}

# Self cost per function, "Ir<TAB>function [object]", from a profile. The
# source file is dropped and the object shortened to its file name, so the
# same function from two runs has the same key.
function_costs() {
  callgrind_annotate --auto=no --inclusive=no --threshold=100 "$1" 2>/dev/null |
    awk '/^ *[0-9][0-9,]* +\([ 0-9.]+%\) +/ {
      n = $1; gsub(/,/, "", n); fn = $0
      sub(/^ *[0-9,]+ +\([ 0-9.]+%\) +/, "", fn)
      if (fn == "PROGRAM TOTALS") next
      obj = ""
      if (match(fn, / \[[^]]*\]$/)) {
        obj = substr(fn, RSTART + 2, RLENGTH - 3); fn = substr(fn, 1, RSTART - 1)
        k = split(obj, part, "/"); obj = part[k]
      }
      sub(/^[^ ]*:/, "", fn)
      if (obj != "") objects[fn] = obj
      cost[fn] += n
    } END {
      for (f in cost) printf "%d\t%s%s\n", cost[f], f, (f in objects) ? " [" objects[f] "]" : ""
    }'
}

# per_request_costs SMALL_PROFILE LARGE_PROFILE: "Ir_per_request<TAB>function",
# the per-function difference of the two runs over the difference in requests.
per_request_costs() {
  LC_ALL=C join -t $'\t' -1 2 -2 2 -a 1 -a 2 -e 0 -o 0,1.1,2.1 \
    <(function_costs "$1" | LC_ALL=C sort -t $'\t' -k2,2) \
    <(function_costs "$2" | LC_ALL=C sort -t $'\t' -k2,2) |
    awk -F'\t' -v d=$((CG_LARGE - CG_SMALL)) '{ printf "%.1f\t%s\n", ($3 - $2) / d, $1 }' |
    sort -t $'\t' -k1,1 -g -r
}

# glibc's allocator functions, as callgrind names them (with libc6-dbg).
ALLOCATOR_RE='^(malloc|free|calloc|realloc|cfree|_int_malloc|_int_free|_int_realloc|'
ALLOCATOR_RE+='malloc_consolidate|sysmalloc|unlink_chunk.*|tcache_.*|'
ALLOCATOR_RE+='__libc_(malloc|free|calloc|realloc))( |$)'

if [ $RUN_CALLGRIND = 1 ]; then
  log "== Instructions per request: callgrind, $CG_SMALL and $CG_LARGE requests" \
    "on $CG_CONNECTIONS keep-alive connections"
  callgrind_run csgi "$CG_SMALL" "$HELLO" --port 0
  ir_csgi_small=$CG_IR
  callgrind_run csgi "$CG_LARGE" "$HELLO" --port 0
  ir_csgi_large=$CG_IR
  callgrind_run evhttp "$CG_SMALL" "$EVHTTP" 0
  ir_evhttp_small=$CG_IR
  callgrind_run evhttp "$CG_LARGE" "$EVHTTP" 0
  ir_evhttp_large=$CG_IR
  per_request() {
    awk -v a="$1" -v b="$2" -v d=$((CG_LARGE - CG_SMALL)) 'BEGIN { printf "%.0f", (b - a) / d }'
  }
  CSGI_IPR=$(per_request "$ir_csgi_small" "$ir_csgi_large")
  EVHTTP_IPR=$(per_request "$ir_evhttp_small" "$ir_evhttp_large")

  per_request_costs "$TMP/cg.csgi.$CG_SMALL" "$TMP/cg.csgi.$CG_LARGE" >"$TMP/csgi.functions"
  per_request_costs "$TMP/cg.evhttp.$CG_SMALL" "$TMP/cg.evhttp.$CG_LARGE" >"$TMP/evhttp.functions"
  csgi_malloc=$(awk -F'\t' -v re="$ALLOCATOR_RE" '$2 ~ re { s += $1 } END { printf "%.0f", s }' \
    "$TMP/csgi.functions")
  mkdir -p "$BUILD_DIR/results"
  cp "$TMP"/cg.* "$TMP"/csgi.functions "$TMP"/evhttp.functions "$BUILD_DIR/results/"
  CSGI_MALLOC_SHARE=$(awk -v m="$csgi_malloc" -v t="$CSGI_IPR" \
    'BEGIN { printf "%.1f", 100 * m / t }')

  echo
  echo "Instructions per request (callgrind Ir, (run of $CG_LARGE - run of $CG_SMALL)" \
    "/ $((CG_LARGE - CG_SMALL)))"
  printf '  %-8s %14s %14s %12s\n' server "Ir ($CG_SMALL)" "Ir ($CG_LARGE)" "Ir/request"
  printf '  %-8s %14s %14s %12s\n' csgi "$ir_csgi_small" "$ir_csgi_large" "$CSGI_IPR"
  printf '  %-8s %14s %14s %12s\n' evhttp "$ir_evhttp_small" "$ir_evhttp_large" "$EVHTTP_IPR"
  echo "  csgi/evhttp Ir/request: $(ratio "$CSGI_IPR" "$EVHTTP_IPR")" \
    " (target <= $TARGET_INSTRUCTIONS)"
  echo "  csgi: malloc/free/realloc inside glibc: $csgi_malloc Ir/request ($CSGI_MALLOC_SHARE%)"
  echo "  (profiles and per-function costs: $BUILD_DIR/results/)"
  for name in csgi evhttp; do
    echo
    echo "  $name: Ir per request by object file"
    awk -F'\t' '{ obj = $2; if (!sub(/.*\[/, "", obj)) obj = "?]"; sub(/\]$/, "", obj)
        cost[obj] += $1; total += $1 }
      END { for (o in cost) if (cost[o] >= 0.5)
              printf "  %8.1f %5.1f%%  %s\n", cost[o], 100 * cost[o] / total, o }' \
      "$TMP/$name.functions" | sort -g -r
    echo "  $name: top 15 functions by self cost, Ir per request"
    head -n 15 "$TMP/$name.functions" |
      awk -F'\t' -v t="$([ $name = csgi ] && echo "$CSGI_IPR" || echo "$EVHTTP_IPR")" \
        '{ printf "  %8.1f %5.1f%%  %s\n", $1, 100 * $1 / t, $2 }'
  done
  echo
fi

# ---- 4. Idle keep-alive connections -------------------------------------------------
# idle_run NAME COMMAND...: sets IDLE_BYTES to the server's anonymous memory
# growth per idle connection in bytes.
idle_run() {
  local name=$1
  shift
  start_server "idle-$name" 10 "$@"
  local pid=$SERVER_PID
  run_client 300 "$TMP/idle.$name.log" "$IDLE" "$SERVER_PORT" "$pid" "$IDLE_CONNS" ||
    { cat "$TMP/idle.$name.log" >&2; die "idle_conns against $name failed"; }
  stop_server "$pid" 15
  sed 's/^idle_conns:/  '"$name"':/' "$TMP/idle.$name.log" | grep -v 'count=' >&2
  IDLE_BYTES=$(sed -n 's/.*anon_per_conn=\([0-9-]*\).*/\1/p' "$TMP/idle.$name.log")
  [ -n "$IDLE_BYTES" ] || die "cannot parse idle_conns output for $name"
}

if [ $RUN_IDLE = 1 ]; then
  log "== Idle keep-alive connections: $IDLE_CONNS per server (ulimit -n $(ulimit -n))"
  if [ "$IDLE_CONNS" -gt 4000 ]; then
    log "run.sh: warning: csgi accepts at most 4096 connections per loop by default"
  fi
  idle_run csgi "$HELLO" --port 0
  CSGI_IDLE=$IDLE_BYTES
  idle_run evhttp "$EVHTTP" 0
  EVHTTP_IDLE=$IDLE_BYTES
  echo
  echo "Idle keep-alive connections ($IDLE_CONNS, each after one request): server RssAnon growth"
  printf '  %-8s %10s\n' server "bytes/conn"
  printf '  %-8s %10s\n' csgi "$CSGI_IDLE"
  printf '  %-8s %10s\n' evhttp "$EVHTTP_IDLE"
  echo "  (process memory only: the kernel's socket buffers and TCP state are not in RSS)"
  echo
fi

# ---- 5. Summary -------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
V_THROUGHPUT=- V_INSTRUCTIONS=- V_IDLE=-
[ -n "$CSGI_RPS" ] &&
  V_THROUGHPUT=$(verdict "$(ratio "$CSGI_RPS" "$EVHTTP_RPS")" '>=' "$TARGET_THROUGHPUT")
[ -n "$CSGI_IPR" ] &&
  V_INSTRUCTIONS=$(verdict "$(ratio "$CSGI_IPR" "$EVHTTP_IPR")" '<=' "$TARGET_INSTRUCTIONS")
[ -n "$CSGI_IDLE" ] && V_IDLE=$(verdict "$CSGI_IDLE" '<=' "$TARGET_IDLE_BYTES")
failed=0
case "$V_THROUGHPUT $V_INSTRUCTIONS $V_IDLE" in *FAIL*) failed=1 ;; esac
echo "===================================================================="
echo "csgi benchmark summary"
echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- System: $(uname -srm), $CORES cores, CPU: ${cpu:-unknown}"
echo "- libevent $(pkg-config --modversion libevent), $(cc --version | head -n 1)"
echo "- Build: Release, -O2; csgi hello (one loop); evhttp_hello (one loop)"
echo
echo "| Measure | csgi | evhttp | csgi/evhttp | Target | Result |"
echo "|---|---:|---:|---:|---|---|"
if [ -n "$CSGI_RPS" ]; then
  r=$(ratio "$CSGI_RPS" "$EVHTTP_RPS")
  printf '| Requests/s (median of %s x %ss, wrk -t1 -c%s) | %.0f | %.0f | %s | >= %sx | %s |\n' \
    "$ROUNDS" "$DURATION" "$CONNECTIONS" "$CSGI_RPS" "$EVHTTP_RPS" "$r" "$TARGET_THROUGHPUT" \
    "$V_THROUGHPUT"
  printf '| p99 latency, us (median) | %.0f | %.0f | %s | - | - |\n' \
    "$CSGI_P99" "$EVHTTP_P99" "$(ratio "$CSGI_P99" "$EVHTTP_P99")"
  printf '| Server CPU during the runs, %% of a core (median) | %.0f | %.0f | | - | - |\n' \
    "$CSGI_CPU" "$EVHTTP_CPU"
  printf '| Server CPU time per request, us (user + kernel) | %s | %s | %s | - | - |\n' \
    "$CSGI_CPU_US" "$EVHTTP_CPU_US" "$(ratio "$CSGI_CPU_US" "$EVHTTP_CPU_US")"
else
  echo "| Requests/s | skipped | | | >= ${TARGET_THROUGHPUT}x | - |"
fi
if [ -n "$CSGI_IPR" ]; then
  r=$(ratio "$CSGI_IPR" "$EVHTTP_IPR")
  printf '| Instructions/request (callgrind) | %s | %s | %s | <= %sx | %s |\n' \
    "$CSGI_IPR" "$EVHTTP_IPR" "$r" "$TARGET_INSTRUCTIONS" \
    "$V_INSTRUCTIONS"
  printf '| of which malloc/free (csgi) | %s%% | | | - | - |\n' "$CSGI_MALLOC_SHARE"
else
  echo "| Instructions/request | skipped | | | <= ${TARGET_INSTRUCTIONS}x | - |"
fi
if [ -n "$CSGI_IDLE" ]; then
  printf '| Bytes per idle keep-alive connection (%s) | %s | %s | %s | csgi <= %s | %s |\n' \
    "$IDLE_CONNS" "$CSGI_IDLE" "$EVHTTP_IDLE" "$(ratio "$CSGI_IDLE" "$EVHTTP_IDLE")" \
    "$TARGET_IDLE_BYTES" "$V_IDLE"
else
  echo "| Bytes per idle connection | skipped | | | csgi <= $TARGET_IDLE_BYTES | - |"
fi
echo
[ -n "$PIN_NOTE" ] && echo "Throughput: $PIN_NOTE."
[ -n "$BUSY_NOTE" ] && echo "Throughput: $BUSY_NOTE."
[ -n "$CLIENT_NOTE" ] && echo "Throughput: $CLIENT_NOTE"
echo "Idle memory is the server's RssAnon growth; kernel socket memory is not included."
echo "===================================================================="

if [ "$STRICT" = 1 ] && [ $failed = 1 ]; then
  exit 1
fi
exit 0
