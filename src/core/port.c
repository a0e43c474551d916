/*
 * port.c - ports, posting, closing, and descriptor bindings.
 *
 * Theory of operation
 * -------------------
 * A port is a slot in a two-level table (256 chunks of 256 slots, chunks
 * allocated on demand and never freed before the engine), so a slot's address
 * is stable and lock-free lookups need no reclamation scheme. A handle is
 * generation << 32 | (slot index + 1); the generation is bumped when a slot is
 * recycled, so a stale handle is refused with -EBADF instead of reaching the
 * port that reuses the slot.
 *
 * slot->ctl = generation << 32 | state, state one of
 *     FREE -> OPEN (create) -> CLOSING (close: refuse new packets)
 *          -> CLOSED (every packet finished) -> FREE (recycled, generation+1).
 *
 * Counting packets in flight: a packet counts from acceptance until its
 * callback returns (invariant 1, 6). Non-worker submitters count themselves
 * into slot->count_in; workers into their own acct_in/acct_out words
 * (worker.c, A1-A5). The closer's total is never below the truth.
 *
 * Accept vs close (what makes "after close returns, nothing more is
 * accepted or runs" hold). For a worker, a Dekker pair:
 *     worker: acct_in += 1 (seq_cst store) ; read ctl (seq_cst) ; OPEN? accept : undo
 *     closer: ctl := CLOSING (seq_cst RMW) ; read every acct and count
 * Either the worker sees CLOSING and lowers its in again, or the closer's
 * reads see the packet. A host thread decides and counts (count_host) under
 * the inject lock, and the closer takes and releases that lock once after
 * CLOSING (queue.c: ioc_inject_post, ioc_inject_barrier). After CLOSING, the in-flight total only falls. One exception
 * needs no Dekker pair: a worker posting from a callback of the same port
 * (the closer waits for that callback, whose release of its out count
 * publishes the in; see iocomp_post). Such a post may still be accepted
 * just after CLOSING was set; it is then delivered before close returns.
 *
 * The closer waits until total == the callbacks of this port on its own
 * stack (1 when a callback closes its own port, else 0; counted through the
 * worker's frame list, at any depth). On a worker thread it must not just
 * wait: the packets may sit in its own queue (one worker) or need it to
 * run. So it helps: it takes packets as a worker would; this port's packets
 * and those of every other closing port it runs (nested), those of open
 * ports it sets aside and puts back after; set-aside packets whose port
 * starts closing meanwhile are run then (see wait_drained).
 *
 * Destroy (ioc_ports_close_all) sets closing_all under ports_lock, where
 * every create reads it, then closes every port; one that another thread
 * is closing at the same time it waits for until its packets are done.
 *
 * Recycling (invariant 5): a CLOSED slot becomes FREE only when its total is
 * 0 and no worker's acct names it (A4), since a worker may still flush a
 * count into slot->count_in/count_out. Slots that cannot be freed yet wait on the zombie
 * list, retried at the next create/close/destroy.
 *
 * Invariants
 *   T1 state changes of ctl happen under ports_lock, except OPEN -> CLOSING
 *      (a CAS, so exactly one closer wins).
 *   T2 A slot's generation changes only while it is FREE-bound (under the lock,
 *      nothing counted in it and no worker referring to it), and never
 *      wraps: a slot whose generation reached 2^32 - 1 is never recycled, so
 *      no handle is ever accepted for a later port.
 *   T3 The default port is created once (under e->lock) and closed only by
 *      engine destroy.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backends/backend.h"
#include "core/internal.h"
#include "core/probes.h"

static inline uint32_t h_idx1(iocomp_port_t h) { return (uint32_t)(h & 0xffffffffu); }
static inline uint32_t h_gen(iocomp_port_t h) { return (uint32_t)(h >> 32); }
static inline uint32_t ctl_gen(uint64_t c) { return (uint32_t)(c >> 32); }
static inline uint32_t ctl_state(uint64_t c) { return (uint32_t)(c & 0xffffffffu); }
static inline uint64_t mk_ctl(uint32_t gen, uint32_t st) { return (uint64_t)gen << 32 | st; }

struct ioc_port *ioc_port_slot(iocomp_engine *e, uint32_t idx) {
    return &e->port_chunks[idx / IOC_PORT_CHUNK][idx % IOC_PORT_CHUNK];
}

/* Resolve a handle (not the default-port alias) to its slot, any state. */
static int slot_of(iocomp_engine *e, iocomp_port_t h, struct ioc_port **out) {
    uint32_t idx1 = h_idx1(h);
    if (idx1 == 0 || idx1 > IOC_PORTS_MAX || h_gen(h) == 0) return -EBADF;
    uint32_t idx = idx1 - 1;
    /* Chunk pointers are written once under ports_lock before any handle
     * into them is returned; a handle the caller holds was produced after. */
    struct ioc_port *chunk = __atomic_load_n(&e->port_chunks[idx / IOC_PORT_CHUNK], __ATOMIC_ACQUIRE);
    if (!chunk) return -EBADF;
    *out = &chunk[idx % IOC_PORT_CHUNK];
    return 0;
}

