#!/usr/bin/env bash
# The notes service as a user runs it: csgi-serve serves examples/notes/
# notes.ini on port 0; a POST creates a note (201, JSON, a request id), a
# request the server itself refuses (two Content-Lengths) gets a JSON 400
# (the INI's error_format = json), and SIGTERM stops it cleanly.
#   notes_serve_smoke.sh PATH_TO_CSGI_SERVE MODULE_DIR NOTES_INI
set -euo pipefail
serve=$1
modules=$2
ini=$3

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 "$ini"

# send TEXT: what the server answers to the raw request TEXT
send() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf '%b' "$1" >&3
    cat <&3
    exec 3<&-
}

response=$(send 'POST /notes HTTP/1.1\r\nHost: n\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"text": "hi"}\n')
echo "$response"
grep -q '^HTTP/1.1 201' <<<"$response"
grep -q '^X-Request-Id: req-' <<<"$response"
grep -q '"text":"hi"' <<<"$response"

response=$(send 'GET /notes HTTP/1.1\r\nHost: n\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')
echo "$response"
grep -q '^HTTP/1.1 400' <<<"$response"
grep -q '^Content-Type: application/json' <<<"$response"
grep -q '"code":400' <<<"$response"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "csgi-serve exited with $status"; cat "$out"; exit 1; }
echo "notes served and stopped cleanly"
