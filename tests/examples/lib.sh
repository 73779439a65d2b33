# Shared by the smoke tests: start a server that prints its address first
# ("serving on http://127.0.0.1:PORT/") and read the port back. Sets $pid,
# $port and $out (its output file), and stops it on exit.
#   start_serving COMMAND [ARGUMENTS...]
start_serving() {
    out=$(mktemp)
    "$@" >"$out" 2>&1 &
    pid=$!
    trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
    for _ in $(seq 100); do
        grep -q 'serving on' "$out" && break
        sleep 0.05
    done
    port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out" | head -n 1)
    [ -n "$port" ] || { echo "$1 printed no port:"; cat "$out"; exit 1; }
}

# An example program on port 0.
#   start_example PROGRAM
start_example() {
    start_serving "$1" --port 0
}
