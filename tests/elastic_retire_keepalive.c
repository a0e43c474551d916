/*
 * elastic_retire_keepalive: invariant 4 (live never below min) and park.c P4
 * (keep-alive): a worker above min_threads that stays parked keep_alive_ms
 * exits, the pool shrinks back to exactly min and never below it, and a
 * steady load does not churn threads (wake-ups go to the most recently
 * parked worker, so the ones at the bottom of the idle stack time out and
 * no new thread is started).
 *
 * min = 1, max = 4, keep_alive_ms = 300, concurrency = 1 (so only blocked
 * callbacks grow the pool; the low-min growth path is elastic_low_min_grows).
 *  1. Four blocking callbacks grow the pool to 4; release them. Sampled every
 *     1 ms: threads_live >= 1 always, == 1 within 3 s, threads_retired + 3.
 *  2. A trickle (one short callback every 1 ms for 1 s) on the pool back at
 *     min: threads_started does not move.
 *  3. Grow to 4 again, release, and trickle at once for 1 s: the three extra
 *     workers still time out (live back to 1 within 3 s, retired + 3) and no
 *     thread is started while they do.
 */
#include "test.h"

#define MAX 4
#define KEY_BLOCK UINTPTR_MAX

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_uint entered;
static atomic_uint_fast64_t blocked_done;
static atomic_uint_fast64_t trickled;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key != KEY_BLOCK) {
        atomic_fetch_add(&trickled, 1);
        return;
    }
    atomic_fetch_add(&entered, 1);
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    atomic_fetch_add(&blocked_done, 1);
}

static void gate_set(bool open) {
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    if (open)
        pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static void check_not_below_min(iocomp_engine *e, const char *when) {
    iocomp_stats s = test_stats(e);
    CHECK_MSG(s.threads_live >= 1, "%s: threads_live %u below min 1 (retired %" PRIu64 ")", when,
              s.threads_live, s.threads_retired);
    CHECK_MSG(s.threads_live <= MAX, "%s: threads_live %u above max %d", when, s.threads_live,
              MAX);
}

/* Blocks MAX callbacks (the pool grows to MAX), then releases them. */
static void grow_and_release(iocomp_engine *e) {
    atomic_store(&entered, 0);
    atomic_store(&blocked_done, 0);
    gate_set(false);
    for (int i = 0; i < MAX; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_BLOCK));
    bool grown = TEST_WAIT_UNTIL(atomic_load(&entered) == MAX, 2000);
    iocomp_stats s = test_stats(e);
    CHECK_MSG(grown, "%u of %d blocking callbacks running after 2 s: threads_live %u, started %" PRIu64,
              atomic_load(&entered), MAX, s.threads_live, s.threads_started);
    CHECK_EQ(s.threads_live, MAX);
    gate_set(true);
    TEST_WAIT_COUNT(&blocked_done, MAX, 2000);
}

/* One post every 1 ms for 1 s; checks live in [min, max] at each. */
static uint64_t trickle(iocomp_engine *e) {
    uint64_t n = 0, end = test_now_ns() + 1000000000u;
    while (test_now_ns() < end) {
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, (uintptr_t)n));
        n++;
        check_not_below_min(e, "trickle");
        test_sleep_us(1000);
    }
    return n;
}

/* Samples every 1 ms until live == 1 and retired == want_retired (3 s). */
static void wait_back_to_min(iocomp_engine *e, uint64_t want_retired, const char *when) {
    uint64_t t0 = test_now_ns(), end = t0 + 3000000000u;
    iocomp_stats s;
    for (;;) {
        check_not_below_min(e, when);
        s = test_stats(e);
        if (s.threads_live == 1 && s.threads_retired >= want_retired)
            break;
        CHECK_MSG(test_now_ns() < end,
                  "%s: not back to min within 3 s (keep_alive 300 ms): threads_live %u, "
                  "parked %u, retired %" PRIu64 " (want %" PRIu64 ")",
                  when, s.threads_live, s.threads_parked, s.threads_retired, want_retired);
        test_sleep_us(1000);
    }
    CHECK_EQ(s.threads_retired, want_retired);
    printf("elastic_retire_keepalive: %s: back to min after %.1f ms\n", when,
           (test_now_ns() - t0) / 1e6);
}

int main(void) {
    test_begin("elastic_retire_keepalive", 0);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = MAX;
    cfg.concurrency = 1;
    cfg.keep_alive_ms = 300;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 2000));

    /* 1. Grow, release, shrink back to min and not below. */
    iocomp_stats s0 = test_stats(e);
    grow_and_release(e);
    wait_back_to_min(e, s0.threads_retired + MAX - 1, "after release");
    /* And it stays at min (the last worker never times out). */
    uint64_t end = test_now_ns() + 400000000u;
    while (test_now_ns() < end) {
        CHECK_EQ(test_stats(e).threads_live, 1);
        test_sleep_us(1000);
    }

    /* 2. Steady trickle at min: no thread started. */
    iocomp_stats s1 = test_stats(e);
    uint64_t n = trickle(e);
    TEST_WAIT_COUNT(&trickled, n, 5000);
    iocomp_stats s2 = test_stats(e);
    CHECK_MSG(s2.threads_started == s1.threads_started,
              "a 1-per-ms trickle of short callbacks started %" PRIu64 " threads (injections %"
              PRIu64 " -> %" PRIu64 ", blocked %" PRIu64 " -> %" PRIu64 ")",
              s2.threads_started - s1.threads_started, s1.injections, s2.injections,
              s1.blocked_injections, s2.blocked_injections);

    /* 3. Grow again, release, trickle while the extras time out. */
    grow_and_release(e);
    iocomp_stats s3 = test_stats(e);
    uint64_t m = trickle(e);
    TEST_WAIT_COUNT(&trickled, n + m, 5000);
    iocomp_stats s4 = test_stats(e);
    CHECK_MSG(s4.threads_started == s3.threads_started,
              "threads were started (%" PRIu64 ") while a trickle ran on a pool that had grown "
              "to %d: churn (retired %" PRIu64 " -> %" PRIu64 ")",
              s4.threads_started - s3.threads_started, MAX, s3.threads_retired,
              s4.threads_retired);
    wait_back_to_min(e, s2.threads_retired + MAX - 1, "after trickle on a grown pool");

    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
