/*
 * uring.c - the io_uring backend (liburing).
 *
 * Theory of operation
 * -------------------
 * One ring per worker slot (struct uslot), created with the slot and kept
 * until the engine dies, so a ring outlives the threads that run on its slot.
 * Everything that touches a ring's SQ or CQ holds the slot's lock, a
 * spinlock held only for short, non-blocking work (never across a callback
 * or a sleep; the one exception: when the kernel refuses SQEs until its CQ
 * is drained (-EBUSY, CQ overflow), the submit and poll paths reap into the
 * inject queue under it, which may take the inject mutex and allocate; the
 * monitor's rescue, the common non-owner reap, delivers after unlocking).
 * Who takes it:
 *   - the owner worker: to prepare an SQE when a callback submits (no system
 *     call: the SQE waits in the SQ), and in poll() when it runs out of
 *     queued work: submit everything prepared (one io_uring_enter for the
 *     batch), then move ready CQEs into its own stealable ck_ring;
 *   - host threads (not workers): they never touch the SQ. They append the
 *     request to the slot's hand-off list (under the lock) and wake the owner
 *     if it sleeps in its ring; the owner prepares and submits them. So every
 *     request is issued by an engine thread: a host thread that exits does
 *     not take its requests with it (io_uring cancels a task's requests when
 *     it exits) and no task work ever runs on a host thread;
 *   - the monitor (rescue()): when the owner has been inside one callback for
 *     a whole sample, it submits what the owner prepared and the hand-off
 *     list, and moves ready CQEs into the engine's inject queue, where every
 *     worker looks. A stuck callback therefore strands nothing: the monitor
 *     samples every 0.4-2 ms while any callback runs. (Completions posted by
 *     the owner's task work reach the CQ when the owner next leaves the
 *     kernel or wakes from an interruptible sleep, at the latest a
 *     scheduler tick later: see u_slot_init on COOP_TASKRUN);
 *   - a canceller (iocomp_cancel, cancel_fd, a port's close): it prepares
 *     IORING_OP_ASYNC_CANCEL on the ring the request went to (the kernel
 *     searches only that ring), found through the slot's in-flight list.
 *     It never submits: with the SQ full, a canceller that is not the
 *     owner marks the request CANCEL_WANTED and the owner prepares the
 *     cancel at its next poll (the task that enters io_uring_enter becomes
 *     the submitter of the whole batch, and the kernel cancels a task's
 *     requests when it exits: a host canceller that then exited took the
 *     owner's prepared requests with it).
 * The kernel sees one submitter at a time (the lock), so the ring's
 * single-issuer discipline holds without IORING_SETUP_SINGLE_ISSUER, which
 * would tie the ring to one task and forbid the monitor's rescue.
 *
 * Feature levels: the backend runs on what Linux 5.15 has (NODROP, EXT_ARG,
 * the opcode probe, the opcodes of iocomp.h, ASYNC_CANCEL: ioc_uring_probe).
 * Each optional feature (UF_*) is probed on its own, once per process, and
 * has a path for when it is missing, named where it is used: FUTEX_WAIT
 * (the park, below), SUBMIT_ALL (submit_locked), COOP_TASKRUN and
 * TASKRUN_FLAG, CQSIZE (u_slot_init). Not used, by design: DEFER_TASKRUN
 * and SINGLE_ISSUER (they tie a ring to one task: no rescue), ring-fd
 * registration (per task: the monitor and the owner share the ring),
 * multishot accept (no such call in iocomp.h). Test builds can turn
 * features off (IOCOMP_URING_FEATURES, features_for).
 *
 * Parking: a worker with nothing to do sleeps in io_uring_enter(GETEVENTS)
 * on its own ring, with an IORING_OP_FUTEX_WAIT on its park word armed in
 * the same ring. park.c's waker stores 0 and calls FUTEX_WAKE as before,
 * which completes the futex wait and ends the sleep; a CQE of any of the
 * ring's requests ends it too (park returns 2: completions were pushed).
 * The futex wait stays armed across wake-ups by I/O (a stale one is
 * harmless: it waits on the same word, and a FUTEX_WAKE for this worker
 * then completes it).
 *
 * Without IORING_OP_FUTEX_WAIT (before Linux 6.7, UF_FUTEX_WAIT off) the
 * armed entry is an IORING_OP_POLL_ADD(POLLIN) on the slot's own eventfd,
 * and kick_owner() writes 1 to the eventfd where it would FUTEX_WAKE the
 * word: the write completes the poll, whose CQE ends the ring wait. Its
 * CQE leaves the eventfd readable, so the owner reads it empty before it
 * arms the next one (u_park, outside the lock: efd_dirty). The argument is
 * the futex one: the entry is submitted before the owner stores
 * sleeping = RING; a kicker that reads RING writes after that, so the
 * armed poll sees the write (or the write landed before the owner's
 * check, which then sees the change itself); the drain happens before the
 * arm, so it can only eat a write meant for an earlier sleep. A stale
 * write (a kicker that read RING for a sleep that already ended) ends a
 * later sleep early: a spurious wake-up, never a lost one. Cost: the
 * owner's drain, one read(2) per wake-up by a kick (measured in
 * docs/ARCHITECTURE.md, "io_uring feature levels").
 *
 * With nothing in flight the owner sleeps in futex(2) instead, on its
 * slot's kick word, not on the park word: a hand-off does not change the
 * park word, so a FUTEX_WAKE on it that came before the owner's FUTEX_WAIT
 * would be lost (the wait compares the word, still 1, and sleeps: a
 * stranded request, seen by tests/io_first_submit and io_signal_storm).
 * Waking it bumps kick first, so a wait that comes late sees a new value.
 *
 * Wake-ups, Dekker pairs (each side: store, full barrier, load):
 *     owner:  sleeping = RING|FUTEX ; fence ; k = kick ; read word, handoff,
 *             pending, wanted ; nothing? sleep (futex: FUTEX_WAIT(kick, k))
 *     host:   handoff += r (lock) ; fence ; read sleeping ; kick_owner()
 *     waker:  word = 0 (park.c)   ; fence ; read sleeping ; kick_owner()
 *     canceller: SQE prepared, or CANCEL_WANTED counted in `wanted` (lock) ;
 *             fence ; read sleeping ; kick_owner()
 * Either the owner sees the change, or the other side sees it sleeping and
 * kick_owner() wakes it: RING: FUTEX_WAKE on the park word completes the
 * armed, already submitted FUTEX_WAIT (it completes whatever the word's
 * value), or the eventfd write completes the armed POLL_ADD; FUTEX: kick += 1 (release) then FUTEX_WAKE on kick: a wait not
 * yet entered compares k and returns at once. The increment is ordered
 * after the change by the fence, and the owner reads kick before it looks.
 *
 * Backpressure and overflow: a CQE is consumed only after its packet went
 * into the owner's ring; when that ring is full the rest stay in the CQ and
 * the kernel keeps what does not fit in its overflow list
 * (IORING_FEAT_NODROP, required by the probe); io_uring_enter then fails
 * with -EBUSY until the CQ is drained, which poll() does first. If the
 * kernel ever drops CQEs (-EBADR, or the CQ's overflow counter moves), it is
 * counted (io_cq_dropped) and said on stderr (the first time, then at most
 * once a second: report_drop): that would be a lost completion. One -EBADR
 * is a drop the kernel reports once; the submit retries once, a second in
 * a row leaves the SQEs pending for the next poll, and a ring wait that
 * keeps failing so waits 1 ms between tries (tools/faults.sh, ebadr-*).
 *
 * Descriptors: the kernel resolves an SQE's descriptor number when it
 * consumes the SQE, which is later than the submit call (batching, hand-off).
 * A number closed and reused in between would send the request to another
 * file. So:
 *   - a host thread's request holds a duplicate (F_DUPFD_CLOEXEC, taken in
 *     the submit call) and the SQE names the duplicate; the reaper closes it
 *     with the CQE, or the canceller when it takes the request out of the
 *     hand-off list. Not as soon as the SQE is consumed: the kernel takes
 *     its own reference to the file then for most operations, but fsync
 *     (forced to io-wq) looks the number up later, in the io-wq worker,
 *     which shares our descriptor table (measured: -EBADF on Linux 6.18).
 *     A host submit therefore costs two extra system calls (dup, close), a
 *     descriptor while in flight, and may fail with -EMFILE;
 *   - a cancel that finds the request's SQE still unconsumed in the SQ turns
 *     it into a NOP completing -ECANCELED (CANCEL_NEUTERED), so
 *     iocomp_close_fd() (cancel, unbind, close) never lets a prepared SQE
 *     reach the next file with that number;
 *   - a submit re-reads the binding under the slot lock, in the critical
 *     section that links or hands off the request; if an unbind (close_fd,
 *     a rebind of the number) came in between, it completes the request
 *     -ECANCELED instead, never linked: the unbinder's cancel pass takes
 *     every slot lock after its binding write, so one of the two sees the
 *     other (binding_gone());
 *   - a callback's fsync holds a duplicate like a host request (it resolves
 *     its number in io-wq, long after the owner's submit);
 *   - a callback's request is issued at its worker's next poll (when its
 *     queue runs dry, or at the latest 61 callbacks later): a raw close(2) of
 *     the descriptor by another thread inside that window, without
 *     iocomp_close_fd()/iocomp_unbind(), is the caller's race (iocomp.h).
 *
 * user_data: the request pointer (16-byte aligned), or a tag in the low bits
 * for the ring's own entries (TAG_CANCEL: an ASYNC_CANCEL's result,
 * ignored; TAG_WAKE: the park's wake-up entry).
 *
 * Invariants
 *   U1 A request is in exactly one of: its slot's hand-off list, the ring
 *      (linked into the slot's in-flight list), the hands of a thread that
 *      took it out of either (a canceller, the monitor's rescue, a submit
 *      that cancels itself) and pushes its completion right after the slot
 *      lock, or a packet. Both lists change only under the slot lock.
 *   U2 inflight counts the in-flight list; a worker retires only when its
 *      slot has nothing in flight and nothing handed off (thread_retire), and
 *      then the slot is closed to host hand-offs until a thread starts on it
 *      (or the worker, staying after all, reopens it: thread_start).
 *   U3 A CQE is consumed (cq_advance) only once its completion is pushed
 *      (the owner's reap) or held by the reaper, who pushes it as soon as it
 *      released the slot lock (the monitor's rescue, U1).
 *   U4 r->ring is RING_NONE while the request is not issued: from the
 *      submit through its time on a hand-off list (a host's, or the owner's
 *      own when the kernel refused SQEs), the slot index while issued,
 *      RING_DONE once reaped or taken out of a hand-off list by a canceller.
 *      A cancel that reads RING_NONE searches the hand-off lists (it spins
 *      only across the few instructions between a submit's claim and its
 *      hand-off or issue); RING_DONE answers -ENOENT at once (the completion
 *      is on its way).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include "backends/backend.h"

#ifndef IORING_OP_FUTEX_WAIT_NR
#define IORING_OP_FUTEX_WAIT_NR 51 /* Linux 6.7; Debian 12's headers predate it */
#endif
#define FUTEX2_SIZE_U32_ 0x02u
#define FUTEX2_PRIVATE_ 128u

