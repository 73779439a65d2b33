#!/usr/bin/env bash
# Install the Debian 12 packages needed to build, test, fuzz and format csgi.
#
# Only missing packages are installed, and `apt-get update` runs only when
# something is missing, so a second run is fast and needs no network.
# Run as root, or as a user who may use sudo.
set -euo pipefail

# libevent-dev ships every libevent library csgi links: libevent_core,
# libevent_extra (evdns, for the HTTP client's names) and libevent_openssl
# (the HTTP client's TLS).
packages=(
    build-essential cmake pkg-config
    libevent-dev libjansson-dev libssl-dev openssl check zlib1g-dev
    clang llvm libclang-rt-14-dev clang-format
    curl python3 valgrind
    groff-base systemd
    libcrypt-dev
    # examples/imageapi's end-to-end test drives the real OpenStack clients
    python3-openstackclient python3-glanceclient python3-novaclient
    # tests/cluster: the real balancers in front of three csgi-serve hosts, and load
    nginx haproxy wrk
    # examples/gallery: the browser test (headless Chromium through Selenium)
    # and the HTML validity check
    chromium chromium-driver python3-selenium tidy
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "installed" ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup.sh: all ${#packages[@]} packages already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "setup.sh: missing packages: ${missing[*]}" >&2
    echo "setup.sh: run this script as root, or install sudo" >&2
    exit 1
fi

echo "setup.sh: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
echo "setup.sh: done"