static int default_port(iocomp_engine *e, iocomp_port_t *out);

/* Resolves a handle (IOCOMP_DEFAULT_PORT included) to an open port. */
int ioc_port_lookup(iocomp_engine *e, iocomp_port_t h, struct ioc_port **out) {
    if (h == IOCOMP_DEFAULT_PORT) {
        int r = default_port(e, &h);
        if (r < 0) return r;
    }
    struct ioc_port *p;
    int r = slot_of(e, h, &p);
    if (r < 0) return r;
    uint64_t c = ioc_load(&p->ctl, IOC_ACQUIRE);
    if (ctl_gen(c) != h_gen(h)) return -EBADF;
    if (ctl_state(c) != P_OPEN) return ctl_state(c) == P_CLOSING ? -ESHUTDOWN : -EBADF;
    *out = p;
    return 0;
}

void ioc_freeze_ext(iocomp_engine *e) {
    if (ioc_load(&e->ext_frozen, IOC_ACQUIRE)) return;
    pthread_mutex_lock(&e->lock);
    ioc_store(&e->ext_frozen, true, IOC_RELEASE); /* pairs with the acquire above */
    pthread_mutex_unlock(&e->lock);
}

/* ---- in-flight totals ------------------------------------------------------------ */
/*
 * The closer's total (worker.c A2). Read order matters:
 *   count_out, then every worker's acct_out: an out-flush (reset acct_out,
 *     then add to count_out) that overlaps the reads is seen once or missed,
 *     never twice, so `out` is never above the truth;
 *   every worker's acct_in, then count_in: an in-flush (add to count_in,
 *     then reset acct_in) is seen once or twice, never missed, so `in` is
 *     never below the truth.
 * So the total never falls below the packets really in flight.
 */
static int64_t port_inflight(iocomp_engine *e, struct ioc_port *p, bool *referenced) {
    uint32_t idx1 = p->idx + 1;
    uint64_t in = 0, out = ioc_load(&p->count_out, IOC_SEQ_CST);
    bool ref = false;
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!w) continue;
        uint64_t b = ioc_load(&w->acct_out, IOC_SEQ_CST);
        uint64_t a = ioc_load(&w->acct_in, IOC_SEQ_CST);
        if ((uint32_t)(a >> 32) == idx1) {
            in += (uint32_t)a;
            ref = true;
        }
        if ((uint32_t)(b >> 32) == idx1) {
            out += (uint32_t)b;
            ref = true;
        }
    }
    in += ioc_load(&p->count_in, IOC_SEQ_CST);
    in += ioc_load(&p->count_host, IOC_ACQUIRE); /* after ioc_inject_barrier (close_slot) */
    if (referenced) *referenced = ref;
    return (int64_t)(in - out);
}

/* ---- create ----------------------------------------------------------------------------- */
static int slot_alloc(iocomp_engine *e, struct ioc_port **out);
static void reap_zombies(iocomp_engine *e);

/* ports_lock held. Destroy sets closing_all under the same lock before it
 * walks the table (ioc_ports_close_all), so a port is either created before
 * that walk starts, and seen by it, or refused here: a callback that read
 * closing_all as 0 before the lock used to get a recycled slot below the
 * walk's cursor, and its requests never completed (audit defect 7). */
