/*
 * io_tiny_rings: the smallest rings under bursts of I/O completions (issue
 * #3 "Tests": tiny rings with bursts, nothing dropped; io_uring CQ overflow
 * and SQ full; BRIEF §2 "a full ring means backpressure, never a drop", §4
 * invariant 1, §5).
 *
 * ring_entries = 4 (io_uring: SQ 4, CQ 8), local_queue_capacity = 16, two
 * workers. Requests that complete at once: 0 ns timers and 1-byte recvs on
 * socketpairs that hold 64 KiB each. Bursts:
 *   - from the host: BURST requests submitted back to back, then wait;
 *   - from callbacks: PARENTS 0 ns timers whose callbacks each submit FAN
 *     children at once (through the worker's own 4-entry SQ; their CQEs
 *     outrun the 8-entry CQ and the 16-packet local queue).
 * Every request completes exactly once (armed flag per overlapped, totals)
 * with status 0 and the right bytes (0 for timers, 1 for recvs), bytes
 * conserved (recv completions + what is left = what was put in), stats
 * io_cq_dropped == 0. io_uring: io_sq_full and io_cq_overflow must be > 0
 * (the SQ-full path ran, and the CQ overflowed into the kernel's list,
 * NODROP, and was drained from there). 100 rounds of one host burst and one
 * callback burst (divided by IOCOMP_TEST_SCALE, at least 10).
 */
#include "test.h"

#define PAIRS 16
#define FILL 65536
#define BURST 2000
#define PARENTS 32
#define FAN 64
/* Overlapped ids: host bursts 0..BURST-1; a callback burst's children
 * 0..PARENTS*FAN-1 (after the host burst finished); parents FIRST_PARENT on. */
#define FIRST_PARENT (BURST > PARENTS * FAN ? BURST : PARENTS * FAN)
#define POOL (FIRST_PARENT + PARENTS)
#define PARENT_KEY 0x9A4E47ull

static iocomp_engine *eng;
static int fds[PAIRS], peers[PAIRS];
static iocomp_overlapped *ovs[POOL];
static unsigned char rbuf[POOL];
static atomic_uint_fast64_t completed, accepted, recv_done, timer_done, bad, submit_bad;

static bool submit_one(unsigned i) {
    iocomp_overlapped *ov = ovs[i];
    test_io_arm(ov);
    int rc;
    if (i % 2)
        rc = iocomp_recv(eng, fds[i % PAIRS], &rbuf[i], 1, 0, ov);
    else
        rc = iocomp_timer(eng, IOCOMP_DEFAULT_PORT, i, 0, 0, ov);
    test_io_settle(ov, rc);
    if (rc != 0) {
        if (atomic_fetch_add(&submit_bad, 1) < 5)
            fprintf(stderr, "io_tiny_rings: submit %u: %d (%s)\n", i, rc, test_errname(rc));
        return false;
    }
    atomic_fetch_add_explicit(&accepted, 1, memory_order_relaxed);
    return true;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    uint64_t i = test_io_of(ov)->user;
    bool parent = i >= FIRST_PARENT, is_recv = !parent && (i % 2) == 1;
    uintptr_t want_key = parent ? (uintptr_t)(PARENT_KEY << 32 | (i - FIRST_PARENT))
                                : is_recv ? (uintptr_t)(0x5000u + i % PAIRS) : (uintptr_t)i;
    if (status != 0 || bytes != (is_recv ? 1u : 0u) || key != want_key) {
        if (atomic_fetch_add(&bad, 1) < 5)
            fprintf(stderr, "io_tiny_rings: request %" PRIu64 ": status %d (%s) bytes %u key 0x%lx"
                            " (want 0x%lx)\n", i, status, test_errname(status), bytes,
                    (unsigned long)key, (unsigned long)want_key);
    }
    if (is_recv)
        atomic_fetch_add_explicit(&recv_done, 1, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&timer_done, 1, memory_order_relaxed);
    if (parent) {
        /* FAN children at once, from this worker. */
        unsigned p = (unsigned)(i - FIRST_PARENT);
        for (unsigned c = 0; c < FAN; c++)
            submit_one(p * FAN + c);
    }
    atomic_fetch_add_explicit(&completed, 1, memory_order_release);
}

