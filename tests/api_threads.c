/*
 * api_threads: Get/Set Min/Max/Available threads (invariant 4, thread count
 * within [min, max]). Refused sets change nothing; available = max - busy and
 * never negative; raising min starts threads before returning; lowering max
 * retires the excess once idle; 16 threads changing min/max at once keep the
 * pool in bounds and leave one of the requested values.
 */
#include "test.h"

#define BLOCK_KEY 0xb10cu

static atomic_int release_flag;
static atomic_uint_fast64_t entered, done;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key == BLOCK_KEY) {
        atomic_fetch_add(&entered, 1);
        while (!atomic_load(&release_flag))
            test_sleep_us(200);
    }
    atomic_fetch_add(&done, 1);
}

static uint32_t get_min(iocomp_engine *e) {
    uint32_t v = 0xdead;
    CHECK_OK(iocomp_get_min_threads(e, &v));
    return v;
}
static uint32_t get_max(iocomp_engine *e) {
    uint32_t v = 0xdead;
    CHECK_OK(iocomp_get_max_threads(e, &v));
    return v;
}
static uint32_t get_avail(iocomp_engine *e) {
    uint32_t v = 0xdead;
    CHECK_OK(iocomp_get_available_threads(e, &v));
    return v;
}

/* ---- the concurrent storm -------------------------------------------------------- */

#define STORM_THREADS 16
#define STORM_MIN_TOP 8  /* set_min values in [1, 8] */
#define STORM_MAX_TOP 16 /* set_max values in [1, 16] */

static iocomp_engine *storm_e;
static atomic_uint_fast32_t min_ok_mask, max_ok_mask; /* bit v: v was set successfully */
static atomic_int storm_stop;
static atomic_uint_fast64_t storm_samples;
static uint64_t storm_iters;

static void *storm_setter(void *arg) {
    uint64_t seed = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    for (uint64_t i = 0; i < storm_iters; i++) {
        uint64_t r = test_rand(&seed);
        if (r & 1) {
            uint32_t v = 1 + (uint32_t)((r >> 8) % STORM_MIN_TOP);
            int rc = iocomp_set_min_threads(storm_e, v);
            CHECK_MSG(rc == 0 || rc == -EINVAL, "set_min(%u) = %d", v, rc);
            if (rc == 0)
                atomic_fetch_or(&min_ok_mask, 1u << v);
        } else {
            uint32_t v = 1 + (uint32_t)((r >> 8) % STORM_MAX_TOP);
            int rc = iocomp_set_max_threads(storm_e, v);
            CHECK_MSG(rc == 0 || rc == -EINVAL, "set_max(%u) = %d", v, rc);
            if (rc == 0)
                atomic_fetch_or(&max_ok_mask, 1u << v);
        }
        if (i % 16 == 0) /* and some work for the pool meanwhile */
            CHECK_OK(iocomp_post(storm_e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1));
    }
    return NULL;
}

static void *storm_sampler(void *arg) {
    (void)arg;
    while (!atomic_load(&storm_stop)) {
        iocomp_stats s = test_stats(storm_e);
        /* Never more than the largest max anyone asked for (16), and within the
         * hard range in any case. */
        CHECK_MSG(s.threads_live <= STORM_MAX_TOP, "threads_live %u", s.threads_live);
        CHECK(s.threads_live <= IOCOMP_THREADS_LIMIT);
        CHECK(s.threads_busy <= STORM_MAX_TOP);
        uint32_t a = get_avail(storm_e);
        CHECK_MSG(a <= STORM_MAX_TOP, "available %u", a);
        atomic_fetch_add(&storm_samples, 1);
        sched_yield();
    }
    return NULL;
}

