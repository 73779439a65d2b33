#!/usr/bin/env bash
# What the bundled OpenStack middleware costs a request: a glance-shaped
# pipeline (glance-api-paste.ini's order: healthcheck, cors,
# http_proxy_to_wsgi, request_id, sizelimit, auth_token, catch_errors) in
# front of the talk's hello application, served by csgi-serve from an INI
# file, built up one filter at a time:
#
#   hello            [app:main] alone (wsgi_webob:app_factory, the module
#                    examples/auth_filter builds): the baseline
#   +healthcheck     oslo_middleware:Healthcheck.factory (a filter: every
#                    request but /healthcheck goes on)
#   +cors            with allowed_origin set; the requests carry no Origin
#   +http_proxy_to_wsgi  enable_proxy_headers_parsing = true, trusted
#                    127.0.0.1; the requests carry X-Forwarded-Proto
#   +request_id      a new req-<uuid4> per request
#   +sizelimit       max_request_body_size
#   +auth_token      the token in every request is in the cache (validated
#                    once, from a tokens file: the cache hit path, which is
#                    what a busy service runs)
#   +catch_errors    the whole glance pipeline
#
# For each, instructions per request as bench/handler.sh measures them (two
# callgrind runs of different length; the difference in Ir over the
# difference in requests), the step each filter adds, and the ratio to
# hello. The issue's target: the whole pipeline at most 2x hello.
#
#   bench/middleware.sh
#
# Environment (defaults in brackets): CG_SMALL [2000] CG_LARGE [12000]
# CG_CONNECTIONS [16] BUILD_DIR [build-bench] TARGET_RATIO [2.0].
# Everything listens on 127.0.0.1 only; servers are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build-bench}
CG_SMALL=${CG_SMALL:-2000}
CG_LARGE=${CG_LARGE:-12000}
CG_CONNECTIONS=${CG_CONNECTIONS:-16}
TARGET_RATIO=${TARGET_RATIO:-2.0}

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

case ${1:-} in
  -h | --help) help_text; exit 0 ;;
  "") ;;
  *) die "no arguments expected" ;;
esac
command -v valgrind >/dev/null 2>&1 || die "missing valgrind (apt-get install -y valgrind)"

bench_tmp csgi-middleware-bench
bench_build csgi-serve wsgi_webob fixed_load
SERVE=$BUILD_DIR/tools/csgi-serve
MODULES=$BUILD_DIR/examples/auth_filter
FIXED_LOAD=$BUILD_DIR/bench/fixed_load
TOKEN=bench-token-0123456789abcdef

# The token auth_token finds in its tokens file (valid for a day).
expires=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%S.000000Z)
cat >"$TMP/tokens.json" <<JSON
{"tokens": {"$TOKEN": {"expires_at": "$expires",
  "user": {"id": "u-demo", "name": "demo", "domain": {"id": "default", "name": "Default"}},
  "project": {"id": "p-demo", "name": "demo", "domain": {"id": "default", "name": "Default"}},
  "roles": [{"name": "member"}, {"name": "reader"}], "is_admin_project": false}}}
JSON

FILTERS=(healthcheck cors http_proxy_to_wsgi request_id sizelimit auth_token catch_errors)
# filter_section NAME: the [filter:NAME] section as glance's file has it.
filter_section() {
  case $1 in
    healthcheck) printf '[filter:healthcheck]\npaste.filter_factory = oslo_middleware:Healthcheck.factory\nbackends = disable_by_file\ndisable_by_file_path = %s/healthcheck_disable\n' "$TMP" ;;
    cors) printf '[filter:cors]\npaste.filter_factory = oslo_middleware.cors:filter_factory\nallowed_origin = https://dashboard.example\n' ;;
    http_proxy_to_wsgi) printf '[filter:http_proxy_to_wsgi]\npaste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory\nenable_proxy_headers_parsing = true\ntrusted_proxies = 127.0.0.1\n' ;;
    request_id) printf '[filter:request_id]\npaste.filter_factory = oslo_middleware:RequestId.factory\n' ;;
    sizelimit) printf '[filter:sizelimit]\npaste.filter_factory = oslo_middleware.sizelimit:RequestBodySizeLimiter.factory\nmax_request_body_size = 1048576\n' ;;
    auth_token) printf '[filter:auth_token]\npaste.filter_factory = keystonemiddleware.auth_token:filter_factory\ntokens_file = %s/tokens.json\n' "$TMP" ;;
    catch_errors) printf '[filter:catch_errors]\npaste.filter_factory = oslo_middleware:CatchErrors.factory\n' ;;
  esac
}

