/*
 * io_cancel: cancellation, one request and every request of a descriptor
 * (CancelIoEx semantics; issue #3 "Tests": every operation ... cancel; BRIEF
 * §4 invariants 1 and 7).
 *
 *   - iocomp_cancel() of a pending recv, accept, poll, timer: returns 0, the
 *     request completes exactly once with -ECANCELED and bytes 0 (and well
 *     before a timer's own time); a second cancel then says -ENOENT, as does
 *     a cancel of an overlapped never submitted or whose request completed
 *     normally (its data completion stays the only one);
 *   - iocomp_cancel_fd() with 5 recvs and a poll pending on one descriptor
 *     returns 6 and each completes -ECANCELED once; a recv pending on
 *     another descriptor is untouched (completes with its data later);
 *     a descriptor with nothing pending gives 0, fd -1 gives -EBADF;
 *   - iocomp_unbind() cancels the 3 recvs pending on the descriptor; a
 *     submit after it is -EBADF;
 *   - a callback cancels another pending request (reentrancy): 0, and that
 *     request completes -ECANCELED;
 *   - stats.io_cancels counts the cancels asked.
 * Every request gets exactly one callback (the armed flag of test.h), the
 * total equals the accepted count.
 */
#include "test.h"

#include <poll.h>

static iocomp_engine *eng;
static atomic_uint_fast64_t calls, accepted;
static _Atomic(iocomp_overlapped *) victim_of_cb; /* cancelled from a callback */
static atomic_int cb_cancel_rc = 1;

#define KEY_TRIGGER 0x7716u

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    iocomp_overlapped *v = atomic_load(&victim_of_cb);
    if (key == KEY_TRIGGER && v)
        atomic_store(&cb_cancel_rc, iocomp_cancel(eng, v));
    atomic_fetch_add(&calls, 1);
}

static void submit(iocomp_overlapped *ov, int rc) {
    CHECK_EQ(test_io_settle(ov, rc), 0);
    atomic_fetch_add(&accepted, 1);
}
#define SUBMIT(ov, call) (test_io_arm(ov), submit((ov), (call)))

static uint64_t done(iocomp_overlapped *ov) { return atomic_load(&test_io_of(ov)->completions); }

/* Exactly n completions so far, the last one -ECANCELED with bytes 0. */
static void expect_cancelled(iocomp_overlapped *ov, uint64_t n, int line) {
    struct test_io *t = test_io_wait(ov, n, 5000);
    CHECK_MSG(atomic_load(&t->status) == -ECANCELED, "line %d: status %d (%s)", line,
              (int)atomic_load(&t->status), test_errname(atomic_load(&t->status)));
    CHECK_MSG(atomic_load(&t->bytes) == 0, "line %d: bytes %u", line,
              (unsigned)atomic_load(&t->bytes));
}
#define EXPECT_CANCELLED(ov, n) expect_cancelled((ov), (n), __LINE__)

static void cancel_one(iocomp_overlapped *ov) {
    char buf[64];
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 1));

    /* Never submitted. */
    CHECK_EQ(iocomp_cancel(eng, ov), -ENOENT);
    CHECK_EQ(iocomp_cancel(NULL, ov), -EINVAL);
    CHECK_EQ(iocomp_cancel(eng, NULL), -EINVAL);

    /* A pending recv. */
    uint64_t n = done(ov);
    SUBMIT(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov));
    test_sleep_us(5000);
    CHECK_EQ(done(ov), n);
    CHECK_OK(iocomp_cancel(eng, ov));
    EXPECT_CANCELLED(ov, n + 1);
    CHECK_EQ(iocomp_cancel(eng, ov), -ENOENT);
    /* The data sent after the cancel was not taken by the cancelled recv. */
    CHECK_EQ(send(sv[1], "abc", 3, 0), 3);
    test_sleep_us(20000);
    CHECK_EQ(done(ov), n + 1);
    CHECK_EQ(recv(sv[0], buf, sizeof buf, MSG_DONTWAIT), 3);

    /* Completed normally first: cancel finds nothing, no second callback. */
    CHECK_EQ(send(sv[1], "de", 2, 0), 2);
    n = done(ov);
    SUBMIT(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov));
    struct test_io *t = test_io_wait(ov, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 2);
    CHECK_EQ(iocomp_cancel(eng, ov), -ENOENT);
    test_sleep_us(20000);
    CHECK_EQ(done(ov), n + 1);

    /* A pending poll. */
    n = done(ov);
    SUBMIT(ov, iocomp_poll(eng, sv[0], POLLIN, ov));
    test_sleep_us(5000);
    CHECK_OK(iocomp_cancel(eng, ov));
    EXPECT_CANCELLED(ov, n + 1);

    /* A pending timer (10 s): cancelled long before. */
    n = done(ov);
    uint64_t t0 = test_now_ns();
    SUBMIT(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 7, 10000000000ull, 0, ov));
    test_sleep_us(5000);
    CHECK_OK(iocomp_cancel(eng, ov));
    EXPECT_CANCELLED(ov, n + 1);
    CHECK(test_now_ns() - t0 < 5000000000ull);
    CHECK_EQU(atomic_load(&test_io_of(ov)->key), 7);
    /* An absolute one, far away. */
    n = done(ov);
    SUBMIT(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 8, test_now_ns() + 3600000000000ull,
                            IOCOMP_TIMER_ABS, ov));
    CHECK_OK(iocomp_cancel(eng, ov));
    EXPECT_CANCELLED(ov, n + 1);

    /* A pending accept. */
    struct sockaddr_in la;
    int lfd = test_tcp_socket(true, &la);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, lfd, 2));
    n = done(ov);
    SUBMIT(ov, iocomp_accept(eng, lfd, NULL, NULL, SOCK_CLOEXEC, ov));
    test_sleep_us(5000);
    CHECK_OK(iocomp_cancel(eng, ov));
    EXPECT_CANCELLED(ov, n + 1);
    CHECK_OK(iocomp_close_fd(eng, lfd));

    /* Cancel right after submit, no pause: one completion, data or cancel
     * (here nothing can arrive, so -ECANCELED). */
    for (int i = 0; i < 200; i++) {
        n = done(ov);
        SUBMIT(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov));
        CHECK_OK(iocomp_cancel(eng, ov));
        EXPECT_CANCELLED(ov, n + 1);
    }

    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
}

