/*
 * io_cancel_race: cancel racing completion (issue #3 "Tests": exactly once
 * under 1,000,000 submit+cancel races; BRIEF §4 invariant 1 "cancel racing
 * completion", §5 "cancel racing completion a million times").
 *
 * N operations in all (1,000,000 in the normal build, divided by
 * IOCOMP_TEST_SCALE under the sanitizers), each a recv of up to 8 bytes on
 * one of LANES socketpairs while a writer thread sends single bytes to
 * random lanes at random moments, so that data and cancel race for every
 * request:
 *   - CB_LANES lanes are driven by their callbacks: the completion of the
 *     lane's recv resubmits it from the callback (the worker's own ring) and,
 *     every other time, cancels it at once from the same callback;
 *   - a canceller thread cancels random callback lanes' overlapped all the
 *     time (a host thread's cancel against the worker's completion and
 *     resubmission);
 *   - HOST_LANES lanes are driven by host threads: submit, a random pause of
 *     0-3 us, cancel, wait for the completion.
 * Every accepted submit gets exactly one completion (per-overlapped armed
 * flag; the totals), either data (status 0, 1..8 bytes) or -ECANCELED with 0
 * bytes, nothing else; iocomp_cancel returns only 0 or -ENOENT; no byte is
 * lost or delivered twice: bytes received by completions plus what is left
 * in the sockets at the end equal the bytes sent. Both outcomes must occur
 * (the race really ran). The rate is printed.
 */
#include "test.h"

#define CB_LANES 8
#define HOST_LANES 2
#define LANES (CB_LANES + HOST_LANES)
#define BUF 8

struct lane {
    int fd, peer;
    iocomp_overlapped *ov;
    unsigned char buf[BUF];
    atomic_int done;    /* the chain has ended */
    uint64_t resubmits; /* by its callbacks (one at a time: the chain is sequential) */
};

static iocomp_engine *eng;
static struct lane lanes[LANES];
static uint64_t n_ops;
static atomic_uint_fast64_t claimed, completed, data_done, cancelled_done, bytes_recv, bytes_sent;
static atomic_uint_fast64_t cancel_ok, cancel_noent, cancel_bad, submit_bad, status_bad;
static atomic_int lanes_done, stop_writer;

static bool claim(void) {
    if (atomic_load_explicit(&claimed, memory_order_relaxed) >= n_ops)
        return false;
    if (atomic_fetch_add(&claimed, 1) >= n_ops) {
        atomic_fetch_sub(&claimed, 1);
        return false;
    }
    return true;
}

static void note_cancel(int rc) {
    if (rc == 0)
        atomic_fetch_add_explicit(&cancel_ok, 1, memory_order_relaxed);
    else if (rc == -ENOENT)
        atomic_fetch_add_explicit(&cancel_noent, 1, memory_order_relaxed);
    else
        atomic_fetch_add(&cancel_bad, 1);
}

/* Submits lane l's recv; false if refused (counted as a failure). */
static bool submit(struct lane *l) {
    test_io_arm(l->ov);
    int rc = test_io_settle(l->ov, iocomp_recv(eng, l->fd, l->buf, BUF, 0, l->ov));
    if (rc != 0) {
        atomic_fetch_add(&submit_bad, 1);
        fprintf(stderr, "io_cancel_race: recv refused: %d %s\n", rc, test_errname(rc));
        return false;
    }
    return true;
}

static void account(int32_t status, uint32_t bytes) {
    atomic_fetch_add_explicit(&completed, 1, memory_order_relaxed);
    if (status == 0 && bytes >= 1 && bytes <= BUF) {
        atomic_fetch_add_explicit(&data_done, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&bytes_recv, bytes, memory_order_relaxed);
    } else if (status == -ECANCELED && bytes == 0) {
        atomic_fetch_add_explicit(&cancelled_done, 1, memory_order_relaxed);
    } else {
        if (atomic_fetch_add(&status_bad, 1) < 5)
            fprintf(stderr, "io_cancel_race: completion with status %d (%s), bytes %u\n", status,
                    test_errname(status), bytes);
    }
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    account(status, bytes);
    struct lane *l = &lanes[key];
    if (key >= CB_LANES)
        return; /* a host lane: its thread waits for this */
    if (claim()) {
        /* Every other time: cancel at once, from here. Decided before the
         * submit: the completion may run on the other worker before it
         * returns. */
        bool cancel_now = l->resubmits++ & 1;
        if (submit(l)) {
            if (cancel_now)
                note_cancel(iocomp_cancel(eng, ov));
            return;
        }
    }
    atomic_store(&l->done, 1);
    atomic_fetch_add(&lanes_done, 1);
}

static void *writer(void *arg) {
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ (uintptr_t)arg;
    while (!atomic_load_explicit(&stop_writer, memory_order_relaxed)) {
        struct lane *l = &lanes[test_rand(&rng) % LANES];
        if (send(l->peer, "b", 1, MSG_DONTWAIT) == 1)
            atomic_fetch_add_explicit(&bytes_sent, 1, memory_order_relaxed);
        unsigned spin = (unsigned)(test_rand(&rng) % 4000);
        uint64_t end = test_now_ns() + spin;
        while (test_now_ns() < end) {
        }
    }
    return NULL;
}

