/*
 * io_close_race: submits racing a port's close (issue #3 "Tests": exactly
 * once under 100,000 submit+close races; BRIEF §4 invariants 1 and 6).
 *
 * The main thread creates a port, binds M socketpair ends to it (key = the
 * round and the descriptor), waits until a submitter got a request accepted
 * (up to 2 ms), then a random 0-20 us more, and closes it, ROUNDS
 * times (100,000 in the normal build, divided by IOCOMP_TEST_SCALE under the
 * sanitizers). Meanwhile SUBMITTERS host threads submit without pause, each
 * from its own pool of overlapped: recvs on the M descriptors (whatever port
 * they are bound to at that moment, if any) and timers on the current
 * port (10 s: the close cancels them, or, if a close is slower than that,
 * they fire with status 0); a writer thread sends bytes now and then, so some recvs complete
 * with data before the close. Checked:
 *   - a submit returns 0, or -EBADF / -ESHUTDOWN (the port closed or
 *     closing, the descriptor unbound), nothing else;
 *   - every accepted request completes exactly once (armed flag per
 *     overlapped, totals), with data (status 0, >= 1 byte) or -ECANCELED;
 *     a refused one never;
 *   - close returns 0, and no callback of a round's port starts after that
 *     close returned (the round is in the key);
 *   - bytes: received by completions + left in the sockets = sent;
 *   - submits were accepted and refused in the same run (the race ran), and
 *     on at least 90% of the rounds a request of the round completed before
 *     its close returned.
 */
#include "test.h"

#define M 8
#define SUBMITTERS 2
#define POOL 8
#define BUF 4
#define TIMER_FD 0xFFu

static iocomp_engine *eng;
static int fds[M], peers[M];
static uint64_t rounds;
static _Atomic uint64_t cur; /* round << 32 | port slot of the round's handle (see ports[]) */
static iocomp_port_t *ports; /* per round */
static atomic_uint_fast64_t closed_round, stop;
static atomic_uint_fast64_t ack_round; /* a submit was accepted while this round was current */
static atomic_uint_fast64_t accepted, refused, completed, cancelled, with_data, bytes_recv,
    bytes_sent, late, bad_rc, bad_status, fired;
static _Atomic uint32_t *round_hits; /* completions per round */

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    uint64_t r = key >> 8;
    if (r <= atomic_load(&closed_round)) {
        if (atomic_fetch_add(&late, 1) < 5)
            fprintf(stderr, "io_close_race: completion of round %" PRIu64
                            " after its port's close returned (closed round %" PRIu64 ")\n",
                    r, (uint64_t)atomic_load(&closed_round));
    }
    test_io_fire(ov, status, bytes, key);
    if (status == 0 && bytes >= 1 && bytes <= BUF && (key & 0xFF) != TIMER_FD) {
        atomic_fetch_add_explicit(&with_data, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&bytes_recv, bytes, memory_order_relaxed);
    } else if (status == 0 && bytes == 0 && (key & 0xFF) == TIMER_FD) {
        /* Its 10 s ran out before the close got to it (a slow close under
         * a sanitizer): its own result, as the contract allows. */
        atomic_fetch_add_explicit(&fired, 1, memory_order_relaxed);
    } else if (status == -ECANCELED && bytes == 0) {
        atomic_fetch_add_explicit(&cancelled, 1, memory_order_relaxed);
    } else if (atomic_fetch_add(&bad_status, 1) < 5) {
        fprintf(stderr, "io_close_race: status %d (%s) bytes %u key 0x%lx\n", status,
                test_errname(status), bytes, (unsigned long)key);
    }
    if (r >= 1 && r <= rounds)
        atomic_fetch_add_explicit(&round_hits[r], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&completed, 1, memory_order_relaxed);
}

struct submitter {
    iocomp_overlapped *ov[POOL];
    unsigned char buf[POOL][BUF];
    uint64_t rng;
};

