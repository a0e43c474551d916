/*
 * hosting.c - IHostIoCompletionManager over the C API, one method each, as a
 * COM object (lpVtbl first; IUnknown's QueryInterface, AddRef, Release).
 *
 * No logic of its own: every method converts its arguments (HANDLE <->
 * iocomp_port_t / fd, DWORD <-> uint32_t), calls one C function, and maps
 * the result with iocomp_hresult_from_errno() (status.def, the one table).
 * OnComplete statuses go through iocomp_oncomplete_hresult_from_errno() (the
 * same table: an HRESULT, as the OnComplete page says). Its one piece of
 * state is OnComplete's own result: E_FAIL or HOST_E_CLRNOTAVAILABLE (the
 * runtime is gone) stops the calls into that manager; later completions
 * are consumed and counted (iocomp_hosting_undelivered()). References:
 * the object's own count (its last Release frees it), and one reference on
 * each ICLRIoCompletionManager it installed, kept until then.
 *
 * The process's default instance is the only global state in iocomp (its
 * section at the end says how it is published and shut down).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iocomp.h>
#include <iocomp/hosting.h>

#include "core/atomic.h"   /* the one seam for atomics */
#include "core/internal.h" /* ioc_self_in(): is the caller a worker of an engine */

struct host {
    IHostIoCompletionManager com; /* first: This pointers are &com */
    /* The engine; NULL once the default instance's shutdown destroyed it
     * (then every method is HOST_E_ABANDONED). Stored at creation (published
     * with the object) and by that shutdown (release); loaded by each method
     * (acquire, pairing with it). */
    ioc_atomic(iocomp_engine *) e;
    /* COM references. AddRef: relaxed (a holder already has one). Release:
     * acq_rel, so the freeing thread sees every holder's writes. */
    ioc_atomic(uint32_t) refs;
    /* The installed ICLRIoCompletionManager, or GONE once one of its
     * OnComplete calls said the runtime is gone (E_FAIL,
     * HOST_E_CLRNOTAVAILABLE), or NULL before any. Stored by
     * SetCLRIoCompletionManager (release) and turned to GONE by the first
     * such call, both under the lock below (see install_gen: an install made
     * after that call read the manager is left alone); loaded by each
     * completion (acquire). */
    ioc_atomic(ICLRIoCompletionManager *) clr;
    /* Installs so far: SetCLRIoCompletionManager bumps it with each manager
     * it installs, under the lock below, after storing clr. A completion reads it
     * (acquire) before clr; its "runtime gone" result turns clr to GONE, under
     * the lock, only if no install happened since (install_gen unchanged):
     * so a re-install of the very same manager racing that result is not
     * undone. */
    ioc_atomic(uint64_t) install_gen;
    /* The rare paths' one lock: installs, the GONE transition, the held list.
     * No foreign code (the runtime's AddRef/OnComplete) runs under it. */
    pthread_mutex_t lock;
    /* Completions consumed while clr was GONE (or NULL). Relaxed: a count. */
    ioc_atomic(uint64_t) undelivered;
    /* Every manager ever installed, each AddRef'd once, Released when the
     * object is freed: a replaced manager may still be inside OnComplete.
     * Under lock. */
    ICLRIoCompletionManager **held;
    size_t nheld, capheld;
};

/* The "runtime gone" marker: an address no manager can have. */
static char gone_marker;
#define GONE ((ICLRIoCompletionManager *)(void *)&gone_marker)

static inline struct host *H(IHostIoCompletionManager *self) { return (struct host *)(void *)self; }
/* Acquire: pairs with the release store of the shutdown that cleared it. */
static inline iocomp_engine *E(IHostIoCompletionManager *self) { return ioc_load(&H(self)->e, IOC_ACQUIRE); }
#define HR(x) iocomp_hresult_from_errno(x)
/* The method's engine, or its HRESULT: E_INVALIDARG for This NULL,
 * HOST_E_ABANDONED once the engine is gone. */
#define ENGINE(self, e)                                                                           \
    iocomp_engine *e;                                                                             \
    do {                                                                                          \
        if (!(self)) return E_INVALIDARG;                                                         \
        if (!(e = E(self))) return HOST_E_ABANDONED;                                              \
    } while (0)

static bool iid_is(REFIID a, const IID *b) { return memcmp(a, b, sizeof *b) == 0; }

/* ---- IUnknown -------------------------------------------------------------------- */
static HRESULT m_query_interface(IHostIoCompletionManager *self, REFIID riid, void **ppv) {
    if (!ppv) return E_POINTER;
    *ppv = NULL;
    if (!self || !riid) return E_INVALIDARG;
    if (!iid_is(riid, &IID_IUnknown) && !iid_is(riid, &IID_IHostIoCompletionManager)) return E_NOINTERFACE;
    self->lpVtbl->AddRef(self);
    *ppv = self;
    return S_OK;
}

