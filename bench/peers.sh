#!/usr/bin/env bash
# csgi beside nginx and h2o, the same "Hello World" answer from each, measured
# in one run with a load client that is not the bottleneck (issue 17):
#
#   csgi   examples/hello (the gateway and an application, one thread)
#   nginx  Debian's nginx, one process (master_process off), `return 200`
#   h2o    Debian's h2o, one thread, the answer as a static file
#
#   bench/peers.sh [keepalive] [pipelined] [close] [instructions] [idle]
#                  [large] [idlegrowth] [workers] [capped]   (default: all)
#
# 1. keepalive  h2load --h1 -t1 -c64 (one request in flight per connection)
# 2. pipelined  h2load --h1 -t1 -c8 -m16 (16 in flight per connection)
# 3. close      wrk -t1 -c32 with "Connection: close": a connection per
#               request
# 4. instructions  user-space instructions per keep-alive request, csgi and
#               nginx under callgrind (h2o is not measured): two runs of
#               CG_SMALL and CG_LARGE requests (bench/fixed_load, 32
#               connections), the difference divided by the difference in
#               requests, with 1, 10 and 50 request header fields (Host and
#               browser-like X-Header-N lines): what a request costs and
#               how it grows with its headers; and the talk's pipeline
#               (csgi-serve, examples/auth_filter/wsgi_webob_mid.ini: the auth
#               filter loaded from its shared object in front of its hello)
#               against hello, both with the filter's token header
# 5. idle       anonymous memory a server holds per idle keep-alive
#               connection, IDLE_CONNS connections after one request each
#               (bench/idle_conns), csgi and nginx (h2o closes idle
#               connections after 10 s, sooner than the measurement takes)
# 6. large      a 1 MiB answer (h2load -c8, LARGE_REQUESTS requests):
#               bench/large_body's file body (sendfile) and iterator body
#               (64 KiB pieces), against nginx and h2o serving the same file
# 7. idlegrowth instructions per keep-alive request beside IDLE_COUNTS idle
#               keep-alive connections, csgi and nginx under callgrind: for
#               each count, bench/idle_conns -w opens the idle connections
#               (one request each) and holds them while bench/fixed_load
#               sends CG_SMALL, then CG_LARGE requests as in instructions;
#               the difference per request, and its growth per idle
#               connection from the first count to the last. csgi here is
#               csgi-serve serving the talk's hello application alone
#               (wsgi_webob_mid:app_factory) from an INI whose server
#               section raises max_connections (examples/hello keeps the
#               default, 4096 a loop, and would close the oldest idle
#               connections); nginx's worker_connections is as high. Both
#               keep their keep-alive timeout (75 s): idle_conns checks that
#               none of its connections was closed before the end of a run
#               and the script stops if one was. The idle connections'
#               own work (opening them, and closing them: the server is
#               stopped once it holds none) is the same in both runs and
#               cancels, but how the events batch varies from run to run:
#               with small CG_SMALL and CG_LARGE, a growth of a few
#               hundredths of an instruction per idle connection is noise
# 8. workers    csgi-serve --workers 1 and --workers 2 serving the talk's
#               pipeline (examples/auth_filter/wsgi_webob_mid.ini), the
#               master and its workers pinned to core 0: the keepalive load
#               with the filter's token; server CPU time per request counts
#               the master, its living workers and those it reaped; the
#               number of living workers is checked after each run. nginx
#               with a master and 1 or 2 worker processes, pinned the same
#               way, gives the same ratio for a server that is not csgi:
#               two busy processes on one core pay the scheduler's
#               switches and lose batching, whoever wrote them
#               (the goal's ratio is printed with a distribution-free
#               95% confidence interval of its median: the rounds spread).
#               A control, kept-workers2: 2 workers whose connections the
#               server never closes (max_keepalive_requests at its
#               largest), so h2load's first burst, which usually lands
#               whole in one worker, stays there: the same work as 1
#               worker, with the second process idle (the share row says
#               when it did not). Its ratio to 1 worker is what the
#               measurement gives two equal servers; the goal's ratio over
#               it is what splitting the connections costs. Each run of a
#               2-worker server also gives the busiest worker's share of the
#               workers' CPU time (1.00: one did all the work; 0.50: an even
#               split), and the table its median
# 9. capped     the keepalive and close loads again (keepalive-capped,
#               close-capped), each server held to CAP % of core 0 by a
#               cgroup's CPU quota (cgroup v2's cpu.max or v1's CFS quota,
#               10 ms periods), its worker processes too: the server is
#               then the limit, not the client, and req/s says how much
#               each server does with the same CPU. With the workers part
#               too, workers-capped runs it held the same way: uncapped,
#               csgi's one worker is faster than the load client and sleeps
#               between its batches, so 2 workers on the one core wake and
#               preempt each other at the client's pace; held to CAP %, the
#               server is the limit, which says whether the second worker
#               costs as much without that. Needs root and a cgroup cpu
#               controller; skipped, with a line saying so, without them
#
# Each server is pinned to core 0 and the client to core 1; the servers take
# turns, ROUNDS runs of REQUESTS requests (close: DURATION seconds) each,
# after a warm-up, in an order that reverses every round. Per run: requests
# per second, and the server's CPU time per request (utime + stime from
# /proc, before and after). The table gives each server's median, and each
# ratio is the median of the ratios of the same round, whose runs follow
# each other within seconds: on a shared machine whose speed drifts from
# minute to minute, a round's runs share its speed where medians taken
# apart would not. When a server's runs of one load differ by more than
# SPREAD (fastest / slowest req/s), rounds are added, up to MAX_ROUNDS, and
# the table says how far they spread. The workers loads run WORKERS_ROUNDS
# rounds whatever the spread: their goal is a paired ratio a few
# hundredths from its bound, a round's ratio on this machine lies anywhere
# from 0.8 to 1.4, and the median of fifteen strays about a quarter less
# from the true one than the median of nine. The load client's CPU time is
# taken too: when it used CLIENT_BOUND % of its core or more in the runs of
# both servers of a req/s goal, the client was the limit and the goal gets no
# verdict (keep-alive on loopback costs the client's kernel about what it
# costs the server's, so a fast server meets this limit); the server CPU
# rows then compare the servers. Then,
# for the pipelined load, the system calls that write (writev, write,
# sendmsg, sendfile) per request, counted by strace -c over a separate run
# of STRACE_REQUESTS requests. nginx and h2o keep their default limit of
# requests per keep-alive connection (nginx 1000, as csgi; h2o none): h2load
# reconnects, and counts the pipelined requests a close cut as failed; the
# table gives the answers that succeeded.
#
# What it shows: each server's cost per request on one core, and how many
# writes it makes for requests that arrive together. What it cannot show:
# more than one core per server, latency, or anything of TLS. CPU times
# follow the machine (a shared VM): only the ratios of one run mean much.
#
# The script installs what it lacks from Debian (nginx, h2o, nghttp2-client
# for h2load, wrk, strace) when run as root. Environment (defaults):
#   ROUNDS [5]  MAX_ROUNDS [9]  SPREAD [1.25]  CLIENT_BOUND [90]
#   WORKERS_ROUNDS [15]
#   REQUESTS [200000]  DURATION [4]  CAP [40]
#   STRACE_REQUESTS [100000]
#   CG_SMALL [2000]  CG_LARGE [12000]  IDLE_CONNS [3000]  LARGE_REQUESTS [20000]
#   IDLE_COUNTS ["10 1000 10000"] (each at least 4)  BUILD_DIR [build-bench]
# ulimit -n is raised for the most idle connections asked for (IDLE_CONNS or
# IDLE_COUNTS) and 1024 more, when the hard limit allows (root can raise it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
ROUNDS=${ROUNDS:-5}
MAX_ROUNDS=${MAX_ROUNDS:-9}
WORKERS_ROUNDS=${WORKERS_ROUNDS:-15}
SPREAD=${SPREAD:-1.25}
CLIENT_BOUND=${CLIENT_BOUND:-90}
REQUESTS=${REQUESTS:-200000}
DURATION=${DURATION:-4}
STRACE_REQUESTS=${STRACE_REQUESTS:-100000}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-12000}
IDLE_CONNS=${IDLE_CONNS:-3000}
LARGE_REQUESTS=${LARGE_REQUESTS:-20000}
IDLE_COUNTS=${IDLE_COUNTS:-10 1000 10000}
CAP=${CAP:-40}
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

