#!/usr/bin/env bash
# Headline benchmarks: iocomp against the peer kit, in one run, on this machine.
#
#   tools/bench.sh                 REPS=5 repetitions of everything (~20 min on 2 cores)
#   QUICK=1 tools/bench.sh         smoke run: the kit's --quick sizes, REPS=1 (~4 min)
#
# Steps:
#   1. installs the Debian packages that are missing (apt-get; sudo when not root)
#   2. builds iocomp in Release into build-release/ (tests off), with the
#      benchmarks in build-release/bench/
#   3. copies the peer kit (PEERS_DIR, default <repo>/../shared/peers; it may
#      be read-only) to build-release/peers and runs its build.sh there;
#      without a kit (a clone with nothing beside it) steps 3-4 are skipped
#      and the table's kit rows say n/a: step 5's programs carry their own
#      baselines (raw liburing, a raw futex hand-off, jemalloc)
#   4. runs the kit's W1 post, W2 spawn and W5 sched with iocomp as the extra
#      implementation of each (W1_EXTRA, W2_EXTRA, W5_EXTRA), so every ratio
#      below comes from one run.sh invocation; then the kit's W3 echo and W4
#      fileread, one invocation per iocomp variant, because run.sh takes one
#      extra implementation per workload and the ratios need the peers of the
#      same invocation:
#        W3 closed loop, tools/iocomp-echo on io_uring (W3_EXTRA_SERVER)
#        W3 closed loop, tools/iocomp-echo on epoll
#        W3 open loop at ECHO_OPEN_RATE msgs/s, iocomp-echo on io_uring
#        W4 with bench/iocomp-fileread -w 1 (W4_EXTRA), then -w 2
#      (ECHO_PORT is a random base in 20000-59999 unless set, so that another
#      echo benchmark on the machine cannot answer our client)
#   5. runs iocomp-nop (NOP-like ingestion at batch 1/4/32/256 against a raw
#      liburing loop in the same process, REPS repetitions inside), iocomp-wake (wake-up latency vs a raw futex hand-off, idle CPU)
#      REPS times, iocomp-elastic (thread injection, retirement and idle CPU
#      of the elastic pool under a square-wave load; ~45 s a run, -q ~10 s)
#      ELASTIC_REPS times, and iocomp-ovalloc (overlapped alloc+free vs
#      jemalloc) with REPS repetitions
#   6. prints the kit's summary table (summarize.sh) and a table of the
#      same-run ratios that the brief's performance targets are stated in,
#      headed by the machine: CPU model, kernel, the W0 physics (the kit's,
#      run after step 3, and bench/iocomp-physics, iocomp's own probe, which
#      is all there is without a kit), and tools/iocomp-info (backend,
#      io_uring features)
#   7. draws PNG charts of the run (tools/charts.sh, gnuplot) into
#      build-release/charts/: iocomp against every peer as same-run ratios,
#      and the W3 / W4 latency distributions
#
# Everything printed is also in build-release/bench.log (the kit's part alone
# in build-release/bench-kit*.log, one per invocation, what summarize.sh reads).
#
# Settings (environment): REPS [5]  QUICK [0]  WORKERS [2]  PEERS_DIR
#   BUILD_DIR [<repo>/build-release]  JOBS [nproc]  WAKE_SECS [0.5 per phase; quick 0.2]
#   OVALLOC_MIN_TIME [0.2 s per benchmark; quick 0.05]  SKIP_INSTALL [0]  SKIP_KIT [0]
#   ELASTIC_REPS [1]  ELASTIC_ARGS [none; quick -q]
#   ECHO_THREADS [1] (iocomp-echo workers)  ECHO_OPEN_RATE [50000]  ECHO_PORT [random]
#   NOP_N [500000; quick 100000] (requests per iocomp-nop run)
#   ONLY [all] (space-separated subset of: post spawn sched echo fileread nop wake elastic ovalloc)
#   and the kit's own (POST_N, FIB_ITERS, SCHED_BENCHES, QUIET_MAX, ...; see peers/README.md).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
BUILD_DIR=${BUILD_DIR:-$ROOT/build-release}
PEERS_DIR=${PEERS_DIR:-$ROOT/../shared/peers}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    REPS=${REPS:-1}; QUICK_ARG=--quick
    WAKE_SECS=${WAKE_SECS:-0.2}; OVALLOC_MIN_TIME=${OVALLOC_MIN_TIME:-0.05}
    ELASTIC_ARGS=${ELASTIC_ARGS:--q}
