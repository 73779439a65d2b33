#!/usr/bin/env bash
# Smoke test of examples/environ_dump: a POST with a body, an encoded path,
# a repeated header and an underscore header; the JSON answer must show
# each the way docs/environ.md says.
#   environ_dump_smoke.sh PATH_TO_ENVIRON_DUMP
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_example "$1"

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'POST /caf%%C3%%A9/a%%2Fb?x=1&y HTTP/1.1\r\nHost: example.org:8080\r\nConnection: close\r\n'\
'Accept: a\r\nAccept: b\r\nX-Auth_Token: evil\r\nX-Auth-Token: good\r\nContent-Type: text/plain\r\n'\
'Content-Length: 8\r\n\r\nhi there' >&3
response=$(cat <&3)
exec 3<&-
echo "$response"

expect() {
    grep -qF -- "$1" <<<"$response" || { echo "missing: $1"; exit 1; }
}
expect 'HTTP/1.1 200 OK'
expect 'Content-Type: application/json'
expect '"REQUEST_METHOD": "POST"'
expect '"SCRIPT_NAME": ""'
expect '"PATH_INFO": "/cafÃ©/a/b"'
expect '"QUERY_STRING": "x=1&y"'
expect '"REQUEST_URI": "/caf%C3%A9/a%2Fb?x=1&y"'
expect '"SERVER_NAME": "example.org"'
expect '"SERVER_PORT": "8080"'
expect '"SERVER_PROTOCOL": "HTTP/1.1"'
expect '"CONTENT_TYPE": "text/plain"'
expect '"CONTENT_LENGTH": "8"'
expect '"HTTP_ACCEPT": "a, b"'
expect '"HTTP_X_AUTH_TOKEN": "good"'
expect '"REMOTE_ADDR": "127.0.0.1"'
expect '"csgi.url_scheme": "http"'
expect '"body": "hi there"'
if grep -q 'HTTP_CONTENT_' <<<"$response"; then
    echo "CONTENT_* must not appear as HTTP_CONTENT_*"
    exit 1
fi
kill -TERM "$pid"
wait "$pid"
grep -q 'dropped header X-Auth_Token' "$out" || { echo "the underscore header was not logged"; cat "$out"; exit 1; }
echo "environ_dump: ok"