static void *canceller(void *arg) {
    uint64_t rng = 0xC2B2AE3D27D4EB4Full ^ (uintptr_t)arg;
    unsigned k = 0;
    while (atomic_load(&lanes_done) < LANES) {
        struct lane *l = &lanes[test_rand(&rng) % CB_LANES];
        note_cancel(iocomp_cancel(eng, l->ov));
        if (++k % 8 == 0)
            sched_yield();
    }
    return NULL;
}

static void *host_lane(void *arg) {
    struct lane *l = &lanes[(uintptr_t)arg];
    uint64_t rng = 0x165667B19E3779F9ull ^ (uintptr_t)arg;
    uint64_t n = 0;
    while (claim()) {
        if (!submit(l))
            break;
        unsigned spin = (unsigned)(test_rand(&rng) % 3000);
        uint64_t end = test_now_ns() + spin;
        while (test_now_ns() < end) {
        }
        note_cancel(iocomp_cancel(eng, l->ov));
        n++;
        if (!TEST_WAIT_UNTIL(atomic_load(&test_io_of(l->ov)->completions) >= n, 10000)) {
            fprintf(stderr, "io_cancel_race: host lane %u: completion %" PRIu64
                            " missing after a cancel (10 s)\n", (unsigned)(uintptr_t)arg, n);
            abort();
        }
    }
    atomic_store(&l->done, 1);
    atomic_fetch_add(&lanes_done, 1);
    return NULL;
}

int main(void) {
    test_begin("io_cancel_race", 0);
    n_ops = test_scaled_min(1000000, 20000);
    eng = test_io_engine_n(2, cb, NULL);
    for (uintptr_t i = 0; i < LANES; i++) {
        int sv[2];
        test_socketpair(sv);
        lanes[i].fd = sv[0];
        lanes[i].peer = sv[1];
        lanes[i].ov = test_io_ov(eng, 0);
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], i));
    }

    uint64_t t0 = test_now_ns();
    pthread_t w = test_thread(writer, (void *)1);
    pthread_t c = test_thread(canceller, (void *)2);
    for (int i = 0; i < CB_LANES; i++) {
        CHECK(claim());
        CHECK(submit(&lanes[i]));
    }
    pthread_t h[HOST_LANES];
    for (uintptr_t i = 0; i < HOST_LANES; i++)
        h[i] = test_thread(host_lane, (void *)(CB_LANES + i));

    /* Every chain ends once the N claims are gone (the writer and the
     * canceller keep going until then, so no recv waits forever). */
    bool ended = TEST_WAIT_UNTIL(atomic_load(&lanes_done) == LANES, 50000);
    CHECK_MSG(ended, "%d of %d lanes ended; claimed %" PRIu64 ", completed %" PRIu64,
              atomic_load(&lanes_done), LANES, (uint64_t)atomic_load(&claimed),
              (uint64_t)atomic_load(&completed));
    uint64_t t1 = test_now_ns();
    atomic_store(&stop_writer, 1);
    test_join(w);
    test_join(c);
    for (int i = 0; i < HOST_LANES; i++)
        test_join(h[i]);
    test_sleep_us(20000); /* a duplicate would show up now */

    uint64_t left = 0;
    for (int i = 0; i < LANES; i++) {
        unsigned char buf[4096];
        ssize_t k;
        while ((k = recv(lanes[i].fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
            left += (uint64_t)k;
        CHECK_EQ(atomic_load(&test_io_of(lanes[i].ov)->armed), 0);
    }
    iocomp_stats s = test_stats(eng);
    printf("io_cancel_race: %s, %" PRIu64 " operations in %.2f s (%.0f k/s): %" PRIu64
           " data, %" PRIu64 " cancelled; cancel 0: %" PRIu64 ", -ENOENT: %" PRIu64
           "; bytes sent %" PRIu64 ", received %" PRIu64 " + %" PRIu64 " left; io_cancels %" PRIu64
           ", rescued %" PRIu64 "\n",
           iocomp_backend_name(eng), n_ops, (t1 - t0) / 1e9, n_ops / ((t1 - t0) / 1e6),
           (uint64_t)atomic_load(&data_done), (uint64_t)atomic_load(&cancelled_done),
           (uint64_t)atomic_load(&cancel_ok), (uint64_t)atomic_load(&cancel_noent),
           (uint64_t)atomic_load(&bytes_sent), (uint64_t)atomic_load(&bytes_recv), left,
           s.io_cancels, s.io_rescued);

    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_EQ(atomic_load(&submit_bad), 0);
    CHECK_EQ(atomic_load(&status_bad), 0);
    CHECK_EQ(atomic_load(&cancel_bad), 0);
    CHECK_EQ(atomic_load(&claimed), n_ops);
    CHECK_EQ(atomic_load(&completed), n_ops);
    CHECK_EQ(atomic_load(&data_done) + atomic_load(&cancelled_done), n_ops);
    CHECK_EQ(atomic_load(&bytes_recv) + left, atomic_load(&bytes_sent));
    CHECK(atomic_load(&data_done) > 0);
    CHECK(atomic_load(&cancelled_done) > 0);
    CHECK_EQ(s.io_submitted, n_ops);
    CHECK_EQ(s.io_cq_dropped, 0);

    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&completed), n_ops);
    for (int i = 0; i < LANES; i++) {
        iocomp_overlapped_free(lanes[i].ov);
        CHECK_OK(close(lanes[i].fd));
        CHECK_OK(close(lanes[i].peer));
    }
    test_end();
}
