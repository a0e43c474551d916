/*
 * hosting_shutdown_race: a callback (OnComplete) of the default instance that
 * calls iocomp_hosting_default() and iocomp_hosting_shutdown() while the main
 * thread is inside iocomp_hosting_shutdown() gets both answers at once, and
 * the main thread's shutdown returns S_OK well before the close deadline.
 *
 * Before the fix, shutdown held the default instance's lock while it
 * destroyed the engine: the callback blocked on that lock in
 * iocomp_hosting_default(), the destroy waited for the callback until the
 * default close deadline (30 s) and shutdown returned HOST_E_TIMEOUT.
 *
 * Nothing special is configured: the instance is the default one (30 s close
 * deadline). The callback waits until the main thread is about to shut down,
 * then until the engine shows it (CreateIoCompletionPort: HOST_E_ABANDONED),
 * then calls, and must see, each within 2 s:
 *   iocomp_hosting_default()  == the instance being shut down (alive until
 *                                its callbacks, this one included, return);
 *   iocomp_hosting_shutdown() == HOST_E_INVALIDOPERATION (the table's code
 *                                for -EDEADLK: not from this thread).
 * The main thread's shutdown: S_OK in under 10 s, every accepted packet
 * delivered before it returns. After it a new default instance works and
 * shuts down, and nothing is left behind (test_end).
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

#define RACE_KEY 1u  /* bytes of the packet whose callback races the shutdown */
#define PLAIN_KEY 2u /* bytes of the others */
#define QUEUED 100   /* plain packets queued behind the racing one */
#define CALL_LIMIT_NS 2000000000ull     /* each call from the callback: at once (< 2 s) */
#define SHUTDOWN_LIMIT_NS 10000000000ull /* the main shutdown: well before the 30 s deadline */

static atomic_uint_fast64_t calls;
static atomic_int cb_entered;      /* the racing callback is running */
static atomic_int main_shutting;   /* the main thread is about to call shutdown */
static atomic_int cb_saw_abandoned; /* CreateIoCompletionPort said HOST_E_ABANDONED */
static _Atomic(IHostIoCompletionManager *) cb_default;
static _Atomic HRESULT cb_shutdown_hr = 1;
static atomic_uint_fast64_t cb_default_ns, cb_shutdown_ns;
static atomic_int cb_done;

static void race(void) {
    atomic_store(&cb_entered, 1);
    /* Wait until the main thread calls shutdown... */
    if (!TEST_WAIT_UNTIL(atomic_load(&main_shutting) == 1, 10000))
        return; /* main checks cb_done */
    /* ... and until the engine is closing: shutdown is inside the destroy. */
    IHostIoCompletionManager *m = atomic_load(&cb_default); /* set by main */
    uint64_t until = test_now_ns() + 10000000000ull;
    while (test_now_ns() < until) {
        HANDLE p = NULL;
        HRESULT hr = m->lpVtbl->CreateIoCompletionPort(m, &p);
        if (hr == HOST_E_ABANDONED) {
            atomic_store(&cb_saw_abandoned, 1);
            break;
        }
        if (hr == S_OK)
            (void)m->lpVtbl->CloseIoCompletionPort(m, p); /* may race the destroy's own close */
        test_sleep_us(200);
    }
    uint64_t t0 = test_now_ns();
    IHostIoCompletionManager *d = iocomp_hosting_default();
    uint64_t t1 = test_now_ns();
    HRESULT hr = iocomp_hosting_shutdown();
    uint64_t t2 = test_now_ns();
    atomic_store(&cb_default, d);
    atomic_store(&cb_shutdown_hr, hr);
    atomic_store(&cb_default_ns, t1 - t0);
    atomic_store(&cb_shutdown_ns, t2 - t1);
    atomic_store(&cb_done, 1);
}

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)self, (void)err, (void)ov;
    if (bytes == RACE_KEY)
        race();
    atomic_fetch_add(&calls, 1);
    return S_OK;
}

int main(void) {
    test_begin("hosting_shutdown_race", 0); /* watchdog: ctest TIMEOUT less 3 s, above 30 s */
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    static ICLRIoCompletionManager clr = {&clr_vtbl};

    IHostIoCompletionManager *m = iocomp_hosting_default();
    CHECK(m != NULL);
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);
    iocomp_engine *e = iocomp_hosting_engine(m);
    CHECK(e != NULL);
    atomic_store(&cb_default, m);

    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, RACE_KEY, NULL, 0));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&cb_entered) == 1, 10000));
    for (int i = 0; i < QUEUED; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, PLAIN_KEY, NULL, 0));

    atomic_store(&main_shutting, 1);
    uint64_t t0 = test_now_ns();
    HRESULT hr = iocomp_hosting_shutdown();
    uint64_t took = test_now_ns() - t0;
    CHECK_MSG(hr == S_OK && took < SHUTDOWN_LIMIT_NS,
              "shutdown while a callback calls default()/shutdown(): 0x%08x after %.3f s "
              "(want S_OK = 0x%08x in < %.0f s; HOST_E_TIMEOUT = 0x%08x)",
              (unsigned)hr, (double)took / 1e9, (unsigned)S_OK, (double)SHUTDOWN_LIMIT_NS / 1e9,
              (unsigned)HOST_E_TIMEOUT);
    CHECK_EQ(atomic_load(&calls), 1 + QUEUED); /* everything delivered before it returned */

    /* What the callback saw, while shutdown was in progress. */
    CHECK(atomic_load(&cb_done) == 1);
    CHECK(atomic_load(&cb_saw_abandoned) == 1);
    CHECK_MSG(atomic_load(&cb_default) == m,
              "iocomp_hosting_default() from the callback: %p (want the instance being shut "
              "down, %p)",
              (void *)atomic_load(&cb_default), (void *)m);
    HRESULT cb_hr = atomic_load(&cb_shutdown_hr);
    CHECK_MSG(cb_hr == HOST_E_INVALIDOPERATION,
              "iocomp_hosting_shutdown() from the callback: 0x%08x (want 0x%08x)",
              (unsigned)cb_hr, (unsigned)HOST_E_INVALIDOPERATION);
    CHECK_EQU(iocomp_hresult_from_errno(-EDEADLK), HOST_E_INVALIDOPERATION); /* the one table */
    CHECK_MSG(atomic_load(&cb_default_ns) < CALL_LIMIT_NS, "default() took %.3f s",
              (double)atomic_load(&cb_default_ns) / 1e9);
    CHECK_MSG(atomic_load(&cb_shutdown_ns) < CALL_LIMIT_NS, "shutdown() took %.3f s",
              (double)atomic_load(&cb_shutdown_ns) / 1e9);

    /* No instance now; a later call creates a new one, which works. */
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    IHostIoCompletionManager *m2 = iocomp_hosting_default();
    CHECK(m2 != NULL);
    CHECK(iocomp_hosting_default() == m2);
    CHECK_EQU(m2->lpVtbl->SetCLRIoCompletionManager(m2, &clr), S_OK);
    CHECK_OK(iocomp_post(iocomp_hosting_engine(m2), IOCOMP_DEFAULT_PORT, 0, PLAIN_KEY, NULL, 0));
    TEST_WAIT_COUNT(&calls, 2 + QUEUED, 10000);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&calls), 2 + QUEUED);
    test_end();
}