else
    REPS=${REPS:-5}; QUICK_ARG=
    WAKE_SECS=${WAKE_SECS:-0.5}; OVALLOC_MIN_TIME=${OVALLOC_MIN_TIME:-0.2}
    ELASTIC_ARGS=${ELASTIC_ARGS:-}
fi
ELASTIC_REPS=${ELASTIC_REPS:-1}
ECHO_THREADS=${ECHO_THREADS:-1} ECHO_OPEN_RATE=${ECHO_OPEN_RATE:-50000}
if [ "$QUICK" = 1 ]; then NOP_N=${NOP_N:-100000}; else NOP_N=${NOP_N:-500000}; fi
ONLY=${ONLY:-all}
# The kit's W3 servers listen on ECHO_PORT + (0..199); a base of our own keeps
# another echo benchmark on this machine from answering our client.
export ECHO_PORT=${ECHO_PORT:-$((20000 + RANDOM % 40000))}
export REPS WORKERS=${WORKERS:-2}
JOBS=${JOBS:-$(nproc)}
LOG=$BUILD_DIR/bench.log
KITLOG=$BUILD_DIR/bench-kit.log
# One kit log per W3 / W4 invocation (each has its own peer rows).
KITLOG_W3=$BUILD_DIR/bench-kit-w3-uring.log
KITLOG_W3E=$BUILD_DIR/bench-kit-w3-epoll.log
KITLOG_W3R=$BUILD_DIR/bench-kit-w3-rate.log
KITLOG_W4A=$BUILD_DIR/bench-kit-w4-1w.log
KITLOG_W4B=$BUILD_DIR/bench-kit-w4-2w.log
KITLOGS="$KITLOG $KITLOG_W3 $KITLOG_W3E $KITLOG_W3R $KITLOG_W4A $KITLOG_W4B"
BENCH_BIN=$BUILD_DIR/bench
TOOLS_BIN=$BUILD_DIR/tools

