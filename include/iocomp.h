/*
 * iocomp.h - I/O completion ports for Linux hosts.
 *
 * An *engine* owns a pool of worker threads and any number of *ports*. A
 * completion packet (status, bytes, overlapped pointer, completion key) that
 * is posted to a port, or produced by I/O on a descriptor bound to it, is
 * delivered exactly once to the engine's completion callback, on one of the
 * engine's worker threads. Workers keep their own queues, steal from each
 * other when idle and park when there is nothing to do.
 *
 * Conventions (they hold for every function below unless its block says
 * otherwise):
 *   - Functions return 0 (or a count) on success and a negative errno value
 *     on failure. errno is never read or set. iocomp_strerror() names them.
 *   - A call that fails changes nothing: no port, binding, thread, callback or
 *     memory is left behind, and the engine stays usable.
 *   - "Any thread" includes the engine's own workers, inside a callback.
 *   - The engine never dereferences an overlapped pointer that it did not
 *     allocate or initialise itself; a posted overlapped is an opaque value.
 *   - An accepted request (a call that returned >= 0) gets exactly one
 *     completion; a refused request (a call that returned < 0) gets none.
 *   - fork(): an engine belongs to the process that created it. In a child
 *     of fork(), every function below that takes an inherited engine
 *     returns -ECHILD at once and changes nothing (iocomp_engine_destroy()
 *     too: the child has none of the engine's threads and frees nothing of
 *     it); iocomp_overlapped_size() returns 0, iocomp_backend_name() and
 *     iocomp_backend_features() still return their strings. Requests the
 *     parent had in flight complete in the parent only. The child may
 *     iocomp_overlapped_free() overlapped it inherited, and may create
 *     engines of its own, which work normally. The inherited engine's
 *     memory and descriptors stay in the child until it exits or execs;
 *     every descriptor iocomp opens is close-on-exec, so none survives an
 *     exec. The parent's engine is unaffected by any number of forks.
 *
 * The hosting layer in <iocomp/hosting.h> mirrors the .NET
 * IHostIoCompletionManager interface on top of this API.
 */
#ifndef IOCOMP_H
#define IOCOMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(IOCOMP_STATIC_DEFINE)
#define IOCOMP_API
#elif defined(IOCOMP_BUILDING)
#define IOCOMP_API __attribute__((visibility("default")))
#else
#define IOCOMP_API
#endif

#define IOCOMP_VERSION_MAJOR 0
#define IOCOMP_VERSION_MINOR 2
#define IOCOMP_VERSION_PATCH 0

/* Hard cap on worker threads per engine; set_max above it is -ERANGE. */
#define IOCOMP_THREADS_LIMIT 1024u
/* Default max_threads (what the .NET pool uses for completion threads). */
#define IOCOMP_THREADS_DEFAULT_MAX 1000u
/* Largest host extension an overlapped may carry. */
#define IOCOMP_HOST_OVERLAPPED_LIMIT (1u << 20)
/* Size of the overlapped header; the host extension follows it directly. */
#define IOCOMP_OVERLAPPED_HEADER_SIZE 128u
/* Largest local_queue_capacity / inject_queue_capacity, in packets: 2^20,
 * a 32 MiB ring (32-byte packets) for the inject queue and for each worker.
 * Above it iocomp_engine_create() is -ERANGE (a full ring is backpressure,
 * never a loss: nothing needs a bigger one). */
#define IOCOMP_QUEUE_CAPACITY_LIMIT (1u << 20)
/* Largest ring_entries (io_uring submission queue entries per worker ring):
 * 2^15, the kernel's IORING_MAX_ENTRIES. Above it iocomp_engine_create() is
 * -ERANGE, whatever the backend. */
#define IOCOMP_RING_ENTRIES_LIMIT 32768u

/* An engine: workers, ports, bindings, the overlapped heap. Opaque. */
typedef struct iocomp_engine iocomp_engine;

/*
 * A port handle. Generation-checked: a handle that was closed (stale) is
 * refused with -EBADF rather than reaching whatever port reuses its slot.
 * IOCOMP_DEFAULT_PORT (0) names the engine's default port, which is created
 * on first use and lives until the engine is destroyed.
 */
typedef uint64_t iocomp_port_t;
#define IOCOMP_DEFAULT_PORT ((iocomp_port_t)0)

/*
 * The overlapped header. Its bytes belong to iocomp while a request that uses
 * it is in flight (I/O operations); posts never touch it. The host extension
 * of iocomp_engine's host_overlapped_size bytes follows the header directly
 * (iocomp_overlapped_ext()). Hosts may embed a header in their own memory
 * (at least iocomp_overlapped_size() bytes, 16-byte aligned) and prepare it
 * with iocomp_overlapped_init().
 */
