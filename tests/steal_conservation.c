/*
 * steal_conservation: invariant 3 (stealing conserves) and the brief's "a
 * worker stuck in a callback must not strand what its queue holds". One
 * callback on one worker fans out 1M packets into its own local queue (sized
 * to hold them all, so nothing reaches the inject queue) and then stays busy
 * until another worker has run some of them: those can only have been stolen.
 * Every packet runs exactly once, stats.steals > 0.
 */
#include "test.h"

#define SEED_KEY UINTPTR_MAX

static iocomp_engine *eng;
static struct test_once once;
static uint64_t fan;
static atomic_int seed_tid;
static atomic_uint_fast64_t by_seed_worker, by_others, post_fail;
static atomic_int stranded; /* the seed waited 10 s and nobody stole */

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    int tid = (int)test_gettid();
    if (key == SEED_KEY) {
        atomic_store(&seed_tid, tid);
        for (uint64_t id = 0; id < fan; id++)
            if (iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, (uint32_t)id, NULL, id) != 0)
                atomic_fetch_add(&post_fail, 1);
        /* Stay busy: the rest of the pool has to take work from our queue. */
        if (!TEST_WAIT_UNTIL(atomic_load(&by_others) >= fan / 100 + 1, 10000))
            atomic_store(&stranded, 1);
        return;
    }
    if (tid == atomic_load(&seed_tid))
        atomic_fetch_add(&by_seed_worker, 1);
    else
        atomic_fetch_add(&by_others, 1);
    test_once_hit(&once, key);
}

int main(void) {
    test_begin("steal_conservation", 0);
    fan = test_scaled_min(1000000, 20000);
    uint32_t cap = 16;
    while (cap <= fan + 16)
        cap <<= 1;
    test_once_init(&once, fan);

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 2;
    cfg.max_threads = 2;
    cfg.local_queue_capacity = cap;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    eng = e;

    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, SEED_KEY));
    TEST_WAIT_COUNT(&once.total, fan, 40000);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&post_fail), 0);
    CHECK_MSG(!atomic_load(&stranded), "the seed worker's queue was not stolen from in 10 s "
                                       "(others ran %" PRIu64 ")", (uint64_t)atomic_load(&by_others));
    test_once_check(&once, "steal_conservation");
    CHECK_EQ(atomic_load(&by_seed_worker) + atomic_load(&by_others), fan);
    CHECK(atomic_load(&by_others) > 0);

    iocomp_stats s = test_stats(e);
    printf("steal_conservation: %" PRIu64 " packets; seed worker ran %" PRIu64 ", others %" PRIu64
           "; steals %" PRIu64 ", stolen %" PRIu64 ", overflows %" PRIu64 "\n",
           fan, (uint64_t)atomic_load(&by_seed_worker), (uint64_t)atomic_load(&by_others),
           s.steals, s.stolen, s.overflows);
    CHECK(s.steals > 0);
    CHECK(s.stolen >= s.steals);
    CHECK(s.stolen <= fan);
    CHECK_EQ(s.completions, fan + 1);
    CHECK_EQ(s.posts_local + s.posts_remote, fan + 1);

    CHECK_OK(iocomp_engine_destroy(e));
    test_once_free(&once);
    test_end();
}
