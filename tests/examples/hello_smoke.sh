#!/usr/bin/env bash
# Smoke test of examples/hello: serve on port 0, read the port from the
# first line, GET / through bash's /dev/tcp, then stop it with SIGTERM.
#   hello_smoke.sh PATH_TO_HELLO
set -euo pipefail
hello=$1
out=$(mktemp)
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT

"$hello" --port 0 >"$out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q 'serving on' "$out" && break
    sleep 0.05
done
port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out" | head -n 1)
[ -n "$port" ] || { echo "hello printed no port:"; cat "$out"; exit 1; }

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