#ifdef __cplusplus
#define IOCOMP_ALIGNAS_(n) alignas(n)
#else
#define IOCOMP_ALIGNAS_(n) _Alignas(n)
#endif
typedef struct iocomp_overlapped {
    IOCOMP_ALIGNAS_(16) unsigned char iocomp_private[IOCOMP_OVERLAPPED_HEADER_SIZE];
} iocomp_overlapped;

/*
 * The completion callback (ICLRIoCompletionManager::OnComplete).
 *   ctx     the context given with the callback.
 *   status  0 or a negative errno value (-ECANCELED for a cancelled request,
 *           whatever the poster passed for a post).
 *   bytes   bytes transferred (posts: as posted).
 *   ov      the overlapped of the request, as submitted or posted.
 *   key     the completion key: the binding's for I/O, the poster's for posts.
 * Runs on an engine worker thread. It may call any iocomp function except
 * iocomp_engine_destroy() of its own engine (-EDEADLK); it may free ov. The
 * engine does not touch ov or the packet after the callback returns.
 */
typedef void (*iocomp_complete_cb)(void *ctx, int32_t status, uint32_t bytes,
                                   iocomp_overlapped *ov, uintptr_t key);

/*
 * Host initialisation of an overlapped's extension
 * (IHostIoCompletionManager::InitializeHostOverlapped). Called on every
 * overlapped that iocomp allocates or initialises, on the calling thread,
 * with ext pointing at ext_size bytes (zeroed). Return 0, or a negative errno
 * value to fail the allocation (which then frees what it took).
 */
typedef int (*iocomp_overlapped_init_cb)(void *ctx, iocomp_overlapped *ov,
                                         void *ext, size_t ext_size);

/* Engine configuration. Fill with iocomp_config_init(), then override. */
typedef struct iocomp_config {
    /* Worker threads alive at all times (at least 1). 0: the number of usable
     * CPUs (affinity mask and cgroup cpu.max quota), capped at max_threads
     * when that is given. */
    uint32_t min_threads;
    /* Upper bound on worker threads. 0: max(min, IOCOMP_THREADS_DEFAULT_MAX). */
    uint32_t max_threads;
    /* Bytes of host extension after every overlapped header. Can be changed
     * with iocomp_set_host_overlapped_size() until the first port, binding or
     * overlapped exists. */
    size_t host_overlapped_size;
    iocomp_overlapped_init_cb overlapped_init; /* may be NULL */
    void *overlapped_init_ctx;
    iocomp_complete_cb on_complete; /* may be NULL: set it before submitting */
    void *on_complete_ctx;
    /* Per-worker stealable queue, in packets (rounded up to a power of two,
     * at least 16; a ring of N slots holds N - 1). 0: 1024. At most
     * IOCOMP_QUEUE_CAPACITY_LIMIT (2^20; each worker allocates its ring),
     * above it -ERANGE. */
    uint32_t local_queue_capacity;
    /* The engine's inject queue for packets from non-worker threads. When it
     * is full, packets go to an unbounded overflow list (never dropped).
     * Rounded up like local_queue_capacity. 0: 16384. At most
     * IOCOMP_QUEUE_CAPACITY_LIMIT, above it -ERANGE. */
    uint32_t inject_queue_capacity;
    /* How long an idle worker polls for work before it parks, in ns.
     * 0: default (20000 ns); UINT32_MAX: never spin. */
    uint32_t spin_ns;
    /* Deadline for iocomp_port_close() and iocomp_engine_destroy() to see
     * every completion delivered, in ms. 0: 30000. */
    uint32_t close_timeout_ms;
    /* Runnable workers the pool aims for while work waits: it grows toward
     * this (up to max) when work queues up, and beyond it only while
     * callbacks block. 0: the number of usable CPUs. */
    uint32_t concurrency;
    /* A worker above min_threads that stays parked this long exits, in ms.
     * 0: 5000. */
    uint32_t keep_alive_ms;
    /* The I/O backend: "uring", "epoll", or NULL for the default (the
     * IOCOMP_BACKEND environment variable if set, else io_uring when the
     * probe at creation passes, else epoll). A backend that is named here or
     * in IOCOMP_BACKEND and cannot start fails iocomp_engine_create()
     * (with the kernel's error; -ENOSYS for "uring" in a library built
     * without io_uring, CMake IOCOMP_WITH_URING=OFF). */
    const char *backend;
    /* io_uring: submission queue entries per worker ring (rounded up to a
     * power of two, at least 4; the completion queue is twice that). 0: 256.
     * Small values exercise SQ-full and CQ-overflow handling. At most
     * IOCOMP_RING_ENTRIES_LIMIT (2^15), above it -ERANGE on every backend
     * (epoll has no ring and uses no other value of it). */
    uint32_t ring_entries;
} iocomp_config;

