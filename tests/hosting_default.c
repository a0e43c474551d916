/*
 * hosting_default: iocomp_hosting_default() / iocomp_hosting_shutdown(). The
 * first call races safely (8 threads get one instance), the instance is a
 * default engine (min = usable CPUs) that works through the table, shutdown
 * destroys it and leaves no thread or descriptor behind, and a later call
 * creates a new one.
 */
#include "test.h"

#include <iocomp/hosting.h>

#define RACERS 8
static pthread_barrier_t start;
static iocomp_host_io_completion_manager *got[RACERS];

static void *racer(void *arg) {
    uintptr_t i = (uintptr_t)arg;
    pthread_barrier_wait(&start);
    got[i] = iocomp_hosting_default();
    return NULL;
}

static atomic_uint_fast64_t completions;
static HRESULT on_complete(iocomp_clr_io_completion_manager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)self, (void)err, (void)bytes, (void)ov;
    atomic_fetch_add(&completions, 1);
    return S_OK;
}

static void use(iocomp_host_io_completion_manager *m) {
    static iocomp_clr_io_completion_manager clr = {on_complete};
    DWORD d = 0;
    CHECK_EQU(m->GetMinThreads(m, &d), S_OK);
    CHECK_EQ(d, iocomp_usable_cpus());
    CHECK_EQU(m->GetHostOverlappedSize(m, &d), S_OK);
    CHECK_EQ(d, 0);
    CHECK_EQU(m->SetCLRIoCompletionManager(m, &clr), S_OK);
    HANDLE port;
    CHECK_EQU(m->CreateIoCompletionPort(m, &port), S_OK);
    iocomp_engine *e = iocomp_hosting_engine(m);
    CHECK(e != NULL);
    uint64_t n = atomic_load(&completions);
    for (int i = 0; i < 100; i++)
        CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 0, NULL, 0));
    CHECK_EQU(m->CloseIoCompletionPort(m, port), S_OK);
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
    iocomp_host_io_completion_manager *m2 = iocomp_hosting_default();
    CHECK(m2 != NULL);
    CHECK(iocomp_hosting_default() == m2);
    use(m2);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&completions), 202);
    CHECK_OK(pthread_barrier_destroy(&start));
    test_end();
}