say() { printf '\n### %s\n' "$*"; }
want() { [ "$ONLY" = all ] || case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# --- 1. packages -------------------------------------------------------------------
install_packages() { IOCOMP_EXTRA_PKGS="gnuplot-nox ${IOCOMP_EXTRA_PKGS:-}" "$HERE/deps.sh"; }

# --- 2. build ------------------------------------------------------------------------
build_iocomp() {
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DIOCOMP_BUILD_TESTS=OFF \
        -DIOCOMP_BUILD_BENCH=ON -DIOCOMP_BUILD_TOOLS=ON > "$BUILD_DIR/configure.log" 2>&1 ||
        { cat "$BUILD_DIR/configure.log"; return 1; }
    cmake --build "$BUILD_DIR" -j "$JOBS"
    local b
    for b in iocomp-post iocomp-sched iocomp-fib iocomp-wake iocomp-elastic iocomp-ovalloc iocomp-nop \
        iocomp-fileread ../tools/iocomp-echo ../tools/iocomp-info; do
        [ -x "$BENCH_BIN/$b" ] || { echo "not built: $BENCH_BIN/$b" >&2; return 1; }
    done
}

# --- 3. the peer kit --------------------------------------------------------------------
# Copy the sources only (not a bin/ or build/ that may sit next to them), over
# any earlier copy, so the kit's own build folders are reused between runs.
copy_peers() {
    [ -f "$PEERS_DIR/run.sh" ] || { echo "no peer kit at $PEERS_DIR (set PEERS_DIR)" >&2; return 1; }
    mkdir -p "$BUILD_DIR/peers"
    chmod -R u+w "$BUILD_DIR/peers"
    tar -C "$PEERS_DIR" --exclude=./bin --exclude=./build -cf - . | tar -C "$BUILD_DIR/peers" -xf -
    chmod -R u+w "$BUILD_DIR/peers"
    "$BUILD_DIR/peers/build.sh"
}

# --- machine state (like the kit's wait_quiet, for our own two programs) -------------------
wait_quiet() {
    local max=${QUIET_MAX:-15} wait=${QUIET_WAIT:-120} start=$SECONDS a b busy
    [ "$wait" -gt 0 ] 2>/dev/null || return 0
    while :; do
        a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
        busy=$(echo "$a $b" | awk '{ t = 0; for (i = 2; i <= 9; i++) { d[i] = $(i + 11) - $i; t += d[i] }
            if (t == 0) t = 1; printf "%.0f", 100 * (d[2] + d[3] + d[4] + d[7] + d[8]) / t }')
        [ "$busy" -le "$max" ] && return 0
        if [ $((SECONDS - start)) -ge "$wait" ]; then
            echo "#   WARNING: machine still ${busy}% busy after ${wait}s; measuring anyway"; return 0
        fi
        echo "#   machine ${busy}% busy (other processes), waiting"; sleep 4
    done
}

# --- 4.-5. measurements -------------------------------------------------------------------
# --- the machine: what every figure below depends on ---------------------------------------
# CPU model, kernel, what iocomp runs here (tools/iocomp-info: backend and its
# optional features), and the kit's W0 physics (a cache line between two
# threads, a futex wake-up, a bare system call), so a table from a near
# machine (line ~75 ns, syscall ~150 ns) is never read as one from a far one.
MACHINE=""
machine_header() {
    local cpu kern info w0=""
    cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
    kern=$(uname -r)
    info=$("$TOOLS_BIN/iocomp-info" 2>&1 | tr '\n' ';' | sed 's/;$//; s/;/; /g')
    say "machine"
    echo "# cpu: ${cpu:-unknown} ($(nproc) CPUs), kernel $kern"
    echo "# iocomp-info: $info"
    if [ "${SKIP_KIT:-0}" != 1 ] && [ -x "$BUILD_DIR/peers/run.sh" ]; then
        "$BUILD_DIR/peers/run.sh" physics > "$BUILD_DIR/bench-physics.log" 2>&1 || true
        w0=$(awk '/^RESULT/ { w = ""; n = ""; for (i = 1; i <= NF; i++) { split($i, kv, "=");
                if (kv[1] == "workload") w = kv[2]; if (kv[1] == "ns_per_op") n = kv[2] }
                if (w == "physics-line") printf "line %.0f ns, ", n
                if (w == "physics-futex") printf "futex wake %.1f us, ", n / 1000
                if (w == "physics-syscall") printf "syscall %.0f ns, ", n
                if (w == "physics-yield") printf "yield %.0f ns, ", n }' "$BUILD_DIR/bench-physics.log" | sed 's/, $//')
        echo "# W0 physics (kit, medians of 3): ${w0:-not measured (see $BUILD_DIR/bench-physics.log)}"
    fi
    # iocomp's own probe, always (the only W0 figures when no kit is there).
    local own
    own=$({ "$BENCH_BIN/iocomp-physics" 2>&1 || true; } | awk '/^PHYSICS_SUMMARY/ { for (i = 2; i <= NF; i++) { split($i, kv, "=");
            if (kv[1] == "line_ns") printf "line %.0f ns, ", kv[2]
            if (kv[1] == "futex_us") printf "futex wake %.1f us, ", kv[2]
            if (kv[1] == "syscall_ns") printf "syscall %.0f ns, ", kv[2]
            if (kv[1] == "yield_ns") printf "yield %.0f ns, ", kv[2]
            if (kv[1] == "cpus") printf "CPUs %s, ", kv[2] } }' | sed 's/, $//')
    echo "# W0 physics (iocomp-physics, its own probe): ${own:-not measured}"
    [ -n "$w0" ] || w0=$own
    MACHINE="${cpu:-unknown CPU}, kernel $kern; ${w0:-W0 not measured}; $info"
}

