/*
 * elastic_set_minmax_storm: invariant 4 (min <= live <= max, min <= max) and
 * the thread-limit contract "any thread, concurrently with each other and
 * with scaling", plus invariant 1 (exactly once) while the pool resizes.
 *
 * For 1 s: 16 threads call set_min / set_max with random values in [1, 16]
 * (each call returns 0, or -EINVAL when it would cross the other bound);
 * 4 poster threads post packets, some of whose callbacks block 1-3 ms, so
 * the monitor is injecting threads and workers are retiring meanwhile; a
 * sampler checks every 1 ms that 1 <= threads_live <= 16 (max never exceeds
 * 16 and the pool only grows below max) and that min <= max (two reads of
 * each that agree, since the getters are separate calls). Then min = 1,
 * max = 2 explicitly: the getters return exactly that, every packet ran
 * exactly once, and threads_live reaches <= 2 within 3 s.
 */
#include "test.h"

#define SETTERS 16
#define POSTERS 4
#define VMAX 16u
#define CAP 200000u /* ids per poster */

static iocomp_engine *eng;
static atomic_int stop_storm;
static atomic_int stop_sampler;
static struct test_once once;
static uint64_t posted[POSTERS];
static atomic_uint_fast64_t sets_ok, sets_einval, samples;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)ov;
    if (bytes)
        test_sleep_us(bytes);
    test_once_hit(&once, key);
}

static void *setter(void *arg) {
    uint64_t rng = 0x9E3779B97F4A7C15ull * ((uintptr_t)arg + 1);
    while (!atomic_load(&stop_storm)) {
        uint64_t r = test_rand(&rng);
        uint32_t v = 1 + (uint32_t)((r >> 8) % VMAX);
        int rc = (r & 1) ? iocomp_set_min_threads(eng, v) : iocomp_set_max_threads(eng, v);
        CHECK_MSG(rc == 0 || rc == -EINVAL, "set_%s(%u) returned %d (%s)", (r & 1) ? "min" : "max",
                  v, rc, test_errname(rc));
        atomic_fetch_add(rc == 0 ? &sets_ok : &sets_einval, 1);
        if ((r >> 40) % 4 == 0)
            sched_yield();
    }
    return NULL;
}

static void *poster(void *arg) {
    uintptr_t p = (uintptr_t)arg;
    uint64_t rng = 0xD1B54A32D192ED03ull ^ (p + 1), n = 0;
    while (!atomic_load(&stop_storm) && n < CAP) {
        uint64_t r = test_rand(&rng);
        /* One packet in 32 blocks for 1-3 ms (carried in bytes). */
        uint32_t us = (r % 32 == 0) ? 1000u + (uint32_t)((r >> 16) % 2001u) : 0u;
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, us, NULL, p * CAP + n));
        n++;
        test_sleep_us(100);
    }
    posted[p] = n;
    return NULL;
}

static void *sampler(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_sampler)) {
        iocomp_stats s = test_stats(eng);
        CHECK_MSG(s.threads_live >= 1 && s.threads_live <= VMAX &&
                      s.threads_live <= IOCOMP_THREADS_LIMIT,
                  "threads_live %u outside [1, %u]", s.threads_live, VMAX);
        uint32_t m1, M1, m2, M2;
        CHECK_OK(iocomp_get_min_threads(eng, &m1));
        CHECK_OK(iocomp_get_max_threads(eng, &M1));
        CHECK_OK(iocomp_get_min_threads(eng, &m2));
        CHECK_OK(iocomp_get_max_threads(eng, &M2));
        CHECK(m1 >= 1 && m1 <= VMAX && M1 >= 1 && M1 <= VMAX);
        CHECK(m2 >= 1 && m2 <= VMAX && M2 >= 1 && M2 <= VMAX);
        /* min did not change around the read of max: both held at once. */
        if (m1 == m2)
            CHECK_MSG(m1 <= M1, "min %u > max %u", m1, M1);
        if (M1 == M2)
            CHECK_MSG(m2 <= M2, "min %u > max %u", m2, M2);
        atomic_fetch_add(&samples, 1);
        test_sleep_us(1000);
    }
    return NULL;
}

