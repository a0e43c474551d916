/*
 * io_destroy_inflight: engine destroy with I/O in flight (issue #3 "Tests",
 * §5 "Engine destroy with I/O in flight completes all of it and joins every
 * thread"; BRIEF §4 invariants 1 and 10).
 *
 * ROUNDS fresh engines (2 workers). In each, requests that cannot finish on
 * their own: recvs (4 per descriptor) on socketpairs bound to the default
 * port and to two created ports, an accept on a listening TCP socket, a
 * POLLIN poll, timers an hour away on every port, and some submitted from a
 * callback (through a worker's own ring). iocomp_engine_destroy() returns 0
 * and, before it returns, every request has completed exactly once with
 * -ECANCELED, 0 bytes and its key; nothing runs after. The overlapped are
 * freed after the engine is gone (they outlive it, iocomp.h). After the
 * descriptors are closed, threads and descriptors are back to the baseline
 * (test_end(): the workers, the monitor, io_uring's rings and kernel
 * workers, epoll's descriptors are all gone).
 */
#include "test.h"

#include <poll.h>

#define PAIRS 12
#define RECVS_PER 4
#define TIMERS 8
#define FROM_CB 8
#define N_REQ (PAIRS * RECVS_PER + 2 + TIMERS * 3 + FROM_CB)
#define KEY_SPAWN 0x59A3u

static iocomp_engine *eng;
static iocomp_overlapped *ovs[N_REQ + 1];
static uintptr_t want_key[N_REQ + 1];
static unsigned char bufs[N_REQ][8];
static int fds[PAIRS], peers[PAIRS];
static atomic_int destroyed;
static atomic_uint_fast64_t done, late, bad, spawned;
static unsigned first_cb_req; /* the FROM_CB requests, submitted by the spawn callback */

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (atomic_load(&destroyed))
        atomic_fetch_add(&late, 1);
    test_io_fire(ov, status, bytes, key);
    if (key == KEY_SPAWN) { /* the 0 ns trigger: submit FROM_CB recvs from here */
        for (unsigned i = first_cb_req; i < first_cb_req + FROM_CB; i++) {
            test_io_arm(ovs[i]);
            int rc = test_io_settle(ovs[i], iocomp_recv(eng, fds[i % PAIRS], bufs[i], 8, 0,
                                                        ovs[i]));
            if (rc != 0)
                atomic_fetch_add(&bad, 1);
        }
        atomic_store(&spawned, 1);
        return;
    }
    uint64_t i = test_io_of(ov)->user;
    if (status != -ECANCELED || bytes != 0 || i >= N_REQ || key != want_key[i]) {
        if (atomic_fetch_add(&bad, 1) < 5)
            fprintf(stderr, "io_destroy_inflight: request %" PRIu64 ": status %d (%s) bytes %u "
                            "key 0x%lx\n", i, status, test_errname(status), bytes,
                    (unsigned long)key);
    }
    atomic_fetch_add(&done, 1);
}

static void submit(unsigned i, int rc) {
    CHECK_MSG(test_io_settle(ovs[i], rc) == 0, "request %u: %d (%s)", i, rc, test_errname(rc));
}
#define SUBMIT(i, call) (test_io_arm(ovs[i]), submit((i), (call)))

static void one_engine(void) {
    eng = test_io_engine_n(2, cb, NULL);
    atomic_store(&destroyed, 0);
    atomic_store(&done, 0);
    atomic_store(&spawned, 0);
    for (unsigned i = 0; i <= N_REQ; i++)
        ovs[i] = test_io_ov(eng, i);
    iocomp_port_t ports[3] = {IOCOMP_DEFAULT_PORT, 0, 0};
    CHECK_OK(iocomp_port_create(eng, &ports[1]));
    CHECK_OK(iocomp_port_create(eng, &ports[2]));
    for (int p = 0; p < PAIRS; p++) {
        int sv[2];
        test_socketpair(sv);
        fds[p] = sv[0];
        peers[p] = sv[1];
        CHECK_OK(iocomp_bind(eng, ports[p % 3], fds[p], 0xF00u + (unsigned)p));
    }
    unsigned i = 0;
    for (int p = 0; p < PAIRS; p++)
        for (int k = 0; k < RECVS_PER; k++, i++) {
            want_key[i] = 0xF00u + (unsigned)p;
            SUBMIT(i, iocomp_recv(eng, fds[p], bufs[i], 8, 0, ovs[i]));
        }
    int lfd = test_tcp_socket(true, NULL);
    CHECK_OK(iocomp_bind(eng, ports[1], lfd, 0xACC));
    want_key[i] = 0xACC;
    SUBMIT(i, iocomp_accept(eng, lfd, NULL, NULL, SOCK_CLOEXEC, ovs[i]));
    i++;
    want_key[i] = 0xF00u;
    SUBMIT(i, iocomp_poll(eng, fds[0], POLLIN, ovs[i]));
    i++;
    for (int p = 0; p < 3; p++)
        for (int k = 0; k < TIMERS; k++, i++) {
            want_key[i] = 0x71000u + (unsigned)i;
            SUBMIT(i, iocomp_timer(eng, ports[p], want_key[i], 3600000000000ull, 0, ovs[i]));
        }
    first_cb_req = i;
    for (unsigned k = first_cb_req; k < first_cb_req + FROM_CB; k++)
        want_key[k] = 0xF00u + k % PAIRS;
    i += FROM_CB;
    CHECK_EQ(i, N_REQ);
    /* The spawn callback (ovs[N_REQ]) submits the last FROM_CB. */
    test_io_arm(ovs[N_REQ]);
    CHECK_OK(test_io_settle(ovs[N_REQ], iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_SPAWN, 0, 0,
                                                     ovs[N_REQ])));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&spawned) == 1, 5000));
    test_sleep_us(5000);
    CHECK_EQ(atomic_load(&done), 0);

    CHECK_OK(iocomp_engine_destroy(eng));
    atomic_store(&destroyed, 1);
    CHECK_EQ(atomic_load(&done), N_REQ);
    for (unsigned k = 0; k <= N_REQ; k++) {
        CHECK_EQ(atomic_load(&test_io_of(ovs[k])->armed), 0);
        CHECK_EQ(atomic_load(&test_io_of(ovs[k])->completions), 1);
        iocomp_overlapped_free(ovs[k]); /* after the engine: allowed */
    }
    for (int p = 0; p < PAIRS; p++) {
        CHECK_OK(close(fds[p]));
        CHECK_OK(close(peers[p]));
    }
    CHECK_OK(close(lfd));
}

int main(void) {
    test_begin("io_destroy_inflight", 0);
    int rounds = (int)test_scaled_min(20, 5);
    for (int r = 0; r < rounds; r++) {
        one_engine();
        if (r == 0) /* threads and descriptors already back after one engine */
            test_baseline_check(&test_start_baseline_);
    }
    test_sleep_us(10000);
    CHECK_EQ(atomic_load(&late), 0);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    printf("io_destroy_inflight: %s, %d engines destroyed with %d requests in flight each\n",
           test_io_backend() ? test_io_backend() : "default", rounds, N_REQ);
    test_end();
}
