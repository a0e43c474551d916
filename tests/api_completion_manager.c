/*
 * api_completion_manager: iocomp_set_completion_manager (SetCLRIoCompletion-
 * Manager) and the callback contract. Posting before a callback is installed
 * (or after it is removed) is -ENOTCONN and gets no callback; an installed
 * callback gets the exact status / bytes / ov / key and ctx, on an engine
 * worker (not the poster); replacing it sends later packets to the new one.
 */
#include "test.h"

static struct test_counter c1, c2;
static atomic_uint_fast32_t busy_seen; /* threads_busy seen inside the callback */
static iocomp_engine *eng;

static void cb_busy(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                    uintptr_t key) {
    iocomp_stats s;
    CHECK_OK(iocomp_get_stats(eng, &s));
    atomic_store(&busy_seen, s.threads_busy);
    test_counter_cb(ctx, status, bytes, ov, key);
}

static void post_check(iocomp_engine *e, struct test_counter *c, iocomp_port_t port,
                       int32_t status, uint32_t bytes, uintptr_t ovv, uintptr_t key) {
    uint64_t n = atomic_load(&c->calls);
    CHECK_OK(iocomp_post(e, port, status, bytes, (iocomp_overlapped *)ovv, key));
    TEST_WAIT_COUNT(&c->calls, n + 1, 5000);
    CHECK_EQ(atomic_load(&c->last_status), status);
    CHECK_EQU(atomic_load(&c->last_bytes), bytes);
    CHECK_EQU((uintptr_t)atomic_load(&c->last_ov), ovv);
    CHECK_EQU(atomic_load(&c->last_key), key);
    CHECK(atomic_load(&c->last_tid) != test_gettid());
}

int main(void) {
    test_begin("api_completion_manager", 0);
    iocomp_engine *e = test_engine(2, 2, NULL, NULL);
    eng = e;
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(e, &p));

    /* No callback yet: refused, nothing delivered later. */
    CHECK_EQ(iocomp_post(e, p, 0, 0, NULL, 1), -ENOTCONN);
    CHECK_EQ(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1), -ENOTCONN);

    CHECK_OK(iocomp_set_completion_manager(e, cb_busy, &c1));
    post_check(e, &c1, p, 0, 0, 0, 0);
    CHECK_EQ(atomic_load(&busy_seen), 1); /* it ran as a busy worker */
    post_check(e, &c1, p, -EIO, 12345, 0x1230, 0xdeadbeef);
    post_check(e, &c1, IOCOMP_DEFAULT_PORT, -ECANCELED, UINT32_MAX, UINTPTR_MAX - 15, UINTPTR_MAX);
    post_check(e, &c1, p, INT32_MIN, 1, 16, 0);
    post_check(e, &c1, p, INT32_MAX, 0, 0x7ffffffffff0ull, 42); /* status carried as posted */
    CHECK_EQ(atomic_load(&c1.calls), 5);

    /* The worker is an engine thread: it outlives the callback, and is not us. */
    int wtid = atomic_load(&c1.last_tid);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", wtid);
    CHECK_OK(access(path, F_OK));

    /* Many packets with the same ov pointer, and NULL ov. */
    for (int i = 0; i < 1000; i++)
        CHECK_OK(iocomp_post(e, p, 0, (uint32_t)i, (iocomp_overlapped *)(uintptr_t)0x100, 9));
    TEST_WAIT_COUNT(&c1.calls, 1005, 5000);

    /* Replace: later packets go to the new callback and ctx only. */
    CHECK_OK(iocomp_set_completion_manager(e, test_counter_cb, &c2));
    post_check(e, &c2, p, 3, 4, 0x50, 6);
    CHECK_EQ(atomic_load(&c1.calls), 1005);

    /* Remove: refused again, and nothing is delivered for the refusals. */
    CHECK_OK(iocomp_set_completion_manager(e, NULL, NULL));
    CHECK_EQ(iocomp_post(e, p, 0, 0, NULL, 1), -ENOTCONN);
    CHECK_EQ(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1), -ENOTCONN);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&c2.calls), 1);
    CHECK_EQ(atomic_load(&c1.calls), 1005);

    /* Install again: works. */
    CHECK_OK(iocomp_set_completion_manager(e, test_counter_cb, &c2));
    post_check(e, &c2, p, 0, 7, 0, 8);
    CHECK_EQ(iocomp_set_completion_manager(NULL, test_counter_cb, &c2), -EINVAL);

    CHECK_OK(iocomp_port_close(e, p));
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&c2.calls), 2);
    CHECK_EQ(atomic_load(&c1.calls), 1005);
    test_end();
}
