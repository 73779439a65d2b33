#!/usr/bin/env bash
# examples/imageapi under load and under a crash (imageapi_stress.py):
# COUNT concurrent uploads of MEGABYTES each through csgi-serve's two
# workers, with each worker's memory flat and every image active with the
# right checksum; then a worker killed with SIGKILL half-way through an
# upload, the image not active, the service answering, the retry active.
#
#   imageapi_stress.sh CSGI_SERVE MODULE_DIR EXAMPLE_DIR [COUNT [MEGABYTES]]
set -euo pipefail
serve=$1
modules=$2
example=$3
count=${4:-20}
megabytes=${5:-100}

work=$(mktemp -d)
mkdir -p "$work/state"
head -c 48 /dev/urandom >"$work/state/signing.key"

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 --workers 2 \
    "$example/imageapi-paste.ini" "state_dir=$work/state"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work" "$out"' EXIT

stress=$(dirname "$0")/imageapi_stress.py
python3 "$stress" load "http://127.0.0.1:$port" "$pid" "$count" "$megabytes" ||
    { tail -n 40 "$out"; exit 1; }
python3 "$stress" crash "http://127.0.0.1:$port" "$pid" "$work/state" ||
    { tail -n 40 "$out"; exit 1; }

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "csgi-serve exited with $status"; tail -n 40 "$out"; exit 1; }
echo "imageapi_stress: passed"
