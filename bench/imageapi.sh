#!/usr/bin/env bash
# GET /v2/images (20 images) with a cached token through examples/imageapi's
# whole image pipeline (cors, healthcheck, http_proxy_to_wsgi, request_id,
# auth_token, revocation, catch_errors, the urlmap, then the image API),
# beside the same request to Python's glance-api from Debian
# (python3-glance, installed by this script when it is missing) running
# glance-api-paste.ini's keystone pipeline, whose auth_token validates the
# same kind of token against csgi's identity service and then caches it.
#
# For each server: requests per second (wrk, server pinned to core 0, wrk
# to core 1), server CPU time per request, and instructions per request
# (two callgrind runs of different length; the difference in Ir over the
# difference in requests). Both serve from one process: csgi-serve with
# --workers 0, glance-api with workers = 0.
#
#   bench/imageapi.sh
#
# Environment (defaults in brackets): DURATION [10] seconds of wrk,
# CONNECTIONS [16], CG_SMALL [1000] CG_LARGE [6000] csgi's callgrind
# requests, PY_SMALL [20] PY_LARGE [100] glance's, BUILD_DIR [build-bench],
# GLANCE [auto]: "no" skips glance.
# Everything listens on 127.0.0.1 only; servers are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-16}
CG_SMALL=${CG_SMALL:-1000}
CG_LARGE=${CG_LARGE:-6000}
PY_SMALL=${PY_SMALL:-20}
PY_LARGE=${PY_LARGE:-100}
GLANCE=${GLANCE:-auto}
IMAGES=20
PYTHON=/usr/bin/python3 # Debian's, where python3-glance installs

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

case ${1:-} in
  -h | --help) help_text; exit 0 ;;
  "") ;;
  *) die "no arguments expected" ;;
esac
for tool in valgrind wrk curl taskset; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (scripts/setup.sh, apt-get install -y wrk)"
done
if [ "$GLANCE" != no ] && ! "$PYTHON" -c 'import glance.cmd.api' 2>/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    log "== Installing Debian's python3-glance"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-glance >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-glance >&2; } ||
      die "python3-glance could not be installed (GLANCE=no skips it)"
  else
    die "python3-glance is missing: run as root to install it, or GLANCE=no"
  fi
fi

bench_tmp csgi-imageapi-bench
bench_build csgi-serve imageapi fixed_load
SERVE=$BUILD_DIR/tools/csgi-serve
MODULES=$BUILD_DIR/examples/imageapi
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
STATE=$TMP/state
mkdir -p "$STATE"
head -c 48 /dev/urandom >"$STATE/signing.key"

# start_csgi [PREFIX...]: csgi-serve with the example's deploy file, in one process.
start_csgi() {
  start_server "$TMP/csgi.log" "$@" "$SERVE" --allow-root --module-path "$MODULES" \
    --listen 127.0.0.1:0 --workers 0 "$ROOT/examples/imageapi/imageapi-paste.ini" "state_dir=$STATE"
}

# token BASE: a project-scoped token for admin from csgi's identity service.
token() {
  curl -sf -D - -o /dev/null -H 'Content-Type: application/json' -d '{"auth": {"identity":
    {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"name": "Default"},
    "password": "admin-secret"}}}, "scope": {"project": {"name": "admin", "domain":
    {"name": "Default"}}}}}' "$1/identity/v3/auth/tokens" |
    tr -d '\r' | sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: //p'
}

