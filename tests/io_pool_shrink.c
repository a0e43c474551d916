/*
 * io_pool_shrink: host-thread I/O is accepted and completes after the pool
 * shrank back (audit defect 1). A worker that did not retire after all must
 * not keep its backend slot closed to host hand-offs: on io_uring, host
 * submits used to find no open slot and fail with -EAGAIN (~130 ms later)
 * once the pool was back at min.
 *
 * min = 1, max = 4, keep_alive_ms = 100, concurrency = 1. Three rounds of:
 *  a. keep-alive: four blocking callbacks grow the pool to 4; release them;
 *     wait until threads_live == 1 (the extra workers timed out; the last
 *     ones to time out find live == min and stay);
 *  b. set_max: grow to 4 again, release, set_max(1) at once (every worker
 *     is woken, three retire, the others lose the race); restore max 4.
 * After each: from the host thread, a 0 ns timer and a recv with data
 * queued are accepted (0) and complete once with status 0.
 */
#include "test.h"

#define MAX 4
#define KEY_BLOCK UINTPTR_MAX
#define KEY_IO 0x5A1Fu

static struct test_gate gate;
static atomic_uint_fast64_t blocked_done;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_BLOCK) {
        test_gate_wait(&gate, 200); /* off the CPU: the monitor sees it blocked */
        atomic_fetch_add(&blocked_done, 1);
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

static void grow_and_release(iocomp_engine *e) {
    atomic_store(&gate.entered, 0);
    atomic_store(&blocked_done, 0);
    atomic_store(&gate.open, 0);
    for (int i = 0; i < MAX; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_BLOCK));
    CHECK_MSG(TEST_WAIT_UNTIL(atomic_load(&gate.entered) == MAX, 3000),
              "%u of %d blocking callbacks running after 3 s (threads_live %u)",
              (unsigned)atomic_load(&gate.entered), MAX, test_stats(e).threads_live);
    test_gate_open(&gate);
    TEST_WAIT_COUNT(&blocked_done, MAX, 3000);
}

static void wait_live(iocomp_engine *e, uint32_t n, const char *when) {
    bool ok = TEST_WAIT_UNTIL(test_stats(e).threads_live == n, 5000);
    CHECK_MSG(ok, "%s: threads_live %u, not %u, after 5 s", when, test_stats(e).threads_live, n);
}

/* The host-thread submits that used to fail. */
static void host_io(iocomp_engine *e, int sv[2], iocomp_overlapped *t, iocomp_overlapped *r,
                    char *buf, size_t len, const char *when) {
    uint64_t tn = atomic_load(&test_io_of(t)->completions);
    uint64_t rn = atomic_load(&test_io_of(r)->completions);
    test_io_arm(t);
    int rc = test_io_settle(t, iocomp_timer(e, IOCOMP_DEFAULT_PORT, KEY_IO, 0, 0, t));
    CHECK_MSG(rc == 0, "%s: host iocomp_timer: %d (%s)", when, rc, test_errname(rc));
    CHECK_EQ(send(sv[1], "ab", 2, 0), 2);
    test_io_arm(r);
    rc = test_io_settle(r, iocomp_recv(e, sv[0], buf, (uint32_t)len, 0, r));
    CHECK_MSG(rc == 0, "%s: host iocomp_recv: %d (%s)", when, rc, test_errname(rc));
    struct test_io *ti = test_io_wait(t, tn + 1, 3000), *ri = test_io_wait(r, rn + 1, 3000);
    CHECK_EQ(atomic_load(&ti->status), 0);
    CHECK_EQ(atomic_load(&ri->status), 0);
    CHECK_EQ(atomic_load(&ri->bytes), 2);
}

int main(void) {
    test_begin("io_pool_shrink", 0);
    iocomp_config cfg = test_config(1, MAX, cb, NULL);
    cfg.keep_alive_ms = 100;
    cfg.concurrency = 1;
    iocomp_engine *e = test_io_engine(&cfg);
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[0], KEY_IO));
    iocomp_overlapped *t = test_io_ov(e, 1), *r = test_io_ov(e, 2);
    char buf[16];
    for (int round = 0; round < 3; round++) {
        char when[64];
        grow_and_release(e);
        wait_live(e, 1, "after keep-alive");
        snprintf(when, sizeof when, "round %d, after keep-alive", round);
        host_io(e, sv, t, r, buf, sizeof buf, when);

        grow_and_release(e);
        CHECK_OK(iocomp_set_max_threads(e, 1));
        wait_live(e, 1, "after set_max(1)");
        snprintf(when, sizeof when, "round %d, after set_max(1)", round);
        host_io(e, sv, t, r, buf, sizeof buf, when);
        CHECK_OK(iocomp_set_max_threads(e, MAX));
    }
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(e));
    iocomp_overlapped_free(t);
    iocomp_overlapped_free(r);
    CHECK_OK(close(sv[0]));
    CHECK_OK(close(sv[1]));
    test_end();
}
