#!/usr/bin/env bash
# What the handler model costs a request, against raw applications giving
# the same answer (200 "Hello World"), all from bench/handler_bench:
#
#   raw-get         examples/hello's application: the baseline
#   handler-get     the same answer from csgi_handler_app() (no body: nothing
#                   is gathered)
#   raw-post        a raw application reading a ~100-byte JSON body with
#                   csgi_request_json() (the body comes with the head)
#   handler-post    the same from a handler with csgi_handler_json(): the
#                   adapter gathers the body in memory first
#   raw-stream      a raw application counting the body's bytes as they come
#                   (csgi_input_read(), csgi_input_on_ready() when it waits)
#   handler-stream  the same from a streaming handler
#                   (csgi_handler_read_body())
#   handler-spill   handler-post with body_buffer_size 64: every body goes
#                   through a temporary file
#
#   bench/handler.sh [callgrind] [syscalls] [inflight]     (default: all three)
#
# 1. callgrind  instructions per request, as bench/router.sh: two runs of
#               different length under callgrind, the difference in Ir
#               divided by the difference in requests (start-up and
#               shut-down cancel); the differences handler - raw, in
#               instructions and in % of raw-get; the profiles are kept in
#               BUILD_DIR/results-handler/
# 2. syscalls   system calls per request (strace -c attached to the server
#               for two loads of different length, the difference divided by
#               the difference in requests): callgrind counts user space
#               only, and a spilled body's cost is mostly in the kernel
# 3. inflight   the server's anonymous memory per request in flight:
#               bench/idle_conns -b 2000:1000 opens INFLIGHT_CONNS
#               connections, each sending a POST head with
#               Content-Length: 2000 and 1000 bytes of the body, then
#               waiting, against a gathering handler (handler_bench --mode
#               count, in memory), a streaming handler and a raw application
#               reading as the bytes arrive (csgi_input_on_ready()): the
#               differences are what the adapter holds per request
#
# Every POST carries the same 98-byte JSON object (fixed_load -d, with
# Content-Type: application/json) and every answer is checked (status and
# body). Environment (defaults in brackets):
#   CG_SMALL [2000] CG_LARGE [22000]   requests of the two callgrind runs
#   CG_CONNECTIONS [32]                connections of the callgrind runs
#   SC_SMALL [2000] SC_LARGE [12000]   requests of the two strace loads
#   INFLIGHT_CONNS [1000]              requests in flight per server
#   BUILD_DIR [build-bench]            (the Release build of bench/run.sh)
# Everything listens on 127.0.0.1 only; the servers started here are stopped
# on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-22000}
CG_CONNECTIONS=${CG_CONNECTIONS:-32}
SC_SMALL=${SC_SMALL:-2000}
SC_LARGE=${SC_LARGE:-12000}
INFLIGHT_CONNS=${INFLIGHT_CONNS:-1000}
# The body of every POST: a JSON object of 98 bytes.
JSON='{"name":"csgi","kind":"benchmark","tags":["c","wsgi","libevent"],"count":42,"ok":true,"ratio":0.5}'

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

RUN_CALLGRIND=0 RUN_SYSCALLS=0 RUN_INFLIGHT=0
[ $# -gt 0 ] || RUN_CALLGRIND=1 RUN_SYSCALLS=1 RUN_INFLIGHT=1
for arg in "$@"; do
  case $arg in
    callgrind) RUN_CALLGRIND=1 ;;
    syscalls) RUN_SYSCALLS=1 ;;
    inflight) RUN_INFLIGHT=1 ;;
    -h | --help) help_text; exit 0 ;;
    *) die "unknown part '$arg' (callgrind, syscalls, inflight)" ;;
  esac
done

tools=(cmake)
[ $RUN_CALLGRIND = 1 ] && tools+=(valgrind)
[ $RUN_SYSCALLS = 1 ] && tools+=(strace)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install -y $tool)"
done

bench_tmp csgi-handler-bench
bench_build handler_bench fixed_load idle_conns
SERVER=$BUILD_DIR/bench/handler_bench
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
IDLE=$BUILD_DIR/bench/idle_conns

# The configurations measured, in the order of the tables.
NAMES=(raw-get handler-get raw-post handler-post raw-stream handler-stream handler-spill)
SPILL_DIR=$TMP/spill
mkdir "$SPILL_DIR"
# server_args NAME: sets ARGS to handler_bench's arguments for NAME.
server_args() {
  case $1 in
    handler-spill) ARGS=(--mode handler-post --body-buffer-size 64 --body-temp-dir "$SPILL_DIR") ;;
    *) ARGS=(--mode "$1") ;;
  esac
}
# load NAME PORT CONNECTIONS REQUESTS: the checked load of configuration NAME.
load() {
  local post=()
  case $1 in *-get) ;; *) post=(-d "$JSON" -t application/json) ;; esac
  run_client "$FIXED_LOAD" "${post[@]}" -b "Hello World" "$2" "$3" "$4" 600 >"$TMP/load.log" 2>&1 ||
    { cat "$TMP/load.log" >&2; die "fixed_load against $1 failed"; }
}

