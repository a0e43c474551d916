/*
 * io.c - descriptors and asynchronous operations: bindings, the submit front
 * end shared by every operation, the completion services backends use, and
 * the choice of backend.
 *
 * Theory of operation
 * -------------------
 * Bindings. fd -> {port handle, key, generation, flags} in a two-level table
 * (1024 chunks of 1024 records, chunks allocated on demand and never moved
 * or freed before the engine), so a submitter reads its record without a
 * lock. Writers (bind, unbind, port close, skip-on-success) hold bind_lock
 * and bracket their stores with a sequence number (a seqlock):
 *     writer: seq += 1 (acq_rel RMW: odd) ; fields (release) ; seq += 1 (release)
 *     reader: s1 = seq (acquire) ; fields (acquire) ; s2 = seq ; s1 == s2, even
 * A reader whose field load sees a writer's store synchronises with it, so
 * its later load of seq sees at least that writer's odd value and it
 * retries: it never returns a record mixed from two writers. The generation
 * grows at every bind: it goes into requests (and epoll's user data), so an
 * event for a descriptor number that was closed and reused is recognised.
 *
 * Submitting (every operation):
 *   1. claim the overlapped: state IDLE -> INFLIGHT by CAS (acquire: pairs
 *      with the release store of IDLE before the previous completion's
 *      callback, worker.c), else -EBUSY;
 *   2. read the binding (port, key, generation, skip flag, kind);
 *   3. skip-on-success descriptors: try the operation once without blocking
 *      (backends/sync.c); if it finished, the result goes in the header and
 *      the call returns IOCOMP_INLINE: nothing was accepted, no callback;
 *   4. accept against the port (port.c: the Dekker pair with close on a
 *      worker, the inject lock on a host thread): from here the request
 *      counts in flight until its callback returns;
 *   5. hand it to the backend; if the backend refuses, take the count back
 *      and the overlapped goes back to IDLE: no completion follows.
 * Any failure before 4 changes nothing.
 *
 * Completing: the backend calls ioc_complete_local() (the reaping worker's
 * own ring: stealable) or ioc_complete_inject(); the packet carries PKT_IO,
 * and the dispatching worker stores IDLE (release) into the overlapped just
 * before the callback, after the backend is done with it. A deferred
 * request (epoll's regular files, ioc_complete_deferred) is queued as
 * PKT_IO | PKT_EXEC before its system call: the dispatcher first calls the
 * backend's exec(), which runs the call or, if a cancel or the binding's end
 * came first, returns -ECANCELED without touching the descriptor.
 *
 * Invariants
 *   I1 An overlapped is INFLIGHT from a successful claim until the dispatch
 *      of its completion, or until a refused submit or inline result.
 *   I2 Accepted (step 4) => exactly one packet is produced by the backend.
 *   I3 Binding records are written only under bind_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/backend.h"
#include "core/internal.h"
#include "core/probes.h"

#define BIND_SKIP 1u
#define OV_MAGIC 0x696f6376u /* overlapped.c's "iocv" */

/* ---- bindings ------------------------------------------------------------------ */
struct bind_view {
    iocomp_port_t port;
    uintptr_t key;
    uint32_t gen, flags;
};

static struct ioc_binding *bind_rec(iocomp_engine *e, int fd) {
    if (fd < 0 || (unsigned)fd >= IOC_BIND_CHUNK * IOC_BIND_CHUNKS) return NULL;
    /* Acquire pairs with the release store that published the chunk. */
    struct ioc_binding *c = ioc_load(&e->bind_chunks[(unsigned)fd / IOC_BIND_CHUNK], IOC_ACQUIRE);
    return c ? &c[(unsigned)fd % IOC_BIND_CHUNK] : NULL;
}

static bool bind_read(iocomp_engine *e, int fd, struct bind_view *v) {
    struct ioc_binding *b = bind_rec(e, fd);
    if (!b) return false;
    for (;;) {
        /* The reader's side of the seqlock (see the theory above). */
        uint32_t s1 = ioc_load(&b->seq, IOC_ACQUIRE);
        if (ioc_unlikely(s1 & 1)) {
            ioc_cpu_relax();
            continue;
        }
        v->port = ioc_load(&b->port, IOC_ACQUIRE);
        v->key = ioc_load(&b->key, IOC_ACQUIRE);
        v->gen = ioc_load(&b->gen, IOC_ACQUIRE);
        v->flags = ioc_load(&b->flags, IOC_ACQUIRE);
        if (ioc_likely(ioc_load(&b->seq, IOC_RELAXED) == s1)) return v->port != 0;
    }
}

