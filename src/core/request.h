/*
 * request.h - the private view of an overlapped header (128 bytes): the
 * allocation bookkeeping of overlapped.c and the state of the I/O request
 * that uses it.
 *
 * Ownership of the fields:
 *   magic..size   overlapped.c, fixed while the overlapped lives.
 *   state         the in-flight flag: IDLE -> INFLIGHT by CAS in the submit
 *                 path (core/io.c: a second submit of an overlapped in flight
 *                 gets -EBUSY), INFLIGHT -> IDLE with a release store by the
 *                 worker that dispatches its completion, before the callback
 *                 (worker.c), so the callback may resubmit it.
 *   op..timeout   written by the submitter before the backend sees the
 *                 request, read-only after (the backend reads them, the
 *                 completion path reads port_idx and key).
 *   ring, link    the backend's, while the request is in flight (io_uring:
 *                 the ring it went to and its place in that ring's in-flight
 *                 list, both under the ring's lock; epoll: the descriptor's
 *                 waiter list, under the descriptor's lock). `ring` is read
 *                 by cancellers at any time, so it never holds a stale slot
 *                 number: IOC_RING_NONE from allocation / init on, reset by
 *                 every submit, and a backend leaves it at a value that is
 *                 no ring when the request completes (uring: RING_DONE).
 *   result        the inline result (IOCOMP_INLINE), or the status a deferred
 *                 request produced.
 */
#ifndef IOCOMP_CORE_REQUEST_H
#define IOCOMP_CORE_REQUEST_H

#include <iocomp.h>
#include <stdint.h>

#include "core/atomic.h"

enum ioc_op {
    IOC_OP_NONE = 0,
    IOC_OP_READ,
    IOC_OP_WRITE,
    IOC_OP_READV,
    IOC_OP_WRITEV,
    IOC_OP_RECV,
    IOC_OP_SEND,
    IOC_OP_RECVMSG,
    IOC_OP_SENDMSG,
    IOC_OP_ACCEPT,
    IOC_OP_CONNECT,
    IOC_OP_POLL,
    IOC_OP_FSYNC,
    IOC_OP_TIMER,
    IOC_OP_COUNT
};

enum { REQ_IDLE = 0, REQ_INFLIGHT = 1 };
#define IOC_RING_NONE 0xffffu /* r->ring: not issued on a ring (yet) */

/* Descriptor kinds, from fstat at bind time (the binding keeps it). */
enum { FDK_OTHER = 0, FDK_FILE = 1, FDK_SOCKET = 2 };

struct ioc_req {
    /* overlapped.c */
    uint32_t magic;
    uint32_t flags;
    iocomp_engine *engine;
    size_t size;
    /* the request */
    ioc_atomic(uint32_t) state; /* REQ_IDLE / REQ_INFLIGHT */
    uint8_t op;                 /* enum ioc_op */
    uint8_t fd_kind;            /* FDK_* of the binding */
    uint8_t cancelled;          /* backend: a cancel was asked (its lock) */
    uint8_t linked;             /* backend: in its in-flight list (its lock) */
    int32_t fd;
    uint32_t fd_gen; /* the binding's generation when submitted */
    uint32_t port_idx;
    ioc_atomic(uint16_t) ring; /* backend: io_uring ring (worker slot) it went to */
    uint16_t pad_;
    uintptr_t key;
    void *buf;       /* buffer, iovec array, msghdr, sockaddr */
    union {
        int64_t off;      /* read/write: offset (-1: file position) */
        socklen_t *alen;  /* accept */
        uint64_t ns;      /* timer */
    } u;
    uint32_t len;  /* bytes, iovcnt, connect's addrlen, poll events, fsync/timer flags */
    int32_t mflags; /* recv/send/accept flags */
    struct ioc_req *next, *prev; /* backend: in-flight list link */
    int32_t result;
    uint32_t rbytes;
    int64_t ts[2]; /* io_uring timer: a __kernel_timespec that lives with the request */
    int32_t hfd;   /* io_uring: a host thread's duplicate of fd, held from the submit
                    * until the SQE is issued (-1: none); see uring.c "Descriptors" */
};
_Static_assert(sizeof(struct ioc_req) <= IOCOMP_OVERLAPPED_HEADER_SIZE, "request fits the header");

static inline struct ioc_req *ioc_req_of(iocomp_overlapped *ov) { return (struct ioc_req *)(void *)ov; }
static inline iocomp_overlapped *ioc_ov_of(struct ioc_req *r) { return (iocomp_overlapped *)(void *)r; }

#endif
