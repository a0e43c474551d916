/*
 * epoll.c - the epoll backend: readiness, then the system call, then a
 * completion packet.
 *
 * Theory of operation
 * -------------------
 * Linux has no completion port, and epoll only says when a descriptor is
 * ready; so this backend keeps the requests that wait for readiness itself,
 * and when readiness comes it runs each one's system call without blocking
 * (backends/sync.c) and pushes the result as a completion. Engine state
 * (struct ep_state, e->be_state):
 *
 *   - one epoll set for the engine. Descriptors are registered once per
 *     binding generation, edge-triggered (EPOLLIN | EPOLLOUT | EPOLLRDHUP |
 *     EPOLLPRI | EPOLLET), the first time a request needs them, with user
 *     data fd | generation << 32: an event for a descriptor number that was
 *     unbound and bound again (closed and reused) names an older generation
 *     and is ignored. Registration sets O_NONBLOCK (sockets, pipes).
 *   - a wake eventfd in the same set (level-triggered, tag TAG_WAKE): the
 *     parked poller's doorbell (see Parking);
 *   - one timerfd in the same set (tag TAG_TIMER) plus a binary min-heap of
 *     timer requests (see Timers);
 *   - a table fd -> struct ep_fd: two levels (1024 chunks of 1024 entries,
 *     the binding table's shape; descriptors < 2^20), chunks allocated on
 *     demand under tbl_lock, published with release, never moved, freed at
 *     fini. Each entry has a mutex, the generation it is registered for,
 *     readiness learned from edges (RDY_R, RDY_W), four FIFO lists linked
 *     through r->next/r->prev:
 *       SIDE_R  read, readv, recv, recvmsg, accept;
 *       SIDE_W  write, writev, send, sendmsg, a connect in progress;
 *       SIDE_P  poll (runs on every event of the descriptor: poll(2) with
 *               timeout 0 decides; poll waiters consume nothing, so their
 *               order does not matter);
 *       SIDE_D  deferred requests whose packet waits in a worker queue (see
 *               Regular files); not waiters: no event runs them;
 *     and the count of deferred system calls running (D4).
 *
 * A request's life (fd operations):
 *   submit: lock the entry; a request whose binding is gone by now
 *     completes -ECANCELED (see Descriptor numbers); (re-)register if the
 *     generation differs; if the side has no waiters and is known ready,
 *     run the system call now: a
 *     result other than -EAGAIN completes at once (ioc_complete_local into
 *     the calling worker's ring, or ioc_complete_inject); on -EAGAIN clear
 *     the readiness and link the request at the tail. One lock/unlock.
 *   event: lock the entry; if the generation matches, set the readiness the
 *     event reports, run the side's waiters in FIFO order until one returns
 *     -EAGAIN (it stays first, the readiness is cleared) and all poll
 *     waiters; unlock; push the completions. EPOLLERR/EPOLLHUP run both
 *     sides (the system call reports the error).
 *   Short transfers (Tokio's rule, where it holds): a call that returns
 *     0 < n < len marks its side not ready without paying the -EAGAIN
 *     system call, but only where a short result proves the side would
 *     block (short_transfer, flags fixed at registration):
 *       - a read/recv on TCP (FDF_SHORT_R): the kernel copies until the
 *         receive queue is empty. Not after the descriptor reported EPOLLPRI
 *         (urgent data, FDF_URG): a read stops at the urgent mark with data
 *         queued behind it. Not on an AF_UNIX stream (a read stops after a
 *         message that carried descriptors, or where the writer's
 *         credentials change under SO_PASSCRED), nor a pipe (in packet mode,
 *         set by the writer, a read returns one packet);
 *       - a write/send on TCP, an AF_UNIX stream or a pipe (FDF_SHORT_W): it
 *         stops only when the send buffer is full;
 *       - recv/send flags must consume what they report: MSG_PEEK consumes
 *         nothing, MSG_OOB and MSG_ERRQUEUE read other queues, MSG_TRUNC
 *         and unknown flags are not trusted: only SHORT_R_FLAGS /
 *         SHORT_W_FLAGS. readv/writev, recvmsg/sendmsg never (a recvmsg
 *         stops at control data).
 *     Everything else pays the -EAGAIN call: correct, one call dearer. Data
 *     that arrives after the call raises a new edge, handled under the same
 *     lock after us, so nothing is missed. A 0 (end of file) does not clear
 *     readiness: no edge would ever follow it.
 *   So a message on a TCP connection costs one recv and one send, plus
 *   epoll_wait amortised over every descriptor that became ready together
 *   (on an AF_UNIX stream or a pipe, the next read pays one -EAGAIN).
 *
 * Regular files and block devices (no readiness exists for them), fsync,
 * and any descriptor epoll refuses (EPERM: /dev/null, some character
 * devices) are deferred: submit links the request on its entry's SIDE_D
 * list (under the lock, r->ring = epw_of(fd, SIDE_D)), then hands it to a
 * worker with ioc_complete_deferred(): the packet carries PKT_EXEC, and the
 * dispatching worker calls ep_exec just before the callback. ep_exec, under
 * the entry lock: if a cancel took the request (r->cancelled) it completes
 * -ECANCELED; else it unlinks it, checks that the binding it was submitted
 * on still lives (ioc_bind_gen == r->fd_gen; else -ECANCELED: unbound, its
 * port closed), counts the call in `running`, and unlocks; then the
 * blocking system call (pread/pwrite/fsync), then uncounts it. Same
 * contract: exactly one completion (the packet), with the kernel's result
 * or -ECANCELED. So a deferred request that has not started is cancellable
 * like a waiter: cancel(r) finds it through r->ring and marks it under the
 * lock (returns 0; the packet delivers the -ECANCELED); cancel_fd,
 * cancel_port take every one of the list (counted in their result). One
 * whose call has started finishes on the file it started on, and cancel_fd
 * (so unbind and iocomp_close_fd too) returns only when no deferred call of
 * the descriptor runs (D4): the caller's close(2) cannot come between our
 * claim and the call, so the call cannot reach the next file with that
 * number. (A call that blocks indefinitely, a read of a character device
 * epoll refused, holds close_fd as long; files and fsync end.)
 *
 * Descriptor numbers. A request holds only the number; iocomp_close_fd()
 * (unbind: the binding record first, then cancel_fd; then close(2)) is what
 * makes reuse safe, and every place that turns the number into a system
 * call is ordered against it by the entry lock: waiters run on an event
 * under the lock, and cancel_fd's pass takes the lock, so a call under way
 * ends before the close; submit (and ep_exec for deferred requests) checks
 * the binding's generation under the lock, so one that comes after the
 * pass sees the unbind (the record was written before the pass) and
 * completes -ECANCELED without touching the number; a deferred call
 * claimed before the pass is waited for (D4; while requests submitted
 * after the pass on a descriptor still bound keep running, cancel_fd
 * waits for a moment when none runs). What stays the caller's: a raw
 * close(2) without unbinding (iocomp.h, "Descriptors").
 *
 * connect: the first attempt is made in submit (non-blocking). 0 or an
 * error completes at once; EINPROGRESS links the request on SIDE_W; when the
 * socket reports writable, SO_ERROR gives the outcome and getpeername()
 * tells a finished connection from the spurious EPOLLOUT|EPOLLHUP an
 * unconnected TCP socket reports at registration (ENOTCONN: keep waiting).
 * A Unix socket whose listener's backlog is full fails with -EAGAIN, as a
 * non-blocking connect(2) does: no edge would tell us when to retry.
 *
 * Timers: one timerfd (CLOCK_MONOTONIC, absolute) armed for the earliest
 * deadline of a min-heap of requests, under tlock. Chosen over a timerfd
 * per timer: no descriptor per timer (10,000 timers in flight would need
 * 10,000 descriptors, past the default RLIMIT_NOFILE), and a timer costs a
 * system call only when it becomes the earliest. The heap array grows by
 * doubling (the only allocation, amortised; -ENOMEM refuses the timer). A
 * request in the heap keeps its absolute deadline in r->ts[0] and its heap
 * index in r->ts[1]. A deadline already past completes at once (status 0).
 *
 * Who reaps, and when (all of them run the same event handler):
 *   poll(w)   the owner found its queues empty (also every 61st dispatch,
 *             and repeatedly while spinning): if anything waits (nwait) and
 *             nobody else is harvesting (the `polling` flag, claimed by CAS),
 *             epoll_wait with timeout 0 into w's events array; completions go
 *             into w's ring, where idle workers steal them.
 *   park(w)   at most one parked worker sleeps in epoll_wait (the `poller`
 *             slot, claimed by CAS); see Parking.
 *   rescue    the monitor, when a worker has spent a whole sample inside one
 *             callback and no worker sleeps in epoll_wait: it asks a parked
 *             worker to take the poller's place and harvests once itself
 *             (completions to the inject queue). Without it, readiness could
 *             wait for the end of a long callback: the worker that left the
 *             poller slot to run work is the only one that would look.
 *   The backend never holds a completion it could deliver: a full local
 *   ring sends the packet to the inject queue; if even that cannot allocate
 *   (-ENOMEM), the request goes on a retry list that every reaper drains
 *   first. Backpressure: poll() and park() ask epoll_wait for no more events
 *   than the reaper's ring has room for (the rest stay in the kernel).
 *
 * Parking (park.c's protocol: sleep while *word == 1; the waker stores 0
 * with release, then calls unpark(w)):
 *   - the poller: store in_epoll = 1 (seq_cst), load the word (seq_cst);
 *     while it is 1: epoll_wait (timeout: what is left of ns, rounded up to
 *     ms; -1 for none), drain the eventfd if it rang, handle the events.
 *     Returns 2 as soon as it pushed a completion into its own ring, 1 when
 *     the word is 0, 0 on timeout. Then it clears in_epoll and frees the
 *     poller slot.
 *   - the others: store in_futex = 1 (seq_cst), read their slot's `kick`
 *     futex word, load the word (seq_cst) and the poller slot; sleep on
 *     `kick` (FUTEX_WAIT_PRIVATE on its value) while the word is 1 and a
 *     poller exists. They do not sleep on the park word itself because a
 *     poller that leaves must be able to wake one of them *without* changing
 *     its park word (which says "still on the idle stack"); bumping `kick`
 *     changes the value the kernel compares, so that wake-up cannot be lost.
 *   - unpark(w): ioc_fence_full(); if w's in_epoll is set, write the eventfd;
 *     if its in_futex is set, bump its kick and FUTEX_WAKE it.
 *   - hand-off: a poller that times out (it may retire), a worker that
 *     retires (thread_retire) and the monitor's rescue free or find free the
 *     poller slot and kick one in_futex sleeper, which then claims it. A
 *     sleeper that leaves because its word went to 0 while the slot is free
 *     passes the hand-off on (the kick may have been meant for the slot).
 *     A poller that leaves to run work does not hand off: it polls while it
 *     works and claims the slot again when it parks; if its callback blocks,
 *     the monitor's rescue does.
 *
 * No lost wake-up, four Dekker (store-buffer) pairs: each side stores its
 * flag, then loads the other's, with a full barrier in between (seq_cst
 * store and load, or ioc_fence_full() after park.c's release store of the
 * word); in the single total order one side sees the other's store:
 *   D1 poller: in_epoll = 1 ; load word     waker: word = 0 ; fence ; load in_epoll
 *      Either the poller sees 0 and does not sleep, or the waker sees
 *      in_epoll and writes the eventfd. The eventfd is level-triggered, so a
 *      write made before the poller enters epoll_wait still ends that wait.
 *   D2 sleeper: in_futex = 1 ; load kick, word  waker: word = 0 ; fence ; load in_futex
 *      Either the sleeper sees 0, or the waker bumps kick (after which the
 *      sleeper's FUTEX_WAIT on the old value returns at once) and wakes it.
 *   D3 sleeper: in_futex = 1 ; load kick, poller  leaver: poller = 0 ; load in_futex
 *      Either the sleeper sees the slot free and claims it, or the leaver
 *      sees it and kicks it.
 *   D4 canceller: closers += 1 ; load running   finisher: running -= 1 ; load closers
 *      (ep_fd, all seq_cst RMWs and loads) Either the canceller sees 0 and
 *      returns, or the finisher of the last call sees it and wakes it
 *      (FUTEX_WAKE on running: the canceller sleeps in FUTEX_WAIT on the
 *      value it last read, which returns at once once it changed). The
 *      count itself is raised under the entry lock, so a canceller whose
 *      pass follows the claim sees it.
 * Only the poller reads the eventfd: a spinner's poll() that sees TAG_WAKE
 * leaves it (level-triggered, the kernel re-queues it and wakes the poller).
 *
 * Invariants
 *   E1 A fd request is in exactly one of: its entry's list (r->ring =
 *      epw_of(fd, side), set and reset under the entry lock), a completion
 *      being delivered by the thread that unlinked it, a worker queue (a
 *      packet), or the retry list. A timer is in the heap (r->ring =
 *      EPW_TIMER, under tlock) or likewise being delivered. Whoever takes a
 *      request out of a list delivers it, exactly once. The exception is a
 *      deferred request: from submit until ep_exec claims it, it is both on
 *      SIDE_D and a PKT_EXEC packet; the packet is its only delivery, and
 *      whoever takes it off SIDE_D (ep_exec, or a canceller, which sets
 *      r->cancelled under the lock) decides only its result.
 *   E2 Outside an entry's critical section, a side with waiters is not
 *      marked ready (every pass runs waiters until -EAGAIN, which clears
 *      readiness, or until the list is empty).
 *   E3 Readiness is set only by an event for the entry's current generation
 *      and cleared only by the thread that saw -EAGAIN or a short transfer,
 *      both under the entry lock: an edge that follows a clear is handled
 *      after it and sets the flag again.
 *   E4 At most one worker holds the poller slot; it holds it only inside
 *      park(), with in_epoll set while it may be inside epoll_wait.
 *   E5 nwait >= the number of linked waiters and timers (counted before a
 *      request is linked, uncounted after it was taken out); poll() skips
 *      epoll_wait when it reads 0. Only a hint for that skip: an event left
 *      in the kernel is found by the next reaper or by the poller, which
 *      does not consult it. Deferred requests are not counted there (no
 *      event runs them); an entry's own nwait counts them, for cancel_port's
 *      walk.
 *
 * Cancellation: cancel(r) finds r through r->ring alone (acquire: which
 * descriptor's list, or the heap, or IOC_RING_NONE), then checks under that
 * lock, by pointer, that r is in that list (or at its heap index); the
 * winner unlinks it and completes it with -ECANCELED. It reads no plain
 * field of r before that: a request that completed meanwhile may be
 * resubmitted by its callback on another thread (core/io.c rewrites fd,
 * linked...), and only the atomic r->ring may be read against that. The
 * descriptor number lives in r->ring for that reason: 14 bits, so a
 * descriptor >= EPW_FD_BIG is found by searching the entries from
 * EPW_FD_BIG up (rare; still exact). A where-code is fd << 2 | side (sides
 * 0-3), EPW_TIMER and IOC_RING_NONE lie above every one. cancel_fd takes
 * every waiter and deferred request of the entry, then waits out its
 * deferred calls under way (D4). cancel_port walks every allocated chunk, skipping entries whose
 * nwait reads 0 without locking them (the closer calls cancel_port again
 * every millisecond while requests remain, core/port.c, so a waiter linked
 * concurrently is caught by the next pass), then filters the timer heap. A descriptor closed by the
 * host while requests wait is never reported again (close removes it from
 * the set); its requests complete when cancelled, unbound or at their
 * port's close. Re-registration for a newer generation completes the old
 * generation's leftover waiters with -ECANCELED (their binding is gone); a
 * request older than the registered generation likewise.
 *
 * Scratch fields of struct ioc_req this backend uses while it owns a
 * request: next/prev (lists), ring (where it waits, see epw_of), ts[0]
 * (timer deadline; a completion's result while on a done or retry list),
 * ts[1] (heap index), cancelled (a deferred request was taken off SIDE_D
 * by a cancel: written and read under the entry lock; core/io.c clears it
 * at submit).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "backends/backend.h"

#define EP_CHUNK IOC_BIND_CHUNK
#define EP_CHUNKS IOC_BIND_CHUNKS
#define EV_MAX 64u
#define RESCUE_EV 32u

#define TAG_WAKE UINT64_MAX
#define TAG_TIMER (UINT64_MAX - 1)
_Static_assert((uint64_t)(EP_CHUNK * EP_CHUNKS) < UINT32_MAX, "fd | gen << 32 never equals a tag");

enum { SIDE_R = 0, SIDE_W = 1, SIDE_P = 2, SIDE_D = 3, NSIDES = 4 };
/* r->ring while the backend holds the request (E1): IOC_RING_NONE (the
 * core's "nowhere", ours too after unlinking), EPW_TIMER (the heap), or
 * epw_of(fd, side): fd << 2 | side, the descriptor capped at EPW_FD_BIG
 * (see Cancellation). */