static void cancel_fd_and_unbind(iocomp_overlapped **ovs) {
    char bufs[8][16];
    int a[2], b[2];
    test_socketpair(a);
    test_socketpair(b);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a[0], 0xA));
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, b[0], 0xB));
    CHECK_EQ(iocomp_cancel_fd(eng, -1), -EBADF);
    CHECK_EQ(iocomp_cancel_fd(NULL, a[0]), -EINVAL);
    CHECK_EQ(iocomp_cancel_fd(eng, a[0]), 0); /* nothing pending */

    uint64_t n[8];
    for (int i = 0; i < 8; i++)
        n[i] = done(ovs[i]);
    for (int i = 0; i < 5; i++)
        SUBMIT(ovs[i], iocomp_recv(eng, a[0], bufs[i], sizeof bufs[i], 0, ovs[i]));
    SUBMIT(ovs[5], iocomp_poll(eng, a[0], POLLIN, ovs[5]));
    SUBMIT(ovs[6], iocomp_recv(eng, b[0], bufs[6], sizeof bufs[6], 0, ovs[6])); /* other fd */
    /* A timer is not a request of any descriptor. */
    SUBMIT(ovs[7], iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 3600000000000ull, 0, ovs[7]));
    test_sleep_us(10000);
    iocomp_stats s0 = test_stats(eng);
    CHECK_EQ(iocomp_cancel_fd(eng, a[0]), 6);
    for (int i = 0; i < 6; i++)
        EXPECT_CANCELLED(ovs[i], n[i] + 1);
    iocomp_stats s1 = test_stats(eng);
    CHECK_EQ(s1.io_cancels - s0.io_cancels, 6);
    test_sleep_us(20000);
    CHECK_EQ(done(ovs[6]), n[6]);
    CHECK_EQ(done(ovs[7]), n[7]);
    CHECK_EQ(iocomp_cancel_fd(eng, a[0]), 0); /* nothing left */
    /* The other descriptor's recv still works. */
    CHECK_EQ(send(b[1], "bee", 3, 0), 3);
    struct test_io *t = test_io_wait(ovs[6], n[6] + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 3);
    CHECK_EQU(atomic_load(&t->key), 0xB);
    CHECK_OK(iocomp_cancel(eng, ovs[7]));
    EXPECT_CANCELLED(ovs[7], n[7] + 1);

    /* unbind cancels what is pending on the descriptor. */
    for (int i = 0; i < 3; i++) {
        n[i] = done(ovs[i]);
        SUBMIT(ovs[i], iocomp_recv(eng, a[0], bufs[i], sizeof bufs[i], 0, ovs[i]));
    }
    test_sleep_us(5000);
    CHECK_OK(iocomp_unbind(eng, a[0]));
    for (int i = 0; i < 3; i++)
        EXPECT_CANCELLED(ovs[i], n[i] + 1);
    test_io_arm(ovs[0]);
    CHECK_EQ(test_io_settle(ovs[0], iocomp_recv(eng, a[0], bufs[0], 16, 0, ovs[0])), -EBADF);
    CHECK_EQ(iocomp_unbind(eng, a[0]), -ENOENT);

    /* A callback cancels another request: the trigger is a 1 ms timer whose
     * callback cancels the pending recv on b. */
    n[1] = done(ovs[1]);
    n[2] = done(ovs[2]);
    SUBMIT(ovs[1], iocomp_recv(eng, b[0], bufs[1], sizeof bufs[1], 0, ovs[1]));
    atomic_store(&victim_of_cb, ovs[1]);
    SUBMIT(ovs[2], iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_TRIGGER, 1000000, 0, ovs[2]));
    test_io_wait(ovs[2], n[2] + 1, 5000);
    EXPECT_CANCELLED(ovs[1], n[1] + 1);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&cb_cancel_rc) != 1, 5000));
    CHECK_EQ(atomic_load(&cb_cancel_rc), 0);
    atomic_store(&victim_of_cb, NULL);

    CHECK_OK(close(a[0]));
    CHECK_OK(close(a[1]));
    CHECK_OK(iocomp_close_fd(eng, b[0]));
    CHECK_OK(close(b[1]));
}

int main(void) {
    test_begin("io_cancel", 0);
    eng = test_io_engine_n(2, cb, NULL);
    printf("io_cancel: backend %s\n", iocomp_backend_name(eng));
    iocomp_overlapped *ovs[8];
    for (int i = 0; i < 8; i++)
        ovs[i] = test_io_ov(eng, (uint64_t)i);

    cancel_one(ovs[0]);
    cancel_fd_and_unbind(ovs);

    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    for (int i = 0; i < 8; i++)
        iocomp_overlapped_free(ovs[i]);
    test_end();
}
