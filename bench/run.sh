#!/usr/bin/env bash
# csgi's benchmark: four servers answering every request with "Hello World"
# (text/html, with a Content-Length), and a routed JSON endpoint, measured in
# the same run:
#
#   engine  bench/engine_hello  csgi's HTTP engine alone, without the gateway
#   hello   examples/hello      the same answer as a csgi application (gateway)
#   auth    bench/auth_hello    hello behind the talk's auth filter (middleware)
#   json    bench/routed_json   a small API request: a router of 100 routes and a
#                               handler answering GET /v2/4f2a9c01/servers/42 with
#                               a small JSON object (jansson, response helpers)
#   evhttp  bench/evhttp_hello  libevent's evhttp, the baseline
#
# and, in the callgrind part only (against hello, what a log line costs):
#
#   logged  bench/log_hello     hello with an access log (combined format,
#                               to a file, default buffering)
#
#   bench/run.sh [throughput] [callgrind] [idle] [stuck] [peers [PART...]]
#                (default: throughput, callgrind, idle, then all of peers)
#
# 0. check       always: each server answers 200 "Hello World" (json: its
#                JSON object) to a request carrying the token, and auth
#                answers 403 without it or with a wrong one
# 1. throughput  wrk -t1 -c64 keep-alive, servers pinned to core 0 and wrk to
#                core 1; the servers take turns (the order reverses every
#                round), ROUNDS rounds, medians
# 2. callgrind   user-space instructions per request: two runs of different
#                length under callgrind, the difference divided by the
#                difference in requests (start-up and shut-down cancel); also
#                per function, and what the gateway, the filter, and the router
#                with the JSON handler add
# 3. idle        anonymous memory a server holds per idle keep-alive
#                connection (hello and evhttp)
# 4. stuck       (only when asked) anonymous memory examples/environ_dump
#                holds per answer stuck behind a client that does not read
#                (STUCK_COUNT clients posting STUCK_BODY bytes), with glibc's
#                default malloc and with MALLOC_MMAP_THRESHOLD_=131072 (large
#                blocks freed go back to the system, so what is left is
#                what the server still holds)
# 5. peers       bench/peers.sh after this script's summary: csgi beside
#                Debian's nginx and h2o (issue 17; it installs them when run
#                as root), with its own table, ratios and PASS/FAIL per goal.
#                The words after `peers` are its parts (keepalive pipelined
#                close instructions idle large idlegrowth workers; none: all).
#                It builds in the same BUILD_DIR and reads the environment
#                below where it shares a name (ROUNDS, DURATION, CG_SMALL,
#                CG_LARGE, IDLE_CONNS), with its own defaults where unset;
#                bench/peers.sh --help lists the rest
#
# Every request to every server carries "X-Auth-Token: open-sesame", so the
# hello servers parse the same bytes and auth/hello is the filter's cost
# alone (json's requests differ only by their path). Then a summary block for docs/performance.md, with PASS/FAIL per
# target. Everything listens on 127.0.0.1 only; servers started here are
# stopped on exit. Environment (defaults in brackets):
#   DURATION [5]    seconds per wrk run      ROUNDS [3]      wrk rounds per server
#   CONNECTIONS [64] wrk connections         WARMUP [2]      seconds of wrk warm-up
#   CG_SMALL [2000] CG_LARGE [22000]          requests of the two callgrind runs
#   CG_CONNECTIONS [32]                       connections of the callgrind runs
#   IDLE_CONNS [3000]                         idle connections per server
#   STUCK_COUNT [16] STUCK_BODY [1048576]     stuck answers and request body bytes
#   BUILD_DIR [build-bench]                   STRICT [0]: exit 1 if a target fails
#                                             (or a goal of peers)
# The callgrind profiles, per-function costs and differences are kept in
# BUILD_DIR/results (callgrind_annotate or kcachegrind read the profiles).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-64}
WARMUP=${WARMUP:-2}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-22000}
CG_CONNECTIONS=${CG_CONNECTIONS:-32}
IDLE_CONNS=${IDLE_CONNS:-3000}
STUCK_COUNT=${STUCK_COUNT:-16}
STUCK_BODY=${STUCK_BODY:-1048576}
STRICT=${STRICT:-0}

# The servers, in the order of odd rounds and of the tables.
SERVERS=(engine hello auth json evhttp)
# Servers measured by callgrind only.
CG_ONLY=(logged)
# The header every request carries: the auth filter's token.
AUTH_HEADER="X-Auth-Token: open-sesame"
# The path each server is asked for ("/" unless given) and the body it must
# answer ("Hello World" unless given).
declare -A PATH_OF=([json]=/v2/4f2a9c01/servers/42)
declare -A BODY_OF=([json]='{"server":{"id":42,"project_id":"4f2a9c01","status":"ACTIVE"}}')
path_of() { printf '%s' "${PATH_OF[$1]:-/}"; }
body_of() { printf '%s' "${BODY_OF[$1]:-Hello World}"; }