/* Writer side (bind_lock held). */
static void bind_write(struct ioc_binding *b, iocomp_port_t port, uintptr_t key, uint32_t gen, uint32_t flags) {
    uint32_t s = ioc_fetch_add(&b->seq, 1, IOC_ACQ_REL); /* odd: readers retry */
    ioc_store(&b->port, port, IOC_RELEASE);
    ioc_store(&b->key, key, IOC_RELEASE);
    ioc_store(&b->gen, gen, IOC_RELEASE);
    ioc_store(&b->flags, flags, IOC_RELEASE);
    ioc_store(&b->seq, s + 2, IOC_RELEASE); /* even: the record is whole */
}

uint32_t ioc_bind_gen(iocomp_engine *e, int fd) {
    struct bind_view v;
    return bind_read(e, fd, &v) ? v.gen : 0;
}

static uint32_t fd_kind(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return FDK_OTHER;
    if (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return FDK_FILE;
    if (S_ISSOCK(st.st_mode)) return FDK_SOCKET;
    return FDK_OTHER;
}

IOCOMP_API int iocomp_bind(iocomp_engine *e, iocomp_port_t port, int fd, uintptr_t key) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (fd < 0 || fcntl(fd, F_GETFD) == -1) return -EBADF;
    if ((unsigned)fd >= IOC_BIND_CHUNK * IOC_BIND_CHUNKS) return -ERANGE;
    struct ioc_port *p;
    int r = ioc_port_lookup(e, port, &p);
    if (r < 0) return r == -ESHUTDOWN ? -EBADF : r;
    if (port == IOCOMP_DEFAULT_PORT) port = ioc_load(&e->default_port, IOC_ACQUIRE);
    uint32_t kind = fd_kind(fd);
    unsigned ci = (unsigned)fd / IOC_BIND_CHUNK;
    pthread_mutex_lock(&e->bind_lock);
    struct ioc_binding *c = ioc_load(&e->bind_chunks[ci], IOC_RELAXED);
    if (!c) {
        c = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : calloc(IOC_BIND_CHUNK, sizeof *c);
        if (!c) {
            pthread_mutex_unlock(&e->bind_lock);
            return -ENOMEM;
        }
        ioc_store(&e->bind_chunks[ci], c, IOC_RELEASE); /* pairs with bind_rec's acquire */
    }
    struct ioc_binding *b = &c[(unsigned)fd % IOC_BIND_CHUNK];
    if (ioc_load(&b->port, IOC_RELAXED) != 0) {
        r = -EEXIST;
    } else {
        /* Re-check under the lock that the port is still open: a close that
         * passed its unbind scan before we got here would miss us. */
        uint64_t ctl = ioc_load(&p->ctl, IOC_ACQUIRE);
        if ((uint32_t)(ctl >> 32) != (uint32_t)(port >> 32) || (uint32_t)ctl != P_OPEN) {
            r = -EBADF;
        } else {
            uint32_t gen = ioc_load(&b->gen, IOC_RELAXED) + 1;
            if (gen == 0) gen = 1;
            bind_write(b, port, key, gen, kind << 8);
            r = 0;
        }
    }
    pthread_mutex_unlock(&e->bind_lock);
    /* The extension size freezes only with a binding that exists (a refused
     * bind leaves it settable). Bindings do not use the size: a set that
     * lands between the bind_write above and this is ordered before the
     * bind (overlapped.c, "The extension size"). */
    if (r == 0) ioc_freeze_ext(e);
    return r;
}

IOCOMP_API int iocomp_unbind(iocomp_engine *e, int fd) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    struct ioc_binding *b = bind_rec(e, fd);
    if (!b) return -ENOENT;
    int r = -ENOENT;
    pthread_mutex_lock(&e->bind_lock);
    if (ioc_load(&b->port, IOC_RELAXED) != 0) {
        bind_write(b, 0, 0, ioc_load(&b->gen, IOC_RELAXED), 0);
        r = 0;
    }
    pthread_mutex_unlock(&e->bind_lock);
    if (r == 0) e->be->cancel_fd(e, fd);
    return r;
}

