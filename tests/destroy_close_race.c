/*
 * destroy_close_race: iocomp_engine_destroy() waits for a port that a
 * callback closes at the same time (audit defect 6). Destroy used to lose
 * the OPEN -> CLOSING race to the callback's close and return -EBADF,
 * leaving the engine closed but not stopped (1-48 times in 100).
 *
 * 100 engines (2 workers). Each: 8 ports, one packet on each whose callback
 * closes its own port, and a 1 ms timer on each port; then destroy at once.
 * Destroy returns 0 every time, every closing callback ran and got 0 or
 * -EBADF (destroy won), and every accepted timer completed before destroy
 * returned. Registered on both backends (the timers are theirs).
 */
#include "test.h"

#define NPORTS 8

static atomic_uint_fast64_t closes, timers_done;
static atomic_int bad_close;

static iocomp_engine *eng;

static void close_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (ov) {
        test_io_fire(ov, status, bytes, key);
        atomic_fetch_add(&timers_done, 1);
        return;
    }
    int rc = iocomp_port_close(eng, (iocomp_port_t)key);
    if (rc != 0 && rc != -EBADF)
        atomic_store(&bad_close, rc);
    atomic_fetch_add(&closes, 1);
}

int main(void) {
    test_begin("destroy_close_race", 0);
    int rounds = (int)test_scaled_min(100, 20);
    iocomp_config cfg = test_config(2, 2, close_cb, NULL);
    cfg.host_overlapped_size = sizeof(struct test_io);
    for (int round = 0; round < rounds; round++) {
        CHECK_OK(iocomp_engine_create(&cfg, &eng));
        const char *want = test_io_backend();
        CHECK(want == NULL || strcmp(want, iocomp_backend_name(eng)) == 0);
        iocomp_overlapped *ov[NPORTS];
        int accepted = 0;
        uint64_t closes0 = atomic_load(&closes), timers0 = atomic_load(&timers_done);
        for (int i = 0; i < NPORTS; i++) {
            iocomp_port_t p;
            CHECK_OK(iocomp_port_create(eng, &p));
            ov[i] = test_io_ov(eng, (uint64_t)i);
            test_io_arm(ov[i]);
            if (test_io_settle(ov[i], iocomp_timer(eng, p, 1, 1000000, 0, ov[i])) == 0)
                accepted++;
            CHECK_OK(iocomp_post(eng, p, 0, 0, NULL, (uintptr_t)p));
        }
        int rc = iocomp_engine_destroy(eng);
        CHECK_MSG(rc == 0, "round %d: destroy with callbacks closing their ports: %d (%s)", round, rc,
                  test_errname(rc));
        CHECK_EQ(atomic_load(&timers_done) - timers0, (uint64_t)accepted);
        CHECK_EQ(atomic_load(&closes) - closes0, NPORTS);
        for (int i = 0; i < NPORTS; i++)
            iocomp_overlapped_free(ov[i]);
    }
    CHECK_EQ(atomic_load(&bad_close), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    test_end();
}
