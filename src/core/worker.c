/*
 * worker.c - a worker thread: find a packet, run its callback, repeat; spin
 * a little when there is none, then park.
 *
 * Theory of operation
 * -------------------
 * Where a worker looks, in order (ioc_find_work):
 *   0. every 61st look, the inject queue first, so packets from host threads
 *      are not starved by callbacks that keep posting locally (Go's check);
 *   1. its LIFO slot: the packet most recently posted by a callback on this
 *      worker, run next while its data is hot in cache; at most LIFO_MAX in a
 *      row, then the ring gets a turn (so a callback that reposts itself
 *      cannot starve older local packets);
 *   2. its own ring (FIFO);
 *   3. the inject queue: a batch of up to INJECT_BATCH packets with one CAS,
 *      the first run now, the rest moved into its own ring, where others may
 *      steal them (after a short wait for the batch to form when the last
 *      take was small and recent: "Taking from the inject queue" below);
 *   4. stealing: from a random victim, half of its ring (up to STEAL_MAX) with
 *      one CAS; or the victim's LIFO slot when the victim has stayed inside
 *      one callback across two of our passes (a stuck callback must not
 *      strand a packet it posted).
 *
 * The LIFO slot: a packet plus a state word EMPTY -> FULL -> EMPTY (owner) or
 * FULL -> BUSY -> EMPTY (thief).
 *   L1 Only the owner writes the packet, and only while the state is EMPTY.
 *   L2 Whoever moves FULL -> EMPTY/BUSY by CAS owns the packet (exactly one).
 *   L3 A thief releases BUSY -> EMPTY after copying; the owner waits out BUSY
 *      (acquire) before writing the packet again.
 *
 * Port accounting (see port.c for the closer's side): a packet counts
 * against its port from acceptance until its callback returns. Each worker
 * counts, for one port at a time, the packets it accepted (in) and the
 * callbacks it finished (out) in its own acct_in / acct_out words, so the hot
 * path writes only the worker's own cache line. The counts are flushed into
 * the port's shared count_in / count_out when the worker moves to another
 * port, before it spins or parks, and when they grow large.
 *   A1 acct_in/out = (port_idx + 1) << 32 | count, written only by the owner.
 *      In flight for a port = (count_in + sum of workers' in) -
 *      (count_out + sum of workers' out). All terms only grow between
 *      flushes, so no reader ever sees a negative delta counted twice.
 *   A2 Flushing *in* adds to count_in first, then resets acct_in; a reader
 *      that reads acct_in before count_in sees the moving value once or
 *      twice (over-counts in flight). Flushing *out* resets acct_out first,
 *      then adds to count_out; a reader that reads count_out before acct_out
 *      sees it once or not at all (again over-counts in flight). With that
 *      read order (port.c: port_inflight) a closer's total is never below the
 *      truth, and equals it when no flush is under way (all seq_cst).
 *   A3 The out increment after a callback is a release store: a closer whose
 *      read sees it knows that callback has returned.
 *   A4 A worker refers to a port slot only while acct_in/out name it, and
 *      between resetting acct_out and adding to count_out (when in flight is
 *      over-counted by that amount, so the slot is not recycled). port.c
 *      recycles a slot only when in flight is 0 and no acct names it.
 *   A5 Counts are flushed before they reach 2^30.
 *
 * Busy: cb_seq is odd while the worker is inside a callback (outermost frame
 * only); readers (available threads, the LIFO steal probe) use relaxed loads
 * and only need a recent value.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/internal.h"
#include "core/probes.h"

__thread struct ioc_worker *ioc_self __attribute__((tls_model("initial-exec")));

#define LIFO_MAX 16u
#define INJECT_BATCH 32u
#define STEAL_MAX 64u
#define ACCT_FLUSH_AT (1u << 30)
#define SPIN_PURE_NS 2000u

static inline uint64_t acct_pack(uint32_t idx1, uint32_t n) { return (uint64_t)idx1 << 32 | n; }

/* ---- port accounting ------------------------------------------------------------- */
void ioc_acct_switch(struct ioc_worker *w, uint32_t idx1) {
    struct ioc_port *p = w->acct_idx ? ioc_port_slot(w->e, w->acct_idx - 1) : NULL;
    uint32_t in = w->a_in, out = w->a_out;
    /* A2, in: add, then reset. */
    if (p && in) ioc_fetch_add(&p->count_in, in, IOC_SEQ_CST);
    ioc_store(&w->acct_in, acct_pack(idx1, 0), IOC_SEQ_CST);
    /* A2, out: reset, then add. */
    ioc_store(&w->acct_out, acct_pack(idx1, 0), IOC_SEQ_CST);
    if (p && out) ioc_fetch_add(&p->count_out, out, IOC_SEQ_CST);
    w->acct_idx = idx1;
    w->a_in = w->a_out = 0;
}

