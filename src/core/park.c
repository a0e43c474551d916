/*
 * park.c - idle workers: a stack of parked workers, futex sleep and wake-up.
 *
 * Theory of operation
 * -------------------
 * A worker that found no work spins for a bounded time (worker.c), then parks:
 * it pushes itself on the engine's idle stack (most recently parked on top,
 * so the next wake-up goes to the worker whose cache is warmest and the ones
 * at the bottom stay asleep), sets its futex word to 1, increments nidle, and
 * only then looks at every queue once more. A publisher (a post, a batch
 * moved, a drained ring) first makes its packet visible, then calls
 * ioc_notify(), which wakes the top of the stack if nobody is searching.
 *
 * No lost wake-up (invariant 2) is the store-buffer (Dekker) pattern:
 *     publisher:  make packet visible ; fence(seq_cst) ; read nspinning, nidle
 *     parker:     nidle++ (seq_cst)   ; fence(seq_cst) ; read the queues
 * The two fences are ordered one way or the other in the single total order
 * of seq_cst operations: either the parker's queue read sees the packet (and
 * it unparks itself), or the publisher's read sees nidle > 0 (and wakes a
 * worker). A searching worker (nspinning > 0) makes a publisher skip the
 * wake-up; the spinner decrements nspinning with a seq_cst RMW before its own
 * park fence, and if it found work as the last searcher it calls ioc_notify()
 * itself (worker.c), so a skipped wake-up is always passed on.
 *
 * Invariants
 *   P1 A worker is in the idle stack iff w->parked, both under the park lock;
 *      nidle equals the stack's length whenever the lock is free.
 *   P2 futex_word is 1 from the moment a worker pushes itself until someone
 *      pops it (a waker, or the worker itself when its re-check finds work);
 *      the popper stores 0 (release) and then FUTEX_WAKEs. The sleeper waits
 *      only while the word is 1, so a wake-up between its check and its
 *      FUTEX_WAIT is not lost (the kernel compares the word).
 *   P3 Worker structs are never freed before the engine, so a waker may touch
 *      a worker it popped even if that worker has already moved on.
 *   P4 Keep-alive: a worker parks with a timeout (keep_alive_ms) while
 *      live > min. If it times out still on the stack, it takes itself off
 *      (under scale_lock, then the park lock, the same order as everywhere),
 *      lowers live (never below min) and exits. A waker that popped it first
 *      wins: the worker then sees word 0 and runs. The backend is asked
 *      (thread_retire, which closes the slot) only after the park lock said
 *      the worker would go, and a worker that stays reopens its slot.
 *      set_min() wakes every parked worker when it lowers min, so those that
 *      parked with no timeout (live <= the old min) park again with one.
 *   P5 A worker above max parks like any other while its backend slot holds
 *      requests only it waits for (slot_holds): their completions wake it
 *      and it retires after them; without such requests it leaves at once
 *      to retire (scale.c).
 */
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/internal.h"
#include "core/probes.h"

/* Returns false when the timeout (ns, 0 = none) expired. */
static int futex_wait(ioc_atomic(uint32_t) *word, uint32_t val, uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, ns ? &ts : NULL, NULL, 0);
    return !(r == -1 && errno == ETIMEDOUT);
}

/* Takes w, which is on the idle stack, off it (park lock held). seq_cst on
 * nidle: the monitor's Dekker pair (scale.c). */
static void stack_remove(struct ioc_park *pk, struct ioc_worker *w) {
    struct ioc_worker **pp = &pk->top;
    while (*pp != w) pp = &(*pp)->park_next;
    *pp = w->park_next;
    w->park_next = NULL;
    w->parked = false;
    ioc_fetch_sub(&pk->nidle, 1, IOC_SEQ_CST);
    ioc_store(&w->futex_word, 0, IOC_RELAXED);
}

/* P4: called after a keep-alive timeout. 1: we left the stack to exit;
 * 0: stay (at min, or popped by a waker, or the backend holds requests only
 * this slot's thread waits for); -1: scale_lock was busy (a scaling step or
 * destroy holds it; we must not block on it), retry soon.
 *
 * Decide, then act: the backend's thread_retire() closes the slot to new
 * hand-offs when it agrees, so it is called only once the park lock said we
 * would go, and a worker that stays after all (a waker popped it between the
 * two looks) reopens its slot with thread_start(). It cannot be called under
 * the park lock: the backend takes its slot lock, and paths that hold a slot
 * lock reach the park lock (uring's reaps into the inject queue under it,
 * on a kernel that refuses SQEs, call ioc_notify). live and
 * min only change under scale_lock (or fall by ioc_should_retire's CAS, which
 * only makes a second look stricter), so the first look's "live > min" still
 * holds at the second unless live fell meanwhile. */
