/*
 * close_timeout: a callback that blocks makes iocomp_port_close() report
 * -ETIMEDOUT at the close_timeout_ms deadline (200 ms here) instead of
 * hanging; the port then refuses new posts (-ESHUTDOWN: it is still closing),
 * everything it had accepted is still delivered once the callback is
 * released, ports_open drops, and the engine is destroyed with 0.
 */
#include "test.h"

#define N 100
#define KEY_BLOCK 0xb10cu

static struct test_gate gate;
static struct test_once once;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key == KEY_BLOCK) {
        test_gate_wait(&gate, 500);
        return;
    }
    test_once_hit(&once, key);
}

int main(void) {
    test_begin("close_timeout", 0);
    test_once_init(&once, N);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 2;
    cfg.max_threads = 2;
    cfg.close_timeout_ms = 200;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(e, &p));
    uint32_t open0 = test_stats(e).ports_open;

    CHECK_OK(iocomp_post(e, p, 0, 0, NULL, KEY_BLOCK));
    TEST_WAIT_COUNT(&gate.entered, 1, 5000);
    for (uintptr_t i = 0; i < N; i++)
        CHECK_OK(iocomp_post(e, p, 0, 0, NULL, i));

    uint64_t t0 = test_now_ns();
    int rc = iocomp_port_close(e, p);
    uint64_t ms = (test_now_ns() - t0) / 1000000;
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK_MSG(ms >= 190 && ms < 5000, "close took %" PRIu64 " ms for a 200 ms deadline", ms);
    /* Closed to new requests, but not gone yet. */
    CHECK_EQ(iocomp_post(e, p, 0, 0, NULL, 0), -ESHUTDOWN);
    CHECK_EQ(iocomp_post(e, p, 0, 0, NULL, 0), -ESHUTDOWN);

    /* The other worker delivered the rest meanwhile, or will. */
    test_gate_open(&gate);
    TEST_WAIT_COUNT(&once.total, N, 5000);
    test_sleep_us(10000);
    test_once_check(&once, "close_timeout");
    /* Still refused once everything ran. (Whether the handle then reads as
     * closing, -ESHUTDOWN, or stale, -EBADF, the header leaves open: the slot
     * "is reclaimed after them", the current core does it lazily, at a later
     * close.) */
    int last_rc = iocomp_post(e, p, 0, 0, NULL, 0);
    CHECK_MSG(last_rc == -ESHUTDOWN || last_rc == -EBADF, "post after delivery = %d", last_rc);
    CHECK_EQ(test_stats(e).ports_open, open0 - 1);

    /* The engine is fine. */
    iocomp_port_t q;
    CHECK_OK(iocomp_port_create(e, &q));
    CHECK_OK(iocomp_post(e, q, 0, 0, NULL, 0));
    CHECK_OK(iocomp_port_close(e, q));
    CHECK_EQ(atomic_load(&once.seen[0]), 2);
    uint64_t t1 = test_now_ns();
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK((test_now_ns() - t1) / 1000000 < 5000);
    test_once_free(&once);
    test_end();
}
