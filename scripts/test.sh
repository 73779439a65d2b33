#!/usr/bin/env bash
# Build csgi and run its tests. The one command for "build and run every test".
#
#   scripts/test.sh                 Release build (RelWithDebInfo, -Werror) in build-test, ctest
#   scripts/test.sh --sanitize      ASan+UBSan build in build-asan, ctest
#   scripts/test.sh --valgrind      the tests labelled valgrind under valgrind's memcheck
#   scripts/test.sh --fuzz SECONDS  clang libFuzzer build in build-fuzz, run every fuzzer on a
#                                   copy of its seed corpus for SECONDS each
#   scripts/test.sh --format        clang-format --dry-run --Werror on every tracked .c/.h
#
# Every mode first runs scripts/setup.sh (fast when nothing is missing).
# Exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage()
{
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

mode=default
fuzz_seconds=
while [ $# -gt 0 ]; do
    case "$1" in
    --sanitize | --format | --valgrind)
        [ "$mode" = default ] || { echo "test.sh: give only one of --sanitize, --valgrind, --fuzz, --format" >&2; exit 2; }
        mode=${1#--}
        shift
        ;;
    --fuzz)
        [ "$mode" = default ] || { echo "test.sh: give only one of --sanitize, --valgrind, --fuzz, --format" >&2; exit 2; }
        if [ $# -lt 2 ] || ! [[ "$2" =~ ^[1-9][0-9]*$ ]]; then
            echo "test.sh: --fuzz needs a number of seconds" >&2
            exit 2
        fi
        mode=fuzz
        fuzz_seconds=$2
        shift 2
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "test.sh: unknown argument: $1" >&2
        usage >&2
        exit 2
        ;;
    esac
done

jobs=$(nproc 2>/dev/null || echo 2)

# Print a command, then run it.
run()
{
    printf '+ %s\n' "$*" >&2
    "$@"
}

section()
{
    printf '\n==== %s\n' "$*" >&2
}

section "setup: scripts/setup.sh"
run "$root/scripts/setup.sh"

case "$mode" in
default)
    section "build and test: build-test (RelWithDebInfo, CSGI_WERROR=ON)"
    run cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCSGI_WERROR=ON
    run cmake --build build-test -j"$jobs"
    run ctest --test-dir build-test --output-on-failure
    ;;

sanitize)
    section "sanitizers: build-asan (CSGI_SANITIZE=ON: ASan + UBSan)"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    echo "ASAN_OPTIONS=$ASAN_OPTIONS" >&2
    echo "UBSAN_OPTIONS=$UBSAN_OPTIONS" >&2
    run cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCSGI_SANITIZE=ON
    run cmake --build build-asan -j"$jobs"
    run ctest --test-dir build-asan --output-on-failure
    ;;