#define CANCEL_ASKED 1    /* r->cancelled: an IORING_OP_ASYNC_CANCEL is on its way */
#define CANCEL_NEUTERED 2 /* r->cancelled: its unsubmitted SQE became a NOP */
#define CANCEL_WANTED 3   /* r->cancelled: asked, but the SQ was full: the owner prepares it */
#define RING_DONE 0xfffeu /* r->ring: issued here, then reaped (the core resets it per submit) */
#define UF_FUTEX_WAIT 1u   /* IORING_OP_FUTEX_WAIT (6.7): the ring wait sleeps on the park word */
#define UF_SUBMIT_ALL 2u   /* IORING_SETUP_SUBMIT_ALL (5.18): one enter submits past a failing SQE */
#define UF_COOP_TASKRUN 4u /* IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG (5.19) */
#define UF_CQSIZE 8u       /* IORING_SETUP_CQSIZE (5.5): a CQ of twice the SQ, asked for */
#define SLEEP_NONE 0u
#define SLEEP_FUTEX 1u /* in futex(2) on s->kick */
#define SLEEP_RING 2u  /* in io_uring_enter, its FUTEX_WAIT armed on the park word */
#define TAG_CANCEL 1u
#define TAG_WAKE 2u /* the park's wake-up entry: FUTEX_WAIT on the park word, or POLL_ADD on the slot's eventfd */
#define TAG_MASK 15u
#define REAP_MAX 64u

struct uslot {
    ioc_atomic(uint32_t) lock; /* 0 free, 1 held */
    struct io_uring ring;
    bool has_ring;
    bool futex_armed;                   /* under lock: the TAG_WAKE entry is in the ring */
    int efd;                            /* UF_FUTEX_WAIT missing: the ring wait's eventfd, else -1 */
    ioc_atomic(uint32_t) efd_dirty;     /* its POLL_ADD fired: the owner drains it before re-arming */
    ioc_atomic(bool) open;              /* a thread runs here: hosts may hand off */
    ioc_atomic(uint32_t) pending;       /* SQEs prepared, not yet submitted (written under lock) */
    ioc_atomic(uint32_t) wanted;        /* linked requests CANCEL_WANTED (written under lock) */
    ioc_atomic(uint32_t) sleeping;      /* SLEEP_*: where the owner may sleep (the Dekker pairs) */
    ioc_atomic(uint32_t) kick;          /* the owner's futex(2) sleep waits on this value */
    ioc_atomic(struct ioc_req *) handoff; /* host requests to issue (written under lock) */
    struct ioc_req *handoff_tail;
    struct ioc_req *inflight_head;      /* under lock */
    uint32_t inflight;                  /* under lock */
    struct ioc_worker *w;
};

struct ueng {
    unsigned entries;
    unsigned feat;      /* UF_*: the optional features this engine uses */
    char feat_str[64];  /* their names (iocomp_backend_features) */
    ioc_atomic(uint32_t) rr; /* host hand-off round robin */
    ioc_atomic(uint64_t) sq_full, cq_overflow, dropped, rescued, eintr;
    /* report_drop's stderr line: the first, then at most one a second
     * (ioc_now_ns of the last printed; the count printed then). */
    ioc_atomic(uint64_t) drop_said_ns, drop_said;
};

static inline struct uslot *slot_of(struct ioc_worker *w) { return w->be_slot; }
static inline struct ueng *ueng_of(iocomp_engine *e) { return e->be_state; }

static inline void slot_lock(struct uslot *s) {
    for (;;) {
        /* Acquire pairs with slot_unlock's release: the ring state the last
         * holder left is visible. */
        if (ioc_xchg(&s->lock, 1, IOC_ACQUIRE) == 0) return;
        while (ioc_load(&s->lock, IOC_RELAXED)) ioc_cpu_relax();
    }
}
static inline bool slot_trylock(struct uslot *s) { return ioc_xchg(&s->lock, 1, IOC_ACQUIRE) == 0; }
static inline void slot_unlock(struct uslot *s) { ioc_store(&s->lock, 0, IOC_RELEASE); }

/* ---- probe ------------------------------------------------------------------ */
/* The minimum (Linux 5.15 has it all): IORING_FEAT_NODROP, IORING_FEAT_EXT_ARG
 * (5.11), the opcode probe (5.6) and the opcodes below. Everything else is
 * an optional feature (UF_*), probed on its own, each with a path for when
 * it is missing (docs/ARCHITECTURE.md, "io_uring feature levels"). */
static const struct {
    unsigned bit;
    const char *name;
} uf_names[] = {
    {UF_FUTEX_WAIT, "futex_wait"},
    {UF_SUBMIT_ALL, "submit_all"},
    {UF_COOP_TASKRUN, "coop_taskrun"},
    {UF_CQSIZE, "cqsize"},
};

static bool setup_flags_work(unsigned flags) {
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = flags;
    if (flags & IORING_SETUP_CQSIZE) p.cq_entries = 16;
    if (io_uring_queue_init_params(4, &ring, &p) < 0) return false;
    io_uring_queue_exit(&ring);
    return true;
}

static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER; /* guards the two below */
static int probe_rc;
static unsigned probe_feat;