void ioc_acct_flush(struct ioc_worker *w) {
    if (w->acct_idx) ioc_acct_switch(w, 0);
}

static inline void acct_done(struct ioc_worker *w, uint32_t idx1) {
    if (ioc_unlikely(w->acct_idx != idx1)) ioc_acct_switch(w, idx1);
    w->a_out++;
    /* A3: release publishes "this callback has returned" to a closer. */
    ioc_store(&w->acct_out, acct_pack(idx1, w->a_out), IOC_RELEASE);
    if (ioc_unlikely(w->a_out >= ACCT_FLUSH_AT)) ioc_acct_flush(w);
}

/* ---- the LIFO slot ------------------------------------------------------------------ */
static void spill(struct ioc_worker *w, const struct ioc_pkt *p) {
    /* Our ring is full: the packet goes to the inject path (ring, then the
     * unbounded overflow list). If even the overflow list cannot grow, run
     * it here and now: late, but exactly once. */
    if (ioc_inject_push(w->e, p) == 0) {
        ioc_notify(w->e);
        return;
    }
    ioc_dispatch(w, p);
}

void ioc_lifo_put(struct ioc_worker *w, const struct ioc_pkt *p) {
    struct ioc_lifo *l = &w->lifo;
    uint32_t st = ioc_load(&l->state, IOC_RELAXED);
    if (st == LIFO_FULL) {
        uint32_t exp = LIFO_FULL;
        /* L2: winning this CAS makes the old packet ours. */
        if (ioc_cas(&l->state, &exp, LIFO_EMPTY, IOC_ACQUIRE, IOC_RELAXED)) {
            struct ioc_pkt old = l->pkt;
            if (!ioc_local_push(w, &old)) spill(w, &old);
        }
    }
    /* L3: pairs with the thief's release store of EMPTY after its copy. */
    while (ioc_load(&l->state, IOC_ACQUIRE) == LIFO_BUSY) ioc_cpu_relax();
    l->pkt = *p;
    /* Publishes the packet to a thief's acquire CAS (FULL -> BUSY). */
    ioc_store(&l->state, LIFO_FULL, IOC_RELEASE);
}

static inline bool lifo_take(struct ioc_worker *w, struct ioc_pkt *out) {
    struct ioc_lifo *l = &w->lifo;
    if (ioc_load(&l->state, IOC_RELAXED) != LIFO_FULL) return false;
    uint32_t exp = LIFO_FULL;
    if (!ioc_cas(&l->state, &exp, LIFO_EMPTY, IOC_ACQUIRE, IOC_RELAXED)) return false;
    *out = l->pkt;
    return true;
}

static bool lifo_steal(struct ioc_worker *v, struct ioc_pkt *out) {
    struct ioc_lifo *l = &v->lifo;
    uint32_t exp = LIFO_FULL;
    /* Acquire pairs with the owner's release store of FULL: the packet is written. */
    if (!ioc_cas(&l->state, &exp, LIFO_BUSY, IOC_ACQUIRE, IOC_RELAXED)) return false;
    *out = l->pkt;
    ioc_store(&l->state, LIFO_EMPTY, IOC_RELEASE); /* L3 */
    return true;
}

/* ---- finding work -------------------------------------------------------------------- */
static inline uint32_t rng_next(struct ioc_worker *w) {
    uint32_t x = w->rng; /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return w->rng = x;
}

