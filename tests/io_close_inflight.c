/*
 * io_close_inflight: a port's close with 10,000 requests in flight (issue #3
 * "Tests": port close with 10,000 requests in flight; BRIEF §4 invariants 1
 * and 6, §5 "close with 10,000 in flight").
 *
 * Per round: a fresh port, PAIRS socketpairs bound to it, RECVS_PER recvs
 * pending on each (nothing is ever sent) and TIMERS timers an hour away on
 * the port: 10,000 requests, all accepted (0), none completed 50 ms later.
 * Another thread closes the port: it returns 0, and by then every request
 * has completed exactly once with -ECANCELED and 0 bytes, with its own key;
 * no callback of the port starts after close returned. A timer of 100 ms on
 * a second port, submitted before the close, still fires normally (status 0)
 * afterwards. The close time is printed. Rounds: 3 (1 under a sanitizer
 * scale of 3 or more).
 */
#include "test.h"

#define PAIRS 250
#define RECVS_PER 32
#define TIMERS 2000
#define TOTAL (PAIRS * RECVS_PER + TIMERS)
#define KEY_TIMER 0x7000000u
#define KEY_OTHER 0x0707u

static iocomp_engine *eng;
static atomic_int closed;
static atomic_uint_fast64_t after_close, done, bad, other_done;
static atomic_int_fast32_t other_status = 1;
static unsigned char bufs[PAIRS * RECVS_PER][8];

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_OTHER) {
        test_io_fire(ov, status, bytes, key);
        atomic_store(&other_status, status);
        atomic_fetch_add(&other_done, 1);
        return;
    }
    if (atomic_load(&closed))
        atomic_fetch_add(&after_close, 1);
    struct test_io *t = test_io_of(ov);
    /* The key: the pair's binding for recvs, KEY_TIMER for timers. */
    uintptr_t want = t->user < PAIRS * RECVS_PER ? (uintptr_t)(t->user / RECVS_PER) : KEY_TIMER;
    if (status != -ECANCELED || bytes != 0 || key != want) {
        if (atomic_fetch_add(&bad, 1) < 5)
            fprintf(stderr, "io_close_inflight: request %" PRIu64 ": status %d (%s), bytes %u, "
                            "key 0x%lx (want 0x%lx)\n", t->user, status, test_errname(status),
                    bytes, (unsigned long)key, (unsigned long)want);
    }
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&done, 1);
}

static iocomp_port_t victim;
static atomic_int close_rc = 1;
static atomic_uint_fast64_t close_ns;

static void *closer(void *arg) {
    (void)arg;
    uint64_t t0 = test_now_ns();
    int rc = iocomp_port_close(eng, victim);
    atomic_store(&closed, 1); /* first thing after: any callback from now on is late */
    atomic_store(&close_ns, test_now_ns() - t0);
    atomic_store(&close_rc, rc);
    return NULL;
}

int main(void) {
    test_begin("io_close_inflight", 0);
    test_raise_nofile(4096);
    eng = test_io_engine_n(2, cb, NULL);
    iocomp_overlapped **ovs = calloc(TOTAL, sizeof *ovs);
    CHECK(ovs);
    for (int i = 0; i < TOTAL; i++)
        ovs[i] = test_io_ov(eng, (uint64_t)i);
    iocomp_overlapped *other_ov = test_io_ov(eng, ~0ull);
    iocomp_port_t other;
    CHECK_OK(iocomp_port_create(eng, &other));
    int rounds = test_scale() >= 3 ? 1 : 3;

    for (int round = 0; round < rounds; round++) {
        atomic_store(&closed, 0);
        atomic_store(&done, 0);
        atomic_store(&close_rc, 1);
        CHECK_OK(iocomp_port_create(eng, &victim));
        int sv[PAIRS][2];
        for (int p = 0; p < PAIRS; p++) {
            test_socketpair(sv[p]);
            CHECK_OK(iocomp_bind(eng, victim, sv[p][0], (uintptr_t)p));
        }
        for (int i = 0; i < PAIRS * RECVS_PER; i++) {
            test_io_arm(ovs[i]);
            int rc = iocomp_recv(eng, sv[i / RECVS_PER][0], bufs[i], sizeof bufs[i], 0, ovs[i]);
            CHECK_MSG(test_io_settle(ovs[i], rc) == 0, "recv %d: %d (%s)", i, rc, test_errname(rc));
        }
        for (int i = PAIRS * RECVS_PER; i < TOTAL; i++) {
            test_io_arm(ovs[i]);
            int rc = iocomp_timer(eng, victim, KEY_TIMER, 3600000000000ull, 0, ovs[i]);
            CHECK_MSG(test_io_settle(ovs[i], rc) == 0, "timer %d: %d (%s)", i, rc,
                      test_errname(rc));
        }
        uint64_t od = atomic_load(&other_done);
        test_io_arm(other_ov);
        CHECK_OK(test_io_settle(other_ov, iocomp_timer(eng, other, KEY_OTHER, 100000000u, 0,
                                                        other_ov)));
        test_sleep_us(50000);
        CHECK_EQ(atomic_load(&done), 0); /* all still pending */

        pthread_t t = test_thread(closer, NULL);
        test_join(t);
        CHECK_EQ(atomic_load(&close_rc), 0);
        uint64_t at_return = atomic_load(&done);
        CHECK_MSG(at_return == TOTAL, "round %d: close returned with %" PRIu64 " of %d completed",
                  round, at_return, TOTAL);
        for (int i = 0; i < TOTAL; i++) {
            CHECK_EQ(atomic_load(&test_io_of(ovs[i])->armed), 0);
            CHECK_EQ(atomic_load(&test_io_of(ovs[i])->completions), (uint64_t)round + 1);
        }
        printf("io_close_inflight: %s, round %d: close with %d in flight took %.2f ms\n",
               iocomp_backend_name(eng), round, TOTAL, atomic_load(&close_ns) / 1e6);
        /* The other port's timer is untouched and fires on time. */
        TEST_WAIT_COUNT(&other_done, od + 1, 5000);
        CHECK_EQ(atomic_load(&other_status), 0);
        test_sleep_us(10000);
        CHECK_EQ(atomic_load(&done), TOTAL);
        CHECK_EQ(atomic_load(&after_close), 0);
        /* The descriptors were unbound by the close. */
        char b;
        test_io_arm(ovs[0]);
        CHECK_EQ(test_io_settle(ovs[0], iocomp_recv(eng, sv[0][0], &b, 1, 0, ovs[0])), -EBADF);
        for (int p = 0; p < PAIRS; p++) {
            CHECK_OK(close(sv[p][0]));
            CHECK_OK(close(sv[p][1]));
        }
    }
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    iocomp_stats s = test_stats(eng);
    CHECK_EQ(s.io_cq_dropped, 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    for (int i = 0; i < TOTAL; i++)
        iocomp_overlapped_free(ovs[i]);
    iocomp_overlapped_free(other_ov);
    free(ovs);
    test_end();
}
