/*
 * destroy_create_race: a port that a callback creates while destroy runs is
 * either refused (-ESHUTDOWN) or closed by destroy, its requests completed
 * before destroy returns (audit defect 7). The create used to check for a
 * destroy in progress before taking the port table's lock; in that window
 * destroy could pass the slot the create then recycled, return 0, and leave
 * a timer on the new port that never completed.
 *
 * The fault seam IOCOMP_FAULT_PAUSE holds that window open (50 ms) for one
 * create. Ports A, B, C; B closed (its slot is free, below C). A packet on C
 * whose callback signals the main thread, then creates a port (paused) and,
 * if that worked, arms a 10 s timer on it. The main thread destroys the
 * engine when signalled. Destroy returns 0; the create was refused, or the
 * timer completed (-ECANCELED) before destroy returned. 10 rounds, both
 * backends.
 */
#include "test.h"

#include <iocomp/testing.h>

static iocomp_engine *eng;
static iocomp_overlapped *tov;
static atomic_int started, create_rc, timer_rc;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (ov) {
        test_io_fire(ov, status, bytes, key);
        return;
    }
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 1);
    atomic_store(&started, 1);
    iocomp_port_t p;
    int rc = iocomp_port_create(eng, &p);
    atomic_store(&create_rc, rc);
    if (rc == 0) {
        test_io_arm(tov);
        atomic_store(&timer_rc, test_io_settle(tov, iocomp_timer(eng, p, 9, 10000000000ull, 0, tov)));
    }
}

int main(void) {
    test_begin("destroy_create_race", 0);
    for (int round = 0; round < 10; round++) {
        iocomp_config cfg = test_config(2, 2, cb, NULL);
        cfg.host_overlapped_size = sizeof(struct test_io);
        CHECK_OK(iocomp_engine_create(&cfg, &eng));
        const char *want = test_io_backend();
        CHECK(want == NULL || strcmp(want, iocomp_backend_name(eng)) == 0);
        tov = test_io_ov(eng, 1);
        iocomp_port_t a, b, c;
        CHECK_OK(iocomp_port_create(eng, &a));
        CHECK_OK(iocomp_port_create(eng, &b));
        CHECK_OK(iocomp_port_create(eng, &c));
        CHECK_OK(iocomp_port_close(eng, b));
        atomic_store(&started, 0);
        atomic_store(&create_rc, 1);
        atomic_store(&timer_rc, 1);
        CHECK_OK(iocomp_post(eng, c, 0, 0, NULL, 0));
        CHECK(TEST_WAIT_UNTIL(atomic_load(&started) == 1, 5000));
        int rc = iocomp_engine_destroy(eng);
        CHECK_MSG(rc == 0, "round %d: destroy: %d (%s)", round, rc, test_errname(rc));
        int crc = atomic_load(&create_rc);
        CHECK_MSG(crc == 0 || crc == -ESHUTDOWN, "round %d: create during destroy: %d", round, crc);
        if (crc == 0 && atomic_load(&timer_rc) == 0) {
            CHECK_MSG(atomic_load(&test_io_of(tov)->completions) == 1,
                      "round %d: a timer accepted on a port created during destroy never completed",
                      round);
            CHECK_EQ(atomic_load(&test_io_of(tov)->status), -ECANCELED);
        }
        iocomp_overlapped_free(tov);
    }
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    test_end();
}