static unsigned local_free(struct ioc_worker *w) {
    uint64_t used = ioc_local_size(w);
    uint64_t cap = w->ring.size - 1; /* Q2: N slots hold N-1 */
    return used >= cap ? 0 : (unsigned)(cap - used);
}

/* Moves buf[1..n) into our ring (room was checked). They are stealable
 * there, but nobody looks unless someone is awake: notify, or a parked
 * worker would sleep while we run a long callback with work behind it. */
static void keep_rest(struct ioc_worker *w, const struct ioc_pkt *buf, unsigned n) {
    for (unsigned i = 1; i < n; i++)
        if (!ioc_local_push(w, &buf[i])) spill(w, &buf[i]);
    if (n > 1) ioc_notify(w->e);
}

/*
 * Taking from the inject queue, and letting a batch form first.
 *
 * A take costs the line transfers it causes, whatever it carries: the
 * producer's p_tail and the slots it wrote come over, and our CAS takes
 * c_head. Worse, a consumer that keeps re-reading the indices keeps pulling
 * the producer's lines away, so each of the producer's next stores waits for
 * its line to come back, and the inject lock's and ioc_notify's fences wait
 * for those stores: a host thread posting as fast as it can then pays about
 * one cross-CPU line transfer a packet (W0 physics-line: 75 ns on a near
 * machine, 220-290 ns on a far one; measured, a worker taking 2.5 packets a
 * batch held the poster to 3-5 M posts/s on the far machine).
 *
 * So a worker that has just outrun the producers (its last take, moments
 * ago, was smaller than a half batch) waits before the next take, touching
 * no shared line, for as long as one take has been costing it (its moving
 * average, measured around the take: the machine's line cost, not a
 * constant), then takes what accumulated meanwhile. The producer posts
 * undisturbed at its local speed while we wait, so the next take carries
 * many packets for the same few transfers. The wait never comes first: a
 * packet that finds the worker looking (its last look found nothing, or the
 * last take was long ago, or it was a full batch: a backlog) is taken at
 * once, so an isolated post's latency does not change. It only ever delays
 * a packet that arrived while the worker was still busy with the previous
 * small batch, by at most one take's cost (clamped to [HOLD_MIN_NS,
 * HOLD_MAX_NS] against a bad sample, such as a take preempted midway).
 */
#define HOLD_MIN_NS 50u
#define HOLD_MAX_NS 4000u

static void inject_hold(struct ioc_worker *w, uint64_t now) {
    uint64_t h = w->inj_cost;
    if (h < HOLD_MIN_NS) h = HOLD_MIN_NS;
    if (h > HOLD_MAX_NS) h = HOLD_MAX_NS;
    /* Recent: the last take ended within one hold of now (the callbacks of
     * its batch were short); otherwise the producers had time to fill. */
    if (now - w->inj_end > h) return;
    uint64_t until = now + h;
    /* When the workers alone fill the CPUs (live >= the concurrency target,
     * the CPU count by default), a host thread that posts shares a CPU with
     * one of them: give it the CPU, or there is nothing to wait for. */
    if (ioc_load(&w->e->live, IOC_RELAXED) >= w->e->concurrency) sched_yield();
    do {
        for (int k = 0; k < 8; k++) ioc_cpu_relax();
    } while (ioc_now_ns() < until);
}

/* may_hold: our own queues are empty (not the fairness look, which comes
 * while local work waits). */