# check_spill_dir: the temporary files of handler-spill are all removed.
check_spill_dir() {
  local left
  left=$(find "$SPILL_DIR" -type f | wc -l)
  [ "$left" = 0 ] || die "handler-spill left $left files in its body_temp_dir"
}

pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }

# ---- 1. Instructions per request --------------------------------------------------
# callgrind_ir NAME REQUESTS: sets CG_IR to the total Ir of configuration
# NAME serving REQUESTS requests under callgrind. (Not run in a $(...)
# subshell: the server it starts must be the one the exit trap stops.)
callgrind_ir() {
  local name=$1 requests=$2 out=$TMP/cg.$1.$2
  server_args "$name"
  start_server "$TMP/$name.log" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$SERVER" "${ARGS[@]}" --port 0
  load "$name" "$SERVER_PORT" "$CG_CONNECTIONS" "$requests"
  stop_server
  CG_IR=$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 } END { print (t != "") ? t : s }' "$out")
  [ -n "$CG_IR" ] || die "no totals in the callgrind profile of $name"
}

declare -A IPR=()
if [ $RUN_CALLGRIND = 1 ]; then
  log "== Instructions per request: callgrind, $CG_SMALL and $CG_LARGE requests"
  for name in "${NAMES[@]}"; do
    callgrind_ir "$name" "$CG_SMALL"
    small=$CG_IR
    callgrind_ir "$name" "$CG_LARGE"
    IPR[$name]=$(((CG_IR - small) / (CG_LARGE - CG_SMALL)))
    log "   $name: ${IPR[$name]}"
  done
  check_spill_dir
  # The profiles, for callgrind_annotate or kcachegrind.
  mkdir -p "$BUILD_DIR/results-handler"
  rm -f "$BUILD_DIR"/results-handler/cg.*
  cp "$TMP"/cg.* "$BUILD_DIR/results-handler/"
fi