#define EPW_TIMER 0xfffeu
#define EPW_FD_BIG 16382u
_Static_assert(NSIDES <= 4 && (EPW_FD_BIG << 2 | (NSIDES - 1)) < EPW_TIMER && EPW_TIMER < IOC_RING_NONE,
               "where-codes stay below EPW_TIMER and IOC_RING_NONE");
static inline uint16_t epw_of(int fd, unsigned side) {
    unsigned n = (unsigned)fd < EPW_FD_BIG ? (unsigned)fd : EPW_FD_BIG;
    return (uint16_t)(n << 2 | side);
}
#define RDY_R (1u << SIDE_R)
#define RDY_W (1u << SIDE_W)
#define FDF_NOPOLL 1u  /* epoll refused it (EPERM): deferred like a file */
#define FDF_SHORT_R 2u /* a short read/recv empties the receive queue: TCP */
#define FDF_SHORT_W 4u /* a short write/send fills the send buffer: TCP, AF_UNIX streams, FIFOs */
#define FDF_URG 8u     /* EPOLLPRI seen (TCP urgent data): a read stops at the mark, FDF_SHORT_R is void */
/* recv()/send() flags under which a short transfer still means "consumed
 * everything queued" / "filled the buffer" (see Short transfers). */
#define SHORT_R_FLAGS (MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)
#define SHORT_W_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_EOR)