static int port_create_locked(iocomp_engine *e, iocomp_port_t *out) {
    if (ioc_load(&e->closing_all, IOC_RELAXED)) return -ESHUTDOWN;
    struct ioc_port *p;
    int r = slot_alloc(e, &p);
    if (r < 0) return r;
    uint32_t gen = ctl_gen(ioc_load(&p->ctl, IOC_RELAXED)) + 1; /* never wraps: try_recycle */
    /* count_in/count_out are not reset: they run on across generations (only
     * their difference matters), so a stale poster's refused in+1/out+1 can
     * never unbalance the next port in this slot. */
    p->zombie = false;
    /* Release: a submitter that reads OPEN (acquire) sees an initialised slot. */
    ioc_store(&p->ctl, mk_ctl(gen, P_OPEN), IOC_RELEASE);
    ioc_fetch_add(&e->ports_open, 1, IOC_RELAXED);
    *out = (iocomp_port_t)gen << 32 | (p->idx + 1);
    return 0;
}

static int slot_alloc(iocomp_engine *e, struct ioc_port **out) {
    if (e->port_free) {
        *out = e->port_free;
        e->port_free = e->port_free->next_free;
        (*out)->next_free = NULL;
        return 0;
    }
    if (e->ports_used >= IOC_PORTS_MAX) return -ENOMEM;
    uint32_t idx = e->ports_used;
    struct ioc_port *chunk = e->port_chunks[idx / IOC_PORT_CHUNK];
    if (!chunk) {
        chunk = IOC_FAULT(IOCOMP_FAULT_ALLOC)
                    ? NULL
                    : aligned_alloc(IOC_CACHELINE, IOC_PORT_CHUNK * sizeof(struct ioc_port));
        if (!chunk) return -ENOMEM;
        memset(chunk, 0, IOC_PORT_CHUNK * sizeof(struct ioc_port));
        for (uint32_t i = 0; i < IOC_PORT_CHUNK; i++) chunk[i].idx = idx / IOC_PORT_CHUNK * IOC_PORT_CHUNK + i;
        __atomic_store_n(&e->port_chunks[idx / IOC_PORT_CHUNK], chunk, __ATOMIC_RELEASE);
    }
    e->ports_used++;
    *out = &chunk[idx % IOC_PORT_CHUNK];
    return 0;
}

IOCOMP_API int iocomp_port_create(iocomp_engine *e, iocomp_port_t *out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (ioc_load(&e->closing_all, IOC_ACQUIRE)) return -ESHUTDOWN; /* early out; decided under the lock */
    IOC_FAULT_PAUSE(); /* tests: hold the window between that check and the lock open */
    pthread_mutex_lock(&e->ports_lock);
    reap_zombies(e);
    iocomp_port_t h;
    int r = port_create_locked(e, &h);
    pthread_mutex_unlock(&e->ports_lock);
    if (r < 0) return r; /* refused: nothing changed, the extension size stays open */
    /* The size freezes with the first port that exists. A size set between
     * the create and this store is as if set before it: no overlapped was
     * allocated with the old size (they freeze it themselves). */
    ioc_freeze_ext(e);
    *out = h;
    return 0;
}

static int default_port(iocomp_engine *e, iocomp_port_t *out) {
    iocomp_port_t h = ioc_load(&e->default_port, IOC_ACQUIRE);
    if (ioc_likely(h != 0)) {
        *out = h;
        return 0;
    }
    if (ioc_load(&e->closing_all, IOC_ACQUIRE)) return -ESHUTDOWN; /* early out; decided under ports_lock */
    pthread_mutex_lock(&e->lock);
    h = ioc_load(&e->default_port, IOC_ACQUIRE);
    int r = 0;
    if (h == 0) {
        pthread_mutex_lock(&e->ports_lock);
        r = port_create_locked(e, &h);
        pthread_mutex_unlock(&e->ports_lock);
        if (r == 0) {
            /* Frozen only once the port exists (we hold e->lock, the lock
             * ioc_freeze_ext takes). Release pairs with its acquire. */
            ioc_store(&e->ext_frozen, true, IOC_RELEASE);
            /* Release pairs with the acquire load above on other threads. */
            ioc_store(&e->default_port, h, IOC_RELEASE);
        }
    }
    pthread_mutex_unlock(&e->lock);
    if (r == 0) *out = h;
    return r;
}

