/*
 * hosting_methods: the 11 IHostIoCompletionManager methods and OnComplete
 * through the table of iocomp_hosting_create(), in normal use and with each
 * documented error as its exact HRESULT; the -errno -> HRESULT, status ->
 * Win32 and status -> OnComplete HRESULT (S_OK, HOST_E_INTERRUPTED,
 * HRESULT_FROM_WIN32, E_FAIL) tables.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

/* ICLRIoCompletionManager implemented here; the table's object first. */
struct clr {
    ICLRIoCompletionManager vt;
    atomic_uint_fast64_t calls;
    atomic_uint_fast32_t last_err, last_bytes;
    _Atomic(void *) last_ov;
    _Atomic(void *) last_self;
    atomic_int last_tid;
    atomic_int block; /* OnComplete waits while set */
    atomic_uint_fast64_t entered;
};

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    struct clr *c = (struct clr *)self;
    atomic_fetch_add(&c->entered, 1);
    while (atomic_load(&c->block))
        test_sleep_us(200);
    atomic_store(&c->last_self, (void *)self);
    atomic_store(&c->last_err, err);
    atomic_store(&c->last_bytes, bytes);
    atomic_store(&c->last_ov, ov);
    atomic_store(&c->last_tid, (int)test_gettid());
    atomic_fetch_add(&c->calls, 1);
    return S_OK;
}

static atomic_int init_calls, init_fail;
static int init_cb(void *ctx, iocomp_overlapped *ov, void *ext, size_t n) {
    (void)ctx, (void)ov;
    memset(ext, 0x33, n);
    atomic_fetch_add(&init_calls, 1);
    return atomic_load(&init_fail);
}

#define HR(x) ((HRESULT)(x))
#define CHECK_HR(a, b) CHECK_EQU((uint32_t)(a), (uint32_t)(b))

static void post_expect(iocomp_engine *e, struct clr *c, HANDLE port, int32_t status,
                        uint32_t bytes, void *ov, DWORD want_err) {
    uint64_t n = atomic_load(&c->calls);
    CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, status, bytes, ov, 0));
    TEST_WAIT_COUNT(&c->calls, n + 1, 5000);
    CHECK_EQU(atomic_load(&c->last_err), want_err);
    CHECK_EQU(atomic_load(&c->last_bytes), bytes);
    CHECK(atomic_load(&c->last_ov) == ov);
    CHECK(atomic_load(&c->last_self) == (void *)c);
    CHECK(atomic_load(&c->last_tid) != test_gettid());
}