run_kit() {
    local kit=$BUILD_DIR/peers/run.sh
    local echo_cmd="$TOOLS_BIN/iocomp-echo --port {PORT} --threads $ECHO_THREADS"
    local read_cmd="$BENCH_BIN/iocomp-fileread -f {FILE} -n {READS} -q {QD} -b {BS}"
    if want post; then
        say "W1 post (kit + iocomp)"
        W1_EXTRA="iocomp:$BENCH_BIN/iocomp-post -n {N} -w {WORKERS}" "$kit" post $QUICK_ARG | tee -a "$KITLOG"
    fi
    if want spawn; then
        say "W2 spawn (kit + iocomp)"
        W2_EXTRA="iocomp:$BENCH_BIN/iocomp-fib -n {FIB_N} -c {FIB_CUTOFF} -i {FIB_ITERS} -w {WORKERS}" \
            "$kit" spawn $QUICK_ARG | tee -a "$KITLOG"
    fi
    if want sched; then
        say "W5 sched (kit + iocomp)"
        W5_EXTRA="iocomp:$BENCH_BIN/iocomp-sched -b {BENCH} -i {ITERS} -w {WORKERS}" \
            "$kit" sched $QUICK_ARG | tee -a "$KITLOG"
    fi
    if want echo; then
        # ECHO_RATE is the kit's open-loop switch: unset for the closed-loop runs.
        say "W3 echo, closed loop (kit + iocomp-echo on io_uring, $ECHO_THREADS worker(s))"
        ECHO_RATE= W3_EXTRA_SERVER="iocomp:$echo_cmd --backend uring" W3_EXTRA_THREADS=$ECHO_THREADS \
            "$kit" echo $QUICK_ARG | tee "$KITLOG_W3"
        say "W3 echo, closed loop (kit + iocomp-echo on epoll, $ECHO_THREADS worker(s))"
        ECHO_RATE= W3_EXTRA_SERVER="iocomp-epoll:$echo_cmd --backend epoll" W3_EXTRA_THREADS=$ECHO_THREADS \
            "$kit" echo $QUICK_ARG | tee "$KITLOG_W3E"
        say "W3 echo, open loop at $ECHO_OPEN_RATE msgs/s (kit + iocomp-echo on io_uring)"
        ECHO_RATE=$ECHO_OPEN_RATE W3_EXTRA_SERVER="iocomp:$echo_cmd --backend uring" \
            W3_EXTRA_THREADS=$ECHO_THREADS "$kit" echo $QUICK_ARG | tee "$KITLOG_W3R"
    fi
    if want fileread; then
        say "W4 fileread (kit + iocomp-fileread, 1 worker)"
        W4_EXTRA="iocomp-1w:$read_cmd -w 1" "$kit" fileread $QUICK_ARG | tee "$KITLOG_W4A"
        say "W4 fileread (kit + iocomp-fileread, 2 workers)"
        W4_EXTRA="iocomp-2w:$read_cmd -w 2" "$kit" fileread $QUICK_ARG | tee "$KITLOG_W4B"
    fi
}

run_nop() {
    want nop || return 0
    say "NOP-like ingestion vs raw liburing: $BENCH_BIN/iocomp-nop -r $REPS -n $NOP_N (medians of $REPS)"
    wait_quiet
    "$BENCH_BIN/iocomp-nop" -r "$REPS" -n "$NOP_N" 2>&1 || echo "# FAILED: iocomp-nop exited with status $?"
}

run_wake() {
    want wake || return 0
    local r
    say "wake-up latency: $BENCH_BIN/iocomp-wake -w $WORKERS -d $WAKE_SECS, $REPS run(s)"
    for r in $(seq 1 "$REPS"); do
        wait_quiet
        echo "# wake run $r/$REPS"
        "$BENCH_BIN/iocomp-wake" -w "$WORKERS" -d "$WAKE_SECS" || echo "# FAILED: iocomp-wake exited with status $?"
    done
}

run_elastic() {
    want elastic || return 0
    local r
    say "elastic pool, square-wave load: $BENCH_BIN/iocomp-elastic $ELASTIC_ARGS, $ELASTIC_REPS run(s)"
    for r in $(seq 1 "$ELASTIC_REPS"); do
        wait_quiet
        echo "# elastic run $r/$ELASTIC_REPS"
        # shellcheck disable=SC2086  # ELASTIC_ARGS is a list of flags
        "$BENCH_BIN/iocomp-elastic" $ELASTIC_ARGS || echo "# FAILED: iocomp-elastic exited with status $?"
    done
}