valgrind)
    # The tests labelled valgrind in tests/CMakeLists.txt, each with the
    # command and environment CTest gives it, in one process (CK_FORK=no) so
    # valgrind sees every test; the socket-heavy suites run under ASan instead.
    section "valgrind: memcheck on the tests labelled valgrind (ctest -L valgrind) of build-test"
    command -v valgrind >/dev/null || { echo "test.sh: valgrind is not installed" >&2; exit 1; }
    run cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCSGI_WERROR=ON
    run cmake --build build-test -j"$jobs"
    # One line a test, shell-quoted: its name, its working directory, then
    # env NAME=VALUE... valgrind OPTIONS... COMMAND ARGS...
    tests=$(ctest --test-dir build-test -L valgrind --show-only=json-v1 | python3 -c '
import json, shlex, sys
for test in json.load(sys.stdin)["tests"]:
    props = {p["name"]: p["value"] for p in test.get("properties", [])}
    print(shlex.join([test["name"], props.get("WORKING_DIRECTORY", "."), "env", "CK_FORK=no",
                      *props.get("ENVIRONMENT", []), "valgrind", "-q", "--error-exitcode=99",
                      "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                      *test["command"]]))
')
    [ -n "$tests" ] || { echo "test.sh: no tests are labelled valgrind" >&2; exit 1; }
    count=0
    while IFS= read -r line; do
        eval "set -- $line"
        section "valgrind: $1"
        (cd "$2" && shift 2 && run "$@")
        count=$((count + 1))
    done <<<"$tests"
    echo "test.sh: $count test(s) clean under valgrind" >&2
    ;;

fuzz)
    section "fuzz: build-fuzz (clang, libFuzzer + ASan + UBSan), ${fuzz_seconds}s per fuzzer"
    # The sanitizers make a fuzzer find memory errors, not only segfaults.
    run env CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCSGI_BUILD_FUZZERS=ON -DCSGI_BUILD_TESTS=OFF -DCSGI_SANITIZE=ON
    run cmake --build build-fuzz -j"$jobs"

    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    work=$(mktemp -d "${TMPDIR:-/tmp}/csgi-fuzz.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    artifacts="$root/build-fuzz/artifacts"
    mkdir -p "$artifacts"

    fuzzers=()
    for exe in build-fuzz/tests/fuzz/fuzz_*; do
        [ -f "$exe" ] && [ -x "$exe" ] && fuzzers+=("$exe")
    done
    failed=()
    if [ "${#fuzzers[@]}" -eq 0 ]; then
        echo "test.sh: no fuzzers were built in build-fuzz/tests/fuzz" >&2
        failed+=("(no fuzzers)")
    fi
    # A seed corpus without a fuzzer means the fuzzer was not built.
    for corpus in tests/fuzz/corpus/*/; do
        [ -d "$corpus" ] || continue
        name=$(basename "$corpus")
        if [ ! -x "build-fuzz/tests/fuzz/fuzz_$name" ]; then
            echo "test.sh: corpus $corpus has no fuzzer build-fuzz/tests/fuzz/fuzz_$name" >&2
            failed+=("fuzz_$name (not built)")
        fi
    done
    for exe in ${fuzzers[@]+"${fuzzers[@]}"}; do
        name=${exe##*/fuzz_}
        corpus=tests/fuzz/corpus/$name
        section "fuzz_$name: ${fuzz_seconds}s on a copy of $corpus"
        if [ ! -d "$corpus" ]; then
            echo "test.sh: fuzz_$name has no seed corpus $corpus" >&2
            failed+=("fuzz_$name (no corpus)")
            continue
        fi
        # libFuzzer adds new inputs to its first corpus directory: give it a copy.
        rm -rf "${work:?}/${name:?}"
        cp -r "$corpus" "$work/$name"
        # The log is kept so that a failure can be named at the end: what
        # a fuzzer says first about a crash is far above its last lines.
        log=$work/$name.log
        if ! run "$exe" -max_total_time="$fuzz_seconds" -timeout=10 -print_final_stats=1 \
            -artifact_prefix="$artifacts/$name-" "$work/$name" </dev/null 2>&1 |
            tee "$log" >&2; then
            echo "test.sh: fuzz_$name FAILED; what it reported first:" >&2
            grep -m 8 -E 'invariant broken|ERROR: |runtime error|#[0-9]+ 0x' "$log" >&2 || true
            echo "test.sh: reproducer(s) in $artifacts:" >&2
            ls -l "$artifacts" >&2 || true
            failed+=("fuzz_$name")
        fi
    done
    if [ "${#failed[@]}" -ne 0 ]; then
        echo "test.sh: fuzzing failed: ${failed[*]}" >&2
        exit 1
    fi
    echo "test.sh: ${#fuzzers[@]} fuzzer(s) ran ${fuzz_seconds}s each without a crash" >&2
    ;;

format)
    clang_format=${CLANG_FORMAT:-clang-format}
    section "format: $clang_format --dry-run --Werror ($("$clang_format" --version | head -n1))"
    dirs=(include src tests examples bench)
    files=()
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        while IFS= read -r f; do
            [ -f "$f" ] && files+=("$f")
        done < <(git ls-files -- "${dirs[@]}" | grep -E '\.[ch]$' || true)
    fi
    if [ "${#files[@]}" -eq 0 ]; then
        echo "test.sh: no tracked files (not a git checkout, or nothing committed yet); using find" >&2
        while IFS= read -r f; do
            files+=("$f")
        done < <(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
    fi
    if [ "${#files[@]}" -eq 0 ]; then
        echo "test.sh: no .c/.h files found" >&2
        exit 1
    fi
    echo "+ $clang_format --dry-run --Werror <${#files[@]} files>" >&2
    bad=()
    for f in "${files[@]}"; do
        if ! "$clang_format" --dry-run --Werror "$f"; then
            bad+=("$f")
        fi
    done
    if [ "${#bad[@]}" -ne 0 ]; then
        echo >&2
        echo "test.sh: ${#bad[@]} of ${#files[@]} files are not clang-formatted:" >&2
        printf '  %s\n' "${bad[@]}" >&2
        echo "fix with: clang-format -i <file>" >&2
        exit 1
    fi
    echo "test.sh: all ${#files[@]} files are clang-formatted" >&2
    ;;
esac
