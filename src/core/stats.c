/*
 * stats.c - statistics, summed from per-worker counters without locks.
 * Each worker writes its own counters (ioc_owner_inc, relaxed); a reader gets
 * each counter whole, and the sum is exact per worker but not a snapshot of
 * all workers at one instant.
 */
#include <errno.h>
#include <string.h>

#include "core/internal.h"

IOCOMP_API int iocomp_get_stats(iocomp_engine *e, iocomp_stats *out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    memset(out, 0, sizeof *out);
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    uint64_t now = ioc_now_ns();
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!w) continue;
        out->completions += ioc_load(&w->st.completions, IOC_RELAXED);
        out->posts_local += ioc_load(&w->st.posts_local, IOC_RELAXED);
        out->steals += ioc_load(&w->st.steals, IOC_RELAXED);
        out->stolen += ioc_load(&w->st.stolen, IOC_RELAXED);
        out->inject_batches += ioc_load(&w->st.inject_batches, IOC_RELAXED);
        out->parks += ioc_load(&w->st.parks, IOC_RELAXED);
        out->io_submitted += ioc_load(&w->st.io_submitted, IOC_RELAXED);
        out->io_inline += ioc_load(&w->st.io_inline, IOC_RELAXED);
        uint64_t seq = ioc_load(&w->cb_seq, IOC_RELAXED);
        if (ioc_load(&w->state, IOC_RELAXED) != W_RUNNING || !(seq & 1)) continue;
        out->threads_busy++;
        /* The oldest running callback, as the monitor sees it. */
        if (seq != ioc_load(&e->mon_seq[i], IOC_RELAXED)) continue;
        uint64_t since = ioc_load(&e->mon_since[i], IOC_RELAXED);
        uint64_t age = now > since ? (now - since) / 1000u : 0;
        if (age >= out->longest_callback_us) {
            out->longest_callback_us = age;
            out->longest_callback_tid = ioc_load(&w->tid, IOC_RELAXED);
        }
    }
    out->posts_remote = ioc_load(&e->inj.posts, IOC_RELAXED);
    ioc_io_stats(e, out);
    out->overflows = ioc_load(&e->inj.ovf_total, IOC_RELAXED);
    out->wakeups = ioc_load(&e->park.wakeups, IOC_RELAXED);
    out->threads_started = ioc_load(&e->started, IOC_RELAXED);
    out->threads_retired = ioc_load(&e->retired, IOC_RELAXED);
    out->thread_start_failures = ioc_load(&e->start_failures, IOC_RELAXED);
    out->threads_live = ioc_load(&e->live, IOC_RELAXED);
    out->threads_parked = ioc_load(&e->park.nidle, IOC_RELAXED);
    out->ports_open = ioc_load(&e->ports_open, IOC_RELAXED);
    out->injections = ioc_load(&e->injections, IOC_RELAXED);
    out->blocked_injections = ioc_load(&e->blocked_injections, IOC_RELAXED);
    out->excess_parks = ioc_load(&e->excess_parks, IOC_RELAXED);
    out->inject_to_run_ns_max = ioc_load(&e->inj_run_max, IOC_RELAXED);
    out->inject_to_run_ns_total = ioc_load(&e->inj_run_total, IOC_RELAXED);
    out->inject_to_run_count = ioc_load(&e->inj_run_count, IOC_RELAXED);
    return 0;
}
