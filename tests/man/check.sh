#!/usr/bin/env bash
# The ctest test 'man' (tests/README.md): the section 3 pages written by
# tools/manpages.awk cover the exported ABI.
#   - every global function of the version script has <name>.3, with a NAME
#     line, a SYNOPSIS that declares that very function, and a non-empty
#     DESCRIPTION;
#   - the public types have pages (iocomp_config, iocomp_stats,
#     iocomp_overlapped, iocomp_engine, iocomp_port_t, iocomp_complete_cb,
#     IHostIoCompletionManager, ICLRIoCompletionManager);
#   - iocomp.3 lists every page;
#   - with groff: every page formats with no warning (-ww); with man: it renders.
#
#   tests/man/check.sh <man3 dir> <version script>
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 <man3 dir> <map>" >&2; exit 2; }
dir=$1 map=$2
fail=0
bad() { echo "FAIL man: $*" >&2; fail=1; }

[ -f "$dir/iocomp.3" ] || { echo "FAIL man: no $dir/iocomp.3" >&2; exit 1; }
funcs=$(sed -n '/global:/,/local:/p' "$map" | sed -e 's/#.*//' | tr -d ' \t' | grep -E '^[a-z_0-9]+;$' | tr -d ';')
[ -n "$funcs" ] || { echo "FAIL man: no functions read from $map" >&2; exit 1; }
n=0
for f in $funcs; do
    p=$dir/$f.3
    n=$((n + 1))
    [ -f "$p" ] || { bad "$f: no page"; continue; }
    grep -q '^\.SH NAME' "$p" || bad "$f: no NAME"
    grep -q "^$f \\\\- ." "$p" || bad "$f: NAME line does not start with '$f \\-'"
    sed -n '/^\.SH SYNOPSIS/,/^\.SH DESCRIPTION/p' "$p" | grep -q "[ *(]$f(" || bad "$f: SYNOPSIS does not declare $f("
    desc=$(sed -n '/^\.SH DESCRIPTION/,/^\.SH /p' "$p" | grep -vE '^\.(SH|nf|fi)' | tr -d '[:space:]')
    [ -n "$desc" ] || bad "$f: empty DESCRIPTION"
done
for t in iocomp_config iocomp_stats iocomp_overlapped iocomp_engine iocomp_port_t iocomp_complete_cb \
         IHostIoCompletionManager ICLRIoCompletionManager; do
    [ -f "$dir/$t.3" ] || bad "type $t: no page"
done
for p in "$dir"/*.3; do
    name=$(basename "$p" .3)
    [ "$name" = iocomp ] && continue
    grep -q "^\.BR $name (3)" "$dir/iocomp.3" || bad "iocomp.3 does not list $name"
done
if command -v groff > /dev/null; then
    for p in "$dir"/*.3; do
        w=$(groff -man -Tutf8 -ww -z "$p" 2>&1 || true)
        [ -z "$w" ] || bad "$(basename "$p"): groff says: $w"
    done
else
    echo "man: groff not installed, formatting not checked"
fi
if command -v man > /dev/null; then
    out=$(MANWIDTH=80 man -l "$dir/iocomp_post.3" 2>&1 | head -5 || true)
    grep -q 'iocomp_post' <<< "$out" || bad "man -l iocomp_post.3 did not render: $out"
fi
[ $fail -eq 0 ] || exit 1
echo "man: $n functions and $(ls "$dir"/*.3 | wc -l) pages checked"
