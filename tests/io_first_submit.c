/*
 * io_first_submit: the first request submitted from the creating thread
 * right after iocomp_engine_create() returns is accepted and completes
 * (BRIEF §4 invariant 1; the contract lists no -EAGAIN for operations).
 * 50 fresh engines (2 workers each), no warm-up: a 0 ns timer at once, then
 * a recv with data already there; each returns 0 and completes once with
 * status 0. The other I/O tests warm their engine up first (test.h,
 * test_io_warm_up()), so this is the one that looks at the start-up window.
 */
#include "test.h"

static atomic_uint_fast64_t good;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (test_io_fire(ov, status, bytes, key) && status == 0 && key == 0xF1257u)
        atomic_fetch_add(&good, 1);
}

int main(void) {
    test_begin("io_first_submit", 0);
    int rounds = (int)test_scaled_min(50, 10), refused = 0, first_rc = 0, accepted = 0;
    char buf[8];
    for (int i = 0; i < rounds; i++) {
        int sv[2];
        test_socketpair(sv);
        CHECK_EQ(send(sv[1], "x", 1, 0), 1);
        iocomp_config cfg;
        iocomp_config_init(&cfg);
        cfg.min_threads = cfg.max_threads = 2;
        cfg.on_complete = cb;
        cfg.host_overlapped_size = sizeof(struct test_io);
        iocomp_engine *e;
        CHECK_OK(iocomp_engine_create(&cfg, &e));
        const char *want = test_io_backend();
        CHECK(want == NULL || strcmp(want, iocomp_backend_name(e)) == 0);
        iocomp_overlapped *ov = test_io_ov(e, 0), *ov2 = test_io_ov(e, 1);
        test_io_arm(ov);
        int rc = test_io_settle(ov, iocomp_timer(e, IOCOMP_DEFAULT_PORT, 0xF1257u, 0, 0, ov));
        if (rc != 0) {
            refused++;
            first_rc = rc;
        } else {
            accepted++;
        }
        CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[0], 0xF1257u));
        test_io_arm(ov2);
        rc = test_io_settle(ov2, iocomp_recv(e, sv[0], buf, sizeof buf, 0, ov2));
        if (rc != 0) {
            refused++;
            first_rc = rc;
        } else {
            accepted++;
        }
        /* Accepted ones complete (a lost hand-off wake-up would strand them). */
        bool timer_in = atomic_load(&test_io_of(ov)->armed) != 0;
        bool recv_in = atomic_load(&test_io_of(ov2)->armed) != 0;
        CHECK_MSG(!timer_in || TEST_WAIT_UNTIL(atomic_load(&test_io_of(ov)->completions) == 1, 5000),
                  "round %d: the accepted 0 ns timer did not complete in 5 s", i);
        CHECK_MSG(!recv_in || TEST_WAIT_UNTIL(atomic_load(&test_io_of(ov2)->completions) == 1, 5000),
                  "round %d: the accepted recv (data there) did not complete in 5 s", i);
        if (recv_in)
            CHECK_EQ(atomic_load(&test_io_of(ov2)->bytes), 1);
        CHECK_OK(iocomp_engine_destroy(e));
        iocomp_overlapped_free(ov);
        iocomp_overlapped_free(ov2);
        CHECK_OK(close(sv[0]));
        CHECK_OK(close(sv[1]));
    }
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_EQ(atomic_load(&good), (uint64_t)accepted);
    CHECK_MSG(refused == 0,
              "%d of %d submits right after iocomp_engine_create() were refused (last: %d %s)",
              refused, 2 * rounds, first_rc, test_errname(first_rc));
    test_end();
}