/* Completion statistics, summed over workers without locks (each figure is
 * exact for each worker, the sum is not a snapshot across workers). */
typedef struct iocomp_stats {
    uint64_t completions;     /* callbacks run */
    uint64_t posts_local;     /* posts from a worker to its own queue */
    uint64_t posts_remote;    /* posts from other threads (inject path) */
    uint64_t steals;          /* steal operations that took >= 1 packet */
    uint64_t stolen;          /* packets taken by those steals */
    uint64_t inject_batches;  /* batches taken from the inject queue */
    uint64_t overflows;       /* packets that went to the overflow list */
    uint64_t parks;           /* times a worker went to sleep */
    uint64_t wakeups;         /* wake-ups sent to parked workers */
    uint64_t threads_started; /* worker threads started, ever */
    uint64_t threads_retired; /* worker threads that exited, ever */
    uint64_t thread_start_failures;
    uint32_t threads_live;    /* worker threads alive now */
    uint32_t threads_busy;    /* of which inside a callback */
    uint32_t threads_parked;  /* of which parked */
    uint32_t ports_open;
    uint64_t injections;         /* threads started by the monitor (work waited) */
    uint64_t blocked_injections; /* of which because callbacks blocked */
    uint64_t excess_parks;       /* workers parked because runnable > concurrency */
    /* From the monitor's detection (itself up to two sampling periods after
     * the work started waiting) to the injected thread's first callback. */
    uint64_t inject_to_run_ns_max;   /* max */
    uint64_t inject_to_run_ns_total; /* ... and sum, over injected threads that ran one */
    uint64_t inject_to_run_count;
    /* The callback that has been running longest right now, as the monitor
     * sees it (to within its sampling period, about 0.5 ms): its age in us
     * and the worker's kernel thread id; 0 and 0 if none runs. */
    uint64_t longest_callback_us;
    int32_t longest_callback_tid;
    /* I/O (backends). */
    uint64_t io_submitted;     /* requests accepted by iocomp_read() & co. */
    uint64_t io_inline;        /* of which completed inline (skip-on-success) */
    uint64_t io_cancels;       /* cancellations asked of the backend */
    uint64_t io_sq_full;       /* io_uring: SQ found full, submitted to make room */
    uint64_t io_cq_overflow;   /* io_uring: CQ overflowed into the kernel (NODROP) */
    uint64_t io_cq_dropped;    /* io_uring: CQEs the kernel dropped (-EBADR): must be 0 */
    uint64_t io_rescued;       /* completions reaped from a stuck worker's ring by another thread */
    uint64_t io_eintr;         /* system calls retried after EINTR */
} iocomp_stats;

/* Fills *cfg with the defaults above (every field 0 or NULL). Any thread. */
IOCOMP_API void iocomp_config_init(iocomp_config *cfg);

/*
 * Creates an engine and starts its min_threads workers.
 * Thread: any. Callbacks: none until something is posted or submitted.
 * Memory: cfg is copied; the engine is the caller's until
 * iocomp_engine_destroy() succeeds.
 * Errors: -EINVAL cfg or out NULL, min > max, max == 0 after defaults;
 *         -ERANGE max or min above IOCOMP_THREADS_LIMIT, host size above
 *                 IOCOMP_HOST_OVERLAPPED_LIMIT, local_queue_capacity or
 *                 inject_queue_capacity above IOCOMP_QUEUE_CAPACITY_LIMIT,
 *                 ring_entries above IOCOMP_RING_ENTRIES_LIMIT (whatever
 *                 the backend; checked before any backend is probed)
 *                 (nothing is created);
 *         -ENOMEM out of memory (nothing is left behind);
 *         -EMFILE, -ENFILE no descriptor left for the engine's own (its
 *                 epoll instance or eventfds, a worker's io_uring ring;
 *                 nothing is left behind);
 *         -EAGAIN a worker thread could not be started, or its io_uring
 *                 ring not created (nothing is left).
 */
IOCOMP_API int iocomp_engine_create(const iocomp_config *cfg, iocomp_engine **out);

