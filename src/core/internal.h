/*
 * internal.h - the engine's data structures, shared by the files in src/core.
 *
 * Who owns what (the threads are: host threads, which call the API; worker
 * threads, which run callbacks; nothing else):
 *
 *   iocomp_engine      created and destroyed by a host thread; its immutable
 *                      part is read by everyone; the locks below guard the
 *                      slow paths (port table, bindings, scaling, parking).
 *   struct ioc_worker  one per worker slot, allocated when the slot is first
 *                      used and freed only with the engine, so any thread may
 *                      read a worker it found in e->workers[] at any time.
 *                      Fields are grouped by writer: "owner" fields are written
 *                      by the worker thread alone (others may read them).
 *   struct ioc_port    slots in a two-level table that never moves or shrinks;
 *                      a slot is recycled (generation bumped) only when no
 *                      packet and no worker refers to it any more.
 *   packets            by value, 32 bytes, in ck_ring slots: no allocation on
 *                      the post path.
 *
 * The path of a packet: iocomp_post() (port.c) accounts it to its port, then
 * queue.c puts it in the poster's own worker queue (LIFO slot first) or in the
 * engine's inject queue; park.c wakes a worker if none is looking for work;
 * worker.c finds it (LIFO slot, own ring, inject batch, steal) and runs the
 * callback; after the callback the port accounting is released.
 */
#ifndef IOCOMP_CORE_INTERNAL_H
#define IOCOMP_CORE_INTERNAL_H

#include <iocomp.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <ck_ring.h>

#include "core/atomic.h"
#include "core/fault.h"

/* ---- packets --------------------------------------------------------------- */

/* One completion packet: what a callback receives, plus the port it counts
 * against. 32 bytes: two per cache line in a ring. */
struct ioc_pkt {
    iocomp_overlapped *ov;
    uintptr_t key;
    uint32_t port_idx; /* slot index of the port (internal) */
    int32_t status;
    uint32_t bytes;
    uint32_t flags; /* PKT_IO, PKT_EXEC (core/io.c) */
};
/* An I/O completion: its request goes back to idle before the callback. */
#define PKT_IO 1u
/* Run the request's system call on the dispatching worker first (epoll's
 * regular files). */
#define PKT_EXEC 2u
_Static_assert(sizeof(struct ioc_pkt) == 32, "packet is 32 bytes");

/* ck_ring's typed flavour: ck_ring_{enqueue,dequeue,trydequeue}_{spmc,mpmc}_pkt */
CK_RING_PROTOTYPE(pkt, ioc_pkt)

/* ---- the LIFO slot of a worker (worker.c) ------------------------------------ */
enum { LIFO_EMPTY = 0, LIFO_FULL = 1, LIFO_BUSY = 2 };
struct ioc_lifo {
    ioc_atomic(uint32_t) state; /* EMPTY/FULL/BUSY, see worker.c */
    uint32_t pad_;
    struct ioc_pkt pkt;
};

/* ---- workers ----------------------------------------------------------------- */
enum { W_FREE = 0, W_RUNNING = 1, W_EXITED = 2 };

struct ioc_worker_stats { /* owner-written (ioc_owner_inc), read by iocomp_get_stats */
    ioc_atomic(uint64_t) completions, posts_local, steals, stolen, inject_batches, parks;
    ioc_atomic(uint64_t) io_submitted, io_inline;
};

/* A callback on a worker's stack (worker.c, ioc_dispatch): a node in the
 * dispatching frame, linked innermost first, so a close from a callback
 * counts its port's callbacks on this thread at any nesting depth (port.c). */
struct ioc_frame {
    uint32_t port1; /* port slot index + 1 */
    struct ioc_frame *up;
};
/* Packets a helping closer set aside (port.c, wait_drained), one per
 * helping frame, linked innermost first: a nested closer looks in the
 * outer ones. Owner-private. */
struct ioc_aside {
    struct ioc_pkt *v;
    size_t n, cap;
    struct ioc_aside *outer;
};

