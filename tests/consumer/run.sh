#!/usr/bin/env bash
# The ctest test 'install' (label install; tests/README.md): installs an
# already-built iocomp tree into a temporary prefix and builds and runs
# tests/consumer/main.c against it the four ways a user would:
#   find_package(iocomp) + iocomp::iocomp          (shared)
#   find_package(iocomp) + iocomp::iocomp_static   (libiocomp.a)
#   pkg-config --cflags --libs iocomp              (shared)
#   pkg-config --static --libs iocomp              (libiocomp.a; and, outside
#                                                   sanitizer builds, cc -static)
# and checks that each links what it should, that nothing names a prefix
# other than the one installed to, and that the man pages are installed
# (man -M <prefix>/share/man iocomp_post finds its page).
#
#   tests/consumer/run.sh <build dir> <cmake> <cc> <config> [flags...]
# flags: the build's sanitizer flags (IOCOMP_SAN_FLAGS), used for the consumer
# too: a sanitized libiocomp cannot be used by an unsanitized program (the
# archive references the sanitizer runtime; ASan wants its runtime first in
# the process), so the consumer is built as the library was. Sanitizers
# cannot link -static, so that one variant is left out there (and says so).
# Everything is written under one mktemp -d directory, removed on exit;
# 'cmake --install' itself writes the build tree's install_manifest.txt and
# iocomp.pc, as it always does.
set -euo pipefail