int main(void) {
    test_begin("hosting_methods", 0);

    /* ---- the mapping tables (the values the brief fixes) */
    CHECK_HR(iocomp_hresult_from_errno(0), S_OK);
    CHECK_HR(iocomp_hresult_from_errno(-EINVAL), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-EBADF), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-EEXIST), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-ENOENT), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-ERANGE), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-EBUSY), E_INVALIDARG);
    CHECK_HR(iocomp_hresult_from_errno(-ENOMEM), E_OUTOFMEMORY);
    CHECK_HR(iocomp_hresult_from_errno(-ETIMEDOUT), HOST_E_TIMEOUT);
    CHECK_HR(iocomp_hresult_from_errno(-ENOTCONN), HOST_E_CLRNOTAVAILABLE);
    CHECK_HR(iocomp_hresult_from_errno(-ESHUTDOWN), HOST_E_ABANDONED);
    CHECK_HR(iocomp_hresult_from_errno(-EINTR), HOST_E_INTERRUPTED);
    CHECK_HR(iocomp_hresult_from_errno(-EPERM), HOST_E_NOT_OWNER);
    CHECK_HR(iocomp_hresult_from_errno(-ENOSYS), E_NOTIMPL);
    CHECK_HR(iocomp_hresult_from_errno(-EOPNOTSUPP), E_NOTIMPL);
    CHECK_HR(iocomp_hresult_from_errno(-EIO), E_FAIL);
    CHECK_HR(iocomp_hresult_from_errno(-EDEADLK), HOST_E_INVALIDOPERATION); /* not from here (shutdown) */
    CHECK_HR(iocomp_hresult_from_errno(-EPIPE), E_FAIL);
    CHECK_HR(iocomp_hresult_from_errno(-4000), E_FAIL); /* unknown */
    CHECK_HR(iocomp_hresult_from_errno(INT_MIN), E_FAIL);
    CHECK_EQ(iocomp_win32_from_errno(0), 0);
    CHECK_EQ(iocomp_win32_from_errno(-ECANCELED), 995);
    CHECK(iocomp_win32_from_errno(-EIO) != 0);
    CHECK(iocomp_win32_from_errno(-4000) != 0);
    CHECK(iocomp_win32_from_errno(INT_MIN) != 0);
    /* OnComplete's dwErrorCode: an HRESULT (S_OK, HOST_E_INTERRUPTED,
     * HRESULT_FROM_WIN32 of the Win32 column, E_FAIL). */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(0), S_OK);
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(5), S_OK);
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-ECANCELED), HOST_E_INTERRUPTED);
    CHECK_HR(HOST_E_INTERRUPTED, 0x80131021u);
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-ECONNREFUSED), 0x800704C9u); /* 1225 */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-ECONNRESET), 0x80070040u);   /* 64 */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-EIO), 0x8007045Du);          /* 1117 */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-ESHUTDOWN), 0x800703E3u);    /* 995 */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-EINTR), 0x800704C7u);        /* 1223 */
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-EBADF), HRESULT_FROM_WIN32(6));
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(-4000), E_FAIL);
    CHECK_HR(iocomp_oncomplete_hresult_from_errno(INT_MIN), E_FAIL);
    CHECK_HR(HRESULT_FROM_WIN32(0), S_OK);
    CHECK_HR(HRESULT_FROM_WIN32(1225), 0x800704C9u);
    CHECK_EQU(iocomp_hosting_undelivered(NULL), 0);
    /* The real HRESULT values (hosting.h constants are the ABI). */
    CHECK_HR(E_INVALIDARG, 0x80070057u);
    CHECK_HR(E_OUTOFMEMORY, 0x8007000Eu);
    CHECK_HR(HOST_E_TIMEOUT, 0x80131024u);
    CHECK_HR(HOST_E_CLRNOTAVAILABLE, 0x80131023u);

    /* ---- a wrapped engine */
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 2;
    cfg.max_threads = 8;
    cfg.host_overlapped_size = 40;
    cfg.overlapped_init = init_cb;
    cfg.close_timeout_ms = 200;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    IHostIoCompletionManager *m = NULL;
    CHECK_EQ(iocomp_hosting_create(NULL, &m), -EINVAL);
    CHECK_EQ(iocomp_hosting_create(e, NULL), -EINVAL);
    CHECK_OK(iocomp_hosting_create(e, &m));
    CHECK(m != NULL);
    CHECK(iocomp_hosting_engine(m) == e);
    /* ---- the COM layout: lpVtbl first, a table of 14 entries (IUnknown's
     * three, then the 11 methods), none NULL. Their order against MSCorEE.h's
     * own declaration: hosting_cxx, which calls through a transcription of it. */
    CHECK((void *)m == (void *)&m->lpVtbl && m->lpVtbl != NULL);
    {
        void *const *slot = (void *const *)(const void *)m->lpVtbl;
        CHECK_EQU(sizeof(IHostIoCompletionManagerVtbl), 14 * sizeof(void *));
        for (size_t i = 0; i < 14; i++) CHECK_MSG(slot[i] != NULL, "vtable entry %zu is NULL", i);
    }
    /* ---- IUnknown: QueryInterface for IUnknown and the interface's IID (the
     * object, AddRef'd), E_NOINTERFACE for another, E_POINTER for no out;
     * AddRef/Release count */
    {
        void *out = (void *)1;
        CHECK_HR(m->lpVtbl->QueryInterface(m, &IID_IHostIoCompletionManager, &out), S_OK);
        CHECK(out == (void *)m);
        out = (void *)1;
        CHECK_HR(m->lpVtbl->QueryInterface(m, &IID_IUnknown, &out), S_OK);
        CHECK(out == (void *)m);
        out = (void *)1;
        CHECK_HR(m->lpVtbl->QueryInterface(m, &IID_ICLRIoCompletionManager, &out), E_NOINTERFACE);
        CHECK(out == NULL);
        CHECK_HR(m->lpVtbl->QueryInterface(m, &IID_IUnknown, NULL), E_POINTER);
        CHECK_EQU(m->lpVtbl->AddRef(m), 4); /* 1 (create) + 2 (QI) + 1 */
        CHECK_EQU(m->lpVtbl->Release(m), 3);
        CHECK_EQU(m->lpVtbl->Release(m), 2);
        CHECK_EQU(m->lpVtbl->Release(m), 1); /* the creator's reference is left */
        CHECK_EQU(IID_IHostIoCompletionManager.Data1, 0x8BDE9D80u);
        CHECK_EQU(IID_ICLRIoCompletionManager.Data1, 0x2D74CE86u);
    }

    /* ---- thread methods */
    DWORD d = 0xdead;
    CHECK_HR(m->lpVtbl->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, 2);
    CHECK_HR(m->lpVtbl->GetMaxThreads(m, &d), S_OK);
    CHECK_EQ(d, 8);
    CHECK_HR(m->lpVtbl->GetAvailableThreads(m, &d), S_OK);
    CHECK_EQ(d, 8);
    CHECK_HR(m->lpVtbl->SetMaxThreads(m, 0), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->SetMaxThreads(m, 1), E_INVALIDARG); /* below min */
    CHECK_HR(m->lpVtbl->SetMaxThreads(m, IOCOMP_THREADS_LIMIT + 1), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->GetMaxThreads(m, &d), S_OK);
    CHECK_EQ(d, 8);
    CHECK_HR(m->lpVtbl->SetMinThreads(m, 9), E_INVALIDARG); /* above max */
    CHECK_HR(m->lpVtbl->SetMinThreads(m, IOCOMP_THREADS_LIMIT + 1), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, 2);
    CHECK_HR(m->lpVtbl->SetMaxThreads(m, 6), S_OK);
    CHECK_HR(m->lpVtbl->SetMinThreads(m, 3), S_OK);
    CHECK_HR(m->lpVtbl->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, 3);
    CHECK_HR(m->lpVtbl->GetMaxThreads(m, &d), S_OK);
    CHECK_EQ(d, 6);
    uint32_t v;
    CHECK_OK(iocomp_get_min_threads(e, &v)); /* the same engine underneath */
    CHECK_EQ(v, 3);
    CHECK_HR(m->lpVtbl->GetMinThreads(m, NULL), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->GetMaxThreads(m, NULL), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->GetAvailableThreads(m, NULL), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->GetHostOverlappedSize(m, NULL), E_INVALIDARG);

    /* ---- GetHostOverlappedSize */
    CHECK_HR(m->lpVtbl->GetHostOverlappedSize(m, &d), S_OK);
    CHECK_EQ(d, 40);

    /* ---- no manager yet: posts are refused (HOST_E_CLRNOTAVAILABLE) */
    HANDLE port = NULL;
    CHECK_HR(m->lpVtbl->CreateIoCompletionPort(m, &port), S_OK);
    CHECK(port != NULL);
    CHECK_HR(m->lpVtbl->CreateIoCompletionPort(m, NULL), E_INVALIDARG);
    int rc = iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 0, NULL, 0);
    CHECK_EQ(rc, -ENOTCONN);
    CHECK_HR(iocomp_hresult_from_errno(rc), HOST_E_CLRNOTAVAILABLE);

    /* ---- SetCLRIoCompletionManager + OnComplete with HRESULTs (its page:
     * dwErrorCode is "an HRESULT value") */
    static struct clr c;
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    c.vt.lpVtbl = &clr_vtbl;
    /* A manager whose table lacks OnComplete, AddRef or Release: refused,
     * nothing held. */
    static const ICLRIoCompletionManagerVtbl bad_vtbl = TEST_CLR_VTBL(NULL);
    static ICLRIoCompletionManager bad = {&bad_vtbl}, no_table = {NULL};
    CHECK_HR(m->lpVtbl->SetCLRIoCompletionManager(m, &bad), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->SetCLRIoCompletionManager(m, &no_table), E_INVALIDARG);
    CHECK_EQ(atomic_load(&test_clr_refs), 0);
    CHECK_HR(m->lpVtbl->SetCLRIoCompletionManager(m, &c.vt), S_OK);
    CHECK_EQ(atomic_load(&test_clr_refs), 1); /* iocomp holds one reference */
    CHECK_HR(m->lpVtbl->SetCLRIoCompletionManager(m, &c.vt), S_OK);
    CHECK_EQ(atomic_load(&test_clr_refs), 1); /* still one: per manager, not per Set */
    post_expect(e, &c, port, 0, 512, (void *)(uintptr_t)0x1000, (DWORD)S_OK);
    post_expect(e, &c, port, -ECANCELED, 0, (void *)(uintptr_t)0x2000, (DWORD)HOST_E_INTERRUPTED);
    post_expect(e, &c, port, -EIO, 7, NULL, 0x8007045Du); /* HRESULT_FROM_WIN32(ERROR_IO_DEVICE) */
    post_expect(e, &c, port, -4000, 0, NULL, (DWORD)E_FAIL); /* unknown */
    post_expect(e, &c, NULL, 0, 1, (void *)(uintptr_t)0x3000, 0); /* default port */
    CHECK_EQ(atomic_load(&c.calls), 5);
    CHECK_EQU(iocomp_hosting_undelivered(m), 0);

    /* ---- InitializeHostOverlapped */
    size_t osz = iocomp_overlapped_size(e);
    unsigned char *buf = aligned_alloc(16, (osz + 16 + 15) / 16 * 16);
    CHECK(buf != NULL);
    memset(buf, 0xee, osz);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf), S_OK);
    CHECK_EQ(atomic_load(&init_calls), 1);
    CHECK_EQ(buf[IOCOMP_OVERLAPPED_HEADER_SIZE], 0x33);
    CHECK_EQ(buf[IOCOMP_OVERLAPPED_HEADER_SIZE + 39], 0x33);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, NULL), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf + 8), E_INVALIDARG);
    CHECK_EQ(atomic_load(&init_calls), 1);
    atomic_store(&init_fail, -ENOMEM);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf), E_OUTOFMEMORY);
    atomic_store(&init_fail, -EPERM);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf), HOST_E_NOT_OWNER);
    atomic_store(&init_fail, -EIO);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf), E_FAIL);
    atomic_store(&init_fail, 0);
    CHECK_HR(m->lpVtbl->InitializeHostOverlapped(m, buf), S_OK);
    free(buf);

    /* ---- Bind: the key is the descriptor number */
    int fds[2];
    CHECK_OK(pipe(fds));
    CHECK_HR(m->lpVtbl->Bind(m, port, (HANDLE)(intptr_t)fds[0]), S_OK);
    CHECK_HR(m->lpVtbl->Bind(m, port, (HANDLE)(intptr_t)fds[0]), E_INVALIDARG); /* twice */
    CHECK_HR(m->lpVtbl->Bind(m, NULL, (HANDLE)(intptr_t)fds[0]), E_INVALIDARG);  /* to two ports */
    CHECK_HR(m->lpVtbl->Bind(m, NULL, (HANDLE)(intptr_t)fds[1]), S_OK);         /* default port */
    CHECK_HR(m->lpVtbl->Bind(m, port, (HANDLE)(intptr_t)-1), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->Bind(m, port, (HANDLE)(intptr_t)(1 << 28)), E_INVALIDARG);
    CHECK_OK(iocomp_unbind(e, fds[0])); /* they were really bound */
    CHECK_OK(iocomp_unbind(e, fds[1]));

    /* ---- CloseIoCompletionPort: normal, twice, unknown, default */
    CHECK_HR(m->lpVtbl->CloseIoCompletionPort(m, port), S_OK);
    CHECK_HR(m->lpVtbl->CloseIoCompletionPort(m, port), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->Bind(m, port, (HANDLE)(intptr_t)fds[0]), E_INVALIDARG); /* closed port */
    CHECK_HR(m->lpVtbl->CloseIoCompletionPort(m, (HANDLE)(uintptr_t)0xdeadbeef12345ull), E_INVALIDARG);
    CHECK_HR(m->lpVtbl->CloseIoCompletionPort(m, NULL), E_INVALIDARG);

    /* ---- a stuck OnComplete: HOST_E_TIMEOUT, then everything delivered */
    HANDLE p2;
    CHECK_HR(m->lpVtbl->CreateIoCompletionPort(m, &p2), S_OK);
    atomic_store(&c.block, 1);
    uint64_t ent = atomic_load(&c.entered), calls = atomic_load(&c.calls);
    CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)p2, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&c.entered, ent + 1, 5000);
    CHECK_HR(m->lpVtbl->CloseIoCompletionPort(m, p2), HOST_E_TIMEOUT);
    rc = iocomp_post(e, (iocomp_port_t)(uintptr_t)p2, 0, 0, NULL, 0);
    CHECK(rc == -ESHUTDOWN || rc == -EBADF);
    atomic_store(&c.block, 0);
    TEST_WAIT_COUNT(&c.calls, calls + 1, 5000);

    /* ---- GetAvailableThreads while OnComplete runs */
    atomic_store(&c.block, 1);
    ent = atomic_load(&c.entered);
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&c.entered, ent + 2, 5000);
    CHECK_HR(m->lpVtbl->GetAvailableThreads(m, &d), S_OK);
    CHECK_EQ(d, 6 - 2);
    atomic_store(&c.block, 0);
    TEST_WAIT_COUNT(&c.calls, calls + 3, 5000);
    CHECK(TEST_WAIT_UNTIL((m->lpVtbl->GetAvailableThreads(m, &d), d == 6), 5000));

    /* ---- removing the manager: refused again */
    CHECK_HR(m->lpVtbl->SetCLRIoCompletionManager(m, NULL), S_OK);
    rc = iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0);
    CHECK_EQ(rc, -ENOTCONN);

    /* Removed, the manager is still referenced (a completion could still be
     * inside it); the object's last Release drops it. */
    CHECK_EQ(atomic_load(&test_clr_refs), 1);
    iocomp_hosting_release(m);
    CHECK_EQ(atomic_load(&test_clr_refs), 0);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&c.calls), calls + 3);
    CHECK_OK(close(fds[0]));
    CHECK_OK(close(fds[1]));
    test_end();
}