struct ioc_worker {
    /* Read by other threads often: its own line. */
    alignas(IOC_CACHELINE) ioc_atomic(uint64_t) cb_seq; /* odd while inside a callback */
    /* Port accounting of this worker, published for closers (worker.c A1-A5):
     * (port_idx + 1) << 32 | packets accepted (in) / finished (out) on this
     * worker since its last flush; 0 = none. */
    ioc_atomic(uint64_t) acct_in;
    ioc_atomic(uint64_t) acct_out;
    ioc_atomic(uint32_t) state; /* W_FREE / W_RUNNING / W_EXITED (scale.c) */

    alignas(IOC_CACHELINE) struct ioc_lifo lifo;

    /* The stealable queue: SPMC, the owner is the only producer; the owner and
     * thieves consume (worker.c). ck_ring pads c_head away from p_tail. */
    alignas(IOC_CACHELINE) struct ck_ring ring;
    struct ioc_pkt *ring_buf;

    /* Owner-private. */
    alignas(IOC_CACHELINE) iocomp_engine *e;
    uint32_t index;       /* slot in e->workers */
    uint32_t rng;         /* victim selection */
    uint32_t lifo_streak; /* consecutive LIFO runs (bounded) */
    uint32_t tick;        /* scheduling ticks, for the inject fairness check */
    uint32_t acct_idx;    /* port slot index + 1 of acct_in/out (0 none) */
    uint32_t a_in, a_out; /* their counts */
    uint32_t depth;       /* callbacks on this thread's stack */
    struct ioc_frame *frame;  /* the innermost of them (NULL: none) */
    struct ioc_aside *aside;  /* the innermost helping closer's set-aside packets */
    uint32_t probe_victim;         /* LIFO steal probe (worker.c) */
    uint64_t probe_seq;
    uint64_t idle_since; /* ns when it last ran out of work (worker.c, adaptive spin) */
    uint64_t gap_avg;    /* moving average of idle gaps, ns */
    /* Inject batching (worker.c, "Taking from the inject queue"). */
    uint64_t inj_cost;   /* moving average of one inject take's duration, ns */
    uint64_t inj_end;    /* ns when the last take that found packets ended */
    bool inj_outran;     /* that take was small: we outran the producers */
    bool retiring; /* won the retire CAS (scale.c) */
    pthread_t thread;
    ioc_atomic(int32_t) tid;  /* kernel thread id, for reports */
    ioc_atomic(int) cpu_clock;       /* its CPU-time clock, set by the worker ... */
    ioc_atomic(bool) has_cpu_clock;  /* ... then published (release) for the monitor */
    uint64_t injected_at;     /* ns when the monitor started it for waiting work, 0 else */

    /* Parking (park.c): the futex word and the idle-stack link, guarded by
     * the engine's park lock except the word's wait/wake. */
    alignas(IOC_CACHELINE) ioc_atomic(uint32_t) futex_word;
    struct ioc_worker *park_next;
    bool parked; /* in the idle stack (park lock) */

    alignas(IOC_CACHELINE) struct ioc_worker_stats st;

    void *be_slot; /* the backend's per-slot state (io_uring: the ring) */
};

/* ---- ports ----------------------------------------------------------------------- */
enum { P_FREE = 0, P_OPEN = 1, P_CLOSING = 2, P_CLOSED = 3 };
#define IOC_PORT_CHUNK 256u
#define IOC_PORT_CHUNKS 256u
#define IOC_PORTS_MAX (IOC_PORT_CHUNK * IOC_PORT_CHUNKS - 1u) /* 65535 */

struct ioc_port {
    /* Packets accepted from host threads plus flushed worker counts (in),
     * and flushed finished counts (out). Both only grow while the slot is in
     * use; in - out (plus the workers' unflushed counts) is in flight. */
    alignas(IOC_CACHELINE) ioc_atomic(uint64_t) count_in;
    alignas(IOC_CACHELINE) ioc_atomic(uint64_t) count_out;
    /* Packets accepted from host threads: written only under the engine's
     * inject lock (a plain store of load + 1), read by closers after they
     * took and released that lock once (port.c). */
    ioc_atomic(uint64_t) count_host;
    /* generation << 32 | state. Submitters read it after counting themselves
     * in; close writes it (port.c). */
    alignas(IOC_CACHELINE) ioc_atomic(uint64_t) ctl;
    uint32_t idx;
    bool zombie;                /* closed or timed out, awaiting reclamation */
    struct ioc_port *next_free; /* free list / zombie list (ports_lock) */
};