run_ovalloc() {
    want ovalloc || return 0
    say "overlapped alloc+free: $BENCH_BIN/iocomp-ovalloc --benchmark_repetitions=$REPS"
    wait_quiet
    "$BENCH_BIN/iocomp-ovalloc" --benchmark_repetitions="$REPS" --benchmark_report_aggregates_only=true \
        --benchmark_min_time="$OVALLOC_MIN_TIME" || echo "# FAILED: iocomp-ovalloc exited with status $?"
}

run_own() { run_nop; run_wake; run_elastic; run_ovalloc; }

# --- 6. tables -----------------------------------------------------------------------------
ratios() { # $1 = whole log (wake, elastic, ovalloc, nop lines), then the kit logs (median RESULT lines)
    awk -v W="$WORKERS" -v RATE="$ECHO_OPEN_RATE" '
    function field(line, key) {
        if (match(line, " " key "=[^ ]*")) return substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
        return ""
    }
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function fmt(x) { return x == "" ? "n/a" : sprintf("%.2f", x) }
    function row(bench, what, x, op, target,   ok) {
        if (x == "") ok = "n/a"
        else if (op == ">=") ok = (x + 0 >= target) ? "yes" : "**no**"
        else ok = (x + 0 <= target) ? "yes" : "**no**"
        printf "| %s | %s | %s | %s %s | %s |\n", bench, what, fmt(x), op, target, ok
    }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "" : (a + 0) / (b + 0) }
    FNR == NR {  # the whole log: our own programs
        if ($1 == "WAKE_SUMMARY") {
            spin = spin " " field($0, "spin_window_p50_us"); pvf = pvf " " field($0, "parked_vs_futex")
            idle = idle " " field($0, "idle_cpu_pct"); park = park " " field($0, "parked_p50_us")
            fut = fut " " field($0, "futex_p50_us")
        }
        if ($1 == "ELASTIC_SUMMARY") {
            elp99 = elp99 " " field($0, "inject_p99_ms"); elback = elback " " field($0, "back_to_min_max_ms")
            elidle = elidle " " field($0, "idle_min_cpu_pct"); elok = elok " " field($0, "back_to_min_ok")
        }
        if ($1 == "OVALLOC_SUMMARY") {
            ov = field($0, "pair_ratio"); ovm = field($0, "pair_ratio_vs_malloc")
            ovr = field($0, "remote_ratio")
        }
        if ($1 == "NOP_SUMMARY") {
            b = field($0, "batch"); nb[++nbatches] = b
            nopr[b] = field($0, "ratio"); nopo[b] = field($0, "overhead_ns"); nopv[b] = field($0, "ratio_vs_nop")
            nopi[b] = field($0, "iocomp_ops_per_s"); nopw[b] = field($0, "raw_ops_per_s"); nopop = field($0, "op")
        }
        next
    }
    /^RESULT / {  # a kit log: medians only (rep lines start with "#"); W3/W4 logs get a tag
        t = FILENAME; sub(/.*\//, "", t); sub(/^bench-kit-?/, "", t); sub(/\.log$/, "", t)
        k = (t == "" ? "" : t "|") field($0, "workload") "|" field($0, "impl")
        ops[k] = field($0, "ops_per_s"); ns[k] = field($0, "ns_per_op")
        cpu[k] = field($0, "cpu_us_per_op"); p99[k] = field($0, "p99_us")
    }
    END {
        print "| benchmark | same-run figure | value | target | met |"
        print "| --- | --- | --- | --- | --- |"
        row("W1 post", "iocomp / mutex-pool (ops/s)", ratio(ops["post|iocomp"], ops["post|mutex-pool"]), ">=", 1.5)
        row("W1 post", "iocomp / tokio (ops/s)", ratio(ops["post|iocomp"], ops["post|tokio"]), ">=", 3)
        row("W2 fib(32)", "iocomp / tbb (ops/s)", ratio(ops["spawn|iocomp"], ops["spawn|tbb"]), ">=", 1.3)
        row("W2 fib(32)", "iocomp / ideal-" W "x-serial (ops/s)",
            ratio(ops["spawn|iocomp"], ops["spawn|ideal-" W "x-serial"]), ">=", 0.85)
        n = split("spawn_many yield_many ping_pong chained_spawn", B, " ")
        for (i = 1; i <= n; i++) {
            w = "sched-" B[i]
            row("W5 " B[i], "iocomp / tokio (ns/op)", ratio(ns[w "|iocomp"], ns[w "|tokio"]), "<=", B[i] == "spawn_many" ? 0.75 : 0.5)
            row("W5 " B[i], "iocomp / mutex-pool (ns/op)", ratio(ns[w "|iocomp"], ns[w "|mutex-pool"]), "<=", 1)
        }
        row("wake", "p50 in the spin window, 2 us spacing (us)", median(spin), "<=", 1)
        row("wake", "parked p50 / futex p50, 2000 us spacing", median(pvf), "<=", 1.1)
        row("wake", "engine CPU at 2000 us spacing (% of a core)", median(idle), "<=", 2)
        row("elastic", "injection p99 (ms)", median(elp99), "<=", 2)
        row("ovalloc", "iocomp / jemalloc mallocx+dallocx, one worker", ov, "<=", 1.5)
        best = ""; bestn = ""
        n = split("epoll-1t libuv tokio go", P, " ")
        for (i = 1; i <= n; i++) {
            x = ops["w3-uring|echo|" P[i]]
            if (x != "" && (best == "" || x + 0 > best + 0)) { best = x; bestn = P[i] }
        }
        row("W3 echo, io_uring", "iocomp / best peer (" (bestn == "" ? "n/a" : bestn) ") (msgs/s)", ratio(ops["w3-uring|echo|iocomp"], best), ">=", 1)
        row("W3 echo, io_uring", "iocomp / tokio (server CPU us per msg)", ratio(cpu["w3-uring|echo|iocomp"], cpu["w3-uring|echo|tokio"]), "<=", 0.8)
        row("W3 echo, io_uring", "iocomp / tokio (p99 at " RATE " msgs/s offered)", ratio(p99["w3-rate|echo|iocomp"], p99["w3-rate|echo|tokio"]), "<=", 1)
        row("W3 echo, epoll", "iocomp-epoll / epoll-1t (msgs/s)", ratio(ops["w3-epoll|echo|iocomp-epoll"], ops["w3-epoll|echo|epoll-1t"]), ">=", 0.95)
        row("W4 fileread", "iocomp 1 worker / raw-uring (reads/s)", ratio(ops["w4-1w|fileread|iocomp-1w"], ops["w4-1w|fileread|raw-uring"]), ">=", 0.9)
        row("W4 fileread", "iocomp 2 workers / fio-psync 2 jobs (reads/s)", ratio(ops["w4-2w|fileread|iocomp-2w"], ops["w4-2w|fileread|fio-psync"]), ">=", 1)
        row("W4 fileread", "iocomp 2 workers / libuv (reads/s)", ratio(ops["w4-2w|fileread|iocomp-2w"], ops["w4-2w|fileread|libuv"]), ">=", 3)
        for (i = 1; i <= nbatches; i++) {
            b = nb[i]
            if (b == 1) row("NOP ingestion, batch 1", "iocomp / raw liburing, same op (" nopop ")", nopr[b], ">=", 0.9)
            else if (b + 0 >= 32) row("NOP ingestion, batch " b, "iocomp / raw liburing, same op (" nopop ")", nopr[b], ">=", 0.85)
        }
        printf "\nReference figures (medians): wake parked p50 %s us, futex p50 %s us; ovalloc iocomp / jemalloc malloc+free (fast path) %s, freed on another worker / mallocx %s.\n",
            fmt(median(park)), fmt(median(fut)), fmt(ovm), fmt(ovr)
        printf "elastic (keep-alive 100 ms): back to min, worst cycle %s ms (cycles within keep-alive + 10 %%:%s); idle CPU at min %s %% of a core (medians over runs where several).\n",
            fmt(median(elback)), elok == "" ? " n/a" : elok, fmt(median(elidle))
        printf "W1 ops/s: iocomp %s, mutex-pool %s, tokio %s, ck-ring-raw %s.\n",
            ops["post|iocomp"], ops["post|mutex-pool"], ops["post|tokio"], ops["post|ck-ring-raw"]
        printf "W3 closed loop msgs/s (io_uring run): iocomp %s, epoll-1t %s, libuv %s, tokio %s, go %s; server CPU us/msg: iocomp %s, tokio %s, epoll-1t %s.\n",
            ops["w3-uring|echo|iocomp"], ops["w3-uring|echo|epoll-1t"], ops["w3-uring|echo|libuv"], ops["w3-uring|echo|tokio"],
            ops["w3-uring|echo|go"], cpu["w3-uring|echo|iocomp"], cpu["w3-uring|echo|tokio"], cpu["w3-uring|echo|epoll-1t"]
        printf "W3 closed loop msgs/s (epoll run): iocomp-epoll %s, epoll-1t %s; server CPU us/msg: iocomp-epoll %s, epoll-1t %s.\n",
            ops["w3-epoll|echo|iocomp-epoll"], ops["w3-epoll|echo|epoll-1t"], cpu["w3-epoll|echo|iocomp-epoll"], cpu["w3-epoll|echo|epoll-1t"]
        printf "W3 open loop at %s msgs/s, p99 us: iocomp %s, tokio %s, epoll-1t %s, libuv %s, go %s.\n", RATE,
            p99["w3-rate|echo|iocomp"], p99["w3-rate|echo|tokio"], p99["w3-rate|echo|epoll-1t"], p99["w3-rate|echo|libuv"], p99["w3-rate|echo|go"]
        printf "W4 reads/s: iocomp-1w %s vs raw-uring %s (1w run); iocomp-2w %s vs fio-psync %s, libuv %s, raw-uring %s (2w run).\n",
            ops["w4-1w|fileread|iocomp-1w"], ops["w4-1w|fileread|raw-uring"], ops["w4-2w|fileread|iocomp-2w"],
            ops["w4-2w|fileread|fio-psync"], ops["w4-2w|fileread|libuv"], ops["w4-2w|fileread|raw-uring"]
        for (i = 1; i <= nbatches; i++) {
            b = nb[i]
            printf "NOP batch %s (%s): iocomp %s/s, raw %s/s, ratio %s, iocomp costs %s ns more per request; iocomp / raw IORING_OP_NOP %s.\n",
                b, nopop, nopi[b], nopw[b], nopr[b], nopo[b], nopv[b]
        }
    }' "$@"
}

