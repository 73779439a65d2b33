#!/usr/bin/env bash
# Smoke test of csgi-serve with the talk's deploy file: serve it on port 0
# (the auth filter in front of the hello app), GET / with and without the
# token through bash's /dev/tcp, stop it with SIGTERM; then --check, on it
# and on a file with an unknown factory (with and without --stub-unknown).
#   csgi_serve_smoke.sh PATH_TO_CSGI_SERVE MODULE_DIR TALK_INI
# TALK_INI is the talk's examples/auth_filter/wsgi_webob_mid.ini.
set -euo pipefail
serve=$1
modules=$2
talk_ini=$3

dir=$(mktemp -d)
out="$dir/out"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
cp "$talk_ini" "$dir/wsgi_webob_mid.ini"

"$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 "$dir/wsgi_webob_mid.ini" >"$out" 2>&1 &
pid=$!
for _ in $(seq 100); do
    grep -q 'serving on' "$out" && break
    sleep 0.05
done
port=$(sed -n 's|.*serving on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$out" | head -n 1)
[ -n "$port" ] || { echo "csgi-serve printed no port:"; cat "$out"; exit 1; }

# get [HEADER]: the response to GET / (with the extra header line, if any)
get() {
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: localhost\r\n%sConnection: close\r\n\r\n' "${1:+$1$'\r\n'}" >&3
    cat <&3
    exec 3<&-
}

response=$(get)
echo "$response"
grep -q '^HTTP/1.1 403' <<<"$response"

response=$(get 'X-Auth-Token: open-sesame')
echo "$response"
grep -q '^HTTP/1.1 200' <<<"$response"
grep -q 'Hello, Secret World of WebOb !' <<<"$response"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
[ "$status" -eq 0 ] || { echo "csgi-serve exited with $status"; cat "$out"; exit 1; }
echo "csgi-serve stopped cleanly"

# --check prints the pipeline: the auth filter, then the hello app.
text=$("$serve" --check --module-path "$modules" "$dir/wsgi_webob_mid.ini")
echo "$text"
grep -q 'filter:auth' <<<"$text"
grep -q 'app:hello' <<<"$text"
[ "$(grep -n 'filter:auth' <<<"$text" | cut -d: -f1)" -lt "$(grep -n 'app:hello' <<<"$text" | cut -d: -f1)" ]

# An unknown factory: an error naming file:line, or a stub with --stub-unknown.
cat >"$dir/unknown.ini" <<'INI'
[pipeline:main]
pipeline = auth hello

[app:hello]
use = egg:NoSuchDist#app

[filter:auth]
paste.filter_factory = wsgi_webob_mid:filter_factory
INI
status=0
message=$("$serve" --check --module-path "$modules" "$dir/unknown.ini" 2>&1) || status=$?
echo "$message"
[ "$status" -eq 1 ]
grep -q "unknown.ini:5:" <<<"$message"

text=$("$serve" --check --stub-unknown --module-path "$modules" "$dir/unknown.ini")
echo "$text"
grep -q 'stub' <<<"$text"
echo "csgi-serve --check works"
