/*
 * hosting_default: iocomp_hosting_default() / iocomp_hosting_shutdown(). The
 * first call races safely (8 threads get one instance), the instance is a
 * default engine (min = usable CPUs) that works through the table, shutdown
 * destroys it and leaves no thread or descriptor behind, and a later call
 * creates a new one. COM references: a freed instance releases the manager
 * it installed; a host reference held across the shutdown keeps the object
 * valid (methods HOST_E_ABANDONED) until the host's last Release.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

#define RACERS 8
static pthread_barrier_t start;
static IHostIoCompletionManager *got[RACERS];

static void *racer(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    pthread_barrier_wait(&start);
    got[i] = iocomp_hosting_default();
    return NULL;
}

static atomic_uint_fast64_t completions;
static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)self, (void)err, (void)bytes, (void)ov;
    atomic_fetch_add(&completions, 1);
    return S_OK;
}

static void use(IHostIoCompletionManager *m) {
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    static ICLRIoCompletionManager clr = {&clr_vtbl};
    DWORD d = 0;
    CHECK_EQU(m->lpVtbl->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, iocomp_usable_cpus());
    CHECK_EQU(m->lpVtbl->GetHostOverlappedSize(m, &d), S_OK);
    CHECK_EQ(d, 0);
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);
    HANDLE port;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &port), S_OK);
    iocomp_engine *e = iocomp_hosting_engine(m);
    CHECK(e != NULL);
    uint64_t n = atomic_load(&completions);
    for (int i = 0; i < 100; i++)
        CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 0, NULL, 0));
    CHECK_EQU(m->lpVtbl->CloseIoCompletionPort(m, port), S_OK);
    CHECK_EQ(atomic_load(&completions), n + 100);
    /* one left queued on the default port for shutdown to deliver */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
}

int main(void) {
    test_begin("hosting_default", 0);
    CHECK_OK(pthread_barrier_init(&start, NULL, RACERS));
    pthread_t t[RACERS];
    for (uintptr_t i = 0; i < RACERS; i++)
        t[i] = test_thread(racer, (void *)i);
    for (int i = 0; i < RACERS; i++)
        test_join(t[i]);
    CHECK(got[0] != NULL);
    for (int i = 1; i < RACERS; i++)
        CHECK_MSG(got[i] == got[0], "racer %d got %p, racer 0 got %p", i, (void *)got[i],
                  (void *)got[0]);
    CHECK(iocomp_hosting_default() == got[0]);
    CHECK(iocomp_hosting_engine(got[0]) != NULL);
    CHECK(test_count_threads() >= test_start_baseline_.threads + (int)iocomp_usable_cpus());

    use(got[0]);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&completions), 101); /* shutdown delivered the queued one */
    test_baseline_check(&test_start_baseline_);

    /* A later call creates a new instance, which works and shuts down. */
    IHostIoCompletionManager *m2 = iocomp_hosting_default();
    CHECK(m2 != NULL);
    CHECK(iocomp_hosting_default() == m2);
    use(m2);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&completions), 202);
    CHECK_EQ(atomic_load(&test_clr_refs), 0); /* each freed instance released its manager */

    /* A host that holds a reference of its own across the shutdown: the
     * object stays valid, its methods say HOST_E_ABANDONED, its engine is
     * gone, and the host's last Release frees it (and releases the manager). */
    IHostIoCompletionManager *m3 = iocomp_hosting_default();
    CHECK(m3 != NULL);
    CHECK_EQU(m3->lpVtbl->AddRef(m3), 2);
    use(m3);
    CHECK_EQ(atomic_load(&test_clr_refs), 1);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&completions), 303);
    CHECK(iocomp_hosting_engine(m3) == NULL);
    DWORD d = 0;
    HANDLE port = (HANDLE)1;
    CHECK_EQU(m3->lpVtbl->GetMinThreads(m3, &d), HOST_E_ABANDONED);
    CHECK_EQU(m3->lpVtbl->CreateIoCompletionPort(m3, &port), HOST_E_ABANDONED);
    CHECK(port == NULL);
    CHECK_EQ(atomic_load(&test_clr_refs), 1);
    CHECK_EQU(m3->lpVtbl->Release(m3), 0);
    CHECK_EQ(atomic_load(&test_clr_refs), 0);
    test_baseline_check(&test_start_baseline_);
    CHECK_OK(pthread_barrier_destroy(&start));
    test_end();
}