#define EP_EVENTS (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET)

struct ep_fd {
    pthread_mutex_t lock;
    uint32_t gen;  /* binding generation registered for; 0: never (lock) */
    uint8_t ready; /* RDY_* (lock) */
    uint8_t flags; /* FDF_* of the registration (lock) */
    /* Linked requests, waiters and deferred (every side): written under
     * the lock, read without it by cancel_port's walk (a hint, see the
     * theory). */
    ioc_atomic(uint32_t) nwait;
    /* Deferred system calls of this descriptor running on workers (counted
     * under the lock by ep_exec, uncounted without it when the call
     * returned), and cancellers waiting for them to end: the D4 pair. */
    ioc_atomic(uint32_t) running;
    ioc_atomic(uint32_t) closers;
    struct ioc_req *head[NSIDES], *tail[NSIDES];
};

/* Per worker slot (w->be_slot). The flags are written by the owner and read
 * by wakers: a line of their own. */
struct ep_slot {
    alignas(IOC_CACHELINE) ioc_atomic(uint32_t) in_epoll; /* D1 */
    ioc_atomic(uint32_t) in_futex;                        /* D2, D3 */
    ioc_atomic(uint32_t) kick;                            /* the futex word of a non-polling parker */
    alignas(IOC_CACHELINE) struct epoll_event ev[EV_MAX]; /* owner only */
};

struct ep_state {
    iocomp_engine *e;
    int epfd, wakefd, tfd;
    /* index + 1 of the worker parked in epoll_wait, 0: none (E4; D3). */
    alignas(IOC_CACHELINE) ioc_atomic(uint32_t) poller;
    /* A reaper is in poll()/rescue's epoll_wait(0): 1. */
    alignas(IOC_CACHELINE) ioc_atomic(uint32_t) polling;
    /* Waiters + timers (E5). Relaxed RMWs: a hint, ordered by nothing. */
    alignas(IOC_CACHELINE) ioc_atomic(int64_t) nwait;
    ioc_atomic(uint64_t) eintr;

    pthread_mutex_t tbl_lock; /* chunk allocation */
    ioc_atomic(struct ep_fd *) chunks[EP_CHUNKS];

    /* Timers (tlock). */
    pthread_mutex_t tlock;
    struct ioc_req **heap;
    uint32_t nheap, cap;
    uint64_t armed; /* the timerfd's absolute expiry, 0: disarmed */

    /* Completions nobody could take (ioc_complete_inject: -ENOMEM). */
    pthread_mutex_t rlock;
    struct ioc_req *retry;
    ioc_atomic(uint32_t) nretry; /* written under rlock, read lock-free */
};

static inline struct ep_state *st_of(iocomp_engine *e) { return e->be_state; }
static inline struct ep_slot *slot_of(struct ioc_worker *w) { return w->be_slot; }

/* ---- small helpers ----------------------------------------------------------------- */
static int futex_wait(ioc_atomic(uint32_t) *word, uint32_t val, uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, val, ns ? &ts : NULL, NULL, 0);
    return !(r == -1 && errno == ETIMEDOUT);
}

static void futex_wake_n(ioc_atomic(uint32_t) *word, int n) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
static void futex_wake(ioc_atomic(uint32_t) *word) { futex_wake_n(word, 1); }

/* Wakes a non-polling parker: the new value makes a FUTEX_WAIT on the old
 * one return (D2, D3). seq_cst: the RMW is also the full barrier between
 * the caller's store (word = 0, poller = 0) and the sleeper's wake-up. */
static void kick(struct ep_slot *sl) {
    ioc_fetch_add(&sl->kick, 1, IOC_SEQ_CST);
    futex_wake(&sl->kick);
}

static unsigned side_of(uint8_t op) {
    switch (op) {
    case IOC_OP_READ: case IOC_OP_READV: case IOC_OP_RECV: case IOC_OP_RECVMSG: case IOC_OP_ACCEPT:
        return SIDE_R;
    case IOC_OP_POLL:
        return SIDE_P;
    default:
        return SIDE_W;
    }
}

/* The non-blocking attempt for a registered descriptor. Sockets: MSG_DONTWAIT
 * (sync.c). Pipes and other pollable descriptors: O_NONBLOCK, set at
 * registration; RWF_NOWAIT is not supported by every file type, and sync.c
 * reads its -EOPNOTSUPP as "would block", which no edge would ever end.
 * poll: timeout 0. */
static inline int32_t exec_ready(struct ioc_req *r) {
    return ioc_sync_exec(r, r->fd_kind == FDK_SOCKET || r->op == IOC_OP_POLL);
}

/* A connect in progress, on writable: SO_ERROR (sync.c), then whether it
 * really connected (see the theory). */
static int32_t connect_check(struct ioc_req *r) {
    int32_t res = ioc_sync_exec(r, true);
    if (res != 0) return res;
    struct sockaddr_storage ss;
    socklen_t l = sizeof ss;
    if (getpeername(r->fd, (struct sockaddr *)&ss, &l) == 0) return 0;
    return errno == ENOTCONN ? -EAGAIN : -errno;
}

static int32_t connect_first(struct ioc_req *r) {
    if (connect(r->fd, (const struct sockaddr *)r->buf, (socklen_t)r->len) == 0) return 0;
    int err = errno;
    /* Interrupted, a non-blocking connect goes on in the background. */
    return err == EINTR ? -EINPROGRESS : -err;
}

/* A transfer of 0 < res < len that proves the side would now block (see
 * Short transfers): only where the kernel returns short for that reason
 * alone, and only for flags that consume what they report. MSG_PEEK, OOB,
 * MSG_ERRQUEUE, MSG_TRUNC and unknown flags, readv/writev and
 * recvmsg/sendmsg pay the -EAGAIN call instead (correct, one call dearer). */
static inline bool short_transfer(const struct ep_fd *f, const struct ioc_req *r, int32_t res) {
    if (res <= 0 || (uint32_t)res >= r->len) return false;
    bool rd = (f->flags & (FDF_SHORT_R | FDF_URG)) == FDF_SHORT_R;
    switch (r->op) {
    case IOC_OP_READ: return rd;
    case IOC_OP_RECV: return rd && !(r->mflags & ~SHORT_R_FLAGS);
    case IOC_OP_WRITE: return f->flags & FDF_SHORT_W;
    case IOC_OP_SEND: return (f->flags & FDF_SHORT_W) && !(r->mflags & ~SHORT_W_FLAGS);
    default: return false;
    }
}

