#!/usr/bin/env bash
# Smoke test of examples/hello: serve on port 0, read the port from the
# first line, GET / through bash's /dev/tcp, then stop it with SIGTERM.
#   hello_smoke.sh PATH_TO_HELLO
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_example "$1"

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
response=$(cat <&3)
exec 3<&-
echo "$response"
grep -q '^HTTP/1.1 200 OK' <<<"$response"
grep -qi '^Content-Type: text/html' <<<"$response"
grep -q 'Hello World$' <<<"$response"

kill -TERM "$pid"
wait "$pid"
echo "hello stopped cleanly"