SERVERS=(csgi nginx h2o)
# Goals (issue 17), as ratios csgi / peer.
GOAL_PIPELINED=2.0 # pipelined req/s >= 2 x nginx's
GOAL_AHEAD=1.0     # keep-alive req/s ahead of nginx and h2o; connection per request at or above
GOAL_IR=0.5        # instructions per keep-alive request <= 0.5 x nginx's
GOAL_GROWTH=1.0    # instructions per added header, and per idle connection, no steeper than nginx's
GOAL_TALK=1.05     # the talk's pipeline within 5% of hello's instructions
GOAL_WORKERS=1.10  # CPU time per request of 2 workers <= 1.10 x 1 worker's
FLAT=0.01          # growth per idle connection below this (instructions/request): flat
TOKEN_HEADER="X-Auth-Token: open-sesame"
TALK_BODY="Hello, Secret World of WebOb !"

RUN_KEEPALIVE=0 RUN_PIPELINED=0 RUN_CLOSE=0 RUN_IR=0 RUN_IDLE=0 RUN_LARGE=0 RUN_IDLEGROWTH=0
RUN_WORKERS=0 RUN_CAPPED=0
if [ $# -eq 0 ]; then
  RUN_KEEPALIVE=1 RUN_PIPELINED=1 RUN_CLOSE=1 RUN_IR=1 RUN_IDLE=1 RUN_LARGE=1 RUN_IDLEGROWTH=1
  RUN_WORKERS=1 RUN_CAPPED=1
fi
for arg in "$@"; do
  case $arg in
    keepalive) RUN_KEEPALIVE=1 ;;
    pipelined) RUN_PIPELINED=1 ;;
    close) RUN_CLOSE=1 ;;
    instructions) RUN_IR=1 ;;
    idle) RUN_IDLE=1 ;;
    large) RUN_LARGE=1 ;;
    idlegrowth) RUN_IDLEGROWTH=1 ;;
    workers) RUN_WORKERS=1 ;;
    capped) RUN_CAPPED=1 ;;
    -h | --help) help_text; exit 0 ;;
    *) die "unknown part '$arg' (keepalive, pipelined, close, instructions, idle, large," \
      "idlegrowth, workers, capped)" ;;
  esac
done
# The idle counts, in increasing order; the most idle connections a server
# holds, and the connections it is allowed (and the descriptors each side).
# shellcheck disable=SC2086 # a list of numbers
read -r -a IDLE_COUNT_LIST <<<"$(printf '%s\n' $IDLE_COUNTS | sort -n -u | tr '\n' ' ')"
for count in "${IDLE_COUNT_LIST[@]}"; do
  if ! [[ $count =~ ^[0-9]+$ ]] || [ "$count" -lt 4 ]; then
    die "IDLE_COUNTS: '$count' is not a number >= 4"
  fi
