/*
 * exactly_once_repost: invariants 1 and 7 for posts made from inside
 * callbacks. (a) 1000 chains of 1000 links, each callback posting the next
 * link of its chain, every link counted exactly once; (b) one callback that
 * resubmits itself 100,000 times, seen in order, exactly 100,000 times.
 */
#include "test.h"

#define SELF_BIT ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 1))
#define SELF_RUNS 100000u

static iocomp_engine *eng;
static struct test_once once;
static uint64_t chains, len;
static atomic_uint_fast64_t mangled, repost_fail;
static atomic_uint_fast64_t self_runs, self_out_of_order;
static iocomp_overlapped *self_token = (iocomp_overlapped *)(uintptr_t)0x5e1f0;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key & SELF_BIT) {
        /* (b): one packet resubmitting itself; bytes is its run number. */
        uint64_t run = atomic_fetch_add(&self_runs, 1);
        if (bytes != run || ov != self_token || status != 7)
            atomic_fetch_add(&self_out_of_order, 1);
        if (bytes + 1 < SELF_RUNS && iocomp_post(eng, IOCOMP_DEFAULT_PORT, 7, bytes + 1, ov, key) != 0)
            atomic_fetch_add(&repost_fail, 1);
        return;
    }
    /* (a): chain = status, link = bytes, id = chain * len + link. */
    if ((uint64_t)status * len + bytes != key || (uintptr_t)ov != key * 16)
        atomic_fetch_add(&mangled, 1);
    test_once_hit(&once, key);
    if (bytes + 1 < len &&
        iocomp_post(eng, IOCOMP_DEFAULT_PORT, status, bytes + 1,
                    (iocomp_overlapped *)(uintptr_t)((key + 1) * 16), key + 1) != 0)
        atomic_fetch_add(&repost_fail, 1);
}

int main(void) {
    test_begin("exactly_once_repost", 0);
    chains = 1000;
    len = test_scaled_min(1000, 50);
    uint64_t total = chains * len;
    test_once_init(&once, total);
    eng = test_engine(2, 2, cb, NULL);

    /* (a) chains */
    for (uint64_t c = 0; c < chains; c++)
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, (int32_t)c, 0,
                             (iocomp_overlapped *)(uintptr_t)(c * len * 16), c * len));
    TEST_WAIT_COUNT(&once.total, total, 30000);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&repost_fail), 0);
    CHECK_EQ(atomic_load(&mangled), 0);
    test_once_check(&once, "chains");
    iocomp_stats s = test_stats(eng);
    /* Reposts go to the posting worker's own queue (how a full local queue
     * spills is the library's choice; the sum is exact). */
    CHECK_EQ(s.posts_local + s.posts_remote, total);
    CHECK(s.posts_local > 0);
    CHECK(s.posts_remote >= chains);
    CHECK_EQ(s.completions, total);

    /* (b) a callback that resubmits itself 100,000 times */
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 7, 0, self_token, SELF_BIT | 1));
    TEST_WAIT_COUNT(&self_runs, SELF_RUNS, 30000);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&self_runs), SELF_RUNS);
    CHECK_EQ(atomic_load(&self_out_of_order), 0);
    CHECK_EQ(atomic_load(&repost_fail), 0);

    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&self_runs), SELF_RUNS);
    CHECK_EQ(atomic_load(&once.total), total);
    test_once_free(&once);
    test_end();
}
