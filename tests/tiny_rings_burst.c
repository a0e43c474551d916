/*
 * tiny_rings_burst: backpressure without loss (BRIEF §2 "a full ring means
 * backpressure, never a drop", §5 "tiny rings with bursts"). Queues of 16
 * packets (the minimum), bursts from 4 outside threads into a full inject
 * queue (overflow list) and bursts of 64 reposts from callbacks into a full
 * local queue: every packet runs exactly once and stats.overflows > 0.
 */
#include "test.h"

#define POSTERS 4
#define FAN 64
#define FAN_BIT ((uintptr_t)1 << 62)

static iocomp_engine *eng;
static struct test_once once;
static uint64_t per_poster, fan_parents;
static atomic_uint_fast64_t post_fail;

/* ids: [0, POSTERS*per_poster) outside posts; then fan_parents*FAN children */
static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    uint64_t id = key & ~FAN_BIT;
    test_once_hit(&once, id);
    if (key & FAN_BIT)
        return;
    /* a slow-ish callback, so the outside posters outrun the workers */
    uint64_t end = test_now_ns() + 300;
    while (test_now_ns() < end) {
    }
    if (id < fan_parents) {
        uint64_t base = POSTERS * per_poster + id * FAN;
        for (uint64_t k = 0; k < FAN; k++)
            if (iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, FAN_BIT | (base + k)) != 0)
                atomic_fetch_add(&post_fail, 1);
    }
}

static void *poster(void *arg) {
    uint64_t first = (uintptr_t)arg * per_poster;
    for (uint64_t id = first; id < first + per_poster; id++)
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, id));
    return NULL;
}

int main(void) {
    test_begin("tiny_rings_burst", 0);
    per_poster = test_scaled_min(100000, 5000);
    fan_parents = per_poster / 4;
    uint64_t total = POSTERS * per_poster + fan_parents * FAN;
    test_once_init(&once, total);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 2;
    cfg.max_threads = 2;
    cfg.local_queue_capacity = 16;
    cfg.inject_queue_capacity = 16;
    cfg.on_complete = cb;
    CHECK_OK(iocomp_engine_create(&cfg, &eng));

    pthread_t t[POSTERS];
    for (uintptr_t i = 0; i < POSTERS; i++)
        t[i] = test_thread(poster, (void *)i);
    for (int i = 0; i < POSTERS; i++)
        test_join(t[i]);
    TEST_WAIT_COUNT(&once.total, total, 40000);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&post_fail), 0);
    test_once_check(&once, "tiny_rings_burst");
    iocomp_stats s = test_stats(eng);
    printf("tiny_rings_burst: %" PRIu64 " packets, overflows %" PRIu64 ", steals %" PRIu64 "\n", total,
           s.overflows, s.steals);
    CHECK(s.overflows > 0);
    CHECK_EQ(s.completions, total);
    CHECK_OK(iocomp_engine_destroy(eng));
    test_once_free(&once);
    test_end();
}
