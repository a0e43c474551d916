#!/usr/bin/env bash
# The ctest tests echo.uring / echo.epoll (tests/README.md): tools/iocomp-echo
# as a user runs it. It starts on a free port, echoes what a client sends
# (bash's /dev/tcp: 3 round trips on one connection, one on a second), prints
# one "iocomp-echo: stats ..." line on SIGUSR1 and goes on serving, then exits
# 0 on SIGTERM with every connection closed.
#   tests/echo/run.sh <iocomp-echo> <backend>
set -euo pipefail
echo_bin=$1 backend=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/iocomp-echo-test.XXXXXX")
pid=
cleanup() { [ -z "$pid" ] || kill -9 "$pid" 2> /dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
fail() { echo "FAIL echo: $*" >&2; [ -f "$tmp/err" ] && sed 's/^/  server: /' "$tmp/err" >&2; exit 1; }

# A free port: ask the kernel for one through a listening probe would need a
# helper; try random ones until the server starts.
for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    "$echo_bin" --port "$port" --threads 2 --backend "$backend" 2> "$tmp/err" &
    pid=$!
    for _ in $(seq 50); do
        grep -q "backend $backend" "$tmp/err" 2> /dev/null && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.05
    done
    grep -q "backend $backend" "$tmp/err" && break
    wait "$pid" 2> /dev/null || true
    pid=
done
[ -n "$pid" ] || fail "the server did not start on $backend"

roundtrip() { # fd-number message
    printf '%s' "$2" >&"$1"
    local got
    IFS= read -r -t 5 -N ${#2} got <&"$1" || fail "no echo of '$2'"
    [ "$got" = "$2" ] || fail "sent '$2', got '$got'"
}
exec 3<> "/dev/tcp/127.0.0.1/$port"
roundtrip 3 hello
roundtrip 3 "iocomp echo test"
roundtrip 3 x
exec 4<> "/dev/tcp/127.0.0.1/$port"
roundtrip 4 second

kill -USR1 "$pid"
for _ in $(seq 100); do grep -q '^iocomp-echo: stats ' "$tmp/err" && break; sleep 0.05; done
line=$(grep '^iocomp-echo: stats ' "$tmp/err" | head -1) || true
[ -n "$line" ] || fail "no stats line after SIGUSR1"
kill -0 "$pid" 2> /dev/null || fail "the server exited on SIGUSR1"
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<< "$line"; }
[ "$(val connections)" = 2 ] || fail "stats: connections=$(val connections), want 2: $line"
[ "$(val open)" = 2 ] || fail "stats: open=$(val open), want 2: $line"
[ "$(val completions)" -ge 8 ] || fail "stats: completions=$(val completions), want >= 8: $line"
[ "$(val io_cq_dropped)" = 0 ] || fail "stats: io_cq_dropped=$(val io_cq_dropped): $line"
roundtrip 3 "after the signal" # still serving
exec 3>&- 4>&-

kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
echo "echo ($backend): ok: $line"