static bool keep_alive_may_go(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    pthread_mutex_lock(&e->park.lock);
    bool go = w->parked && ioc_load(&e->live, IOC_SEQ_CST) > ioc_load(&e->min_threads, IOC_SEQ_CST);
    pthread_mutex_unlock(&e->park.lock);
    return go;
}

static int keep_alive_expired(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    struct ioc_park *pk = &e->park;
    if (pthread_mutex_trylock(&e->scale_lock) != 0) return -1;
    if (!keep_alive_may_go(w)) {
        pthread_mutex_unlock(&e->scale_lock);
        return 0;
    }
    /* The backend may hold requests only this slot's thread waits for
     * (io_uring: its ring): then the worker stays, parked. */
    if (e->be->thread_retire && !e->be->thread_retire(w)) {
        pthread_mutex_unlock(&e->scale_lock);
        return 0;
    }
    bool retire = false;
    pthread_mutex_lock(&pk->lock);
    uint32_t live = ioc_load(&e->live, IOC_SEQ_CST);
    if (w->parked && live > ioc_load(&e->min_threads, IOC_SEQ_CST)) {
        stack_remove(pk, w);
        ioc_fetch_sub(&e->live, 1, IOC_SEQ_CST);
        w->retiring = true;
        retire = true;
    }
    pthread_mutex_unlock(&pk->lock);
    if (!retire && e->be->thread_start) e->be->thread_start(w); /* staying: reopen the slot */
    pthread_mutex_unlock(&e->scale_lock);
    return retire ? 1 : 0;
}

static void futex_wake(ioc_atomic(uint32_t) *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void ioc_park_init(struct ioc_park *p) {
    pthread_mutex_init(&p->lock, NULL);
    p->top = NULL;
    ioc_store(&p->nidle, 0, IOC_RELAXED);
    ioc_store(&p->nspinning, 0, IOC_RELAXED);
    ioc_store(&p->wakeups, 0, IOC_RELAXED);
}

void ioc_park_fini(struct ioc_park *p) { pthread_mutex_destroy(&p->lock); }

/* Pops the top of the idle stack and wakes it. */
void ioc_wake_one(iocomp_engine *e) {
    struct ioc_park *pk = &e->park;
    pthread_mutex_lock(&pk->lock);
    struct ioc_worker *w = pk->top;
    if (w) {
        pk->top = w->park_next;
        w->park_next = NULL;
        w->parked = false;
        /* seq_cst: the monitor's Dekker pair (scale.c) is this decrement and
         * the poke below against its store of mon_sleeping. */
        ioc_fetch_sub(&pk->nidle, 1, IOC_SEQ_CST);
    }
    pthread_mutex_unlock(&pk->lock);
    if (!w) return;
    IOC_PROBE2(wake, e, w->index);
    /* P2: release pairs with the sleeper's acquire load of the word. */
    ioc_store(&w->futex_word, 0, IOC_RELEASE);
    if (e->be->unpark) e->be->unpark(w);
    else futex_wake(&w->futex_word);
    ioc_fetch_add(&pk->wakeups, 1, IOC_RELAXED);
    /* The worker is about to become active: the waker, already in a system
     * call path, wakes the monitor if it sleeps, so the worker does not pay
     * for it before its callback. */
    ioc_monitor_poke(e);
}

/* Wakes every worker parked now: the stack is detached whole under the
 * lock, then each is woken. Not "pop until nidle reads 0": woken workers
 * that find nothing park again within microseconds, and with many of them
 * the stack was hardly ever empty, so set_min/set_max looped and kept the
 * pool cycling. A worker that parks after the detach is not woken; the
 * callers' own protocols cover it (set_max: park.c re-reads max after
 * pushing itself; set_min: it parks with the new min's timeout; stop: it
 * re-checks `stopping`, and ioc_scale_stop_all keeps waking). */
void ioc_wake_all(iocomp_engine *e) {
    struct ioc_park *pk = &e->park;
    pthread_mutex_lock(&pk->lock);
    struct ioc_worker *list = pk->top;
    uint32_t n = 0;
    for (struct ioc_worker *w = list; w; w = w->park_next) {
        w->parked = false;
        n++;
    }
    pk->top = NULL;
    /* seq_cst: the monitor's Dekker pair, as in ioc_wake_one. */
    if (n) ioc_fetch_sub(&pk->nidle, n, IOC_SEQ_CST);
    pthread_mutex_unlock(&pk->lock);
    while (list) {
        struct ioc_worker *w = list;
        list = w->park_next;
        w->park_next = NULL; /* P3: the struct outlives any thread; ours until the word goes 0 */
        ioc_store(&w->futex_word, 0, IOC_RELEASE); /* P2: pairs with the sleeper's acquire */
        if (e->be->unpark) e->be->unpark(w);
        else futex_wake(&w->futex_word);
        ioc_fetch_add(&pk->wakeups, 1, IOC_RELAXED);
    }
    if (n) ioc_monitor_poke(e);
}

void ioc_notify(iocomp_engine *e) {
    /* The publisher's half of the Dekker pair: the packet is visible before
     * we read the idle counts. */
    ioc_fence_full();
    if (ioc_load(&e->park.nspinning, IOC_RELAXED) != 0) return;
    if (ioc_load(&e->park.nidle, IOC_RELAXED) == 0) return;
    ioc_wake_one(e);
}

bool ioc_work_visible(iocomp_engine *e) {
    if (ioc_inject_nonempty(e)) return true;
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *v = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!v) continue;
        if (ioc_local_size(v) || ioc_load(&v->lifo.state, IOC_RELAXED) != LIFO_EMPTY) return true;
    }
    return false;
}

