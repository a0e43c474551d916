#!/usr/bin/env bash
# The ctest test 'abi' (label abi; tests/README.md): checks that the shared
# library exports exactly what its version scripts and headers say.
#
#   tests/abi/check.sh <libiocomp.so> <project version> --map <file>... --header <file>...
#
# Three sets of function names must be equal:
#   exported  the defined dynamic symbols of <libiocomp.so> (readelf --dyn-syms),
#             each with its version (name@@NODE)
#   map       the names under "global:" of every --map (GNU ld version scripts)
#   headers   the functions declared on a line starting with IOCOMP_API in
#             every --header (so the fault build passes include/iocomp/testing.h)
# and each exported name must carry the version of the map node listing it.
# Also: nothing but those functions and the version nodes' own symbols is
# exported (no data, no unversioned symbol), the first header's
# IOCOMP_VERSION_* macros are the project's version, and the soname follows the rule
# of the README: libiocomp.so.0.<minor> in 0.x, libiocomp.so.<major> after,
# with a node IOCOMP_<major>.<minor> (0.x) in the first map.
set -euo pipefail

usage() { echo "usage: $0 <libiocomp.so> <version> --map <file>... --header <file>..." >&2; exit 2; }
[ $# -ge 2 ] || usage
lib=$1 version=$2; shift 2
maps=() headers=()
while [ $# -gt 0 ]; do
    case $1 in
        --map) [ $# -ge 2 ] || usage; maps+=("$2"); shift 2 ;;
        --header) [ $# -ge 2 ] || usage; headers+=("$2"); shift 2 ;;
        *) usage ;;
    esac
done
[ ${#maps[@]} -gt 0 ] && [ ${#headers[@]} -gt 0 ] || usage
command -v readelf > /dev/null || { echo "abi: readelf not found (binutils)" >&2; exit 1; }
[ -f "$lib" ] || { echo "abi: $lib not found" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/iocomp-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
: > "$tmp/tokens"
errors=0
fail() { echo "FAIL abi: $*" >&2; errors=$((errors + 1)); }

# ---- the maps: "node name" per global name (comments: # to end of line, /* */)
for m in "${maps[@]}"; do
    [ -f "$m" ] || { echo "abi: map $m not found" >&2; exit 1; }
    sed -e 's/#.*//' "$m" | tr '\n' ' ' | sed -e 's:/\*[^*]*\*\+\([^/*][^*]*\*\+\)*/: :g' \
        -e 's/[[:space:]]*:/:/g' -e 's/[{};]/ & /g' | tr -s ' \t' '\n' | awk '
        $0 == "" { next }
        !in_node && $0 == "{" { in_node = 1; mode = ""; node = pending; print "node " node; next }
        !in_node && $0 == ";" { pending = ""; next }
        !in_node { pending = $0; next }
        $0 == "}" { in_node = 0; pending = ""; next }
        $0 == "global:" { mode = "global"; next }
        $0 == "local:" { mode = "local"; next }
        $0 == ";" { next }
        mode == "global" && /[*?[]/ { print "pattern " $0; next }
        mode == "global" { print "sym " node " " $0; next }
        ' >> "$tmp/tokens" || { echo "abi: cannot parse $m" >&2; exit 1; }
done
awk '$1 == "node" { print $2 }' "$tmp/tokens" > "$tmp/nodes"
awk '$1 == "sym" { print $3, $2 }' "$tmp/tokens" | sort > "$tmp/map.ver"
cut -d' ' -f1 "$tmp/map.ver" > "$tmp/map"
while read -r p; do fail "the map's global list names a pattern ($p): list each function by name"; done \
    < <(awk '$1 == "pattern" { print $2 }' "$tmp/tokens")
dups=$(uniq -d "$tmp/map")
[ -z "$dups" ] || fail "named twice in the maps: $(paste -sd" " <<< "$dups")"
sort -u -o "$tmp/map" "$tmp/map"
[ -s "$tmp/map" ] || fail "no global names in ${maps[*]}"

# ---- the headers: IOCOMP_API <type> name(...)
: > "$tmp/headers"
for h in "${headers[@]}"; do
    [ -f "$h" ] || { echo "abi: header $h not found" >&2; exit 1; }
    while IFS= read -r line; do
        case $line in *'('*) ;; *) fail "$h: cannot read the name of: $line"; continue ;; esac
        name=$(sed -e 's/(.*//' -e 's/[[:space:]]*$//' <<< "$line" | grep -oE '[A-Za-z_][A-Za-z0-9_]*$' || true)
        [ -n "$name" ] && echo "$name" >> "$tmp/headers" || fail "$h: cannot read the name of: $line"
    done < <(grep -E '^[[:space:]]*IOCOMP_API[[:space:]]' "$h" || true)
done
sort -o "$tmp/headers" "$tmp/headers"
dups=$(uniq -d "$tmp/headers")
[ -z "$dups" ] || fail "declared twice in the headers: $(paste -sd" " <<< "$dups")"
sort -u -o "$tmp/headers" "$tmp/headers"

# ---- the library: defined dynamic symbols
readelf --dyn-syms -W "$lib" | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" { print $4, $5, $7, $8 }' > "$tmp/dyn"
: > "$tmp/exported.ver"
while read -r type bind ndx name; do
    sym=${name%%@*} ver=""
    [ "$sym" = "$name" ] || ver=${name##*@}
    if [ "$ndx" = ABS ] && [ "$type" = OBJECT ] && [ -z "$ver" ] && grep -qxF "$sym" "$tmp/nodes"; then
        continue # a version node's own symbol
    fi
    if [ "$type" != FUNC ] && [ "$type" != IFUNC ]; then
        fail "exports $name ($type $bind): only the IOCOMP_API functions may be exported"
        continue
    fi
    [ -n "$ver" ] || fail "exports $sym without a version (is the version script linked?)"
    echo "$sym ${ver:-none}" >> "$tmp/exported.ver"
done < "$tmp/dyn"
sort -o "$tmp/exported.ver" "$tmp/exported.ver"
cut -d' ' -f1 "$tmp/exported.ver" > "$tmp/exported"

# ---- compare
report() { # <what> <file>
    [ -s "$2" ] && fail "$1: $(tr '\n' ' ' < "$2")"
    return 0
}
comm -23 "$tmp/headers" "$tmp/exported" > "$tmp/d1"; report "declared IOCOMP_API but not exported" "$tmp/d1"
comm -13 "$tmp/headers" "$tmp/exported" > "$tmp/d2"; report "exported but not declared IOCOMP_API in ${headers[*]}" "$tmp/d2"
comm -23 "$tmp/headers" "$tmp/map" > "$tmp/d3"; report "declared IOCOMP_API but missing from ${maps[*]}" "$tmp/d3"
comm -13 "$tmp/headers" "$tmp/map" > "$tmp/d4"; report "in ${maps[*]} but not declared IOCOMP_API" "$tmp/d4"
join "$tmp/map.ver" "$tmp/exported.ver" | awk '$2 != $3 { print $1 "@" $3 " (map: " $2 ")" }' > "$tmp/d5"
report "exported with another version than its map node" "$tmp/d5"

# ---- soname
major=${version%%.*} rest=${version#*.} minor=${version#*.}; minor=${minor%%.*}
[ "$rest" != "$version" ] || { echo "abi: bad version $version" >&2; exit 2; }
if [ "$major" = 0 ]; then want=libiocomp.so.0.$minor node=IOCOMP_0.$minor; else want=libiocomp.so.$major node=IOCOMP_$major.$minor; fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = "$want" ] || fail "soname is '${soname:-none}', the rule for $version says $want"
if [ "$major" = 0 ]; then
    first=$(awk '$1 == "node" { print $2; exit }' "$tmp/tokens")
    [ "$first" = "$node" ] || fail "the first map's first node is '${first:-none}', version $version wants $node"
fi

# ---- the header's version macros say the project's version
hv=$(awk '/^#define IOCOMP_VERSION_(MAJOR|MINOR|PATCH) / { v[$2] = $3 }
          END { print v["IOCOMP_VERSION_MAJOR"] "." v["IOCOMP_VERSION_MINOR"] "." v["IOCOMP_VERSION_PATCH"] }' "${headers[0]}")
[ "$hv" = "$version" ] || fail "${headers[0]##*/} says IOCOMP_VERSION $hv, the project is $version"

n=$(wc -l < "$tmp/exported")
if [ "$errors" -ne 0 ]; then
    echo "abi: $errors problem(s); $lib exports $n functions, ${maps[*]} list $(wc -l < "$tmp/map"), the headers declare $(wc -l < "$tmp/headers")" >&2
    exit 1
fi
nodes=$(cut -d' ' -f2 "$tmp/exported.ver" | sort -u | paste -sd' ')
echo "abi: ok: $soname exports $n functions ($nodes), as ${maps[*]##*/} and ${#headers[@]} headers say"