/* ---- delivering completions ------------------------------------------------------------ */
static void retry_add(struct ep_state *s, struct ioc_req *r, int32_t res) {
    pthread_mutex_lock(&s->rlock);
    r->ts[0] = res;
    r->next = s->retry;
    s->retry = r;
    ioc_store(&s->nretry, ioc_load(&s->nretry, IOC_RELAXED) + 1, IOC_RELAXED);
    pthread_mutex_unlock(&s->rlock);
}

/* E1: the caller took r out of every list; r's completion goes into self's
 * ring, else the inject queue, else the retry list. Never dropped. *local
 * counts pushes into self's ring (the caller notifies once per batch). */
static void deliver(struct ep_state *s, struct ioc_worker *self, struct ioc_req *r, int32_t res, unsigned *local) {
    if (self && ioc_complete_local(self, r, res)) {
        (*local)++;
        return;
    }
    if (ioc_likely(ioc_complete_inject(s->e, r, res) == 0)) return;
    retry_add(s, r, res);
}

/* A done list: unlinked requests, linked through next, result in ts[0]. */
struct done {
    struct ioc_req *head, **tail;
    uint32_t n;
};
static inline void done_init(struct done *d) {
    d->head = NULL;
    d->tail = &d->head;
    d->n = 0;
}
static inline void done_add(struct done *d, struct ioc_req *r, int32_t res) {
    r->ts[0] = res;
    r->next = NULL;
    *d->tail = r;
    d->tail = &r->next;
    d->n++;
}
static unsigned done_deliver(struct ep_state *s, struct ioc_worker *self, struct done *d) {
    unsigned local = 0;
    for (struct ioc_req *r = d->head, *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        deliver(s, self, r, (int32_t)r->ts[0], &local);
    }
    return local;
}

static unsigned retry_drain(struct ep_state *s, struct ioc_worker *self) {
    if (ioc_likely(ioc_load(&s->nretry, IOC_RELAXED) == 0)) return 0;
    pthread_mutex_lock(&s->rlock);
    struct ioc_req *r = s->retry;
    s->retry = NULL;
    ioc_store(&s->nretry, 0, IOC_RELAXED);
    pthread_mutex_unlock(&s->rlock);
    unsigned local = 0;
    for (struct ioc_req *next; r; r = next) {
        next = r->next;
        r->next = NULL;
        deliver(s, self, r, (int32_t)r->ts[0], &local);
    }
    return local;
}

/* ---- the descriptor table ---------------------------------------------------------------- */
static struct ep_fd *fd_lookup(struct ep_state *s, int fd) {
    if (fd < 0 || (unsigned)fd >= EP_CHUNK * EP_CHUNKS) return NULL;
    /* Acquire pairs with fd_get's release store: the chunk's mutexes are
     * initialised. */
    struct ep_fd *c = ioc_load(&s->chunks[(unsigned)fd / EP_CHUNK], IOC_ACQUIRE);
    return c ? &c[(unsigned)fd % EP_CHUNK] : NULL;
}

static struct ep_fd *fd_get(struct ep_state *s, int fd) {
    struct ep_fd *f = fd_lookup(s, fd);
    if (ioc_likely(f) || fd < 0 || (unsigned)fd >= EP_CHUNK * EP_CHUNKS) return f;
    unsigned ci = (unsigned)fd / EP_CHUNK;
    pthread_mutex_lock(&s->tbl_lock);
    struct ep_fd *c = ioc_load(&s->chunks[ci], IOC_RELAXED);
    if (!c) {
        c = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : calloc(EP_CHUNK, sizeof *c);
        if (c) {
            for (unsigned i = 0; i < EP_CHUNK; i++) pthread_mutex_init(&c[i].lock, NULL);
            ioc_store(&s->chunks[ci], c, IOC_RELEASE); /* pairs with fd_lookup's acquire */
        }
    }
    pthread_mutex_unlock(&s->tbl_lock);
    return c ? &c[(unsigned)fd % EP_CHUNK] : NULL;
}

static void link_tail(struct ep_fd *f, unsigned side, struct ioc_req *r) {
    r->next = NULL;
    r->prev = f->tail[side];
    if (f->tail[side]) f->tail[side]->next = r;
    else f->head[side] = r;
    f->tail[side] = r;
    /* Release pairs with cancel's acquire load (it then takes our lock). */
    ioc_store(&r->ring, epw_of(r->fd, side), IOC_RELEASE);
    ioc_store(&f->nwait, ioc_load(&f->nwait, IOC_RELAXED) + 1, IOC_RELAXED);
}

static void unlink_req(struct ep_fd *f, unsigned side, struct ioc_req *r) {
    if (r->prev) r->prev->next = r->next;
    else f->head[side] = r->next;
    if (r->next) r->next->prev = r->prev;
    else f->tail[side] = r->prev;
    r->next = r->prev = NULL;
    ioc_store(&r->ring, IOC_RING_NONE, IOC_RELAXED);
    ioc_store(&f->nwait, ioc_load(&f->nwait, IOC_RELAXED) - 1, IOC_RELAXED);
}

/* Unlinks every waiter of f matching (all if port_idx == UINT32_MAX) onto d
 * with -ECANCELED (lock held). With deferred, the deferred requests too:
 * they are marked cancelled, not delivered (their packet is in a worker
 * queue and completes them, ep_exec). Returns how many deferred it took. */
static unsigned take_waiters_locked(struct ep_fd *f, uint32_t port_idx, struct done *d, bool deferred) {
    unsigned ndef = 0;
    for (unsigned side = 0; side < NSIDES; side++) {
        if (side == SIDE_D && !deferred) continue;
        for (struct ioc_req *r = f->head[side], *next; r; r = next) {
            next = r->next;
            if (port_idx != UINT32_MAX && r->port_idx != port_idx) continue;
            unlink_req(f, side, r);
            if (side == SIDE_D) {
                r->cancelled = 1; /* read by ep_exec under this lock */
                ndef++;
            } else {
                done_add(d, r, -ECANCELED);
            }
        }
    }
    return ndef;
}

enum { REG_OK = 0, REG_STALE = 1, REG_FAILED = 2 };

/* Registers f for r's generation (lock held). REG_OK; REG_STALE: r is older
 * than the registration; REG_FAILED: *err is the error to complete r with;
 * negative: refuse the request (a resource error, nothing done). Leftover
 * waiters of an older generation go on d (-ECANCELED). */