/* A port's close (after it went CLOSING): bind() re-checks the state under
 * the same lock, so no binding to this port survives the scan. The port's
 * requests are cancelled by the closer (backend cancel_port). */
void ioc_unbind_port(iocomp_engine *e, iocomp_port_t h) {
    pthread_mutex_lock(&e->bind_lock);
    for (unsigned ci = 0; ci < IOC_BIND_CHUNKS; ci++) {
        struct ioc_binding *c = ioc_load(&e->bind_chunks[ci], IOC_RELAXED);
        if (!c) continue;
        for (unsigned i = 0; i < IOC_BIND_CHUNK; i++)
            if (ioc_load(&c[i].port, IOC_RELAXED) == h) bind_write(&c[i], 0, 0, ioc_load(&c[i].gen, IOC_RELAXED), 0);
    }
    pthread_mutex_unlock(&e->bind_lock);
}

void ioc_binds_fini(iocomp_engine *e) {
    for (unsigned ci = 0; ci < IOC_BIND_CHUNKS; ci++) {
        free(ioc_load(&e->bind_chunks[ci], IOC_RELAXED));
        ioc_store(&e->bind_chunks[ci], NULL, IOC_RELAXED);
    }
}

IOCOMP_API int iocomp_set_skip_on_success(iocomp_engine *e, int fd) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    struct ioc_binding *b = bind_rec(e, fd);
    if (!b) return -EBADF;
    int r = -EBADF;
    pthread_mutex_lock(&e->bind_lock);
    uint64_t port = ioc_load(&b->port, IOC_RELAXED);
    if (port != 0) {
        bind_write(b, port, ioc_load(&b->key, IOC_RELAXED), ioc_load(&b->gen, IOC_RELAXED),
                   ioc_load(&b->flags, IOC_RELAXED) | BIND_SKIP);
        r = 0;
    }
    pthread_mutex_unlock(&e->bind_lock);
    return r;
}

/* ---- completions (services for backends) ------------------------------------------ */
static inline struct ioc_pkt mk_pkt(struct ioc_req *r, int32_t res, uint32_t flags) {
    return (struct ioc_pkt){.ov = ioc_ov_of(r),
                            .key = r->key,
                            .port_idx = r->port_idx,
                            .status = res < 0 ? res : 0,
                            .bytes = res < 0 ? 0u : (uint32_t)res,
                            .flags = flags};
}

bool ioc_complete_local(struct ioc_worker *w, struct ioc_req *r, int32_t res) {
    struct ioc_pkt p = mk_pkt(r, res, PKT_IO);
    return ioc_local_push(w, &p);
}

void ioc_complete_direct(struct ioc_req *r, int32_t res, struct ioc_pkt *out) {
    *out = mk_pkt(r, res, PKT_IO);
}

int ioc_complete_inject(iocomp_engine *e, struct ioc_req *r, int32_t res) {
    struct ioc_pkt p = mk_pkt(r, res, PKT_IO);
    int rc = ioc_inject_push(e, &p);
    if (rc == 0) ioc_notify(e);
    return rc;
}

int ioc_complete_deferred(iocomp_engine *e, struct ioc_worker *self, struct ioc_req *r) {
    struct ioc_pkt p = mk_pkt(r, 0, PKT_IO | PKT_EXEC);
    int rc = 0;
    if (!self || !ioc_local_push(self, &p)) rc = ioc_inject_push(e, &p);
    if (rc == 0) ioc_notify(e);
    return rc;
}

/* ---- submitting ---------------------------------------------------------------------- */
static int claim(iocomp_engine *e, iocomp_overlapped *ov, struct ioc_req **out) {
    if (ioc_unlikely(!e || !ov)) return -EINVAL;
    IOC_FORK_GUARD(e);
    struct ioc_req *r = ioc_req_of(ov);
    if (ioc_unlikely(r->magic != OV_MAGIC || r->engine != e)) return -EINVAL;
    if (ioc_unlikely(!ioc_load(&e->cb_enabled, IOC_ACQUIRE))) return -ENOTCONN;
    uint32_t idle = REQ_IDLE;
    /* Acquire pairs with the dispatcher's release store of IDLE (worker.c). */
    if (ioc_unlikely(!ioc_cas(&r->state, &idle, REQ_INFLIGHT, IOC_ACQUIRE, IOC_RELAXED))) return -EBUSY;
    *out = r;
    return 0;
}

static inline int release(struct ioc_req *r, int err) {
    ioc_store(&r->state, REQ_IDLE, IOC_RELEASE);
    return err;
}

