#!/usr/bin/env bash
# The ctest test 'embed' (label install; tests/README.md): iocomp built as a
# subproject, the way a host vendors it:
#   add_subdirectory(iocomp) + iocomp::iocomp            (shared)
#   add_subdirectory(iocomp) + iocomp::iocomp_static     (libiocomp.a)
#   the same with -DIOCOMP_WITH_URING=OFF                (epoll only, no liburing,
#     -DIOCOMP_HAVE_SDT=0 -DIOCOMP_WERROR=ON              no probes, warnings as errors)
# in a C-only parent project (tests/embed/CMakeLists.txt), which refuses to
# configure if iocomp made its tests, benchmarks or tools, enabled C++, or
# set the parent's build type. Then: the consumer builds and runs (it says
# which backend ran: epoll when built without io_uring), its own compile line
# carries none of iocomp's warnings, and a build without io_uring links no
# liburing. Everything is written under one mktemp -d directory.
#
#   tests/embed/run.sh <iocomp source dir> <cmake> <cc>
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: $0 <iocomp source dir> <cmake> <cc>" >&2; exit 2; }
srcdir=$(cd "$1" && pwd)
cmake=$2 cc=$3
here=$(cd "$(dirname "$0")" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/iocomp-embed.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

step() { echo "--- embed: $*"; }
fail() { echo "FAIL embed: $*" >&2; exit 1; }
run() {
    local log=$1; shift
    "$@" > "$log" 2>&1 || { cat "$log" >&2; fail "$(printf '%q ' "$@")"; }
}

jobs=$(nproc 2>/dev/null || echo 2)
for variant in shared static no-uring; do
    b=$tmp/$variant
    target=iocomp::iocomp want_backend= extra=()
    case $variant in
    static) target=iocomp::iocomp_static ;;
    # The smallest build: no liburing, no <sys/sdt.h> probes, warnings as
    # errors (code that only compiles cleanly with every option on fails here).
    no-uring) extra=(-DIOCOMP_WITH_URING=OFF -DIOCOMP_HAVE_SDT=0 -DIOCOMP_WERROR=ON) want_backend=epoll ;;
    esac
    step "$variant: add_subdirectory, $target ${extra[*]}"
    run "$b.configure.log" "$cmake" -S "$here" -B "$b" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DIOCOMP_SOURCE_DIR="$srcdir" \
        -DIOCOMP_TARGET="$target" "${extra[@]}"
    run "$b.build.log" "$cmake" --build "$b" -j "$jobs"
    # The consumer's own compile line: none of iocomp's (PRIVATE) warnings.
    line=$(grep -F '"command"' "$b/compile_commands.json" | grep -F 'consumer/main.c' || true)
    [ -n "$line" ] || fail "$variant: no compile command for the consumer"
    for w in -Wall -Wextra -Wshadow -Werror; do
        ! grep -qF -- "$w" <<< "$line" || fail "$variant: the consumer is compiled with $w: $line"
    done
    out=$("$b/consumer" 2>&1) || { echo "$out" >&2; fail "$variant: consumer exited non-zero"; }
    grep -q '^consumer: ok' <<< "$out" || { echo "$out" >&2; fail "$variant: consumer did not say ok"; }
    echo "$out"
    if [ -n "$want_backend" ]; then
        grep -q "backend $want_backend)" <<< "$out" || fail "$variant: not on $want_backend: $out"
        ! readelf -d "$b/iocomp/libiocomp.so"* 2>/dev/null | grep -q 'NEEDED.*liburing' ||
            fail "$variant: libiocomp.so links liburing"
        ! nm "$b/iocomp/libiocomp.a" 2>/dev/null | grep -q ' U io_uring' ||
            fail "$variant: libiocomp.a references liburing"
    fi
done
echo "embed: all three parents built and ran"