[ $# -ge 4 ] || { echo "usage: $0 <build dir> <cmake> <cc> <config> [flags...]" >&2; exit 2; }
build=$(cd "$1" && pwd)
cmake=$2 cc=$3 config=$4
shift 4
flags=("$@")
src=$(cd "$(dirname "$0")" && pwd)

command -v pkg-config > /dev/null || { echo "install: pkg-config not found" >&2; exit 1; }
command -v readelf > /dev/null || { echo "install: readelf not found (binutils)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/iocomp-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP # so that the EXIT trap cleans up on a ctest timeout too
prefix=$tmp/prefix

step() { echo "--- install: $*"; }
fail() { echo "FAIL install: $*" >&2; exit 1; }
# run <log> <command...>: the command's output goes to the log, shown on failure.
run() {
    local log=$1; shift
    "$@" > "$log" 2>&1 || { cat "$log" >&2; fail "$(printf '%q ' "$@")"; }
}
# needs_shared <binary> yes|no: whether it must load libiocomp.so.
needs_shared() {
    local dyn; dyn=$(readelf -d "$1" 2>/dev/null || true)
    if [ "$2" = yes ]; then
        grep -q 'NEEDED.*\[libiocomp\.so' <<< "$dyn" || fail "$1 does not link libiocomp.so"
    else
        ! grep -q 'NEEDED.*\[libiocomp\.so' <<< "$dyn" || fail "$1 links libiocomp.so, not libiocomp.a"
    fi
}
# consumer <binary>: runs it; it prints "consumer: ok" and exits 0 only if its
# callback ran.
consumer() {
    local out
    out=$("$@" 2>&1) || { echo "$out" >&2; fail "$1 exited non-zero"; }
    grep -q '^consumer: ok' <<< "$out" || { echo "$out" >&2; fail "$1 did not say ok"; }
    echo "$out"
}

step "cmake --install into $prefix"
cfg=()
[ -z "$config" ] || cfg=(--config "$config")
run "$tmp/install.log" "$cmake" --install "$build" --prefix "$prefix" "${cfg[@]}"
pc=$(find "$prefix" -name iocomp.pc -path '*/pkgconfig/*' | head -1)
[ -n "$pc" ] || fail "no iocomp.pc installed under $prefix"
libdir=$(dirname "$(dirname "$pc")")
[ -f "$libdir/libiocomp.a" ] || fail "no libiocomp.a in $libdir"
[ -e "$libdir/libiocomp.so" ] || fail "no libiocomp.so in $libdir"
grep -qx "prefix=$prefix" "$pc" || { cat "$pc" >&2; fail "$pc: prefix is not $prefix"; }
manpage=$(find "$prefix" -name iocomp_post.3 -path '*/man3/*' | head -1)
[ -n "$manpage" ] || fail "no man page iocomp_post.3 installed under $prefix"
if command -v man > /dev/null; then
    mandir=$(dirname "$(dirname "$manpage")")
    [ "$(man -M "$mandir" -w iocomp_post 2>/dev/null)" = "$manpage" ] ||
        fail "man -M $mandir -w iocomp_post does not find $manpage"
fi

cflags=(-Wall -Wextra -Werror "${flags[@]}")

# ---- find_package(iocomp) ---------------------------------------------------------
for target in iocomp iocomp_static; do
    step "find_package(iocomp), iocomp::$target"
    b=$tmp/cmake-$target
    run "$b.configure.log" "$cmake" -S "$src" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="${cflags[*]}" \
        -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
        -DIOCOMP_TARGET="iocomp::$target"
    found=$(sed -n 's/^iocomp_DIR:PATH=//p' "$b/CMakeCache.txt")
    case $found in "$prefix"/*) ;; *) fail "find_package found iocomp in '$found', not under $prefix" ;; esac
    run "$b.build.log" "$cmake" --build "$b"
    if [ $target = iocomp ]; then needs_shared "$b/consumer" yes; else needs_shared "$b/consumer" no; fi
    consumer "$b/consumer"
done

# ---- pkg-config ---------------------------------------------------------------------
export PKG_CONFIG_PATH=$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
pc_cflags=$(pkg-config --cflags iocomp) || fail "pkg-config --cflags iocomp"
pc_libs=$(pkg-config --libs iocomp) || fail "pkg-config --libs iocomp"
pc_static=$(pkg-config --static --libs iocomp) || fail "pkg-config --static --libs iocomp"
echo "pkg-config --cflags --libs: $pc_cflags $pc_libs"
echo "pkg-config --static --libs: $pc_static"
grep -qF -- "-I$prefix/" <<< "$pc_cflags" || fail "--cflags does not name $prefix"
grep -qF -- "-L$libdir" <<< "$pc_libs" || fail "--libs does not name $libdir"
! grep -qF /usr/local <<< "$pc_cflags $pc_static" || fail "pkg-config names /usr/local"

read -ra pc_cflags_w <<< "$pc_cflags"
read -ra pc_libs_w <<< "$pc_libs"
read -ra pc_static_w <<< "$pc_static"

step "pkg-config --cflags --libs (shared)"
run "$tmp/pc-shared.log" "$cc" "${cflags[@]}" -o "$tmp/pc-shared" "$src/main.c" \
    "${pc_cflags_w[@]}" "${pc_libs_w[@]}"
needs_shared "$tmp/pc-shared" yes
LD_LIBRARY_PATH=$libdir consumer "$tmp/pc-shared"

# libiocomp.a by name, everything else as --static says (the system libraries
# shared): every library the archive needs must be in --static's list.
step "pkg-config --static --libs, libiocomp.a"
archive_w=()
for w in "${pc_static_w[@]}"; do
    if [ "$w" = -liocomp ]; then archive_w+=(-l:libiocomp.a); else archive_w+=("$w"); fi
done
run "$tmp/pc-archive.log" "$cc" "${cflags[@]}" -o "$tmp/pc-archive" "$src/main.c" \
    "${pc_cflags_w[@]}" "${archive_w[@]}"
needs_shared "$tmp/pc-archive" no
consumer "$tmp/pc-archive"

if [ ${#flags[@]} -eq 0 ]; then
    step "pkg-config --static --libs, cc -static"
    run "$tmp/pc-static.log" "$cc" "${cflags[@]}" -static -o "$tmp/pc-static" "$src/main.c" \
        "${pc_cflags_w[@]}" "${pc_static_w[@]}"
    ! readelf -d "$tmp/pc-static" 2>/dev/null | grep -q NEEDED || fail "pc-static is not static"
    consumer "$tmp/pc-static"
else
    step "pkg-config --static, cc -static: left out (sanitizer build: ${flags[*]} cannot link -static)"
fi
echo "install: all consumers built and ran"