/* ---- the inject queue (queue.c) ----------------------------------------------------- */
struct ioc_ovf_chunk;
struct ioc_inject {
    alignas(IOC_CACHELINE) struct ck_ring ring; /* producers under `lock`, consumers lock-free */
    struct ioc_pkt *buf;
    /* Producers' lock (only producers take it). */
    alignas(IOC_CACHELINE) pthread_mutex_t lock;
    ioc_atomic(uint64_t) posts;     /* packets pushed by non-workers (stats; written under lock) */
    /* The overflow list (a FIFO of chunks), under its own lock: producers
     * (holding `lock` first) append when the ring is full, consumers take. */
    alignas(IOC_CACHELINE) pthread_mutex_t ovf_lock;
    struct ioc_ovf_chunk *ovf_head, *ovf_tail;
    ioc_atomic(uint64_t) ovf_count; /* packets in the overflow list */
    ioc_atomic(uint64_t) ovf_total; /* packets that ever went there */
};

/* ---- parking (park.c) ------------------------------------------------------------- */
struct ioc_park {
    alignas(IOC_CACHELINE) pthread_mutex_t lock;
    struct ioc_worker *top; /* idle stack: most recently parked first */
    ioc_atomic(uint32_t) nidle;     /* workers in the idle stack */
    ioc_atomic(uint32_t) nspinning; /* workers polling for work */
    ioc_atomic(uint64_t) wakeups;
};

/* ---- the completion manager ---------------------------------------------------------- */
struct ioc_cb {
    iocomp_complete_cb fn;
    void *ctx;
    struct ioc_cb *older; /* kept until the engine dies: workers may still read one */
};

/* A descriptor's binding (core/io.c): a seqlock-protected record read
 * lock-free by submitters, written under bind_lock. */
struct ioc_binding {
    ioc_atomic(uint32_t) seq;   /* odd while a writer changes the record */
    ioc_atomic(uint32_t) gen;   /* bumped at every bind: the descriptor generation */
    ioc_atomic(uint32_t) flags; /* BIND_SKIP | kind << 8 */
    ioc_atomic(uint64_t) port;  /* the port handle; 0: unbound */
    ioc_atomic(uintptr_t) key;
};
#define IOC_BIND_CHUNK 1024u
#define IOC_BIND_CHUNKS 1024u /* descriptors below 2^20 */
struct ioc_backend_ops;

struct ioc_heap;

struct iocomp_engine {
    /* Immutable after creation. */
    uint32_t local_cap, inject_cap, spin_ns, close_timeout_ms, keep_alive_ms;
    uint32_t concurrency; /* the runnable-workers target (scale.c) */
    iocomp_overlapped_init_cb ov_init;
    void *ov_init_ctx;

    /* The completion manager: the newest pair, published with release, read
     * with acquire by workers (worker.c) and posters. */
    ioc_atomic(struct ioc_cb *) cb;
    ioc_atomic(bool) cb_enabled;
    /* ioc_fork_epoch when the engine was created (engine.c, "fork"): a
     * process whose epoch differs is a child of fork() and may not use it. */
    uint32_t fork_epoch;

    /* Host extension size; frozen (no more changes) at the first port,
     * binding or overlapped. Both under `lock`; frozen is read lock-free. */
    size_t ext_size;
    ioc_atomic(bool) ext_frozen;
    pthread_mutex_t lock; /* ext size, cb list, default port creation */

    /* Threads (scale.c). min/max written under scale_lock, read anywhere. */
    pthread_mutex_t scale_lock;
    ioc_atomic(uint32_t) min_threads, max_threads;
    ioc_atomic(uint32_t) live;     /* workers counted alive (see scale.c) */
    ioc_atomic(uint32_t) nslots;   /* high-water mark of e->workers */
    ioc_atomic(uint64_t) started, retired, start_failures;
    ioc_atomic(int) stopping;      /* destroy: workers drain and exit */
    ioc_atomic(uint64_t) injections, blocked_injections;
    /* Runnable workers above the concurrency target that should park now
     * (set by the monitor after blocked callbacks return; claimed by CAS). */
    alignas(IOC_CACHELINE) ioc_atomic(int32_t) excess;
    ioc_atomic(uint64_t) excess_parks;
    ioc_atomic(uint64_t) inj_run_max, inj_run_total, inj_run_count;