done
[ ${#IDLE_COUNT_LIST[@]} -ge 2 ] || die "IDLE_COUNTS: give two counts at least"
[[ $WORKERS_ROUNDS =~ ^[1-9][0-9]*$ ]] || die "WORKERS_ROUNDS: '$WORKERS_ROUNDS' is not a number >= 1"
MAX_IDLE=$IDLE_CONNS
[ "${IDLE_COUNT_LIST[-1]}" -le "$MAX_IDLE" ] || MAX_IDLE=${IDLE_COUNT_LIST[-1]}
MAX_CONNECTIONS=$((MAX_IDLE + 1024))

# ---- Setup: the peers and the clients, from Debian --------------------------
need=()
for tool in nginx:nginx h2o:h2o h2load:nghttp2-client wrk:wrk strace:strace taskset:util-linux \
  valgrind:valgrind; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || die "missing: ${need[*]} (apt-get install -y ${need[*]})"
  log "== Installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(nproc)" -ge 2 ] || log "peers.sh: one core only: server and client share it"

bench_tmp csgi-peers
bench_build hello fixed_load idle_conns csgi-serve wsgi_webob_mid large_body
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$MAX_CONNECTIONS" ] &&
  ! ulimit -n "$MAX_CONNECTIONS" 2>/dev/null; then
  if ! { ulimit -Hn "$MAX_CONNECTIONS" && ulimit -n "$MAX_CONNECTIONS"; } 2>/dev/null; then
    log "peers.sh: ulimit -n stays $(ulimit -n), short of $MAX_CONNECTIONS"
  fi
fi

# ---- The capped loads' cgroup ----------------------------------------------------
# cap_setup: a cgroup that holds what is put in it to CAP % of one core, in
# 10 ms periods (cgroup v2's cpu.max, or v1's CFS quota); sets CAP_DIR.
# Fails on a machine without one (not root, no cpu controller).
CAP_DIR=""
cap_setup() {
  local quota=$((CAP * 100)) # microseconds of each 10,000
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
      echo +cpu >/sys/fs/cgroup/cgroup.subtree_control || return 1
    mkdir "/sys/fs/cgroup/csgi-peers-$$" || return 1
    CAP_DIR=/sys/fs/cgroup/csgi-peers-$$
    echo "$quota 10000" >"$CAP_DIR/cpu.max"
  elif [ -d /sys/fs/cgroup/cpu ]; then
    mkdir "/sys/fs/cgroup/cpu/csgi-peers-$$" || return 1
    CAP_DIR=/sys/fs/cgroup/cpu/csgi-peers-$$
    echo 10000 >"$CAP_DIR/cpu.cfs_period_us" && echo "$quota" >"$CAP_DIR/cpu.cfs_quota_us"
  else
    return 1
  fi
}
# cap_server: the started server's processes (a master's workers too) into
# the cgroup; what they fork later follows them.
cap_server() {
  local pid
  for pid in $SERVER_PID $(cat "/proc/$SERVER_PID/task/"*/children); do
    echo "$pid" >"$CAP_DIR/cgroup.procs"
  done
}
# cap_remove: the cgroup goes when the script ends (its servers stopped).
# shellcheck disable=SC2317 # called by the trap
cap_remove() {
  [ -z "$CAP_DIR" ] || rmdir "$CAP_DIR" 2>/dev/null || true
}
if [ $RUN_CAPPED = 1 ]; then
  if ! [[ $CAP =~ ^[0-9]+$ ]] || [ "$CAP" -lt 1 ] || [ "$CAP" -gt 100 ]; then
    die "CAP: '$CAP' is not a percentage from 1 to 100"
  fi
  trap 'bench_cleanup; cap_remove' EXIT
  if ! cap_setup 2>/dev/null; then
    log "peers.sh: no cgroup CPU quota here (root and a cpu controller are needed):" \
      "the capped loads are skipped"
    cap_remove
    RUN_CAPPED=0
  fi
fi

# free_port: a TCP port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$TMP/www" "$TMP/nginx"
printf 'Hello World' >"$TMP/www/index.html"
head -c $((1024 * 1024)) /dev/urandom >"$TMP/www/big.bin" # the large answer
chmod 755 "$TMP" "$TMP/www" # h2o started as root serves as nobody
# idlegrowth's csgi: the talk's hello application alone, allowed as many
# connections as nginx (csgi's default is 4096 a loop).
cat >"$TMP/idle.ini" <<EOF
[app:main]
paste.app_factory = wsgi_webob_mid:app_factory

[server:main]
use = egg:csgi#http
max_connections = $MAX_CONNECTIONS
EOF
# kept-workers2's: the talk's pipeline, its connections never closed by the
# server, so each stays in the worker that accepted it (h2load's burst of
# connections usually lands whole in one of the two: see the workers part).
{
  cat "$ROOT/examples/auth_filter/wsgi_webob_mid.ini"
  printf '\n[server:main]\nuse = egg:csgi#http\nmax_keepalive_requests = 4294967295\n'
} >"$TMP/kept.ini"
mkfifo "$TMP/hold.fifo" # idle_conns -w holds its connections until it reads EOF here

# body_of NAME: the answer of server NAME.
body_of() {
  case $1 in
    talk | csgi-serve | workers* | kept-workers*) echo "$TALK_BODY" ;;
    *) echo 'Hello World' ;;
  esac
}

# start NAME [WRAPPER...]: the server NAME pinned to core 0, run by WRAPPER
# (valgrind ...) when given; sets SERVER_PID, SERVER_PORT. talk: csgi-serve
# and the talk's pipeline; workersN: the same with N worker processes;
# kept-workersN: and no connection closed by the server (kept.ini);
# csgi-serve: the talk's hello application alone (idlegrowth).
start() {
  local name=$1
  shift
  local wrap=("$@")
  case $name in
    csgi)
      start_server "$TMP/csgi.log" taskset -c 0 "${wrap[@]}" "$BUILD_DIR/examples/hello" --port 0
      ;;
    csgi-file | csgi-iter)
      start_server "$TMP/large.log" taskset -c 0 "$BUILD_DIR/bench/large_body" "$TMP/www/big.bin"
      return 0
      ;;
    talk | workers* | kept-workers* | csgi-serve)
      local ini=$ROOT/examples/auth_filter/wsgi_webob_mid.ini args=()
      [ "$name" != csgi-serve ] || ini=$TMP/idle.ini
      [ "${name#kept-}" = "$name" ] || ini=$TMP/kept.ini
      [ "${name##*workers}" = "$name" ] || args=(--workers "${name##*workers}")
      start_server "$TMP/$name.log" taskset -c 0 "${wrap[@]}" "$BUILD_DIR/tools/csgi-serve" \
        --allow-root "${args[@]}" --listen 127.0.0.1:0 \
        --module-path "$BUILD_DIR/examples/auth_filter" "$ini"
      ;;
    nginx | nginx-workers*)
      # nginx alone serves in its one process; nginx-workersN has a master
      # and N worker processes sharing the listener
      local master=off processes=1
      [ "${name#nginx-workers}" = "$name" ] || master=on processes=${name#nginx-workers}
      SERVER_PORT=$(free_port)
      cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process $master;
worker_processes $processes;
error_log $TMP/nginx/error.log warn;
pid $TMP/nginx/nginx.pid;
events { worker_connections $MAX_CONNECTIONS; }
http {
    access_log off;
    sendfile on;    # as Debian's nginx.conf
    tcp_nopush on;
    client_body_temp_path $TMP/nginx;
    proxy_temp_path $TMP/nginx;
    fastcgi_temp_path $TMP/nginx;
    uwsgi_temp_path $TMP/nginx;
    scgi_temp_path $TMP/nginx;
    server {
        listen 127.0.0.1:$SERVER_PORT;
        location / { default_type text/html; return 200 "Hello World"; }
        location = /big.bin { root $TMP/www; }
    }
}
EOF
      taskset -c 0 "${wrap[@]}" nginx -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
      SERVER_PID=$!
      ;;
    h2o)
      SERVER_PORT=$(free_port)
      cat >"$TMP/h2o.conf" <<EOF
