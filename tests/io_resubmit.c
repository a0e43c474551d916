/*
 * io_resubmit: a callback that resubmits its own request 100,000 times
 * (BRIEF §5 "callback that resubmits itself 100,000 times", §4 invariants 1
 * and 7, with I/O requests: the overlapped is idle again when its callback
 * starts, and a worker's own ring takes the resubmission).
 *
 * Two chains run at once, N links each (100,000, divided by
 * IOCOMP_TEST_SCALE under the sanitizers, at least 10,000):
 *   - a 0 ns timer whose callback submits the same overlapped again;
 *   - a recv on a socketpair whose callback checks the byte it got (the
 *     link's number mod 256), resubmits the recv and then sends the next
 *     byte from the other end with send(2): the chain feeds itself.
 * Each chain's callbacks never overlap (a flag per chain), each link comes
 * exactly once and in order, the chain stops at exactly N (no callback
 * after, 50 ms later), every resubmit returns 0.
 */
#include "test.h"

#define KEY_TIMER 0x7131u
#define KEY_RECV 0x4EC7u

static iocomp_engine *eng;
static uint64_t n_links;
static iocomp_overlapped *tov, *rov;
static int rfd, wfd;
static unsigned char rbyte;
struct chain {
    atomic_int inside;
    atomic_uint_fast64_t links, overlap, bad;
};
static struct chain timer_chain, recv_chain;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    struct chain *c = key == KEY_TIMER ? &timer_chain : &recv_chain;
    if (atomic_exchange(&c->inside, 1) != 0)
        atomic_fetch_add(&c->overlap, 1);
    uint64_t k = atomic_load(&c->links); /* this link's number, 0-based */
    if (key == KEY_TIMER) {
        if (status != 0 || bytes != 0 || ov != tov)
            atomic_fetch_add(&c->bad, 1);
    } else {
        if (status != 0 || bytes != 1 || ov != rov || rbyte != (unsigned char)k)
            atomic_fetch_add(&c->bad, 1);
    }
    atomic_store(&c->links, k + 1);
    atomic_store(&c->inside, 0);
    if (k + 1 >= n_links)
        return; /* the end of the chain */
    test_io_arm(ov);
    int rc;
    if (key == KEY_TIMER) {
        rc = iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_TIMER, 0, 0, ov);
    } else {
        rc = iocomp_recv(eng, rfd, &rbyte, 1, 0, ov);
        if (rc == 0) {
            unsigned char next = (unsigned char)(k + 1);
            if (send(wfd, &next, 1, 0) != 1)
                atomic_fetch_add(&c->bad, 1);
        }
    }
    if (test_io_settle(ov, rc) != 0)
        atomic_fetch_add(&c->bad, 1);
}

int main(void) {
    test_begin("io_resubmit", 0);
    n_links = test_scaled_min(100000, 10000);
    eng = test_io_engine_n(2, cb, NULL);
    int sv[2];
    test_socketpair(sv);
    rfd = sv[0];
    wfd = sv[1];
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, rfd, KEY_RECV));
    tov = test_io_ov(eng, 1);
    rov = test_io_ov(eng, 2);

    uint64_t t0 = test_now_ns();
    test_io_arm(tov);
    CHECK_OK(test_io_settle(tov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_TIMER, 0, 0, tov)));
    test_io_arm(rov);
    CHECK_OK(test_io_settle(rov, iocomp_recv(eng, rfd, &rbyte, 1, 0, rov)));
    unsigned char first = 0;
    CHECK_EQ(send(wfd, &first, 1, 0), 1);
    TEST_WAIT_COUNT(&timer_chain.links, n_links, 40000);
    TEST_WAIT_COUNT(&recv_chain.links, n_links, 40000);
    uint64_t t1 = test_now_ns();
    test_sleep_us(50000);

    printf("io_resubmit: %s, two chains of %" PRIu64 " resubmissions in %.2f s\n",
           iocomp_backend_name(eng), n_links, (t1 - t0) / 1e9);
    struct chain *cs[2] = {&timer_chain, &recv_chain};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(atomic_load(&cs[i]->links), n_links);
        CHECK_EQ(atomic_load(&cs[i]->overlap), 0);
        CHECK_EQ(atomic_load(&cs[i]->bad), 0);
    }
    CHECK_EQ(atomic_load(&test_io_of(tov)->completions), n_links);
    CHECK_EQ(atomic_load(&test_io_of(rov)->completions), n_links);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    iocomp_stats s = test_stats(eng);
    CHECK_EQ(s.io_submitted, 2 * n_links);
    unsigned char b;
    CHECK_EQ(recv(rfd, &b, 1, MSG_DONTWAIT), -1); /* every byte was taken by the chain */
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&timer_chain.links), n_links);
    iocomp_overlapped_free(tov);
    iocomp_overlapped_free(rov);
    CHECK_OK(close(rfd));
    CHECK_OK(close(wfd));
    test_end();
}
