/*
 * backend.h - the ops table between the core and an OS backend, and the core
 * services a backend uses. One file per backend implements the table
 * (uring.c, epoll.c); the core calls it only through e->be and never
 * includes liburing.h or sys/epoll.h.
 *
 * The contract a backend keeps (both backends, the same tests):
 *   - A request handed to submit() is already accepted and counted against
 *     its port by the core (core/io.c). From then on the backend owes it
 *     exactly one completion: ioc_complete_local() on the worker that reaps
 *     it, or ioc_complete_inject() from any thread, with the kernel's result
 *     (bytes >= 0 or -errno). If submit() returns an error the core uncounts
 *     the request and no completion follows; a backend returns an error only
 *     if it did nothing with the request.
 *   - A full local ring is backpressure: ioc_complete_local() returns false
 *     and the backend keeps the completion where it was (io_uring: the CQE
 *     stays in the CQ; the kernel holds the rest, IORING_FEAT_NODROP).
 *   - cancel(), cancel_fd(), cancel_port() only ask: the request still
 *     completes once, through the normal path (-ECANCELED if the cancel won).
 *   - A request's completion is delivered before its port's close returns:
 *     the closer calls cancel_port() after the port stopped accepting, then
 *     waits for the port's count to drain.
 *
 * Threads: submit/cancel* from any thread; poll/park from the worker that
 * owns w; unpark from any thread; rescue from the monitor thread.
 */
#ifndef IOCOMP_BACKENDS_BACKEND_H
#define IOCOMP_BACKENDS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "core/internal.h"
#include "core/request.h"

struct ioc_backend_ops {
    const char *name;
    /* Engine-wide state (e->be_state). 0 or -errno; fini undoes it. */
    int (*init)(iocomp_engine *e, const iocomp_config *cfg);
    void (*fini)(iocomp_engine *e);
    /* Per worker slot, when the slot is first used (a host thread, under
     * scale_lock) and when the engine is freed. The slot's state outlives
     * the threads that run on it. */
    int (*slot_init)(struct ioc_worker *w);
    void (*slot_fini)(struct ioc_worker *w);
    /* On the worker thread: it starts running on the slot / it wants to
     * retire (return false to refuse: requests of this slot are still in
     * flight and only its owner waits for them). May be NULL. */
    void (*thread_start)(struct ioc_worker *w);
    bool (*thread_retire)(struct ioc_worker *w);
    /* Any thread: does w's slot hold requests that only its thread waits for
     * (thread_retire would refuse)? A snapshot; NULL: never. park.c lets a
     * worker above max sleep, instead of coming back to retire at once,
     * while this is true. */
    bool (*slot_holds)(struct ioc_worker *w);
    /* Start the request. self: the calling worker of this engine or NULL. */
    int (*submit)(iocomp_engine *e, struct ioc_worker *self, struct ioc_req *r);
    /* 0 if a cancel was asked, -ENOENT if r is not in flight. */
    int (*cancel)(iocomp_engine *e, struct ioc_req *r);
    /* Cancel every request on fd / on the port slot; return how many. */
    int (*cancel_fd)(iocomp_engine *e, int fd);
    int (*cancel_port)(iocomp_engine *e, uint32_t port_idx);
    /* A PKT_EXEC packet's turn (ioc_complete_deferred), on the dispatching
     * worker just before the callback: run r's system call and return its
     * result, or -ECANCELED without touching the descriptor if r was
     * cancelled or its binding is gone. Required by a backend that defers;
     * NULL otherwise. */
    int32_t (*exec)(iocomp_engine *e, struct ioc_req *r);
    /* The owner found no work in its queues (out != NULL), or its fairness
     * tick came (out NULL): flush its submissions, move ready completions
     * into its ring. A backend may hand the first completion straight to
     * the caller through out instead of its ring (saves a push and a pop).
     * Returns 2: *out holds a completion to run (more may be in the ring);
     * 1: completions were pushed into w's ring only; 0: none. */
    int (*poll)(struct ioc_worker *w, struct ioc_pkt *out);
    /* Sleep while *word == 1 (park.c's protocol), up to ns (0: no limit).
     * Returns 1 when woken (the word may still be 1: the caller re-checks),
     * 2 when it pushed completions into w's own ring while sleeping (the
     * caller takes itself off the idle stack and runs them, and calls
     * ioc_notify() if it pushed more than one, so idle workers steal the
     * rest; a backend must not notify from here: the parker is still on
     * the idle stack and would be the one woken), 0 on timeout. NULL:
     * futex. */
    int (*park)(struct ioc_worker *w, ioc_atomic(uint32_t) *word, uint64_t ns);
    /* Wake w after its word was set to 0 (any thread). NULL: futex wake. */
    void (*unpark)(struct ioc_worker *w);
    /* The monitor: w has been inside one callback for a whole sample.
     * Take over what its slot would strand (completions, submissions). */
    void (*rescue)(iocomp_engine *e, struct ioc_worker *w);
    /* Stats the backend keeps (io_sq_full, io_cq_*...). May be NULL. */
    void (*stats)(iocomp_engine *e, iocomp_stats *out);
    /* The optional features in use, space-separated (iocomp_backend_features):
     * a string that lives as long as the engine. NULL: none. */
    const char *(*features)(iocomp_engine *e);
};