    /* The monitor (scale.c): one thread per engine, sampling while the
     * engine is busy, asleep on mon_word while it is idle. */
    pthread_t monitor;
    bool has_monitor;
    ioc_atomic(int) mon_stop;
    ioc_atomic(uint32_t) mon_word;     /* futex: 1 while the monitor sleeps */
    ioc_atomic(uint32_t) mon_sleeping; /* the Dekker flag workers read (scale.c) */
    ioc_atomic(uint64_t) mon_seq[IOCOMP_THREADS_LIMIT];   /* cb_seq last seen per slot */
    ioc_atomic(uint64_t) mon_since[IOCOMP_THREADS_LIMIT]; /* when first seen in it (ns) */
    uint64_t mon_cpu[IOCOMP_THREADS_LIMIT];  /* worker's thread CPU time at the last sample */
    uint64_t mon_at[IOCOMP_THREADS_LIMIT];   /* ... and when it was read */
    ioc_atomic(int) closing_all;   /* destroy in progress: no new ports */

    struct ioc_park park;
    struct ioc_inject inj;

    /* Ports (port.c). */
    ioc_atomic(uint32_t) close_epoch; /* bumped when a port starts closing (helping closers look again) */
    pthread_mutex_t ports_lock;
    struct ioc_port *port_chunks[IOC_PORT_CHUNKS]; /* entries written once, under ports_lock */
    uint32_t ports_used;                            /* slots handed out (high-water) */
    struct ioc_port *port_free;                      /* recyclable slots */
    struct ioc_port *zombies;                        /* closed, awaiting reclamation */
    ioc_atomic(uint32_t) ports_open;
    ioc_atomic(uint64_t) default_port; /* handle, 0 until first use */

    /* Bindings: fd -> (port, key), written under bind_lock (core/io.c). */
    pthread_mutex_t bind_lock;
    ioc_atomic(struct ioc_binding *) bind_chunks[IOC_BIND_CHUNKS];

    /* The I/O backend (src/backends/backend.h). */
    const struct ioc_backend_ops *be;
    void *be_state;
    ioc_atomic(uint64_t) io_host_submitted, io_host_inline, io_cancels;

    struct ioc_heap *heap; /* overlapped memory (overlapped.c) */

    ioc_atomic(struct ioc_worker *) workers[IOCOMP_THREADS_LIMIT];
};

/* The worker running on this thread (NULL on host threads). initial-exec:
 * one %fs-relative load instead of a __tls_get_addr call from the shared
 * library (jemalloc does the same; glibc keeps static TLS space for it). */
extern __thread struct ioc_worker *ioc_self __attribute__((tls_model("initial-exec")));

/* ---- fork (engine.c) ------------------------------------------------------------------- */
/* Bumped by the pthread_atfork child handler, in the child only. Relaxed is
 * enough: the handler runs in the child's one thread before fork() returns
 * there, so every later load in the child is ordered after it (by program
 * order, or by the pthread_create of any thread the child starts); the
 * parent's copy never changes. */
extern ioc_atomic(uint32_t) ioc_fork_epoch;
/* True in a child of fork() for an engine it inherited: every entry point
 * returns -ECHILD at once (iocomp.h, "fork"). Any thread; one relaxed load. */
static inline bool ioc_forked(const iocomp_engine *e) {
    return ioc_unlikely(ioc_load(&ioc_fork_epoch, IOC_RELAXED) != e->fork_epoch);
}
#define IOC_FORK_GUARD(e)                                                                          \
    do {                                                                                          \
        if (ioc_forked(e)) return -ECHILD;                                                        \
    } while (0)

static inline struct ioc_worker *ioc_self_in(iocomp_engine *e) {
    struct ioc_worker *w = ioc_self;
    return (w && w->e == e) ? w : NULL;
}

/* ---- cross-file internals ------------------------------------------------------------------ */

