/*
 * io_cancel_sq_full: a host thread that cancels while the owner's SQ is full
 * does not submit the owner's requests (audit, suspected item). On io_uring
 * the canceller used to make room by calling io_uring_submit itself: the
 * kernel then counted the owner's prepared requests as the host thread's,
 * and cancelled them when that thread exited.
 *
 * One worker, ring_entries 4. A recv A is issued (in the kernel). Then a
 * callback submits recvs B..E (4 SQEs prepared, the SQ full), and starts a
 * thread that cancels A and exits; the callback joins it and returns. Then
 * data arrives for B..E: each completes with its byte, none -ECANCELED; A
 * completes once -ECANCELED; the cancel returned 0. 10 rounds.
 */
#include "test.h"

#define NB 4
#define KEY_RUN 0x5EEDu

static iocomp_engine *eng;
static int sa[2], sb[NB][2];
static iocomp_overlapped *ova, *ovb[NB];
static char abuf[4], bbuf[NB][4];
static atomic_int cancel_rc;
static atomic_uint_fast64_t runs;

static void *canceller(void *arg) {
    (void)arg;
    atomic_store(&cancel_rc, iocomp_cancel(eng, ova));
    return NULL; /* and the thread exits */
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_RUN) {
        for (int i = 0; i < NB; i++) {
            test_io_arm(ovb[i]);
            CHECK_OK(test_io_settle(ovb[i], iocomp_recv(eng, sb[i][0], bbuf[i], sizeof bbuf[i], 0, ovb[i])));
        }
        pthread_t t = test_thread(canceller, NULL);
        test_join(t);
        atomic_fetch_add(&runs, 1);
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

int main(void) {
    test_begin("io_cancel_sq_full", 0);
    iocomp_config cfg = test_config(1, 1, cb, NULL);
    cfg.ring_entries = 4;
    eng = test_io_engine(&cfg);
    test_socketpair(sa);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sa[0], 100));
    ova = test_io_ov(eng, 100);
    for (int i = 0; i < NB; i++) {
        test_socketpair(sb[i]);
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sb[i][0], (uintptr_t)i));
        ovb[i] = test_io_ov(eng, (uint64_t)i);
    }
    for (int round = 0; round < 10; round++) {
        uint64_t an = atomic_load(&test_io_of(ova)->completions);
        test_io_arm(ova);
        CHECK_OK(test_io_settle(ova, iocomp_recv(eng, sa[0], abuf, sizeof abuf, 0, ova)));
        test_sleep_us(20000); /* A reaches the kernel */
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_RUN));
        TEST_WAIT_COUNT(&runs, (uint64_t)round + 1, 5000);
        CHECK_EQ(atomic_load(&cancel_rc), 0);
        struct test_io *ta = test_io_wait(ova, an + 1, 3000);
        CHECK_EQ(atomic_load(&ta->status), -ECANCELED);
        test_sleep_us(20000); /* a wrongly cancelled B..E would complete now */
        for (int i = 0; i < NB; i++)
            CHECK_EQ(send(sb[i][1], "b", 1, 0), 1);
        for (int i = 0; i < NB; i++) {
            struct test_io *tb = test_io_wait(ovb[i], (uint64_t)round + 1, 3000);
            CHECK_MSG(atomic_load(&tb->status) == 0, "round %d: recv %c (prepared by the owner while a host "
                      "thread cancelled another request and exited) completed %d", round, 'B' + i,
                      (int)atomic_load(&tb->status));
            CHECK_EQ(atomic_load(&tb->bytes), 1);
        }
    }
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(ova);
    CHECK_OK(close(sa[0]));
    CHECK_OK(close(sa[1]));
    for (int i = 0; i < NB; i++) {
        iocomp_overlapped_free(ovb[i]);
        CHECK_OK(close(sb[i][0]));
        CHECK_OK(close(sb[i][1]));
    }
    test_end();
}
