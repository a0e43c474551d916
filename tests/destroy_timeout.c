/*
 * destroy_timeout: iocomp_engine_destroy() with a callback that blocks
 * returns -ETIMEDOUT at the deadline (close_timeout_ms = 200) and leaves the
 * engine closed but alive: new posts are refused (-ESHUTDOWN), queued packets
 * are still delivered, and a second destroy after the callback is released
 * returns 0 with every accepted packet delivered exactly once.
 */
#include "test.h"

#define N 200
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
    test_begin("destroy_timeout", 0);
    test_once_init(&once, N);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 1; /* nobody else can run the queue while we block */
    cfg.close_timeout_ms = 200;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(e, &p));

    CHECK_OK(iocomp_post(e, p, 0, 0, NULL, KEY_BLOCK));
    TEST_WAIT_COUNT(&gate.entered, 1, 5000);
    for (uintptr_t i = 0; i < N; i++)
        CHECK_OK(iocomp_post(e, i % 2 ? p : IOCOMP_DEFAULT_PORT, 0, 0, NULL, i));

    uint64_t t0 = test_now_ns();
    int rc = iocomp_engine_destroy(e);
    uint64_t ms = (test_now_ns() - t0) / 1000000;
    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK_MSG(ms >= 190 && ms < 5000, "destroy took %" PRIu64 " ms for a 200 ms deadline", ms);
    /* Closed but alive. */
    CHECK_EQ(iocomp_post(e, p, 0, 0, NULL, 0), -ESHUTDOWN);
    CHECK_EQ(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0), -ESHUTDOWN);
    iocomp_port_t q;
    CHECK_EQ(iocomp_port_create(e, &q), -ESHUTDOWN);
    CHECK(atomic_load(&once.total) < N); /* the only worker is still blocked */

    test_gate_open(&gate);
    TEST_WAIT_COUNT(&once.total, N, 5000);
    CHECK_OK(iocomp_engine_destroy(e));
    test_once_check(&once, "destroy_timeout");
    test_once_free(&once);
    test_end();
}
