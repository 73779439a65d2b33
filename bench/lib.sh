# shellcheck shell=bash
# Helpers for the benchmark scripts (sourced, not run): messages,
# a temporary directory and the clean-up on exit, the Release build, and
# starting and stopping one server at a time. The caller sets ROOT and
# BUILD_DIR first.

BENCH_NAME=$(basename "$0")
export LC_ALL=C # sort and join agree; awk prints decimal points

log() { printf '%s\n' "$*" >&2; }
die() {
  log "$BENCH_NAME: $*"
  exit 1
}

# help_text: the comment at the top of the calling script, for --help.
help_text() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; }

# The processes stopped on exit: the server, a client, a tracer attached to
# the server, and servers kept running beside the last one started
# (space-separated pids).
SERVER_PID="" CLIENT_PID="" TRACER_PID="" OTHER_SERVER_PIDS=""
# shellcheck disable=SC2317 # called by the trap
bench_cleanup() {
  local pid
  for pid in $CLIENT_PID $TRACER_PID $SERVER_PID $OTHER_SERVER_PIDS; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}

# bench_tmp PREFIX: sets TMP to a new directory; on exit it is removed and
# the processes above still running are stopped.
bench_tmp() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bench_build TARGET...: configures the Release build of bench/run.sh in
# BUILD_DIR and builds the targets.
bench_build() {
  log "== Building a Release build (-O2) in $BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" \
    -DCSGI_BUILD_BENCH=ON -DCSGI_BUILD_TESTS=OFF -DCSGI_BUILD_EXAMPLES=ON \
    -DCSGI_BUILD_FUZZERS=OFF -DCSGI_SANITIZE=OFF >"$TMP/cmake.log" 2>&1 ||
    { cat "$TMP/cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$BUILD_DIR" -j 2 --target "$@" >"$TMP/build.log" 2>&1 ||
    { cat "$TMP/build.log" >&2; die "build failed"; }
}

# start_server LOG COMMAND...: runs COMMAND in the background with its output
# in LOG, waits (60 s at most) for its "serving on http://127.0.0.1:PORT/"
# line and sets SERVER_PID and SERVER_PORT.
start_server() {
  local out=$1 i
  shift
  : >"$out" # no port from an earlier run
  "$@" >"$out" 2>&1 &
  SERVER_PID=$!
  SERVER_PORT=""
  for ((i = 0; i < 600; i++)); do
    SERVER_PORT=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out")
    [ -n "$SERVER_PORT" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out" >&2
  die "$* did not start"
}

# stop_server: SIGINT to SERVER_PID (callgrind then writes its profile),
# SIGKILL after 60 s.
stop_server() { stop_server_by INT; }

# stop_server_by SIGNAL: the same with another signal. A master of workers
# stops them gracefully on TERM (INT cuts them, and kills them after 2 s).
stop_server_by() {
  local i
  kill -"$1" "$SERVER_PID" 2>/dev/null || true
  # 60 s: a server under callgrind on a busy machine writes its profile first
  for ((i = 0; i < 600; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

# run_client COMMAND...: runs a client in the background, so that a signal
# to the script stops it at once (bash runs traps only between foreground
# commands), and returns its status.
run_client() {
  local status=0
  "$@" &
  CLIENT_PID=$!
  wait "$CLIENT_PID" || status=$?
  CLIENT_PID=""
  return "$status"
}

# median NUMBER...: the median of the numbers.
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# tree_ticks PID: user + system CPU time of process PID, of the children it
# has reaped, and of its living children, in clock ticks (getconf CLK_TCK):
# a master and its workers.
tree_ticks() {
  local pid pids
  pids="$1 $(cat /proc/"$1"/task/*/children 2>/dev/null)"
  # shellcheck disable=SC2086 # a list of pids
  for pid in $pids; do sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null; done |
    awk 'NR == 1 { t += $14 + $15 } { t += $12 + $13 } END { print t }'
}

# children_ticks PID: "CHILD TICKS" for each living child of process PID
# (a master's workers), user + system CPU time in clock ticks.
children_ticks() {
  local pid pids
  pids=$(cat /proc/"$1"/task/*/children 2>/dev/null)
  for pid in $pids; do
    sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk -v p="$pid" '{ print p, $12 + $13 }'
  done
}

# busiest_share BEFORE AFTER: from two children_ticks lists, the busiest
# child's share of the CPU time the children used in between (0.50: split
# evenly between two; 1.00: one did it all); "-" for fewer than two
# children or no time.
busiest_share() {
  printf '%s\n' "$1" -- "$2" | awk '$1 == "--" { after = 1; next }
    NF == 2 && !after { t0[$1] = $2; next }
    NF == 2 && ($1 in t0) { d = $2 - t0[$1]; sum += d; n++; if (d > max) max = d }
    END { if (n < 2 || sum <= 0) print "-"; else printf "%.2f\n", max / sum }'
}

# tree_switches PID: context switches (voluntary and not) of process PID
# and its living children.
tree_switches() {
  local pid
  for pid in $1 $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    cat "/proc/$pid/status" 2>/dev/null
  done | awk '/ctxt_switches:/ { t += $2 } END { print t }'
}

# core_busy_ticks CORE: clock ticks core CORE spent not idle since boot.
core_busy_ticks() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }

# callgrind_total PROFILE...: the sum of the profiles' total Ir.
callgrind_total() {
  local file total=0 ir
  for file in "$@"; do
    ir=$(awk '/^totals:/ { t = $2 } /^summary:/ { s = $2 } END { print (t != "") ? t : s }' "$file")
    [ -n "$ir" ] || die "no totals in the callgrind profile $file"
    total=$((total + ir))
  done
  echo "$total"
}
