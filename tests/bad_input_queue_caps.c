/*
 * bad_input_queue_caps: queue capacities above IOCOMP_QUEUE_CAPACITY_LIMIT
 * (2^20 packets) are refused (audit defect 12: UINT32_MAX used to be capped
 * silently at 2^30 and one engine reserved ~151 GB). local_queue_capacity or
 * inject_queue_capacity of UINT32_MAX, 2^31, LIMIT + 1: iocomp_engine_create
 * returns -ERANGE, *out is untouched, no thread or descriptor is left. The
 * limit itself, and a value that rounds up to it, are accepted and the
 * engine works (a burst larger than a ring is delivered once each).
 *
 * ring_entries (the io_uring SQ size) above IOCOMP_RING_ENTRIES_LIMIT (2^15)
 * is refused the same way (it used to be clamped silently to 32768 by the
 * io_uring backend, and ignored by epoll): LIMIT + 1, 2^31 and UINT32_MAX
 * give -ERANGE with *out untouched and nothing left, for the default, epoll
 * and uring backends alike (checked before any backend is probed, so even a
 * backend that could not start says -ERANGE). The limit itself is accepted
 * (default backend and epoll) and a post is delivered.
 */
#include "test.h"

static struct test_counter ctr;

static int create(uint32_t local, uint32_t inject, iocomp_engine **out) {
    iocomp_config cfg = test_config(1, 1, test_counter_cb, &ctr);
    cfg.local_queue_capacity = local;
    cfg.inject_queue_capacity = inject;
    return iocomp_engine_create(&cfg, out);
}

int main(void) {
    test_begin("bad_input_queue_caps", 0);
    CHECK_EQ(IOCOMP_QUEUE_CAPACITY_LIMIT, 1u << 20);

    const uint32_t bad[] = {UINT32_MAX, 1u << 31, (1u << 30) + 1, IOCOMP_QUEUE_CAPACITY_LIMIT + 1};
    iocomp_engine *const sentinel = (iocomp_engine *)(uintptr_t)0x5e17;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        iocomp_engine *e = sentinel;
        CHECK_EQ(create(bad[i], 0, &e), -ERANGE);
        CHECK(e == sentinel);
        CHECK_EQ(create(0, bad[i], &e), -ERANGE);
        CHECK(e == sentinel);
        CHECK_EQ(create(bad[i], bad[i], &e), -ERANGE);
        CHECK(e == sentinel);
        CHECK_EQ(create(IOCOMP_QUEUE_CAPACITY_LIMIT, bad[i], &e), -ERANGE);
        CHECK(e == sentinel);
        test_baseline_check(&test_start_baseline_); /* nothing started */
    }

    /* The limit itself, and a value that rounds up to it. */
    const uint32_t good[] = {IOCOMP_QUEUE_CAPACITY_LIMIT, IOCOMP_QUEUE_CAPACITY_LIMIT / 2 + 1};
    uint64_t want = 0;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        iocomp_engine *e = NULL;
        CHECK_OK(create(good[i], good[i], &e));
        CHECK(e != NULL);
        for (int k = 0; k < 1000; k++)
            CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, (uint32_t)k, NULL, 0));
        want += 1000;
        TEST_WAIT_COUNT(&ctr.calls, want, 10000);
        CHECK_OK(iocomp_engine_destroy(e));
    }
    /* Small and default values are still rounded up, never refused. */
    iocomp_engine *e = NULL;
    CHECK_OK(create(1, 3, &e));
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&ctr.calls), want);

    /* ring_entries: refused above the limit, on every backend. */
    CHECK_EQ(IOCOMP_RING_ENTRIES_LIMIT, 32768u);
    const char *const backends[] = {NULL, "epoll", "uring"};
    const uint32_t bad_ring[] = {IOCOMP_RING_ENTRIES_LIMIT + 1, 1u << 31, UINT32_MAX};
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++) {
        for (size_t i = 0; i < sizeof bad_ring / sizeof bad_ring[0]; i++) {
            iocomp_config cfg = test_config(1, 1, test_counter_cb, &ctr);
            cfg.backend = backends[b];
            cfg.ring_entries = bad_ring[i];
            e = sentinel;
            int rc = iocomp_engine_create(&cfg, &e);
            CHECK_MSG(rc == -ERANGE, "ring_entries %u, backend %s: %d (%s), want -ERANGE",
                      bad_ring[i], backends[b] ? backends[b] : "(default)", rc,
                      iocomp_strerror(rc));
            CHECK(e == sentinel);
            test_baseline_check(&test_start_baseline_); /* nothing started */
        }
    }
    /* The limit itself: accepted, and the engine works. */
    for (size_t b = 0; b < 2; b++) {
        iocomp_config cfg = test_config(1, 1, test_counter_cb, &ctr);
        cfg.backend = backends[b];
        cfg.ring_entries = IOCOMP_RING_ENTRIES_LIMIT;
        e = NULL;
        int rc = iocomp_engine_create(&cfg, &e);
        CHECK_MSG(rc == 0, "ring_entries %u, backend %s: %d (%s)", IOCOMP_RING_ENTRIES_LIMIT,
                  backends[b] ? backends[b] : "(default)", rc, iocomp_strerror(rc));
        CHECK(e != NULL);
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 7, NULL, 0));
        want += 1;
        TEST_WAIT_COUNT(&ctr.calls, want, 10000);
        CHECK_EQ(atomic_load(&ctr.last_bytes), 7);
        CHECK_OK(iocomp_engine_destroy(e));
    }
    CHECK_EQ(atomic_load(&ctr.calls), want);
    test_end();
}
