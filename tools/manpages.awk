# manpages.awk - section 3 man pages from the contract blocks of iocomp's
# public headers (POSIX awk; Debian's mawk runs it).
#
#   awk -v outdir=DIR -v version=X.Y.Z -f tools/manpages.awk include/iocomp.h \
#       include/iocomp/hosting.h
#
# One page per IOCOMP_API function and per documented typedef, and iocomp(3)
# listing them all. A page's text is the header's own comment, unchanged:
#   - a function gets the comment block right above it; consecutive
#     declarations under one comment share it (and name each other in SEE
#     ALSO); a function after a "/* ==== Title" section comment also gets
#     that section's text (the asynchronous operations' common contract);
#   - a typedef gets the comment above it and its whole definition (field
#     comments included) as its synopsis; a COM vtable typedef (XVtbl) is the
#     page of its interface X, under its header's overview comment.
# Written by CMake at build time (CMakeLists.txt, "man pages"), installed to
# share/man/man3; the ctest test 'man' checks that every exported function
# has a page (tests/man/check.sh).

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }

# Comment text without the /* * */ markers.
function strip_comment_line(s) {
    sub(/^[ \t]*\/\*+[ \t]?/, "", s)
    sub(/[ \t]*\*+\/[ \t]*$/, "", s)
    sub(/^[ \t]*\*[ \t]?/, "", s)
    return s
}