static bool inline_eligible(uint8_t op) {
    switch (op) {
    case IOC_OP_READ: case IOC_OP_WRITE: case IOC_OP_READV: case IOC_OP_WRITEV:
    case IOC_OP_RECV: case IOC_OP_SEND: case IOC_OP_RECVMSG: case IOC_OP_SENDMSG:
    case IOC_OP_POLL:
        return true;
    default:
        return false;
    }
}

/* Steps 4-5 of the theory, after the request's fields are filled. */
static int accept_and_submit(iocomp_engine *e, struct ioc_req *r, iocomp_port_t port) {
    struct ioc_worker *w = ioc_self_in(e);
    uint32_t idx;
    int rc = ioc_port_accept(e, w, port, &idx);
    if (ioc_unlikely(rc < 0)) return release(r, rc == -EBADF ? -EBADF : rc);
    r->port_idx = idx;
    /* For the probe, read before the submit: after it the request is the
     * backend's, and a callback on another worker may already reuse it. */
    const int32_t probe_fd = r->fd;
    const unsigned probe_op = r->op;
    rc = e->be->submit(e, w, r);
    if (ioc_unlikely(rc < 0)) {
        ioc_port_unaccept(e, idx);
        return release(r, rc);
    }
    IOC_PROBE4(submit, e, probe_fd, probe_op, (void *)r); /* r is the overlapped */
    if (w) ioc_owner_inc(&w->st.io_submitted, 1);
    else ioc_fetch_add(&e->io_host_submitted, 1, IOC_RELAXED);
    return 0;
}

static int start_fd(iocomp_engine *e, int fd, struct ioc_req *r) {
    struct bind_view v;
    if (ioc_unlikely(!bind_read(e, fd, &v))) return release(r, -EBADF);
    IOC_FAULT_PAUSE(); /* tests: an unbind / close / reuse lands here (io_submit_unbind_race) */
    r->fd = fd;
    r->fd_gen = v.gen;
    r->fd_kind = (uint8_t)(v.flags >> 8);
    r->key = v.key;
    r->cancelled = 0;
    r->linked = 0;
    ioc_store(&r->ring, IOC_RING_NONE, IOC_RELAXED); /* published by the backend's lock */
    if ((v.flags & BIND_SKIP) && inline_eligible(r->op)) {
        int32_t res = ioc_sync_exec(r, true);
        if (res != -EAGAIN) {
            r->result = res < 0 ? res : 0;
            r->rbytes = res < 0 ? 0u : (uint32_t)res;
            struct ioc_worker *w = ioc_self_in(e);
            if (w) ioc_owner_inc(&w->st.io_inline, 1);
            else ioc_fetch_add(&e->io_host_inline, 1, IOC_RELAXED);
            return release(r, IOCOMP_INLINE);
        }
    }
    return accept_and_submit(e, r, v.port);
}

#define CLAIM(e, ov)                                                                              \
    struct ioc_req *r;                                                                            \
    do {                                                                                          \
        int c_ = claim((e), (ov), &r);                                                            \
        if (ioc_unlikely(c_ < 0)) return c_;                                                      \
    } while (0)

static int rw(iocomp_engine *e, uint8_t op, int fd, const void *buf, uint32_t len, int64_t off,
              int mflags, iocomp_overlapped *ov) {
    if (ioc_unlikely(len > INT32_MAX || (!buf && len))) return -EINVAL;
    CLAIM(e, ov);
    r->op = op;
    r->buf = (void *)buf;
    r->len = len;
    r->u.off = off;
    r->mflags = mflags;
    return start_fd(e, fd, r);
}