# create_images URL TOKEN: IMAGES images with a little data each.
create_images() {
  local i id
  head -c 4096 /dev/urandom >"$TMP/data"
  for ((i = 0; i < IMAGES; i++)); do
    id=$(curl -sf -H "X-Auth-Token: $2" -H 'Content-Type: application/json' \
      -d "{\"name\": \"bench-$i\", \"disk_format\": \"raw\", \"container_format\": \"bare\"}" \
      "$1/v2/images" | "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    curl -sf -X PUT -H "X-Auth-Token: $2" -H 'Content-Type: application/octet-stream' \
      --data-binary "@$TMP/data" "$1/v2/images/$id/file" >/dev/null
  done
  count=$(curl -sf -H "X-Auth-Token: $2" "$1/v2/images" |
    "$PYTHON" -c 'import json, sys; print(len(json.load(sys.stdin)["images"]))')
  [ "$count" = "$IMAGES" ] || die "$1/v2/images lists $count images, not $IMAGES"
}

# throughput URL TOKEN: sets RPS and CPU_US (server CPU microseconds per
# request) from a wrk run against the running SERVER_PID.
throughput() {
  local before after requests
  before=$(tree_ticks "$SERVER_PID")
  run_client taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" -H "X-Auth-Token: $2" "$1" \
    >"$TMP/wrk.log" 2>&1 || { cat "$TMP/wrk.log" >&2; die "wrk against $1 failed"; }
  after=$(tree_ticks "$SERVER_PID")
  grep -q 'Non-2xx' "$TMP/wrk.log" && { cat "$TMP/wrk.log" >&2; die "$1 answered errors"; }
  RPS=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$TMP/wrk.log")
  requests=$(awk '/requests in/ { print $1 }' "$TMP/wrk.log")
  CPU_US=$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" \
    'BEGIN { printf "%d", t * 1000000 / hz / n }')
}

# --- csgi ---------------------------------------------------------------------------

log "== csgi: $IMAGES images, wrk ${DURATION}s"
start_csgi taskset -c 0
BASE=http://127.0.0.1:$SERVER_PORT
TOKEN=$(token "$BASE")
[ -n "$TOKEN" ] || { cat "$TMP/csgi.log" >&2; die "csgi's identity service gave no token"; }
create_images "$BASE/image" "$TOKEN"
throughput "$BASE/image/v2/images" "$TOKEN"
CSGI_RPS=$RPS CSGI_CPU=$CPU_US
stop_server_by TERM

# callgrind_ir REQUESTS PATH TOKEN COMMAND...: sets CG_IR to the total Ir of
# COMMAND serving REQUESTS requests for PATH.
callgrind_ir() {
  local requests=$1 path=$2 tok=$3 out=$TMP/cg.$RANDOM
  shift 3
  "$@" "$out"
  run_client "$FIXED_LOAD" -H "X-Auth-Token: $tok" -p "$path" "$SERVER_PORT" 4 "$requests" 1800 \
    >"$TMP/load.log" 2>&1 || { cat "$TMP/load.log" >&2; die "the load against $path failed"; }
  stop_server_by "$STOP_SIGNAL" # callgrind writes the profile as the server exits
  CG_IR=$(callgrind_total "$out")
}
STOP_SIGNAL=INT
csgi_under_callgrind() { start_csgi valgrind --tool=callgrind --callgrind-out-file="$1"; }

log "== csgi: callgrind, $CG_SMALL and $CG_LARGE requests"
callgrind_ir "$CG_SMALL" /image/v2/images "$TOKEN" csgi_under_callgrind
small=$CG_IR
callgrind_ir "$CG_LARGE" /image/v2/images "$TOKEN" csgi_under_callgrind
CSGI_IPR=$(((CG_IR - small) / (CG_LARGE - CG_SMALL)))

# --- glance ---------------------------------------------------------------------------

if [ "$GLANCE" != no ]; then
  # csgi's identity service stays up for glance's auth_token, on core 1.
  start_csgi taskset -c 1
  IDENTITY_PID=$SERVER_PID
  OTHER_SERVER_PIDS=$IDENTITY_PID
  BASE=http://127.0.0.1:$SERVER_PORT
  TOKEN=$(token "$BASE")
  G=$TMP/glance
  mkdir -p "$G/images"
  cp "$ROOT/tests/data/openstack/glance-api-paste.ini" "$G/"
  GPORT=$(("$SERVER_PORT" + 1))
  cat >"$G/glance-api.conf" <<EOF
[DEFAULT]
bind_host = 127.0.0.1
bind_port = $GPORT
workers = 0
enabled_backends = fs:file
log_file = $G/glance-api.log
[glance_store]
default_backend = fs
[fs]
filesystem_store_datadir = $G/images
[os_glance_staging_store]
filesystem_store_datadir = $G/staging
[os_glance_tasks_store]
filesystem_store_datadir = $G/tasks
[database]
connection = sqlite:///$G/glance.sqlite
[paste_deploy]
config_file = $G/glance-api-paste.ini
flavor = keystone
[keystone_authtoken]
www_authenticate_uri = $BASE/identity/v3
auth_url = $BASE/identity
auth_type = password
username = glance
password = glance-secret
project_name = service
user_domain_name = Default
project_domain_name = Default
EOF
  "$PYTHON" -m glance.cmd.manage --config-file "$G/glance-api.conf" db_sync >"$G/db_sync.log" 2>&1 ||
    { cat "$G/db_sync.log" >&2; die "glance-manage db_sync failed"; }

  # start_glance [PREFIX...]: glance-api on GPORT; waits until it answers.
  start_glance() {
    local i
    "$@" "$PYTHON" -m glance.cmd.api --config-file "$G/glance-api.conf" >"$G/api.out" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=$GPORT
    for ((i = 0; i < 3000; i++)); do
      curl -s -o /dev/null "http://127.0.0.1:$GPORT/versions" && return 0
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    cat "$G/api.out" >&2
    die "glance-api did not start"
  }
  glance_under_callgrind() {
    start_glance valgrind --tool=callgrind --callgrind-out-file="$1"
  }
  STOP_SIGNAL=TERM # eventlet's server ignores SIGINT

  log "== glance-api: $IMAGES images, wrk ${DURATION}s"
  start_glance taskset -c 0
  create_images "http://127.0.0.1:$GPORT" "$TOKEN"
  throughput "http://127.0.0.1:$GPORT/v2/images" "$TOKEN"
  GLANCE_RPS=$RPS GLANCE_CPU=$CPU_US
  stop_server_by TERM
  log "== glance-api: callgrind, $PY_SMALL and $PY_LARGE requests"
  callgrind_ir "$PY_SMALL" /v2/images "$TOKEN" glance_under_callgrind
  small=$CG_IR
  callgrind_ir "$PY_LARGE" /v2/images "$TOKEN" glance_under_callgrind
  GLANCE_IPR=$(((CG_IR - small) / (PY_LARGE - PY_SMALL)))
fi

echo
echo "GET /v2/images ($IMAGES images), a cached token, the whole pipeline; one server process"
printf '%-28s %12s %14s %14s\n' server "req/s" "CPU us/req" "instr/req"
printf '%-28s %12d %14d %14d\n' "csgi (examples/imageapi)" "$CSGI_RPS" "$CSGI_CPU" "$CSGI_IPR"
if [ "$GLANCE" != no ]; then
  printf '%-28s %12d %14d %14d\n' "glance-api (python3-glance)" "$GLANCE_RPS" "$GLANCE_CPU" "$GLANCE_IPR"
  awk -v a="$CSGI_RPS" -v b="$GLANCE_RPS" -v c="$GLANCE_CPU" -v d="$CSGI_CPU" \
    -v e="$GLANCE_IPR" -v f="$CSGI_IPR" 'BEGIN {
      printf "csgi / glance: %.1fx the requests per second, %.1fx less CPU and %.1fx fewer instructions per request\n",
        a / b, c / d, e / f }'
fi