static void *submitter_main(void *arg) {
    struct submitter *s = arg;
    unsigned next = 0;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        unsigned k = next++ % POOL;
        iocomp_overlapped *ov = s->ov[k];
        if (atomic_load_explicit(&test_io_of(ov)->armed, memory_order_acquire)) {
            if (k == POOL - 1)
                sched_yield(); /* the whole pool is in flight: let the closer run */
            continue;
        }
        uint64_t c = atomic_load(&cur);
        uint64_t x = test_rand(&s->rng);
        test_io_arm(ov);
        int rc;
        if (x % 8 == 0) {
            uint64_t r = c >> 32;
            rc = iocomp_timer(eng, ports[r], r << 8 | TIMER_FD, 10000000000ull, 0, ov);
        } else {
            rc = iocomp_recv(eng, fds[x % M], s->buf[k], BUF, 0, ov);
        }
        test_io_settle(ov, rc);
        if (rc == 0) {
            atomic_fetch_add_explicit(&accepted, 1, memory_order_relaxed);
            if (atomic_load_explicit(&ack_round, memory_order_relaxed) < (c >> 32))
                atomic_store(&ack_round, c >> 32);
        } else if (rc == -EBADF || rc == -ESHUTDOWN) {
            atomic_fetch_add_explicit(&refused, 1, memory_order_relaxed);
            /* This round's port is gone: wait for the next one rather than
             * take the closer's CPU with refusals. */
            while (atomic_load(&cur) == c && !atomic_load_explicit(&stop, memory_order_relaxed))
                sched_yield();
        } else if (atomic_fetch_add(&bad_rc, 1) < 5)
            fprintf(stderr, "io_close_race: submit returned %d (%s)\n", rc, test_errname(rc));
    }
    return NULL;
}

static void *writer_main(void *arg) {
    uint64_t rng = (uintptr_t)arg * 0x9E3779B97F4A7C15ull;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        if (send(peers[test_rand(&rng) % M], "d", 1, MSG_DONTWAIT) == 1)
            atomic_fetch_add_explicit(&bytes_sent, 1, memory_order_relaxed);
        test_sleep_us(20);
    }
    return NULL;
}