/*
 * Closes every port (as iocomp_port_close(), so every accepted request gets
 * its completion first), stops and joins every worker and frees the engine.
 * Overlapped allocated from the engine and not yet freed stay valid and
 * may be freed with iocomp_overlapped_free() later: the engine's jemalloc
 * arena is never destroyed, it goes back to a process-wide pool for the
 * next engine.
 * Thread: any thread that is not one of this engine's workers, and no other
 * host call on this engine may run concurrently or after it returns 0.
 * Callbacks still running may go on calling the engine while it closes: a
 * port one of them closes at the same time is waited for like any other,
 * and a port one of them creates is either refused (-ESHUTDOWN) or closed
 * by destroy, its requests completed, before destroy returns.
 * Errors: -EINVAL e NULL;
 *         -EDEADLK called from this engine's callback (nothing changes);
 *         -ETIMEDOUT completions were still running at the deadline (a
 *                 callback blocks). The engine is then closed (every port
 *                 refuses new requests) but alive; what is queued is still
 *                 delivered. Call iocomp_engine_destroy() again to finish.
 */
IOCOMP_API int iocomp_engine_destroy(iocomp_engine *e);

/*
 * Creates a port (IHostIoCompletionManager::CreateIoCompletionPort).
 * Thread: any. Memory: the port lives until iocomp_port_close() succeeds.
 * Creating the first port fixes the host overlapped size.
 * Errors: -EINVAL e or out NULL; -ENOMEM out of memory or the engine's
 *         65535 port slots (the default port's included) are in use;
 *         -ESHUTDOWN the engine is being destroyed.
 */
IOCOMP_API int iocomp_port_create(iocomp_engine *e, iocomp_port_t *out);

/*
 * Closes a port (CloseIoCompletionPort): refuses new requests at once
 * (-ESHUTDOWN), cancels what is in flight, removes the port's bindings,
 * waits until every accepted request of the port has had its completion
 * callback run to its end (cancelled I/O with -ECANCELED; posted packets as
 * posted), then frees the port. After it returns 0, no callback for this port
 * runs or will run, the one that called it excepted.
 * Thread: any. From a callback of this engine, the calling worker runs the
 * port's remaining completions itself (nested, on its own stack) while it
 * waits, so closing works with a single worker. Completions of other ports
 * that it meets are run too (nested) if their port is closing as well
 * (someone waits for them: a close nested in one of those callbacks, or
 * one on another worker), and set aside, then put back, if it is open.
 * Errors: -EINVAL e NULL, or the default port (it closes with the engine);
 *         -EBADF unknown, stale or already closed port;
 *         -ETIMEDOUT the deadline (close_timeout_ms) passed with callbacks of
 *                 this port still running: the port is closed all the same
 *                 (posts get -ESHUTDOWN, then -EBADF once its slot is
 *                 reclaimed; closing it again gets -EBADF), its remaining
 *                 completions are still delivered, and the slot is reclaimed
 *                 after the last of them.
 */
IOCOMP_API int iocomp_port_close(iocomp_engine *e, iocomp_port_t port);

/*
 * Binds descriptor fd to a port with a completion key, until
 * iocomp_unbind() or the port's close (IHostIoCompletionManager::Bind).
 * port IOCOMP_DEFAULT_PORT means the default port. The descriptor stays the
 * caller's: iocomp never closes it.
 * Thread: any.
 * Errors: -EINVAL e NULL; -EBADF fd is not an open descriptor, or port is
 *         unknown, stale or closing; -EEXIST fd is already bound (to this or
 *         another port); -ENOMEM out of memory; -ERANGE fd >= 2^20.
 * A port's close unbinds its descriptors and cancels their requests.
 */
IOCOMP_API int iocomp_bind(iocomp_engine *e, iocomp_port_t port, int fd, uintptr_t key);

/*
 * Removes fd's binding and cancels the requests pending on it: each still
 * completes exactly once (-ECANCELED, or its own result if it finished
 * first). Returns only once no system call of a request on fd is still
 * running on a worker (as iocomp_cancel_fd()); not the non-blocking attempt
 * a skip-on-success descriptor's submit makes on its own calling thread
 * (see iocomp_close_fd()). Descriptors above 2^20
 * cannot be bound (-EBADF).
 * Thread: any. Errors: -EINVAL e NULL; -ENOENT fd is not bound.
 */
IOCOMP_API int iocomp_unbind(iocomp_engine *e, int fd);

/*
 * Installs the completion callback (SetCLRIoCompletionManager). Requests
 * accepted after this returns are delivered to the new callback; ones
 * already queued may go to either. cb NULL uninstalls it (further requests
 * are refused with -ENOTCONN).
 * Thread: any. Memory: ctx must stay valid while callbacks may run.
 * Errors: -EINVAL e NULL; -ENOMEM out of memory.
 */
