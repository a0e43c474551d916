/*
 * sync.c - one operation as one system call. Used by the epoll backend on
 * readiness and for regular files (on a worker, blocking, once epoll's
 * ep_exec has claimed the request and checked its binding), and by the core
 * for skip-on-success descriptors (a non-blocking attempt before the
 * request is accepted). No state: the request's fields say everything.
 *
 * Non-blocking attempts: MSG_DONTWAIT for sockets, RWF_NOWAIT for
 * preadv2/pwritev2 (page-cache hits only), a zero-timeout poll. EINTR is
 * retried (the workers block signals, but host threads calling with skip
 * need not). Timers are the backends' (-EOPNOTSUPP here).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "backends/backend.h"

#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

uint32_t ioc_sync_events(const struct ioc_req *r) {
    switch (r->op) {
    case IOC_OP_READ: case IOC_OP_READV: case IOC_OP_RECV: case IOC_OP_RECVMSG: case IOC_OP_ACCEPT:
        return POLLIN;
    case IOC_OP_WRITE: case IOC_OP_WRITEV: case IOC_OP_SEND: case IOC_OP_SENDMSG: case IOC_OP_CONNECT:
        return POLLOUT;
    case IOC_OP_POLL:
        return r->len;
    default:
        return 0;
    }
}

static ssize_t once(struct ioc_req *r, bool nb) {
    int rw = nb ? RWF_NOWAIT : 0;
    int mf = nb ? MSG_DONTWAIT : 0;
    switch (r->op) {
    case IOC_OP_READ: {
        if (r->fd_kind == FDK_SOCKET) return recv(r->fd, r->buf, r->len, mf);
        struct iovec v = {r->buf, r->len};
        return preadv2(r->fd, &v, 1, r->u.off, rw);
    }
    case IOC_OP_WRITE: {
        if (r->fd_kind == FDK_SOCKET) return send(r->fd, r->buf, r->len, mf | MSG_NOSIGNAL);
        struct iovec v = {r->buf, r->len};
        return pwritev2(r->fd, &v, 1, r->u.off, rw);
    }
    case IOC_OP_READV:
        return preadv2(r->fd, r->buf, (int)r->len, r->u.off, rw);
    case IOC_OP_WRITEV:
        return pwritev2(r->fd, r->buf, (int)r->len, r->u.off, rw);
    case IOC_OP_RECV:
        return recv(r->fd, r->buf, r->len, r->mflags | mf);
    case IOC_OP_SEND:
        return send(r->fd, r->buf, r->len, r->mflags | mf);
    case IOC_OP_RECVMSG:
        return recvmsg(r->fd, r->buf, r->mflags | mf);
    case IOC_OP_SENDMSG:
        return sendmsg(r->fd, r->buf, r->mflags | mf);
    case IOC_OP_ACCEPT:
        return accept4(r->fd, r->buf, r->u.alen, r->mflags);
    case IOC_OP_CONNECT: {
        /* Only called once the socket reported writable (or for the first
         * attempt): the outcome is SO_ERROR. */
        int err = 0;
        socklen_t l = sizeof err;
        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &l) != 0) return -1;
        if (err) {
            errno = err;
            return -1;
        }
        return 0;
    }
    case IOC_OP_POLL: {
        struct pollfd p = {.fd = r->fd, .events = (short)r->len};
        int n = poll(&p, 1, nb ? 0 : -1);
        if (n == 0) {
            errno = EAGAIN;
            return -1;
        }
        if (n < 0) return -1;
        return (ssize_t)(uint16_t)p.revents;
    }
    case IOC_OP_FSYNC:
        return (r->len & IOCOMP_FSYNC_DATASYNC) ? fdatasync(r->fd) : fsync(r->fd);
    default:
        errno = EOPNOTSUPP;
        return -1;
    }
}

int32_t ioc_sync_exec(struct ioc_req *r, bool nonblock) {
    for (;;) {
        ssize_t n = once(r, nonblock);
        if (n >= 0) return n > INT32_MAX ? INT32_MAX : (int32_t)n;
        int err = errno;
        if (err == EINTR) continue;
        if (err == EWOULDBLOCK) err = EAGAIN;
        if (nonblock && err == EOPNOTSUPP && r->op != IOC_OP_ACCEPT) err = EAGAIN; /* no RWF_NOWAIT here: go async */
        return -err;
    }
}
