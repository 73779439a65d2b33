#!/usr/bin/env bash
# What the production server costs a request: csgi-serve serving the talk's
# pipeline (examples/auth_filter/wsgi_webob_mid.ini: the auth filter in
# front of its hello application, every request carrying the token), as a
# deploy would, with worker processes.
#
#   bench/workers.sh [workers] [accesslog]     (default: both)
#
# 1. workers    csgi-serve --workers 2 against --workers 1: the server's CPU
#               time per request and its requests per second. Both servers
#               run side by side, pinned to core 0 with every process they
#               start (taskset; workers inherit it); wrk -t1 -c64 is pinned
#               to core 1, so the client has a core of its own on a 2-core
#               machine. The servers take turns, ROUNDS runs of DURATION
#               seconds each (the order reverses every round), after a
#               warm-up. The CPU time is read from /proc/PID/stat: utime +
#               stime of the master, of the workers living at the end of the
#               run and of those it reaped, before and after each run,
#               divided by the requests wrk counted. Medians of the rounds.
#               Target: 2 workers within 10% of 1 worker.
#    What it shows: what a second process costs a request on the same core:
#               two processes polling the same listeners, switches between
#               them, colder caches, the master's share (it wakes once a
#               second). What it cannot show: scaling over several cores
#               (the two workers share one on purpose, and on this machine
#               the other core is the client's), latency under load, or
#               anything of a slow application. CPU time per request follows
#               the machine's speed (other tenants of a VM, frequency): only
#               the ratio of the same run means anything, and its req/s
#               are the client's pace as much as the server's (wrk near 100%
#               of core 1 sets it). Each run prints how busy the two cores
#               were apart from the server; a run during which other
#               processes used more than 10% of core 0 is "busy", done again
#               (REPEATS times at most in all), and left out of the medians
#               when the server has quiet runs ("runs counted" says).
# 2. accesslog  instructions per request of a worker, csgi-serve --workers 1
#               with --access-log FILE (combined format, default buffering)
#               against none: two runs of different length under callgrind
#               (CG_SMALL and CG_LARGE requests from bench/fixed_load), the
#               difference in the workers' Ir (callgrind follows the fork
#               and writes one profile per process; the master's is left
#               out) divided by the difference in requests, as bench/run.sh
#               measures its servers. Target: within 10% (bench/run.sh's
#               `logged` against `hello` measures the same line in one
#               process through the C API; this is the deploy file's path).
#
# Nothing here judges timing: the script prints figures and ratios, and
# exits 0 whatever they are. Environment (defaults in brackets):
#   DURATION [5]  ROUNDS [3]  WARMUP [2]  CONNECTIONS [64]   the wrk runs
#   REPEATS [6]   disturbed runs done again, at most, in all
#   CG_SMALL [2000] CG_LARGE [22000] CG_CONNECTIONS [32]     the callgrind runs
#   BUILD_DIR [build-bench]                                  (bench/run.sh's Release build)
# Everything listens on 127.0.0.1 only; the servers started here are
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-22000}
CG_CONNECTIONS=${CG_CONNECTIONS:-32}
REPEATS=${REPEATS:-6}
# A run during which other processes kept core 0 busier than this (%) is
# disturbed.
BUSY_LIMIT=10
TOKEN_HEADER="X-Auth-Token: open-sesame"
BODY="Hello, Secret World of WebOb !"
INI=$ROOT/examples/auth_filter/wsgi_webob_mid.ini

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUN_WORKERS=0 RUN_ACCESSLOG=0
[ $# -gt 0 ] || RUN_WORKERS=1 RUN_ACCESSLOG=1
for arg in "$@"; do
  case $arg in
    workers) RUN_WORKERS=1 ;;
    accesslog) RUN_ACCESSLOG=1 ;;
    -h | --help) help_text; exit 0 ;;
    *) die "unknown part '$arg' (workers, accesslog)" ;;
  esac
done

tools=(cmake taskset)
[ $RUN_WORKERS = 1 ] && tools+=(wrk)
[ $RUN_ACCESSLOG = 1 ] && tools+=(valgrind)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install -y $tool)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 cores: the server on one, the client on the other"

bench_tmp csgi-workers-bench
bench_build csgi-serve wsgi_webob_mid fixed_load
SERVE=$BUILD_DIR/tools/csgi-serve
MODULES=$BUILD_DIR/examples/auth_filter
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
# csgi-serve refuses to serve as root unless told.
ROOT_FLAG=()
[ "$(id -u)" != 0 ] || ROOT_FLAG=(--allow-root)
CLOCK_TICKS=$(getconf CLK_TCK)