# Targets.
TARGET_GATEWAY_IR=1.10     # hello instructions/request <= 1.10 x engine
TARGET_GATEWAY_RPS=0.9     # hello req/s >= 0.9 x engine
TARGET_AUTH_IR=1.05        # auth instructions/request <= 1.05 x hello
TARGET_THROUGHPUT=1.5      # hello, auth (and engine) req/s >= 1.5 x evhttp
TARGET_ENGINE_IR=0.5       # engine instructions/request <= 0.5 x evhttp
TARGET_IDLE_BYTES=600      # hello bytes per idle connection <= 600 (nginx holds about 520)
TARGET_ACCESS_LOG_IR=1.10  # logged instructions/request <= 1.10 x hello (issue 11)
# A wrk run during which other processes used more than this % of a core is
# repeated (once) and flagged.
BUSY_LIMIT=10

RUN_THROUGHPUT=0 RUN_CALLGRIND=0 RUN_IDLE=0 RUN_STUCK=0 RUN_PEERS=0
PEERS_PARTS=() # bench/peers.sh's parts, the words after "peers" (none: all)
if [ $# -eq 0 ]; then
  RUN_THROUGHPUT=1 RUN_CALLGRIND=1 RUN_IDLE=1 RUN_PEERS=1
fi
while [ $# -gt 0 ]; do
  case $1 in
    throughput) RUN_THROUGHPUT=1 ;;
    callgrind) RUN_CALLGRIND=1 ;;
    idle) RUN_IDLE=1 ;;
    stuck) RUN_STUCK=1 ;;
    peers)
      RUN_PEERS=1
      shift
      PEERS_PARTS=("$@")
      break
      ;;
    -h | --help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "run.sh: unknown part '$1' (throughput, callgrind, idle, stuck, peers [PART...])" >&2
      exit 2 ;;
  esac
  shift
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
TMP=$(cd "$TMP" && pwd) # absolute: function_costs runs callgrind_annotate from /
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

# run_peers: bench/peers.sh with PEERS_PARTS, in this script's BUILD_DIR (the
# rest of the environment passes as it is); its table follows on standard
# output, and PEERS_FAILED counts its goals marked FAIL. In the background,
# as run_client runs its tools.
PEERS_FAILED=0
run_peers() {
  local status=0
  log "== bench/peers.sh ${PEERS_PARTS[*]:-(all parts)}"
  BUILD_DIR=$BUILD_DIR "$ROOT/bench/peers.sh" "${PEERS_PARTS[@]}" >"$TMP/peers.md" &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || status=$?
  CLIENT_PID=""
  cat "$TMP/peers.md"
  [ "$status" = 0 ] || die "bench/peers.sh failed (exit status $status)"
  PEERS_FAILED=$(grep -c '| FAIL |$' "$TMP/peers.md" || true)
}

# Only peers asked for: it builds what it needs itself.
if [ $((RUN_THROUGHPUT + RUN_CALLGRIND + RUN_IDLE + RUN_STUCK)) = 0 ]; then
  run_peers
  if [ "$STRICT" = 1 ] && [ "$PEERS_FAILED" != 0 ]; then
    exit 1
  fi
  exit 0
fi

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
cmake --build "$BUILD_DIR" -j "$CORES" \
  --target engine_hello hello auth_hello routed_json evhttp_hello log_hello fixed_load \
  idle_conns environ_dump stuck_responses \
  >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log" >&2; die "build failed"; }
declare -A BIN=(
  [engine]=$BUILD_DIR/bench/engine_hello
  [hello]=$BUILD_DIR/examples/hello
  [auth]=$BUILD_DIR/bench/auth_hello
  [json]=$BUILD_DIR/bench/routed_json
  [evhttp]=$BUILD_DIR/bench/evhttp_hello
  [logged]=$BUILD_DIR/bench/log_hello
)
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
IDLE=$BUILD_DIR/bench/idle_conns
STUCK=$BUILD_DIR/bench/stuck_responses
ENVIRON_DUMP=$BUILD_DIR/examples/environ_dump
for bin in "${BIN[@]}" "$FIXED_LOAD" "$IDLE" "$STUCK" "$ENVIRON_DUMP"; do
  [ -x "$bin" ] || die "$bin was not built"
done

# server_command NAME: sets CMD to the command line serving on a free port.
server_command() {
  case $1 in
    evhttp) CMD=("${BIN[$1]}" 0) ;;
    logged) CMD=("${BIN[$1]}" --port 0 --access-log "$TMP/access.log") ;;
    *) CMD=("${BIN[$1]}" --port 0) ;;
  esac
}

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

# ---- 0. Check the answers -----------------------------------------------------
# Each server must answer the benchmark's request with 200 and "Hello World"
# (json: its object); auth must refuse a request without the token, or with a
# wrong one.
log "== Checking the servers' answers (every request carries '$AUTH_HEADER')"
for name in "${SERVERS[@]}" "${CG_ONLY[@]}"; do
  server_command "$name"
  start_server "check-$name" 10 "${CMD[@]}"
  pid=$SERVER_PID
  run_client 20 "$TMP/check.log" "$FIXED_LOAD" -H "$AUTH_HEADER" -p "$(path_of "$name")" \
    -b "$(body_of "$name")" "$SERVER_PORT" 1 3 10 ||
    { cat "$TMP/check.log" >&2; die "$name does not answer 200 \"$(body_of "$name")\" with the token"; }
  if [ "$name" = auth ]; then
    run_client 20 "$TMP/check.log" "$FIXED_LOAD" -s 403 "$SERVER_PORT" 1 1 10 ||
      { cat "$TMP/check.log" >&2; die "auth does not answer 403 without the token"; }
    run_client 20 "$TMP/check.log" "$FIXED_LOAD" -s 403 -H "X-Auth-Token: open-sesamE" \
      "$SERVER_PORT" 1 1 10 ||
      { cat "$TMP/check.log" >&2; die "auth does not answer 403 to a wrong token"; }
    log "   auth: 200 \"Hello World\" with the token, 403 without it and with a wrong one"
  else
    log "   $name: 200 \"$(body_of "$name")\""
  fi
  stop_server "$pid" 15
