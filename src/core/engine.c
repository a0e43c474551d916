/*
 * engine.c - engine creation and destruction, the completion manager.
 *
 * Destroy order (each step needs the previous one):
 *   1. refuse when called from this engine's own callback (-EDEADLK);
 *   2. closing_all, under ports_lock (port.c): no new ports, even from a
 *      callback that is running;
 *   3. close every port by one deadline, delivering every accepted packet;
 *      a timeout returns -ETIMEDOUT with the engine alive but closed;
 *   4. stop: the monitor, then the workers (they see `stopping` and exit);
 *      all are joined;
 *   5. release the overlapped heap (its arena goes back to the pool, so
 *      overlapped still alive stay valid), then everything else.
 *
 * Fork: a child of fork() has a copy of the engine's memory and of its
 * descriptors but none of its threads, so nothing would ever run what it
 * posted, a destroy would wait for workers that are not there, and its
 * io_uring descriptors and epoll instance are the parent's (a submit from
 * the child would land in the parent's kernel objects). iocomp therefore
 * refuses every call on an inherited engine in the child, at once, with
 * -ECHILD: a pthread_atfork child handler (registered once, by the first
 * engine_create) bumps ioc_fork_epoch, and every entry point compares it
 * with the epoch the engine was created under (ioc_forked, one relaxed load
 * of a global that is only ever written in a child). The ring memory is
 * madvise(MADV_DONTFORK)ed (uring.c: io_uring_ring_dontfork), so the child
 * has no mapping of it at all. What the child may still do: free overlapped
 * it inherited (iocomp_overlapped_free touches only the allocator, and the
 * private jemalloc has its own fork handlers), read the static strings, and
 * create engines of its own, which work normally. The inherited engine's
 * memory and descriptors stay in the child until it execs (every iocomp
 * descriptor is O_CLOEXEC) or exits; the child cannot tell which parent
 * state is consistent, so it frees nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#define DEFAULT_LOCAL_CAP 1024u
#define DEFAULT_INJECT_CAP 16384u
#define DEFAULT_SPIN_NS 20000u
#define DEFAULT_CLOSE_TIMEOUT_MS 30000u
#define DEFAULT_KEEP_ALIVE_MS 5000u

ioc_atomic(uint32_t) ioc_fork_epoch;

/* pthread_atfork child handler: the child's only thread, before fork()
 * returns in it; see ioc_forked (internal.h) for why relaxed is enough. */
static void fork_child(void) { ioc_store(&ioc_fork_epoch, ioc_load(&ioc_fork_epoch, IOC_RELAXED) + 1, IOC_RELAXED); }
static void fork_register(void) { (void)pthread_atfork(NULL, NULL, fork_child); }

IOCOMP_API void iocomp_config_init(iocomp_config *cfg) {
    if (cfg) memset(cfg, 0, sizeof *cfg);
}

static void engine_free(iocomp_engine *e) {
    ioc_scale_fini(e);
    ioc_io_fini(e);
    ioc_ports_fini(e);
    ioc_binds_fini(e);
    ioc_queue_fini(e);
    ioc_park_fini(&e->park);
    struct ioc_cb *cb = ioc_load(&e->cb, IOC_RELAXED);
    while (cb) {
        struct ioc_cb *o = cb->older;
        free(cb);
        cb = o;
    }
    pthread_mutex_destroy(&e->lock);
    pthread_mutex_destroy(&e->scale_lock);
    pthread_mutex_destroy(&e->ports_lock);
    pthread_mutex_destroy(&e->bind_lock);
    free(e);
}