# write_ini N FILE: the first N filters of FILTERS in front of hello.
write_ini() {
  local n=$1 file=$2 i pipeline=""
  for ((i = 0; i < n; i++)); do pipeline+="${FILTERS[$i]} "; done
  {
    printf '[server:main]\nuse = egg:csgi#http\nhost = 127.0.0.1\nport = 0\n\n'
    if [ "$n" = 0 ]; then
      printf '[app:main]\npaste.app_factory = wsgi_webob:app_factory\n'
    else
      printf '[pipeline:main]\npipeline = %shello\n\n' "$pipeline"
      printf '[app:hello]\npaste.app_factory = wsgi_webob:app_factory\n'
      for ((i = 0; i < n; i++)); do
        printf '\n'
        filter_section "${FILTERS[$i]}"
      done
    fi
  } >"$file"
}

# callgrind_ir INI REQUESTS: sets CG_IR to the total Ir of csgi-serve INI
# serving REQUESTS requests under callgrind.
callgrind_ir() {
  local ini=$1 requests=$2 out=$TMP/cg.$(basename "$1").$2
  start_server "$TMP/serve.log" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$SERVE" --allow-root --module-path "$MODULES" "$ini"
  run_client "$FIXED_LOAD" -H "X-Auth-Token: $TOKEN" -H "X-Forwarded-Proto: https" \
    -b "Hello, World of WebOb !" "$SERVER_PORT" "$CG_CONNECTIONS" "$requests" 600 \
    >"$TMP/load.log" 2>&1 || { cat "$TMP/load.log" "$TMP/serve.log" >&2; die "the load against $ini failed"; }
  stop_server
  CG_IR=$(callgrind_total "$out")
}

log "== Instructions per request: callgrind, $CG_SMALL and $CG_LARGE requests"
declare -a IPR=()
names=(hello)
for f in "${FILTERS[@]}"; do names+=("+$f"); done
for ((n = 0; n <= ${#FILTERS[@]}; n++)); do
  write_ini "$n" "$TMP/pipeline$n.ini"
  callgrind_ir "$TMP/pipeline$n.ini" "$CG_SMALL"
  small=$CG_IR
  callgrind_ir "$TMP/pipeline$n.ini" "$CG_LARGE"
  IPR[n]=$(((CG_IR - small) / (CG_LARGE - CG_SMALL)))
  log "   ${names[n]}: ${IPR[n]}"
done

echo
echo "Glance-shaped pipeline, instructions per request (callgrind)"
printf '%-22s %10s %10s %8s\n' "pipeline" "instr/req" "step" "x hello"
for ((n = 0; n <= ${#FILTERS[@]}; n++)); do
  step=$((n == 0 ? 0 : IPR[n] - IPR[n - 1]))
  printf '%-22s %10d %10s %8s\n' "${names[n]}" "${IPR[n]}" "$([ "$n" = 0 ] && echo - || echo "$step")" \
    "$(awk -v a="${IPR[n]}" -v b="${IPR[0]}" 'BEGIN { printf "%.2f", a / b }')"
done
ratio=$(awk -v a="${IPR[${#FILTERS[@]}]}" -v b="${IPR[0]}" 'BEGIN { printf "%.2f", a / b }')
if awk -v r="$ratio" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
  echo "target: the whole pipeline at most ${TARGET_RATIO}x hello: ${ratio}x: met"
else
  echo "target: the whole pipeline at most ${TARGET_RATIO}x hello: ${ratio}x: MISSED"
  exit 1
fi
