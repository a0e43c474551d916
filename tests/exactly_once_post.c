/*
 * exactly_once_post: invariant 1 and 2 for posts from outside threads.
 * 4 posting threads x 2.5M packets (divided by IOCOMP_TEST_SCALE) into an
 * engine with 2 workers; every packet carries its id in the key and values
 * derived from it in status / bytes / ov. A per-packet atomic byte must end at
 * exactly 1: no duplicate, no loss, no packet mangled.
 */
#include "test.h"

#define POSTERS 4

static struct test_once once;
static atomic_uint_fast64_t mangled;
static iocomp_engine *eng;
static uint64_t per_poster;
static pthread_barrier_t go;

static int32_t status_of(uint64_t id) { return -(int32_t)(id % 4096); }
static uint32_t bytes_of(uint64_t id) { return (uint32_t)(id * 2654435761u); }
static iocomp_overlapped *ov_of(uint64_t id) { return (iocomp_overlapped *)(uintptr_t)((id + 1) << 4); }

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (status != status_of(key) || bytes != bytes_of(key) || ov != ov_of(key))
        atomic_fetch_add(&mangled, 1);
    test_once_hit(&once, key);
}

static void *poster(void *arg) {
    uint64_t first = (uintptr_t)arg * per_poster;
    pthread_barrier_wait(&go);
    for (uint64_t id = first; id < first + per_poster; id++) {
        int rc = iocomp_post(eng, IOCOMP_DEFAULT_PORT, status_of(id), bytes_of(id), ov_of(id), id);
        CHECK_MSG(rc == 0, "post of %" PRIu64 " = %d", id, rc);
    }
    return NULL;
}

int main(void) {
    test_begin("exactly_once_post", 0);
    per_poster = test_scaled_min(2500000, 10000);
    uint64_t total = per_poster * POSTERS;
    test_once_init(&once, total);
    eng = test_engine(2, 2, cb, NULL);
    CHECK_OK(pthread_barrier_init(&go, NULL, POSTERS + 1));

    pthread_t t[POSTERS];
    for (uintptr_t i = 0; i < POSTERS; i++)
        t[i] = test_thread(poster, (void *)i);
    uint64_t t0 = test_now_ns();
    pthread_barrier_wait(&go);
    for (int i = 0; i < POSTERS; i++)
        test_join(t[i]);
    uint64_t t1 = test_now_ns();
    TEST_WAIT_COUNT(&once.total, total, 40000);
    uint64_t t2 = test_now_ns();
    /* Nothing more arrives (no duplicate after the last). */
    test_sleep_us(20000);
    test_once_check(&once, "exactly_once_post");
    CHECK_EQ(atomic_load(&mangled), 0);

    iocomp_stats s = test_stats(eng);
    CHECK_EQ(s.completions, total);
    CHECK_EQ(s.posts_remote, total);
    CHECK_EQ(s.posts_local, 0);
    printf("exactly_once_post: %" PRIu64 " packets, posted in %.3f s, delivered in %.3f s "
           "(%.2f M/s); inject batches %" PRIu64 ", overflows %" PRIu64 ", steals %" PRIu64 "\n",
           total, (t1 - t0) / 1e9, (t2 - t0) / 1e9, total / ((t2 - t0) / 1e3), s.inject_batches,
           s.overflows, s.steals);

    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&once.total), total);
    CHECK_OK(pthread_barrier_destroy(&go));
    test_once_free(&once);
    test_end();
}