/* live > max: the worker should go back and retire (scale.c), unless its
 * backend slot holds requests only it waits for; then it sleeps with them
 * like any parked worker (their completions wake it), instead of returning
 * here at once in a loop (audit defect 2: an idle engine above max burned
 * up to two cores while recvs waited on its rings). */
static bool above_max_may_go(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    if (ioc_load(&e->live, IOC_RELAXED) <= ioc_load(&e->max_threads, IOC_RELAXED)) return false;
    return !(e->be->slot_holds && e->be->slot_holds(w));
}

/* yielding: the worker parks to bring the runnable count down to the
 * concurrency target (scale.c), so work being visible does not stop it. */
bool ioc_park(struct ioc_worker *w, bool yielding) {
    iocomp_engine *e = w->e;
    struct ioc_park *pk = &e->park;

    IOC_PROBE2(park, e, w->index);
    pthread_mutex_lock(&pk->lock);
    w->park_next = pk->top;
    pk->top = w;
    w->parked = true;
    ioc_store(&w->futex_word, 1, IOC_RELAXED);
    ioc_fetch_add(&pk->nidle, 1, IOC_SEQ_CST);
    pthread_mutex_unlock(&pk->lock);

    /* The parker's half of the Dekker pair (see the theory above). */
    ioc_fence_full();
    if ((!yielding && ioc_work_visible(e)) || ioc_load(&e->stopping, IOC_ACQUIRE) || above_max_may_go(w)) {
        pthread_mutex_lock(&pk->lock);
        if (w->parked) { /* still on the stack: take ourselves off */
            stack_remove(pk, w);
            pthread_mutex_unlock(&pk->lock);
            ioc_monitor_poke(e); /* we stay active: the monitor's pair, as in ioc_wake_one */
        } else {
            pthread_mutex_unlock(&pk->lock);
        }
        /* If a waker popped us first, the word is (or will be) 0: fall through. */
    }
    if (ioc_load(&w->futex_word, IOC_ACQUIRE) == 1) ioc_owner_inc(&w->st.parks, 1); /* a real sleep */
    w->injected_at = 0; /* parked before its first callback: no injection latency to report */
    uint64_t ns_next = (uint64_t)e->keep_alive_ms * 1000000u;
    while (ioc_load(&w->futex_word, IOC_ACQUIRE) == 1) {
        bool above_min = ioc_load(&e->live, IOC_RELAXED) > ioc_load(&e->min_threads, IOC_RELAXED);
        uint64_t ns = above_min ? ns_next : 0;
        int woke = e->be->park ? e->be->park(w, &w->futex_word, ns) : futex_wait(&w->futex_word, 1, ns);
        if (woke == 2) {
            /* The backend pushed completions into our ring while we slept:
             * take ourselves off the stack (unless a waker did) and run them. */
            pthread_mutex_lock(&pk->lock);
            if (w->parked) stack_remove(pk, w);
            pthread_mutex_unlock(&pk->lock);
            /* More than we run next: let an idle worker steal. Only now that
             * we are off the stack: a notify from inside the backend's park
             * popped the top of the stack, often this very worker, and the
             * burst waited for the monitor's safety net instead (audit,
             * suspected item). */
            if (ioc_local_size(w) > 1) ioc_notify(e);
            ioc_monitor_poke(e);
            if (ioc_load(&w->futex_word, IOC_ACQUIRE) == 0) break;
            continue; /* popped by a waker that has not stored 0 yet: wait for it */
        }
        if (!woke && ioc_load(&w->futex_word, IOC_ACQUIRE) == 1) {
            int r = keep_alive_expired(w);
            if (r > 0) return true;
            /* scale_lock was busy: try again shortly, not a whole keep-alive later */
            ns_next = r < 0 ? 1000000u : (uint64_t)e->keep_alive_ms * 1000000u;
        }
    }
    return false;
}
