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
 * The monitor (one thread per engine) grows the pool without the host's
 * help. While any worker is active it samples every MON_SAMPLE_NS (0.4 ms,
 * about 0.5 ms with nanosleep's overshoot here; 0.25 ms cost a saturated
 * 2-vCPU machine up to 10% of fib(32) in preemptions, 0.6 ms put the
 * injection p99 at 2.2 ms in bench/elastic.c): a worker whose cb_seq is odd
 * and unchanged since the previous sample has been inside one callback for
 * at least a sampling period, and counts as blocked if its thread used less
 * than half of that period on a CPU (its CPU-time clock): a long callback
 * that computes is not blocked, and another thread would only share its
 * core. When work waits (a packet
 * visible in any queue) and the runnable workers (live - blocked) are fewer
 * than the concurrency target, it starts one more thread, up to max, then
 * looks again at the next sample: a new thread per sample at most. Work that
 * waits with no worker blocked (a host that set a low min) grows the pool
 * only after two samples in a row, so a momentary queue does not. Parked
 * workers are woken rather than new ones started.
 *
 * The monitor sleeps while the engine is idle (no worker active, nothing
 * queued for two samples), on its own futex. Whoever makes a worker active
 * pokes it: the waker that pops a parked worker (after its FUTEX_WAKE, so the
 * woken worker does not pay for it before its callback), a parker that takes
 * itself off the stack, a spinner that found work. The Dekker pair: that
 * thread's seq_cst RMW on nidle/nspinning, then a seq_cst load of
 * mon_sleeping; the monitor's seq_cst store of mon_sleeping, a seq_cst fence,
 * then loads of nidle/nspinning/live. Either the monitor sees an active
 * worker and stays up, or the poker sees it asleep and wakes it. It also
 * wakes every 100 ms regardless.
 *
 * Standing down: when blocked callbacks return, more workers are runnable
 * than the target. If that lasts two samples while work waits, the monitor
 * publishes the excess in e->excess; after a callback, a worker that sees it
 * positive claims one unit by CAS, hands its queued packets to the inject
 * queue and parks (it keeps its thread; the keep-alive below retires it if
 * it stays parked). So a pool that grew for blocked callbacks does not keep
 * more threads than CPUs running once they return (no oversubscription),
 * and does not start-and-stop threads under a steady load (hysteresis: two
 * samples to stand down, keep-alive to exit).
 *
 * Retirement: a parked worker above min waits at most keep_alive_ms; if it
 * is still parked then, it leaves the idle stack and exits (park.c). That
 * takes scale_lock, so it never races set_min below min. Parked workers are
 * woken most recent first, so the ones at the bottom of the stack are the
 * ones that time out, and a steady load does not churn threads. Lowering
 * min wakes the parked workers so they time out from then on (park.c P4).
 * Above max (set_max lowered it), an idle worker retires at once by the CAS
 * in ioc_should_retire(); one whose backend slot holds requests (io_uring:
 * its ring) cannot, and sleeps until they complete (park.c P5). Every path
 * decides before it acts on the backend: thread_retire() closes the slot to
 * host hand-offs, so a worker that stays after all reopens it.
 *
 * Failed starts: the monitor retries a thread start that failed (EAGAIN
 * from RLIMIT_NPROC, memory) after 1 ms, doubling up to 1 s, and resets
 * after a start that worked; the pool runs on with the threads it has.
 */
#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/internal.h"
#include "core/probes.h"

#define MON_SAMPLE_NS 400000u
#define MON_SLOW_NS 2000000u
#define MON_IDLE_SLEEP_NS 100000000u
#define START_BACKOFF_MIN_NS 1000000u
#define START_BACKOFF_MAX_NS 1000000000u

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
    if (e->be->slot_init) {
        int r = e->be->slot_init(w);
        if (r < 0) {
            free(w->ring_buf);
            free(w);
            return r;
        }
    }
    w->rng = 0x9E3779B9u ^ (i * 0x85EBCA6Bu) ^ (uint32_t)(uintptr_t)e;
    if (!w->rng) w->rng = 1;
    /* Release: thieves and closers that load the pointer see it initialised. */
    ioc_store(&e->workers[i], w, IOC_RELEASE);
    if (i + 1 > ioc_load(&e->nslots, IOC_RELAXED)) ioc_store(&e->nslots, i + 1, IOC_RELEASE);
    *out = w;
    return 0;
}

