#!/usr/bin/env bash
# install.sh CMAKE BUILD_DIR CONFIG LIBDIR CC CONSUMER_DIR WORK_DIR
#
# Installs the build into WORK_DIR/prefix, then builds and runs the consumer
# program against the installed copy only:
#   1. with pkg-config:            cc main.c $(pkg-config --cflags --libs csgi)
#   2. with CMake find_package():  csgi::csgi (shared) and csgi::csgi_static
set -euo pipefail

if [ $# -ne 7 ]; then
    echo "usage: install.sh CMAKE BUILD_DIR CONFIG LIBDIR CC CONSUMER_DIR WORK_DIR" >&2
    exit 2
fi
cmake=$1
build_dir=$2
config=$3
libdir=$4
cc=$5
consumer=$6
work=$7

run()
{
    printf '+ %s\n' "$*"
    "$@"
}

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
LD_LIBRARY_PATH=$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} run "$work/consumer_pkgconfig"

echo "== consumer with CMake find_package(csgi)"
run "$cmake" -S "$consumer" -B "$work/consumer-build" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_PREFIX_PATH="$prefix" ${config:+-DCMAKE_BUILD_TYPE="$config"}
run "$cmake" --build "$work/consumer-build"
# The build tree's RPATH points at the installed shared library.
run "$work/consumer-build/consumer_shared"
run "$work/consumer-build/consumer_static"

# The static program must not need libcsgi.so at run time.
if readelf -d "$work/consumer-build/consumer_static" | grep -q 'NEEDED.*libcsgi'; then
    echo "install: consumer_static depends on libcsgi.so; csgi::csgi_static is not static" >&2
    exit 1
fi
# The shared one must really use the installed libcsgi.so, not the build's.
if ! readelf -d "$work/consumer-build/consumer_shared" | grep -q 'NEEDED.*libcsgi\.so'; then
    echo "install: consumer_shared does not link libcsgi.so" >&2
    exit 1
fi
echo "install: pkg-config and find_package(csgi) consumers build and run"
