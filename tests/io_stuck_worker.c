/*
 * io_stuck_worker: a worker blocked in a callback does not strand the I/O
 * of its ring (issue #3 "Tests": a worker blocked in a callback for 500 ms,
 * completions on its ring are delivered by others meanwhile; BRIEF §2 "a
 * worker stuck in a long callback must not strand completions that its ring
 * already holds or will hold", §4 invariant 2).
 *
 * Two workers (min = max = 2, so no third thread can help). A blocker
 * callback, on worker W, first submits from the callback (through W's own
 * ring: io_uring prepares them in W's SQ, to be submitted when W next
 * polls) CB_TIMERS 0 ns timers, CB_RECVS recvs whose data is already there
 * and one recv whose data the host sends 100 ms later; then it blocks for
 * 500 ms. Meanwhile the host submits HOST_RECVS recvs with data there (its
 * hand-off spreads them over both workers' rings, W's included). Every one
 * of them must complete, exactly once with the right bytes, on a thread that
 * is not W, before the blocker returns (timestamps). On io_uring the rescue
 * counter (io_rescued) must have moved. Two rounds: the blocker sleeps
 * (off the CPU), then spins (on the CPU the whole 500 ms).
 */
#include "test.h"

#define CB_TIMERS 16
#define CB_RECVS 16
#define HOST_RECVS 16
#define N_REQ (CB_TIMERS + CB_RECVS + 1 + HOST_RECVS)
#define BLOCK_MS 500
#define KEY_BLOCKER 0xB10Cu

static iocomp_engine *eng;
static int fds[N_REQ], peers[N_REQ];
static iocomp_overlapped *ovs[N_REQ], *blocker_ov;
static unsigned char bufs[N_REQ][8];
static atomic_int blocker_tid, blocker_in, spin_block;
static atomic_uint_fast64_t block_end_ns, submit_bad, calls;

static int submit(unsigned i) {
    iocomp_overlapped *ov = ovs[i];
    test_io_arm(ov);
    int rc = i < CB_TIMERS ? iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0x7000u + i, 0, 0, ov)
                           : iocomp_recv(eng, fds[i], bufs[i], sizeof bufs[i], 0, ov);
    rc = test_io_settle(ov, rc);
    if (rc != 0 && atomic_fetch_add(&submit_bad, 1) < 5)
        fprintf(stderr, "io_stuck_worker: submit %u: %d (%s)\n", i, rc, test_errname(rc));
    return rc;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
    if (key != KEY_BLOCKER)
        return;
    atomic_store(&blocker_tid, (int)test_gettid());
    for (unsigned i = 0; i < CB_TIMERS + CB_RECVS + 1; i++)
        submit(i);
    atomic_store(&blocker_in, 1);
    uint64_t end = test_now_ns() + (uint64_t)BLOCK_MS * 1000000u;
    if (atomic_load(&spin_block)) { /* on the CPU all the time */
        while (test_now_ns() < end) {
        }
    } else { /* off the CPU */
        while (test_now_ns() < end)
            test_sleep_us(1000);
    }
    atomic_store(&block_end_ns, test_now_ns());
}