static int fd_register_locked(struct ep_state *s, struct ep_fd *f, struct ioc_req *r, struct done *d, int *err) {
    if (f->gen != 0 && (int32_t)(r->fd_gen - f->gen) < 0) return REG_STALE;
    struct epoll_event ev = {.events = EP_EVENTS, .data.u64 = (uint32_t)r->fd | (uint64_t)r->fd_gen << 32};
    /* Registered before (a rebind of the same descriptor is the common
     * case): MOD first. epoll keys its entries by (open file, number), so a
     * new file behind a reused number answers ENOENT and is ADDed. */
    int op = f->gen ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    int rc = epoll_ctl(s->epfd, op, r->fd, &ev);
    if (rc != 0 && errno == (op == EPOLL_CTL_MOD ? ENOENT : EEXIST)) {
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        rc = epoll_ctl(s->epfd, op, r->fd, &ev);
    }
    uint8_t flags = 0;
    if (rc != 0) {
        int e = errno;
        if (e == ENOMEM || e == ENOSPC) return -e; /* resources: refuse, change nothing */
        if (e != EPERM) {
            *err = -e; /* EBADF (closed) & co.: the request completes with it */
            return REG_FAILED;
        }
        flags = FDF_NOPOLL;
    }
    /* E1: a dead binding's leftover waiters. Not the deferred requests:
     * they are linked whatever the registration, and ep_exec checks their
     * binding itself. */
    take_waiters_locked(f, UINT32_MAX, d, false);
    if (!(flags & FDF_NOPOLL)) {
        int fl = fcntl(r->fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(r->fd, F_SETFL, fl | O_NONBLOCK);
        if (r->fd_kind == FDK_SOCKET) {
            /* Short transfers (see the theory): TCP both ways; an AF_UNIX
             * stream only for sends (a read stops after a message that
             * carried descriptors, or at a change of credentials, with more
             * queued); nothing else (SCTP streams keep message boundaries). */
            int type = 0, dom = 0, proto = 0;
            socklen_t l = sizeof type;
            if (getsockopt(r->fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM) {
                l = sizeof dom;
                if (getsockopt(r->fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0) dom = 0;
                l = sizeof proto;
                if (getsockopt(r->fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) != 0) proto = 0;
                if ((dom == AF_INET || dom == AF_INET6) && proto == IPPROTO_TCP) flags |= FDF_SHORT_R | FDF_SHORT_W;
                else if (dom == AF_UNIX) flags |= FDF_SHORT_W;
            }
        } else {
            /* Pipes and FIFOs: sends only. A read returns one packet when
             * the writer put the pipe in packet mode (O_DIRECT, a flag of
             * the write end that the reader cannot see). */
            struct stat stt;
            if (fstat(r->fd, &stt) == 0 && S_ISFIFO(stt.st_mode)) flags |= FDF_SHORT_W;
        }
    }
    f->gen = r->fd_gen;
    f->flags = flags;
    /* Optimistic: the first request tries its system call (one -EAGAIN at
     * most per registration); the registration's own edge follows anyway. */
    f->ready = RDY_R | RDY_W;
    return REG_OK;
}

/* ---- timers --------------------------------------------------------------------------------- */
static inline uint64_t t_deadline(const struct ioc_req *r) { return (uint64_t)r->ts[0]; }
static inline void t_place(struct ep_state *s, uint32_t i, struct ioc_req *r) {
    s->heap[i] = r;
    r->ts[1] = i;
}

static void sift_up(struct ep_state *s, uint32_t i) {
    struct ioc_req *r = s->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (t_deadline(s->heap[p]) <= t_deadline(r)) break;
        t_place(s, i, s->heap[p]);
        i = p;
    }
    t_place(s, i, r);
}

static void sift_down(struct ep_state *s, uint32_t i) {
    struct ioc_req *r = s->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->nheap) break;
        if (c + 1 < s->nheap && t_deadline(s->heap[c + 1]) < t_deadline(s->heap[c])) c++;
        if (t_deadline(r) <= t_deadline(s->heap[c])) break;
        t_place(s, i, s->heap[c]);
        i = c;
    }
    t_place(s, i, r);
}

static void heap_remove(struct ep_state *s, uint32_t i) {
    struct ioc_req *r = s->heap[i];
    struct ioc_req *last = s->heap[--s->nheap];
    if (i < s->nheap) {
        t_place(s, i, last);
        sift_down(s, i);
        sift_up(s, (uint32_t)last->ts[1]);
    }
    ioc_store(&r->ring, IOC_RING_NONE, IOC_RELAXED);
}

/* Arms the timerfd for the earliest deadline (tlock held). */
static void rearm_locked(struct ep_state *s) {
    uint64_t want = s->nheap ? t_deadline(s->heap[0]) : 0;
    if (want == s->armed) return;
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(want / 1000000000u);
    its.it_value.tv_nsec = (long)(want % 1000000000u);
    if (timerfd_settime(s->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0) s->armed = want;
    else s->armed = 0; /* cannot fail with valid arguments; the next change tries again */
}

static int timer_submit(struct ep_state *s, struct ioc_worker *self, struct ioc_req *r) {
    uint64_t now = ioc_now_ns();
    uint64_t at = (r->len & IOCOMP_TIMER_ABS) ? r->u.ns : now + r->u.ns;
    if (at < r->u.ns || at > (uint64_t)INT64_MAX) at = (uint64_t)INT64_MAX; /* saturate */
    if (at <= now) { /* already due: completes at once */
        unsigned local = 0;
        deliver(s, self, r, 0, &local);
        return 0;
    }
    pthread_mutex_lock(&s->tlock);
    if (s->nheap == s->cap) {
        uint32_t nc = s->cap ? s->cap * 2 : 64;
        struct ioc_req **nh = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : realloc(s->heap, nc * sizeof *nh);
        if (!nh) {
            pthread_mutex_unlock(&s->tlock);
            return -ENOMEM;
        }
        s->heap = nh;
        s->cap = nc;
    }
    ioc_fetch_add(&s->nwait, 1, IOC_RELAXED); /* E5: counted before it can be taken */
    r->ts[0] = (int64_t)at;
    s->heap[s->nheap] = r;
    r->ts[1] = s->nheap++;
    sift_up(s, (uint32_t)r->ts[1]);
    /* Release pairs with cancel's acquire load of ring. */
    ioc_store(&r->ring, EPW_TIMER, IOC_RELEASE);
    if (s->heap[0] == r) rearm_locked(s);
    pthread_mutex_unlock(&s->tlock);
    return 0;
}

/* The timerfd rang: complete every timer that is due. */
static unsigned timers_expire(struct ep_state *s, struct ioc_worker *self) {
    uint64_t ticks;
    ssize_t rd = read(s->tfd, &ticks, sizeof ticks); /* resets its readiness; EAGAIN is fine */
    (void)rd;
    struct done d;
    done_init(&d);
    pthread_mutex_lock(&s->tlock);
    s->armed = 0; /* it fired (or was re-armed since: setting it again is harmless) */
    uint64_t now = ioc_now_ns();
    while (s->nheap && t_deadline(s->heap[0]) <= now) {
        struct ioc_req *r = s->heap[0];
        heap_remove(s, 0);
        done_add(&d, r, 0);
    }
    rearm_locked(s);
    pthread_mutex_unlock(&s->tlock);
    if (d.n) ioc_fetch_sub(&s->nwait, d.n, IOC_RELAXED);
    return done_deliver(s, self, &d);
}

static int timer_cancel(struct ep_state *s, struct ioc_req *r) {
    pthread_mutex_lock(&s->tlock);
    /* In the heap iff at its recorded index (ts[1] is written only under
     * tlock, for requests in the heap). */
    bool mine = ioc_load(&r->ring, IOC_RELAXED) == EPW_TIMER && r->ts[1] >= 0 &&
                (uint64_t)r->ts[1] < s->nheap && s->heap[r->ts[1]] == r;
    if (mine) {
        heap_remove(s, (uint32_t)r->ts[1]);
        rearm_locked(s);
    }
    pthread_mutex_unlock(&s->tlock);
    if (!mine) return -ENOENT;
    ioc_fetch_sub(&s->nwait, 1, IOC_RELAXED);
    unsigned local = 0;
    deliver(s, ioc_self_in(s->e), r, -ECANCELED, &local);
    return 0;
}

/* Takes the port's timers out of the heap onto d. */
static void timers_take_port(struct ep_state *s, uint32_t port_idx, struct done *d) {
    pthread_mutex_lock(&s->tlock);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->nheap; i++) {
        struct ioc_req *r = s->heap[i];
        if (r->port_idx == port_idx) {
            ioc_store(&r->ring, IOC_RING_NONE, IOC_RELAXED);
            done_add(d, r, -ECANCELED);
        } else {
            t_place(s, kept++, r);
        }
    }
    if (kept != s->nheap) {
        s->nheap = kept;
        for (uint32_t i = kept / 2; i-- > 0;) sift_down(s, i); /* heapify */
        rearm_locked(s);
    }
    pthread_mutex_unlock(&s->tlock);
}

/* ---- events ------------------------------------------------------------------------------------ */
/* Runs a side's waiters in FIFO order until one would block (lock held). */
static void run_side_locked(struct ep_fd *f, unsigned side, struct done *d) {
    struct ioc_req *r;
    while ((r = f->head[side]) != NULL) {
        int32_t res = r->op == IOC_OP_CONNECT ? connect_check(r) : exec_ready(r);
        if (res == -EAGAIN) {
            f->ready &= (uint8_t)~(1u << side); /* E2; it stays first */
            return;
        }
        unlink_req(f, side, r);
        done_add(d, r, res);
        if (short_transfer(f, r, res)) {
            f->ready &= (uint8_t)~(1u << side); /* drained/full: the next one would get -EAGAIN */
            return;
        }
    }
}

static void run_polls_locked(struct ep_fd *f, struct done *d) {
    for (struct ioc_req *r = f->head[SIDE_P], *next; r; r = next) {
        next = r->next;
        int32_t res = exec_ready(r);
        if (res == -EAGAIN) continue;
        unlink_req(f, SIDE_P, r);
        done_add(d, r, res);
    }
}