/* ---- post ------------------------------------------------------------------------------------ */
IOCOMP_API int iocomp_post(iocomp_engine *e, iocomp_port_t port, int32_t status, uint32_t bytes,
                           iocomp_overlapped *ov, uintptr_t key) {
    if (ioc_unlikely(!e)) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (ioc_unlikely(!ioc_load(&e->cb_enabled, IOC_ACQUIRE))) return -ENOTCONN;
    if (port == IOCOMP_DEFAULT_PORT) {
        int r = default_port(e, &port);
        if (ioc_unlikely(r < 0)) return r;
    }
    struct ioc_port *p;
    int r = slot_of(e, port, &p);
    if (ioc_unlikely(r < 0)) return r;
    uint32_t idx1 = p->idx + 1;
    struct ioc_pkt pkt = {.ov = ov, .key = key, .port_idx = p->idx, .status = status, .bytes = bytes};

    struct ioc_worker *w = ioc_self_in(e);
    if (w) {
        if (ioc_unlikely(w->acct_idx != idx1)) ioc_acct_switch(w, idx1);
        w->a_in++;
        uint64_t c;
        if (w->frame && w->frame->port1 == idx1) {
            /* Posting from a callback of this same port: a close cannot
             * finish before this callback returns (it waits for it), and
             * this store happens-before the callback's release of its out
             * count, which the closer reads before our in. A release store
             * and a plain read of the state are enough (no XCHG). */
            ioc_store(&w->acct_in, (uint64_t)idx1 << 32 | w->a_in, IOC_RELEASE);
            c = ioc_load(&p->ctl, IOC_RELAXED);
        } else {
            /* Submitter half of the accept/close Dekker pair (see the theory). */
            ioc_store(&w->acct_in, (uint64_t)idx1 << 32 | w->a_in, IOC_SEQ_CST);
            c = ioc_load(&p->ctl, IOC_SEQ_CST);
        }
        if (ioc_unlikely(ctl_gen(c) != h_gen(port) || ctl_state(c) != P_OPEN)) {
            w->a_in--;
            ioc_store(&w->acct_in, (uint64_t)idx1 << 32 | w->a_in, IOC_RELEASE);
            return ctl_gen(c) == h_gen(port) && ctl_state(c) == P_CLOSING ? -ESHUTDOWN : -EBADF;
        }
        if (ioc_unlikely(w->a_in >= (1u << 30))) ioc_acct_flush(w); /* A5 */
        /* Wake a parked worker only if our queue was empty: with work
         * already queued, whoever could take it was told when it was
         * queued (and a thief that takes a batch passes it on, worker.c);
         * if we block, the monitor wakes a parked worker for queued work. */
        bool was_empty = ioc_load(&w->lifo.state, IOC_RELAXED) == LIFO_EMPTY && ioc_local_size(w) == 0;
        ioc_lifo_put(w, &pkt);
        ioc_owner_inc(&w->st.posts_local, 1);
        if (was_empty) ioc_notify(e);
        return 0;
    }

    r = ioc_inject_post(e, p, h_gen(port), &pkt);
    if (ioc_unlikely(r < 0)) return r;
    ioc_notify(e);
    return 0;
}

/* ---- accepting an I/O request ------------------------------------------------------------ */
/* The accept half of iocomp_post for a request whose packet the backend
 * produces later: the same Dekker pair on a worker (always the seq_cst
 * flavour: an I/O request may wait in the kernel indefinitely, so one
 * accepted after CLOSING would have to be cancelled, and the closer's
 * cancel pass must see it), the inject lock on a host thread. */