int main(void) {
    test_begin("io_close_race", 0);
    rounds = test_scaled_min(100000, 2000);
    ports = calloc(rounds + 1, sizeof *ports);
    round_hits = calloc(rounds + 1, sizeof *round_hits);
    CHECK(ports && round_hits);
    eng = test_io_engine_n(2, cb, NULL);
    for (int i = 0; i < M; i++) {
        int sv[2];
        test_socketpair(sv);
        fds[i] = sv[0];
        peers[i] = sv[1];
    }
    /* Round 0: a port that is already closed (submits before round 1 see it). */
    CHECK_OK(iocomp_port_create(eng, &ports[0]));
    CHECK_OK(iocomp_port_close(eng, ports[0]));

    static struct submitter subs[SUBMITTERS];
    pthread_t st[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) {
        subs[i].rng = 0x2545F4914F6CDD1Dull * (uint64_t)(i + 1);
        for (int k = 0; k < POOL; k++)
            subs[i].ov[k] = test_io_ov(eng, (uint64_t)(i * POOL + k));
        st[i] = test_thread(submitter_main, &subs[i]);
    }
    pthread_t wt = test_thread(writer_main, (void *)7);

    uint64_t rng = 0x853C49E6748FEA9Bull, busy_rounds = 0, close_ns_max = 0, round_ns_max = 0;
    uint64_t t0 = test_now_ns();
    for (uint64_t r = 1; r <= rounds; r++) {
        CHECK_OK(iocomp_port_create(eng, &ports[r]));
        for (int i = 0; i < M; i++)
            CHECK_OK(iocomp_bind(eng, ports[r], fds[i], (uintptr_t)(r << 8 | (unsigned)i)));
        uint64_t pub = test_now_ns();
        atomic_store(&cur, r << 32);
        /* Let the submitters in (up to 2 ms): then close while they go on. */
        uint64_t wait_end = test_now_ns() + 2000000u;
        while (atomic_load(&ack_round) < r && test_now_ns() < wait_end)
            sched_yield();
        unsigned spin = (unsigned)(test_rand(&rng) % 20000);
        uint64_t end = test_now_ns() + spin;
        while (test_now_ns() < end) {
        }
        uint64_t c0 = test_now_ns();
        int rc = iocomp_port_close(eng, ports[r]);
        uint64_t c1 = test_now_ns();
        atomic_store(&closed_round, r);
        CHECK_MSG(rc == 0, "round %" PRIu64 ": close returned %d (%s)", r, rc, test_errname(rc));
        if (c1 - c0 > close_ns_max)
            close_ns_max = c1 - c0;
        if (c1 - pub > round_ns_max)
            round_ns_max = c1 - pub;
        if (atomic_load(&round_hits[r]) > 0) /* delivered before close returned */
            busy_rounds++;
    }
    uint64_t t1 = test_now_ns();
    atomic_store(&stop, 1);
    for (int i = 0; i < SUBMITTERS; i++)
        test_join(st[i]);
    test_join(wt);
    /* Everything accepted was of a closed port: all of it has completed. */
    test_sleep_us(20000);
    uint64_t left = 0;
    for (int i = 0; i < M; i++) {
        unsigned char b[4096];
        ssize_t k;
        while ((k = recv(fds[i], b, sizeof b, MSG_DONTWAIT)) > 0)
            left += (uint64_t)k;
    }
    iocomp_stats s = test_stats(eng);
    printf("io_close_race: %s, %" PRIu64 " port closes in %.2f s (%.1f us each; longest close "
           "%.2f ms, longest round %.2f ms), %" PRIu64 " with requests of the round; submits "
           "accepted %" PRIu64 ", refused %" PRIu64 "; completions %" PRIu64 ": %" PRIu64
           " data, %" PRIu64 " cancelled, %" PRIu64 " timers fired\n",
           iocomp_backend_name(eng), rounds, (t1 - t0) / 1e9, (t1 - t0) / 1e3 / rounds,
           close_ns_max / 1e6, round_ns_max / 1e6, busy_rounds, (uint64_t)atomic_load(&accepted),
           (uint64_t)atomic_load(&refused), (uint64_t)atomic_load(&completed),
           (uint64_t)atomic_load(&with_data), (uint64_t)atomic_load(&cancelled),
           (uint64_t)atomic_load(&fired));

    CHECK_EQ(atomic_load(&late), 0);
    CHECK_EQ(atomic_load(&bad_rc), 0);
    CHECK_EQ(atomic_load(&bad_status), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_EQ(atomic_load(&completed), atomic_load(&accepted));
    CHECK_EQ(s.io_submitted, atomic_load(&accepted));
    for (int i = 0; i < SUBMITTERS; i++)
        for (int k = 0; k < POOL; k++)
            CHECK_EQ(atomic_load(&test_io_of(subs[i].ov[k])->armed), 0);
    CHECK_EQ(atomic_load(&bytes_recv) + left, atomic_load(&bytes_sent));
    CHECK(atomic_load(&accepted) > 0);
    CHECK(atomic_load(&refused) > 0);
    CHECK(atomic_load(&cancelled) > 0);
    CHECK_MSG(busy_rounds * 10 >= rounds * 9, "only %" PRIu64 " of %" PRIu64 " rounds raced a request",
              busy_rounds, rounds);
    CHECK_EQ(s.io_cq_dropped, 0);

    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&completed), atomic_load(&accepted));
    for (int i = 0; i < SUBMITTERS; i++)
        for (int k = 0; k < POOL; k++)
            iocomp_overlapped_free(subs[i].ov[k]);
    for (int i = 0; i < M; i++) {
        CHECK_OK(close(fds[i]));
        CHECK_OK(close(peers[i]));
    }
    free(ports);
    free((void *)round_hits);
    test_end();
}