listen:
  host: 127.0.0.1
  port: $SERVER_PORT
num-threads: 1
hosts:
  default:
    paths:
      /:
        file.dir: $TMP/www
EOF
      taskset -c 0 "${wrap[@]}" h2o -c "$TMP/h2o.conf" >"$TMP/h2o.log" 2>&1 &
      SERVER_PID=$!
      ;;
  esac
  local i want
  want=$(body_of "$name")
  for ((i = 0; i < 600; i++)); do
    [ "$(curl -fsS -H "$TOKEN_HEADER" "http://127.0.0.1:$SERVER_PORT/" 2>/dev/null)" = "$want" ] &&
      return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$TMP/$name.log" >&2 2>/dev/null || true
  die "$name does not answer $want"
}

stop() { stop_server_by TERM; }

# h2load_run OUT ARGS...: h2load pinned to core 1 against the server, for
# URL_PATH (/ unless set); every answer must be a 2xx.
URL_PATH=/
h2load_run() {
  local out=$1
  shift
  run_client taskset -c 1 h2load --h1 -t1 "$@" "http://127.0.0.1:$SERVER_PORT$URL_PATH" >"$out" 2>&1 ||
    { cat "$out" >&2; die "h2load failed"; }
  awk '/^status codes:/ { other = $5 + $7 + $9 } END { exit other != 0 }' "$out" ||
    { cat "$out" >&2; die "h2load got answers other than 2xx"; }
}

# child_ticks PID: CPU time of the children shell PID has waited for, in
# clock ticks (cutime + cstime of /proc/PID/stat; bash names itself "bash",
# so the fields do not shift). PID: the caller's $BASHPID, read outside the
# command substitution (which is a shell of its own).
child_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat"; }

# measure KIND: one run against the started server; prints "REQ_PER_S
# US_CPU_PER_REQUEST CLIENT_PERCENT SHARE" (answers that succeeded; the load
# client's CPU time over the run's length, in % of its core; with workers,
# the busiest worker's share of the workers' CPU time, else "-").
measure() {
  local kind=$1 before after ok seconds out="$TMP/run.out" client_before client_after
  local me=$BASHPID workers_before="" share=-
  client_before=$(child_ticks "$me")
  before=$(tree_ticks "$SERVER_PID")
  [ "${kind%-capped}" != workers ] || workers_before=$(children_ticks "$SERVER_PID")
  case $kind in
    keepalive*) h2load_run "$out" -c64 -n "$REQUESTS" ;;
    workers*) h2load_run "$out" -c64 -n "$REQUESTS" -H "$TOKEN_HEADER" ;;
    pipelined) h2load_run "$out" -c8 -m16 -n "$REQUESTS" ;;
    large) h2load_run "$out" -c8 -n "$LARGE_REQUESTS" ;;
    close*)
      run_client taskset -c 1 wrk -t1 -c32 -d"${DURATION}s" -H 'Connection: close' \
        "http://127.0.0.1:$SERVER_PORT/" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
      ;;
  esac
  after=$(tree_ticks "$SERVER_PID")
  client_after=$(child_ticks "$me")
  [ "${kind%-capped}" != workers ] ||
    share=$(busiest_share "$workers_before" "$(children_ticks "$SERVER_PID")")
  if [ "${kind%-capped}" = close ]; then
    ok=$(awk '/requests in/ { print $1 }' "$out")
    seconds=$(awk '/requests in/ { s = $4; sub(/,$/, "", s); if (s ~ /ms$/) { sub(/ms$/, "", s); s /= 1000 } else sub(/s$/, "", s); print s }' "$out")
  else
    ok=$(awk '/^requests:/ { print $8 }' "$out")
    seconds=$(awk '/^finished in/ { s = $3; sub(/,$/, "", s); if (s ~ /ms$/) { sub(/ms$/, "", s); s /= 1000 } else sub(/s$/, "", s); print s }' "$out")
  fi
  awk -v ok="$ok" -v s="$seconds" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    -v c=$((client_after - client_before)) -v share="$share" \
    'BEGIN { printf "%.0f %.2f %.0f %s\n", ok / s, t / hz * 1e6 / ok, c / hz / s * 100, share }'
}

# writes_per_request: strace -c on the server over a pipelined run.
writes_per_request() {
  local out="$TMP/strace.out" calls ok
  strace -f -c -e trace=writev,write,sendmsg,sendfile -o "$TMP/strace.txt" -p "$SERVER_PID" \
    2>/dev/null &
  TRACER_PID=$!
  sleep 1
  h2load_run "$out" -c8 -m16 -n "$STRACE_REQUESTS"
  kill -INT "$TRACER_PID" 2>/dev/null || true
  wait "$TRACER_PID" 2>/dev/null || true
  TRACER_PID=""
  calls=$(awk '$NF ~ /^(writev|write|sendmsg|sendfile)$/ { c += $4 } END { print c + 0 }' "$TMP/strace.txt")
  ok=$(awk '/^requests:/ { print $8 }' "$out")
  awk -v c="$calls" -v ok="$ok" 'BEGIN { printf "%.3f\n", c / ok }'
}

