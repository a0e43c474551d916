/*
 * hosting.c - IHostIoCompletionManager over the C API, one method each.
 *
 * No logic of its own: every method converts its arguments (HANDLE <->
 * iocomp_port_t / fd, DWORD <-> uint32_t), calls one C function, and maps
 * the result with iocomp_hresult_from_errno() (status.def, the one table).
 * OnComplete statuses go through iocomp_oncomplete_hresult_from_errno() (the
 * same table: an HRESULT, as the OnComplete page says). Its one piece of
 * state is OnComplete's own result: E_FAIL or HOST_E_CLRNOTAVAILABLE (the
 * runtime is gone) stops the calls into that manager; later completions
 * are consumed and counted (iocomp_hosting_undelivered()).
 *
 * The process's default instance is the only global state in iocomp (its
 * section at the end says how it is published and shut down).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <iocomp.h>
#include <iocomp/hosting.h>

#include "core/atomic.h"   /* the one seam for atomics */
#include "core/internal.h" /* ioc_self_in(): is the caller a worker of an engine */

struct host {
    iocomp_host_io_completion_manager vt; /* first: self pointers are &vt */
    iocomp_engine *e;
    /* The installed ICLRIoCompletionManager, or GONE once one of its
     * OnComplete calls said the runtime is gone (E_FAIL,
     * HOST_E_CLRNOTAVAILABLE), or NULL before any. Stored by
     * SetCLRIoCompletionManager (release), swapped to GONE by the first such
     * call (a CAS from that very manager: one that a newer Set replaced is
     * left alone); loaded by each completion (acquire). */
    ioc_atomic(iocomp_clr_io_completion_manager *) clr;
    /* Completions consumed while clr was GONE (or NULL). Relaxed: a count. */
    ioc_atomic(uint64_t) undelivered;
};

/* The "runtime gone" marker: an address no manager can have. */
static char gone_marker;
#define GONE ((iocomp_clr_io_completion_manager *)(void *)&gone_marker)

static inline iocomp_engine *E(iocomp_host_io_completion_manager *self) {
    return ((struct host *)(void *)self)->e;
}
#define HR(x) iocomp_hresult_from_errno(x)

/* *phPort is the new port, or 0 when none was created (the method's page:
 * "or 0 (zero), if the port could not be created"), whatever the failure. */
static HRESULT m_create_port(iocomp_host_io_completion_manager *self, HANDLE *phPort) {
    if (!phPort) return E_INVALIDARG;
    *phPort = NULL;
    if (!self) return E_INVALIDARG;
    iocomp_port_t p;
    int r = iocomp_port_create(E(self), &p);
    if (r == 0) *phPort = (HANDLE)(uintptr_t)p;
    return HR(r);
}

static HRESULT m_close_port(iocomp_host_io_completion_manager *self, HANDLE hPort) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_port_close(E(self), (iocomp_port_t)(uintptr_t)hPort));
}

static HRESULT m_set_max(iocomp_host_io_completion_manager *self, DWORD n) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_set_max_threads(E(self), n));
}

static HRESULT m_get_max(iocomp_host_io_completion_manager *self, DWORD *out) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_get_max_threads(E(self), out));
}

static HRESULT m_get_available(iocomp_host_io_completion_manager *self, DWORD *out) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_get_available_threads(E(self), out));
}

static HRESULT m_get_ov_size(iocomp_host_io_completion_manager *self, DWORD *pcbSize) {
    if (!self || !pcbSize) return E_INVALIDARG;
    size_t s;
    int r = iocomp_get_host_overlapped_size(E(self), &s);
    if (r == 0) *pcbSize = (DWORD)s; /* bounded by IOCOMP_HOST_OVERLAPPED_LIMIT */
    return HR(r);
}

/* The OnComplete trampoline: ctx is the wrapper (struct host). The status
 * becomes an HRESULT through the one table; OnComplete's own result E_FAIL
 * or HOST_E_CLRNOTAVAILABLE means the runtime is gone: no further call. */