int main(void) {
    test_begin("elastic_set_minmax_storm", 0);
    test_once_init(&once, (size_t)POSTERS * CAP);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 4;
    cfg.keep_alive_ms = 50; /* so retirement happens during the storm too */
    cfg.on_complete = cb;
    CHECK_OK(iocomp_engine_create(&cfg, &eng));

    pthread_t st[SETTERS], pt[POSTERS], sm;
    sm = test_thread(sampler, NULL);
    for (uintptr_t i = 0; i < POSTERS; i++)
        pt[i] = test_thread(poster, (void *)i);
    for (uintptr_t i = 0; i < SETTERS; i++)
        st[i] = test_thread(setter, (void *)i);
    test_sleep_us(1000000);
    atomic_store(&stop_storm, 1);
    for (int i = 0; i < SETTERS; i++)
        test_join(st[i]);
    for (int i = 0; i < POSTERS; i++)
        test_join(pt[i]);

    /* Quiescent: min <= max exactly. */
    uint32_t mn, mx;
    CHECK_OK(iocomp_get_min_threads(eng, &mn));
    CHECK_OK(iocomp_get_max_threads(eng, &mx));
    CHECK_MSG(mn >= 1 && mn <= mx && mx <= VMAX, "after the storm: min %u, max %u", mn, mx);

    CHECK_OK(iocomp_set_min_threads(eng, 1));
    CHECK_OK(iocomp_set_max_threads(eng, 2));
    CHECK_OK(iocomp_get_min_threads(eng, &mn));
    CHECK_OK(iocomp_get_max_threads(eng, &mx));
    CHECK_EQ(mn, 1);
    CHECK_EQ(mx, 2);

    uint64_t total = 0;
    for (int i = 0; i < POSTERS; i++)
        total += posted[i];
    TEST_WAIT_COUNT(&once.total, total, 10000);
    bool shrunk = TEST_WAIT_UNTIL(test_stats(eng).threads_live <= 2, 3000);
    iocomp_stats s = test_stats(eng);
    CHECK_MSG(shrunk, "threads_live %u after 3 s with max = 2 (parked %u, busy %u, retired %" PRIu64
              ")", s.threads_live, s.threads_parked, s.threads_busy, s.threads_retired);
    atomic_store(&stop_sampler, 1);
    test_join(sm);

    /* Exactly once: ids [p*CAP, p*CAP + posted[p]) once each, the rest never. */
    CHECK_EQ(atomic_load(&once.dups), 0);
    CHECK_EQ(atomic_load(&once.wild), 0);
    for (int p = 0; p < POSTERS; p++)
        for (uint64_t i = 0; i < CAP; i++) {
            unsigned v = atomic_load(&once.seen[p * CAP + i]);
            CHECK_MSG(v == (i < posted[p] ? 1u : 0u), "poster %d packet %" PRIu64 " (of %" PRIu64
                      ") ran %u times", p, i, posted[p], v);
        }
    CHECK_EQ(atomic_load(&once.total), total);
    printf("elastic_set_minmax_storm: %" PRIu64 " packets, %" PRIu64 " sets ok, %" PRIu64
           " -EINVAL, %" PRIu64 " samples; started %" PRIu64 ", retired %" PRIu64
           ", injections %" PRIu64 " (blocked %" PRIu64 ")\n",
           total, (uint64_t)atomic_load(&sets_ok), (uint64_t)atomic_load(&sets_einval),
           (uint64_t)atomic_load(&samples), s.threads_started, s.threads_retired, s.injections,
           s.blocked_injections);
    CHECK_OK(iocomp_engine_destroy(eng));
    test_once_free(&once);
    test_end();
}