IOCOMP_API int iocomp_set_completion_manager(iocomp_engine *e, iocomp_complete_cb cb,
                                             void *ctx);

/*
 * Posts a completion packet to a port (PostQueuedCompletionStatus): the
 * callback later runs once with exactly these values. The overlapped is
 * carried by value and never dereferenced (it may be NULL, or the same
 * pointer in many packets). From a worker of this engine the packet goes to
 * that worker's own queue (most recent first); from any other thread to the
 * engine's inject queue.
 * Thread: any. Errors: -EINVAL e NULL; -EBADF unknown or stale port;
 *         -ESHUTDOWN the port is closing; -ENOTCONN no completion callback
 *         installed; -ENOMEM the overflow list could not grow.
 */
IOCOMP_API int iocomp_post(iocomp_engine *e, iocomp_port_t port, int32_t status, uint32_t bytes,
                           iocomp_overlapped *ov, uintptr_t key);

/*
 * Thread limits (Get/SetMinThreads, Get/SetMaxThreads, GetAvailableThreads).
 * Engine-wide. The pool never has fewer than min threads alive (raising min
 * starts threads before returning). Lowering min lets the workers above it
 * retire after keep_alive_ms idle, as if they had been started above min.
 * Lowering max retires the excess as each becomes idle; on io_uring a
 * worker whose own ring still holds requests (each worker submits to its
 * own ring, and only it waits for them) stays, asleep, until they complete,
 * so live may stay above max while I/O it submitted waits (an idle
 * connection's recv). If a thread cannot be started when the pool should
 * grow (RLIMIT_NPROC, memory, or RLIMIT_NOFILE for its io_uring ring), the monitor tries again 1 ms later, then
 * 2, 4... up to 1 s apart (stats: thread_start_failures).
 * Thread: any, concurrently with each other and with scaling.
 * Errors: -EINVAL e or out NULL, set_min of 0 or above the current max,
 *         set_max below the current min or 0 (-ERANGE is checked first:
 *         above IOCOMP_THREADS_LIMIT);
 *         -EAGAIN (set_min) a thread (or its io_uring ring: no descriptor
 *                 or memory for it) could not be started: min keeps its old
 *         value; threads started before the failure stay (within max);
 *         -ESHUTDOWN (set_min) the engine is being destroyed.
 * A refused set leaves min and max as they were.
 */
IOCOMP_API int iocomp_get_min_threads(iocomp_engine *e, uint32_t *out);
IOCOMP_API int iocomp_set_min_threads(iocomp_engine *e, uint32_t n);
IOCOMP_API int iocomp_get_max_threads(iocomp_engine *e, uint32_t *out);
IOCOMP_API int iocomp_set_max_threads(iocomp_engine *e, uint32_t n);
/* max - busy, where busy counts workers inside a callback; never negative. */
IOCOMP_API int iocomp_get_available_threads(iocomp_engine *e, uint32_t *out);

/*
 * Host extension size (GetHostOverlappedSize). Settable until the first port,
 * binding or overlapped exists (a call that succeeded: one that failed, such
 * as an alloc whose init callback failed, fixes nothing); fixed after, the
 * same for every request.
 * Thread: any (an init callback too). Errors: -EINVAL e or out NULL; -ERANGE
 *         size above IOCOMP_HOST_OVERLAPPED_LIMIT; -EBUSY too late to change,
 *         or an iocomp_overlapped_alloc()/_init() that reads the size is in
 *         progress on another thread (or is the caller): the size stays.
 */
IOCOMP_API int iocomp_get_host_overlapped_size(iocomp_engine *e, size_t *out);
IOCOMP_API int iocomp_set_host_overlapped_size(iocomp_engine *e, size_t size);
/* Header plus extension: the bytes an embedded overlapped needs. 0 if e NULL. */
IOCOMP_API size_t iocomp_overlapped_size(iocomp_engine *e);

/*
 * Allocates an overlapped with its extension from the engine's jemalloc
 * arena (per-worker caches on workers), zeroes the extension and runs the
 * init callback on it. The header's bytes are iocomp's.
 * The first one that succeeds fixes the host overlapped size.
 * Thread: any. Memory: the caller's until iocomp_overlapped_free(); it may
 * outlive the engine. Errors: -EINVAL e or out NULL; -ENOMEM; whatever the
 * init callback returned (nothing is leaked, nothing fixed).
 */
