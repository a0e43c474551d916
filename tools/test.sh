#!/usr/bin/env bash
# Runs every test of iocomp, as CI does: installs what is missing, then builds
# and runs the whole ctest suite three times:
#   build-test   optimised, with the test-only fault seams (IOCOMP_FAULT_INJECTION)
#   build-asan   AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer)
#   build-tsan   ThreadSanitizer
# and, after the first, tools/faults.sh: system-call faults injected by
# strace into tests of build-test (counted as one test).
# Sanitizer builds scale the big loop counts down (IOCOMP_TEST_SCALE) so the
# whole run stays well under 60 minutes on 2 cores.
#   tools/test.sh            all three
#   tools/test.sh test|asan|tsan   one of them
set -euo pipefail
cd "$(dirname "$0")/.."
# groff and man: the 'man' test formats every page and renders one with them.
# redis-server, redis-tools and curl: the example servers' tests (tests/kv,
# tests/http) drive them with the real clients, and compare iocomp-kv's
# replies with redis-server's.
# strace: tools/faults.sh injects system-call faults under the test build.
IOCOMP_EXTRA_PKGS="groff-base man-db redis-server redis-tools curl strace ${IOCOMP_EXTRA_PKGS:-}" tools/deps.sh
JOBS=$(nproc)
ONLY=${1:-all}
failed=""
total_pass=0 total_fail=0

build_and_test() { # name scale cmake-args...
    local name=$1 scale=$2; shift 2
    [ "$ONLY" = all ] || [ "$ONLY" = "$name" ] || return 0
    echo "=== $name: configure and build"
    cmake -S . -B "build-$name" -DIOCOMP_BUILD_BENCH=OFF -DIOCOMP_FAULT_INJECTION=ON \
        -DIOCOMP_WERROR=ON "$@" > "build-$name.configure.log" || { cat "build-$name.configure.log"; return 1; }
    cmake --build "build-$name" -j"$JOBS"
    echo "=== $name: ctest"
    local rc=0
    IOCOMP_TEST_SCALE=$scale ctest --test-dir "build-$name" --output-on-failure --timeout 300 \
        2>&1 | tee "build-$name.ctest.log" || rc=1
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    # ctest's summary: "N% tests passed, F tests failed out of T"
    local t f
    t=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "build-$name.ctest.log" | tail -1)
    f=$(sed -n 's/.*passed, \([0-9]*\) tests failed out of.*/\1/p' "build-$name.ctest.log" | tail -1)
    if [ -n "$t" ] && [ -n "$f" ]; then
        total_pass=$((total_pass + t - f)); total_fail=$((total_fail + f))
    else
        rc=1; total_fail=$((total_fail + 1)) # no summary: count the build as a failure
    fi
    [ "$rc" -eq 0 ] || failed="$failed $name"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/tsan.supp}

build_and_test test 1 -DCMAKE_BUILD_TYPE=RelWithDebInfo
# System-call faults by strace against the test build (tools/faults.sh, ~2 min).
if [ "$ONLY" = all ] || [ "$ONLY" = test ]; then
    echo "=== test: system-call faults (tools/faults.sh)"
    if tools/faults.sh build-test; then total_pass=$((total_pass + 1)); else failed="$failed faults"; total_fail=$((total_fail + 1)); fi
fi
build_and_test asan 4 -DCMAKE_BUILD_TYPE=Debug "-DIOCOMP_SANITIZE=address;undefined"
build_and_test tsan 10 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIOCOMP_SANITIZE=thread

if [ -n "$failed" ]; then
    echo "tools/test.sh: FAILED builds:$failed"
    echo "$total_pass passed, $total_fail failed"
    exit 1
fi
echo "tools/test.sh: all builds passed"
echo "$total_pass passed, $total_fail failed"