int main(void) {
    test_begin("io_tiny_rings", 0);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = 2;
    cfg.ring_entries = 4;
    cfg.local_queue_capacity = 16;
    cfg.on_complete = cb;
    eng = test_io_engine(&cfg);
    for (int i = 0; i < PAIRS; i++) {
        int sv[2];
        test_socketpair(sv);
        fds[i] = sv[0];
        peers[i] = sv[1];
        int sz = 4 * FILL;
        CHECK_OK(setsockopt(peers[i], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz));
        static unsigned char fill[FILL];
        CHECK_EQ(send(peers[i], fill, FILL, 0), FILL);
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, fds[i], 0x5000u + (unsigned)i));
    }
    for (unsigned i = 0; i < POOL; i++)
        ovs[i] = test_io_ov(eng, i);

    int rounds = (int)test_scaled_min(100, 10);
    uint64_t expect = 0;
    uint64_t t0 = test_now_ns();
    for (int r = 0; r < rounds; r++) {
        /* Host burst. */
        for (unsigned i = 0; i < BURST; i++)
            CHECK(submit_one(i));
        expect += BURST;
        TEST_WAIT_COUNT(&completed, expect, 20000);
        /* Callback bursts: PARENTS 0 ns timers, each callback submits FAN. */
        for (unsigned p = 0; p < PARENTS; p++) {
            iocomp_overlapped *ov = ovs[FIRST_PARENT + p];
            test_io_arm(ov);
            CHECK_OK(test_io_settle(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT,
                                                     (uintptr_t)(PARENT_KEY << 32 | p), 0, 0, ov)));
            atomic_fetch_add(&accepted, 1);
        }
        expect += PARENTS * (FAN + 1);
        TEST_WAIT_COUNT(&completed, expect, 20000);
    }
    uint64_t t1 = test_now_ns();
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&completed), expect);
    CHECK_EQ(atomic_load(&accepted), expect);
    CHECK_EQ(atomic_load(&submit_bad), 0);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    for (unsigned i = 0; i < POOL; i++)
        CHECK_EQ(atomic_load(&test_io_of(ovs[i])->armed), 0);
    /* Bytes: one per recv completion, the rest still in the sockets. */
    uint64_t left = 0;
    for (int i = 0; i < PAIRS; i++) {
        static unsigned char b[FILL];
        ssize_t k;
        while ((k = recv(fds[i], b, sizeof b, MSG_DONTWAIT)) > 0)
            left += (uint64_t)k;
    }
    CHECK_EQ(atomic_load(&recv_done) + left, (uint64_t)PAIRS * FILL);

    iocomp_stats s = test_stats(eng);
    printf("io_tiny_rings: %s, %" PRIu64 " requests (%" PRIu64 " recvs, %" PRIu64
           " timers) in %.2f s; io_sq_full %" PRIu64 ", io_cq_overflow %" PRIu64
           ", io_cq_dropped %" PRIu64 ", io_rescued %" PRIu64 ", overflows %" PRIu64 "\n",
           iocomp_backend_name(eng), expect, (uint64_t)atomic_load(&recv_done),
           (uint64_t)atomic_load(&timer_done), (t1 - t0) / 1e9, s.io_sq_full, s.io_cq_overflow,
           s.io_cq_dropped, s.io_rescued, s.overflows);
    CHECK_EQ(s.io_cq_dropped, 0);
    CHECK_EQ(s.io_submitted, expect);
    if (test_io_is_uring(eng))
    {
        CHECK_MSG(s.io_sq_full > 0, "io_uring's SQ-full path never ran (io_sq_full 0)");
        CHECK_MSG(s.io_cq_overflow > 0, "io_uring's CQ never overflowed (io_cq_overflow 0)");
    }

    CHECK_OK(iocomp_engine_destroy(eng));
    for (unsigned i = 0; i < POOL; i++)
        iocomp_overlapped_free(ovs[i]);
    for (int i = 0; i < PAIRS; i++) {
        CHECK_OK(close(fds[i]));
        CHECK_OK(close(peers[i]));
    }
    test_end();
}