static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)key;
    struct host *h = ctx;
    /* Acquire: pairs with m_set_clr's release store (the manager's object). */
    iocomp_clr_io_completion_manager *m = ioc_load(&h->clr, IOC_ACQUIRE);
    if (!m || m == GONE) {
        ioc_fetch_add(&h->undelivered, 1, IOC_RELAXED);
        return;
    }
    HRESULT hr = m->OnComplete(m, (DWORD)iocomp_oncomplete_hresult_from_errno(status), bytes, ov);
    if (hr != E_FAIL && hr != HOST_E_CLRNOTAVAILABLE) return;
    /* Only the call that turns this very manager to GONE reports; a newer
     * manager installed meanwhile stays. */
    iocomp_clr_io_completion_manager *want = m;
    if (ioc_cas(&h->clr, &want, GONE, IOC_RELAXED, IOC_RELAXED))
        fprintf(stderr,
                "iocomp: ICLRIoCompletionManager::OnComplete returned 0x%08x (the runtime is "
                "gone): no further OnComplete calls for manager %p; later completions are "
                "consumed and counted (iocomp_hosting_undelivered())\n",
                (unsigned)hr, (void *)m);
}

static HRESULT m_set_clr(iocomp_host_io_completion_manager *self, iocomp_clr_io_completion_manager *pManager) {
    if (!self) return E_INVALIDARG;
    if (pManager && !pManager->OnComplete) return E_INVALIDARG;
    struct host *h = (struct host *)(void *)self;
    if (!pManager) /* the last manager keeps what is already queued */
        return HR(iocomp_set_completion_manager(h->e, NULL, NULL));
    /* Release: publishes the manager's object to on_complete's acquire load;
     * before the engine's install, so that no request accepted once it is
     * installed finds the old value. A failed install puts the old one back
     * (unless a concurrent Set replaced ours meanwhile). */
    iocomp_clr_io_completion_manager *old = ioc_xchg(&h->clr, pManager, IOC_ACQ_REL);
    int r = iocomp_set_completion_manager(h->e, on_complete, h);
    if (r < 0) ioc_cas(&h->clr, &pManager, old, IOC_RELEASE, IOC_RELAXED);
    return HR(r);
}

static HRESULT m_init_ov(iocomp_host_io_completion_manager *self, void *pvOverlapped) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_overlapped_init(E(self), pvOverlapped));
}

static HRESULT m_bind(iocomp_host_io_completion_manager *self, HANDLE hPort, HANDLE hHandle) {
    if (!self) return E_INVALIDARG;
    intptr_t fd = (intptr_t)hHandle;
    if (fd < 0 || fd > INT32_MAX) return E_INVALIDARG;
    return HR(iocomp_bind(E(self), (iocomp_port_t)(uintptr_t)hPort, (int)fd, (uintptr_t)fd));
}

static HRESULT m_set_min(iocomp_host_io_completion_manager *self, DWORD n) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_set_min_threads(E(self), n));
}

static HRESULT m_get_min(iocomp_host_io_completion_manager *self, DWORD *out) {
    if (!self) return E_INVALIDARG;
    return HR(iocomp_get_min_threads(E(self), out));
}

static const iocomp_host_io_completion_manager vtable = {
    .CreateIoCompletionPort = m_create_port,
    .CloseIoCompletionPort = m_close_port,
    .SetMaxThreads = m_set_max,
    .GetMaxThreads = m_get_max,
    .GetAvailableThreads = m_get_available,
    .GetHostOverlappedSize = m_get_ov_size,
    .SetCLRIoCompletionManager = m_set_clr,
    .InitializeHostOverlapped = m_init_ov,
    .Bind = m_bind,
    .SetMinThreads = m_set_min,
    .GetMinThreads = m_get_min,
};

IOCOMP_API int iocomp_hosting_create(iocomp_engine *e, iocomp_host_io_completion_manager **out) {
    if (!e || !out) return -EINVAL;
    struct host *h = malloc(sizeof *h);
    if (!h) return -ENOMEM;
    h->vt = vtable;
    h->e = e;
    ioc_store(&h->clr, NULL, IOC_RELAXED); /* published with *out by the caller */
    ioc_store(&h->undelivered, 0, IOC_RELAXED);
    *out = &h->vt;
    return 0;
}

IOCOMP_API void iocomp_hosting_release(iocomp_host_io_completion_manager *m) { free(m); }

IOCOMP_API uint64_t iocomp_hosting_undelivered(iocomp_host_io_completion_manager *m) {
    if (!m) return 0;
    return ioc_load(&((struct host *)(void *)m)->undelivered, IOC_RELAXED);
}

IOCOMP_API iocomp_engine *iocomp_hosting_engine(iocomp_host_io_completion_manager *m) {
    return m ? E(m) : NULL;
}