# serve LOG ARGS...: csgi-serve serving the talk's pipeline on a free port
# with ARGS, started by start_server (SERVER_PID, SERVER_PORT); the answer
# is checked.
serve() {
  local log=$1
  shift
  start_server "$log" "$@" --listen 127.0.0.1:0 --module-path "$MODULES" "$INI"
  run_client "$FIXED_LOAD" -H "$TOKEN_HEADER" -b "$BODY" "$SERVER_PORT" 1 3 120 \
    >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log" "$log" >&2; die "the server does not answer"; }
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", b ? 100 * a / b : 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b ? a / b : 0 }'; }

# ---- 1. Worker processes ----------------------------------------------------------
# wrk_run PID PORT SECONDS: one wrk run against the server PID; sets RPS,
# US_PER_REQUEST (server CPU time per request, us), SERVER_PCT (its CPU in %
# of core 0), OTHER_PCT (core 0 busy apart from the server, %), CLIENT_PCT
# (core 1 busy: wrk and whatever else ran there, %), SWITCHES (the server's
# context switches per request).
wrk_run() {
  local pid=$1 port=$2 seconds=$3 out=$TMP/wrk.txt ticks core0 core1 start elapsed requests
  local switches
  ticks=$(tree_ticks "$pid") core0=$(core_busy_ticks 0) core1=$(core_busy_ticks 1)
  switches=$(tree_switches "$pid")
  start=$(date +%s.%N)
  run_client taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${seconds}s" -H "$TOKEN_HEADER" \
    "http://127.0.0.1:$port/" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { print e - s }')
  ticks=$(($(tree_ticks "$pid") - ticks)) switches=$(($(tree_switches "$pid") - switches))
  core0=$(($(core_busy_ticks 0) - core0)) core1=$(($(core_busy_ticks 1) - core1))
  if grep -q 'Non-2xx' "$out"; then
    cat "$out" >&2
    die "wrk got answers other than 200"
  fi
  requests=$(awk '/requests in/ { print $1 }' "$out")
  RPS=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
  if [ -z "$requests" ] || [ -z "$RPS" ]; then
    cat "$out" >&2
    die "cannot read wrk's output"
  fi
  read -r US_PER_REQUEST SERVER_PCT OTHER_PCT CLIENT_PCT SWITCHES < <(awk -v t="$ticks" \
    -v c0="$core0" -v c1="$core1" -v hz="$CLOCK_TICKS" -v r="$requests" -v d="$elapsed" \
    -v s="$switches" 'BEGIN {
      other = c0 - t; if (other < 0) other = 0
      printf "%.2f %.0f %.0f %.0f %.3f\n", t / hz * 1e6 / r, 100 * t / hz / d,
        100 * other / hz / d, 100 * c1 / hz / d, s / r }')
}

if [ $RUN_WORKERS = 1 ]; then
  log "== Worker processes: csgi-serve --workers 1 and 2 on core 0, wrk -t1 -c$CONNECTIONS on core 1"
  declare -A PID_OF=() PORT_OF=() rps=() us=() server=() other=() client=() sw=() counted=()
  repeats=0
  for n in 1 2; do
    serve "$TMP/workers-$n.log" taskset -c 0 "$SERVE" "${ROOT_FLAG[@]}" --workers "$n"
    PID_OF[$n]=$SERVER_PID PORT_OF[$n]=$SERVER_PORT
    OTHER_SERVER_PIDS+=" $SERVER_PID" SERVER_PID="" # both are stopped on exit
  done
  for n in 1 2; do
    # Every worker has started and accepted by the end of the warm-up.
    wrk_run "${PID_OF[$n]}" "${PORT_OF[$n]}" "$WARMUP"
    living=$(wc -w </proc/"${PID_OF[$n]}"/task/"${PID_OF[$n]}"/children)
    [ "$living" = "$n" ] || die "--workers $n runs $living workers"
  done
  for ((round = 1; round <= ROUNDS; round++)); do
    order=(1 2)
    ((round % 2)) || order=(2 1)
    for n in "${order[@]}"; do
      # A run during which other processes used core 0 is done again (at
      # most REPEATS times in all): they take the server's core and its
      # caches.
      while :; do
        wrk_run "${PID_OF[$n]}" "${PORT_OF[$n]}" "$DURATION"
        kind=quiet note=""
        ((OTHER_PCT <= BUSY_LIMIT)) || kind=busy note=" (disturbed)"
        log "   round $round  workers $n  $(printf '%8.0f' "$RPS") req/s  $(printf '%6s' \
          "$US_PER_REQUEST") us CPU/request  server $SERVER_PCT% of core 0, others" \
          "$OTHER_PCT% of core 0, core 1 (wrk) $CLIENT_PCT% busy, $SWITCHES switches/request$note"
        if [ $kind = quiet ] || ((repeats >= REPEATS)); then break; fi
        repeats=$((repeats + 1))
      done
      rps[$n.$kind]+=" $RPS" us[$n.$kind]+=" $US_PER_REQUEST" server[$n.$kind]+=" $SERVER_PCT"
      other[$n.$kind]+=" $OTHER_PCT" client[$n.$kind]+=" $CLIENT_PCT" sw[$n.$kind]+=" $SWITCHES"
    done
  done
  for n in 1 2; do
    SERVER_PID=${PID_OF[$n]}
    stop_server_by TERM
    # The quiet runs, when there are any.
    kind=quiet
    [ -n "${rps[$n.quiet]:-}" ] || kind=busy
    counted[$n]="$(wc -w <<<"${rps[$n.$kind]}") $kind"
    # shellcheck disable=SC2086 # lists of numbers
    {
      rps[$n]=$(median ${rps[$n.$kind]}) us[$n]=$(median ${us[$n.$kind]})
      server[$n]=$(median ${server[$n.$kind]}) other[$n]=$(median ${other[$n.$kind]})
      client[$n]=$(median ${client[$n.$kind]}) sw[$n]=$(median ${sw[$n.$kind]})
    }
  done
fi

# ---- 2. The access log --------------------------------------------------------------
# callgrind_workers NAME REQUESTS ARGS...: csgi-serve --workers 1 ARGS under
# callgrind serving REQUESTS requests; sets CG_IR to its workers' total Ir.
callgrind_workers() {
  local name=$1 requests=$2 profiles=$TMP/cg.$1.$2
  shift 2
  mkdir "$profiles"
  serve "$TMP/cg-$name.log" valgrind --tool=callgrind \
    --callgrind-out-file="$profiles/callgrind.%p" "$SERVE" "${ROOT_FLAG[@]}" --workers 1 "$@"
  local master=$SERVER_PID
  run_client "$FIXED_LOAD" -H "$TOKEN_HEADER" -b "$BODY" "$SERVER_PORT" "$CG_CONNECTIONS" \
    "$requests" 600 >"$TMP/load.log" 2>&1 || { cat "$TMP/load.log" >&2; die "fixed_load failed"; }
  stop_server_by TERM # the worker stops gracefully and writes its profile
  rm -f "$profiles/callgrind.$master"
  local workers=("$profiles"/callgrind.*)
  [ -e "${workers[0]}" ] || die "callgrind wrote no worker profile for $name"
  CG_IR=$(callgrind_total "${workers[@]}")
}

declare -A IPR=()
if [ $RUN_ACCESSLOG = 1 ]; then
  log "== The access log: a worker's instructions per request, callgrind, $CG_SMALL and" \
    "$CG_LARGE requests"
  for name in off on; do
    args=()
    [ $name = off ] || args=(--access-log "$TMP/access.log")
    callgrind_workers "$name" "$CG_SMALL" "${args[@]}"
    small=$CG_IR
    callgrind_workers "$name" "$CG_LARGE" "${args[@]}"
    IPR[$name]=$(((CG_IR - small) / (CG_LARGE - CG_SMALL)))
    log "   access log $name: ${IPR[$name]} Ir/request"
  done
  lines=$(wc -l <"$TMP/access.log")
  # Both "on" runs append to it, each after serve's 3 checked requests.
  [ "$lines" = $((CG_SMALL + CG_LARGE + 6)) ] ||
    die "the access log has $lines lines, not one per request"
  mkdir -p "$BUILD_DIR/results-workers"
  rm -rf "$BUILD_DIR"/results-workers/cg.*
  cp -r "$TMP"/cg.* "$BUILD_DIR/results-workers/"
fi

# ---- Results --------------------------------------------------------------------
echo "csgi worker processes and access log, $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
  "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)," \
  "$(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
echo "csgi-serve --module-path $MODULES examples/auth_filter/wsgi_webob_mid.ini, every request with '$TOKEN_HEADER'"
if [ $RUN_WORKERS = 1 ]; then
  echo
  echo "Worker processes (median of $ROUNDS x ${DURATION}s, wrk -t1 -c$CONNECTIONS keep-alive on core 1;" \
    "the server's processes on core 0)"
  printf '  %-8s %10s %15s %17s %11s %15s %12s  %s\n' workers "req/s" "CPU us/request" \
    "switches/request" "server CPU" "others, core 0" "core 1 busy" "runs counted"
  for n in 1 2; do
    printf '  %-8s %10.0f %15s %17s %10s%% %14s%% %11s%%  %s\n' "$n" "${rps[$n]}" "${us[$n]}" \
      "${sw[$n]}" "${server[$n]}" "${other[$n]}" "${client[$n]}" "${counted[$n]}"
  done
  echo "  2 workers / 1 worker: CPU time per request $(ratio "${us[2]}" "${us[1]}") (target <= 1.10)," \
    "req/s $(ratio "${rps[2]}" "${rps[1]}")"
  if [[ "${counted[1]} ${counted[2]}" == *busy* ]]; then
    echo "  WARNING: other processes used more than $BUSY_LIMIT% of core 0 in every run of a"
    echo "  server (\"busy\" above): these figures, and their ratio, are unreliable"
  fi
fi
if [ $RUN_ACCESSLOG = 1 ]; then
  echo
  echo "The access log (csgi-serve --workers 1; a worker's Ir, (run of $CG_LARGE - run of" \
    "$CG_SMALL) / $((CG_LARGE - CG_SMALL)))"
  printf '  %-32s %12s\n' "" "Ir/request"
  printf '  %-32s %12s\n' "no access log" "${IPR[off]}" "--access-log FILE (combined)" "${IPR[on]}"
  echo "  on / off: $(ratio "${IPR[on]}" "${IPR[off]}") (target <= 1.10), +$((IPR[on] - IPR[off])) Ir" \
    "a line; the profiles are in $BUILD_DIR/results-workers/"
fi
