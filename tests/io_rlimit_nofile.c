/*
 * io_rlimit_nofile: the descriptor limit at the lowest free descriptor + k,
 * k = 0..12 (issue #10 item 4), on every backend.
 *
 * With RLIMIT_NOFILE so low that the engine's own descriptors (io_uring
 * rings, eventfds, the epoll instance) or the duplicate a host-thread submit
 * holds run out, every call must give a documented result and leave nothing
 * behind:
 *   - iocomp_engine_create (min 2, max 4): 0, or -EMFILE / -ENFILE (no
 *     descriptor for the engine), -EAGAIN (a worker could not start: its
 *     ring), -ENOMEM; never another code, never a backend other than the
 *     one asked for;
 *   - iocomp_set_min_threads(4): 0 or -EAGAIN, and min unchanged on -EAGAIN;
 *   - iocomp_post: 0, delivered once;
 *   - iocomp_recv from the host thread on a bound socket: 0 (then it
 *     completes exactly once, -ECANCELED by iocomp_close_fd) or -EMFILE /
 *     -ENFILE (io_uring's duplicate) with no completion;
 *   - destroy 0; the process's descriptors and threads back to the baseline
 *     after each k (test_baseline_check).
 * Every k from where the engine can first be created up to 12 must end with
 * a working engine; at 12 the recv must be accepted (enough for all).
 */
#include "test.h"

#include <sys/resource.h>

static atomic_uint_fast64_t posts_seen;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == 1) {
        atomic_fetch_add(&posts_seen, 1);
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

static void set_nofile(rlim_t soft, rlim_t hard) {
    struct rlimit rl = {soft, hard};
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
}

int main(void) {
    test_begin("io_rlimit_nofile", 60);
#if defined(__SANITIZE_THREAD__)
    /* Its symbolizer opens the binaries when it reports: under a limit this
     * low its reports lose their function names, and tests/tsan.supp (by
     * name) stops applying to ck_ring's plain loads (seen: the suppressed
     * enqueue-vs-ioc_ring_pending pair reported as <null> frames). */
    test_skip("TSan cannot symbolize, so its suppressions fail, with a descriptor limit this low");
#endif
    struct rlimit orig;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &orig));
    const char *want = test_io_backend();
    bool created_once = false, recv_once = false;
    for (int k = 0; k <= 12; k++) {
        struct test_baseline b = test_baseline_take();
        /* Everything the test needs itself is made before the limit. */
        int sv[2];
        test_socketpair(sv);
        int lowest = dup(0); /* the lowest free descriptor */
        CHECK(lowest >= 0);
        close(lowest);
        iocomp_config cfg = test_config(2, 4, cb, NULL);
        cfg.backend = want;
        cfg.host_overlapped_size = sizeof(struct test_io);
        set_nofile((rlim_t)lowest + (rlim_t)k, orig.rlim_max);
        iocomp_engine *e = NULL;
        int rc = iocomp_engine_create(&cfg, &e);
        CHECK_MSG(rc == 0 || rc == -EMFILE || rc == -ENFILE || rc == -EAGAIN || rc == -ENOMEM,
                  "k=%d: iocomp_engine_create: %d (%s): not a documented code", k, rc, iocomp_strerror(rc));
        int set_rc = 99, recv_rc = 99;
        if (rc == 0) {
            created_once = true;
            CHECK_MSG(!want || strcmp(iocomp_backend_name(e), want) == 0, "k=%d: backend %s, asked %s", k,
                      iocomp_backend_name(e), want);
            set_rc = iocomp_set_min_threads(e, 4);
            CHECK_MSG(set_rc == 0 || set_rc == -EAGAIN, "k=%d: set_min(4): %d (%s)", k, set_rc,
                      iocomp_strerror(set_rc));
            uint32_t min = 0;
            CHECK_OK(iocomp_get_min_threads(e, &min));
            CHECK_EQU(min, set_rc == 0 ? 4u : 2u);
            uint64_t p0 = atomic_load(&posts_seen);
            CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1));
            TEST_WAIT_COUNT(&posts_seen, p0 + 1, 5000);
            CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[0], 2));
            iocomp_overlapped *ov = test_io_ov(e, (uint64_t)k);
            char buf[4];
            test_io_arm(ov);
            recv_rc = test_io_settle(ov, iocomp_recv(e, sv[0], buf, sizeof buf, 0, ov));
            CHECK_MSG(recv_rc == 0 || recv_rc == -EMFILE || recv_rc == -ENFILE, "k=%d: recv: %d (%s)", k, recv_rc,
                      iocomp_strerror(recv_rc));
            if (recv_rc == 0) recv_once = true;
            CHECK_OK(iocomp_close_fd(e, sv[0]));
            if (recv_rc == 0) {
                struct test_io *t = test_io_wait(ov, 1, 5000);
                CHECK_EQ(atomic_load(&t->status), -ECANCELED);
            }
            CHECK_EQU(atomic_load(&test_io_of(ov)->completions), recv_rc == 0 ? 1u : 0u);
            iocomp_overlapped_free(ov);
            CHECK_OK(iocomp_engine_destroy(e));
        } else {
            CHECK_MSG(!created_once, "k=%d: create %d (%s) after a smaller k had worked", k, rc, iocomp_strerror(rc));
            close(sv[0]);
        }
        close(sv[1]);
        set_nofile(orig.rlim_cur, orig.rlim_max);
        printf("io_rlimit_nofile: k=%d limit=%d create=%d set_min=%d recv=%d\n", k, lowest + k, rc, set_rc, recv_rc);
        test_baseline_check(&b);
    }
    CHECK_MSG(created_once && recv_once, "12 spare descriptors never sufficed");
    CHECK_EQU(atomic_load(&test_io_bad), 0);
    test_end();
    return 0;
}