done

# Results, filled in by the parts that run, per server name.
declare -A RPS=() P99=() CPU=() CPU_US=() CLIENT=() IPR=() IR_SMALL=() IR_LARGE=() MALLOC=()
declare -A IDLE_BYTES_OF=()
PIN_NOTE="" BUSY_NOTE="" CLIENT_NOTE="" BUSY_BEFORE=""

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
    -d"${duration}s" --latency -H "$AUTH_HEADER" "http://127.0.0.1:$port$(path_of "$name")" ||
    { cat "$out" >&2; die "wrk against $name failed"; }
  children_seconds
  read -r WRK_CPU WRK_OTHER WRK_CLIENT < <(awk -v t="$(($(cpu_ticks "$pid") - ticks))" \
    -v b="$(($(busy_ticks) - busy))" -v hz="$CLOCK_TICKS" -v s="$start" -v e="$(date +%s.%N)" \
    -v w="$(awk -v a="$children" -v b="$CHILDREN_SECONDS" 'BEGIN { print b - a }')" 'BEGIN {
      other = (b - t) / hz - w; if (other < 0) other = 0
      d = e - s; printf "%.1f %.0f %.0f\n", 100 * t / hz / d, 100 * other / d, 100 * w / d }')
  # A non-2xx answer means the server refused the request (auth: the token):
  # its req/s would measure the wrong thing.
  if grep -q 'Non-2xx' "$out"; then
    cat "$out" >&2
    die "wrk against $name got non-2xx responses"
  fi
  if grep -q 'Socket errors' "$out"; then
    log "run.sh: warning: wrk against $name reported errors:"
    grep 'Socket errors' "$out" >&2
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
    PIN_NOTE="servers pinned to core 0, wrk to core 1"
  else
    SRV_PIN=() WRK_PIN=()
    PIN_NOTE="UNPINNED: only $CORES core, servers and wrk share it"
    log "run.sh: only $CORES core: running servers and wrk unpinned on the same core"
  fi
  log "== Throughput: wrk -t1 -c$CONNECTIONS -d${DURATION}s, $ROUNDS rounds, $PIN_NOTE"
  BUSY_BEFORE=$(busy_percent)
  if [ "$BUSY_BEFORE" -gt "$BUSY_LIMIT" ]; then
    log "run.sh: warning: the machine is ${BUSY_BEFORE}% busy before the throughput runs"
  fi
  declare -A PORT_OF=() PID_OF=() rps_list=() p99_list=() cpu_list=() client_list=() cpu_us_list=()
  for name in "${SERVERS[@]}"; do
    server_command "$name"
    start_server "wrk-$name" 10 "${SRV_PIN[@]}" "${CMD[@]}"
    PID_OF[$name]=$SERVER_PID PORT_OF[$name]=$SERVER_PORT
  done
  for name in "${SERVERS[@]}"; do
    wrk_run "$name" "${PORT_OF[$name]}" "${PID_OF[$name]}" "$WARMUP"
  done
  # A run other processes disturbed is repeated, twice at most, and 2 x ROUNDS
  # times in all. The medians leave out the disturbed runs when a server has
  # undisturbed ones.
  max_other=0 retries=$((2 * ROUNDS)) disturbed=0
  reversed=()
  for ((i = ${#SERVERS[@]} - 1; i >= 0; i--)); do reversed+=("${SERVERS[i]}"); done
  for ((round = 1; round <= ROUNDS; round++)); do
    # Reverse the order every round, so drift favours no server.
    if ((round % 2)); then order=("${SERVERS[@]}"); else order=("${reversed[@]}"); fi
    for name in "${order[@]}"; do
      for ((attempt = 0; ; attempt++)); do
        wrk_run "$name" "${PORT_OF[$name]}" "${PID_OF[$name]}" "$DURATION"
        log "   round $round  $(printf '%-6s' "$name")  $(printf '%10.0f' "$WRK_RPS") req/s" \
          " p99 $(printf '%6s' "$WRK_P99") us  CPU: server $(printf '%5s' "$WRK_CPU")%" \
          " wrk $(printf '%3s' "$WRK_CLIENT")%  other processes $WRK_OTHER%"
        ((WRK_OTHER > BUSY_LIMIT && retries > 0 && attempt < 2)) || break
        retries=$((retries - 1))
        log "   (other processes used $WRK_OTHER% of a core: repeating this run)"
      done
      kind=clean
      if ((WRK_OTHER > BUSY_LIMIT)); then
        kind=busy disturbed=$((disturbed + 1))
      fi
      ((WRK_OTHER > max_other)) && max_other=$WRK_OTHER
      rps_list[$name.$kind]+=" $WRK_RPS" p99_list[$name.$kind]+=" $WRK_P99"
      cpu_list[$name.$kind]+=" $WRK_CPU" client_list[$name.$kind]+=" $WRK_CLIENT"
      cpu_us_list[$name.$kind]+=" $(cpu_per_request)"
    done
  done
  for name in "${SERVERS[@]}"; do
    stop_server "${PID_OF[$name]}" 15
  done
  if ((disturbed > 0)); then
    BUSY_NOTE="WARNING: other processes used up to ${max_other}% of a core during the wrk runs;"
    BUSY_NOTE+=" $disturbed of $((ROUNDS * ${#SERVERS[@]})) runs stayed disturbed after repeats"
    BUSY_NOTE+=" and count only for servers without undisturbed runs: req/s and latency are"
    BUSY_NOTE+=" unreliable"
    log "run.sh: $BUSY_NOTE"
  fi
  declare -A RUNS_COUNTED=()
  for name in "${SERVERS[@]}"; do
    kind=clean
    [ -n "${rps_list[$name.clean]:-}" ] || kind=busy
    # shellcheck disable=SC2086 # the lists are space-separated numbers
    {
      RPS[$name]=$(median ${rps_list[$name.$kind]})
      P99[$name]=$(median ${p99_list[$name.$kind]})
      CPU[$name]=$(median ${cpu_list[$name.$kind]})
      CPU_US[$name]=$(median ${cpu_us_list[$name.$kind]})
      CLIENT[$name]=$(median ${client_list[$name.$kind]})
      RUNS_COUNTED[$name]=$(wc -w <<<"${rps_list[$name.$kind]}")
    }
    [ $kind = clean ] || RUNS_COUNTED[$name]+=" disturbed"
    # One wrk thread saturating its core means the client, not the server, set
    # the pace: that server's req/s is a lower bound.
    if awk -v c="${CLIENT[$name]}" 'BEGIN { exit !(c >= 95) }'; then
      CLIENT_NOTE+="${CLIENT_NOTE:+ }wrk used ${CLIENT[$name]}% of its core against $name:"
      CLIENT_NOTE+=" $name's req/s is a lower bound (client-bound)."
    fi
  done
  echo
  echo "Throughput (median of $ROUNDS x ${DURATION}s, wrk -t1 -c$CONNECTIONS, keep-alive;" \
    "$PIN_NOTE)"
  printf '  %-8s %12s %12s %12s %14s %10s  %s\n' server "req/s" "p99 (us)" "server CPU" \
    "CPU us/request" "wrk CPU" "runs counted"
  for name in "${SERVERS[@]}"; do
    printf '  %-8s %12.0f %12.0f %11.0f%% %14s %9.0f%%  %s\n' "$name" "${RPS[$name]}" \
      "${P99[$name]}" "${CPU[$name]}" "${CPU_US[$name]}" "${CLIENT[$name]}" \
      "${RUNS_COUNTED[$name]}"
  done
  echo "  hello/engine req/s: $(ratio "${RPS[hello]}" "${RPS[engine]}")" \
    " (target >= $TARGET_GATEWAY_RPS)   CPU us/request: $(ratio "${CPU_US[hello]}" "${CPU_US[engine]}")"
  echo "  auth/hello req/s: $(ratio "${RPS[auth]}" "${RPS[hello]}")" \
    "   CPU us/request: $(ratio "${CPU_US[auth]}" "${CPU_US[hello]}")"
  echo "  json/hello req/s: $(ratio "${RPS[json]}" "${RPS[hello]}")" \
    "   CPU us/request: $(ratio "${CPU_US[json]}" "${CPU_US[hello]}")"
  for name in engine hello auth; do
    echo "  $name/evhttp req/s: $(ratio "${RPS[$name]}" "${RPS[evhttp]}")" \
      " (target >= $TARGET_THROUGHPUT)   CPU us/request:" \
      "$(ratio "${CPU_US[$name]}" "${CPU_US[evhttp]}")"
  done
  [ -z "$BUSY_NOTE" ] || echo "  $BUSY_NOTE"
  [ -z "$CLIENT_NOTE" ] || echo "  $CLIENT_NOTE"
  echo
fi

# ---- 3. Instructions per request (callgrind) -----------------------------------
# callgrind_run NAME REQUESTS: profile of one run of server NAME serving
# REQUESTS requests, in $TMP/cg.NAME.REQUESTS; sets CG_IR to its total Ir.
callgrind_run() {
  local name=$1 requests=$2
  local out=$TMP/cg.$name.$requests
  server_command "$name"
  start_server "cg-$name-$requests" 60 valgrind --tool=callgrind --callgrind-out-file="$out" \
    "${CMD[@]}"
  local pid=$SERVER_PID
  run_client 660 "$TMP/load.log" "$FIXED_LOAD" -H "$AUTH_HEADER" -p "$(path_of "$name")" \
    "$SERVER_PORT" "$CG_CONNECTIONS" "$requests" 600 ||
    { cat "$TMP/load.log" >&2; die "fixed_load against $name under callgrind failed"; }
  log "   $(printf '%-6s' "$name") $(cat "$TMP/load.log")"
  stop_server "$pid" 60
  [ -s "$out" ] || die "callgrind wrote no profile for $name"
  CG_IR=$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 }
       END { print (t != "") ? t : s }' "$out")
  [ -n "$CG_IR" ] || die "no totals in the callgrind profile of $name"
}

# function_costs PROFILE [yes]: self cost (inclusive cost with "yes") per
# function, "Ir<TAB>function [object]", from a profile. The source file is
# dropped and the object shortened to its file name, so the same function
# from two runs has the same key. callgrind_annotate runs from / : inside the
# source tree it lists some functions twice in inclusive mode (under the
# absolute and the relative path).
function_costs() {
  (cd / && callgrind_annotate --auto=no --inclusive="${2:-no}" --threshold=100 "$1" 2>/dev/null) |
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
      cost[fn SUBSEP obj] += n
    } END {
      # A line without an object (code inlined from another file) belongs to
      # the object its function has elsewhere in the profile.
      for (key in cost) {
        split(key, p, SUBSEP); fn = p[1]; obj = p[2]
        if (obj == "" && (fn in objects)) obj = objects[fn]
        total[fn (obj != "" ? " [" obj "]" : "")] += cost[key]
      }
      for (f in total) printf "%d\t%s\n", total[f], f
    }'
}

# per_request_costs SMALL_PROFILE LARGE_PROFILE [yes]: "Ir_per_request<TAB>
# function", the per-function difference of the two runs over the difference
# in requests; self costs, or inclusive ones with "yes".
per_request_costs() {
  LC_ALL=C join -t $'\t' -1 2 -2 2 -a 1 -a 2 -e 0 -o 0,1.1,2.1 \
    <(function_costs "$1" "${3:-no}" | LC_ALL=C sort -t $'\t' -k2,2) \
    <(function_costs "$2" "${3:-no}" | LC_ALL=C sort -t $'\t' -k2,2) |
    awk -F'\t' -v d=$((CG_LARGE - CG_SMALL)) '{ printf "%.1f\t%s\n", ($3 - $2) / d, $1 }' |
    sort -t $'\t' -k1,1 -g -r
}

# by_name FUNCTIONS_FILE: the same costs keyed by function name alone. csgi's
# code is in the executable for engine_hello (static library) and in
# libcsgi.so for hello and auth (shared library), so the object cannot be
# part of the key when servers are compared.
by_name() {
  awk -F'\t' '{ f = $2; sub(/ \[[^]]*\]$/, "", f); c[f] += $1 }
    END { for (f in c) printf "%.1f\t%s\n", c[f], f }' "$1" | LC_ALL=C sort -t $'\t' -k2,2
}

# function_diff BASE OTHER: "Ir_per_request<TAB>function<TAB>base<TAB>other",
# what OTHER spends per request in each function beyond BASE (negative: less),
# largest first; functions that differ by less than 0.5 Ir/request left out.
function_diff() {
  LC_ALL=C join -t $'\t' -1 2 -2 2 -a 1 -a 2 -e 0 -o 0,1.1,2.1 \
    <(by_name "$TMP/$1.functions") <(by_name "$TMP/$2.functions") |
    awk -F'\t' '{ d = $3 - $2; if (d >= 0.5 || d <= -0.5) printf "%.1f\t%s\t%s\t%s\n", d, $1, $2, $3 }' |
    sort -t $'\t' -k1,1 -g -r
}

# print_diff FILE TOTAL: the lines of a function_diff, then their sum.
print_diff() {
  awk -F'\t' -v t="$2" '{ s += $1; printf "  %8.1f %8.1f %8.1f  %s\n", $1, $3, $4, $2 }
    END { printf "  %8.1f  sum of the lines above (Ir/request difference: %s)\n", s, t }' "$1"
}

# glibc's allocator functions, as callgrind names them (with libc6-dbg).
ALLOCATOR_RE='^(malloc|free|calloc|realloc|cfree|_int_malloc|_int_free|_int_realloc|'
ALLOCATOR_RE+='malloc_consolidate|sysmalloc|unlink_chunk.*|tcache_.*|'
ALLOCATOR_RE+='__libc_(malloc|free|calloc|realloc))( |$)'

if [ $RUN_CALLGRIND = 1 ]; then
  log "== Instructions per request: callgrind, $CG_SMALL and $CG_LARGE requests" \
    "on $CG_CONNECTIONS keep-alive connections"
  for name in "${SERVERS[@]}" "${CG_ONLY[@]}"; do
    callgrind_run "$name" "$CG_SMALL"
    IR_SMALL[$name]=$CG_IR
    callgrind_run "$name" "$CG_LARGE"
    IR_LARGE[$name]=$CG_IR
    IPR[$name]=$(awk -v a="${IR_SMALL[$name]}" -v b="${IR_LARGE[$name]}" \
      -v d=$((CG_LARGE - CG_SMALL)) 'BEGIN { printf "%.0f", (b - a) / d }')
    per_request_costs "$TMP/cg.$name.$CG_SMALL" "$TMP/cg.$name.$CG_LARGE" \
      >"$TMP/$name.functions"
    per_request_costs "$TMP/cg.$name.$CG_SMALL" "$TMP/cg.$name.$CG_LARGE" yes \
      >"$TMP/$name.inclusive"
    MALLOC[$name]=$(awk -F'\t' -v re="$ALLOCATOR_RE" '$2 ~ re { s += $1 }
      END { printf "%.0f", s }' "$TMP/$name.functions")
  done
  function_diff engine hello >"$TMP/gateway.diff"
  function_diff hello auth >"$TMP/auth.diff"
  function_diff hello json >"$TMP/json.diff"
  function_diff hello logged >"$TMP/access_log.diff"
  mkdir -p "$BUILD_DIR/results"
  rm -f "$BUILD_DIR"/results/cg.* "$BUILD_DIR"/results/*.functions \
    "$BUILD_DIR"/results/*.inclusive "$BUILD_DIR"/results/*.diff
  cp "$TMP"/cg.* "$TMP"/*.functions "$TMP"/*.inclusive "$TMP"/*.diff "$BUILD_DIR/results/"

  echo
  echo "Instructions per request (callgrind Ir, (run of $CG_LARGE - run of $CG_SMALL)" \
    "/ $((CG_LARGE - CG_SMALL)))"
  printf '  %-8s %14s %14s %12s %14s\n' server "Ir ($CG_SMALL)" "Ir ($CG_LARGE)" "Ir/request" \
    "malloc/free Ir"
  for name in "${SERVERS[@]}" "${CG_ONLY[@]}"; do
    printf '  %-8s %14s %14s %12s %8s %4.1f%%\n' "$name" "${IR_SMALL[$name]}" \
      "${IR_LARGE[$name]}" "${IPR[$name]}" "${MALLOC[$name]}" \
      "$(awk -v m="${MALLOC[$name]}" -v t="${IPR[$name]}" 'BEGIN { print 100 * m / t }')"
  done
  echo "  hello/engine Ir/request: $(ratio "${IPR[hello]}" "${IPR[engine]}")" \
    " (target <= $TARGET_GATEWAY_IR)"
  echo "  auth/hello Ir/request: $(ratio "${IPR[auth]}" "${IPR[hello]}")" \
    " (target <= $TARGET_AUTH_IR)"
  echo "  json/hello Ir/request: $(ratio "${IPR[json]}" "${IPR[hello]}")" \
    " (json - hello: $((IPR[json] - IPR[hello])) Ir, the router, the handler and jansson)"
  echo "  engine/evhttp Ir/request: $(ratio "${IPR[engine]}" "${IPR[evhttp]}")" \
    " (target <= $TARGET_ENGINE_IR)"
  echo "  logged/hello Ir/request: $(ratio "${IPR[logged]}" "${IPR[hello]}")" \
    " (access log on against off; target <= $TARGET_ACCESS_LOG_IR)"
  for name in hello auth; do
    echo "  $name/evhttp Ir/request: $(ratio "${IPR[$name]}" "${IPR[evhttp]}")"
  done
  echo "  (profiles, per-function costs and differences: $BUILD_DIR/results/)"
  for name in "${SERVERS[@]}"; do
    echo
    echo "  $name: Ir per request by object file"
    awk -F'\t' '{ obj = $2; if (!sub(/.*\[/, "", obj)) obj = "?]"; sub(/\]$/, "", obj)
        cost[obj] += $1; total += $1 }
      END { for (o in cost) if (cost[o] >= 0.5)
              printf "  %8.1f %5.1f%%  %s\n", cost[o], 100 * cost[o] / total, o }' \
      "$TMP/$name.functions" | sort -g -r
    echo "  $name: top 15 functions by self cost, Ir per request"
    head -n 15 "$TMP/$name.functions" |
      awk -F'\t' -v t="${IPR[$name]}" '{ printf "  %8.1f %5.1f%%  %s\n", $1, 100 * $1 / t, $2 }'
  done
  echo
  echo "  What the gateway adds: hello - engine, Ir per request by function"
  echo "  (functions differing by 0.5 or more; csgi's own code is in libcsgi.so for"
  echo "  hello, in the executable for engine_hello)"
  printf '  %8s %8s %8s  %s\n' "hello-" engine hello function
  print_diff "$TMP/gateway.diff" "$((IPR[hello] - IPR[engine]))"
  echo
  echo "  What the auth filter adds: auth - hello, Ir per request by function"
  printf '  %8s %8s %8s  %s\n' "auth-" hello auth function
  print_diff "$TMP/auth.diff" "$((IPR[auth] - IPR[hello]))"
  echo
  echo "  What the router and the JSON handler add: json - hello, Ir per request by"
  echo "  function (the 25 largest differences; all of them in $BUILD_DIR/results/json.diff)"
  printf '  %8s %8s %8s  %s\n' "json-" hello json function
  head -n 25 "$TMP/json.diff" >"$TMP/json.top"
  print_diff "$TMP/json.top" "$((IPR[json] - IPR[hello]))"
  echo
  echo "  What the access log adds: logged - hello, Ir per request by function"
  printf '  %8s %8s %8s  %s\n' "logged-" hello logged function
  print_diff "$TMP/access_log.diff" "$((IPR[logged] - IPR[hello]))"
  for name in hello auth json; do
    echo
    echo "  $name: csgi's functions by inclusive cost (self and callees), Ir per request"
    grep -E $'\t(csgi_|auth_call|hello_call|application|materialise|lookup|format_address|router_call|walk|adapter_call|show_server|json_)' \
      "$TMP/$name.inclusive" | awk -F'\t' -v t="${IPR[$name]}" '$1 < 0.99 * t' | head -n 15 |
      awk -F'\t' -v t="${IPR[$name]}" '{ printf "  %8.1f %5.1f%%  %s\n", $1, 100 * $1 / t, $2 }'
  done
  echo
fi

# ---- 4. Idle keep-alive connections -------------------------------------------------
# idle_run NAME: sets IDLE_BYTES to the server's anonymous memory growth per
# idle connection in bytes.
idle_run() {
  local name=$1
  server_command "$name"
  start_server "idle-$name" 10 "${CMD[@]}"
  local pid=$SERVER_PID
  run_client 300 "$TMP/idle.$name.log" "$IDLE" -H "$AUTH_HEADER" "$SERVER_PORT" "$pid" \
    "$IDLE_CONNS" || { cat "$TMP/idle.$name.log" >&2; die "idle_conns against $name failed"; }
  stop_server "$pid" 15
  sed 's/^idle_conns:/  '"$name"':/' "$TMP/idle.$name.log" | grep -v 'count=' >&2
  IDLE_BYTES=$(sed -n 's/.*anon_per_conn=\([0-9-]*\).*/\1/p' "$TMP/idle.$name.log")
  [ -n "$IDLE_BYTES" ] || die "cannot parse idle_conns output for $name"
}

IDLE_SERVERS=(hello evhttp)
if [ $RUN_IDLE = 1 ]; then
  log "== Idle keep-alive connections: $IDLE_CONNS per server (ulimit -n $(ulimit -n))"
  if [ "$IDLE_CONNS" -gt 4000 ]; then
    log "run.sh: warning: past 4096 connections per loop (the default), csgi closes those idle the longest"
  fi
  for name in "${IDLE_SERVERS[@]}"; do
    idle_run "$name"
    IDLE_BYTES_OF[$name]=$IDLE_BYTES
  done
  echo
  echo "Idle keep-alive connections ($IDLE_CONNS, each after one request): server RssAnon growth"
  printf '  %-8s %10s\n' server "bytes/conn"
  for name in "${IDLE_SERVERS[@]}"; do
    printf '  %-8s %10s\n' "$name" "${IDLE_BYTES_OF[$name]}"
  done
  echo "  (process memory only: the kernel's socket buffers and TCP state are not in RSS)"
  echo
fi

# ---- 5. Answers stuck behind clients that do not read ------------------------------
# stuck_run LABEL [ENV...]: environ_dump (under env) against stuck_responses;
# sets STUCK_BYTES to the anonymous memory per stuck answer.
stuck_run() {
  local label=$1
  shift
  start_server "stuck" 10 env "$@" "$ENVIRON_DUMP" --port 0
  local pid=$SERVER_PID
  run_client 120 "$TMP/stuck.log" "$STUCK" "$SERVER_PORT" "$pid" "$STUCK_COUNT" "$STUCK_BODY" ||
    { cat "$TMP/stuck.log" >&2; die "stuck_responses failed"; }
  stop_server "$pid" 15
  sed 's/^stuck_responses:/  '"$label"':/' "$TMP/stuck.log" | grep -v 'count=' >&2
  STUCK_BYTES=$(sed -n 's/.*anon_per_response=\([0-9-]*\).*/\1/p' "$TMP/stuck.log")
  [ -n "$STUCK_BYTES" ] || die "cannot parse stuck_responses output"
}

if [ $RUN_STUCK = 1 ]; then
  log "== Answers stuck behind clients that do not read: $STUCK_COUNT x environ_dump, $STUCK_BODY-byte bodies"
  stuck_run "default malloc"
  stuck_default=$STUCK_BYTES
  stuck_run "mmap threshold" MALLOC_MMAP_THRESHOLD_=131072
  echo
  echo "Answers stuck behind clients that do not read ($STUCK_COUNT, environ_dump, $STUCK_BODY-byte bodies): RssAnon per answer"
  printf '  %-42s %12s\n' malloc "bytes/answer"
  printf '  %-42s %12s\n' "glibc default" "$stuck_default"
  printf '  %-42s %12s\n' "MALLOC_MMAP_THRESHOLD_=131072" "$STUCK_BYTES"
  echo
fi

# ---- 6. Summary -------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
source_note=$(cd "$ROOT" && {
  commit=$(git rev-parse --short HEAD 2>/dev/null) || exit 0
  changed=$(git --no-optional-locks status --porcelain -- src include 2>/dev/null | wc -l)
  printf 'commit %s' "$commit"
  [ "$changed" = 0 ] || printf ' with %s uncommitted changes under src/ and include/' "$changed"
}) || true
load=$(cut -d' ' -f1-3 /proc/loadavg)

# target_row LABEL VALUE OP LIMIT: one row of the targets table; a missing
# value is "skipped".
failed=0
target_row() {
  local label=$1 value=$2 op=$3 limit=$4 v
  if [ -z "$value" ] || [ "$value" = nan ]; then
    printf '| %s | skipped | %s %s | - |\n' "$label" "$op" "$limit"
    return
  fi
  v=$(verdict "$value" "$op" "$limit")
  [ "$v" = PASS ] || failed=1
  printf '| %s | %s | %s %s | %s |\n' "$label" "$value" "$op" "$limit" "$v"
}
# r A B: ratio when both are known, else empty.
r() { if [ -n "$1" ] && [ -n "$2" ]; then ratio "$1" "$2"; fi; }
# cell VALUE FORMAT: a formatted value, or "-".
# shellcheck disable=SC2059 # the format is the argument
cell() { if [ -n "$1" ]; then printf "$2" "$1"; else printf -- -; fi; }

echo "===================================================================="
echo "csgi benchmark summary"
echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- System: $(uname -srm), $CORES cores, CPU: ${cpu:-unknown}; load average $load at the end"
echo "- libevent $(pkg-config --modversion libevent), $(cc --version | head -n 1)"
echo "- Build: Release, -O2${source_note:+; $source_note}"
echo "- Servers (one loop each): engine = bench/engine_hello (engine alone), hello ="
echo "  examples/hello (gateway), auth = bench/auth_hello (gateway + auth middleware),"
echo "  json = bench/routed_json (router of 100 routes + JSON handler, GET $(path_of json)),"
echo "  evhttp = bench/evhttp_hello; logged = bench/log_hello (hello with a combined"
echo "  access log to a file; callgrind only); every request carries '$AUTH_HEADER'"
echo
printf '| Measure |'
printf ' %s |' "${SERVERS[@]}"
printf '\n|---|'
printf -- '---:|%.0s' "${SERVERS[@]}"
printf '\n'
row() { # row LABEL FORMAT ARRAY_NAME
  local -n values=$3
  printf '| %s' "$1"
  for name in "${SERVERS[@]}"; do printf ' | %s' "$(cell "${values[$name]:-}" "$2")"; done
  printf ' |\n'
}
if [ $RUN_THROUGHPUT = 1 ]; then
  row "Requests/s (median of $ROUNDS x ${DURATION}s, wrk -t1 -c$CONNECTIONS)" '%.0f' RPS
  row "Runs counted in the medians (undisturbed)" '%s' RUNS_COUNTED
  row "p99 latency, us (median)" '%.0f' P99
  row "Server CPU during the runs, % of a core (median)" '%.0f' CPU
  row "Server CPU time per request, us (user + kernel)" '%s' CPU_US
  row "wrk CPU, % of its core (median)" '%.0f' CLIENT
fi
if [ $RUN_CALLGRIND = 1 ]; then
  row "Instructions/request (callgrind)" '%s' IPR
  row "of which in malloc/free (Ir)" '%s' MALLOC
fi
if [ $RUN_IDLE = 1 ]; then
  row "Bytes per idle keep-alive connection ($IDLE_CONNS)" '%s' IDLE_BYTES_OF
fi
echo
echo "| Target | measured | target | result |"
echo "|---|---:|---|---|"
target_row "Gateway: hello/engine instructions/request" \
  "$(r "${IPR[hello]:-}" "${IPR[engine]:-}")" '<=' "$TARGET_GATEWAY_IR"
target_row "Gateway: hello/engine req/s" \
  "$(r "${RPS[hello]:-}" "${RPS[engine]:-}")" '>=' "$TARGET_GATEWAY_RPS"
target_row "Middleware: auth/hello instructions/request" \
  "$(r "${IPR[auth]:-}" "${IPR[hello]:-}")" '<=' "$TARGET_AUTH_IR"
target_row "hello/evhttp req/s" "$(r "${RPS[hello]:-}" "${RPS[evhttp]:-}")" '>=' \
  "$TARGET_THROUGHPUT"
target_row "auth/evhttp req/s" "$(r "${RPS[auth]:-}" "${RPS[evhttp]:-}")" '>=' \
  "$TARGET_THROUGHPUT"
target_row "Engine: engine/evhttp req/s" "$(r "${RPS[engine]:-}" "${RPS[evhttp]:-}")" '>=' \
  "$TARGET_THROUGHPUT"
target_row "Engine: engine/evhttp instructions/request" \
  "$(r "${IPR[engine]:-}" "${IPR[evhttp]:-}")" '<=' "$TARGET_ENGINE_IR"
target_row "hello: bytes per idle connection" "${IDLE_BYTES_OF[hello]:-}" '<=' \
  "$TARGET_IDLE_BYTES"
target_row "Access log: logged/hello instructions/request" \
  "$(r "${IPR[logged]:-}" "${IPR[hello]:-}")" '<=' "$TARGET_ACCESS_LOG_IR"
echo
echo "| Other ratios | requests/s | CPU time/request | instructions/request |"
echo "|---|---:|---:|---:|"
for pair in "hello engine" "auth hello" "json hello" "logged hello" "hello evhttp" \
  "auth evhttp" "engine evhttp"; do
  read -r a b <<<"$pair"
  printf '| %s/%s | %s | %s | %s |\n' "$a" "$b" \
    "$(cell "$(r "${RPS[$a]:-}" "${RPS[$b]:-}")" %s)" \
    "$(cell "$(r "${CPU_US[$a]:-}" "${CPU_US[$b]:-}")" %s)" \
    "$(cell "$(r "${IPR[$a]:-}" "${IPR[$b]:-}")" %s)"
done
echo
[ -n "$PIN_NOTE" ] && echo "Throughput: $PIN_NOTE."
[ -n "$BUSY_BEFORE" ] && echo "Throughput: the machine was ${BUSY_BEFORE}% busy just before the runs."
[ -n "$BUSY_NOTE" ] && echo "Throughput: $BUSY_NOTE."
[ -n "$CLIENT_NOTE" ] && echo "Throughput: $CLIENT_NOTE"
[ $RUN_IDLE = 1 ] &&
  echo "Idle memory is the server's RssAnon growth; kernel socket memory is not included."
echo "===================================================================="

[ $RUN_PEERS = 0 ] || run_peers
if [ "$STRICT" = 1 ] && { [ $failed = 1 ] || [ "$PEERS_FAILED" != 0 ]; }; then
  exit 1
fi
exit 0