static unsigned on_fd_event(struct ep_state *s, struct ioc_worker *self, uint64_t data, uint32_t events) {
    struct ep_fd *f = fd_lookup(s, (int)(uint32_t)data);
    if (!f) return 0;
    struct done d;
    done_init(&d);
    pthread_mutex_lock(&f->lock);
    if (ioc_unlikely(f->gen != (uint32_t)(data >> 32))) { /* a closed or rebound descriptor's */
        pthread_mutex_unlock(&f->lock);
        return 0;
    }
    bool bad = events & (EPOLLERR | EPOLLHUP);
    /* TCP urgent data: from now on a read may stop at the mark with data
     * queued behind it, so a short read proves nothing (for this
     * registration). An edge harvested after a short read sets RDY_R again
     * anyway (E3). */
    if (ioc_unlikely(events & EPOLLPRI)) f->flags |= FDF_URG;
    if (bad || (events & (EPOLLIN | EPOLLRDHUP))) {
        f->ready |= RDY_R;
        run_side_locked(f, SIDE_R, &d);
    }
    if (bad || (events & EPOLLOUT)) {
        f->ready |= RDY_W;
        run_side_locked(f, SIDE_W, &d);
    }
    if (f->head[SIDE_P]) run_polls_locked(f, &d);
    pthread_mutex_unlock(&f->lock);
    if (!d.n) return 0;
    ioc_fetch_sub(&s->nwait, d.n, IOC_RELAXED);
    return done_deliver(s, self, &d);
}

/* Handles n events; returns the completions pushed into self's ring.
 * poller: the caller is the parked poller, the only reader of the eventfd. */
static unsigned handle_events(struct ep_state *s, struct ioc_worker *self, struct epoll_event *ev, int n,
                              bool poller) {
    unsigned local = 0;
    for (int i = 0; i < n; i++) {
        uint64_t data = ev[i].data.u64;
        if (data == TAG_WAKE) {
            if (poller) {
                uint64_t v;
                ssize_t rd = read(s->wakefd, &v, sizeof v);
                (void)rd;
            }
        } else if (data == TAG_TIMER) {
            local += timers_expire(s, self);
        } else {
            local += on_fd_event(s, self, data, ev[i].events);
        }
    }
    return local;
}

/* Room in w's ring for completions (backpressure), at most max. */
static int room_for(struct ioc_worker *w, unsigned max) {
    uint64_t used = ioc_local_size(w);
    uint64_t cap = w->e->local_cap - 1u; /* a ring of N slots holds N - 1 */
    uint64_t room = used < cap ? cap - used : 0;
    return (int)(room < max ? room : max);
}

/* One non-blocking harvest into self's ring (or the inject queue when self
 * is NULL), if nobody else is harvesting. */
static unsigned harvest(struct ep_state *s, struct ioc_worker *self, struct epoll_event *ev, int max) {
    if (max <= 0) return 0;
    /* Test, then test-and-set: spinners call this in a loop. Acquire pairs
     * with the previous harvester's release (TSan sees the hand-off; the
     * data itself is under entry locks). */
    if (ioc_load(&s->polling, IOC_RELAXED)) return 0;
    uint32_t z = 0;
    if (!ioc_cas(&s->polling, &z, 1, IOC_ACQUIRE, IOC_RELAXED)) return 0;
    int n = epoll_wait(s->epfd, ev, max, 0);
    if (n < 0 && errno == EINTR) ioc_fetch_add(&s->eintr, 1, IOC_RELAXED);
    unsigned local = n > 0 ? handle_events(s, self, ev, n, false) : 0;
    ioc_store(&s->polling, 0, IOC_RELEASE);
    return local;
}

/* ---- the ops ------------------------------------------------------------------------------------- */
/* Hands a deferred request, already linked on f's SIDE_D, to a worker: its
 * packet carries PKT_EXEC and ep_exec runs it (see Regular files). If the
 * packet cannot be queued (-ENOMEM) nothing is left of the request. */
static int defer_push(iocomp_engine *e, struct ioc_worker *self, struct ep_fd *f, struct ioc_req *r) {
    int rc = ioc_complete_deferred(e, self, r);
    if (ioc_unlikely(rc < 0)) {
        pthread_mutex_lock(&f->lock);
        /* No packet, so no worker took it; a canceller may have (and
         * counted a cancel for a request that is now refused). */
        if (!r->cancelled) unlink_req(f, SIDE_D, r);
        pthread_mutex_unlock(&f->lock);
    }
    return rc;
}

static int ep_submit(iocomp_engine *e, struct ioc_worker *self, struct ioc_req *r) {
    struct ep_state *s = st_of(e);
    if (ioc_unlikely(r->op == IOC_OP_TIMER)) return timer_submit(s, self, r);
    struct ep_fd *f = fd_get(s, r->fd);
    if (ioc_unlikely(!f)) return (r->fd < 0 || (unsigned)r->fd >= EP_CHUNK * EP_CHUNKS) ? -EBADF : -ENOMEM;
    if (r->fd_kind == FDK_FILE || r->op == IOC_OP_FSYNC) {
        pthread_mutex_lock(&f->lock);
        link_tail(f, SIDE_D, r); /* E1: visible to cancels before its packet exists */
        pthread_mutex_unlock(&f->lock);
        return defer_push(e, self, f, r);
    }

    struct done stale;
    done_init(&stale);
    int32_t res;
    unsigned side = side_of(r->op);
    pthread_mutex_lock(&f->lock);
    /* The binding r was read from still lives (see Descriptor numbers): a
     * concurrent iocomp_close_fd() whose cancel pass came before our lock
     * may have closed the number and a new file may hold it; r then must
     * not register, try or wait on that file. */
    if (ioc_unlikely(ioc_bind_gen(e, r->fd) != r->fd_gen)) {
        res = -ECANCELED;
        goto complete;
    }
    if (ioc_unlikely(f->gen != r->fd_gen)) {
        int err = 0;
        int rc = fd_register_locked(s, f, r, &stale, &err);
        if (rc < 0) {
            pthread_mutex_unlock(&f->lock);
            return rc;
        }
        if (rc == REG_STALE || rc == REG_FAILED) {
            res = rc == REG_STALE ? -ECANCELED : err;
            goto complete;
        }
    }
    if (ioc_unlikely(f->flags & FDF_NOPOLL)) {
        link_tail(f, SIDE_D, r);
        pthread_mutex_unlock(&f->lock);
        if (ioc_unlikely(stale.n)) { /* a registration just now may have found leftovers */
            ioc_fetch_sub(&s->nwait, stale.n, IOC_RELAXED);
            done_deliver(s, self, &stale);
        }
        return defer_push(e, self, f, r);
    }
    if (ioc_unlikely(r->op == IOC_OP_CONNECT)) {
        res = connect_first(r);
        if (res != -EINPROGRESS && res != -EALREADY) goto complete;
        f->ready &= (uint8_t)~RDY_W;
        goto wait;
    }
    if (side == SIDE_P || (!f->head[side] && (f->ready & (1u << side)))) {
        res = exec_ready(r);
        if (res != -EAGAIN) {
            if (short_transfer(f, r, res)) f->ready &= (uint8_t)~(1u << side);
            goto complete;
        }
        if (side != SIDE_P) f->ready &= (uint8_t)~(1u << side); /* E2 */
    }
wait:
    ioc_fetch_add(&s->nwait, 1, IOC_RELAXED); /* E5: counted before it can be taken */
    link_tail(f, side, r);
    pthread_mutex_unlock(&f->lock);
    if (ioc_unlikely(stale.n)) {
        ioc_fetch_sub(&s->nwait, stale.n, IOC_RELAXED);
        done_deliver(s, self, &stale);
    }
    return 0;
complete:
    pthread_mutex_unlock(&f->lock);
    if (ioc_unlikely(stale.n)) {
        ioc_fetch_sub(&s->nwait, stale.n, IOC_RELAXED);
        done_deliver(s, self, &stale);
    }
    unsigned local = 0;
    deliver(s, self, r, res, &local);
    return 0;
}

/* r is in f's list `side` (lock held): a pointer walk, no field of r read. */
static bool in_list_locked(const struct ep_fd *f, unsigned side, const struct ioc_req *r) {
    for (const struct ioc_req *x = f->head[side]; x; x = x->next)
        if (x == r) return true;
    return false;
}