/* ---- the default instance -------------------------------------------------------
 *
 * default_mgr is the instance, published once it is whole and read without a
 * lock, so that iocomp_hosting_default() never waits for a shutdown: a
 * callback of the instance may call it while iocomp_hosting_shutdown(), on
 * another thread, waits for that very callback (a lock held across the
 * destroy hung both until the close deadline, then failed HOST_E_TIMEOUT).
 *
 * Its life: NULL -> M (a creation, under default_lock) -> NULL (a shutdown
 * whose destroy returned 0, under shutdown_lock). Only a creation stores a
 * non-NULL value and only when it finds NULL; only a shutdown stores NULL,
 * and only after the M it read is destroyed: the two never overlap on one
 * value. While a shutdown destroys M, M stays published: a callback of M that
 * asks gets M (alive until that callback returns: the destroy waits for it);
 * if the destroy times out, M simply stays the default.
 *
 *   default_lock   serialises creations (the first calls race: one creates,
 *                  the others wait for it and get the same instance). Held
 *                  only while creating, never across a destroy.
 *   shutdown_lock  serialises shutdowns, held across the destroy. Never taken
 *                  by a worker of the published instance: those are refused
 *                  (-EDEADLK) before it, so no callback the destroy waits for
 *                  can wait for the destroy.
 */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t shutdown_lock = PTHREAD_MUTEX_INITIALIZER;
/* Stores: release, in iocomp_hosting_default() (a new instance, its wrapper
 * and engine built) and in iocomp_hosting_shutdown() (NULL). Loads: acquire,
 * each pairing with the creation's release store so that the wrapper (h->e)
 * and the engine behind it are seen whole by a thread that did not create
 * them. */
static ioc_atomic(iocomp_host_io_completion_manager *) default_mgr;
/* The published instance's engine, stored and cleared with default_mgr
 * (before it, and after it). Only compared, never dereferenced: shutdown's
 * "from a callback of the instance?" test must not read a wrapper that a
 * concurrent shutdown may have freed. Relaxed: a value, no publication. */
static ioc_atomic(iocomp_engine *) default_eng;

IOCOMP_API iocomp_host_io_completion_manager *iocomp_hosting_default(void) {
    /* Acquire: pairs with the release store of the creation below. The fast
     * path: no lock once the instance exists, also during a shutdown. */
    iocomp_host_io_completion_manager *m = ioc_load(&default_mgr, IOC_ACQUIRE);
    if (m) return m;
    pthread_mutex_lock(&default_lock);
    /* Acquire: pairs with the release store of a creation that ran between
     * the load above and the lock (also ordered by default_lock itself). */
    m = ioc_load(&default_mgr, IOC_ACQUIRE);
    if (!m) {
        iocomp_config cfg;
        iocomp_config_init(&cfg);
        iocomp_engine *e;
        if (iocomp_engine_create(&cfg, &e) == 0) {
            if (iocomp_hosting_create(e, &m) < 0) {
                iocomp_engine_destroy(e); /* no callback, no port yet: 0 */
                m = NULL;
            } else {
                ioc_store(&default_eng, e, IOC_RELAXED);
                /* Release: publishes the wrapper and its engine; pairs with
                 * the acquire loads of both functions. */
                ioc_store(&default_mgr, m, IOC_RELEASE);
            }
        }
    }
    pthread_mutex_unlock(&default_lock);
    return m;
}

IOCOMP_API HRESULT iocomp_hosting_shutdown(void) {
    /* From a callback of the instance: refused at once, before any lock, as
     * iocomp_engine_destroy() refuses it (-EDEADLK, the table's
     * HOST_E_INVALIDOPERATION: not from this thread), whether or not another
     * thread's shutdown is in progress (that one is waiting for this very
     * callback). Nothing changes. A pointer comparison only: the callback's
     * own engine is alive while it runs, the wrapper may not be. */
    iocomp_engine *de = ioc_load(&default_eng, IOC_RELAXED);
    if (de && ioc_self_in(de)) return HR(-EDEADLK);
    iocomp_host_io_completion_manager *m;
    pthread_mutex_lock(&shutdown_lock);
    /* Acquire: as above. Read again: a shutdown that held the lock before us
     * may have ended the instance (NULL), and a creation made a new one. */
    m = ioc_load(&default_mgr, IOC_ACQUIRE);
    int r = 0;
    if (m) {
        r = iocomp_engine_destroy(E(m)); /* -EDEADLK too from its own callback */
        if (r == 0) {
            /* Release: pairs with the acquire loads; nothing is published
             * with NULL, a creation that sees it builds its own instance. */
            ioc_store(&default_mgr, NULL, IOC_RELEASE);
            ioc_store(&default_eng, NULL, IOC_RELAXED);
            iocomp_hosting_release(m);
        }
    }
    pthread_mutex_unlock(&shutdown_lock);
    return HR(r);
}