IOCOMP_API int iocomp_overlapped_alloc(iocomp_engine *e, iocomp_overlapped **out);
/*
 * Frees an overlapped from iocomp_overlapped_alloc(). NULL is ignored.
 * Thread: any, also after the engine is destroyed; not while a request
 * that uses it is in flight.
 */
IOCOMP_API void iocomp_overlapped_free(iocomp_overlapped *ov);
/*
 * Prepares caller-owned memory (iocomp_overlapped_size() bytes, 16-byte
 * aligned) as an overlapped of e: zeroes it and runs the init callback
 * (InitializeHostOverlapped). The memory stays the caller's. Like alloc, it
 * fixes the host overlapped size when it succeeds.
 * Thread: any. Errors: -EINVAL e or ov NULL, or ov misaligned; whatever the
 * init callback returned.
 */
IOCOMP_API int iocomp_overlapped_init(iocomp_engine *e, iocomp_overlapped *ov);
/* The extension of ov (the bytes right after the header): ov + 128, no
 * check, any thread. An exported function (for hosts that cannot inline C:
 * P/Invoke, dlsym), and in C/C++ a macro over the same computation inline;
 * (iocomp_overlapped_ext)(ov) or its address reaches the function. */
IOCOMP_API void *iocomp_overlapped_ext(iocomp_overlapped *ov);
static inline void *iocomp_overlapped_ext_inline_(iocomp_overlapped *ov) {
    return (void *)((unsigned char *)ov + IOCOMP_OVERLAPPED_HEADER_SIZE);
}
#define iocomp_overlapped_ext(ov) iocomp_overlapped_ext_inline_(ov)

/* ==== Asynchronous I/O ====================================================
 *
 * Every operation below works on a descriptor bound to a port
 * (iocomp_bind()); its completion goes to that port with the binding's key.
 * The overlapped must belong to the engine (iocomp_overlapped_alloc() or
 * iocomp_overlapped_init()); iocomp keeps the request's state in its header.
 *
 * Return values, the same for every operation:
 *   0               accepted: exactly one completion follows, on a worker
 *                   thread, through the completion manager, with
 *                   status 0 and bytes = the result (bytes transferred, the
 *                   new descriptor for accept, revents for poll), or
 *                   status -errno from the kernel (bytes 0), -ECANCELED when
 *                   cancelled (by iocomp_cancel(), iocomp_cancel_fd(),
 *                   iocomp_unbind() or the port's close).
 *   IOCOMP_INLINE   (1) only on a descriptor with iocomp_set_skip_on_success():
 *                   the operation finished at once and no completion follows;
 *                   its result is in iocomp_overlapped_result().
 *   negative        refused; nothing was started and no completion follows:
 *     -EINVAL   e, ov or a required pointer NULL, ov not an overlapped of e,
 *               len above INT32_MAX, iovcnt 0 or above IOV_MAX, bad flags;
 *     -EBADF    fd not bound to a port of e (never bound, unbound, or its
 *               port closed), or (io_uring, host threads) no longer open;
 *     -EBUSY    ov is in flight (submitted and its callback has not started);
 *     -ESHUTDOWN the port is closing;
 *     -ENOTCONN no completion manager is installed;
 *     -ENOMEM   out of memory;
 *     -EMFILE, -ENFILE  (io_uring, host threads) no descriptor left for the
 *               duplicate the request holds until it is issued.
 *
 * Thread: any (host threads and callbacks alike). A callback that submits
 * goes through its worker's own ring (io_uring) without a lock on the fast
 * path. Memory: the buffers, iovec arrays, msghdr and sockaddr passed stay
 * the caller's but must stay valid and untouched until the completion's
 * callback starts (or the call returned IOCOMP_INLINE or an error); ov is
 * iocomp's over the same span.
 *
 * Descriptors: the backend may set O_NONBLOCK on a socket or pipe (epoll
 * needs it). Closing a descriptor with close() while a request on it is
 * pending does not end the request (io_uring holds its own reference to the
 * file; epoll simply never reports it again): it completes when cancelled,
 * unbound or when its port closes. iocomp_close_fd() does all of that, and
 * is the safe way to close a descriptor that may have requests in flight:
 * a request it cancels never touches the descriptor again, so the number
 * may be reused at once. A request submitted by a host thread is tied to
 * the file its descriptor names when the call returns (io_uring holds a
 * duplicate until the kernel takes its own reference: the call may then
 * also fail with -EMFILE/-ENFILE). A request submitted from a callback is
 * handed to the kernel when its worker next polls (at the latest 61
 * callbacks later): another thread's raw close(2) and reuse of the number
 * inside that window may send it to the new file; close such descriptors
 * with iocomp_close_fd() (or unbind them first). Likewise on epoll, a raw
 * close(2) under a pending request while the old file lives on elsewhere
 * (a dup, a fork) lets that file's readiness run the request's system call
 * on whatever file the number names then.
 */
