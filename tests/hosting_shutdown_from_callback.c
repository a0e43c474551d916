/*
 * hosting_shutdown_from_callback: iocomp_hosting_shutdown() called from an
 * OnComplete of the default instance returns HOST_E_INVALIDOPERATION ("not
 * from this thread"), not E_FAIL, whose documented meaning is that the
 * runtime is unusable (audit defect 14). Nothing changes: the same instance
 * is still the default, still creates ports and delivers completions (also
 * a second refused shutdown from a callback), and a shutdown from the main
 * thread later succeeds, delivers what is queued and leaves nothing behind.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

#define SHUTDOWN_KEY 1u

static atomic_uint_fast64_t calls;
static _Atomic HRESULT shutdown_hr = 1;
static _Atomic(IHostIoCompletionManager *) default_seen;

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)self, (void)err, (void)ov;
    if (bytes == SHUTDOWN_KEY) {
        atomic_store(&shutdown_hr, iocomp_hosting_shutdown());
        atomic_store(&default_seen, iocomp_hosting_default());
    }
    atomic_fetch_add(&calls, 1);
    return S_OK;
}

static void shutdown_from_callback(IHostIoCompletionManager *m, uint64_t n) {
    atomic_store(&shutdown_hr, 1);
    atomic_store(&default_seen, NULL);
    CHECK_OK(iocomp_post(iocomp_hosting_engine(m), IOCOMP_DEFAULT_PORT, 0, SHUTDOWN_KEY, NULL, 0));
    TEST_WAIT_COUNT(&calls, n, 10000);
    HRESULT hr = atomic_load(&shutdown_hr);
    CHECK_MSG(hr == HOST_E_INVALIDOPERATION, "shutdown from a callback: 0x%08x (want 0x%08x)",
              (unsigned)hr, (unsigned)HOST_E_INVALIDOPERATION);
    CHECK(atomic_load(&default_seen) == m);
}

int main(void) {
    test_begin("hosting_shutdown_from_callback", 0);
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    static ICLRIoCompletionManager clr = {&clr_vtbl};

    IHostIoCompletionManager *m = iocomp_hosting_default();
    CHECK(m != NULL);
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);
    shutdown_from_callback(m, 1);
    /* The code is the table's, for the C API's -EDEADLK (its real value). */
    CHECK_EQU(HOST_E_INVALIDOPERATION, (HRESULT)0x80131022u);
    CHECK_EQU(iocomp_hresult_from_errno(-EDEADLK), HOST_E_INVALIDOPERATION);

    /* The instance still works. */
    CHECK(iocomp_hosting_default() == m);
    HANDLE port = NULL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &port), S_OK);
    CHECK(port != NULL);
    iocomp_engine *e = iocomp_hosting_engine(m);
    for (int i = 0; i < 100; i++)
        CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 2, NULL, 0));
    TEST_WAIT_COUNT(&calls, 101, 10000);
    DWORD d = 0;
    CHECK_EQU(m->lpVtbl->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, iocomp_usable_cpus());
    CHECK_EQU(m->lpVtbl->CloseIoCompletionPort(m, port), S_OK);

    shutdown_from_callback(m, 102); /* refused again, the same way */

    /* From the main thread: succeeds, delivers the queued packet first. */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 2, NULL, 0));
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&calls), 103);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK); /* no instance: nothing to do */
    test_end();
}