kinds=()
[ $RUN_KEEPALIVE = 1 ] && kinds+=(keepalive)
[ $RUN_PIPELINED = 1 ] && kinds+=(pipelined)
[ $RUN_CLOSE = 1 ] && kinds+=(close)
[ $RUN_LARGE = 1 ] && kinds+=(large)
[ $RUN_WORKERS = 1 ] && kinds+=(workers)
[ $RUN_CAPPED = 1 ] && kinds+=(keepalive-capped close-capped)
[ $RUN_CAPPED = 1 ] && [ $RUN_WORKERS = 1 ] && kinds+=(workers-capped)
declare -A RPS CPU WPR
# servers_of KIND: the servers a load is measured on.
servers_of() {
  case $1 in
    large) echo csgi-file csgi-iter nginx h2o ;;
    workers | workers-capped) echo workers1 workers2 kept-workers2 nginx-workers1 nginx-workers2 ;;
    *) echo "${SERVERS[@]}" ;;
  esac
}
# check_workers NAME: server workersN (nginx-workersN) runs N living workers.
check_workers() {
  local living want=${1##*workers}
  living=$(wc -w <"/proc/$SERVER_PID/task/$SERVER_PID/children")
  [ "$living" = "$want" ] || die "$1 runs $living worker processes, not $want"
}
# path_of NAME KIND: what a server is asked for.
path_of() {
  case $2.$1 in
    large.csgi-file) echo /file ;;
    large.csgi-iter) echo /iter ;;
    large.*) echo /big.bin ;;
    *) echo / ;;
  esac
}
# spread LIST: the largest value of LIST over the smallest.
spread() {
  printf '%s\n' "$@" | awk '(NR == 1 || $1 > hi) { hi = $1 } (NR == 1 || $1 < lo) { lo = $1 }
    END { printf "%.2f\n", (lo > 0 ? hi / lo : 0) }'
}
# spread_above KIND: true when some server's req/s of KIND spread above SPREAD.
spread_above() {
  local name
  for name in $(servers_of "$1"); do
    # shellcheck disable=SC2086 # lists of numbers
    awk -v s="$(spread ${rps_runs[$name]})" -v l="$SPREAD" 'BEGIN { exit !(s > l) }' && return 0
  done
  return 1
}
# paired_stat WHAT A B: from two lists in round order, the median over the
# rounds of A's figure over B's (WHAT: ratio) or minus B's (diff), or with
# ci a confidence interval of the ratios' median, free of any assumption
# about how they spread: the k-th smallest and the k-th largest ratio, with
# k the largest (at least 1) for which n rounds leave fewer than k ratios
# below the true median with a chance of at most 2.5% (binomial, p = 1/2).
# About 95%: with 9 rounds, the 2nd to the 8th ratio (96%); with 5, the
# smallest to the largest (94%). Prints "LO to HI".
paired_stat() {
  awk -v what="$1" -v a="$2" -v b="$3" 'BEGIN {
      n = split(a, x, " "); split(b, y, " ")
      for (i = 1; i <= n; i++) r[i] = what == "diff" ? x[i] - y[i] : x[i] / y[i]
      for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j - 1] > r[j]; j--) {
        t = r[j]; r[j] = r[j - 1]; r[j - 1] = t }
      if (what == "ci") {
        k = 1; term = 0.5 ^ n; cum = term # cum: the chance of at most k - 1 below
        while (k < n / 2) {
          term = term * (n - k + 1) / k
          if (cum + term > 0.025) break
          cum += term; k++
        }
        printf "%.3f to %.3f\n", r[k], r[n + 1 - k]
        exit
      }
      printf what == "diff" ? "%.2f\n" : "%.3f\n", n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2 }'
}
paired() { paired_stat ratio "$1" "$2"; }
declare -A RPS_RUNS CPU_RUNS SPREADS ROUNDS_RUN CLIENT SHARE
for kind in "${kinds[@]}"; do
  rounds=$ROUNDS max_rounds=$MAX_ROUNDS
  if [ "${kind%-capped}" = workers ]; then
    rounds=$WORKERS_ROUNDS max_rounds=$WORKERS_ROUNDS
    log "== $kind: $rounds rounds"
  else
    log "== $kind: $rounds rounds (up to $max_rounds when runs spread above $SPREAD)"
  fi
  read -r -a order <<<"$(servers_of "$kind")"
  declare -A rps_runs=() cpu_runs=() client_runs=() share_runs=()
  for ((round = 1; round <= max_rounds; round++)); do
    ((round <= rounds)) || spread_above "$kind" || break
    for name in "${order[@]}"; do
      start "$name"
      [ "${kind%-capped}" = "$kind" ] || cap_server
      URL_PATH=$(path_of "$name" "$kind")
      measure "$kind" >/dev/null # warm-up
      [ "${kind%-capped}" != workers ] || check_workers "$name"
      read -r r c cl sh < <(measure "$kind")
      [ "${kind%-capped}" != workers ] || check_workers "$name"
      rps_runs[$name]="${rps_runs[$name]:-} $r"
      cpu_runs[$name]="${cpu_runs[$name]:-} $c"
      client_runs[$name]="${client_runs[$name]:-} $cl"
      line="   round $round $name: $r req/s, $c us CPU/request, client $cl% of its core"
      if [ "$sh" != - ]; then
        share_runs[$name]="${share_runs[$name]:-} $sh"
        line="$line, busiest worker $sh of the workers' CPU"
      fi
      log "$line"
      if [ "$kind" = pipelined ] && [ "$round" = 1 ]; then
        WPR[$name]=$(writes_per_request)
        log "   $name: ${WPR[$name]} writes per request"
      fi
      stop
    done
    mapfile -t order < <(printf "%s\n" "${order[@]}" | tac)
  done
  URL_PATH=/
  ROUNDS_RUN[$kind]=$(($(wc -w <<<"${rps_runs[${order[0]}]}")))
  for name in $(servers_of "$kind"); do
    # shellcheck disable=SC2086 # lists of numbers
    RPS[$kind.$name]=$(median ${rps_runs[$name]})
    # shellcheck disable=SC2086
    CPU[$kind.$name]=$(median ${cpu_runs[$name]})
    RPS_RUNS[$kind.$name]=${rps_runs[$name]}
    CPU_RUNS[$kind.$name]=${cpu_runs[$name]}
    # shellcheck disable=SC2086
    SPREADS[$kind.$name]=$(spread ${rps_runs[$name]})
    # shellcheck disable=SC2086
    CLIENT[$kind.$name]=$(median ${client_runs[$name]})
    # shellcheck disable=SC2086
    [ -z "${share_runs[$name]:-}" ] || SHARE[$kind.$name]=$(median ${share_runs[$name]})
  done
  log "   $kind: ${ROUNDS_RUN[$kind]} rounds; fastest/slowest run:" \
    "$(for name in $(servers_of "$kind"); do printf '%s %s ' "$name" "${SPREADS[$kind.$name]}"; done)"
done
# rps_ratio KIND A B, cpu_ratio KIND A B: paired over KIND's rounds.
rps_ratio() { paired "${RPS_RUNS[$1.$2]}" "${RPS_RUNS[$1.$3]}"; }
cpu_ratio() { paired "${CPU_RUNS[$1.$2]}" "${CPU_RUNS[$1.$3]}"; }
cpu_ratio_ci() { paired_stat ci "${CPU_RUNS[$1.$2]}" "${CPU_RUNS[$1.$3]}"; }
# cpu_added KIND A B: the median over KIND's rounds of A's CPU time per
# request minus B's, in microseconds.
cpu_added() { paired_stat diff "${CPU_RUNS[$1.$2]}" "${CPU_RUNS[$1.$3]}"; }

