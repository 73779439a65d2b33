#!/usr/bin/env bash
# The gallery as a user runs it: csgi-serve serves examples/gallery/
# gallery.ini on port 0 with a state directory of its own; the sign-in page
# is HTML with an HttpOnly, SameSite=Lax cookie, the logo comes from the
# static filter with a year of caching, a sign-in without its CSRF token
# gets an HTML 403, /status.json answers, and SIGTERM stops it cleanly.
#   gallery_serve_smoke.sh PATH_TO_CSGI_SERVE MODULE_DIR GALLERY_INI
set -euo pipefail
serve=$1
modules=$2
ini=$3
state=$(mktemp -d)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 "$ini" \
    "state_dir=$state"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out" "$state"' EXIT

# send TEXT: what the server answers to the raw request TEXT
send() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%b' "$1" >&3
    cat <&3
    exec 3<&-
}

response=$(send 'GET /signin HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n')
head -n 12 <<<"$response"
grep -q '^HTTP/1.1 200' <<<"$response"
grep -q '^Content-Type: text/html; charset=utf-8' <<<"$response"
grep -q '^Set-Cookie: gallery_signin=[0-9a-f]*; Path=/; HttpOnly; SameSite=Lax' <<<"$response"
grep -q 'name="csrf" value="[0-9a-f]\{64\}"' <<<"$response"

response=$(send 'GET /static/logo.svg HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n')
grep -q '^HTTP/1.1 200' <<<"$response"
grep -q '^Cache-Control: max-age=31536000' <<<"$response"
grep -q '^Content-Type: image/svg+xml' <<<"$response"

response=$(send 'POST /signin HTTP/1.1\r\nHost: g\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 33\r\n\r\nuser=alice&password=alice-gallery')
head -n 4 <<<"$response"
grep -q '^HTTP/1.1 403' <<<"$response"
grep -q '<!DOCTYPE html>' <<<"$response"
if grep -q '^Set-Cookie: gallery_session' <<<"$response"; then exit 1; fi

response=$(send 'GET /status.json HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n')
grep -q '"requests":' <<<"$response"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "csgi-serve exited with $status"; cat "$out"; exit 1; }
echo "gallery served and stopped cleanly"