static void probe_once(void) {
    struct io_uring ring;
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int r = io_uring_queue_init_params(4, &ring, &p);
    if (r < 0) {
        probe_rc = r; /* -ENOSYS, -EPERM (seccomp, io_uring_disabled) ... */
        return;
    }
    int rc = 0;
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG)) rc = -EOPNOTSUPP;
    struct io_uring_probe *pr = rc ? NULL : io_uring_get_probe_ring(&ring);
    if (!rc && !pr) rc = -EOPNOTSUPP;
    static const int ops[] = {IORING_OP_NOP,     IORING_OP_READ,    IORING_OP_WRITE,     IORING_OP_READV,
                              IORING_OP_WRITEV,  IORING_OP_RECV,    IORING_OP_SEND,      IORING_OP_RECVMSG,
                              IORING_OP_SENDMSG, IORING_OP_ACCEPT,  IORING_OP_CONNECT,   IORING_OP_POLL_ADD,
                              IORING_OP_FSYNC,   IORING_OP_TIMEOUT, IORING_OP_ASYNC_CANCEL};
    for (size_t i = 0; pr && i < sizeof ops / sizeof ops[0]; i++)
        if (!io_uring_opcode_supported(pr, ops[i])) rc = -EOPNOTSUPP;
    unsigned f = 0;
    if (pr && io_uring_opcode_supported(pr, IORING_OP_FUTEX_WAIT_NR)) f |= UF_FUTEX_WAIT;
    if (pr) io_uring_free_probe(pr);
    io_uring_queue_exit(&ring);
    if (!rc) {
        if (setup_flags_work(IORING_SETUP_SUBMIT_ALL)) f |= UF_SUBMIT_ALL;
        if (setup_flags_work(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG)) f |= UF_COOP_TASKRUN;
        if (setup_flags_work(IORING_SETUP_CQSIZE)) f |= UF_CQSIZE;
    }
    probe_rc = rc;
    probe_feat = f;
}

/* Whether the kernel lets this process set up a ring now, in one system
 * call and without making one: io_uring_setup(0 entries) is -EINVAL when
 * io_uring is allowed, -EPERM when kernel.io_uring_disabled (6.6+) or a
 * seccomp filter refuses it, -ENOSYS when the kernel has none. */
static int uring_allowed(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int r = io_uring_setup(0, &p);
    if (r >= 0) { /* no kernel makes a ring of 0 entries; keep nothing */
        close(r);
        return 0;
    }
    return r == -EINVAL ? 0 : r;
}

/* What the kernel has (the minimum, the optional features) is probed once
 * per process and kept once it is an answer the kernel will not change:
 * it works, or it is too old (-EOPNOTSUPP, -EINVAL). Whether the process
 * may use it is asked again at every engine (uring_allowed, one failing
 * system call): kernel.io_uring_disabled can change at any time
 * (tests/io_uring_disabled: set to 2 after a first engine, the next
 * default engine's rings failed with -EPERM instead of it running epoll).
 * Refused (-EPERM, -ENOSYS) or out of descriptors or memory: the whole
 * probe runs again next time. */
int ioc_uring_probe(void) {
    static bool settled;
    pthread_mutex_lock(&probe_lock);
    if (!settled) {
        probe_once();
        settled = probe_rc == 0 || probe_rc == -EOPNOTSUPP || probe_rc == -EINVAL;
    }
    int rc = probe_rc;
    pthread_mutex_unlock(&probe_lock);
    if (rc == 0) rc = uring_allowed();
    return rc;
}

/* The optional features the kernel has, less those a test build's
 * IOCOMP_URING_FEATURES turns off: "min" (all of them) or a comma-separated
 * list of "-name" (tests/io_uring_features). -EINVAL for anything else. */
static int features_for(unsigned *out) {
    pthread_mutex_lock(&probe_lock);
    unsigned f = probe_feat; /* ioc_io_init probed first */
    pthread_mutex_unlock(&probe_lock);
#if defined(IOCOMP_FAULT_INJECTION)
    const char *env = getenv("IOCOMP_URING_FEATURES");
    if (env && *env) {
        if (strcmp(env, "min") == 0) {
            f = 0;
        } else {
            const char *p = env;
            while (*p) {
                const char *end = strchr(p, ',');
                size_t len = end ? (size_t)(end - p) : strlen(p);
                bool known = false;
                for (size_t i = 0; p[0] == '-' && i < sizeof uf_names / sizeof uf_names[0]; i++) {
                    if (len - 1 == strlen(uf_names[i].name) && memcmp(p + 1, uf_names[i].name, len - 1) == 0) {
                        f &= ~uf_names[i].bit;
                        known = true;
                    }
                }
                if (!known) {
                    fprintf(stderr, "iocomp: IOCOMP_URING_FEATURES=%s: say min, or -name,... with a name of "
                                    "futex_wait, submit_all, coop_taskrun, cqsize\n", env);
                    return -EINVAL;
                }
                p += len;
                if (*p == ',') p++;
            }
        }
    }
#endif
    *out = f;
    return 0;
}

/* ---- engine and slots --------------------------------------------------------- */
static int u_init(iocomp_engine *e, const iocomp_config *cfg) {
    struct ueng *u = calloc(1, sizeof *u);
    if (!u) return -ENOMEM;
    unsigned n = cfg->ring_entries ? cfg->ring_entries : 256u;
    if (n < 4) n = 4;
    if (n > 32768) n = 32768;
    unsigned p2 = 4;
    while (p2 < n) p2 <<= 1;
    u->entries = p2;
    int rc = features_for(&u->feat);
    if (rc < 0) {
        free(u);
        return rc;
    }
    size_t len = 0;
    for (size_t i = 0; i < sizeof uf_names / sizeof uf_names[0]; i++)
        if (u->feat & uf_names[i].bit)
            len += (size_t)snprintf(u->feat_str + len, sizeof u->feat_str - len, "%s%s", len ? " " : "",
                                    uf_names[i].name);
    e->be_state = u;
    return 0;
}

static const char *u_features(iocomp_engine *e) { return ueng_of(e)->feat_str; }

static void u_fini(iocomp_engine *e) {
    free(e->be_state);
    e->be_state = NULL;
}

static int u_slot_init(struct ioc_worker *w) {
    struct uslot *s = calloc(1, sizeof *s);
    if (!s) return -ENOMEM;
    struct ueng *u = ueng_of(w->e);
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    /* IORING_SETUP_COOP_TASKRUN | TASKRUN_FLAG, not DEFER_TASKRUN (nor
     * SINGLE_ISSUER, which it needs: it would tie the ring to one task and
     * forbid the monitor's rescue). Many completions (a socket that became
     * readable) are posted by task work that runs in the submitting task,
     * the owner worker. COOP only drops the IPI that would interrupt the
     * owner while it runs in user space (TWA_SIGNAL_NO_IPI): the task work
     * still wakes an owner asleep in an interruptible wait (a blocked
     * callback: nanosleep, a socket read, a futex), and an owner computing
     * in a callback runs it at its next return from the kernel, at the
     * latest the next scheduler tick (4 ms at HZ=250; never on a nohz_full
     * CPU running only it). The CQE then reaches the monitor's rescue
     * (tests/io_stuck_worker, sleeping and spinning rounds). Its price
     * without COOP, measured: W3 echo 145 k msgs/s at 6.82 us of CPU a
     * message, against 157 k and 6.33 us with it (the interrupts cost 8%).
     * TASKRUN_FLAG tells poll() (IORING_SQ_TASKRUN) that task work waits
     * for an io_uring_enter. Without UF_COOP_TASKRUN (before 5.19) the
     * ring has neither and the kernel interrupts the owner instead.
     * Without UF_CQSIZE the kernel's default CQ is the same size (twice the
     * SQ). Without UF_SUBMIT_ALL, submit_locked loops past a failed SQE. */
    if (u->feat & UF_SUBMIT_ALL) p.flags |= IORING_SETUP_SUBMIT_ALL;
    if (u->feat & UF_COOP_TASKRUN) p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    if (u->feat & UF_CQSIZE) {
        p.flags |= IORING_SETUP_CQSIZE;
        p.cq_entries = u->entries * 2;
    }
    s->efd = -1;
    if (!(u->feat & UF_FUTEX_WAIT)) {
        /* The ring wait's wake-up: a POLL_ADD on this eventfd (see "Parking"). */
        s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (s->efd < 0) {
            int err = -errno;
            free(s);
            return err;
        }
    }
    int r = io_uring_queue_init_params(u->entries, &s->ring, &p);
    if (r < 0) {
        if (s->efd >= 0) close(s->efd);
        free(s);
        return r;
    }
    /* A child of fork() gets no mapping of the rings (engine.c, "Fork"): it
     * could otherwise write SQEs into the parent's ring. Best effort: a
     * failed madvise only leaves the child a mapping it is refused to use. */
    (void)io_uring_ring_dontfork(&s->ring);
    s->has_ring = true;
    s->w = w;
    w->be_slot = s;
    return 0;
}