#define IOCOMP_INLINE 1

/* pread / pwrite at `off` (regular files, block devices; -1: the file
 * position, for pipes and sockets). Short transfers are reported as such. */
IOCOMP_API int iocomp_read(iocomp_engine *e, int fd, void *buf, uint32_t len, int64_t off,
                           iocomp_overlapped *ov);
IOCOMP_API int iocomp_write(iocomp_engine *e, int fd, const void *buf, uint32_t len, int64_t off,
                            iocomp_overlapped *ov);
IOCOMP_API int iocomp_readv(iocomp_engine *e, int fd, const struct iovec *iov, uint32_t iovcnt,
                            int64_t off, iocomp_overlapped *ov);
IOCOMP_API int iocomp_writev(iocomp_engine *e, int fd, const struct iovec *iov, uint32_t iovcnt,
                             int64_t off, iocomp_overlapped *ov);
/* Sockets. flags: MSG_* as for recv(2)/send(2); MSG_NOSIGNAL is always added
 * to sends. */
IOCOMP_API int iocomp_recv(iocomp_engine *e, int fd, void *buf, uint32_t len, int flags,
                           iocomp_overlapped *ov);
IOCOMP_API int iocomp_send(iocomp_engine *e, int fd, const void *buf, uint32_t len, int flags,
                           iocomp_overlapped *ov);
IOCOMP_API int iocomp_recvmsg(iocomp_engine *e, int fd, struct msghdr *msg, int flags,
                              iocomp_overlapped *ov);
IOCOMP_API int iocomp_sendmsg(iocomp_engine *e, int fd, const struct msghdr *msg, int flags,
                              iocomp_overlapped *ov);
/* accept4(2) on a listening socket: the completion's bytes is the new
 * descriptor (not bound; the callback owns it). addr/addrlen may be NULL.
 * flags: SOCK_NONBLOCK | SOCK_CLOEXEC. */
IOCOMP_API int iocomp_accept(iocomp_engine *e, int fd, struct sockaddr *addr, socklen_t *addrlen,
                             int flags, iocomp_overlapped *ov);
/* connect(2): status 0 once connected, or -ECONNREFUSED & co. */
IOCOMP_API int iocomp_connect(iocomp_engine *e, int fd, const struct sockaddr *addr, socklen_t addrlen,
                              iocomp_overlapped *ov);
/* Readiness: completes once any of `events` (POLLIN, POLLOUT, ...) holds;
 * bytes = the revents mask. */
IOCOMP_API int iocomp_poll(iocomp_engine *e, int fd, uint32_t events, iocomp_overlapped *ov);
/* fsync(2), or fdatasync(2) with IOCOMP_FSYNC_DATASYNC. */
#define IOCOMP_FSYNC_DATASYNC 1u
IOCOMP_API int iocomp_fsync(iocomp_engine *e, int fd, unsigned flags, iocomp_overlapped *ov);
/* A timer on a port (no descriptor): completes with status 0 after `ns`
 * nanoseconds, or at CLOCK_MONOTONIC time `ns` with IOCOMP_TIMER_ABS
 * (a time already past completes at once). key is the completion key. */
#define IOCOMP_TIMER_ABS 1u
IOCOMP_API int iocomp_timer(iocomp_engine *e, iocomp_port_t port, uintptr_t key, uint64_t ns,
                            unsigned flags, iocomp_overlapped *ov);

/*
 * Cancels the request in flight on ov (CancelIoEx with an overlapped). The
 * request still completes exactly once: with -ECANCELED, or with its own
 * result if it finished first.
 * Thread: any (a callback too); it does not wait for the completion.
 * Returns 0 when a cancel was asked, also again for a request a first cancel
 * asked about that is still in the kernel (io_uring), or for a request on
 * a regular file queued for a worker (epoll); -ENOENT when nothing is in
 * flight on ov: never submitted, already completed, or its completion is
 * already on its way (a first cancel, iocomp_cancel_fd(), iocomp_unbind()
 * or a port close took it out before the kernel saw it: a second cancel
 * then returns -ENOENT at once; epoll: a worker has started its blocking
 * system call, which ends with its own result). A cancel that runs while
 * another thread's submit on ov has not returned yet either asks (io_uring
 * waits the few instructions until the request is issued: 0) or answers
 * -ENOENT (epoll, before the request waits on its descriptor); it never
 * answers 0 without the request then completing -ECANCELED or with its own
 * result. Errors: -EINVAL e or ov NULL or not of e.
 */