extern const struct ioc_backend_ops ioc_backend_uring;
extern const struct ioc_backend_ops ioc_backend_epoll;
/* Probes io_uring once per process: setup, NODROP, EXT_ARG and the opcodes
 * iocomp uses (what Linux 5.15 has); the optional features are probed then
 * too (uring.c). 0 if it can run, else -errno (-ENOSYS, -EPERM,
 * -EOPNOTSUPP...). Thread: any. */
int ioc_uring_probe(void);

/* ---- core services for backends (core/io.c) ------------------------------- */

/* Push r's completion (res: bytes/value >= 0 or -errno) into w's own ring.
 * w must be the calling worker. false: the ring is full, nothing was done
 * (keep the completion, try again later). The caller calls ioc_notify()
 * once after a batch. */
bool ioc_complete_local(struct ioc_worker *w, struct ioc_req *r, int32_t res);
/* r's completion packet, written to *out for the caller to return from
 * poll() (status 2): never fails. */
void ioc_complete_direct(struct ioc_req *r, int32_t res, struct ioc_pkt *out);
/* Same into the engine's inject queue, from any thread (unbounded; fails
 * only with -ENOMEM, and then nothing was done). Calls ioc_notify(). */
int ioc_complete_inject(iocomp_engine *e, struct ioc_req *r, int32_t res);
/* Hand r to a worker, which runs the backend's exec(r) (the system call,
 * unless r was cancelled meanwhile) and completes it with the result
 * (epoll's regular files): the completion packet carries PKT_EXEC. self:
 * the calling worker or NULL. 0, or -ENOMEM with nothing queued. */
int ioc_complete_deferred(iocomp_engine *e, struct ioc_worker *self, struct ioc_req *r);

/* ---- the synchronous system calls (backends/sync.c) ------------------------ */
/* Runs r's operation once with a system call. nonblock: ask for a
 * non-blocking attempt (MSG_DONTWAIT, RWF_NOWAIT, poll with timeout 0).
 * Returns the result (>= 0) or -errno (-EAGAIN: would block; EINTR is
 * retried). Timers and connect are not run here (-EOPNOTSUPP) except
 * connect's first attempt. */
int32_t ioc_sync_exec(struct ioc_req *r, bool nonblock);
/* The revents an operation waits for (POLLIN or POLLOUT, or r's events). */
uint32_t ioc_sync_events(const struct ioc_req *r);

/* Binding look-up for backends: the current generation of fd's binding
 * (0 if unbound). Lock-free. */
uint32_t ioc_bind_gen(iocomp_engine *e, int fd);

#endif