# ---- 2. System calls per request --------------------------------------------------
# strace_calls NAME PORT PID REQUESTS: strace -c attached to the server PID
# during a load of REQUESTS; the summary in $TMP/sc.NAME.REQUESTS.
strace_calls() {
  local name=$1 port=$2 pid=$3 requests=$4 out=$TMP/sc.$1.$4 i
  : >"$out.log"
  strace -c -f -p "$pid" -o "$out" 2>"$out.log" &
  TRACER_PID=$!
  for ((i = 0; i < 100; i++)); do
    grep -q attached "$out.log" && break
    sleep 0.1
  done
  grep -q attached "$out.log" || { cat "$out.log" >&2; die "strace did not attach"; }
  load "$name" "$port" "$CG_CONNECTIONS" "$requests"
  sleep 0.5 # the server closes the load's connections inside the window
  kill -INT "$TRACER_PID"
  wait "$TRACER_PID" || true
  TRACER_PID=""
}
# calls_by_name FILE: "syscall calls" lines of an strace -c summary.
calls_by_name() { awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$1"; }

declare -A SPR=()
if [ $RUN_SYSCALLS = 1 ]; then
  log "== System calls per request: strace -c, $SC_SMALL and $SC_LARGE requests"
  for name in "${NAMES[@]}"; do
    server_args "$name"
    start_server "$TMP/$name.log" "$SERVER" "${ARGS[@]}" --port 0
    strace_calls "$name" "$SERVER_PORT" "$SERVER_PID" "$SC_SMALL"
    strace_calls "$name" "$SERVER_PORT" "$SERVER_PID" "$SC_LARGE"
    stop_server
    # Per request and per system call: the difference of the two loads.
    join -a 1 -a 2 -e 0 -o 0,1.2,2.2 <(calls_by_name "$TMP/sc.$name.$SC_SMALL" | sort) \
      <(calls_by_name "$TMP/sc.$name.$SC_LARGE" | sort) |
      awk -v d=$((SC_LARGE - SC_SMALL)) '{ v = ($3 - $2) / d; if (v >= 0.005) printf "%s %.2f\n", $1, v }' |
      sort -k2,2gr >"$TMP/$name.syscalls"
    SPR[$name]=$(awk '{ t += $2 } END { printf "%.2f", t }' "$TMP/$name.syscalls")
    log "   $name: ${SPR[$name]}"
  done
  check_spill_dir
fi

# ---- 3. Memory per request in flight -----------------------------------------------
INFLIGHT_SERVERS=(count handler-stream raw-stream)
declare -A INFLIGHT=()
if [ $RUN_INFLIGHT = 1 ]; then
  want_fds=$((INFLIGHT_CONNS + 1024))
  if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
    ulimit -n "$want_fds" 2>/dev/null || { ulimit -Hn "$want_fds" && ulimit -n "$want_fds"; } ||
      die "cannot raise ulimit -n to $want_fds"
  fi
  log "== Memory per request in flight: $INFLIGHT_CONNS POSTs of 2000 bytes, 1000 sent"
  for name in "${INFLIGHT_SERVERS[@]}"; do
    start_server "$TMP/$name.log" "$SERVER" --mode "$name" --port 0
    run_client timeout 300 "$IDLE" -b 2000:1000 "$SERVER_PORT" "$SERVER_PID" "$INFLIGHT_CONNS" \
      >"$TMP/inflight.$name" 2>&1 ||
      { cat "$TMP/inflight.$name" >&2; die "idle_conns -b against $name failed"; }
    stop_server
    INFLIGHT[$name]=$(sed -n 's/.*anon_per_conn=\([0-9-]*\).*/\1/p' "$TMP/inflight.$name")
    [ -n "${INFLIGHT[$name]}" ] || die "cannot parse idle_conns output for $name"
    sed 's/^idle_conns:/  '"$name"':/' "$TMP/inflight.$name" | grep -v 'count=' >&2
  done
fi

# ---- Results ----------------------------------------------------------------------
echo "csgi handler benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
  "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "POST body: ${#JSON} bytes of JSON; every answer 200 \"Hello World\""
if [ $RUN_CALLGRIND = 1 ] || [ $RUN_SYSCALLS = 1 ]; then
  echo
  [ $RUN_CALLGRIND = 0 ] ||
    echo "Instructions per request: callgrind Ir, (run of $CG_LARGE - run of $CG_SMALL) / $((CG_LARGE - CG_SMALL))"
  [ $RUN_SYSCALLS = 0 ] ||
    echo "System calls per request: strace -c, (load of $SC_LARGE - load of $SC_SMALL) / $((SC_LARGE - SC_SMALL))"
  printf '  %-16s %8s %10s %8s\n' configuration Ir "% raw-get" syscalls
  base=${IPR[raw-get]:-}
  for name in "${NAMES[@]}"; do
    ir=${IPR[$name]:--} share=-
    [ -n "$base" ] && [ "$ir" != - ] && share=$(pct "$ir" "$base")
    printf '  %-16s %8s %10s %8s\n' "$name" "$ir" "$share" "${SPR[$name]:--}"
  done
  echo
  echo "Differences: Ir, in % of raw-get, system calls"
  for pair in "handler-get raw-get" "handler-post raw-post" "handler-stream raw-stream" \
    "handler-spill raw-post" "handler-spill handler-post"; do
    read -r a b <<<"$pair"
    ir=- share=- calls=-
    if [ $RUN_CALLGRIND = 1 ]; then
      ir=$(printf '%+d' $((IPR[$a] - IPR[$b])))
      share=$(awk -v d="$ir" -v b="$base" 'BEGIN { printf "%+.1f%%", 100 * d / b }')
    fi
    if [ $RUN_SYSCALLS = 1 ]; then
      calls=$(awk -v a="${SPR[$a]}" -v b="${SPR[$b]}" 'BEGIN { printf "%+.2f", a - b }')
    fi
    printf '  %-28s %8s %10s %8s\n' "$a - $b" "$ir" "$share" "$calls"
  done
fi
if [ $RUN_SYSCALLS = 1 ]; then
  echo
  echo "System calls per request, by call (0.005 or more)"
  for name in "${NAMES[@]}"; do
    printf '  %-16s %s\n' "$name" "$(awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }' \
      "$TMP/$name.syscalls")"
  done
fi
if [ $RUN_INFLIGHT = 1 ]; then
  echo
  echo "Memory per request in flight (server RssAnon growth / $INFLIGHT_CONNS; POST with" \
    "Content-Length: 2000, 1000 bytes sent)"
  raw=${INFLIGHT[raw-stream]}
  printf '  %-36s %8s %8s\n' "" bytes "- raw"
  printf '  %-36s %8s %8s\n' "raw application (csgi_input_on_ready)" "$raw" ""
  printf '  %-36s %8s %+8d\n' "gathering handler (in memory)" "${INFLIGHT[count]}" \
    $((INFLIGHT[count] - raw))
  printf '  %-36s %8s %+8d\n' "streaming handler" "${INFLIGHT[handler-stream]}" \
    $((INFLIGHT[handler-stream] - raw))
  echo "  (process memory only: the kernel's socket buffers are not in RSS)"
fi