/* Takes r out of f's list if it is there (lock taken here). */
static bool take_if_linked(struct ep_fd *f, unsigned side, struct ioc_req *r) {
    pthread_mutex_lock(&f->lock);
    bool mine = ioc_load(&r->ring, IOC_RELAXED) != IOC_RING_NONE && in_list_locked(f, side, r);
    if (mine) {
        unlink_req(f, side, r);
        if (side == SIDE_D) r->cancelled = 1; /* its packet completes it (ep_exec reads this under the lock) */
    }
    pthread_mutex_unlock(&f->lock);
    return mine;
}

static int ep_cancel(iocomp_engine *e, struct ioc_req *r) {
    struct ep_state *s = st_of(e);
    /* Acquire pairs with link_tail's / timer_submit's release store. */
    uint16_t where = ioc_load(&r->ring, IOC_ACQUIRE);
    if (where == IOC_RING_NONE) return -ENOENT; /* not waiting (done, not yet linked, its deferred call started) */
    if (where == EPW_TIMER) return timer_cancel(s, r);
    unsigned side = where & 3u, fdn = where >> 2;
    bool mine = false;
    if (fdn < EPW_FD_BIG) {
        struct ep_fd *f = fd_lookup(s, (int)fdn);
        mine = f && take_if_linked(f, side, r);
    } else {
        for (unsigned ci = EPW_FD_BIG / EP_CHUNK; ci < EP_CHUNKS && !mine; ci++) {
            struct ep_fd *c = ioc_load(&s->chunks[ci], IOC_ACQUIRE);
            if (!c) continue;
            for (unsigned i = 0; i < EP_CHUNK && !mine; i++)
                if (ioc_load(&c[i].nwait, IOC_RELAXED)) mine = take_if_linked(&c[i], side, r);
        }
    }
    if (!mine) return -ENOENT; /* completed, or being completed, already */
    if (side == SIDE_D) return 0; /* its packet completes it with -ECANCELED (ep_exec) */
    ioc_fetch_sub(&s->nwait, 1, IOC_RELAXED);
    unsigned local = 0;
    deliver(s, ioc_self_in(e), r, -ECANCELED, &local);
    return 0;
}

/* D4, the canceller's side: returns once no deferred system call of f runs.
 * A call counted before the caller's pass under f's lock is seen here (the
 * lock orders the count before our loads); one that starts later belongs to
 * a request the pass did not take (submitted after it, still bound), which
 * we wait for too: a moment when none runs. */
static void wait_running(struct ep_fd *f) {
    /* After our pass's unlock: sees every count raised under the lock
     * before it (the mutex orders ep_exec's increment before this load). */
    if (ioc_load(&f->running, IOC_SEQ_CST) == 0) return;
    /* seq_cst RMW, then seq_cst loads: pairs with ep_exec's decrement and
     * load of closers (either we see 0 or it sees us and wakes us). */
    ioc_fetch_add(&f->closers, 1, IOC_SEQ_CST);
    for (;;) {
        uint32_t v = ioc_load(&f->running, IOC_SEQ_CST);
        if (v == 0) break;
        futex_wait(&f->running, v, 0); /* returns at once if it is no longer v */
    }
    ioc_fetch_sub(&f->closers, 1, IOC_RELAXED); /* a stale count costs a spare wake-up, nothing else */
}

/* PKT_EXEC (core/worker.c), on the worker that dispatches r's packet, just
 * before its callback: claims r from SIDE_D and runs its blocking system
 * call, unless a cancel took it first or the binding it was submitted on is
 * gone (unbound, its port closed, the number bound again): then -ECANCELED,
 * and the descriptor is not touched. */
static int32_t ep_exec(iocomp_engine *e, struct ioc_req *r) {
    struct ep_fd *f = fd_lookup(st_of(e), r->fd); /* ep_submit created it */
    pthread_mutex_lock(&f->lock);
    bool run = !r->cancelled; /* a canceller set it and unlinked r under this lock */
    if (run) {
        unlink_req(f, SIDE_D, r);
        /* Under the lock: an unbind's record write precedes its cancel_fd
         * pass; if we come after that pass we see the binding gone. */
        run = ioc_bind_gen(e, r->fd) == r->fd_gen;
        /* D4: counted under the lock, so a canceller whose pass follows
         * sees it (relaxed is enough: the mutex orders it). */
        if (run) ioc_fetch_add(&f->running, 1, IOC_RELAXED);
    }
    pthread_mutex_unlock(&f->lock);
    if (!run) return -ECANCELED;
    IOC_FAULT_PAUSE(); /* tests: holds a claimed request before its call (io_file_close_reuse) */
    int32_t res = ioc_sync_exec(r, false);
    /* D4, the finisher's side: seq_cst decrement, then seq_cst load of
     * closers; pairs with wait_running's increment and loads. */
    if (ioc_fetch_sub(&f->running, 1, IOC_SEQ_CST) == 1 && ioc_load(&f->closers, IOC_SEQ_CST))
        futex_wake_n(&f->running, INT_MAX);
    return res;
}

static int ep_cancel_fd(iocomp_engine *e, int fd) {
    struct ep_state *s = st_of(e);
    struct ep_fd *f = fd_lookup(s, fd);
    if (!f) return 0;
    struct done d;
    done_init(&d);
    pthread_mutex_lock(&f->lock);
    unsigned ndef = take_waiters_locked(f, UINT32_MAX, &d, true);
    pthread_mutex_unlock(&f->lock);
    if (d.n) {
        ioc_fetch_sub(&s->nwait, d.n, IOC_RELAXED);
        done_deliver(s, ioc_self_in(e), &d);
    }
    /* A deferred call already running finishes on the file it started on
     * before we return, so the caller's close(2) cannot come first (D4). */
    wait_running(f);
    return (int)(d.n + ndef);
}

static int ep_cancel_port(iocomp_engine *e, uint32_t port_idx) {
    struct ep_state *s = st_of(e);
    struct done d;
    done_init(&d);
    unsigned ndef = 0;
    for (unsigned ci = 0; ci < EP_CHUNKS; ci++) {
        struct ep_fd *c = ioc_load(&s->chunks[ci], IOC_ACQUIRE);
        if (!c) continue;
        for (unsigned i = 0; i < EP_CHUNK; i++) {
            struct ep_fd *f = &c[i];
            if (ioc_load(&f->nwait, IOC_RELAXED) == 0) continue; /* a hint: the closer passes again */
            pthread_mutex_lock(&f->lock);
            ndef += take_waiters_locked(f, port_idx, &d, true);
            pthread_mutex_unlock(&f->lock);
        }
    }
    timers_take_port(s, port_idx, &d);
    if (!d.n) return (int)ndef;
    ioc_fetch_sub(&s->nwait, d.n, IOC_RELAXED);
    done_deliver(s, ioc_self_in(e), &d);
    return (int)(d.n + ndef);
}

static int ep_poll(struct ioc_worker *w, struct ioc_pkt *out) {
    (void)out; /* completions go through the ring (harvest runs under entry locks) */
    struct ep_state *s = st_of(w->e);
    unsigned local = retry_drain(s, w);
    if (ioc_load(&s->nwait, IOC_RELAXED) > 0)
        local += harvest(s, w, slot_of(w)->ev, room_for(w, EV_MAX));
    if (local > 1) ioc_notify(w->e); /* more than we run next: let idle workers steal */
    return local != 0 ? 1 : 0;
}

/* D3, the leaver's side: the poller slot is free (the caller stored 0, or
 * read 0); wake one parker sleeping on its kick word so it claims it. */
static void hand_off(iocomp_engine *e) {
    uint32_t n = ioc_load(&e->nslots, IOC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++) {
        struct ioc_worker *v = ioc_load(&e->workers[i], IOC_ACQUIRE);
        struct ep_slot *sl = v ? slot_of(v) : NULL;
        if (sl && ioc_load(&sl->in_futex, IOC_SEQ_CST)) {
            kick(sl);
            return;
        }
    }
}

/* The poller: sleeps in epoll_wait while *word == 1. 2: pushed completions
 * into w's ring; 1: woken; 0: timed out. Holds the poller slot (E4). */