# roff-safe text: backslashes, and a leading . or ' would be a request.
function roff(s) {
    gsub(/\\/, "\\e", s)
    if (s ~ /^[.']/) s = "\\&" s
    return s
}

function first_sentence(text,    s, i) {
    s = text
    gsub(/\n/, " ", s)
    s = trim(s)
    i = index(s, ". ")
    if (i > 0) s = substr(s, 1, i)
    sub(/\.$/, "", s)
    if (length(s) > 76) {
        s = substr(s, 1, 73)
        sub(/[ \t]+[^ \t]*$/, "", s)
        s = s "..."
    }
    return s
}

function emit_block(f, text,    n, lines, i) {
    n = split(text, lines, "\n")
    print ".nf" > f
    for (i = 1; i <= n; i++) print roff(lines[i]) > f
    print ".fi" > f
}

function page(name, kind, synopsis, text, section_text, group,    f, up, others, n, g, i) {
    f = outdir "/" name ".3"
    up = toupper(name)
    print ".TH " up " 3 \"\" \"iocomp " version "\" \"iocomp manual\"" > f
    print ".SH NAME" > f
    print name " \\- " roff(first_sentence(text == "" ? kind : text)) > f
    print ".SH SYNOPSIS" > f
    print ".nf" > f
    print ".B #include <" header ">" > f
    print ".PP" > f
    n = split(synopsis, lines_, "\n")
    for (i = 1; i <= n; i++) print roff(lines_[i]) > f
    print ".fi" > f
    if (hdr_link != "") {
        print ".PP" > f
        print "Link with \\fI-liocomp\\fP (pkg-config: \\fIiocomp\\fP)." > f
    }
    print ".SH DESCRIPTION" > f
    if (text != "") emit_block(f, text)
    else print "The contract is in the comments of the synopsis above." > f
    if (section_text != "") {
        print ".SH COMMON TO THESE OPERATIONS" > f
        emit_block(f, section_text)
    }
    print ".SH SEE ALSO" > f
    others = ""
    n = split(group, g, " ")
    for (i = 1; i <= n; i++)
        if (g[i] != name && g[i] != "") others = others ".BR " g[i] " (3),\n"
    printf "%s.BR iocomp (3)\n", others > f
    close(f)
    npages++
    pname[npages] = name
    pdesc[npages] = first_sentence(text == "" ? kind : text)
}

# A group of declarations under one comment ends: write its pages.
function flush_group(    i, grp) {
    if (ndecl == 0) return
    grp = ""
    for (i = 1; i <= ndecl; i++) grp = grp " " dname[i]
    for (i = 1; i <= ndecl; i++) page(dname[i], "function", dtext[i], gcomment, dsection[i], grp)
    ndecl = 0
}

BEGIN {
    if (outdir == "") outdir = "."
    if (version == "") version = "?"
    npages = 0
    hdr_link = "yes"
}

FNR == 1 {
    flush_group()
    header = FILENAME
    sub(/^.*include\//, "", header)
    incomment = 0; comment = ""; section = ""; pending = ""; gcomment = ""
    indecl = 0; intypedef = 0; ndecl = 0
    overview_next = 1 # the file's first comment: its overview
}

# ---- inside a declaration or typedef that spans lines
indecl {
    decl = decl "\n" $0
    if ($0 ~ /;[ \t]*$/) { indecl = 0; add_decl(decl) }
    next
}
intypedef {
    tdef = tdef "\n" $0
    if ((tstruct && $0 ~ /^}[^;]*;/) || (!tstruct && $0 ~ /;[ \t]*$/)) { intypedef = 0; add_typedef(tdef) }
    next
}

# ---- comments
incomment {
    if ($0 ~ /\*\//) {
        incomment = 0
        line = strip_comment_line($0)
        if (trim(line) != "") comment = comment "\n" line
        end_comment()
    } else {
        comment = comment "\n" strip_comment_line($0)
    }
    next
}
/^[ \t]*\/\*/ {
    flush_group()
    comment = strip_comment_line($0)
    if ($0 ~ /\*\//) { end_comment(); next }
    incomment = 1
    next
}

# ---- declarations
/^[ \t]*IOCOMP_API[ \t]/ {
    decl = $0
    if ($0 ~ /;[ \t]*$/) add_decl(decl); else indecl = 1
    next
}
/^typedef[ \t]/ {
    flush_group()
    tdef = $0
    tstruct = ($0 ~ /{[ \t]*$/)
    if ($0 ~ /;[ \t]*$/) add_typedef(tdef); else intypedef = 1
    next
}
# Preprocessor lines keep the pending comment (a #define between a comment
# and its function, as IOCOMP_TIMER_ABS before iocomp_timer); other code
# ends it.
/^[ \t]*#/ { next }
/^[ \t]*$/ { next }
{ flush_group(); pending = ""; gcomment = "" }

function end_comment(    c) {
    c = comment
    sub(/^\n+/, "", c)
    sub(/\n+$/, "", c)
    if (overview_next) {
        file_overview = c
        if (overview == "") overview = c # iocomp(3): the first header's
        overview_next = 0
        return
    }
    if (c ~ /^=+ /) {
        # "/* ==== Title ====" : a section; its text applies to what follows.
        section = c
        sub(/^[^\n]*\n?/, "", section)
        sub(/^[ \t]*\n/, "", section)
        pending = ""
        return
    }
    pending = c
}

function add_decl(d,    name, s) {
    s = d
    gsub(/\n/, " ", s)
    if (!match(s, /[A-Za-z_][A-Za-z0-9_]*[ \t]*\(/)) return
    name = substr(s, RSTART, RLENGTH)
    sub(/[ \t]*\($/, "", name)
    if (ndecl == 0) gcomment = pending
    ndecl++
    dname[ndecl] = name
    sub(/^[ \t]*IOCOMP_API[ \t]+/, "", d)
    dtext[ndecl] = d
    dsection[ndecl] = section
}

function add_typedef(d,    s, name, n, w) {
    s = d
    gsub(/\n/, " ", s)
    if (s ~ /\(\*[A-Za-z_][A-Za-z0-9_]*\)/) {            # function pointer
        match(s, /\(\*[A-Za-z_][A-Za-z0-9_]*\)/)
        name = substr(s, RSTART + 2, RLENGTH - 3)
    } else {
        sub(/;[ \t]*$/, "", s)
        n = split(s, w, /[ \t}*]+/)
        name = w[n]
    }
    if (name ~ /Vtbl$/) {
        # A COM interface: its vtable with each method's contract, under the
        # header's overview.
        sub(/Vtbl$/, "", name)
        page(name, "", d, file_overview, "", "")
        pending = ""
        return
    }
    if (pending == "") return                            # an undocumented alias
    page(name, "type", d, pending, "", "")
    pending = ""
}

END {
    flush_group()
    f = outdir "/iocomp.3"
    print ".TH IOCOMP 3 \"\" \"iocomp " version "\" \"iocomp manual\"" > f
    print ".SH NAME" > f
    print "iocomp \\- I/O completion ports and a work-stealing completion thread pool for Linux" > f
    print ".SH SYNOPSIS" > f
    print ".nf" > f
    print ".B #include <iocomp.h>" > f
    print ".B #include <iocomp/hosting.h>" > f
    print ".fi" > f
    print ".PP" > f
    print "Link with \\fI-liocomp\\fP (pkg-config: \\fIiocomp\\fP)." > f
    print ".SH DESCRIPTION" > f
    emit_block(f, overview)
    print ".SH PAGES" > f
    for (i = 1; i <= npages; i++) {
        print ".TP" > f
        print ".BR " pname[i] " (3)" > f
        print roff(pdesc[i]) > f
    }
    close(f)
}
