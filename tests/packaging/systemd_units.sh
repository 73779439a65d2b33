#!/usr/bin/env bash
# contrib/csgi.service and contrib/csgi.socket pass `systemd-analyze verify`:
# every key known, every value valid, the socket's service found, ExecStart's
# and ExecReload's programs present. The units name the installed
# /usr/local/bin/csgi-serve, so a copy naming the build's csgi-serve is
# verified. Exits 77 (skipped) when systemd-analyze is not installed.
#   systemd_units.sh CONTRIB_DIR CSGI_SERVE
set -euo pipefail
contrib=$1
serve=$(realpath "$2")

command -v systemd-analyze >/dev/null 2>&1 || {
    echo "systemd-analyze not found (Debian: apt-get install systemd): skipped"
    exit 77
}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$contrib/csgi.socket" "$dir/"
grep -q '^ExecStart=/usr/local/bin/csgi-serve ' "$contrib/csgi.service" ||
    { echo "csgi.service: ExecStart does not start /usr/local/bin/csgi-serve"; exit 1; }
sed "s|^ExecStart=/usr/local/bin/csgi-serve |ExecStart=$serve |" "$contrib/csgi.service" \
    >"$dir/csgi.service"

# --man=no: Documentation= names csgi-serve(1), which is installed with csgi,
# not here. Warnings fail the test too: verify prints nothing for good units.
status=0
out=$(systemd-analyze verify --man=no "$dir/csgi.socket" "$dir/csgi.service" 2>&1) || status=$?
if [ "$status" != 0 ] || [ -n "$out" ]; then
    printf 'systemd-analyze verify (exit status %s):\n%s\n' "$status" "$out"
    exit 1
fi
echo "contrib/csgi.service and contrib/csgi.socket: systemd-analyze verify passed"