/* Workers and the monitor block the host's asynchronous signals, so that a
 * handler never runs on them in the middle of the scheduler. */
static int spawn(pthread_t *t, void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = IOC_FAULT(IOCOMP_FAULT_THREAD) ? EAGAIN : pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
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

/* Starts one worker (scale_lock held). injected_at: the monitor's detection
 * time for a thread started because work waited, else 0. */
static int start_one(iocomp_engine *e, uint64_t injected_at) {
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
    w->frame = NULL;
    w->aside = NULL;
    w->injected_at = injected_at;
    ioc_store(&w->state, W_RUNNING, IOC_RELEASE);
    ioc_fetch_add(&e->live, 1, IOC_SEQ_CST);

    ioc_store(&w->has_cpu_clock, false, IOC_RELAXED);
    r = spawn(&w->thread, ioc_worker_main, w);
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
    while (r == 0 && ioc_load(&e->live, IOC_ACQUIRE) < n) r = start_one(e, 0);
    pthread_mutex_unlock(&e->scale_lock);
    return r;
}

/* The worker found no work: does it go because live > max? Only the excess
 * can win the CAS that takes one from live. The backend is asked first: a
 * refusal (requests only this slot's thread waits for) changes nothing, and
 * the worker parks with them (park.c does not send it back here while its
 * slot holds requests, so an engine above max after set_max() sleeps instead
 * of spinning). An agreement closes the slot to new hand-offs; a worker that
 * then loses the CAS (another took the last unit of excess) reopens it, so
 * no worker that stays keeps a closed slot (audit defect 1: host submits
 * found no open slot and failed with -EAGAIN). */
bool ioc_should_retire(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    uint32_t live = ioc_load(&e->live, IOC_RELAXED);
    if (live <= ioc_load(&e->max_threads, IOC_RELAXED)) return false;
    if (e->be->thread_retire && !e->be->thread_retire(w)) return false;
    while (live > ioc_load(&e->max_threads, IOC_RELAXED)) {
        if (ioc_cas(&e->live, &live, live - 1, IOC_SEQ_CST, IOC_RELAXED)) {
            w->retiring = true;
            return true;
        }
    }
    if (e->be->thread_start) e->be->thread_start(w); /* lost: we stay, reopen the slot */
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
        if (e->be && e->be->slot_fini) e->be->slot_fini(w);
        free(w->ring_buf);
        free(w);
        ioc_store(&e->workers[i], NULL, IOC_RELAXED);
    }
}

