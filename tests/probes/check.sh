#!/usr/bin/env bash
# The ctest test 'probes' (tests/README.md): libiocomp.so carries the eight
# USDT probes of src/core/probes.h (provider iocomp) in its .note.stapsdt
# section: submit complete steal park wake inject rescue close. Registered
# only when <sys/sdt.h> was found (IOCOMP_HAVE_SDT).
#   tests/probes/check.sh <libiocomp.so>
set -euo pipefail
lib=$1
notes=$(readelf -n "$lib" 2>/dev/null | awk '/Provider:/ {p=$2} /Name:/ && p == "iocomp" {print $2}' | sort -u)
missing=""
for n in submit complete steal park wake inject rescue close; do
    grep -qx "$n" <<< "$notes" || missing="$missing $n"
done
if [ -n "$missing" ]; then
    echo "FAIL probes: $lib lacks iocomp:{${missing# }}; has: $(echo $notes)" >&2
    exit 1
fi
echo "probes: $(echo $notes | wc -w) iocomp probes in $(basename "$lib"): $(echo $notes)"
