/*
 * elastic_lower_min: lowering min lets idle workers time out (audit defect
 * 9). Workers that parked while live <= min sleep with no timeout; set_min
 * used not to wake them, so after min 4 -> 1 all four stayed forever.
 *
 * min = max = 4, keep_alive_ms = 100, idle; set_min(1); within 1.5 s
 * threads_live == 1 and threads_retired == 3; a post still runs.
 */
#include "test.h"

static atomic_uint_fast64_t calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add(&calls, 1);
}

int main(void) {
    test_begin("elastic_lower_min", 0);
    iocomp_config cfg = test_config(4, 4, cb, NULL);
    cfg.keep_alive_ms = 100;
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&calls, 1, 2000);
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 4 && test_stats(e).threads_parked == 4, 2000));
    test_sleep_us(300000); /* all parked past a keep-alive: without a timeout */
    uint64_t retired0 = test_stats(e).threads_retired;
    CHECK_OK(iocomp_set_min_threads(e, 1));
    bool shrunk = TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 1500);
    iocomp_stats s = test_stats(e);
    CHECK_MSG(shrunk, "1.5 s after set_min(1): threads_live %u, retired %" PRIu64, s.threads_live,
              s.threads_retired - retired0);
    CHECK_EQ(s.threads_retired - retired0, 3);
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&calls, 2, 2000);
    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
