/*
 * hosting_reinstall_race: an OnComplete that reports "runtime gone" (E_FAIL)
 * while SetCLRIoCompletionManager re-installs that very manager. The page:
 * a later SetCLRIoCompletionManager with a manager (the same one too)
 * delivers again. Here the re-install happens while the failing call is
 * still inside OnComplete (it waits on a gate), so the install is "later"
 * than what the failing call read: after it, completions must be delivered.
 * Before install_gen, the failing call's compare-and-swap (clr == this
 * manager -> GONE) still matched and switched the re-installed manager off:
 * the next completion was counted undelivered. Found by review.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

static atomic_int gate_wait, entered, fail_next;
static atomic_uint_fast64_t calls;

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes, void *ov) {
    (void)self, (void)err, (void)bytes, (void)ov;
    atomic_fetch_add(&entered, 1);
    while (atomic_load(&gate_wait)) test_sleep_us(100);
    atomic_fetch_add(&calls, 1);
    return atomic_exchange(&fail_next, 0) ? E_FAIL : S_OK;
}

int main(void) {
    test_begin("hosting_reinstall_race", IOCOMP_TEST_TIMEOUT);
    iocomp_engine *e = test_engine(2, 2, NULL, NULL);
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    static const ICLRIoCompletionManagerVtbl vt = TEST_CLR_VTBL(on_complete);
    static ICLRIoCompletionManager clr = {&vt};
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);

    for (int round = 0; round < 3; round++) {
        /* One completion that will say E_FAIL, held inside OnComplete. */
        atomic_store(&gate_wait, 1);
        atomic_store(&fail_next, 1);
        int before = atomic_load(&entered);
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
        CHECK(TEST_WAIT_UNTIL(atomic_load(&entered) == before + 1, 5000));
        /* The host re-installs the same manager now, then the call fails. */
        CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr), S_OK);
        uint64_t c = atomic_load(&calls);
        atomic_store(&gate_wait, 0);
        TEST_WAIT_COUNT(&calls, c + 1, 5000);
        /* Wait for that callback to have returned (its E_FAIL handled: the
         * trampoline is the engine's callback, counted busy until it ends). */
        CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_busy == 0, 5000));
        uint64_t undelivered = iocomp_hosting_undelivered(m);
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
        TEST_WAIT_COUNT(&calls, c + 2, 5000);
        CHECK_EQ(iocomp_hosting_undelivered(m), undelivered);
        CHECK_EQ(undelivered, 0);
    }
    CHECK_OK(iocomp_engine_destroy(e));
    iocomp_hosting_release(m);
    CHECK_EQ(atomic_load(&test_clr_refs), 0);
    test_end();
}
