/*
 * hosting_create_port_fail: CreateIoCompletionPort sets *phPort to 0 when the
 * port could not be created (the method's page: "or 0 (zero), if the port
 * could not be created"; audit defect 11), whatever the failure:
 *   E_OUTOFMEMORY  every one of the engine's 65535 port slots in use;
 *   HOST_E_ABANDONED the engine is being destroyed (a destroy that timed out
 *                  on a blocked callback leaves it closed but alive);
 *   E_INVALIDARG   self NULL.
 * *phPort starts as a sentinel each time. A success after a failure gives a
 * working handle; nothing is left behind.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

#define SENTINEL ((HANDLE)(uintptr_t)0xdeadbeefu)

static atomic_int blocking, release_it;
static atomic_uint_fast64_t calls;

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)self, (void)err, (void)ov;
    if (bytes == 1) { /* the one that blocks destroy */
        atomic_store(&blocking, 1);
        CHECK(TEST_WAIT_UNTIL(atomic_load(&release_it), 20000));
    }
    atomic_fetch_add(&calls, 1);
    return S_OK;
}

int main(void) {
    test_begin("hosting_create_port_fail", 0);
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    static ICLRIoCompletionManager clr = {&clr_vtbl};

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 1;
    cfg.close_timeout_ms = 200;
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);

    /* E_OUTOFMEMORY: all 65535 slots in use (no default port here). */
    HANDLE h;
    enum { SLOTS = 65535 };
    HANDLE *ports = calloc(SLOTS, sizeof *ports);
    CHECK(ports != NULL);
    size_t n = 0;
    HRESULT hr;
    for (;;) {
        h = SENTINEL;
        hr = m->lpVtbl->CreateIoCompletionPort(m, &h);
        if (hr != S_OK)
            break;
        CHECK(h != NULL && h != SENTINEL);
        CHECK_MSG(n < SLOTS, "more than %d ports created", SLOTS);
        ports[n++] = h;
    }
    CHECK_EQU(hr, E_OUTOFMEMORY);
    CHECK_EQ(n, SLOTS);
    CHECK_MSG(h == NULL, "CreateIoCompletionPort failed with *phPort %p (want 0)", h);
    h = SENTINEL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &h), E_OUTOFMEMORY); /* again, same */
    CHECK(h == NULL);

    /* E_INVALIDARG: phPort NULL (nothing to write), self NULL (written 0). */
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, NULL), E_INVALIDARG);
    h = SENTINEL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(NULL, &h), E_INVALIDARG);
    CHECK(h == NULL);

    /* A freed slot: the next create works again and its handle is usable. */
    CHECK_EQU(m->lpVtbl->CloseIoCompletionPort(m, ports[n / 2]), S_OK);
    h = SENTINEL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &h), S_OK);
    CHECK(h != NULL && h != SENTINEL);
    ports[n / 2] = h;
    CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)h, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&calls, 1, 5000);
    for (size_t i = 1; i < n; i += 2)
        CHECK_EQU(m->lpVtbl->CloseIoCompletionPort(m, ports[i]), S_OK);

    /* HOST_E_ABANDONED: destroy timed out on a blocked callback; the engine
     * is closed but alive. */
    CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)ports[0], 0, 1, NULL, 0));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&blocking), 5000));
    CHECK_EQ(iocomp_engine_destroy(e), -ETIMEDOUT);
    h = SENTINEL;
    hr = m->lpVtbl->CreateIoCompletionPort(m, &h);
    CHECK_EQU(hr, HOST_E_ABANDONED);
    CHECK_MSG(h == NULL, "CreateIoCompletionPort failed with *phPort %p (want 0)", h);

    atomic_store(&release_it, 1);
    TEST_WAIT_COUNT(&calls, 2, 5000);
    iocomp_hosting_release(m);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&calls), 2);
    free(ports);
    test_end();
}
