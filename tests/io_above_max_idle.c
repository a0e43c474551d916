/*
 * io_above_max_idle: an engine left above max by set_max_threads() sleeps
 * while the workers that cannot retire wait for I/O (audit defect 2). On
 * io_uring a worker whose ring holds requests refuses to retire until they
 * complete; it used to come straight back from park (live > max) and burn
 * 0.4-2 cores on an idle engine.
 *
 * min = max = 2, a recv with no data on each of four socket pairs (host
 * hand-offs go round robin, so both workers' rings hold some), then
 * set_min(1), set_max(1): over 500 ms of idleness the process uses less
 * than 100 ms of CPU (the idle engine used 200-1000 ms before). Then the
 * data comes: every recv completes once, and the pool shrinks to 1.
 */
#include "test.h"

#include <sys/resource.h>

#define NPAIRS 4

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
}

static uint64_t cpu_ns(void) {
    struct rusage ru;
    CHECK_OK(getrusage(RUSAGE_SELF, &ru));
    return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

int main(void) {
    test_begin("io_above_max_idle", 0);
    iocomp_config cfg = test_config(2, 2, cb, NULL);
    cfg.keep_alive_ms = 100;
    iocomp_engine *e = test_io_engine(&cfg);
    int sv[NPAIRS][2];
    iocomp_overlapped *ov[NPAIRS];
    char buf[NPAIRS][8];
    for (int i = 0; i < NPAIRS; i++) {
        test_socketpair(sv[i]);
        CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[i][0], (uintptr_t)i));
        ov[i] = test_io_ov(e, (uint64_t)i);
        test_io_arm(ov[i]);
        CHECK_OK(test_io_settle(ov[i], iocomp_recv(e, sv[i][0], buf[i], sizeof buf[i], 0, ov[i])));
    }
    test_sleep_us(50000); /* the hand-offs reach their rings */
    CHECK_OK(iocomp_set_min_threads(e, 1));
    CHECK_OK(iocomp_set_max_threads(e, 1));
    test_sleep_us(50000); /* workers that can retire do */
    uint64_t c0 = cpu_ns(), t0 = test_now_ns();
    test_sleep_us(500000);
    uint64_t used = cpu_ns() - c0, wall = test_now_ns() - t0;
    iocomp_stats s = test_stats(e);
    printf("idle above max: %u live, %.1f ms CPU in %.1f ms\n", s.threads_live, used / 1e6, wall / 1e6);
    CHECK_MSG(used < wall / 5, "the idle engine used %.1f ms of CPU in %.1f ms (%u workers live, max 1)",
              used / 1e6, wall / 1e6, s.threads_live);
    for (int i = 0; i < NPAIRS; i++)
        CHECK_EQ(send(sv[i][1], "x", 1, 0), 1);
    for (int i = 0; i < NPAIRS; i++) {
        struct test_io *t = test_io_wait(ov[i], 1, 3000);
        CHECK_EQ(atomic_load(&t->status), 0);
        CHECK_EQ(atomic_load(&t->bytes), 1);
    }
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 3000), "threads_live %u after the I/O completed",
              test_stats(e).threads_live);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(e));
    for (int i = 0; i < NPAIRS; i++) {
        iocomp_overlapped_free(ov[i]);
        CHECK_OK(close(sv[i][0]));
        CHECK_OK(close(sv[i][1]));
    }
    test_end();
}
