/*
 * wake_race: invariant 2, no lost wake-up when a packet arrives while a
 * worker is on its way to sleep. Rounds post one packet after a delay of
 * 0..60 us (spinning on the clock) from the previous callback, so the post
 * lands inside the spin window, at its end, or during parking; each packet
 * must be seen within 5 s. spin_ns is small so the park path is hit often.
 */
#include "test.h"

static atomic_uint_fast64_t calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add_explicit(&calls, 1, memory_order_release);
}

static void spin_ns(uint64_t ns) {
    uint64_t end = test_now_ns() + ns;
    while (test_now_ns() < end) {
    }
}

static void run(uint32_t spin, uint32_t workers, uint64_t rounds, uint64_t budget_ns) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = workers;
    cfg.max_threads = workers;
    cfg.spin_ns = spin;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    atomic_store(&calls, 0);
    uint64_t seed = 0x1234567 + spin, t0 = test_now_ns(), done = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        spin_ns(test_rand(&seed) % 60000);
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, r));
        uint64_t deadline = test_now_ns() + 5000000000ull;
        while (atomic_load_explicit(&calls, memory_order_acquire) < r + 1) {
            if (test_now_ns() > deadline) {
                iocomp_stats s = test_stats(e);
                fprintf(stderr,
                        "spin_ns %u, round %" PRIu64 ": packet not delivered within 5 s (lost "
                        "wake-up); live %u parked %u busy %u, parks %" PRIu64 " wakeups %" PRIu64
                        "\n",
                        spin, r, s.threads_live, s.threads_parked, s.threads_busy, s.parks,
                        s.wakeups);
                abort();
            }
        }
        done = r + 1;
        if ((r & 255) == 0 && test_now_ns() - t0 > budget_ns && done >= 1000)
            break;
    }
    iocomp_stats s = test_stats(e);
    printf("wake_race: spin_ns %u, %u workers: %" PRIu64 " rounds in %.2f s, parks %" PRIu64
           ", wakeups %" PRIu64 "\n",
           spin, workers, done, (test_now_ns() - t0) / 1e9, s.parks, s.wakeups);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&calls), done);
}

int main(void) {
    test_begin("wake_race", 0);
    uint64_t rounds = test_scaled_min(50000, 1000);
    uint64_t budget = (uint64_t)(IOCOMP_TEST_TIMEOUT / 8) * 1000000000u;
    run(1000, 2, rounds, budget);       /* a short spin: parking races the post */
    run(0, 2, rounds, budget);          /* the default spin window */
    run(UINT32_MAX, 1, rounds, budget); /* never spin: every post meets a parker */
    run(1000, 3, rounds, budget);       /* more workers than cores */
    test_end();
}
