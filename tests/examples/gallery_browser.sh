#!/usr/bin/env bash
# The gallery in a real browser, then its pages through an HTML validity
# check: csgi-serve serves examples/gallery/gallery.ini (a 1 MiB file limit),
# gallery_browser.py drives Debian's headless Chromium through it (sign in,
# two uploads, download, 413, CSRF refusal, delete, status, sign out, no
# console errors), and `tidy -errors` reads the HTML it saved. Screenshots
# stay in OUT_DIR (under the build directory) as the test's artifacts.
#   gallery_browser.sh CSGI_SERVE MODULE_DIR GALLERY_INI OUT_DIR
set -euo pipefail
serve=$1
modules=$2
ini=$3
shots=$4

for program in /usr/bin/chromium /usr/bin/chromedriver tidy; do
    command -v "$program" >/dev/null || {
        echo "gallery_browser: $program is not installed: run scripts/setup.sh" >&2
        exit 1
    }
done
/usr/bin/python3 -c 'import selenium' 2>/dev/null || {
    echo "gallery_browser: python3-selenium is not installed: run scripts/setup.sh" >&2
    exit 1
}

state=$(mktemp -d)
rm -rf "$shots"
mkdir -p "$shots"
max_file=$((1024 * 1024))

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
start_serving "$serve" --allow-root --module-path "$modules" --listen 127.0.0.1:0 "$ini" \
    "state_dir=$state" "max_file_size=$max_file" "max_request_size=$((4 * max_file))"
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$out" "$state" "$shots/profile" "$shots/files"' EXIT

if ! timeout 240 /usr/bin/python3 "$(dirname "$0")/gallery_browser.py" "http://127.0.0.1:$port" \
    "$shots" "$max_file"; then
    echo "---- csgi-serve's output" >&2
    tail -n 40 "$out" >&2
    exit 1
fi

# Every page the browser saw, as the server sent it, through tidy: no
# errors and no warnings (tidy exits 1 on a warning, 2 on an error).
status=0
for page in "$shots"/html/*.html; do
    if ! tidy -errors -quiet "$page" 2>"$page.tidy"; then
        echo "gallery_browser: tidy finds fault with $(basename "$page"):" >&2
        cat "$page.tidy" >&2
        status=1
    fi
done
[ "$status" -eq 0 ] || exit 1
echo "gallery_browser: tidy passes $(find "$shots/html" -name '*.html' | wc -l) pages"
