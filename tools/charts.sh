#!/usr/bin/env bash
# Charts of one tools/bench.sh run (gnuplot, PNG), next to its log:
#
#   tools/charts.sh [build dir]      (default <repo>/build-release)
#
# reads the kit logs of that run (bench-kit*.log: the median RESULT line of
# each implementation, the lines the ratio table reads) and writes
# <build dir>/charts/:
#   ratios.png          iocomp against every peer of every workload, as the
#                       same-run ratio "how many times iocomp's figure"
#                       (throughput: iocomp / peer; W5 ns per op: peer /
#                       iocomp), log scale, 1 = parity; one bar per
#                       (workload, peer), each ratio from one kit invocation
#   latency-echo.png    W3 echo at the open-loop rate: p50 / p99 / p99.9 of
#                       each server (log scale)
#   latency-fileread.png  W4 file read, 1 and 2 workers: p50 / p99 / p99.9
#   *.dat               the numbers each chart draws
# Without gnuplot (the Debian package gnuplot-nox) it writes the .dat files
# and says so. tools/bench.sh calls it at the end of every run.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(git -C "$HERE" rev-parse --show-toplevel 2>/dev/null || (cd "$HERE/.." && pwd))"
B=${1:-$ROOT/build-release}
OUT=$B/charts
mkdir -p "$OUT"

# results <logs...>: their median RESULT lines (the per-rep lines start with "#").
results() { grep -h '^RESULT ' "$@" 2>/dev/null || true; }

# ---- ratios: iocomp against each peer, per kit invocation -----------------------
: > "$OUT/ratios.dat"
for log in "$B"/bench-kit.log "$B"/bench-kit-w3-uring.log "$B"/bench-kit-w3-epoll.log \
           "$B"/bench-kit-w4-1w.log "$B"/bench-kit-w4-2w.log; do
    [ -s "$log" ] || continue
    tag=$(basename "$log" .log); tag=${tag#bench-kit}; tag=${tag#-}
    results "$log" | awk -v tag="$tag" '
    function field(line, key) {
        if (match(line, " " key "=[^ ]*")) return substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
        return ""
    }
    {
        w = field($0, "workload"); i = field($0, "impl")
        ops[w, i] = field($0, "ops_per_s"); ns[w, i] = field($0, "ns_per_op")
        if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
        impls[w] = impls[w] " " i
    }
    END {
        for (k = 1; k <= nw; k++) {
            w = order[k]
            n = split(impls[w], im, " ")
            me = ""
            for (j = 1; j <= n; j++) if (im[j] ~ /^iocomp/) { me = im[j]; break }
            if (me == "") continue
            label = w
            if (tag != "" && w == "echo") label = "echo-" (tag ~ /epoll/ ? "epoll" : "uring")
            if (w == "fileread") label = "fileread-" me
            sub(/^sched-/, "", label)
            for (j = 1; j <= n; j++) {
                p = im[j]
                if (p ~ /^iocomp/ || p ~ /^serial/) continue
                if (ns[w, me] != "" && ns[w, me] != "-" && ns[w, p] + 0 > 0) r = ns[w, p] / ns[w, me]
                else if (ops[w, p] + 0 > 0) r = ops[w, me] / ops[w, p]
                else continue
                printf "\"%s / %s\" %.3f\n", label, p, r
            }
        }
    }' >> "$OUT/ratios.dat"
done

# ---- latency: p50 / p99 / p99.9 per implementation --------------------------------
latency() { # <out.dat> <logs...>
    local out=$1; shift
    results "$@" | awk '
    function field(line, key) {
        if (match(line, " " key "=[^ ]*")) return substr(line, RSTART + length(key) + 2, RLENGTH - length(key) - 2)
        return ""
    }
    field($0, "p50_us") != "-" && field($0, "p50_us") != "" {
        printf "\"%s\" %s %s %s\n", field($0, "impl"), field($0, "p50_us"), field($0, "p99_us"), field($0, "p999_us")
    }' > "$out"
}
latency "$OUT/latency-echo.dat" "$B/bench-kit-w3-rate.log"
latency "$OUT/latency-fileread.dat" "$B/bench-kit-w4-1w.log" "$B/bench-kit-w4-2w.log"

if ! command -v gnuplot > /dev/null; then
    echo "charts: gnuplot not installed (Debian: gnuplot-nox): data only, in $OUT"
    exit 0
fi
machine=$(sed -n 's/^Machine: //p' "$B/bench.log" 2>/dev/null | head -1)
rev=$(sed -n '1s/^# iocomp headline benchmarks | \([^|]*\) | \([^|]*\) |.*/\2, \1/p' "$B/bench.log" 2>/dev/null)

plot() { # <png> <title> <gnuplot body>
    gnuplot <<EOF
set terminal pngcairo size 1400,700 noenhanced font "sans,10"
set output "$1"
set title "$2\n$machine${rev:+ ($rev)}"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set grid ytics
set xtics rotate by 45 right scale 0
set bmargin 13
set key top left
$3
EOF
}
made=()
if [ -s "$OUT/ratios.dat" ]; then
    plot "$OUT/ratios.png" "iocomp against each peer, same run (x times the peer; above 1: iocomp ahead)" "
set logscale y
set yrange [0.1:*]
set ylabel 'iocomp / peer (throughput) or peer / iocomp (ns per op)'
plot '$OUT/ratios.dat' using 2:xtic(1) title 'ratio' lc rgb '#3070b0', 1 with lines lw 2 lc rgb '#c03030' title 'parity'"
    made+=(ratios.png)
fi
for w in echo fileread; do
    f=$OUT/latency-$w.dat
    [ -s "$f" ] || continue
    case $w in
    echo) t="W3 echo, open loop: latency per server (us)" ;;
    fileread) t="W4 file read, 4 KiB random, QD 32: latency per reader (us)" ;;
    esac
    plot "$OUT/latency-$w.png" "$t" "
set logscale y
set ylabel 'microseconds'
plot '$f' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p99.9'"
    made+=("latency-$w.png")
done
echo "charts: ${made[*]:-none} in $OUT"