static int park_epoll(struct ep_state *s, struct ioc_worker *w, ioc_atomic(uint32_t) *word, uint64_t deadline) {
    struct ep_slot *sl = slot_of(w);
    int ret;
    /* D1, the poller's store; its load is the word's at the loop's top. */
    ioc_store(&sl->in_epoll, 1, IOC_SEQ_CST);
    for (;;) {
        if (ioc_load(word, IOC_SEQ_CST) != 1) {
            ret = 1;
            break;
        }
        if (ioc_unlikely(retry_drain(s, w))) {
            ret = 2;
            break;
        }
        int ms = -1;
        if (deadline) {
            uint64_t now = ioc_now_ns();
            if (now >= deadline) {
                ret = 0;
                break;
            }
            uint64_t left = (deadline - now + 999999u) / 1000000u;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        int max = room_for(w, EV_MAX);
        int n = epoll_wait(s->epfd, sl->ev, max > 0 ? max : 1, ms);
        if (n < 0) {
            if (errno == EINTR) {
                ioc_fetch_add(&s->eintr, 1, IOC_RELAXED);
                continue;
            }
            ret = 1; /* cannot happen with a valid set; park.c re-checks the word */
            break;
        }
        if (n > 0 && handle_events(s, w, sl->ev, n, true)) {
            ret = 2;
            break;
        }
    }
    ioc_store(&sl->in_epoll, 0, IOC_RELAXED);
    /* D3, the leaver's store (seq_cst), then hand_off's loads. */
    ioc_store(&s->poller, 0, IOC_SEQ_CST);
    if (ret == 0) hand_off(w->e); /* we may retire: someone else must watch the set */
    return ret;
}

/* A parker while another worker is the poller. 1: woken; 0: timed out;
 * -1: the poller slot is free, try to claim it. */
static int park_futex(struct ep_state *s, struct ioc_worker *w, ioc_atomic(uint32_t) *word, uint64_t deadline) {
    struct ep_slot *sl = slot_of(w);
    int ret;
    /* D2/D3, the sleeper's store; its loads follow, before every wait. */
    ioc_store(&sl->in_futex, 1, IOC_SEQ_CST);
    for (;;) {
        uint32_t k = ioc_load(&sl->kick, IOC_SEQ_CST);
        if (ioc_load(word, IOC_SEQ_CST) != 1) {
            ret = 1;
            break;
        }
        if (ioc_load(&s->poller, IOC_SEQ_CST) == 0) {
            ret = -1;
            break;
        }
        uint64_t ns = 0;
        if (deadline) {
            uint64_t now = ioc_now_ns();
            if (now >= deadline) {
                ret = 0;
                break;
            }
            ns = deadline - now;
        }
        futex_wait(&sl->kick, k, ns); /* a timeout is seen at the next pass */
    }
    ioc_store(&sl->in_futex, 0, IOC_SEQ_CST);
    /* A hand-off's kick may have reached us just as we were woken: pass it
     * on, or nobody would claim the free poller slot. */
    if (ret == 1 && ioc_load(&s->poller, IOC_SEQ_CST) == 0) hand_off(w->e);
    return ret;
}

static int ep_park(struct ioc_worker *w, ioc_atomic(uint32_t) *word, uint64_t ns) {
    struct ep_state *s = st_of(w->e);
    uint64_t deadline = ns ? ioc_now_ns() + ns : 0;
    for (;;) {
        uint32_t none = 0;
        int r;
        /* E4: claim the poller slot. seq_cst: D3 with hand_off's loads. */
        if (ioc_load(&s->poller, IOC_RELAXED) == 0 &&
            ioc_cas(&s->poller, &none, w->index + 1, IOC_SEQ_CST, IOC_RELAXED)) {
            /* 2: park.c notifies for what we do not run next, once it took
             * us off the idle stack (a notify here could pop this worker). */
            return park_epoll(s, w, word, deadline);
        }
        r = park_futex(s, w, word, deadline);
        if (r >= 0) return r;
    }
}

static void ep_unpark(struct ioc_worker *w) {
    struct ep_state *s = st_of(w->e);
    struct ep_slot *sl = slot_of(w);
    /* D1/D2, the waker's fence: park.c stored word = 0 (release) before. */
    ioc_fence_full();
    if (ioc_load(&sl->in_epoll, IOC_RELAXED)) {
        uint64_t one = 1;
        ssize_t wr = write(s->wakefd, &one, sizeof one); /* EAGAIN: the counter is full, it rings anyway */
        (void)wr;
    }
    if (ioc_load(&sl->in_futex, IOC_RELAXED)) kick(sl);
}

static bool ep_thread_retire(struct ioc_worker *w) {
    struct ep_state *s = st_of(w->e);
    /* This worker may never come back to park: if nobody watches the set,
     * a parked worker must (D3: we read the slot free, then look). */
    if (ioc_load(&s->poller, IOC_SEQ_CST) == 0) hand_off(w->e);
    return true;
}

static void ep_rescue(iocomp_engine *e, struct ioc_worker *w) {
    struct ep_state *s = st_of(e);
    retry_drain(s, NULL);
    if (ioc_load(&s->poller, IOC_SEQ_CST) != 0) return; /* someone sleeps in epoll_wait */
    if (ioc_load(&s->nwait, IOC_RELAXED) <= 0) return;
    hand_off(e); /* a parked worker becomes the poller, if there is one */
    struct epoll_event ev[RESCUE_EV];
    harvest(s, NULL, ev, (int)RESCUE_EV); /* completions to the inject queue (it notifies) */
}

static int ep_slot_init(struct ioc_worker *w) {
    struct ep_slot *sl = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : aligned_alloc(IOC_CACHELINE, sizeof *sl);
    if (!sl) return -ENOMEM;
    memset(sl, 0, sizeof *sl);
    w->be_slot = sl;
    return 0;
}

static void ep_slot_fini(struct ioc_worker *w) {
    free(w->be_slot);
    w->be_slot = NULL;
}

static void ep_fini(iocomp_engine *e) {
    struct ep_state *s = st_of(e);
    if (!s) return;
    /* The core guarantees every request completed: lists and heap are empty. */
    for (unsigned ci = 0; ci < EP_CHUNKS; ci++) {
        struct ep_fd *c = ioc_load(&s->chunks[ci], IOC_RELAXED);
        if (!c) continue;
        for (unsigned i = 0; i < EP_CHUNK; i++) pthread_mutex_destroy(&c[i].lock);
        free(c);
    }
    if (s->tfd >= 0) close(s->tfd);
    if (s->wakefd >= 0) close(s->wakefd);
    if (s->epfd >= 0) close(s->epfd);
    pthread_mutex_destroy(&s->tbl_lock);
    pthread_mutex_destroy(&s->tlock);
    pthread_mutex_destroy(&s->rlock);
    free(s->heap);
    free(s);
    e->be_state = NULL;
}

static int ep_init(iocomp_engine *e, const iocomp_config *cfg) {
    (void)cfg;
    struct ep_state *s = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : aligned_alloc(IOC_CACHELINE, sizeof *s);
    if (!s) return -ENOMEM;
    memset(s, 0, sizeof *s);
    s->e = e;
    s->epfd = s->wakefd = s->tfd = -1;
    pthread_mutex_init(&s->tbl_lock, NULL);
    pthread_mutex_init(&s->tlock, NULL);
    pthread_mutex_init(&s->rlock, NULL);
    e->be_state = s;
    int err = 0;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) err = -errno;
    if (!err && (s->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) err = -errno;
    if (!err && (s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)) < 0) err = -errno;
    if (!err) {
        /* Level-triggered: a ring stays visible until the poller drains it. */
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wakefd, &ev) != 0) err = -errno;
    }
    if (!err) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = TAG_TIMER};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->tfd, &ev) != 0) err = -errno;
    }
    if (err) ep_fini(e); /* leaves nothing behind */
    return err;
}

static void ep_stats(iocomp_engine *e, iocomp_stats *out) {
    out->io_eintr += ioc_load(&st_of(e)->eintr, IOC_RELAXED);
}

const struct ioc_backend_ops ioc_backend_epoll = {
    .name = "epoll",
    .init = ep_init,
    .fini = ep_fini,
    .slot_init = ep_slot_init,
    .slot_fini = ep_slot_fini,
    .thread_start = NULL,
    .thread_retire = ep_thread_retire,
    .submit = ep_submit,
    .cancel = ep_cancel,
    .cancel_fd = ep_cancel_fd,
    .cancel_port = ep_cancel_port,
    .exec = ep_exec,
    .poll = ep_poll,
    .park = ep_park,
    .unpark = ep_unpark,
    .rescue = ep_rescue,
    .stats = ep_stats,
};
