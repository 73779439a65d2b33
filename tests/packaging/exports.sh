#!/usr/bin/env bash
# exports.sh NM LIBRARY
#
# Fails when the shared library exports a symbol outside the public API:
# anything not named csgi_*, or an internal csgi_<module>__<verb> name.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: exports.sh NM LIBRARY" >&2
    exit 2
fi
nm=$1
library=$2

# Symbols the linker defines in every shared object.
linker_symbols=' _init _fini _edata _end __bss_start __bss_start__ __bss_end__ _bss_end__ __end__ '

echo "+ $nm -D --defined-only $library"
symbols=$("$nm" -D --defined-only "$library" | awk 'NF >= 3 { print $3 }' | sed 's/@.*//' | sort -u)

public=0
bad=()
for sym in $symbols; do
    case "$linker_symbols" in
    *" $sym "*) continue ;;
    esac
    case "$sym" in
    csgi_*__*) bad+=("$sym (internal csgi_<module>__ name)") ;;
    csgi_*) public=$((public + 1)) ;;
    *) bad+=("$sym (not csgi_)") ;;
    esac
done

if [ "$public" -eq 0 ]; then
    echo "exports: $library exports no csgi_ symbol at all" >&2
    exit 1
fi
if [ "${#bad[@]}" -ne 0 ]; then
    echo "exports: $library exports ${#bad[@]} symbol(s) outside the public API:" >&2
    printf '  %s\n' "${bad[@]}" >&2
    echo "Mark public declarations CSGI_EXTERN; everything else stays hidden." >&2
    exit 1
fi
echo "exports: $public csgi_ symbols, nothing else"
