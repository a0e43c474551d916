/*
 * close_from_callback: invariant 7 (a callback may close its own port) and 6.
 * With one worker (min = max = 1), a callback of port P closes P while more
 * packets of P are queued: (1) in the inject queue, posted from outside while
 * the callback waits, (2) in the worker's own queue, posted by the callback.
 * close returns 0 after every queued P packet ran exactly once (nested, on the
 * same worker); packets of port Q met meanwhile are put back, not run, and run
 * after the callback returns; posts to P during the close are -ESHUTDOWN,
 * after it -EBADF.
 */
#include "test.h"

#define M 1000
#define QN 100
#define KEY_GATE 0xffff0001u
#define KEY_Q 0xffff0002u

static iocomp_engine *eng;
static iocomp_port_t P, Q;
static struct test_once once;
static atomic_int phase_inject; /* 1: the gate waits for outside posts */
static atomic_int gate_in, posted_all, gate_done;
static atomic_int close_rc, post_after_rc, post_during_rc;
static atomic_uint_fast64_t p_at_return, q_at_return, q_calls, after_close, wrong_thread;
static atomic_int closed, worker_tid;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)ov;
    if (key == KEY_Q) {
        atomic_fetch_add(&q_calls, 1);
        return;
    }
    if (key == KEY_GATE) {
        atomic_store(&worker_tid, (int)test_gettid());
        atomic_store(&gate_in, 1);
        if (atomic_load(&phase_inject)) {
            while (!atomic_load(&posted_all))
                test_sleep_us(100);
        } else {
            for (uint32_t i = 0; i < M; i++) {
                CHECK_OK(iocomp_post(eng, P, 0, i, NULL, i));
                if (i % (M / QN) == 0)
                    CHECK_OK(iocomp_post(eng, Q, 0, 0, NULL, KEY_Q));
            }
        }
        int rc = iocomp_port_close(eng, P);
        atomic_store(&closed, 1);
        atomic_store(&close_rc, rc);
        atomic_store(&p_at_return, atomic_load(&once.total));
        atomic_store(&q_at_return, atomic_load(&q_calls));
        atomic_store(&post_after_rc, iocomp_post(eng, P, 0, 0, NULL, 0));
        atomic_store(&gate_done, 1);
        return;
    }
    /* A queued packet of P, run nested inside the close. */
    if (atomic_load(&closed))
        atomic_fetch_add(&after_close, 1);
    if ((int)test_gettid() != atomic_load(&worker_tid))
        atomic_fetch_add(&wrong_thread, 1);
    if (bytes != key)
        atomic_fetch_add(&once.wild, 1);
    if (key == 0)
        atomic_store(&post_during_rc, iocomp_post(eng, P, 0, 0, NULL, 0));
    test_once_hit(&once, key);
}

static void run_phase(bool inject) {
    test_once_init(&once, M);
    atomic_store(&phase_inject, inject);
    atomic_store(&gate_in, 0);
    atomic_store(&posted_all, 0);
    atomic_store(&gate_done, 0);
    atomic_store(&closed, 0);
    atomic_store(&close_rc, 1);
    atomic_store(&post_during_rc, 1);
    atomic_store(&q_calls, 0);
    CHECK_OK(iocomp_port_create(eng, &P));

    CHECK_OK(iocomp_post(eng, P, 0, 0, NULL, KEY_GATE));
    TEST_WAIT_UNTIL(atomic_load(&gate_in), 5000);
    CHECK(atomic_load(&gate_in));
    if (inject) {
        for (uint32_t i = 0; i < M; i++) {
            CHECK_OK(iocomp_post(eng, P, 0, i, NULL, i));
            if (i % (M / QN) == 0)
                CHECK_OK(iocomp_post(eng, Q, 0, 0, NULL, KEY_Q));
        }
        atomic_store(&posted_all, 1);
    }
    CHECK(TEST_WAIT_UNTIL(atomic_load(&gate_done), 10000));
    const char *what = inject ? "inject-queued" : "local-queued";
    CHECK_MSG(atomic_load(&close_rc) == 0, "%s: close from callback = %d", what, atomic_load(&close_rc));
    CHECK_MSG(atomic_load(&p_at_return) == M, "%s: %" PRIu64 " of %d delivered at close return", what,
              (uint64_t)atomic_load(&p_at_return), M);
    CHECK_MSG(atomic_load(&q_at_return) == 0, "%s: %" PRIu64 " packets of another port ran inside the close",
              what, (uint64_t)atomic_load(&q_at_return));
    CHECK_EQ(atomic_load(&post_during_rc), -ESHUTDOWN);
    CHECK_EQ(atomic_load(&post_after_rc), -EBADF);
    CHECK_EQ(atomic_load(&wrong_thread), 0);
    /* Q's packets were put back and run after. */
    TEST_WAIT_COUNT(&q_calls, QN, 5000);
    test_sleep_us(10000);
    CHECK_EQ(atomic_load(&q_calls), QN);
    CHECK_EQ(atomic_load(&after_close), 0);
    test_once_check(&once, what);
    CHECK_EQ(iocomp_port_close(eng, P), -EBADF);
    test_once_free(&once);
}

int main(void) {
    test_begin("close_from_callback", 0);
    eng = test_engine(1, 1, cb, NULL);
    CHECK_OK(iocomp_port_create(eng, &Q));
    run_phase(true);
    run_phase(false);
    run_phase(true);
    CHECK_OK(iocomp_engine_destroy(eng));
    test_end();
}