main() {
    echo "# iocomp headline benchmarks | $(date -u +%Y-%m-%dT%H:%M:%SZ) | $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo no-git)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty') | REPS=$REPS QUICK=$QUICK WORKERS=$WORKERS"
    if [ "${SKIP_INSTALL:-0}" != 1 ]; then say "packages"; install_packages; fi
    say "build (Release) in $BUILD_DIR"
    build_iocomp
    if [ "${SKIP_KIT:-0}" != 1 ] && [ ! -f "$PEERS_DIR/run.sh" ]; then
        # A clone with nothing beside it: the programs that carry their own
        # baseline (raw liburing, a raw futex hand-off, jemalloc) still run.
        say "no peer kit at $PEERS_DIR: the kit's workloads (W0-W5) are skipped; set PEERS_DIR to run them"
        SKIP_KIT=1
    fi
    if [ "${SKIP_KIT:-0}" != 1 ]; then
        say "peer kit from $PEERS_DIR"
        copy_peers
    fi
    machine_header
    if [ "${SKIP_KIT:-0}" != 1 ]; then run_kit; fi
    run_own
    local f
    for f in $KITLOGS; do
        [ -s "$f" ] || continue
        say "kit summary (medians of $REPS; $f)"
        "$BUILD_DIR/peers/summarize.sh" "$f"
    done
    say "targets (same-run ratios)"
    echo "Machine: $MACHINE"
    echo
    # shellcheck disable=SC2086  # KITLOGS is a list of paths without spaces
    ratios "$LOG.part" $KITLOGS
    echo
    echo "# total time: $((SECONDS / 60)) min $((SECONDS % 60)) s"
}

mkdir -p "$BUILD_DIR"
for f in $KITLOGS; do : > "$f"; done  # never reuse an older run's kit figures
# The whole output goes to the log; the ratio table reads what was logged so far.
main 2>&1 | tee "$LOG.part"
rc=${PIPESTATUS[0]}
mv -f "$LOG.part" "$LOG"
echo "log: $LOG"
"$HERE/charts.sh" "$BUILD_DIR" || echo "charts: failed (the run's figures are in the log)"
exit "$rc"