IOCOMP_API int iocomp_cancel(iocomp_engine *e, iocomp_overlapped *ov);
/*
 * Cancels every request in flight on fd (CancelIoEx with no overlapped);
 * returns how many were asked to cancel (0 if none). Each still completes
 * exactly once. epoll runs the blocking system call of a request on a
 * regular file, an fsync, or a descriptor epoll refuses on a worker: one
 * queued there is cancelled (counted) and never touches fd; one whose call
 * has started completes with its own result, on the file it started on,
 * and this returns only after that call (so a close(2) that follows cannot
 * overtake it; a call that never ends, on such a device, holds this as
 * long). Thread: any. Errors: -EINVAL e NULL; -EBADF fd < 0.
 */
IOCOMP_API int iocomp_cancel_fd(iocomp_engine *e, int fd);
/*
 * From now on, operations on fd that finish at once return IOCOMP_INLINE and
 * queue no completion (FILE_SKIP_COMPLETION_PORT_ON_SUCCESS). Cannot be
 * cleared; it ends with the binding. Thread: any.
 * Errors: -EINVAL e NULL; -EBADF fd not bound.
 */
IOCOMP_API int iocomp_set_skip_on_success(iocomp_engine *e, int fd);
/* The result of a request that returned IOCOMP_INLINE: its status (0 or
 * -errno), with the bytes in *bytes (may be NULL). Meaningful only between
 * that IOCOMP_INLINE return and the next submit on ov. Thread: the one that
 * got IOCOMP_INLINE (another one only after synchronising with it).
 * Lock-free, no system call. Errors: -EINVAL ov NULL (then *bytes is left
 * alone). */
IOCOMP_API int32_t iocomp_overlapped_result(const iocomp_overlapped *ov, uint32_t *bytes);
/*
 * Cancels what is pending on fd, unbinds it and closes it. The pending
 * requests complete with -ECANCELED (or their own result: a system call
 * already under way finishes, on this file, before the close). None of
 * them ever reaches a file that takes the number next, also a request
 * submitted on another thread at the same time: it is refused (-EBADF) or
 * accepted and cancelled (-ECANCELED). One exception: on a skip-on-success
 * descriptor (iocomp_set_skip_on_success()) the submit first tries the
 * system call on its own thread, as a direct recv(2) or write(2) would, and
 * that attempt racing a close on another thread is the caller's race, as
 * recv(2) racing close(2) is. Thread: any.
 * Errors: -EINVAL e NULL; -EBADF fd < 0; close(2)'s error (the descriptor is
 * closed anyway, as close(2) does).
 */
IOCOMP_API int iocomp_close_fd(iocomp_engine *e, int fd);
/* The backend the engine runs: "uring" or "epoll" ("none" for e NULL).
 * Thread: any. The string is static. */
IOCOMP_API const char *iocomp_backend_name(iocomp_engine *e);
/* The optional backend features the engine uses, space-separated in this
 * order: io_uring's "futex_wait" (IORING_OP_FUTEX_WAIT, Linux 6.7: a worker
 * with I/O in flight parks inside its ring on its park word; without it the
 * ring wait is ended by a poll on an eventfd), "submit_all"
 * (IORING_SETUP_SUBMIT_ALL, 5.18), "coop_taskrun" (COOP_TASKRUN and
 * TASKRUN_FLAG, 5.19: completions do not interrupt a running worker),
 * "cqsize" (IORING_SETUP_CQSIZE). "" at the minimum io_uring level (Linux
 * 5.15 has all that needs), on epoll, and for e NULL.
 * docs/ARCHITECTURE.md, "io_uring feature levels", says what each adds.
 * Thread: any. The string lives as long as e. */
IOCOMP_API const char *iocomp_backend_features(iocomp_engine *e);

/*
 * Statistics (see iocomp_stats). Thread: any; lock-free.
 * Errors: -EINVAL e or out NULL.
 */
IOCOMP_API int iocomp_get_stats(iocomp_engine *e, iocomp_stats *out);

/*
 * The number of CPUs this process may run on: the affinity mask, further
 * limited by a cgroup v2 cpu.max quota (rounded up). At least 1.
 */
IOCOMP_API uint32_t iocomp_usable_cpus(void);

/* A static description of a negative errno value (or 0). Never NULL. */
IOCOMP_API const char *iocomp_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* IOCOMP_H */
