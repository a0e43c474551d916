/*
 * scale.c - how many workers run: start them up to min, retire the excess
 * above max when they are idle, and the min/max/available getters/setters.
 *
 * Theory of operation
 * -------------------
 * `live` counts workers that are alive and not retiring. It rises only under
 * scale_lock (a start) and falls either by a worker's own CAS in
 * ioc_should_retire() (live > max: exactly the excess can win, each CAS
 * taking one from live while it is still above max) or when a worker exits
 * because the engine stops. So `min <= live <= max` holds whenever no
 * set_min/set_max is in progress and no start has failed (invariant 4);
 * after set_max lowers max, live falls to it as the excess workers go idle.
 *
 * Worker slots (e->workers[]) are allocated on first use and reused by later
 * threads; a slot's struct, ring and LIFO outlive its thread (thieves may
 * still look at them) and are freed with the engine. An exited thread is
 * joined at the next scaling step or at destroy, so thread counts return to
 * baseline (invariant 10).
 *
 * Blocked-callback detection and keep-alive retirement (growing past the
 * CPU count while callbacks block, shrinking back to min after idling) build
 * on this bookkeeping; see docs/ARCHITECTURE.md for what is implemented.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static int worker_slot_init(iocomp_engine *e, uint32_t i, struct ioc_worker **out) {
    struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
    if (w) {
        *out = w;
        return 0;
    }
    if (IOC_FAULT(IOCOMP_FAULT_ALLOC)) return -ENOMEM;
    w = aligned_alloc(IOC_CACHELINE, sizeof *w);
    if (!w) return -ENOMEM;
    memset(w, 0, sizeof *w);
    w->ring_buf = IOC_FAULT(IOCOMP_FAULT_ALLOC)
                      ? NULL
                      : aligned_alloc(IOC_CACHELINE, (size_t)e->local_cap * sizeof(struct ioc_pkt));
    if (!w->ring_buf) {
        free(w);
        return -ENOMEM;
    }
    ck_ring_init(&w->ring, e->local_cap);
    w->e = e;
    w->index = i;
    w->rng = 0x9E3779B9u ^ (i * 0x85EBCA6Bu) ^ (uint32_t)(uintptr_t)e;
    if (!w->rng) w->rng = 1;
    int r = ioc_heap_worker_init(w);
    if (r < 0) {
        free(w->ring_buf);
        free(w);
        return r;
    }
    /* Release: thieves and closers that load the pointer see it initialised. */
    ioc_store(&e->workers[i], w, IOC_RELEASE);
    if (i + 1 > ioc_load(&e->nslots, IOC_RELAXED)) ioc_store(&e->nslots, i + 1, IOC_RELEASE);
    *out = w;
    return 0;
}

void ioc_join_exited(iocomp_engine *e) {
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (w && ioc_load(&w->state, IOC_ACQUIRE) == W_EXITED) {
            pthread_join(w->thread, NULL);
            ioc_store(&w->state, W_FREE, IOC_RELAXED);
        }
    }
}

/* Starts one worker (scale_lock held). */
static int start_one(iocomp_engine *e) {
    ioc_join_exited(e);
    uint32_t n = ioc_load(&e->nslots, IOC_RELAXED), i;
    for (i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_RELAXED);
        if (!w || ioc_load(&w->state, IOC_ACQUIRE) == W_FREE) break;
    }
    if (i >= IOCOMP_THREADS_LIMIT) return -EAGAIN;
    struct ioc_worker *w;
    int r = worker_slot_init(e, i, &w);
    if (r < 0) return r;
    w->retiring = false;
    w->depth = 0;
    ioc_store(&w->state, W_RUNNING, IOC_RELEASE);
    ioc_fetch_add(&e->live, 1, IOC_SEQ_CST);

    /* Workers block the host's asynchronous signals, so that a handler never
     * runs on a worker in the middle of the scheduler. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = IOC_FAULT(IOCOMP_FAULT_THREAD) ? EAGAIN : pthread_create(&w->thread, NULL, ioc_worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        ioc_fetch_sub(&e->live, 1, IOC_SEQ_CST);
        ioc_store(&w->state, W_FREE, IOC_RELEASE);
        ioc_fetch_add(&e->start_failures, 1, IOC_RELAXED);
        return -EAGAIN;
    }
    ioc_fetch_add(&e->started, 1, IOC_RELAXED);
    return 0;
}

int ioc_scale_start(iocomp_engine *e, uint32_t n) {
    int r = 0;
    pthread_mutex_lock(&e->scale_lock);
    while (r == 0 && ioc_load(&e->live, IOC_ACQUIRE) < n) r = start_one(e);
    pthread_mutex_unlock(&e->scale_lock);
    return r;
}

bool ioc_should_retire(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    uint32_t live = ioc_load(&e->live, IOC_RELAXED);
    while (live > ioc_load(&e->max_threads, IOC_RELAXED)) {
        if (ioc_cas(&e->live, &live, live - 1, IOC_SEQ_CST, IOC_RELAXED)) {
            w->retiring = true;
            return true;
        }
    }
    return false;
}

void ioc_worker_exited(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    if (!w->retiring) ioc_fetch_sub(&e->live, 1, IOC_SEQ_CST);
    ioc_fetch_add(&e->retired, 1, IOC_RELAXED);
    /* Release: the joiner sees everything this thread did. */
    ioc_store(&w->state, W_EXITED, IOC_RELEASE);
}

