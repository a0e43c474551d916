/*
 * fault_thread: invariant 8 for thread creation failure (BRIEF §5). With
 * IOCOMP_FAULT_THREAD armed at N: engine create (min = max = 3) returns
 * -EAGAIN and leaves no thread behind while N is within its thread starts;
 * set_min returns -EAGAIN and leaves min as it was (threads started before
 * the failure stay, within max), and a later set_min succeeds.
 */
#include "test.h"

#include <iocomp/testing.h>

static atomic_uint_fast64_t calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add(&calls, 1);
}

static uint64_t injected(void) { return iocomp_fault_injected(IOCOMP_FAULT_THREAD); }

int main(void) {
    test_begin("fault_thread", 0);
    struct test_baseline b = test_baseline_take();

    /* ---- engine create */
    uint64_t n;
    for (n = 1; n < 64; n++) {
        iocomp_config cfg;
        iocomp_config_init(&cfg);
        cfg.min_threads = 3;
        cfg.max_threads = 3;
        cfg.on_complete = cb;
        iocomp_fault_arm(IOCOMP_FAULT_THREAD, n);
        iocomp_engine *e = NULL;
        int rc = iocomp_engine_create(&cfg, &e);
        uint64_t inj = injected();
        if (rc == -EAGAIN) {
            CHECK_EQ(inj, 1);
            iocomp_fault_arm(IOCOMP_FAULT_THREAD, 0);
            test_baseline_check(&b); /* no thread left behind */
            continue;
        }
        CHECK_EQ(rc, 0);
        CHECK_MSG(inj == 0, "N=%" PRIu64 ": create returned 0 with a thread start failed", n);
        iocomp_fault_arm(IOCOMP_FAULT_THREAD, 0);
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
        CHECK_OK(iocomp_engine_destroy(e));
        break;
    }
    CHECK_MSG(n >= 4, "create succeeded with thread start %" PRIu64 " failing; min is 3", n);
    CHECK_EQ(atomic_load(&calls), 1);
    test_baseline_check(&b);

    /* ---- set_min: -EAGAIN, min unchanged, the pool keeps what it started */
    iocomp_engine *e = test_engine(1, 8, cb, NULL);
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 2000));
    uint64_t fails0 = test_stats(e).thread_start_failures;
    iocomp_fault_arm(IOCOMP_FAULT_THREAD, 2); /* the second of three starts fails */
    CHECK_EQ(iocomp_set_min_threads(e, 4), -EAGAIN);
    CHECK_EQ(injected(), 1);
    iocomp_fault_arm(IOCOMP_FAULT_THREAD, 0);
    uint32_t v;
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, 1); /* refused: min as it was */
    iocomp_stats s = test_stats(e);
    CHECK(s.thread_start_failures >= fails0 + 1);
    CHECK_EQ(s.threads_live, 2); /* the one it had and the one that started */
    /* Without the fault, the same call succeeds and min threads run. */
    CHECK_OK(iocomp_set_min_threads(e, 4));
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, 4);
    CHECK(test_stats(e).threads_live >= 4);
    CHECK_OK(iocomp_set_min_threads(e, 1));
    /* A set_min that fails on its first start leaves only what there was. */
    uint32_t live0 = test_stats(e).threads_live;
    iocomp_fault_arm(IOCOMP_FAULT_THREAD, 1);
    CHECK_EQ(iocomp_set_min_threads(e, live0 + 2), -EAGAIN);
    iocomp_fault_arm(IOCOMP_FAULT_THREAD, 0);
    CHECK_EQ(test_stats(e).threads_live, live0);
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, 1);

    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