int main(void) {
    test_begin("api_threads", 0);
    int base_threads = test_start_baseline_.threads;
    iocomp_engine *e = test_engine(1, 8, cb, NULL);

    /* ---- refused sets change nothing */
    CHECK_EQ(get_min(e), 1);
    CHECK_EQ(get_max(e), 8);
    CHECK_EQ(iocomp_set_min_threads(e, 9), -EINVAL); /* above max */
    CHECK_EQ(get_min(e), 1);
    CHECK_EQ(iocomp_set_max_threads(e, 0), -EINVAL);
    CHECK_EQ(get_max(e), 8);
    CHECK_OK(iocomp_set_min_threads(e, 3));
    CHECK_EQ(iocomp_set_max_threads(e, 2), -EINVAL); /* below min */
    CHECK_EQ(get_max(e), 8);
    CHECK_EQ(get_min(e), 3);
    CHECK_EQ(iocomp_set_max_threads(e, IOCOMP_THREADS_LIMIT + 1), -ERANGE);
    CHECK_EQ(iocomp_set_max_threads(e, UINT32_MAX), -ERANGE);
    CHECK_EQ(get_max(e), 8);
    CHECK_OK(iocomp_set_max_threads(e, IOCOMP_THREADS_LIMIT));
    CHECK_EQ(get_max(e), IOCOMP_THREADS_LIMIT);
    {
        /* Above the cap and above max at once: either documented error. */
        int rc = iocomp_set_min_threads(e, IOCOMP_THREADS_LIMIT + 1);
        CHECK_MSG(rc == -ERANGE || rc == -EINVAL, "set_min(LIMIT+1) = %d", rc);
        CHECK_EQ(get_min(e), 3);
    }
    CHECK_OK(iocomp_set_max_threads(e, 8));
    CHECK_OK(iocomp_set_min_threads(e, 8)); /* min == max is fine */
    CHECK_EQ(get_min(e), 8);
    CHECK_OK(iocomp_set_min_threads(e, 3));
    CHECK_EQ(iocomp_get_min_threads(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_get_max_threads(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_get_available_threads(e, NULL), -EINVAL);

    /* ---- available = max - busy */
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live >= 3, 2000));
    CHECK_EQ(get_avail(e), 8);
    for (int i = 0; i < 3; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, BLOCK_KEY));
    TEST_WAIT_COUNT(&entered, 3, 5000);
    CHECK_EQ(get_avail(e), 8 - 3);
    CHECK_EQ(test_stats(e).threads_busy, 3);
    /* Never negative: max below busy gives 0. */
    CHECK_OK(iocomp_set_min_threads(e, 1));
    CHECK_OK(iocomp_set_max_threads(e, 2));
    CHECK_EQ(get_avail(e), 0);
    CHECK(test_stats(e).threads_live >= 3); /* busy threads are not taken away */
    atomic_store(&release_flag, 1);
    TEST_WAIT_COUNT(&done, 3, 5000);
    CHECK_MSG(TEST_WAIT_UNTIL(get_avail(e) == 2, 5000), "available %u, want 2", get_avail(e));

    /* ---- lowering max retired the excess once idle */
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live <= 2, 10000), "threads_live %u > max 2",
              test_stats(e).threads_live);
    /* (a worker leaves threads_live before it exits and counts as retired) */
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_retired >= 1, 5000));
    CHECK(test_stats(e).threads_live >= 1);

    /* ---- raising min starts threads before returning */
    CHECK_OK(iocomp_set_max_threads(e, 8));
    uint64_t started0 = test_stats(e).threads_started;
    uint32_t live0 = test_stats(e).threads_live;
    CHECK_OK(iocomp_set_min_threads(e, 6));
    /* pthread_create has returned for each: the tasks exist now. */
    CHECK_MSG(test_count_threads() >= base_threads + 6, "tasks %d, baseline %d",
              test_count_threads(), base_threads);
    CHECK(test_stats(e).threads_started >= started0 + (6 - live0));
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live >= 6, 2000), "threads_live %u < min 6",
              test_stats(e).threads_live);
    CHECK(test_stats(e).threads_live <= 8);

    /* ---- lowering max (after min) retires down to it */
    uint64_t retired0 = test_stats(e).threads_retired;
    CHECK_OK(iocomp_set_min_threads(e, 2));
    CHECK_OK(iocomp_set_max_threads(e, 2));
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live == 2, 10000), "threads_live %u, want 2",
              test_stats(e).threads_live);
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_retired >= retired0 + 4, 5000),
              "threads_retired %" PRIu64 ", want >= %" PRIu64, test_stats(e).threads_retired,
              retired0 + 4);
    /* The pool still delivers. */
    uint64_t d0 = atomic_load(&done);
    for (int i = 0; i < 100; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&done, d0 + 100, 5000);

    /* ---- 16 threads set min and max at once */
    CHECK_OK(iocomp_set_min_threads(e, 1));
    CHECK_OK(iocomp_set_max_threads(e, 8));
    atomic_store(&min_ok_mask, 1u << 1);
    atomic_store(&max_ok_mask, 1u << 8);
    storm_e = e;
    storm_iters = test_scaled_min(400, 40);
    pthread_t sampler = test_thread(storm_sampler, NULL);
    pthread_t setters[STORM_THREADS];
    for (uintptr_t i = 0; i < STORM_THREADS; i++)
        setters[i] = test_thread(storm_setter, (void *)i);
    for (int i = 0; i < STORM_THREADS; i++)
        test_join(setters[i]);
    atomic_store(&storm_stop, 1);
    test_join(sampler);
    CHECK(atomic_load(&storm_samples) > 0);

    uint32_t fmin = get_min(e), fmax = get_max(e);
    CHECK_MSG(fmin <= STORM_MIN_TOP && (atomic_load(&min_ok_mask) >> fmin & 1),
              "final min %u was never set (mask 0x%x)", fmin, (unsigned)atomic_load(&min_ok_mask));
    CHECK_MSG(fmax <= STORM_MAX_TOP && (atomic_load(&max_ok_mask) >> fmax & 1),
              "final max %u was never set (mask 0x%x)", fmax, (unsigned)atomic_load(&max_ok_mask));
    CHECK_MSG(fmin <= fmax, "final min %u > max %u", fmin, fmax);
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live >= fmin &&
                                  test_stats(e).threads_live <= fmax,
                              10000),
              "threads_live %u not in [%u, %u]", test_stats(e).threads_live, fmin, fmax);

    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