static ULONG m_add_ref(IHostIoCompletionManager *self) {
    if (!self) return 0;
    return ioc_fetch_add(&H(self)->refs, 1, IOC_RELAXED) + 1;
}

static void host_free(struct host *h) {
    for (size_t i = 0; i < h->nheld; i++) h->held[i]->lpVtbl->Release(h->held[i]);
    free(h->held);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

static ULONG m_release(IHostIoCompletionManager *self) {
    if (!self) return 0;
    uint32_t left = ioc_fetch_sub(&H(self)->refs, 1, IOC_ACQ_REL) - 1;
    if (left == 0) host_free(H(self));
    return left;
}

/* ---- the 11 methods ------------------------------------------------------------------ */

/* *phPort is the new port, or 0 when none was created (the method's page:
 * "or 0 (zero), if the port could not be created"), whatever the failure. */
static HRESULT m_create_port(IHostIoCompletionManager *self, HANDLE *phPort) {
    if (!phPort) return E_INVALIDARG;
    *phPort = NULL;
    ENGINE(self, e);
    iocomp_port_t p;
    int r = iocomp_port_create(e, &p);
    if (r == 0) *phPort = (HANDLE)(uintptr_t)p;
    return HR(r);
}

static HRESULT m_close_port(IHostIoCompletionManager *self, HANDLE hPort) {
    ENGINE(self, e);
    return HR(iocomp_port_close(e, (iocomp_port_t)(uintptr_t)hPort));
}

static HRESULT m_set_max(IHostIoCompletionManager *self, DWORD n) {
    ENGINE(self, e);
    return HR(iocomp_set_max_threads(e, n));
}

static HRESULT m_get_max(IHostIoCompletionManager *self, DWORD *out) {
    ENGINE(self, e);
    return HR(iocomp_get_max_threads(e, out));
}

static HRESULT m_get_available(IHostIoCompletionManager *self, DWORD *out) {
    ENGINE(self, e);
    return HR(iocomp_get_available_threads(e, out));
}

static HRESULT m_get_ov_size(IHostIoCompletionManager *self, DWORD *pcbSize) {
    ENGINE(self, e);
    if (!pcbSize) return E_INVALIDARG;
    size_t s;
    int r = iocomp_get_host_overlapped_size(e, &s);
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
    /* Acquire: pairs with m_set_clr's release increment (done after its clr
     * store), so the clr read next is that install's or a later one. */
    uint64_t gen = ioc_load(&h->install_gen, IOC_ACQUIRE);
    ICLRIoCompletionManager *m = ioc_load(&h->clr, IOC_ACQUIRE);
    if (!m || m == GONE) {
        ioc_fetch_add(&h->undelivered, 1, IOC_RELAXED);
        return;
    }
    HRESULT hr = m->lpVtbl->OnComplete(m, (DWORD)iocomp_oncomplete_hresult_from_errno(status), bytes, ov);
    if (hr != E_FAIL && hr != HOST_E_CLRNOTAVAILABLE) return;
    /* Only the call that turns this very install to GONE reports; a manager
     * installed meanwhile (the same one too) stays. The rare path: a lock. */
    bool report = false;
    pthread_mutex_lock(&h->lock);
    if (ioc_load(&h->install_gen, IOC_RELAXED) == gen && ioc_load(&h->clr, IOC_RELAXED) == m) {
        ioc_store(&h->clr, GONE, IOC_RELAXED); /* under h->lock, as every install */
        report = true;
    }
    pthread_mutex_unlock(&h->lock);
    if (report)
        fprintf(stderr,
                "iocomp: ICLRIoCompletionManager::OnComplete returned 0x%08x (the runtime is "
                "gone): no further OnComplete calls for manager %p; later completions are "
                "consumed and counted (iocomp_hosting_undelivered())\n",
                (unsigned)hr, (void *)m);
}

/* Holds a reference on m until the object is freed (once per manager). The
 * runtime's AddRef runs after the lock: no foreign code under it. */
static int hold(struct host *h, ICLRIoCompletionManager *m) {
    int r = 0;
    bool added = false;
    pthread_mutex_lock(&h->lock);
    size_t i = 0;
    while (i < h->nheld && h->held[i] != m) i++;
    if (i == h->nheld) {
        if (h->nheld == h->capheld) {
            size_t nc = h->capheld ? h->capheld * 2 : 4;
            ICLRIoCompletionManager **n = realloc(h->held, nc * sizeof *n);
            if (!n) r = -ENOMEM;
            else {
                h->held = n;
                h->capheld = nc;
            }
        }
        if (r == 0) {
            h->held[h->nheld++] = m;
            added = true;
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (added) m->lpVtbl->AddRef(m);
    return r;
}

static HRESULT m_set_clr(IHostIoCompletionManager *self, ICLRIoCompletionManager *pManager) {
    ENGINE(self, e);
    if (pManager && (!pManager->lpVtbl || !pManager->lpVtbl->OnComplete || !pManager->lpVtbl->AddRef ||
                     !pManager->lpVtbl->Release))
        return E_INVALIDARG;
    struct host *h = H(self);
    if (!pManager) /* the last manager keeps what is already queued */
        return HR(iocomp_set_completion_manager(e, NULL, NULL));
    int r = hold(h, pManager);
    if (r < 0) return HR(r);
    /* Release (xchg and increment): publish the manager's object to
     * on_complete's acquire loads; before the engine's install, so that no
     * request accepted once it is installed finds the old value. Under
     * h->lock: a "runtime gone" result that read an older generation finds
     * a new one and leaves this install alone. A failed install puts the old
     * manager back (unless a concurrent Set replaced ours meanwhile). */
    pthread_mutex_lock(&h->lock);
    ICLRIoCompletionManager *old = ioc_xchg(&h->clr, pManager, IOC_ACQ_REL);
    ioc_fetch_add(&h->install_gen, 1, IOC_RELEASE);
    pthread_mutex_unlock(&h->lock);
    r = iocomp_set_completion_manager(e, on_complete, h);
    if (r < 0) {
        pthread_mutex_lock(&h->lock);
        if (ioc_load(&h->clr, IOC_RELAXED) == pManager) ioc_store(&h->clr, old, IOC_RELEASE);
        pthread_mutex_unlock(&h->lock);
    }
    return HR(r);
}

static HRESULT m_init_ov(IHostIoCompletionManager *self, void *pvOverlapped) {
    ENGINE(self, e);
    return HR(iocomp_overlapped_init(e, pvOverlapped));
}

static HRESULT m_bind(IHostIoCompletionManager *self, HANDLE hPort, HANDLE hHandle) {
    ENGINE(self, e);
    intptr_t fd = (intptr_t)hHandle;
    if (fd < 0 || fd > INT32_MAX) return E_INVALIDARG;
    return HR(iocomp_bind(e, (iocomp_port_t)(uintptr_t)hPort, (int)fd, (uintptr_t)fd));
}

static HRESULT m_set_min(IHostIoCompletionManager *self, DWORD n) {
    ENGINE(self, e);
    return HR(iocomp_set_min_threads(e, n));
}

static HRESULT m_get_min(IHostIoCompletionManager *self, DWORD *out) {
    ENGINE(self, e);
    return HR(iocomp_get_min_threads(e, out));
}

/* MSCorEE.h's order: IUnknown's three, then the interface's eleven. */
static const IHostIoCompletionManagerVtbl vtable = {
    .QueryInterface = m_query_interface,
    .AddRef = m_add_ref,
    .Release = m_release,
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

IOCOMP_API int iocomp_hosting_create(iocomp_engine *e, IHostIoCompletionManager **out) {
    if (!e || !out) return -EINVAL;
    struct host *h = calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        free(h);
        return -ENOMEM;
    }
    h->com.lpVtbl = &vtable;
    /* All relaxed: published with *out by the caller. */
    ioc_store(&h->e, e, IOC_RELAXED);
    ioc_store(&h->refs, 1, IOC_RELAXED);
    ioc_store(&h->clr, NULL, IOC_RELAXED);
    ioc_store(&h->undelivered, 0, IOC_RELAXED);
    ioc_store(&h->install_gen, 0, IOC_RELAXED);
    *out = &h->com;
    return 0;
}

IOCOMP_API void iocomp_hosting_release(IHostIoCompletionManager *m) { (void)m_release(m); }

IOCOMP_API uint64_t iocomp_hosting_undelivered(IHostIoCompletionManager *m) {
    if (!m) return 0;
    return ioc_load(&H(m)->undelivered, IOC_RELAXED);
}

IOCOMP_API iocomp_engine *iocomp_hosting_engine(IHostIoCompletionManager *m) {
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
static ioc_atomic(IHostIoCompletionManager *) default_mgr;
/* The published instance's engine, stored and cleared with default_mgr
 * (before it, and after it). Only compared, never dereferenced: shutdown's
 * "from a callback of the instance?" test must not read a wrapper that a
 * concurrent shutdown may have freed. Relaxed: a value, no publication. */
static ioc_atomic(iocomp_engine *) default_eng;

IOCOMP_API IHostIoCompletionManager *iocomp_hosting_default(void) {
    /* Acquire: pairs with the release store of the creation below. The fast
     * path: no lock once the instance exists, also during a shutdown. */
    IHostIoCompletionManager *m = ioc_load(&default_mgr, IOC_ACQUIRE);
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
    IHostIoCompletionManager *m;
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
            /* Release: pairs with E()'s acquire in a method of a host that
             * still holds a reference: HOST_E_ABANDONED from now on. */
            ioc_store(&H(m)->e, NULL, IOC_RELEASE);
        }
    }
    pthread_mutex_unlock(&shutdown_lock);
    /* iocomp's reference, after the lock: freeing calls the runtime's
     * Release on each manager, which may call back into iocomp. */
    if (m && r == 0) m_release(m);
    return HR(r);
}