IOCOMP_API int iocomp_read(iocomp_engine *e, int fd, void *buf, uint32_t len, int64_t off, iocomp_overlapped *ov) {
    return rw(e, IOC_OP_READ, fd, buf, len, off, 0, ov);
}
IOCOMP_API int iocomp_write(iocomp_engine *e, int fd, const void *buf, uint32_t len, int64_t off,
                            iocomp_overlapped *ov) {
    return rw(e, IOC_OP_WRITE, fd, buf, len, off, 0, ov);
}
static int rwv(iocomp_engine *e, uint8_t op, int fd, const struct iovec *iov, uint32_t cnt, int64_t off,
               iocomp_overlapped *ov) {
    if (ioc_unlikely(!iov || cnt == 0 || cnt > IOV_MAX)) return -EINVAL;
    CLAIM(e, ov);
    r->op = op;
    r->buf = (void *)iov;
    r->len = cnt;
    r->u.off = off;
    r->mflags = 0;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_readv(iocomp_engine *e, int fd, const struct iovec *iov, uint32_t iovcnt, int64_t off,
                            iocomp_overlapped *ov) {
    return rwv(e, IOC_OP_READV, fd, iov, iovcnt, off, ov);
}
IOCOMP_API int iocomp_writev(iocomp_engine *e, int fd, const struct iovec *iov, uint32_t iovcnt, int64_t off,
                             iocomp_overlapped *ov) {
    return rwv(e, IOC_OP_WRITEV, fd, iov, iovcnt, off, ov);
}
IOCOMP_API int iocomp_recv(iocomp_engine *e, int fd, void *buf, uint32_t len, int flags, iocomp_overlapped *ov) {
    return rw(e, IOC_OP_RECV, fd, buf, len, 0, flags, ov);
}
IOCOMP_API int iocomp_send(iocomp_engine *e, int fd, const void *buf, uint32_t len, int flags,
                           iocomp_overlapped *ov) {
    return rw(e, IOC_OP_SEND, fd, buf, len, 0, flags | MSG_NOSIGNAL, ov);
}
static int msg(iocomp_engine *e, uint8_t op, int fd, const struct msghdr *m, int flags, iocomp_overlapped *ov) {
    if (ioc_unlikely(!m)) return -EINVAL;
    CLAIM(e, ov);
    r->op = op;
    r->buf = (void *)m;
    r->len = 0;
    r->mflags = flags;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_recvmsg(iocomp_engine *e, int fd, struct msghdr *m, int flags, iocomp_overlapped *ov) {
    return msg(e, IOC_OP_RECVMSG, fd, m, flags, ov);
}
IOCOMP_API int iocomp_sendmsg(iocomp_engine *e, int fd, const struct msghdr *m, int flags, iocomp_overlapped *ov) {
    return msg(e, IOC_OP_SENDMSG, fd, m, flags | MSG_NOSIGNAL, ov);
}
IOCOMP_API int iocomp_accept(iocomp_engine *e, int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
                             iocomp_overlapped *ov) {
    if (ioc_unlikely((flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) || (addr && !addrlen))) return -EINVAL;
    CLAIM(e, ov);
    r->op = IOC_OP_ACCEPT;
    r->buf = addr;
    r->u.alen = addrlen;
    r->len = 0;
    r->mflags = flags;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_connect(iocomp_engine *e, int fd, const struct sockaddr *addr, socklen_t addrlen,
                              iocomp_overlapped *ov) {
    if (ioc_unlikely(!addr || addrlen == 0)) return -EINVAL;
    CLAIM(e, ov);
    r->op = IOC_OP_CONNECT;
    r->buf = (void *)addr;
    r->len = addrlen;
    r->mflags = 0;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_poll(iocomp_engine *e, int fd, uint32_t events, iocomp_overlapped *ov) {
    if (ioc_unlikely(events == 0 || (events & ~(uint32_t)(POLLIN | POLLOUT | POLLPRI | POLLRDHUP)))) return -EINVAL;
    CLAIM(e, ov);
    r->op = IOC_OP_POLL;
    r->buf = NULL;
    r->len = events;
    r->mflags = 0;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_fsync(iocomp_engine *e, int fd, unsigned flags, iocomp_overlapped *ov) {
    if (ioc_unlikely(flags & ~IOCOMP_FSYNC_DATASYNC)) return -EINVAL;
    CLAIM(e, ov);
    r->op = IOC_OP_FSYNC;
    r->buf = NULL;
    r->len = flags;
    r->mflags = 0;
    return start_fd(e, fd, r);
}
IOCOMP_API int iocomp_timer(iocomp_engine *e, iocomp_port_t port, uintptr_t key, uint64_t ns, unsigned flags,
                            iocomp_overlapped *ov) {
    if (ioc_unlikely(flags & ~IOCOMP_TIMER_ABS)) return -EINVAL;
    if (ioc_unlikely(ns > (uint64_t)INT64_MAX)) return -EINVAL;
    CLAIM(e, ov);
    int rc = ioc_port_resolve(e, &port);
    if (rc < 0) return release(r, rc);
    r->op = IOC_OP_TIMER;
    r->fd = -1;
    r->fd_gen = 0;
    r->fd_kind = FDK_OTHER;
    r->key = key;
    r->buf = NULL;
    r->u.ns = ns;
    r->len = flags;
    r->mflags = 0;
    r->cancelled = 0;
    r->linked = 0;
    ioc_store(&r->ring, IOC_RING_NONE, IOC_RELAXED);
    return accept_and_submit(e, r, port);
}

/* ---- cancelling ------------------------------------------------------------------------ */
IOCOMP_API int iocomp_cancel(iocomp_engine *e, iocomp_overlapped *ov) {
    if (!e || !ov) return -EINVAL;
    IOC_FORK_GUARD(e);
    struct ioc_req *r = ioc_req_of(ov);
    if (r->magic != OV_MAGIC || r->engine != e) return -EINVAL;
    if (ioc_load(&r->state, IOC_ACQUIRE) != REQ_INFLIGHT) return -ENOENT;
    int rc = e->be->cancel(e, r);
    if (rc == 0) ioc_fetch_add(&e->io_cancels, 1, IOC_RELAXED);
    return rc;
}

IOCOMP_API int iocomp_cancel_fd(iocomp_engine *e, int fd) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (fd < 0) return -EBADF;
    int n = e->be->cancel_fd(e, fd);
    if (n > 0) ioc_fetch_add(&e->io_cancels, (uint64_t)n, IOC_RELAXED);
    return n;
}

IOCOMP_API int iocomp_close_fd(iocomp_engine *e, int fd) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (fd < 0) return -EBADF;
    if (iocomp_unbind(e, fd) != 0) iocomp_cancel_fd(e, fd); /* unbind cancels when it was bound */
    return close(fd) == 0 ? 0 : -errno;
}

IOCOMP_API int32_t iocomp_overlapped_result(const iocomp_overlapped *ov, uint32_t *bytes) {
    if (!ov) return -EINVAL;
    const struct ioc_req *r = (const struct ioc_req *)(const void *)ov;
    if (bytes) *bytes = r->rbytes;
    return r->result;
}

IOCOMP_API const char *iocomp_backend_name(iocomp_engine *e) { return e && e->be ? e->be->name : "none"; }

IOCOMP_API const char *iocomp_backend_features(iocomp_engine *e) {
    if (!e || !e->be || !e->be->features) return "";
    return e->be->features(e);
}

void ioc_io_stats(iocomp_engine *e, iocomp_stats *out) {
    out->io_submitted += ioc_load(&e->io_host_submitted, IOC_RELAXED);
    out->io_inline += ioc_load(&e->io_host_inline, IOC_RELAXED);
    out->io_cancels += ioc_load(&e->io_cancels, IOC_RELAXED);
    if (e->be && e->be->stats) e->be->stats(e, out);
}

/* ---- choosing the backend ----------------------------------------------------------------- */
#if IOCOMP_HAVE_URING
static int uring_probe(const struct ioc_backend_ops **be) {
    int rc = ioc_uring_probe();
    if (rc == 0) *be = &ioc_backend_uring;
    return rc;
}
#else
/* Built with IOCOMP_WITH_URING=OFF (or AUTO without liburing): epoll only;
 * a forced "uring" is -ENOSYS, as on a kernel without io_uring. */
static int uring_probe(const struct ioc_backend_ops **be) {
    (void)be;
    return -ENOSYS;
}
#endif

int ioc_io_init(iocomp_engine *e, const iocomp_config *cfg) {
    const struct ioc_backend_ops *be = &ioc_backend_epoll;
    const char *want = cfg->backend;
    if (!want || !*want) want = getenv("IOCOMP_BACKEND");
    if (want && *want && strcmp(want, "auto") != 0) {
        if (strcmp(want, "uring") == 0 || strcmp(want, "io_uring") == 0) {
            int rc = uring_probe(&be);
            if (rc < 0) return rc; /* forced: an error, not a silent fallback */
        } else if (strcmp(want, "epoll") != 0) {
            return -EINVAL;
        }
    } else {
        (void)uring_probe(&be); /* epoll stays when io_uring cannot run */
    }
    int rc = be->init(e, cfg);
    if (rc == 0) e->be = be; /* engine_free finis only a backend that started */
    return rc;
}

void ioc_io_fini(iocomp_engine *e) {
    if (e->be) e->be->fini(e);
}