static bool take_inject(struct ioc_worker *w, struct ioc_pkt *out, bool may_hold) {
    iocomp_engine *e = w->e;
    unsigned room = local_free(w) + 1;
    unsigned want = room < INJECT_BATCH ? room : INJECT_BATCH;
    uint32_t live = ioc_load(&e->live, IOC_RELAXED);
    struct ioc_pkt buf[INJECT_BATCH];
    uint64_t t0 = ioc_now_ns();
    if (may_hold && w->inj_outran) {
        inject_hold(w, t0);
        t0 = ioc_now_ns();
    }
    /* Our share of what is pending (pending / live + 1, at most a batch),
     * computed from the one read of the indices the take makes. */
    unsigned n = ioc_inject_take(e, buf, want, live ? live : 1, w->tick);
    if (!n) {
        w->inj_outran = false; /* we looked and found nothing: no stream to wait for */
        return false;
    }
    uint64_t t1 = ioc_now_ns();
    w->inj_cost = w->inj_cost ? (w->inj_cost * 7 + (t1 - t0)) / 8 : t1 - t0;
    w->inj_end = t1;
    w->inj_outran = n < INJECT_BATCH / 2 && n < want;
    *out = buf[0];
    keep_rest(w, buf, n);
    ioc_owner_inc(&w->st.inject_batches, 1);
    return true;
}

static bool steal(struct ioc_worker *w, struct ioc_pkt *out) {
    iocomp_engine *e = w->e;
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    if (n <= 1) return false;
    uint32_t start = rng_next(w) % n;
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *v = ioc_load(&e->workers[(start + i) % n], IOC_ACQUIRE);
        if (!v || v == w) continue;
        uint64_t size = ioc_local_size(v);
        if (size) {
            unsigned want = (unsigned)((size + 1) / 2);
            unsigned room = local_free(w) + 1;
            if (want > STEAL_MAX) want = STEAL_MAX;
            if (want > room) want = room;
            struct ioc_pkt buf[STEAL_MAX];
            unsigned k = ioc_ring_take(&v->ring, v->ring_buf, buf, want, 1);
            if (k) {
                *out = buf[0];
                keep_rest(w, buf, k);
                IOC_PROBE4(steal, e, w->index, v->index, k);
                ioc_owner_inc(&w->st.steals, 1);
                ioc_owner_inc(&w->st.stolen, k);
                return true;
            }
        }
        if (ioc_load(&v->lifo.state, IOC_RELAXED) == LIFO_FULL) {
            uint64_t seq = ioc_load(&v->cb_seq, IOC_RELAXED);
            if ((seq & 1) && w->probe_victim == v->index + 1 && w->probe_seq == seq) {
                if (lifo_steal(v, out)) {
                    ioc_owner_inc(&w->st.steals, 1);
                    ioc_owner_inc(&w->st.stolen, 1);
                    return true;
                }
            } else {
                w->probe_victim = v->index + 1;
                w->probe_seq = seq;
            }
        }
    }
    return false;
}

bool ioc_find_work(struct ioc_worker *w, struct ioc_pkt *out) {
    if (ioc_unlikely(++w->tick % 61 == 0)) {
        /* Fairness: host packets and the backend's completions get a turn
         * even while callbacks keep this worker's own queues full. */
        w->e->be->poll(w, NULL);
        if (take_inject(w, out, false)) return true;
    }
    if (w->lifo_streak < LIFO_MAX) {
        if (lifo_take(w, out)) {
            w->lifo_streak++;
            return true;
        }
    }
    w->lifo_streak = 0;
    if (ioc_local_pop(w, out)) return true;
    if (lifo_take(w, out)) return true;
    /* Our queues are empty: submit what callbacks prepared, reap what the
     * kernel completed (into our ring, where thieves may take it). */
    int polled = w->e->be->poll(w, out);
    if (polled == 2 || (polled && ioc_local_pop(w, out))) return true;
    if (take_inject(w, out, true)) return true;
    return steal(w, out);
}

