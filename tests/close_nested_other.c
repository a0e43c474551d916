/*
 * close_nested_other: a port close from a callback does not hoard other
 * ports' packets (audit defect 5). A closer on a worker helps: it runs its
 * port's packets nested. It used to keep every other port's packet it found
 * in a private vector until it returned, so a close of that other port
 * could not reach them and timed out with no callback running.
 *
 *  1. One worker, ports P and Q, close timeout 3 s. Queued in this order:
 *     a (P: closes P), q (Q), b (P: closes Q). a's close finds q (Q still
 *     open: set aside), runs b nested, whose close of Q needs q: both closes
 *     return 0, q and b run once each. 20 rounds.
 *  2. Two workers, each inside a callback that closes its own port (P, Q)
 *     while 200 packets of each port are queued, interleaved: both closes
 *     return 0 and every packet runs once. 20 rounds.
 */
#include "test.h"

#define N2 200

enum { K_PLAIN = 0, K_CLOSE_P = 1, K_CLOSE_Q = 2 };

static iocomp_engine *eng;
static iocomp_port_t P, Q;
static atomic_int rc_p, rc_q;
static atomic_uint_fast64_t plain, closers;
static atomic_int barrier, posted;
static struct test_once once;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)ov;
    if (key == K_PLAIN) {
        if (once.seen)
            test_once_hit(&once, bytes);
        atomic_fetch_add(&plain, 1);
        return;
    }
    if (atomic_load(&barrier) >= 0) { /* part 2: start both closes together (give up after 2 s) */
        atomic_fetch_add(&barrier, 1);
        TEST_WAIT_UNTIL(atomic_load(&barrier) >= 2 && atomic_load(&posted), 2000);
    } else if (key == K_CLOSE_P) { /* part 1: a runs once q and b are queued behind it */
        CHECK(TEST_WAIT_UNTIL(atomic_load(&posted), 5000));
    }
    if (key == K_CLOSE_P)
        atomic_store(&rc_p, iocomp_port_close(eng, P));
    else
        atomic_store(&rc_q, iocomp_port_close(eng, Q));
    atomic_fetch_add(&closers, 1);
}

static void reset(void) {
    CHECK_OK(iocomp_port_create(eng, &P));
    CHECK_OK(iocomp_port_create(eng, &Q));
    atomic_store(&rc_p, 1);
    atomic_store(&rc_q, 1);
    atomic_store(&plain, 0);
    atomic_store(&closers, 0);
}

int main(void) {
    test_begin("close_nested_other", 0);
    iocomp_config cfg = test_config(1, 1, cb, NULL);
    cfg.close_timeout_ms = 3000;
    CHECK_OK(iocomp_engine_create(&cfg, &eng));
    atomic_store(&barrier, -1);
    for (int round = 0; round < 20; round++) {
        reset();
        atomic_store(&posted, 0);
        CHECK_OK(iocomp_post(eng, P, 0, 0, NULL, K_CLOSE_P));
        CHECK_OK(iocomp_post(eng, Q, 0, 0, NULL, K_PLAIN));
        CHECK_OK(iocomp_post(eng, P, 0, 0, NULL, K_CLOSE_Q));
        atomic_store(&posted, 1);
        TEST_WAIT_COUNT(&closers, 2, 10000);
        CHECK_MSG(atomic_load(&rc_q) == 0, "round %d: close(Q) nested in close(P): %d", round,
                  (int)atomic_load(&rc_q));
        CHECK_MSG(atomic_load(&rc_p) == 0, "round %d: close(P): %d", round, (int)atomic_load(&rc_p));
        CHECK_EQ(atomic_load(&plain), 1);
    }
    CHECK_OK(iocomp_engine_destroy(eng));

    cfg = test_config(2, 2, cb, NULL);
    cfg.close_timeout_ms = 3000;
    CHECK_OK(iocomp_engine_create(&cfg, &eng));
    for (int round = 0; round < 20; round++) {
        reset();
        test_once_init(&once, 2 * N2);
        atomic_store(&barrier, 0);
        atomic_store(&posted, 0);
        CHECK_OK(iocomp_post(eng, P, 0, 0, NULL, K_CLOSE_P));
        CHECK_OK(iocomp_post(eng, Q, 0, 0, NULL, K_CLOSE_Q));
        for (uint32_t i = 0; i < N2; i++) {
            CHECK_OK(iocomp_post(eng, P, 0, 2 * i, NULL, K_PLAIN));
            CHECK_OK(iocomp_post(eng, Q, 0, 2 * i + 1, NULL, K_PLAIN));
        }
        atomic_store(&posted, 1); /* the closers start now, with every packet queued */
        TEST_WAIT_COUNT(&closers, 2, 10000);
        CHECK_MSG(atomic_load(&rc_p) == 0 && atomic_load(&rc_q) == 0,
                  "round %d: two closes from callbacks: close(P) %d, close(Q) %d", round,
                  (int)atomic_load(&rc_p), (int)atomic_load(&rc_q));
        TEST_WAIT_COUNT(&plain, 2 * N2, 5000);
        test_once_check(&once, "close_nested_other part 2");
        test_once_free(&once);
    }
    CHECK_OK(iocomp_engine_destroy(eng));
    test_end();
}