static void u_slot_fini(struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    if (!s) return;
    if (s->has_ring) io_uring_queue_exit(&s->ring);
    if (s->efd >= 0) close(s->efd);
    free(s);
    w->be_slot = NULL;
}

static void u_thread_start(struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    slot_lock(s);
    ioc_store(&s->open, true, IOC_RELAXED); /* read under the lock by hand-offs */
    slot_unlock(s);
}

static inline bool holds_locked(struct uslot *s) {
    return s->inflight != 0 || ioc_load(&s->handoff, IOC_RELAXED) != NULL || ioc_load(&s->pending, IOC_RELAXED) != 0;
}

static bool u_slot_holds(struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    slot_lock(s);
    bool holds = holds_locked(s);
    slot_unlock(s);
    return holds;
}

/* U2: agree only with nothing in flight here, and close the slot to host
 * hand-offs in the same critical section (a hand-off checks `open` under
 * this lock), so none can arrive after the check. The caller reopens it
 * with u_thread_start() if the worker stays after all (park.c, scale.c). */
static bool u_thread_retire(struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    slot_lock(s);
    bool ok = !holds_locked(s);
    if (ok) ioc_store(&s->open, false, IOC_RELAXED);
    slot_unlock(s);
    return ok;
}

/* ---- submission (slot lock held) --------------------------------------------------- */
static int submit_locked(iocomp_engine *e, struct uslot *s);
static void handoff_cancelled(struct ioc_req *r);

/* An SQE. If the SQ is full, may_submit (the owner, or the monitor's
 * rescue: threads that live as long as the engine or the slot's requests)
 * makes room by submitting what is there; anyone else gets NULL, since the
 * task that enters io_uring_enter becomes the submitter of every SQE in the
 * batch and the kernel cancels a task's requests when it exits (a host
 * canceller, or another worker that later retires). NULL also if the kernel
 * refuses new submissions (-EBUSY: completions must be reaped first); the
 * caller handles that. */
static struct io_uring_sqe *get_sqe(iocomp_engine *e, struct uslot *s, bool may_submit) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
    if (ioc_likely(sqe)) return sqe;
    ioc_fetch_add(&ueng_of(e)->sq_full, 1, IOC_RELAXED);
    if (!may_submit) return NULL;
    submit_locked(e, s);
    return io_uring_get_sqe(&s->ring);
}

static void link_req(struct uslot *s, struct ioc_req *r, uint16_t idx) {
    r->prev = NULL;
    r->next = s->inflight_head;
    if (s->inflight_head) s->inflight_head->prev = r;
    s->inflight_head = r;
    r->linked = 1;
    ioc_store(&r->ring, idx, IOC_RELAXED); /* read by cancellers, who then take this lock */
    s->inflight++;
}

static void unlink_req(struct uslot *s, struct ioc_req *r) {
    if (ioc_unlikely(r->cancelled == CANCEL_WANTED)) { /* done before its cancel was prepared */
        r->cancelled = CANCEL_ASKED;
        ioc_store(&s->wanted, ioc_load(&s->wanted, IOC_RELAXED) - 1, IOC_RELAXED);
    }
    if (r->prev) r->prev->next = r->next;
    else s->inflight_head = r->next;
    if (r->next) r->next->prev = r->prev;
    r->next = r->prev = NULL;
    r->linked = 0;
    /* Cancellers tell "reaped" from "in flight here" by this value alone,
     * read under this lock (u_cancel); no plain field of r is read against
     * a resubmission by its callback. */
    ioc_store(&r->ring, RING_DONE, IOC_RELEASE);
    s->inflight--;
}