# ---- Instructions per request (callgrind) ------------------------------------------
HEADER_COUNTS=(1 10 50)
declare -A IR
# server_fds: the number of descriptors the server holds.
server_fds() { find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# hold_idle COUNT: bench/idle_conns -w opens COUNT idle keep-alive
# connections to the started server and holds them (HOLDER_PID) until
# release_idle, or until this script exits: it holds them while it can read
# its standard input, the FIFO HOLD_FD writes to.
hold_idle() {
  local i
  SERVER_FDS=$(server_fds) # before: release_idle waits for the server to be back to it
  : >"$TMP/hold.log"       # no "holding" line from an earlier run
  exec {HOLD_FD}<>"$TMP/hold.fifo" # read-write: opening it does not wait for the reader
  "$BUILD_DIR/bench/idle_conns" -w "$SERVER_PORT" "$SERVER_PID" "$1" <"$TMP/hold.fifo" \
    {HOLD_FD}>&- >"$TMP/hold.log" 2>&1 &
  HOLDER_PID=$!
  for ((i = 0; i < 6000; i++)); do
    grep -q '^idle_conns: holding' "$TMP/hold.log" && return 0
    kill -0 "$HOLDER_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$TMP/hold.log" >&2
  die "idle_conns did not hold $1 idle connections"
}

# release_idle: ends hold_idle's holder, which must find every connection
# still open, and waits (60 s at most) until the server has closed its ends:
# a server stopped while it still closes some would count a different share
# of that work in each run.
release_idle() {
  local status=0 i
  exec {HOLD_FD}>&-
  wait "$HOLDER_PID" || status=$?
  if [ "$status" != 0 ]; then
    cat "$TMP/hold.log" >&2
    die "the idle connections did not all stay open to the end of the run (ulimit -n" \
      "$(ulimit -n); keep-alive timeout 75 s: make CG_LARGE smaller?)"
  fi
  for ((i = 0; i < 600; i++)); do
    [ "$(server_fds)" -gt "$SERVER_FDS" ] || return 0
    sleep 0.1
  done
  log "peers.sh: the server still holds $(server_fds) descriptors, $SERVER_FDS before the idle" \
    "connections"
}

# cg_total NAME HEADERS REQUESTS [IDLE]: sets CG_TOTAL to the total Ir of
# NAME serving REQUESTS requests carrying HEADERS header fields (Host and
# HEADERS - 1 X-Header-N lines; HEADERS "token": Host and the auth filter's
# token), beside IDLE idle keep-alive connections (hold_idle; 0 or none:
# none).
cg_total() {
  local name=$1 headers=$2 requests=$3 idle=${4:-0} args=() i
  local out="$TMP/cg.$1.$2.$3.${4:-0}"
  if [ "$headers" = token ]; then
    args=(-H "$TOKEN_HEADER")
  else
    for ((i = 1; i < headers; i++)); do
      args+=(-H "X-Header-$i: a value as long as a browser's accept-language, en-GB,en;q=0.9")
    done
  fi
  start "$name" valgrind --tool=callgrind --callgrind-out-file="$out"
  [ "$idle" = 0 ] || hold_idle "$idle"
  run_client "$BUILD_DIR/bench/fixed_load" "${args[@]}" -b "$(body_of "$name")" "$SERVER_PORT" 32 \
    "$requests" 600 >"$TMP/load.log" 2>&1 || { cat "$TMP/load.log" >&2; die "fixed_load failed"; }
  [ "$idle" = 0 ] || release_idle
  stop_server_by INT
  CG_TOTAL=$(callgrind_total "$out")
}

# cg_per_request NAME HEADERS [IDLE]: sets CG_PER_REQUEST to the
# instructions per request of cg_total's runs of CG_SMALL and CG_LARGE
# requests: their difference divided by the difference in requests.
cg_per_request() {
  local small
  cg_total "$1" "$2" "$CG_SMALL" "${3:-0}"
  small=$CG_TOTAL
  cg_total "$1" "$2" "$CG_LARGE" "${3:-0}"
  CG_PER_REQUEST=$(((CG_TOTAL - small) / (CG_LARGE - CG_SMALL)))
}
if [ $RUN_IR = 1 ]; then
  log "== instructions: callgrind, $CG_SMALL and $CG_LARGE requests"
  for headers in "${HEADER_COUNTS[@]}"; do
    for name in csgi nginx; do
      cg_per_request "$name" "$headers"
      IR[$name.$headers]=$CG_PER_REQUEST
      log "   $name, $headers headers: ${IR[$name.$headers]} instructions/request"
    done
  done
  for name in csgi talk; do
    cg_per_request "$name" token
    IR[$name.token]=$CG_PER_REQUEST
    log "   $name, with the token: ${IR[$name.token]} instructions/request"
  done
fi

# ---- Instructions per request beside idle connections ------------------------------
# The servers of idlegrowth: csgi-serve fills csgi's column (see the header).
IDLE_SERVERS=(csgi-serve nginx)
declare -A GROWTH
if [ $RUN_IDLEGROWTH = 1 ]; then
  log "== idlegrowth: callgrind, $CG_SMALL and $CG_LARGE requests beside ${IDLE_COUNT_LIST[*]}" \
    "idle connections (ulimit -n $(ulimit -n))"
  for idle in "${IDLE_COUNT_LIST[@]}"; do
    for name in "${IDLE_SERVERS[@]}"; do
      cg_per_request "$name" 1 "$idle"
      IR[$name.idle.$idle]=$CG_PER_REQUEST
      log "   $name beside $idle idle connections: $CG_PER_REQUEST instructions/request"
    done
  done
  first=${IDLE_COUNT_LIST[0]} last=${IDLE_COUNT_LIST[-1]}
  for name in "${IDLE_SERVERS[@]}"; do
    GROWTH[$name]=$(awk -v a="${IR[$name.idle.$last]}" -v b="${IR[$name.idle.$first]}" \
      -v n=$((last - first)) 'BEGIN { printf "%.4f", (a - b) / n }')
  done
fi

# ---- Idle keep-alive connections ------------------------------------------------------
declare -A IDLE
if [ $RUN_IDLE = 1 ]; then
  log "== idle: $IDLE_CONNS keep-alive connections per server"
  for name in csgi nginx; do
    start "$name"
    run_client "$BUILD_DIR/bench/idle_conns" "$SERVER_PORT" "$SERVER_PID" "$IDLE_CONNS" \
      >"$TMP/idle.log" 2>&1 || { cat "$TMP/idle.log" >&2; die "idle_conns against $name failed"; }
    stop
    IDLE[$name]=$(sed -n 's/.*anon_per_conn=\([0-9-]*\).*/\1/p' "$TMP/idle.log")
    [ -n "${IDLE[$name]}" ] || { cat "$TMP/idle.log" >&2; die "no figure from idle_conns"; }
    log "   $name: ${IDLE[$name]} bytes per idle connection"
  done
fi

# ---- The table -----------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
# client_bound KIND NAME: the load client used CLIENT_BOUND % or more of its
# core (median) in KIND's runs against NAME.
client_bound() { awk -v c="${CLIENT[$1.$2]}" -v l="$CLIENT_BOUND" 'BEGIN { exit !(c >= l) }'; }
verdict() { awk -v r="$1" -v g="$2" 'BEGIN { print (r >= g) ? "PASS" : "FAIL" }'; }
# flat GROWTH: true if GROWTH (instructions per request per idle connection)
# is below FLAT.
flat() { awk -v g="$1" -v f="$FLAT" 'BEGIN { exit !(g < f) }'; }
echo
echo "### csgi, nginx and h2o, $(date -u +%Y-%m-%d) ($(nproc) cores)"
echo
if [ ${#kinds[@]} -gt 0 ]; then
  echo "Timed loads: each server's median over the rounds; a ratio is the median of the"
  echo "ratios of the same round. Rounds, and fastest/slowest run (req/s) per server:"
  for kind in "${kinds[@]}"; do
    line="$kind: ${ROUNDS_RUN[$kind]} rounds;"
    for name in $(servers_of "$kind"); do line+=" $name ${SPREADS[$kind.$name]}"; done
    echo "- $line"
  done
  [ $RUN_CAPPED = 0 ] || echo "- *-capped: each server held to $CAP % of core 0 (a cgroup's CPU quota)"
  echo
fi
echo "| load | figure | csgi | nginx | h2o | csgi/nginx | csgi/h2o |"
echo "|---|---|---:|---:|---:|---:|---:|"
for kind in "${kinds[@]}"; do
  if [ "${kind%-capped}" = workers ]; then
    for workers in "1 worker" "2 workers"; do
      c=workers${workers%% *} n=nginx-workers${workers%% *}
      label="keep-alive, $workers (csgi: the talk's pipeline)"
      [ "$kind" = workers ] || label="keep-alive held to $CAP %, $workers (csgi: the talk's pipeline)"
      echo "| $label | req/s | ${RPS[$kind.$c]} | ${RPS[$kind.$n]} | - |" \
        "$(rps_ratio "$kind" "$c" "$n") | - |"
      echo "| $label | server CPU us/request | ${CPU[$kind.$c]} | ${CPU[$kind.$n]} | - |" \
        "$(cpu_ratio "$kind" "$c" "$n") | - |"
    done
    label="2 workers, every connection kept where it landed (csgi only)"
    [ "$kind" = workers ] || label="held to $CAP %, $label"
    echo "| $label | req/s | ${RPS[$kind.kept-workers2]} | - | - | - | - |"
    echo "| $label | server CPU us/request | ${CPU[$kind.kept-workers2]} | - | - | - | - |"
    # How the work split between the two workers: packed (1.00) or even (0.50).
    label="2 workers, the busiest one's share of the workers' CPU time (median)"
    [ "$kind" = workers ] || label="held to $CAP %, $label"
    echo "| $label | share | ${SHARE[$kind.workers2]:--} | ${SHARE[$kind.nginx-workers2]:--} | - | - | - |"
    label="the same, every connection kept where it landed (csgi only)"
    [ "$kind" = workers ] || label="held to $CAP %, $label"
    echo "| $label | share | ${SHARE[$kind.kept-workers2]:--} | - | - | - | - |"
    continue
  fi
  if [ "$kind" = large ]; then
    for csgi in csgi-file csgi-iter; do
      c=${RPS[$kind.$csgi]} n=${RPS[$kind.nginx]} h=${RPS[$kind.h2o]}
      echo "| 1 MiB, $csgi | req/s | $c | $n | $h | $(rps_ratio "$kind" "$csgi" nginx) |" \
        "$(rps_ratio "$kind" "$csgi" h2o) |"
      c=${CPU[$kind.$csgi]} n=${CPU[$kind.nginx]} h=${CPU[$kind.h2o]}
      echo "| 1 MiB, $csgi | server CPU us/request | $c | $n | $h |" \
        "$(cpu_ratio "$kind" "$csgi" nginx) | $(cpu_ratio "$kind" "$csgi" h2o) |"
    done
    continue
  fi
  c=${RPS[$kind.csgi]} n=${RPS[$kind.nginx]} h=${RPS[$kind.h2o]}
  echo "| $kind | req/s | $c | $n | $h | $(rps_ratio "$kind" csgi nginx) |" \
    "$(rps_ratio "$kind" csgi h2o) |"
  c=${CPU[$kind.csgi]} n=${CPU[$kind.nginx]} h=${CPU[$kind.h2o]}
  echo "| $kind | server CPU us/request | $c | $n | $h | $(cpu_ratio "$kind" csgi nginx) |" \
    "$(cpu_ratio "$kind" csgi h2o) |"
  c=${CLIENT[$kind.csgi]} n=${CLIENT[$kind.nginx]} h=${CLIENT[$kind.h2o]}
  echo "| $kind | load client CPU, % of its core | $c | $n | $h | - | - |"
  if [ "$kind" = pipelined ]; then
    c=${WPR[csgi]} n=${WPR[nginx]} h=${WPR[h2o]}
    echo "| $kind | writes/request | $c | $n | $h | $(ratio "$c" "$n") | $(ratio "$c" "$h") |"
  fi
done
if [ $RUN_IDLE = 1 ]; then
  c=${IDLE[csgi]} n=${IDLE[nginx]}
  echo "| idle, $IDLE_CONNS connections | bytes/connection | $c | $n | - | $(ratio "$c" "$n") | - |"
fi
if [ $RUN_IR = 1 ]; then
  for headers in "${HEADER_COUNTS[@]}"; do
    c=${IR[csgi.$headers]} n=${IR[nginx.$headers]}
    echo "| keep-alive, $headers headers | instructions/request | $c | $n | - | $(ratio "$c" "$n") | - |"
  done
  echo "| the talk's pipeline (csgi-serve, auth.so) | instructions/request | ${IR[talk.token]} | - | - | - | - |"
  echo "| hello, the same request | instructions/request | ${IR[csgi.token]} | - | - | - | - |"
fi
if [ $RUN_IDLEGROWTH = 1 ]; then
  for idle in "${IDLE_COUNT_LIST[@]}"; do
    c=${IR[csgi-serve.idle.$idle]} n=${IR[nginx.idle.$idle]}
    echo "| keep-alive beside $idle idle (csgi-serve) | instructions/request | $c | $n | - |" \
      "$(ratio "$c" "$n") | - |"
  done
fi
echo
echo "| goal | ratio | target | result |"
echo "|---|---:|---:|---|"
for kind in "${kinds[@]}"; do
  case $kind in
    large) continue ;; # reported, no target
    workers | workers-capped)
      # workers: csgi faster than its load client (the client's pace sets
      # how often each worker sleeps); workers-capped: the server is the
      # limit.
      how="client-bound" r=$(cpu_ratio "$kind" workers2 workers1)
      [ "$kind" = workers ] || how="held to $CAP % of a core"
      echo "| CPU/request, csgi-serve 2 workers / 1 worker, $how | $r" \
        "($(cpu_ratio_ci "$kind" workers2 workers1)) | <= $GOAL_WORKERS | $(verdict "$GOAL_WORKERS" "$r") |"
      # The same two processes on one core, for nginx: what the machine's
      # scheduler costs a server that is not csgi (no target).
      r=$(cpu_ratio "$kind" nginx-workers2 nginx-workers1)
      echo "| CPU/request, nginx 2 workers / 1 worker, $how (reference) | $r" \
        "($(cpu_ratio_ci "$kind" nginx-workers2 nginx-workers1)) | - | report only |"
      # The control: two workers, one of which serves every connection
      # (kept-workers2). Its ratio is what the measurement itself gives
      # two servers that do the same work, and what two processes cost
      # without the split of connections between them.
      r=$(cpu_ratio "$kind" kept-workers2 workers1)
      echo "| CPU/request, csgi-serve 2 workers with connections kept / 1 worker, $how (control) | $r" \
        "($(cpu_ratio_ci "$kind" kept-workers2 workers1)) | - | report only |"
      # The same in microseconds: what the second worker adds to a request.
      # csgi's single worker costs less than nginx's, so an equal cost
      # added is a larger ratio.
      echo "| CPU added per request by the 2nd worker, $how, csgi; nginx" \
        "| $(cpu_added "$kind" workers2 workers1) us; $(cpu_added "$kind" nginx-workers2 nginx-workers1) us" \
        "| - | report only |"
      continue
      ;;
    pipelined)
      r=$(rps_ratio "$kind" csgi nginx)
      echo "| pipelined req/s, csgi/nginx | $r | >= $GOAL_PIPELINED | $(verdict "$r" "$GOAL_PIPELINED") |"
      ;;
    *)
      # Against a load client at the end of its core in both servers'
      # runs, req/s shows the client's limit, not which server is ahead:
      # no verdict (the CPU rows below compare the servers).
      for peer in nginx h2o; do
        r=$(rps_ratio "$kind" csgi "$peer")
        if client_bound "$kind" csgi && client_bound "$kind" "$peer"; then
          v="none: client-bound (${CLIENT[$kind.csgi]}% and ${CLIENT[$kind.$peer]}% of its core)"
        else
          v=$(verdict "$r" "$GOAL_AHEAD")
        fi
        echo "| $kind req/s, csgi/$peer | $r | >= $GOAL_AHEAD | $v |"
      done
      ;;
  esac
  # The server's own cost, which a client at its limit does not hide.
  case $kind in
    keepalive | close)
      for peer in nginx h2o; do
        r=$(cpu_ratio "$kind" "$peer" csgi)
        echo "| $kind CPU/request, $peer/csgi | $r | >= $GOAL_AHEAD | $(verdict "$r" "$GOAL_AHEAD") |"
      done
      ;;
  esac
