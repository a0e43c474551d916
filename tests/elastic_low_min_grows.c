/*
 * elastic_low_min_grows: the scaling requirement "the pool grows toward the
 * concurrency target (up to max) when work queues up", without any callback
 * blocking (src/core/scale.c: work waiting for two samples in a row with
 * runnable < concurrency starts a thread): a host that set min = 1 with
 * concurrency = 2 still gets 2 workers under a steady backlog.
 *
 * min = 1, max = 2, concurrency = 2. A host thread keeps a backlog of
 * callbacks that compute for 50 us each (CPU-bound: not "blocked") for
 * 300 ms (and up to 2 s more if the pool has not grown yet, so a slow
 * machine does not fail it). The pool reaches 2 live workers, never more;
 * stats.injections >= 1 (blocked_injections may be 0); every packet runs
 * exactly once.
 */
#include "test.h"

#define BACKLOG 32
#define MAXN 2000000u

static atomic_uint_fast64_t done;
static struct test_once once;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    uint64_t end = test_now_ns() + 50000u; /* spin 50 us */
    while (test_now_ns() < end) {
    }
    test_once_hit(&once, key);
    atomic_fetch_add(&done, 1);
}

int main(void) {
    test_begin("elastic_low_min_grows", 0);
    test_once_init(&once, MAXN);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 2;
    cfg.concurrency = 2;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 2000));
    iocomp_stats s0 = test_stats(e);
    CHECK_EQ(s0.injections, 0);

    uint64_t n = 0, t0 = test_now_ns(), grown_at = 0;
    uint64_t end = t0 + 300000000u, hard_end = t0 + 2300000000u;
    uint32_t most = 0;
    for (;;) {
        uint64_t now = test_now_ns();
        if (now >= hard_end || (now >= end && most >= 2))
            break;
        /* Keep BACKLOG packets queued: work waits all the time. */
        while (n - atomic_load(&done) < BACKLOG && n < MAXN) {
            CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, (uintptr_t)n));
            n++;
        }
        iocomp_stats s = test_stats(e);
        CHECK_MSG(s.threads_live <= 2, "threads_live %u with max = 2", s.threads_live);
        if (s.threads_live > most) {
            most = s.threads_live;
            if (most == 2)
                grown_at = test_now_ns();
        }
        test_sleep_us(100);
    }
    iocomp_stats s = test_stats(e);
    CHECK_MSG(most == 2,
              "the pool did not grow to 2 under a steady backlog of CPU-bound callbacks in %.0f ms: "
              "threads_live %u, started %" PRIu64 ", injections %" PRIu64 " (blocked %" PRIu64
              "), %" PRIu64 " packets",
              (test_now_ns() - t0) / 1e6, s.threads_live, s.threads_started, s.injections,
              s.blocked_injections, n);
    /* live rises before pthread_create(), started and injections after it
     * returns: let them catch up. */
    TEST_WAIT_UNTIL(test_stats(e).threads_started == 2 && test_stats(e).injections >= 1, 2000);
    s = test_stats(e);
    CHECK_MSG(s.injections >= 1, "grew to 2 but injections %" PRIu64, s.injections);
    CHECK_EQ(s.threads_started, 2);
    printf("elastic_low_min_grows: 2 workers after %.3f ms, %" PRIu64 " packets, injections %"
           PRIu64 " (blocked %" PRIu64 ")\n",
           (grown_at - t0) / 1e6, n, s.injections, s.blocked_injections);

    TEST_WAIT_COUNT(&done, n, 10000);
    CHECK_OK(iocomp_engine_destroy(e));
    once.n = n; /* only [0, n) were posted */
    test_once_check(&once, "elastic_low_min_grows");
    test_once_free(&once);
    test_end();
}
