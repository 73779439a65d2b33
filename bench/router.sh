#!/usr/bin/env bash
# What the router costs a request: instructions per request (callgrind) of
#   hello     examples/hello
#   baseline  router_hello --baseline: hello after reading REQUEST_METHOD and
#             PATH_INFO with csgi_environ_get() (what any routing app pays)
#   router    bench/router_hello: hello behind a router of 100 routes, the
#             request matching the last route added
# all asked for the same path, so that they parse the same bytes: router -
# baseline is the router's own cost (matching, its environ key, the call).
#
#   bench/router.sh
#
# As bench/run.sh's callgrind part: two runs of different length under
# callgrind, the difference in Ir divided by the difference in requests
# (start-up and shut-down cancel). Built with run.sh's build-bench setup.
# Environment (defaults in brackets):
#   CG_SMALL [2000] CG_LARGE [22000]   requests of the two callgrind runs
#   CG_CONNECTIONS [32]                connections of the callgrind runs
#   BUILD_DIR [build-bench]
# Everything listens on 127.0.0.1 only; the servers started here are stopped
# on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-22000}
CG_CONNECTIONS=${CG_CONNECTIONS:-32}
# The path bench/router_hello.c's last route matches (BENCH_PATH there).
BENCH_PATH=/v2/4f2a9c01/servers/42/action

log() { printf '%s\n' "$*" >&2; }
die() { log "router.sh: $*"; exit 1; }

for tool in cmake valgrind; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install -y $tool)"
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/csgi-router-bench.XXXXXX")
SERVER_PID=""
# shellcheck disable=SC2317 # called by the trap
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" \
  -DCSGI_BUILD_BENCH=ON -DCSGI_BUILD_TESTS=OFF -DCSGI_BUILD_EXAMPLES=ON \
  -DCSGI_BUILD_FUZZERS=OFF -DCSGI_SANITIZE=OFF >"$TMP/cmake.log" 2>&1 ||
  { cat "$TMP/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD_DIR" -j 2 --target hello router_hello fixed_load >"$TMP/build.log" 2>&1 ||
  { cat "$TMP/build.log" >&2; die "build failed"; }
declare -A BIN=([hello]=$BUILD_DIR/examples/hello [baseline]=$BUILD_DIR/bench/router_hello
  [router]=$BUILD_DIR/bench/router_hello)
declare -A ARGS=([hello]="" [baseline]=--baseline [router]="")
FIXED_LOAD=$BUILD_DIR/bench/fixed_load

# callgrind_ir NAME REQUESTS: prints the total Ir of server NAME serving
# REQUESTS requests for BENCH_PATH under callgrind.
callgrind_ir() {
  local name=$1 requests=$2 out=$TMP/cg.$1.$2 port="" i
  # shellcheck disable=SC2086 # ARGS: no word or one
  valgrind --tool=callgrind --callgrind-out-file="$out" "${BIN[$name]}" ${ARGS[$name]} --port 0 \
    >"$TMP/$name.log" 2>&1 &
  SERVER_PID=$!
  for ((i = 0; i < 600 && ${#port} == 0; i++)); do
    port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/$name.log")
    [ -n "$port" ] || sleep 0.1
  done
  [ -n "$port" ] || { cat "$TMP/$name.log" >&2; die "$name did not start"; }
  "$FIXED_LOAD" -p "$BENCH_PATH" -b "Hello World" "$port" "$CG_CONNECTIONS" "$requests" 600 \
    >"$TMP/load.log" 2>&1 || { cat "$TMP/load.log" >&2; die "fixed_load against $name failed"; }
  kill -INT "$SERVER_PID"
  wait "$SERVER_PID" || true
  SERVER_PID=""
  awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 } END { print (t != "") ? t : s }' "$out"
}

declare -A IPR
for name in hello baseline router; do
  small=$(callgrind_ir "$name" "$CG_SMALL")
  large=$(callgrind_ir "$name" "$CG_LARGE")
  IPR[$name]=$(((large - small) / (CG_LARGE - CG_SMALL)))
done
echo "Instructions per request (callgrind Ir, run of $CG_LARGE - run of $CG_SMALL, GET $BENCH_PATH):"
printf '  hello                 %6d\n' "${IPR[hello]}"
printf '  baseline              %6d\n' "${IPR[baseline]}"
printf '  router (100 routes)   %6d\n' "${IPR[router]}"
awk -v h="${IPR[hello]}" -v b="${IPR[baseline]}" -v r="${IPR[router]}" 'BEGIN {
  printf "  router - baseline     %6d (%.1f%% of hello): the router itself\n", r - b, (r - b) * 100 / h
  printf "  router - hello        %6d (%.1f%% of hello)\n", r - h, (r - h) * 100 / h }'
