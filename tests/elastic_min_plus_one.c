/*
 * elastic_min_plus_one: invariant 4 (live <= max) and the set_max contract
 * ("raising max lets the pool grow"): with min = max = 2, three callbacks
 * that block leave the third packet waiting - no thread is started past max
 * however long the other two block (checked for 200 ms). set_max(3) then
 * lets the monitor inject a third thread, since both workers are blocked and
 * work waits: the third callback starts within 2 s. After the release each
 * packet ran exactly once.
 */
#include "test.h"

#define N 3

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_uint entered;
static struct test_once once;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    atomic_fetch_add(&entered, 1);
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    test_once_hit(&once, key);
}

int main(void) {
    test_begin("elastic_min_plus_one", 0);
    test_once_init(&once, N);
    iocomp_engine *e = test_engine(2, 2, cb, NULL);
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 2, 2000));

    for (uintptr_t i = 0; i < N; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, i));
    TEST_WAIT_COUNT(&entered, 2, 2000);

    /* ~200 ms: the third has not started, the pool stays at max. */
    uint64_t end = test_now_ns() + 200000000u;
    while (test_now_ns() < end) {
        iocomp_stats s = test_stats(e);
        CHECK_MSG(atomic_load(&entered) == 2, "callback %u started with max = 2",
                  atomic_load(&entered));
        CHECK_MSG(s.threads_live <= 2, "threads_live %u with max = 2", s.threads_live);
        test_sleep_us(1000);
    }
    iocomp_stats s = test_stats(e);
    CHECK_EQ(s.threads_started, 2);
    CHECK_EQ(s.injections, 0);
    CHECK_EQ(atomic_load(&once.total), 0);

    /* One more allowed: both workers are blocked, work waits. */
    CHECK_OK(iocomp_set_max_threads(e, 3));
    uint32_t v = 0;
    CHECK_OK(iocomp_get_max_threads(e, &v));
    CHECK_EQ(v, 3);
    uint64_t t0 = test_now_ns();
    bool third = TEST_WAIT_UNTIL(atomic_load(&entered) == 3, 2000);
    s = test_stats(e);
    CHECK_MSG(third, "the third callback did not start within 2 s of set_max(3): threads_live %u, "
              "started %" PRIu64 ", injections %" PRIu64 " (blocked %" PRIu64 ")",
              s.threads_live, s.threads_started, s.injections, s.blocked_injections);
    printf("elastic_min_plus_one: third callback %.3f ms after set_max(3)\n",
           (test_now_ns() - t0) / 1e6);
    CHECK(s.threads_live <= 3);
    /* The counters are bumped after pthread_create() returns, so the new
     * thread's callback may be seen first: give them a moment. */
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_started == 3 &&
                              test_stats(e).blocked_injections >= 1, 2000));
    s = test_stats(e);
    CHECK_EQ(s.threads_started, 3);
    CHECK_EQ(s.threads_live, 3);
    CHECK(s.blocked_injections >= 1);

    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    TEST_WAIT_COUNT(&once.total, N, 5000);
    CHECK_EQ(atomic_load(&entered), N);
    CHECK(test_stats(e).threads_live <= 3);

    CHECK_OK(iocomp_engine_destroy(e));
    test_once_check(&once, "elastic_min_plus_one");
    test_once_free(&once);
    test_end();
}