static void prep(struct io_uring_sqe *sqe, struct ioc_req *r) {
    /* A host thread's request names the file through its duplicate (see
     * "Descriptors"); the SQE carries that number, r->fd stays the bound one
     * (cancel_fd matches on it). */
    int fd = r->hfd >= 0 ? r->hfd : r->fd;
    switch (r->op) {
    case IOC_OP_READ:
        if (r->fd_kind == FDK_SOCKET) io_uring_prep_recv(sqe, fd, r->buf, r->len, 0);
        else io_uring_prep_read(sqe, fd, r->buf, r->len, (uint64_t)r->u.off);
        break;
    case IOC_OP_WRITE:
        if (r->fd_kind == FDK_SOCKET) io_uring_prep_send(sqe, fd, r->buf, r->len, MSG_NOSIGNAL);
        else io_uring_prep_write(sqe, fd, r->buf, r->len, (uint64_t)r->u.off);
        break;
    case IOC_OP_READV:
        io_uring_prep_readv(sqe, fd, r->buf, r->len, (uint64_t)r->u.off);
        break;
    case IOC_OP_WRITEV:
        io_uring_prep_writev(sqe, fd, r->buf, r->len, (uint64_t)r->u.off);
        break;
    case IOC_OP_RECV:
        io_uring_prep_recv(sqe, fd, r->buf, r->len, r->mflags);
        break;
    case IOC_OP_SEND:
        io_uring_prep_send(sqe, fd, r->buf, r->len, r->mflags);
        break;
    case IOC_OP_RECVMSG:
        io_uring_prep_recvmsg(sqe, fd, r->buf, (unsigned)r->mflags);
        break;
    case IOC_OP_SENDMSG:
        io_uring_prep_sendmsg(sqe, fd, r->buf, (unsigned)r->mflags);
        break;
    case IOC_OP_ACCEPT:
        io_uring_prep_accept(sqe, fd, r->buf, r->u.alen, r->mflags);
        break;
    case IOC_OP_CONNECT:
        io_uring_prep_connect(sqe, fd, r->buf, r->len);
        break;
    case IOC_OP_POLL:
        io_uring_prep_poll_add(sqe, fd, r->len);
        break;
    case IOC_OP_FSYNC:
        io_uring_prep_fsync(sqe, fd, (r->len & IOCOMP_FSYNC_DATASYNC) ? IORING_FSYNC_DATASYNC : 0);
        break;
    case IOC_OP_TIMER: {
        r->ts[0] = (int64_t)(r->u.ns / 1000000000u);
        r->ts[1] = (int64_t)(r->u.ns % 1000000000u);
        io_uring_prep_timeout(sqe, (struct __kernel_timespec *)(void *)r->ts, 0,
                              (r->len & IOCOMP_TIMER_ABS) ? IORING_TIMEOUT_ABS : 0);
        break;
    }
    default:
        io_uring_prep_nop(sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, r);
}

/* Prepares r on s (lock held). -EBUSY: no SQE could be had. */
static int issue_locked(iocomp_engine *e, struct uslot *s, struct ioc_req *r) {
    struct io_uring_sqe *sqe = get_sqe(e, s, true); /* the owner or the monitor */
    if (ioc_unlikely(!sqe)) return -EBUSY;
    prep(sqe, r);
    link_req(s, r, (uint16_t)s->w->index);
    ioc_store(&s->pending, ioc_load(&s->pending, IOC_RELAXED) + 1, IOC_RELAXED);
    return 0;
}

/* A host request's duplicate, closed when its CQE is reaped or when it
 * leaves a hand-off list cancelled. */
static void drop_hfd(struct ioc_req *r) {
    if (r->hfd >= 0) close(r->hfd);
    r->hfd = -1;
}

/* The kernel said it dropped completions (-EBADR from io_uring_enter, once
 * per drop event: the kernel clears its flag when it says so). Counted
 * every time (io_cq_dropped); said on stderr the first time and then at
 * most once a second, so a kernel that kept saying it cannot flood stderr
 * (strace injecting -EBADR into every io_uring_enter made 66,000 lines in
 * 20 s, tools/faults.sh). Any thread; lock-free (the CAS elects the one
 * thread that prints). */
static void report_drop(iocomp_engine *e, unsigned n) {
    struct ueng *u = ueng_of(e);
    uint64_t total = ioc_fetch_add(&u->dropped, n, IOC_RELAXED) + n;
    uint64_t now = ioc_now_ns(), last = ioc_load(&u->drop_said_ns, IOC_RELAXED);
    if (last != 0 && now - last < 1000000000ull) return;
    if (!ioc_cas(&u->drop_said_ns, &last, now, IOC_RELAXED, IOC_RELAXED)) return;
    uint64_t said = ioc_xchg(&u->drop_said, total, IOC_RELAXED);
    fprintf(stderr, "iocomp: io_uring dropped completions (-EBADR): %llu lost so far (%llu since the last report)\n",
            (unsigned long long)total, (unsigned long long)(total - said));
}

/* One io_uring_enter for what is prepared. Returns what the kernel said. */
static int submit_locked(iocomp_engine *e, struct uslot *s) {
    bool badr = false;
    for (;;) {
        int r = io_uring_submit(&s->ring);
        if (r >= 0) {
            /* SUBMIT_ALL: everything in the SQ was consumed. */
            if (io_uring_sq_ready(&s->ring) == 0) {
                ioc_store(&s->pending, 0, IOC_RELAXED);
                return r;
            }
            /* Without it the kernel stops after an SQE that fails to submit
             * (its error CQE is posted; the rest stay in the SQ): go on with
             * the rest, as SUBMIT_ALL would. */
            if (r > 0 && !(ueng_of(e)->feat & UF_SUBMIT_ALL)) continue;
            return r;
        }
        if (r == -EINTR) {
            ioc_fetch_add(&ueng_of(e)->eintr, 1, IOC_RELAXED);
            continue;
        }
        if (r == -EBADR) {
            /* Said once per drop: the retry submits. A second in a row is
             * not a drop the kernel reports but a kernel that refuses:
             * pending stays for the next poll, with the lock released. */
            report_drop(e, 1);
            if (badr) return r;
            badr = true;
            continue;
        }
        return r; /* -EBUSY / -EAGAIN: the CQ must be drained first; pending stays */
    }
}

/* The park's TAG_WAKE entry completed (lock held): it is no longer armed;
 * an eventfd one leaves a count the owner drains before arming it again
 * (u_park), or the new POLL_ADD would complete at once. */
static inline void wake_fired(struct uslot *s) {
    s->futex_armed = false;
    if (s->efd >= 0) ioc_store(&s->efd_dirty, 1, IOC_RELAXED); /* read by the owner; a late read only repeats a drain */
}

/* ---- reaping (slot lock held) -------------------------------------------------------- */
/* Moves ready CQEs out: into w's ring when w is given (full: stop), else
 * the inject queue; with take and *take non-NULL, the first one is written
 * to **take instead (poll hands it to its caller) and *take becomes NULL.
 * Returns the completions moved. */
static unsigned reap_locked(iocomp_engine *e, struct uslot *s, struct ioc_worker *w, unsigned max,
                            struct ioc_pkt **take) {
    unsigned pushed = 0;
    struct io_uring_cqe *cqe;
    while (pushed < max && io_uring_peek_cqe(&s->ring, &cqe) == 0 && cqe) {
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        if (ud & TAG_MASK) {
            if ((ud & TAG_MASK) == TAG_WAKE) wake_fired(s);
            io_uring_cqe_seen(&s->ring, cqe);
            continue;
        }
        struct ioc_req *r = (struct ioc_req *)(uintptr_t)ud;
        if (r->op == IOC_OP_TIMER && res == -ETIME) res = 0; /* a timer that expired */
        if (r->cancelled == CANCEL_NEUTERED) res = -ECANCELED;
        if (r->hfd >= 0) drop_hfd(r); /* the kernel is done with the file */
        if (w) {
            /* U3: consume the CQE only once its packet is in our ring. The
             * request stays linked until then (so a cancel still finds it). */
            unlink_req(s, r);
            if (take && *take) { /* the first one goes straight to the caller (poll) */
                ioc_complete_direct(r, res, *take);
                *take = NULL;
            } else if (!ioc_complete_local(w, r, res)) {
                link_req(s, r, (uint16_t)s->w->index);
                break; /* backpressure: the CQ keeps it */
            }
        } else {
            unlink_req(s, r);
            if (ioc_complete_inject(e, r, res) != 0) {
                link_req(s, r, (uint16_t)s->w->index);
                break; /* no memory: leave it in the CQ for later */
            }
            ioc_fetch_add(&ueng_of(e)->rescued, 1, IOC_RELAXED);
        }
        io_uring_cqe_seen(&s->ring, cqe);
        pushed++;
    }
    /* Entries the kernel parked in its overflow list: ask for them. */
    if (ioc_unlikely(IO_URING_READ_ONCE(*s->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
        ioc_fetch_add(&ueng_of(e)->cq_overflow, 1, IOC_RELAXED);
        if (io_uring_cq_ready(&s->ring) == 0) {
            int r = io_uring_get_events(&s->ring);
            if (r == -EBADR) report_drop(e, 1);
        }
    }
    return pushed;
}

/* The monitor's reap (u_rescue): up to max completions out of the CQ into
 * held[] (lock held), delivered to the inject queue only after the slot
 * lock is released (deliver_held), so that the spinlock is never held across
 * the inject mutex, an allocation or a wake-up system call. Each request is
 * unlinked (r->ring = RING_DONE: a cancel answers -ENOENT, its completion is
 * on its way) and its CQE consumed here; the reaper owes its delivery (U3:
 * consumed once the completion is in the reaper's hands). */
struct held {
    struct ioc_req *r;
    int32_t res;
};
static unsigned reap_held_locked(iocomp_engine *e, struct uslot *s, struct held *held, unsigned max) {
    unsigned n = 0;
    struct io_uring_cqe *cqe;
    while (n < max && io_uring_peek_cqe(&s->ring, &cqe) == 0 && cqe) {
        uint64_t ud = cqe->user_data;
        int32_t res = cqe->res;
        io_uring_cqe_seen(&s->ring, cqe);
        if (ud & TAG_MASK) {
            if ((ud & TAG_MASK) == TAG_WAKE) wake_fired(s);
            continue;
        }
        struct ioc_req *r = (struct ioc_req *)(uintptr_t)ud;
        if (r->op == IOC_OP_TIMER && res == -ETIME) res = 0;
        if (r->cancelled == CANCEL_NEUTERED) res = -ECANCELED;
        if (r->hfd >= 0) drop_hfd(r);
        unlink_req(s, r);
        held[n].r = r;
        held[n].res = res;
        n++;
    }
    if (ioc_unlikely(IO_URING_READ_ONCE(*s->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)) {
        ioc_fetch_add(&ueng_of(e)->cq_overflow, 1, IOC_RELAXED);
        if (io_uring_cq_ready(&s->ring) == 0 && io_uring_get_events(&s->ring) == -EBADR) report_drop(e, 1);
    }
    return n;
}

static void deliver_held(iocomp_engine *e, const struct held *held, unsigned n) {
    for (unsigned i = 0; i < n; i++) {
        while (ioc_complete_inject(e, held[i].r, held[i].res) != 0) sched_yield(); /* -ENOMEM: wait for memory */
        ioc_fetch_add(&ueng_of(e)->rescued, 1, IOC_RELAXED);
    }
}

/* Takes the host hand-off list and prepares its requests (lock held). */
static void take_handoff_locked(iocomp_engine *e, struct uslot *s) {
    struct ioc_req *r = ioc_load(&s->handoff, IOC_RELAXED);
    while (r) {
        struct ioc_req *next = r->next;
        if (issue_locked(e, s, r) != 0) {
            /* No SQE now (the CQ must drain first): keep the rest for later. */
            ioc_store(&s->handoff, r, IOC_RELAXED);
            return;
        }
        r = next;
    }
    ioc_store(&s->handoff, NULL, IOC_RELAXED);
    s->handoff_tail = NULL;
}

/* Lock-free: is there anything for poll/rescue to do? The CQ head is read
 * atomically (the lock holder advances it with a release store); the tail
 * with acquire, pairing with the kernel's release when it posts a CQE. */
static inline bool has_news(struct uslot *s) {
    if (ioc_load(&s->pending, IOC_RELAXED) || ioc_load(&s->handoff, IOC_RELAXED) || ioc_load(&s->wanted, IOC_RELAXED))
        return true;
    unsigned head = ioc_load_raw(s->ring.cq.khead, IOC_RELAXED);
    unsigned tail = ioc_load_raw(s->ring.cq.ktail, IOC_ACQUIRE);
    return head != tail ||
           (ioc_load_raw(s->ring.sq.kflags, IOC_RELAXED) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

/* ---- the ops ------------------------------------------------------------------------ */
/* A parked owner waits on its word either in the ring (IORING_OP_FUTEX_WAIT)
 * or in futex(2); a stale ring wait may also be armed. Wake them all: there
 * are at most two waiters on the word, both the owner's. */
static void wake_word(ioc_atomic(uint32_t) *word) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* The other side of a wake-up Dekker pair, after its change and a full
 * fence (see the theory). */
static void kick_owner(struct uslot *s) {
    uint32_t where = ioc_load(&s->sleeping, IOC_RELAXED);
    if (where == SLEEP_RING) {
        if (s->efd >= 0) {
            uint64_t one = 1;
            ssize_t n = write(s->efd, &one, sizeof one); /* completes the armed POLL_ADD */
            (void)n; /* EAGAIN only at a count of 2^64 - 2: it is readable already */
        } else {
            wake_word(&s->w->futex_word);
        }
    } else if (where == SLEEP_FUTEX) {
        ioc_fetch_add(&s->kick, 1, IOC_RELEASE); /* pairs with the owner's acquire load of kick */
        syscall(SYS_futex, (uint32_t *)&s->kick, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

/* park.c stored 0 into w's word (release) before calling this. */
static void u_unpark(struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    if (!s) { /* no slot (cannot happen while the thread runs): plain wake */
        wake_word(&w->futex_word);
        return;
    }
    ioc_fence_full(); /* the waker's half of its Dekker pair */
    kick_owner(s);
}

/* r's binding ended (unbind, close_fd, a port's close; or the number was
 * rebound) after the submit read it. Called under the slot lock, in the
 * critical section that then links or hands off r: an unbinder writes the
 * binding, then its cancel pass takes each slot lock (cancel_fd), so
 * either that pass comes later and finds r, or this look, after our lock
 * acquisition, sees the new binding and r is never linked (audit, suspected:
 * a submit that read the binding before an unbind and linked after its
 * cancel pass was neither refused nor cancelled, and on io_uring its SQE
 * could name the number's next file). */
static inline bool binding_gone(iocomp_engine *e, const struct ioc_req *r) {
    return r->op != IOC_OP_TIMER && r->fd >= 0 && ioc_bind_gen(e, r->fd) != r->fd_gen;
}

/* Appends r to s's hand-off list (lock held). */
static void handoff_append_locked(struct uslot *s, struct ioc_req *r) {
    r->next = NULL;
    if (s->handoff_tail) s->handoff_tail->next = r;
    else ioc_store(&s->handoff, r, IOC_RELAXED);
    s->handoff_tail = r;
}

/* binding_gone() said so, before r was linked anywhere (slot lock released):
 * accepted, and completed -ECANCELED at once. */
static int submit_cancelled(iocomp_engine *e, struct ioc_req *r) {
    handoff_cancelled(r); /* the duplicate goes, r->ring = RING_DONE */
    while (ioc_complete_inject(e, r, -ECANCELED) != 0) sched_yield();
    return 0;
}

static int u_submit(iocomp_engine *e, struct ioc_worker *self, struct ioc_req *r) {
    if (self) {
        struct uslot *s = slot_of(self);
        r->hfd = -1;
        if (r->op == IOC_OP_FSYNC) {
            /* fsync resolves its descriptor late, in io-wq ("Descriptors"):
             * it holds a duplicate from here, as a host submit does. */
            int d = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
            if (d < 0) return -errno;
            r->hfd = d;
        }
        slot_lock(s);
        if (ioc_unlikely(binding_gone(e, r))) { /* same critical section as the link below */
            slot_unlock(s);
            return submit_cancelled(e, r);
        }
        int rc = issue_locked(e, s, r);
        if (ioc_unlikely(rc == -EBUSY)) {
            /* The kernel holds completions we have not reaped: move them to
             * the inject queue (our own ring may be full) and retry. */
            reap_locked(e, s, NULL, UINT_MAX, NULL);
            submit_locked(e, s);
            rc = issue_locked(e, s, r);
        }
        if (ioc_unlikely(rc == -EBUSY)) {
            /* The kernel still refuses SQEs: queue it on our own hand-off
             * list, which our next poll (or the monitor's rescue) issues.
             * Accepted: -EBUSY is the API's "this overlapped is in flight",
             * not a congested ring's. */
            handoff_append_locked(s, r);
            rc = 0;
        }
        slot_unlock(s);
        return rc;
    }
    r->hfd = -1;
    /* A host thread: hand it to an open slot's owner, holding a duplicate of
     * the descriptor until the owner issues it ("Descriptors"). */
    if (r->op != IOC_OP_TIMER && r->op != IOC_OP_NONE) {
        int d = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
        if (d < 0) return -errno; /* -EBADF: closed; -EMFILE/-ENFILE: no descriptor left */
        r->hfd = d;
    }
    /* Right after engine
     * creation the workers may not have opened their slots yet (they do it
     * first thing, thread_start); live >= min >= 1 means one will, so wait
     * for it rather than refuse. */
    for (unsigned round = 0;; round++) {
        uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
        uint32_t start = ioc_fetch_add(&ueng_of(e)->rr, 1, IOC_RELAXED);
        for (uint32_t i = 0; i < n; i++) {
            struct ioc_worker *w = ioc_load(&e->workers[(start + i) % n], IOC_ACQUIRE);
            if (!w || !w->be_slot) continue;
            struct uslot *s = slot_of(w);
            slot_lock(s);
            if (!ioc_load(&s->open, IOC_RELAXED)) {
                slot_unlock(s);
                continue;
            }
            if (ioc_unlikely(binding_gone(e, r))) { /* same critical section as the hand-off */
                slot_unlock(s);
                return submit_cancelled(e, r);
            }
            handoff_append_locked(s, r);
            slot_unlock(s);
            /* The host's half of the hand-off Dekker pair (see the theory). */
            ioc_fence_full();
            kick_owner(s);
            return 0;
        }
        if (round >= 100000 || ioc_load(&e->live, IOC_RELAXED) == 0) break;
        sched_yield();
    }
    drop_hfd(r);
    return -EAGAIN; /* no worker thread is running: cannot happen while live >= min >= 1 */
}

/* r's SQE if the kernel has not consumed it yet (lock held, so nobody is
 * submitting): prepared entries sit in [khead, sqe_tail) of the SQ, whose
 * index array liburing maps one to one. */
static struct io_uring_sqe *unsubmitted_sqe(struct uslot *s, const struct ioc_req *r) {
    struct io_uring_sq *sq = &s->ring.sq;
    if (!ioc_load(&s->pending, IOC_RELAXED)) return NULL;
    for (unsigned i = io_uring_smp_load_acquire(sq->khead); i != sq->sqe_tail; i++) {
        struct io_uring_sqe *sqe = &sq->sqes[i & sq->ring_mask];
        if (sqe->user_data == (uint64_t)(uintptr_t)r) return sqe;
    }
    return NULL;
}

static bool cancel_locked(iocomp_engine *e, struct uslot *s, struct ioc_req *r) {
    if (r->cancelled) return false;
    struct io_uring_sqe *sqe = unsubmitted_sqe(s, r);
    if (sqe) {
        /* Not issued yet: turn it into a NOP that completes -ECANCELED
         * (reap_locked), so its descriptor is never used again: a close(2)
         * right after the cancel (iocomp_close_fd) cannot send it to another
         * file that takes the number. */
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, r);
        r->cancelled = CANCEL_NEUTERED;
        return true;
    }
    sqe = get_sqe(e, s, ioc_self_in(e) == s->w);
    if (!sqe) {
        /* No SQE, or not ours to make room for: the owner prepares the
         * ASYNC_CANCEL at its next poll (prep_wanted_locked, after that
         * poll's reap if the kernel refused SQEs), woken by the caller's
         * poke. The cancel is asked all the same: 0, not -ENOENT for a
         * request that is in flight. Never a reap here: it could unlink
         * and deliver r itself (or the next request of cancel_matching's
         * walk) while the caller still treats it as linked. */
        r->cancelled = CANCEL_WANTED;
        ioc_store(&s->wanted, ioc_load(&s->wanted, IOC_RELAXED) + 1, IOC_RELAXED);
        return true;
    }
    io_uring_prep_cancel(sqe, r, 0);
    io_uring_sqe_set_data64(sqe, TAG_CANCEL);
    r->cancelled = CANCEL_ASKED;
    ioc_store(&s->pending, ioc_load(&s->pending, IOC_RELAXED) + 1, IOC_RELAXED);
    return true;
}

/* The cancels that could not get an SQE (CANCEL_WANTED): prepare them now
 * (lock held; the owner or the monitor, who may submit to make room). */
static void prep_wanted_locked(iocomp_engine *e, struct uslot *s) {
    for (struct ioc_req *r = s->inflight_head; r && ioc_load(&s->wanted, IOC_RELAXED); r = r->next) {
        if (r->cancelled != CANCEL_WANTED) continue;
        struct io_uring_sqe *sqe = get_sqe(e, s, true);
        if (!sqe) return; /* the CQ must drain first: next time */
        io_uring_prep_cancel(sqe, r, 0);
        io_uring_sqe_set_data64(sqe, TAG_CANCEL);
        r->cancelled = CANCEL_ASKED;
        ioc_store(&s->wanted, ioc_load(&s->wanted, IOC_RELAXED) - 1, IOC_RELAXED);
        ioc_store(&s->pending, ioc_load(&s->pending, IOC_RELAXED) + 1, IOC_RELAXED);
    }
}

/* After preparing an SQE on a ring that is not ours (lock released): only
 * engine threads enter a ring, so the owner must submit it. Its next poll
 * does, or, if it sleeps, this wake-up (the Dekker pair of the hand-off);
 * if it is stuck in a callback, the monitor's rescue. */
static void poke_owner(iocomp_engine *e, struct uslot *s) {
    if (ioc_self_in(e) == s->w) return;
    ioc_fence_full();
    kick_owner(s);
}

/* A request taken out of a hand-off list by a canceller (lock held): its
 * duplicate goes, and r->ring says RING_DONE, as for a reaped request: its
 * -ECANCELED completion is on its way, so a second cancel answers -ENOENT
 * at once. With RING_NONE it would look "being issued" forever and u_cancel
 * would spin until the packet ran, which never happens when the canceller is
 * the callback of the only worker (audit defect 3). */
static void handoff_cancelled(struct ioc_req *r) {
    drop_hfd(r);
    ioc_store(&r->ring, RING_DONE, IOC_RELEASE); /* pairs with u_cancel's acquire load */
}

/* A request still in a hand-off list is cancelled by taking it out. */
static bool cancel_handoff_locked(struct uslot *s, struct ioc_req *r, struct ioc_req **out) {
    struct ioc_req *prev = NULL;
    for (struct ioc_req *x = ioc_load(&s->handoff, IOC_RELAXED); x; prev = x, x = x->next) {
        if (x != r) continue;
        if (prev) prev->next = x->next;
        else ioc_store(&s->handoff, x->next, IOC_RELAXED);
        if (s->handoff_tail == x) s->handoff_tail = prev;
        x->next = NULL;
        handoff_cancelled(x);
        *out = x;
        return true;
    }
    return false;
}

/* Where r is: r->ring names the ring it was issued on, or is RING_NONE
 * while it waits in a hand-off list or between claim and issue (the core
 * resets it at every submit). Hand-off -> ring happens under the one slot
 * lock, so a request missing from its slot's hand-off list has been issued
 * and r->ring says where; RING_DONE says it was reaped (its completion is
 * on its way: -ENOENT). Only the atomic r->ring is read before the slot
 * lock confirms the request is linked there. */
static int u_cancel(iocomp_engine *e, struct ioc_req *r) {
    for (;;) {
        if (ioc_load(&r->state, IOC_ACQUIRE) != REQ_INFLIGHT) return -ENOENT;
        uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
        uint16_t idx = ioc_load(&r->ring, IOC_ACQUIRE);
        if (idx == RING_DONE) return -ENOENT; /* reaped: its completion is on its way */
        if (idx != IOC_RING_NONE) {
            struct ioc_worker *w = idx < n ? ioc_load(&e->workers[idx], IOC_ACQUIRE) : NULL;
            if (!w || !w->be_slot) return -ENOENT;
            struct uslot *s = slot_of(w);
            slot_lock(s);
            /* Linked on idx exactly when r->ring reads idx under idx's lock
             * (it becomes RING_DONE at the reap, under this lock): then r
             * cannot complete, nor be resubmitted, while we hold it. */
            if (ioc_load(&r->ring, IOC_RELAXED) == idx) {
                bool asked = cancel_locked(e, s, r) || r->cancelled;
                slot_unlock(s);
                poke_owner(e, s);
                return asked ? 0 : -ENOENT;
            }
            slot_unlock(s);
            continue; /* reaped (RING_DONE: -ENOENT below) or reissued: look again */
        }
        /* In a hand-off list: take it out and complete it here. */
        for (uint32_t i = 0; i < n; i++) {
            struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
            if (!w || !w->be_slot) continue;
            struct uslot *s = slot_of(w);
            struct ioc_req *got = NULL;
            slot_lock(s);
            bool found = cancel_handoff_locked(s, r, &got);
            slot_unlock(s);
            if (found) {
                while (ioc_complete_inject(e, got, -ECANCELED) != 0) sched_yield();
                return 0;
            }
        }
        ioc_cpu_relax(); /* being issued right now: r->ring is about to be set */
    }
}

typedef bool (*match_fn)(const struct ioc_req *r, long arg);
static bool match_fd(const struct ioc_req *r, long fd) { return r->fd == (int)fd && r->op != IOC_OP_TIMER; }
static bool match_port(const struct ioc_req *r, long idx) { return r->port_idx == (uint32_t)idx; }

static int cancel_matching(iocomp_engine *e, match_fn m, long arg) {
    int count = 0;
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (!w || !w->be_slot) continue;
        struct uslot *s = slot_of(w);
        struct ioc_req *taken = NULL, **tail = &taken;
        slot_lock(s);
        for (struct ioc_req *r = s->inflight_head; r; r = r->next)
            if (m(r, arg) && cancel_locked(e, s, r)) count++;
        /* Hand-offs not yet issued: take them out, complete them below. */
        struct ioc_req *prev = NULL, *x = ioc_load(&s->handoff, IOC_RELAXED);
        while (x) {
            struct ioc_req *next = x->next;
            if (m(x, arg)) {
                if (prev) prev->next = next;
                else ioc_store(&s->handoff, next, IOC_RELAXED);
                if (s->handoff_tail == x) s->handoff_tail = prev;
                x->next = NULL;
                handoff_cancelled(x);
                *tail = x;
                tail = &x->next;
            } else {
                prev = x;
            }
            x = next;
        }
        slot_unlock(s);
        poke_owner(e, s);
        while (taken) {
            struct ioc_req *next = taken->next;
            taken->next = NULL;
            while (ioc_complete_inject(e, taken, -ECANCELED) != 0) sched_yield();
            count++;
            taken = next;
        }
    }
    return count;
}

static int u_cancel_fd(iocomp_engine *e, int fd) { return cancel_matching(e, match_fd, fd); }
static int u_cancel_port(iocomp_engine *e, uint32_t idx) { return cancel_matching(e, match_port, (long)idx); }

static int u_poll(struct ioc_worker *w, struct ioc_pkt *out) {
    struct uslot *s = slot_of(w);
    if (ioc_likely(!has_news(s))) return 0;
    struct ioc_pkt *take = out;
    iocomp_engine *e = w->e;
    slot_lock(s);
    if (ioc_load(&s->handoff, IOC_RELAXED)) take_handoff_locked(e, s);
    if (ioc_unlikely(ioc_load(&s->wanted, IOC_RELAXED))) prep_wanted_locked(e, s);
    if ((ioc_load_raw(s->ring.sq.kflags, IOC_RELAXED) & IORING_SQ_TASKRUN) && !ioc_load(&s->pending, IOC_RELAXED))
        io_uring_get_events(&s->ring); /* completions wait for our entry: post them */
    unsigned got = reap_locked(e, s, w, REAP_MAX, &take);
    if (ioc_load(&s->pending, IOC_RELAXED)) {
        if (submit_locked(e, s) == -EBUSY) {
            got += reap_locked(e, s, NULL, UINT_MAX, NULL);
            submit_locked(e, s);
        }
        /* Requests that complete during the submit (NOPs, data already
         * there) are ready now: take them in the same pass. */
        got += reap_locked(e, s, w, REAP_MAX, &take);
    }
    slot_unlock(s);
    if (got > 1) ioc_notify(e); /* more than we run next: let idle workers steal */
    if (out && !take) return 2;
    return got != 0 ? 1 : 0;
}

static int u_park(struct ioc_worker *w, ioc_atomic(uint32_t) *word, uint64_t ns) {
    struct uslot *s = slot_of(w);
    iocomp_engine *e = w->e;
    uint64_t deadline = ns ? ioc_now_ns() + ns : 0;
    unsigned badr_waits = 0; /* ring waits in a row that ended -EBADR */
    for (;;) {
        if (s->efd >= 0 && ioc_load(&s->efd_dirty, IOC_RELAXED)) {
            /* Before the lock (a system call): empty the eventfd its fired
             * POLL_ADD left, so the next one waits for a new kick. A kick
             * that lands after this read is one the new entry must see. */
            ioc_store(&s->efd_dirty, 0, IOC_RELAXED);
            uint64_t v;
            ssize_t n = read(s->efd, &v, sizeof v);
            (void)n; /* EAGAIN: nothing was left */
        }
        slot_lock(s);
        if (ioc_load(&s->handoff, IOC_RELAXED)) take_handoff_locked(e, s);
        if (ioc_unlikely(ioc_load(&s->wanted, IOC_RELAXED))) prep_wanted_locked(e, s);
        if (s->inflight == 0 && !ioc_load(&s->pending, IOC_RELAXED) && !has_news(s)) {
            /* Nothing of ours in the kernel: no CQE can come, so sleep on the
             * plain futex (cheaper to wake than a ring wait: measured with
             * iocomp-wake). Host hand-offs wake it the same way. */
            slot_unlock(s);
            ioc_store(&s->sleeping, SLEEP_FUTEX, IOC_SEQ_CST);
            ioc_fence_full(); /* the owner's half of the Dekker pairs */
            uint32_t k = ioc_load(&s->kick, IOC_ACQUIRE);
            if (ioc_load(word, IOC_ACQUIRE) == 1 && !ioc_load(&s->handoff, IOC_RELAXED) &&
                !ioc_load(&s->pending, IOC_RELAXED) && !ioc_load(&s->wanted, IOC_RELAXED)) {
                uint64_t left = 0;
                if (deadline) {
                    uint64_t now = ioc_now_ns();
                    left = deadline > now ? deadline - now : 1;
                }
                struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
                long rc = syscall(SYS_futex, (uint32_t *)&s->kick, FUTEX_WAIT_PRIVATE, k, left ? &ts : NULL, NULL, 0);
                if (rc == -1 && errno == EINTR) ioc_fetch_add(&ueng_of(e)->eintr, 1, IOC_RELAXED);
            }
            ioc_store(&s->sleeping, SLEEP_NONE, IOC_RELAXED);
            if (ioc_load(word, IOC_ACQUIRE) != 1) return 1;
            if (deadline && ioc_now_ns() >= deadline && !ioc_load(&s->handoff, IOC_RELAXED)) return 0;
            continue;
        }
        if (!s->futex_armed) {
            struct io_uring_sqe *sqe = get_sqe(e, s, true);
            if (sqe && s->efd >= 0) {
                io_uring_prep_poll_add(sqe, s->efd, POLLIN); /* drained above: fires at the next kick */
                io_uring_sqe_set_data64(sqe, TAG_WAKE);
                ioc_store(&s->pending, ioc_load(&s->pending, IOC_RELAXED) + 1, IOC_RELAXED);
                s->futex_armed = true;
            } else if (sqe) {
                io_uring_prep_rw(IORING_OP_FUTEX_WAIT_NR, sqe, (int)(FUTEX2_SIZE_U32_ | FUTEX2_PRIVATE_),
                                 (void *)word, 0, 0);
                sqe->addr2 = 1;                 /* wait while the word is 1 */
                sqe->addr3 = 0xffffffffull;     /* FUTEX_BITSET_MATCH_ANY */
                io_uring_sqe_set_data64(sqe, TAG_WAKE);
                ioc_store(&s->pending, ioc_load(&s->pending, IOC_RELAXED) + 1, IOC_RELAXED);
                s->futex_armed = true;
            }
        }
        if (ioc_load(&s->pending, IOC_RELAXED)) submit_locked(e, s);
        unsigned got = reap_locked(e, s, w, REAP_MAX, NULL);
        bool armed = s->futex_armed;
        slot_unlock(s);
        if (got) return 2; /* park.c notifies for the rest once off the idle stack */
        /* The owner's half of the Dekker pairs. */
        ioc_store(&s->sleeping, SLEEP_RING, IOC_SEQ_CST);
        ioc_fence_full();
        if (ioc_load(word, IOC_ACQUIRE) != 1 || ioc_load(&s->handoff, IOC_RELAXED) ||
            ioc_load(&s->pending, IOC_RELAXED) || ioc_load(&s->wanted, IOC_RELAXED) || !armed) {
            ioc_store(&s->sleeping, SLEEP_NONE, IOC_RELAXED);
            if (ioc_load(word, IOC_ACQUIRE) != 1) return 1;
            if (!armed) sched_yield(); /* no SQE for the futex wait yet: the CQ must drain */
            continue;
        }
        struct __kernel_timespec ts;
        struct io_uring_getevents_arg arg;
        memset(&arg, 0, sizeof arg);
        arg.sigmask_sz = _NSIG / 8;
        if (deadline) {
            uint64_t now = ioc_now_ns();
            uint64_t left = deadline > now ? deadline - now : 0;
            ts.tv_sec = (long long)(left / 1000000000u);
            ts.tv_nsec = (long long)(left % 1000000000u);
            arg.ts = (uint64_t)(uintptr_t)&ts;
        }
        int r = io_uring_enter2((unsigned)s->ring.ring_fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                                (sigset_t *)(void *)&arg, sizeof arg);
        ioc_store(&s->sleeping, SLEEP_NONE, IOC_RELAXED);
        if (r < 0 && r == -EINTR) ioc_fetch_add(&ueng_of(e)->eintr, 1, IOC_RELAXED);
        if (r < 0 && r == -EBADR) {
            report_drop(e, 1);
            /* Once is a drop the kernel reports (and clears); again at once
             * would make this wait a spin: wait 1 ms first. */
            if (badr_waits++) {
                struct timespec one_ms = {0, 1000000};
                nanosleep(&one_ms, NULL);
            }
        } else {
            badr_waits = 0;
        }
        if (ioc_load(word, IOC_ACQUIRE) != 1) {
            /* Woken: leave the futex CQE and any I/O for poll(). */
            return 1;
        }
        if (deadline && ioc_now_ns() >= deadline && !has_news(s)) return 0;
    }
}

static void u_rescue(iocomp_engine *e, struct ioc_worker *w) {
    struct uslot *s = slot_of(w);
    if (!s || !has_news(s)) return;
    if (!slot_trylock(s)) return;
    if (ioc_load(&s->handoff, IOC_RELAXED)) take_handoff_locked(e, s);
    if (ioc_load(&s->wanted, IOC_RELAXED)) prep_wanted_locked(e, s);
    if (ioc_load(&s->pending, IOC_RELAXED)) submit_locked(e, s);
    struct held held[REAP_MAX];
    unsigned n = reap_held_locked(e, s, held, REAP_MAX);
    slot_unlock(s);
    deliver_held(e, held, n); /* more than REAP_MAX: the next sample takes them */
}

static void u_stats(iocomp_engine *e, iocomp_stats *out) {
    struct ueng *u = ueng_of(e);
    out->io_sq_full += ioc_load(&u->sq_full, IOC_RELAXED);
    out->io_cq_overflow += ioc_load(&u->cq_overflow, IOC_RELAXED);
    out->io_cq_dropped += ioc_load(&u->dropped, IOC_RELAXED);
    out->io_rescued += ioc_load(&u->rescued, IOC_RELAXED);
    out->io_eintr += ioc_load(&u->eintr, IOC_RELAXED);
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_ACQUIRE);
        if (w && w->be_slot) out->io_cq_dropped += IO_URING_READ_ONCE(*slot_of(w)->ring.cq.koverflow);
    }
}

const struct ioc_backend_ops ioc_backend_uring = {
    .name = "uring",
    .init = u_init,
    .fini = u_fini,
    .slot_init = u_slot_init,
    .slot_fini = u_slot_fini,
    .thread_start = u_thread_start,
    .thread_retire = u_thread_retire,
    .slot_holds = u_slot_holds,
    .submit = u_submit,
    .cancel = u_cancel,
    .cancel_fd = u_cancel_fd,
    .cancel_port = u_cancel_port,
    .poll = u_poll,
    .park = u_park,
    .unpark = u_unpark,
    .rescue = u_rescue,
    .stats = u_stats,
    .features = u_features,
};