int main(void) {
    test_begin("io_stuck_worker", 0);
    eng = test_io_engine_n(2, cb, NULL);
    for (unsigned i = 0; i < N_REQ; i++) {
        int sv[2];
        test_socketpair(sv);
        fds[i] = sv[0];
        peers[i] = sv[1];
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, fds[i], 0x5000u + i));
        ovs[i] = test_io_ov(eng, i);
    }
    blocker_ov = test_io_ov(eng, 999);
    const unsigned late = CB_TIMERS + CB_RECVS; /* the recv fed during the block */
    int rounds = 2;

    for (int round = 0; round < rounds; round++) {
        iocomp_stats s0 = test_stats(eng);
        atomic_store(&blocker_in, 0);
        atomic_store(&spin_block, round == 1);
        atomic_store(&block_end_ns, 0);
        uint64_t base[N_REQ];
        for (unsigned i = 0; i < N_REQ; i++) {
            base[i] = atomic_load(&test_io_of(ovs[i])->completions);
            if (i >= CB_TIMERS && i != late)
                CHECK_EQ(send(peers[i], "data", 4, 0), 4); /* there before the recv */
        }
        uint64_t bb = atomic_load(&test_io_of(blocker_ov)->completions);
        test_io_arm(blocker_ov);
        CHECK_OK(test_io_settle(blocker_ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_BLOCKER,
                                                         0, 0, blocker_ov)));
        CHECK(TEST_WAIT_UNTIL(atomic_load(&blocker_in) == 1, 5000));
        uint64_t t_in = test_now_ns();
        for (unsigned i = late + 1; i < N_REQ; i++)
            CHECK_OK(submit(i));
        test_sleep_us(100000);
        CHECK_EQ(send(peers[late], "late", 4, 0), 4);

        /* All delivered while the blocker still blocks. */
        bool all = TEST_WAIT_UNTIL(({
                                       bool ok = true;
                                       for (unsigned i = 0; i < N_REQ && ok; i++)
                                           ok = atomic_load(&test_io_of(ovs[i])->completions) ==
                                                base[i] + 1;
                                       ok;
                                   }),
                                   5000);
        test_io_wait(blocker_ov, bb + 1, 5000);
        CHECK(TEST_WAIT_UNTIL(atomic_load(&block_end_ns) != 0, 5000));
        uint64_t end = atomic_load(&block_end_ns);
        int wtid = atomic_load(&blocker_tid);
        unsigned stranded = 0;
        for (unsigned i = 0; i < N_REQ; i++) {
            struct test_io *t = test_io_of(ovs[i]);
            const char *what = i < CB_TIMERS ? "timer" : i < late ? "recv" : i == late ? "late recv" : "host recv";
            if (atomic_load(&t->completions) != base[i] + 1 || atomic_load(&t->done_ns) >= end) {
                if (stranded++ < 8)
                    fprintf(stderr, "io_stuck_worker: round %d: %s %u %s (%.1f ms after the "
                                    "blocker started, the blocker ended at %.1f ms)\n",
                            round, what, i,
                            atomic_load(&t->completions) != base[i] + 1 ? "never completed"
                                                                         : "completed late",
                            (atomic_load(&t->done_ns) - (double)t_in) / 1e6,
                            (end - (double)t_in) / 1e6);
                continue;
            }
            CHECK_EQ(atomic_load(&t->status), 0);
            CHECK_EQ(atomic_load(&t->bytes), i < CB_TIMERS ? 0 : 4);
            CHECK(atomic_load(&t->tid) != wtid);
        }
        CHECK_MSG(all && stranded == 0, "round %d: %u of %d requests were not delivered while "
                                        "their worker's callback blocked",
                  round, stranded, N_REQ);
        CHECK(memcmp(bufs[late], "late", 4) == 0);
        iocomp_stats s1 = test_stats(eng);
        printf("io_stuck_worker: %s, round %d: %d requests delivered by the other worker "
               "during a %d ms callback %s; io_rescued +%" PRIu64 "\n",
               iocomp_backend_name(eng), round, N_REQ, BLOCK_MS,
               round == 1 ? "spinning on the CPU" : "sleeping", s1.io_rescued - s0.io_rescued);
        if (test_io_is_uring(eng))
            CHECK_MSG(s1.io_rescued > s0.io_rescued, "io_uring: nothing was rescued");
    }
    CHECK_EQ(atomic_load(&submit_bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    for (unsigned i = 0; i < N_REQ; i++) {
        iocomp_overlapped_free(ovs[i]);
        CHECK_OK(close(fds[i]));
        CHECK_OK(close(peers[i]));
    }
    iocomp_overlapped_free(blocker_ov);
    test_end();
}