int ioc_port_accept(iocomp_engine *e, struct ioc_worker *w, iocomp_port_t h, uint32_t *idx) {
    struct ioc_port *p;
    int r = slot_of(e, h, &p);
    if (ioc_unlikely(r < 0)) return r;
    uint32_t idx1 = p->idx + 1;
    *idx = p->idx;
    if (!w) return ioc_inject_accept(e, p, h_gen(h));
    if (ioc_unlikely(w->acct_idx != idx1)) ioc_acct_switch(w, idx1);
    w->a_in++;
    /* Submitter half of the accept/close Dekker pair (see the theory). */
    ioc_store(&w->acct_in, (uint64_t)idx1 << 32 | w->a_in, IOC_SEQ_CST);
    uint64_t c = ioc_load(&p->ctl, IOC_SEQ_CST);
    if (ioc_unlikely(ctl_gen(c) != h_gen(h) || ctl_state(c) != P_OPEN)) {
        w->a_in--;
        ioc_store(&w->acct_in, (uint64_t)idx1 << 32 | w->a_in, IOC_RELEASE);
        return ctl_gen(c) == h_gen(h) && ctl_state(c) == P_CLOSING ? -ESHUTDOWN : -EBADF;
    }
    if (ioc_unlikely(w->a_in >= (1u << 30))) ioc_acct_flush(w); /* A5 */
    return 0;
}

/* Takes back an accepted request that the backend refused: one more
 * finished. The in count was published before (by the accept), so no
 * closer sees out above in. */
void ioc_port_unaccept(iocomp_engine *e, uint32_t idx) {
    ioc_fetch_add(&ioc_port_slot(e, idx)->count_out, 1, IOC_SEQ_CST);
}

int ioc_port_resolve(iocomp_engine *e, iocomp_port_t *h) {
    if (*h != IOCOMP_DEFAULT_PORT) return 0;
    return default_port(e, h);
}

/* ---- close ------------------------------------------------------------------------------------ */
static void backoff(unsigned *round) {
    unsigned r = (*round)++;
    if (r < 64) {
        ioc_cpu_relax();
    } else if (r < 128) {
        sched_yield();
    } else {
        struct timespec ts = {0, r < 1024 ? 20000 : 200000};
        nanosleep(&ts, NULL);
    }
}

static bool port_closing(iocomp_engine *e, uint32_t idx) {
    /* A packet in flight keeps its slot from being recycled, so the state
     * read is its own port's. Acquire pairs with close_slot's CAS. */
    return (uint32_t)ioc_load(&ioc_port_slot(e, idx)->ctl, IOC_ACQUIRE) == P_CLOSING;
}

/* Takes the first set-aside packet, in this thread's helping frames
 * (innermost first), whose port is closing. One at a time: running it may
 * nest another closer that takes from the same vectors. */
static bool aside_take_closing(struct ioc_worker *w, struct ioc_pkt *out) {
    for (struct ioc_aside *a = w->aside; a; a = a->outer)
        for (size_t i = 0; i < a->n; i++)
            if (port_closing(w->e, a->v[i].port_idx)) {
                *out = a->v[i];
                memmove(&a->v[i], &a->v[i + 1], (a->n - i - 1) * sizeof *a->v);
                a->n--;
                return true;
            }
    return false;
}

/* Waits until the port's total reaches `self`, helping if on a worker.
 *
 * Helping: a closer on a worker thread must not just wait, since the port's
 * packets may sit in its own queues (one worker) or need it to run them. It
 * takes packets as a worker would and runs nested those of its port and of
 * any port that is closing too (someone waits for them, on this thread or
 * another); the others (open ports: nobody waits for them) it sets aside,
 * and puts back when it returns. A set-aside packet whose port starts
 * closing later is run then: every closer bumps close_epoch after its
 * CLOSING CAS, and helping frames look through their own and their outer
 * frames' set-aside packets when it moves. Holding a closing port's packets
 * aside made them unreachable: a nested close of that port from one of our
 * callbacks, or two workers closing two ports from callbacks, each holding
 * the other's packets, waited until the deadline (audit defect 5). */