void ioc_scale_stop_all(iocomp_engine *e) {
    pthread_mutex_lock(&e->scale_lock);
    ioc_store(&e->stopping, 1, IOC_SEQ_CST);
    ioc_wake_all(e);
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!w) continue;
        uint32_t st = ioc_load(&w->state, IOC_ACQUIRE);
        if (st == W_RUNNING || st == W_EXITED) {
            /* A worker may park again between our wake-all and its exit
             * check; it re-checks `stopping` after pushing itself (park.c),
             * and we keep waking until it is gone. */
            while (ioc_load(&w->state, IOC_ACQUIRE) == W_RUNNING) {
                ioc_wake_all(e);
                sched_yield();
            }
            pthread_join(w->thread, NULL);
            ioc_store(&w->state, W_FREE, IOC_RELAXED);
        }
    }
    pthread_mutex_unlock(&e->scale_lock);
}

void ioc_scale_fini(iocomp_engine *e) {
    for (uint32_t i = 0; i < IOCOMP_THREADS_LIMIT; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_RELAXED);
        if (!w) continue;
        ioc_heap_worker_fini(w);
        free(w->ring_buf);
        free(w);
        ioc_store(&e->workers[i], NULL, IOC_RELAXED);
    }
}

/* ---- the API ------------------------------------------------------------------------------ */
IOCOMP_API int iocomp_get_min_threads(iocomp_engine *e, uint32_t *out) {
    if (!e || !out) return -EINVAL;
    *out = ioc_load(&e->min_threads, IOC_ACQUIRE);
    return 0;
}

IOCOMP_API int iocomp_get_max_threads(iocomp_engine *e, uint32_t *out) {
    if (!e || !out) return -EINVAL;
    *out = ioc_load(&e->max_threads, IOC_ACQUIRE);
    return 0;
}

IOCOMP_API int iocomp_set_min_threads(iocomp_engine *e, uint32_t n) {
    if (!e) return -EINVAL;
    if (n > IOCOMP_THREADS_LIMIT) return -ERANGE;
    pthread_mutex_lock(&e->scale_lock);
    if (ioc_load(&e->stopping, IOC_RELAXED)) {
        pthread_mutex_unlock(&e->scale_lock);
        return -ESHUTDOWN;
    }
    if (n == 0 || n > ioc_load(&e->max_threads, IOC_RELAXED)) {
        pthread_mutex_unlock(&e->scale_lock);
        return -EINVAL;
    }
    uint32_t old = ioc_load(&e->min_threads, IOC_RELAXED);
    ioc_store(&e->min_threads, n, IOC_RELEASE);
    int r = 0;
    while (r == 0 && ioc_load(&e->live, IOC_ACQUIRE) < n) r = start_one(e);
    if (r < 0) ioc_store(&e->min_threads, old, IOC_RELEASE); /* refused: min unchanged */
    pthread_mutex_unlock(&e->scale_lock);
    return r < 0 ? -EAGAIN : 0;
}

IOCOMP_API int iocomp_set_max_threads(iocomp_engine *e, uint32_t n) {
    if (!e || n == 0) return -EINVAL;
    if (n > IOCOMP_THREADS_LIMIT) return -ERANGE;
    pthread_mutex_lock(&e->scale_lock);
    if (n < ioc_load(&e->min_threads, IOC_RELAXED)) {
        pthread_mutex_unlock(&e->scale_lock);
        return -EINVAL;
    }
    /* seq_cst: a worker that parks after this reads the new max (park.c). */
    ioc_store(&e->max_threads, n, IOC_SEQ_CST);
    bool excess = ioc_load(&e->live, IOC_SEQ_CST) > n;
    ioc_join_exited(e);
    pthread_mutex_unlock(&e->scale_lock);
    if (excess) ioc_wake_all(e); /* parked workers wake, see live > max, retire */
    return 0;
}

IOCOMP_API int iocomp_get_available_threads(iocomp_engine *e, uint32_t *out) {
    if (!e || !out) return -EINVAL;
    uint32_t busy = 0, n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (w && ioc_load(&w->state, IOC_RELAXED) == W_RUNNING && (ioc_load(&w->cb_seq, IOC_RELAXED) & 1))
            busy++;
    }
    uint32_t max = ioc_load(&e->max_threads, IOC_ACQUIRE);
    *out = busy >= max ? 0 : max - busy;
    return 0;
}