/* ---- running a callback ------------------------------------------------------------------ */
void ioc_dispatch(struct ioc_worker *w, const struct ioc_pkt *p) {
    /* Acquire pairs with the release store in iocomp_set_completion_manager:
     * the pair's fields are visible. Never NULL: a packet is accepted only
     * after a callback was installed, and pairs are never freed before the
     * engine. */
    struct ioc_cb *cb = ioc_load(&w->e->cb, IOC_ACQUIRE);
    uint32_t d = w->depth;
    uint64_t seq = 0;
    struct ioc_frame frame = {.port1 = p->port_idx + 1, .up = w->frame};
    w->frame = &frame; /* unlinked below, before this frame goes */
    w->depth = d + 1;
    if (d == 0) {
        seq = ioc_load(&w->cb_seq, IOC_RELAXED) + 1;
        ioc_store(&w->cb_seq, seq, IOC_RELAXED); /* odd: busy */
    }
    if (ioc_unlikely(w->injected_at)) { /* the first callback of an injected thread */
        uint64_t dt = ioc_now_ns() - w->injected_at;
        w->injected_at = 0;
        iocomp_engine *e = w->e;
        uint64_t m = ioc_load(&e->inj_run_max, IOC_RELAXED);
        while (dt > m && !ioc_cas(&e->inj_run_max, &m, dt, IOC_RELAXED, IOC_RELAXED)) {
        }
        ioc_fetch_add(&e->inj_run_total, dt, IOC_RELAXED);
        ioc_fetch_add(&e->inj_run_count, 1, IOC_RELAXED);
    }
    if (ioc_likely(!p->flags)) {
        IOC_PROBE5(complete, w->e, p->status, p->bytes, p->ov, p->key);
        cb->fn(cb->ctx, p->status, p->bytes, p->ov, p->key);
    } else {
        int32_t status = p->status;
        uint32_t bytes = p->bytes;
        struct ioc_req *r = ioc_req_of(p->ov);
        if (p->flags & PKT_EXEC) { /* epoll's regular files: the system call runs here, */
            /* unless a cancel or the binding's end came first (-ECANCELED) */
            int32_t res = w->e->be->exec(w->e, r);
            status = res < 0 ? res : 0;
            bytes = res < 0 ? 0u : (uint32_t)res;
        }
        /* I1: the request is over; release pairs with the acquire CAS of the
         * next submit (core/io.c), which may come from this very callback. */
        ioc_store(&r->state, REQ_IDLE, IOC_RELEASE);
        IOC_PROBE5(complete, w->e, status, bytes, p->ov, p->key);
        cb->fn(cb->ctx, status, bytes, p->ov, p->key);
    }
    if (d == 0) ioc_store(&w->cb_seq, seq + 1, IOC_RELAXED); /* even: idle */
    w->depth = d;
    w->frame = frame.up;
    acct_done(w, p->port_idx + 1);
    ioc_owner_inc(&w->st.completions, 1);
}

/* ---- spinning ------------------------------------------------------------------------------- */
/*
 * Adaptive spin: each worker keeps a moving average of its idle gaps (from
 * running out of work to finding more). Spinning pays only when work comes
 * back within the spin budget; when the gaps have been much longer than the
 * budget, spinning the whole budget before every park burns CPU for nothing
 * (measured: at one packet per 2 ms, the 20 us spin was ~1.2% of a core), so
 * the worker spins only the short pure phase. One short gap pulls the
 * average back down and restores the full budget.
 */
static void gap_seen(struct ioc_worker *w, uint64_t now) {
    uint64_t gap = now - w->idle_since;
    w->gap_avg = w->gap_avg ? (w->gap_avg * 3 + gap) / 4 : gap;
}

static bool spin(struct ioc_worker *w, struct ioc_pkt *out) {
    iocomp_engine *e = w->e;
    if (e->spin_ns == 0) return false;
    uint64_t budget = e->spin_ns;
    if (w->gap_avg > 4 * budget && budget > SPIN_PURE_NS) budget = SPIN_PURE_NS;
    uint32_t live = ioc_load(&e->live, IOC_RELAXED);
    uint32_t spinning = ioc_load(&e->park.nspinning, IOC_RELAXED);
    if (spinning && spinning * 2 >= live) return false; /* half the pool searches at most */
    ioc_fetch_add(&e->park.nspinning, 1, IOC_SEQ_CST);
    bool found = false;
    uint64_t start = ioc_now_ns();
    for (uint32_t i = 0;; i++) {
        if (ioc_find_work(w, out)) {
            found = true;
            break;
        }
        if (ioc_load(&e->stopping, IOC_RELAXED)) break;
        if ((i & 7) == 7) {
            uint64_t t = ioc_now_ns() - start;
            if (t > budget) break;
            /* Past the first microseconds, give the core away between polls:
             * with more runnable threads than cores (a poster and two workers
             * on two CPUs) a pure spinner would take the poster's core. */
            if (t > SPIN_PURE_NS) sched_yield();
        }
        for (int k = 0; k < 4; k++) ioc_cpu_relax();
    }
    /* seq_cst: part of the Dekker pair with ioc_notify (park.c). */
    uint32_t prev = ioc_fetch_sub(&e->park.nspinning, 1, IOC_SEQ_CST);
    if (found) gap_seen(w, ioc_now_ns());
    /* The last searcher found work: a publisher may have skipped its wake-up
     * because we were searching. Pass it on if more is waiting (what we took
     * in a batch was already passed on by keep_rest). Not otherwise: waking a
     * parked worker for nothing costs a system call before our callback. */
    if (found && prev == 1 && ioc_inject_nonempty(e)) ioc_notify(e);
    if (found) ioc_monitor_poke(e); /* after the seq_cst RMW above (scale.c) */
    return found;
}