static int wait_drained(iocomp_engine *e, struct ioc_port *p, uint64_t deadline) {
    struct ioc_worker *w = ioc_self_in(e);
    int64_t self = 0;
    struct ioc_aside aside = {0};
    if (w) {
        for (struct ioc_frame *f = w->frame; f; f = f->up)
            if (f->port1 == p->idx + 1) self++;
        aside.outer = w->aside;
        w->aside = &aside;
    }
    uint32_t epoch = ioc_load(&e->close_epoch, IOC_ACQUIRE) - 1; /* look once at the start */
    unsigned round = 0;
    int r = 0;
    /* I/O requests accepted concurrently with the close may reach the
     * backend after a cancel pass: pass again every millisecond. */
    uint64_t next_cancel = 0;
    for (;;) {
        if (port_inflight(e, p, NULL) <= self) break;
        uint64_t now = ioc_now_ns();
        if (now >= next_cancel) {
            e->be->cancel_port(e, p->idx);
            next_cancel = now + 1000000u;
        }
        if (ioc_now_ns() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        struct ioc_pkt k;
        if (w) {
            /* Acquire pairs with close_slot's release increment: the CLOSING
             * state it follows is visible to port_closing(). */
            uint32_t ep = ioc_load(&e->close_epoch, IOC_ACQUIRE);
            if (ep != epoch) {
                if (aside_take_closing(w, &k)) {
                    round = 0;
                    ioc_dispatch(w, &k);
                    continue; /* more may be there: look again before the epoch is taken */
                }
                epoch = ep;
            }
            if (ioc_find_work(w, &k)) {
                round = 0;
                if (k.port_idx == p->idx || port_closing(e, k.port_idx)) {
                    ioc_dispatch(w, &k); /* nested, exactly once */
                    continue;
                }
                if (aside.n == aside.cap) {
                    size_t nc = aside.cap ? aside.cap * 2 : 64;
                    struct ioc_pkt *nv = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : realloc(aside.v, nc * sizeof *nv);
                    if (!nv) { /* cannot set it aside: run it rather than lose it */
                        ioc_dispatch(w, &k);
                        continue;
                    }
                    aside.v = nv;
                    aside.cap = nc;
                }
                aside.v[aside.n++] = k;
                continue;
            }
            ioc_acct_flush(w); /* our own delta may be what the closer is missing */
        }
        backoff(&round);
    }
    if (w) {
        w->aside = aside.outer;
        for (size_t i = 0; i < aside.n; i++)
            if (!ioc_local_push(w, &aside.v[i]) && ioc_inject_push(e, &aside.v[i]) != 0)
                ioc_dispatch(w, &aside.v[i]);
        if (aside.n) ioc_notify(e);
    }
    free(aside.v);
    return r;
}

/* Frees the slot if nothing refers to it (ports_lock held). */
static bool try_recycle(iocomp_engine *e, struct ioc_port *p) {
    bool referenced;
    if (port_inflight(e, p, &referenced) != 0 || referenced) return false;
    uint64_t c = ioc_load(&p->ctl, IOC_RELAXED);
    if (ioc_unlikely(ctl_gen(c) == UINT32_MAX)) {
        /* Its generations are used up (2^32 - 1 create/close cycles of this
         * one slot): a next one would wrap and a handle that old would name
         * the new port. The slot stays closed for good (T2); stale handles
         * get -EBADF. One slot of 65535 per 4 billion closes. */
        ioc_store(&p->ctl, mk_ctl(ctl_gen(c), P_CLOSED), IOC_RELEASE);
        p->zombie = false;
        return true;
    }
    ioc_store(&p->ctl, mk_ctl(ctl_gen(c), P_FREE), IOC_RELEASE);
    p->zombie = false;
    p->next_free = e->port_free;
    e->port_free = p;
    return true;
}

static void reap_zombies(iocomp_engine *e) {
    struct ioc_port **pp = &e->zombies;
    while (*pp) {
        struct ioc_port *z = *pp;
        *pp = z->next_free;
        z->next_free = NULL;
        if (!try_recycle(e, z)) { /* keep it: put back and move on */
            z->next_free = *pp;
            *pp = z;
            pp = &z->next_free;
        }
    }
}

static int close_slot(iocomp_engine *e, iocomp_port_t h, struct ioc_port *p, uint64_t deadline) {
    uint64_t open = mk_ctl(h_gen(h), P_OPEN);
    /* Closer half of the accept/close Dekker pair. */
    if (!ioc_cas(&p->ctl, &open, mk_ctl(h_gen(h), P_CLOSING), IOC_SEQ_CST, IOC_SEQ_CST)) return -EBADF;
    /* Release: a helping closer that acquires the new epoch sees CLOSING
     * (wait_drained). */
    ioc_fetch_add(&e->close_epoch, 1, IOC_RELEASE);
    ioc_fetch_sub(&e->ports_open, 1, IOC_RELAXED);
    ioc_inject_barrier(e); /* host posters decide under the inject lock (queue.c) */
    ioc_unbind_port(e, h);
    /* wait_drained cancels the port's requests in flight (backend), then
     * waits for every completion. */
    int r = wait_drained(e, p, deadline);
    pthread_mutex_lock(&e->ports_lock);
    if (r == 0) ioc_store(&p->ctl, mk_ctl(h_gen(h), P_CLOSED), IOC_RELEASE);
    if (!try_recycle(e, p)) {
        p->zombie = true;
        p->next_free = e->zombies;
        e->zombies = p;
    }
    reap_zombies(e);
    pthread_mutex_unlock(&e->ports_lock);
    return r;
}

IOCOMP_API int iocomp_port_close(iocomp_engine *e, iocomp_port_t port) {
    IOC_PROBE2(close, e, port);
    if (!e || port == IOCOMP_DEFAULT_PORT) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (port == ioc_load(&e->default_port, IOC_ACQUIRE)) return -EINVAL;
    struct ioc_port *p;
    int r = slot_of(e, port, &p);
    if (r < 0) return r;
    return close_slot(e, port, p, ioc_now_ns() + (uint64_t)e->close_timeout_ms * 1000000ull);
}

/* Engine destroy: close every open port (default included) by one deadline.
 * Ports that time out stay CLOSING (zombies); a second destroy retries.
 * A port that someone else is closing (a callback, or a host thread, at the
 * same time as destroy) is waited for like one whose close timed out: its
 * packets are delivered before destroy goes on (audit defect 6: losing the
 * OPEN -> CLOSING CAS to that closer used to fail destroy with -EBADF,
 * leaving the engine closed but not stopped). */
int ioc_ports_close_all(iocomp_engine *e, uint64_t deadline) {
    /* Under ports_lock: port_create_locked() reads it there (defect 7). */
    pthread_mutex_lock(&e->ports_lock);
    ioc_store(&e->closing_all, 1, IOC_SEQ_CST);
    pthread_mutex_unlock(&e->ports_lock);
    int result = 0;
    for (uint32_t idx = 0;; idx++) {
        pthread_mutex_lock(&e->ports_lock);
        uint32_t used = e->ports_used;
        pthread_mutex_unlock(&e->ports_lock);
        if (idx >= used) break;
        struct ioc_port *p = ioc_port_slot(e, idx);
        int r = 0;
        for (;;) {
            uint64_t c = ioc_load(&p->ctl, IOC_ACQUIRE);
            iocomp_port_t h = (iocomp_port_t)ctl_gen(c) << 32 | (idx + 1);
            if (ctl_state(c) == P_OPEN) {
                r = close_slot(e, h, p, deadline);
                if (r == -EBADF) continue; /* another closer won the CAS: look again */
            } else if (ctl_state(c) == P_CLOSING) { /* closing elsewhere, or an earlier close timed out */
                r = wait_drained(e, p, deadline);
                if (r == 0) {
                    pthread_mutex_lock(&e->ports_lock);
                    uint64_t exp = c; /* the other closer may have got there first */
                    ioc_cas(&p->ctl, &exp, mk_ctl(ctl_gen(c), P_CLOSED), IOC_RELEASE, IOC_RELAXED);
                    pthread_mutex_unlock(&e->ports_lock);
                }
            }
            break;
        }
        if (r < 0 && result == 0) result = r;
    }
    return result;
}

void ioc_ports_fini(iocomp_engine *e) {
    for (uint32_t i = 0; i < IOC_PORT_CHUNKS; i++) {
        free(e->port_chunks[i]);
        e->port_chunks[i] = NULL;
    }
}

