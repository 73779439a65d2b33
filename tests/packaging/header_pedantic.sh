#!/usr/bin/env bash
# header_pedantic.sh CC INCLUDE_DIR WORK_DIR
#
# Compiles include/csgi.h and every header under include/csgi/ alone, twice
# included, as C99 and as C11 with -Wall -Wextra -Wpedantic -Werror: each
# public header must be self-contained, guarded and C99-clean.
set -euo pipefail

if [ $# -ne 3 ]; then
    echo "usage: header_pedantic.sh CC INCLUDE_DIR WORK_DIR" >&2
    exit 2
fi
cc=$1
include_dir=$2
work=$3

rm -rf "$work"
mkdir -p "$work"

headers=(csgi.h)
while IFS= read -r h; do
    headers+=("${h#"$include_dir"/}")
done < <(find "$include_dir/csgi" -type f -name '*.h' | sort)

failed=()
n=0
for header in "${headers[@]}"; do
    n=$((n + 1))
    src="$work/header_$n.c"
    printf '#include <%s>\n#include <%s>\n' "$header" "$header" >"$src"
    for std in c99 c11; do
        echo "+ $cc -std=$std -Wall -Wextra -Wpedantic -Werror -c <#include <$header>>"
        if ! "$cc" -std="$std" -Wall -Wextra -Wpedantic -Werror -I"$include_dir" \
            -c "$src" -o "$work/header_$n.$std.o"; then
            failed+=("$header ($std)")
        fi
    done
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "header_pedantic: these headers do not compile alone:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "header_pedantic: ${#headers[@]} headers compile alone as C99 and C11"
