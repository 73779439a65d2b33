#!/usr/bin/env bash
# install.sh CMAKE BUILD_DIR CONFIG BINDIR LIBDIR CC CONSUMER_DIR AUTH_FILTER_DIR WORK_DIR
#
# Installs the build into WORK_DIR/prefix, then uses the installed copy only,
# as the README's "Using the installed library" tells users to:
#   1. the consumer program with pkg-config, run through LD_LIBRARY_PATH and
#      through an rpath flag;
#   2. csgi-serve from the prefix (and from a moved copy of it) without
#      LD_LIBRARY_PATH: --check and serving the talk's wsgi_webob_mid.ini,
#      with its module built from AUTH_FILTER_DIR against the installed
#      headers, answering curl;
#   3. the consumer with CMake find_package(): csgi::csgi and csgi::csgi_static;
#   4. consumer/gateway.c with pkg-config (csgi and libevent_core): a deploy
#      file with auth_token, a signed token, and the client on its own loop.
set -euo pipefail

if [ $# -ne 9 ]; then
    echo "usage: install.sh CMAKE BUILD_DIR CONFIG BINDIR LIBDIR CC CONSUMER_DIR AUTH_FILTER_DIR WORK_DIR" >&2
    exit 2
fi
cmake=$1
build_dir=$2
config=$3
bindir=$4
libdir=$5
cc=$6
consumer=$7
auth_filter=$8
work=$9

run()
{
    printf '+ %s\n' "$*"
    "$@"
}

# The programs below must find libcsgi.so by what the test gives them only.
unset LD_LIBRARY_PATH

rm -rf "$work"
mkdir -p "$work"
prefix=$work/prefix

echo "== install into $prefix"
run "$cmake" --install "$build_dir" ${config:+--config "$config"} --prefix "$prefix"

echo "== consumer with pkg-config"
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
echo "PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
flags=$(pkg-config --cflags --libs csgi)
echo "pkg-config --cflags --libs csgi: $flags"
# shellcheck disable=SC2086 # the flags are a list of words
run "$cc" -std=c99 -Wall -Wextra -Werror "$consumer/main.c" $flags -o "$work/consumer_pkgconfig"
LD_LIBRARY_PATH=$prefix/$libdir run "$work/consumer_pkgconfig"
# The README's other way: an rpath flag, and no LD_LIBRARY_PATH.
rpath="-Wl,-rpath,$(pkg-config --variable=libdir csgi)"
# shellcheck disable=SC2086 # the flags are a list of words
run "$cc" -std=c99 -Wall -Wextra -Werror "$consumer/main.c" $flags "$rpath" \
    -o "$work/consumer_rpath"
run "$work/consumer_rpath"

echo "== a gateway with pkg-config: auth_token, a signed token, the client on the host's loop"
# A program with a libevent loop of its own names libevent_core beside csgi.
gateway_flags=$(pkg-config --cflags --libs csgi libevent_core)
# shellcheck disable=SC2086 # the flags are a list of words
run "$cc" -std=c99 -Wall -Wextra -Werror "$consumer/gateway.c" $gateway_flags "$rpath" \
    -o "$work/gateway"
run "$work/gateway" "$work"

# uses_prefix_library PROGRAM PREFIX: PROGRAM loads PREFIX's libcsgi.so.
uses_prefix_library()
{
    local found
    found=$(ldd "$1" | sed -n 's|^[[:space:]]*libcsgi\.so[^ ]* => \([^ ]*\) .*|\1|p')
    echo "$1: libcsgi => ${found:-(not found)}"
    case "$(readlink -f "${found:-/nonexistent}")" in
    "$(readlink -f "$2")"/*) return 0 ;;
    *) echo "install: $1 does not load libcsgi.so from $2" >&2; return 1 ;;
    esac
}
uses_prefix_library "$work/consumer_rpath" "$prefix"

echo "== installed csgi-serve, without LD_LIBRARY_PATH"
serve=$prefix/$bindir/csgi-serve
readelf -d "$serve" | grep -E 'RPATH|RUNPATH' || true
uses_prefix_library "$serve" "$prefix"
run "$serve" --version
# A relative RPATH: a moved prefix still finds its own library.
cp -a "$prefix" "$work/moved"
uses_prefix_library "$work/moved/$bindir/csgi-serve" "$work/moved"
run "$work/moved/$bindir/csgi-serve" --version

# The talk's deploy file with its module beside it, built as a user would.
deploy=$work/deploy
mkdir -p "$deploy"
cp "$auth_filter/wsgi_webob_mid.ini" "$deploy/"
# shellcheck disable=SC2086 # the flags are a list of words
run "$cc" -std=c11 -Wall -Wextra -Werror -fPIC -shared $(pkg-config --cflags csgi) \
    "$auth_filter/wsgi_webob_mid.c" -o "$deploy/wsgi_webob_mid.so"
echo "+ $serve --check $deploy/wsgi_webob_mid.ini"
text=$("$serve" --check "$deploy/wsgi_webob_mid.ini")
echo "$text"
grep -q '^\[pipeline:main\]' <<<"$text"
grep -q '^  \[filter:auth\] filter paste.filter_factory = wsgi_webob_mid:filter_factory' <<<"$text"
grep -q '^  \[app:hello\] app paste.app_factory = wsgi_webob_mid:app_factory' <<<"$text"

# shellcheck source=../examples/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../examples/lib.sh"
start_serving "$serve" --allow-root --listen 127.0.0.1:0 "$deploy/wsgi_webob_mid.ini"
url=http://127.0.0.1:$port/
status=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "$url")
echo "GET $url: $status"
[ "$status" = 403 ]
body=$(curl -sS --max-time 10 --fail -H 'X-Auth-Token: open-sesame' "$url")
echo "GET $url with the token: $body"
[ "$body" = 'Hello, Secret World of WebOb !' ]
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 0 ] || { echo "install: csgi-serve exited with $status" >&2; cat "$out" >&2; exit 1; }
echo "installed csgi-serve served the talk's file and stopped cleanly"

echo "== consumer with CMake find_package(csgi)"
run "$cmake" -S "$consumer" -B "$work/consumer-build" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" ${config:+-DCMAKE_BUILD_TYPE="$config"}
run "$cmake" --build "$work/consumer-build"
# The build tree's RPATH points at the installed shared library.
run "$work/consumer-build/consumer_shared"
run "$work/consumer-build/consumer_static"

# The static program must not need libcsgi.so at run time.
if grep -q 'NEEDED.*libcsgi' <<<"$(readelf -d "$work/consumer-build/consumer_static")"; then
    echo "install: consumer_static depends on libcsgi.so; csgi::csgi_static is not static" >&2
    exit 1
fi
# The shared one must really use the installed libcsgi.so, not the build's.
if ! grep -q 'NEEDED.*libcsgi\.so' <<<"$(readelf -d "$work/consumer-build/consumer_shared")"; then
    echo "install: consumer_shared does not link libcsgi.so" >&2
    exit 1
fi
echo "install: pkg-config and find_package(csgi) consumers build and run"
