/*
 * hosting.c - IHostIoCompletionManager over the C API, one method each.
 *
 * No logic of its own: every method converts its arguments (HANDLE <->
 * iocomp_port_t / fd, DWORD <-> uint32_t), calls one C function, and maps
 * the result with iocomp_hresult_from_errno() (status.def, the one table).
 * OnComplete statuses go through iocomp_win32_from_errno().
 *
 * The process's default instance is the only global state in iocomp.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include <iocomp.h>
#include <iocomp/hosting.h>

struct host {
    iocomp_host_io_completion_manager vt; /* first: self pointers are &vt */
    iocomp_engine *e;
};

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

/* The OnComplete trampoline: ctx is the runtime's manager object. */
static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)key;
    iocomp_clr_io_completion_manager *m = ctx;
    m->OnComplete(m, iocomp_win32_from_errno(status), bytes, ov);
}

static HRESULT m_set_clr(iocomp_host_io_completion_manager *self, iocomp_clr_io_completion_manager *pManager) {
    if (!self) return E_INVALIDARG;
    if (pManager && !pManager->OnComplete) return E_INVALIDARG;
    return HR(iocomp_set_completion_manager(E(self), pManager ? on_complete : NULL, pManager));
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
    *out = &h->vt;
    return 0;
}

IOCOMP_API void iocomp_hosting_release(iocomp_host_io_completion_manager *m) { free(m); }

IOCOMP_API iocomp_engine *iocomp_hosting_engine(iocomp_host_io_completion_manager *m) {
    return m ? E(m) : NULL;
}

/* ---- the default instance ------------------------------------------------------- */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static iocomp_host_io_completion_manager *default_mgr;

IOCOMP_API iocomp_host_io_completion_manager *iocomp_hosting_default(void) {
    pthread_mutex_lock(&default_lock);
    if (!default_mgr) {
        iocomp_config cfg;
        iocomp_config_init(&cfg);
        iocomp_engine *e;
        if (iocomp_engine_create(&cfg, &e) == 0) {
            if (iocomp_hosting_create(e, &default_mgr) < 0) {
                iocomp_engine_destroy(e);
                default_mgr = NULL;
            }
        }
    }
    iocomp_host_io_completion_manager *m = default_mgr;
    pthread_mutex_unlock(&default_lock);
    return m;
}

/* From a callback of the default engine, iocomp_engine_destroy() refuses
 * at once with -EDEADLK (nothing changes), which the table maps to
 * HOST_E_INVALIDOPERATION: "not from this thread", the instance stays. */
IOCOMP_API HRESULT iocomp_hosting_shutdown(void) {
    pthread_mutex_lock(&default_lock);
    int r = 0;
    if (default_mgr) {
        r = iocomp_engine_destroy(E(default_mgr));
        if (r == 0) {
            iocomp_hosting_release(default_mgr);
            default_mgr = NULL;
        }
    }
    pthread_mutex_unlock(&default_lock);
    return HR(r);
}