IOCOMP_API int iocomp_engine_create(const iocomp_config *cfg, iocomp_engine **out) {
    if (!cfg || !out) return -EINVAL;
    uint32_t max = cfg->max_threads;
    uint32_t min = cfg->min_threads;
    if (min > IOCOMP_THREADS_LIMIT || max > IOCOMP_THREADS_LIMIT) return -ERANGE;
    if (min == 0) {
        min = iocomp_usable_cpus();
        if (max && min > max) min = max;
    }
    if (max == 0) max = min > IOCOMP_THREADS_DEFAULT_MAX ? min : IOCOMP_THREADS_DEFAULT_MAX;
    if (min > max) return -EINVAL;
    if (cfg->host_overlapped_size > IOCOMP_HOST_OVERLAPPED_LIMIT) return -ERANGE;
    if (cfg->local_queue_capacity > IOCOMP_QUEUE_CAPACITY_LIMIT ||
        cfg->inject_queue_capacity > IOCOMP_QUEUE_CAPACITY_LIMIT)
        return -ERANGE; /* audit defect 12: UINT32_MAX reserved ~151 GB */
    /* Every backend alike: io_uring's u_init used to clamp it silently, epoll
     * ignored it, so the same config meant different engines. */
    if (cfg->ring_entries > IOCOMP_RING_ENTRIES_LIMIT) return -ERANGE;

    /* Once per process; a child inherits the registration. pthread_atfork
     * fails only with ENOMEM, and then a child would not be refused: keep
     * the engine, as a failed registration is not this call's fault. */
    static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
    pthread_once(&fork_once, fork_register);

    iocomp_engine *e = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : aligned_alloc(IOC_CACHELINE, sizeof *e);
    if (!e) return -ENOMEM;
    memset(e, 0, sizeof *e);
    e->fork_epoch = ioc_load(&ioc_fork_epoch, IOC_RELAXED);
    e->local_cap = ioc_queue_capacity(cfg->local_queue_capacity, DEFAULT_LOCAL_CAP);
    e->inject_cap = ioc_queue_capacity(cfg->inject_queue_capacity, DEFAULT_INJECT_CAP);
    e->spin_ns = cfg->spin_ns == 0 ? DEFAULT_SPIN_NS : cfg->spin_ns == UINT32_MAX ? 0 : cfg->spin_ns;
    e->close_timeout_ms = cfg->close_timeout_ms ? cfg->close_timeout_ms : DEFAULT_CLOSE_TIMEOUT_MS;
    e->keep_alive_ms = cfg->keep_alive_ms ? cfg->keep_alive_ms : DEFAULT_KEEP_ALIVE_MS;
    e->concurrency = cfg->concurrency ? cfg->concurrency : iocomp_usable_cpus();
    e->ov_init = cfg->overlapped_init;
    e->ov_init_ctx = cfg->overlapped_init_ctx;
    e->ext_size = cfg->host_overlapped_size;
    ioc_store(&e->min_threads, min, IOC_RELAXED);
    ioc_store(&e->max_threads, max, IOC_RELAXED);
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->scale_lock, NULL);
    pthread_mutex_init(&e->ports_lock, NULL);
    pthread_mutex_init(&e->bind_lock, NULL);
    ioc_park_init(&e->park);

    int r = ioc_queue_init(e);
    if (r == 0) r = ioc_heap_create(e);
    if (r == 0) r = ioc_io_init(e, cfg);
    if (r == 0 && cfg->on_complete) r = iocomp_set_completion_manager(e, cfg->on_complete, cfg->on_complete_ctx);
    if (r == 0) r = ioc_scale_start(e, min);
    if (r == 0) r = ioc_monitor_start(e);
    if (r < 0) {
        ioc_monitor_stop(e);
        ioc_scale_stop_all(e);
        ioc_heap_release(e);
        engine_free(e);
        return r;
    }
    *out = e;
    return 0;
}

IOCOMP_API int iocomp_engine_destroy(iocomp_engine *e) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (ioc_self_in(e)) return -EDEADLK;
    uint64_t deadline = ioc_now_ns() + (uint64_t)e->close_timeout_ms * 1000000ull;
    int r = ioc_ports_close_all(e, deadline);
    if (r < 0) {
        if (r == -ETIMEDOUT) ioc_report_stuck(e, "iocomp_engine_destroy timed out");
        return r;
    }
    ioc_monitor_stop(e);
    ioc_scale_stop_all(e);
    ioc_heap_release(e);
    engine_free(e);
    return 0;
}

IOCOMP_API int iocomp_set_completion_manager(iocomp_engine *e, iocomp_complete_cb cb, void *ctx) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (!cb) {
        ioc_store(&e->cb_enabled, false, IOC_RELEASE);
        return 0;
    }
    struct ioc_cb *n = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : malloc(sizeof *n);
    if (!n) return -ENOMEM;
    n->fn = cb;
    n->ctx = ctx;
    pthread_mutex_lock(&e->lock);
    n->older = ioc_load(&e->cb, IOC_RELAXED);
    /* Release pairs with the acquire loads in ioc_dispatch (worker.c). */
    ioc_store(&e->cb, n, IOC_RELEASE);
    /* Release pairs with the acquire in iocomp_post: a poster that sees the
     * flag also sees a non-NULL pair. */
    ioc_store(&e->cb_enabled, true, IOC_RELEASE);
    pthread_mutex_unlock(&e->lock);
    return 0;
}