done
if [ $RUN_IDLE = 1 ]; then
  r=$(ratio "${IDLE[csgi]}" "${IDLE[nginx]}")
  echo "| idle bytes/connection, csgi/nginx | $r | <= 1.0 | $(verdict 1.0 "$r") |"
fi
if [ $RUN_IR = 1 ]; then
  r=$(ratio "${IR[csgi.1]}" "${IR[nginx.1]}")
  echo "| instructions/request, csgi/nginx | $r | <= $GOAL_IR | $(verdict "$GOAL_IR" "$r") |"
  last=${HEADER_COUNTS[-1]}
  c=$(awk -v a="${IR[csgi.$last]}" -v b="${IR[csgi.1]}" -v n="$last" 'BEGIN { printf "%.0f", (a - b) / (n - 1) }')
  n=$(awk -v a="${IR[nginx.$last]}" -v b="${IR[nginx.1]}" -v n="$last" 'BEGIN { printf "%.0f", (a - b) / (n - 1) }')
  r=$(ratio "$n" "$c")
  echo "| instructions per added header, nginx/csgi ($n / $c) | $r | >= $GOAL_GROWTH | $(verdict "$r" "$GOAL_GROWTH") |"
  r=$(ratio "${IR[talk.token]}" "${IR[csgi.token]}")
  echo "| the talk's pipeline / hello, instructions | $r | <= $GOAL_TALK | $(verdict "$GOAL_TALK" "$r") |"
fi
if [ $RUN_IDLEGROWTH = 1 ]; then
  # Growth below FLAT (or a fall) is no growth, and a ratio with it
  # meaningless: csgi flat passes, csgi growing beside nginx flat fails.
  c=${GROWTH[csgi-serve]} n=${GROWTH[nginx]}
  label="instructions per request per idle connection, nginx/csgi ($n / $c;"
  label+=" ${IDLE_COUNT_LIST[0]} to ${IDLE_COUNT_LIST[-1]} idle)"
  if flat "$c" && flat "$n"; then
    r=flat v=PASS
  elif flat "$c"; then
    r="csgi flat" v=PASS
  elif flat "$n"; then
    r="nginx flat" v=FAIL
  else
    r=$(ratio "$n" "$c") v=$(verdict "$r" "$GOAL_GROWTH")
  fi
  echo "| $label | $r | >= $GOAL_GROWTH | $v |"
fi