/* queue.c */
int ioc_queue_init(iocomp_engine *e);
void ioc_queue_fini(iocomp_engine *e);
bool ioc_local_push(struct ioc_worker *w, const struct ioc_pkt *p);
bool ioc_local_pop(struct ioc_worker *w, struct ioc_pkt *out);
unsigned ioc_ring_take(struct ck_ring *r, struct ioc_pkt *buf, struct ioc_pkt *out, unsigned max, unsigned share);
int ioc_inject_push(iocomp_engine *e, const struct ioc_pkt *p);
int ioc_inject_post(iocomp_engine *e, struct ioc_port *port, uint32_t gen, const struct ioc_pkt *p);
int ioc_inject_accept(iocomp_engine *e, struct ioc_port *port, uint32_t gen);
void ioc_inject_barrier(iocomp_engine *e);
unsigned ioc_inject_take(iocomp_engine *e, struct ioc_pkt *out, unsigned max, unsigned share, uint32_t tick);
unsigned ioc_queue_capacity(unsigned requested, unsigned dflt);
bool ioc_inject_nonempty(iocomp_engine *e);
uint64_t ioc_local_size(struct ioc_worker *w);
unsigned ioc_ring_pending(struct ck_ring *r);

/* park.c */
void ioc_park_init(struct ioc_park *p);
void ioc_park_fini(struct ioc_park *p);
void ioc_notify(iocomp_engine *e);       /* after publishing work */
void ioc_wake_one(iocomp_engine *e);
void ioc_wake_all(iocomp_engine *e);
bool ioc_park(struct ioc_worker *w, bool yielding); /* owner: sleep until woken; true: retire (keep-alive) */
bool ioc_work_visible(iocomp_engine *e);  /* any packet anywhere? */

/* worker.c */
void *ioc_worker_main(void *arg);
void ioc_lifo_put(struct ioc_worker *w, const struct ioc_pkt *p);
bool ioc_find_work(struct ioc_worker *w, struct ioc_pkt *out);
void ioc_dispatch(struct ioc_worker *w, const struct ioc_pkt *p);
void ioc_acct_flush(struct ioc_worker *w);
void ioc_acct_switch(struct ioc_worker *w, uint32_t idx1);
void ioc_worker_drain(struct ioc_worker *w);

/* port.c */
struct ioc_port *ioc_port_slot(iocomp_engine *e, uint32_t idx);
int ioc_port_lookup(iocomp_engine *e, iocomp_port_t h, struct ioc_port **out);
int ioc_ports_close_all(iocomp_engine *e, uint64_t deadline_ns);
void ioc_ports_fini(iocomp_engine *e);
void ioc_binds_fini(iocomp_engine *e);
int ioc_port_accept(iocomp_engine *e, struct ioc_worker *w, iocomp_port_t h, uint32_t *idx);
void ioc_port_unaccept(iocomp_engine *e, uint32_t idx);
int ioc_port_resolve(iocomp_engine *e, iocomp_port_t *h); /* the default alias to its handle */

/* io.c */
int ioc_io_init(iocomp_engine *e, const iocomp_config *cfg);
void ioc_io_fini(iocomp_engine *e);
void ioc_unbind_port(iocomp_engine *e, iocomp_port_t h);
void ioc_io_stats(iocomp_engine *e, iocomp_stats *out);
void ioc_freeze_ext(iocomp_engine *e);

/* scale.c */
int ioc_scale_start(iocomp_engine *e, uint32_t n); /* ensure >= n live */
bool ioc_should_retire(struct ioc_worker *w);
void ioc_worker_exited(struct ioc_worker *w);
void ioc_scale_stop_all(iocomp_engine *e);
void ioc_scale_fini(iocomp_engine *e);
void ioc_join_exited(iocomp_engine *e);
int ioc_monitor_start(iocomp_engine *e);
void ioc_monitor_stop(iocomp_engine *e);
void ioc_monitor_poke(iocomp_engine *e); /* a worker left idle: wake the monitor if it sleeps */
void ioc_report_stuck(iocomp_engine *e, const char *what);

/* overlapped.c */
int ioc_heap_create(iocomp_engine *e);
void ioc_heap_release(iocomp_engine *e); /* at destroy: the arena back to the pool */
void ioc_heap_worker_init(struct ioc_worker *w); /* on the worker's thread */

/* time */
uint64_t ioc_now_ns(void);

#endif