/* ---- the monitor ------------------------------------------------------------------------------ */
static void futex_wait_ns(ioc_atomic(uint32_t) *word, uint32_t val, uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static uint32_t active_workers(iocomp_engine *e) {
    uint32_t live = ioc_load(&e->live, IOC_SEQ_CST);
    uint32_t idle = ioc_load(&e->park.nidle, IOC_SEQ_CST) + ioc_load(&e->park.nspinning, IOC_SEQ_CST);
    return live > idle ? live - idle : 0;
}

void ioc_monitor_poke(iocomp_engine *e) {
    if (!ioc_load(&e->mon_sleeping, IOC_SEQ_CST)) return;
    ioc_store(&e->mon_sleeping, 0, IOC_RELAXED);
    if (ioc_xchg(&e->mon_word, 0, IOC_RELEASE) == 1)
        syscall(SYS_futex, (uint32_t *)&e->mon_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Sleeps until poked (or 100 ms), unless the engine is not idle after all. */
static void monitor_sleep(iocomp_engine *e) {
    ioc_store(&e->mon_word, 1, IOC_RELAXED);
    ioc_store(&e->mon_sleeping, 1, IOC_SEQ_CST);
    ioc_fence_full(); /* the monitor's half of the Dekker pair */
    if (active_workers(e) == 0 && !ioc_work_visible(e) && !ioc_load(&e->mon_stop, IOC_ACQUIRE))
        futex_wait_ns(&e->mon_word, 1, MON_IDLE_SLEEP_NS);
    ioc_store(&e->mon_sleeping, 0, IOC_RELAXED);
    ioc_store(&e->mon_word, 0, IOC_RELAXED);
}

static void *monitor_main(void *arg) {
    iocomp_engine *e = arg;
    unsigned idle_samples = 0, waiting_samples = 0, excess_samples = 0;
    uint64_t start_retry_at = 0, start_backoff = 0; /* after a failed thread start */
    while (!ioc_load(&e->mon_stop, IOC_ACQUIRE)) {
        uint64_t now = ioc_now_ns();
        uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE), blocked = 0, busy = 0;
        for (uint32_t i = 0; i < n; i++) {
            struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
            if (!w || ioc_load(&w->state, IOC_RELAXED) != W_RUNNING) continue;
            uint64_t seq = ioc_load(&w->cb_seq, IOC_RELAXED);
            if (!(seq & 1)) continue;
            busy++;
            uint64_t cpu = 0;
            struct timespec ct;
            /* Acquire pairs with the worker's release store of the flag. */
            bool have_cpu = ioc_load(&w->has_cpu_clock, IOC_ACQUIRE) &&
                            clock_gettime((clockid_t)ioc_load(&w->cpu_clock, IOC_RELAXED), &ct) == 0;
            if (have_cpu) cpu = (uint64_t)ct.tv_sec * 1000000000ull + (uint64_t)ct.tv_nsec;
            if (seq == ioc_load(&e->mon_seq[i], IOC_RELAXED)) {
                uint64_t wall = now - e->mon_at[i];
                if (!have_cpu || cpu - e->mon_cpu[i] < wall / 2) blocked++;
                /* In one callback for a whole sample: what its backend slot
                 * holds (io_uring: ready CQEs, unsubmitted SQEs) must not
                 * wait for it. */
                IOC_PROBE2(rescue, e, w->index);
                if (e->be->rescue) e->be->rescue(e, w);
            } else {
                ioc_store(&e->mon_seq[i], seq, IOC_RELAXED);
                ioc_store(&e->mon_since[i], now, IOC_RELAXED);
            }
            e->mon_cpu[i] = cpu;
            e->mon_at[i] = now;
        }
        bool waiting = ioc_work_visible(e);
        waiting_samples = waiting ? waiting_samples + 1 : 0;
        idle_samples = (!waiting && busy == 0 && active_workers(e) == 0) ? idle_samples + 1 : 0;

        {   /* standing down: runnable workers above the target */
            uint32_t live = ioc_load(&e->live, IOC_ACQUIRE);
            uint32_t parked = ioc_load(&e->park.nidle, IOC_ACQUIRE);
            int32_t x = (int32_t)live - (int32_t)parked - (int32_t)blocked - (int32_t)e->concurrency;
            excess_samples = x > 0 ? excess_samples + 1 : 0;
            int32_t want = excess_samples >= 2 ? x : 0;
            if (ioc_load(&e->excess, IOC_RELAXED) != want) ioc_store(&e->excess, want, IOC_RELEASE);
        }
        if (waiting) {
            uint32_t live = ioc_load(&e->live, IOC_ACQUIRE);
            uint32_t parked = ioc_load(&e->park.nidle, IOC_ACQUIRE);
            uint32_t spinning = ioc_load(&e->park.nspinning, IOC_ACQUIRE);
            uint32_t runnable = live > blocked ? live - blocked : 0;
            if (parked && !spinning) {
                if (waiting_samples >= 2) ioc_wake_one(e); /* a safety net: work waits, all asleep */
            } else if (runnable < e->concurrency && live < ioc_load(&e->max_threads, IOC_ACQUIRE) &&
                       (blocked || waiting_samples >= 2) && !parked && now >= start_retry_at) {
                pthread_mutex_lock(&e->scale_lock);
                if (!ioc_load(&e->stopping, IOC_RELAXED) &&
                    ioc_load(&e->live, IOC_RELAXED) < ioc_load(&e->max_threads, IOC_RELAXED)) {
                    if (start_one(e, now) == 0) {
                        ioc_fetch_add(&e->injections, 1, IOC_RELAXED);
                        if (blocked) ioc_fetch_add(&e->blocked_injections, 1, IOC_RELAXED);
                        start_backoff = 0;
                    } else {
                        /* No thread (RLIMIT_NPROC, memory): the pool works
                         * on with what it has; try again after 1 ms, 2, 4...
                         * up to 1 s, not at every sample (audit defect 13:
                         * 600 failed starts in 300 ms). */
                        start_backoff = start_backoff ? start_backoff * 2 : START_BACKOFF_MIN_NS;
                        if (start_backoff > START_BACKOFF_MAX_NS) start_backoff = START_BACKOFF_MAX_NS;
                        start_retry_at = now + start_backoff;
                    }
                }
                pthread_mutex_unlock(&e->scale_lock);
            }
        }
        if (idle_samples >= 2) {
            monitor_sleep(e);
            idle_samples = 0;
            continue;
        }
        /* At max there is nobody to inject: sample every 2 ms (the safety-net
         * wake-up, standing down and the longest-callback figure still run,
         * 5x less often). Every 0.4 ms preempts a saturated 2-vCPU pool for
         * nothing: fib(32) at min = max = 2 ran about 5% faster with no
         * monitor at all. */
        bool at_max = ioc_load(&e->live, IOC_RELAXED) >= ioc_load(&e->max_threads, IOC_RELAXED);
        struct timespec ts = {0, at_max ? MON_SLOW_NS : MON_SAMPLE_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int ioc_monitor_start(iocomp_engine *e) {
    if (spawn(&e->monitor, monitor_main, e) != 0) return -EAGAIN;
    e->has_monitor = true;
    return 0;
}

void ioc_monitor_stop(iocomp_engine *e) {
    if (!e->has_monitor) return;
    ioc_store(&e->mon_stop, 1, IOC_SEQ_CST);
    ioc_store(&e->mon_sleeping, 1, IOC_SEQ_CST); /* make the poke wake it */
    ioc_monitor_poke(e);
    pthread_join(e->monitor, NULL);
    e->has_monitor = false;
}

void ioc_report_stuck(iocomp_engine *e, const char *what) {
    uint64_t now = ioc_now_ns();
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!w || ioc_load(&w->state, IOC_RELAXED) != W_RUNNING) continue;
        uint64_t seq = ioc_load(&w->cb_seq, IOC_RELAXED);
        if (!(seq & 1)) continue;
        uint64_t since = seq == ioc_load(&e->mon_seq[i], IOC_RELAXED) ? ioc_load(&e->mon_since[i], IOC_RELAXED) : now;
        fprintf(stderr, "iocomp: %s: worker %u (tid %d) is inside one callback, for %llu ms at least\n", what, i,
                (int)ioc_load(&w->tid, IOC_RELAXED), (unsigned long long)((now - since) / 1000000u));
    }
}

/* ---- the API ------------------------------------------------------------------------------ */
IOCOMP_API int iocomp_get_min_threads(iocomp_engine *e, uint32_t *out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    *out = ioc_load(&e->min_threads, IOC_ACQUIRE);
    return 0;
}

IOCOMP_API int iocomp_get_max_threads(iocomp_engine *e, uint32_t *out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    *out = ioc_load(&e->max_threads, IOC_ACQUIRE);
    return 0;
}

IOCOMP_API int iocomp_set_min_threads(iocomp_engine *e, uint32_t n) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
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
    while (r == 0 && ioc_load(&e->live, IOC_ACQUIRE) < n) r = start_one(e, 0);
    if (r < 0) ioc_store(&e->min_threads, old, IOC_RELEASE); /* refused: min unchanged */
    pthread_mutex_unlock(&e->scale_lock);
    /* Lowered: workers that parked while live <= min sleep with no timeout
     * (park.c); wake them so they park again with the keep-alive and the
     * ones above the new min can retire (audit defect 9). */
    if (r == 0 && n < old) ioc_wake_all(e);
    return r < 0 ? -EAGAIN : 0;
}

IOCOMP_API int iocomp_set_max_threads(iocomp_engine *e, uint32_t n) {
    if (!e || n == 0) return -EINVAL;
    IOC_FORK_GUARD(e);
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
    IOC_FORK_GUARD(e);
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