/* ---- the thread ------------------------------------------------------------------------------ */
void ioc_worker_drain(struct ioc_worker *w) {
    struct ioc_pkt p;
    bool moved = false;
    ioc_acct_flush(w);
    while (lifo_take(w, &p) || ioc_local_pop(w, &p)) {
        if (ioc_inject_push(w->e, &p) != 0) ioc_dispatch(w, &p); /* no memory: run it */
        else moved = true;
    }
    ioc_acct_flush(w);
    /* Only when we handed packets on: waking a parked peer for nothing
     * would also restart its keep-alive (retirement took 2x keep-alive). */
    if (moved) ioc_notify(w->e);
}

/* The monitor asked for `excess` workers to stand down (runnable above the
 * concurrency target once blocked callbacks returned). Claim one slot of it;
 * hand our queued packets to the inject queue so the others run them. */
static bool stand_down(struct ioc_worker *w) {
    iocomp_engine *e = w->e;
    int32_t x = ioc_load(&e->excess, IOC_RELAXED);
    while (x > 0)
        if (ioc_cas(&e->excess, &x, x - 1, IOC_ACQ_REL, IOC_RELAXED)) {
            ioc_worker_drain(w);
            ioc_fetch_add(&e->excess_parks, 1, IOC_RELAXED);
            return true;
        }
    return false;
}

void *ioc_worker_main(void *arg) {
    struct ioc_worker *w = arg;
    iocomp_engine *e = w->e;
    ioc_self = w;
    ioc_store(&w->tid, (int32_t)syscall(SYS_gettid), IOC_RELAXED);
    clockid_t cc;
    if (pthread_getcpuclockid(pthread_self(), &cc) == 0) {
        ioc_store(&w->cpu_clock, (int)cc, IOC_RELAXED);
        ioc_store(&w->has_cpu_clock, true, IOC_RELEASE); /* the monitor acquires it */
    }
    ioc_heap_worker_init(w);
    if (e->be->thread_start) e->be->thread_start(w);
    for (;;) {
        struct ioc_pkt p;
        if (ioc_find_work(w, &p)) {
            ioc_dispatch(w, &p);
            /* One relaxed load of a line the monitor writes only when the
             * value changes. */
            if (ioc_unlikely(ioc_load(&e->excess, IOC_RELAXED) > 0) && stand_down(w)) {
                w->idle_since = ioc_now_ns();
                if (ioc_park(w, true)) break;
                gap_seen(w, ioc_now_ns());
            }
            continue;
        }
        ioc_acct_flush(w);
        if (ioc_load(&e->stopping, IOC_ACQUIRE) && !ioc_work_visible(e)) break;
        if (ioc_should_retire(w)) break;
        w->idle_since = ioc_now_ns();
        if (spin(w, &p)) {
            ioc_dispatch(w, &p);
            continue;
        }
        ioc_acct_flush(w);
        if (ioc_park(w, false)) break; /* keep-alive expired */
        gap_seen(w, ioc_now_ns()); /* the waker poked the monitor (park.c) */
    }
    ioc_worker_drain(w);
    ioc_self = NULL;
    ioc_worker_exited(w);
    return NULL;
}
