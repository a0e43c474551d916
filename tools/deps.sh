#!/usr/bin/env bash
# Installs the Debian 12 packages iocomp needs to build, test and benchmark,
# only those missing. Used by tools/test.sh and tools/bench.sh; run as root or
# with sudo available.
set -euo pipefail
PKGS="cmake make pkg-config gcc g++ libck-dev libjemalloc-dev liburing-dev libbenchmark-dev systemtap-sdt-dev ${IOCOMP_EXTRA_PKGS:-}"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "tools/deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends $missing ||
    { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $missing; }
