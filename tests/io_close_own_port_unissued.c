/*
 * io_close_own_port_unissued: a callback submits I/O on its own port and
 * closes that port before returning (issue #10 item 4).
 *
 * One worker. A posted packet's callback, on port P: binds nothing new but
 * submits, on descriptors bound to P, a recv that will wait, a recv whose
 * data is already there, a send, and a one-hour timer; from a callback
 * those are queued in the worker's ring (io_uring) and not yet issued to
 * the kernel when the callback goes on. Then, in the same callback,
 * iocomp_port_close(P): it must return 0 (not hang on the worker that is
 * itself), and each of the four requests gets exactly one completion
 * (-ECANCELED, or its own result for the ones that could finish), all
 * delivered before iocomp_port_close returns (nested, on this worker); none
 * after. 50 rounds, each on a new port. Every backend.
 */
#include "test.h"

#define ROUNDS 50
#define KEY_GO 0x60u

static iocomp_engine *eng;
static iocomp_port_t port;
static int sa[2], sb[2];
static iocomp_overlapped *ovs[4];
static char rbuf[2][16];
static atomic_int close_rc, in_close, done_in_close, round_done;
static atomic_int late;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_GO) {
        for (int i = 0; i < 4; i++) test_io_arm(ovs[i]);
        CHECK_OK(test_io_settle(ovs[0], iocomp_recv(eng, sa[0], rbuf[0], sizeof rbuf[0], 0, ovs[0])));
        CHECK_OK(test_io_settle(ovs[1], iocomp_recv(eng, sb[0], rbuf[1], sizeof rbuf[1], 0, ovs[1])));
        CHECK_OK(test_io_settle(ovs[2], iocomp_send(eng, sb[0], "out", 3, 0, ovs[2])));
        CHECK_OK(test_io_settle(ovs[3], iocomp_timer(eng, port, 0x7177u, 3600ull * 1000000000ull, 0, ovs[3])));
        atomic_store(&in_close, 1);
        atomic_store(&close_rc, iocomp_port_close(eng, port));
        atomic_store(&in_close, 0);
        atomic_store(&round_done, 1);
        return;
    }
    if (!atomic_load(&in_close)) atomic_fetch_add(&late, 1);
    else atomic_fetch_add(&done_in_close, 1);
    test_io_fire(ov, status, bytes, key);
}

int main(void) {
    test_begin("io_close_own_port_unissued", 60);
    eng = test_io_engine_n(1, cb, NULL);
    for (int i = 0; i < 4; i++) ovs[i] = test_io_ov(eng, (uint64_t)i);
    for (int r = 0; r < ROUNDS; r++) {
        CHECK_OK(iocomp_port_create(eng, &port));
        test_socketpair(sa);
        test_socketpair(sb);
        CHECK_EQ(write(sb[1], "there", 5), 5);
        CHECK_OK(iocomp_bind(eng, port, sa[0], 0xAu));
        CHECK_OK(iocomp_bind(eng, port, sb[0], 0xBu));
        uint64_t before[4];
        for (int i = 0; i < 4; i++) before[i] = atomic_load(&test_io_of(ovs[i])->completions);
        atomic_store(&round_done, 0);
        atomic_store(&done_in_close, 0);
        CHECK_OK(iocomp_post(eng, port, 0, 0, NULL, KEY_GO));
        CHECK_MSG(TEST_WAIT_UNTIL(atomic_load(&round_done) == 1, 10000), "round %d: the close did not return", r);
        CHECK_MSG(atomic_load(&close_rc) == 0, "round %d: iocomp_port_close from the callback: %d (%s)", r,
                  atomic_load(&close_rc), iocomp_strerror(atomic_load(&close_rc)));
        CHECK_MSG(atomic_load(&done_in_close) == 4, "round %d: %d of 4 completions before the close returned", r,
                  atomic_load(&done_in_close));
        for (int i = 0; i < 4; i++)
            CHECK_EQU(atomic_load(&test_io_of(ovs[i])->completions), before[i] + 1);
        CHECK_EQ(atomic_load(&test_io_of(ovs[0])->status), -ECANCELED); /* nothing came on sa */
        CHECK_EQ(atomic_load(&test_io_of(ovs[3])->status), -ECANCELED); /* a one-hour timer */
        int32_t s1 = atomic_load(&test_io_of(ovs[1])->status), s2 = atomic_load(&test_io_of(ovs[2])->status);
        CHECK_MSG(s1 == -ECANCELED || (s1 == 0 && atomic_load(&test_io_of(ovs[1])->bytes) == 5), "recv with data: %d", s1);
        CHECK_MSG(s2 == -ECANCELED || (s2 == 0 && atomic_load(&test_io_of(ovs[2])->bytes) == 3), "send: %d", s2);
        CHECK_EQ(iocomp_post(eng, port, 0, 0, NULL, 1), -EBADF);
        for (int i = 0; i < 2; i++) {
            close(sa[i]);
            close(sb[i]);
        }
    }
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&late), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    for (int i = 0; i < 4; i++) iocomp_overlapped_free(ovs[i]);
    CHECK_EQU(atomic_load(&test_io_bad), 0);
    test_end();
    return 0;
}
