/*
 * io_uring_features: each optional io_uring feature turned off on its own
 * (the test-build seam IOCOMP_URING_FEATURES=-name), then all of them
 * (=min), then none: the engine reports the level it runs
 * (iocomp_backend_features) and a short round trip works on it:
 *   - a host recv (its own socket) handed to a worker parked inside its
 *     ring with I/O in flight (the hand-off's kick ends the ring wait: FUTEX_WAKE on the park
 *     word, or the eventfd write that completes the armed POLL_ADD);
 *   - a posted packet for that parked worker (park.c's wake-up, same path),
 *     20 times after an idle gap: each within 5 s, and their median well
 *     below the monitor's ~100 ms safety net (a lost wake-up would put the
 *     median there; timing noise under the sanitizers does not move it);
 *     and, parked for 300 ms, it uses under 100 ms of CPU (a wake-up entry
 *     that fires again at once would spin it);
 *   - data for the recv (a CQE ends the ring wait), a send, a timer;
 *   - iocomp_cancel of a pending recv, and iocomp_close_fd with one pending;
 *   - a callback's batch of a recvmsg whose msghdr is unreadable (the
 *     kernel's prep fails: -EFAULT; 6.x), a recv on a closed descriptor
 *     (the file lookup fails at submit on 5.15: -EBADF), then a timer: all
 *     complete. Without SUBMIT_ALL the kernel stops a batch at an SQE that
 *     fails to submit; submit_locked goes on with the rest in the same
 *     call (without that loop the next poll would, one round later: no
 *     test can tell the two apart by result, only that none is stranded).
 * One worker, so the parked worker is the one whose ring holds the recv.
 * Registered once, in fault builds: it picks the levels itself; skips (77)
 * where io_uring cannot run at all.
 */
#include "test.h"

#include <sys/mman.h>
#include <sys/utsname.h>

#define KEY_RUN 1u   /* a posted packet: submits on the callback's worker */
#define KEY_PING 2u  /* a posted packet: counted */
#define KEY_IO 3u

static iocomp_engine *eng;
static atomic_int pings, batch_phase;
static atomic_uint_fast64_t ping_ns;
static iocomp_overlapped *ov_a, *ov_b, *ov_t, *ov_m;
static struct msghdr *bad_msg; /* a PROT_NONE page */
static int bad_fd, good_fd;
static char abuf[16], bbuf[16];

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_PING) {
        atomic_store(&ping_ns, test_now_ns());
        atomic_fetch_add(&pings, 1);
        return;
    }
    if (key == KEY_RUN) {
        int phase = atomic_load(&batch_phase);
        if (phase == 1) { /* a recv on the worker's own ring: it parks in the ring */
            test_io_arm(ov_a);
            CHECK_OK(test_io_settle(ov_a, iocomp_recv(eng, good_fd, abuf, sizeof abuf, 0, ov_a)));
        } else if (phase == 2) { /* one batch: two SQEs that fail to submit, then a timer */
            test_io_arm(ov_m);
            CHECK_OK(test_io_settle(ov_m, iocomp_recvmsg(eng, good_fd, bad_msg, 0, ov_m)));
            test_io_arm(ov_b);
            CHECK_OK(test_io_settle(ov_b, iocomp_recv(eng, bad_fd, bbuf, sizeof bbuf, 0, ov_b)));
            test_io_arm(ov_t);
            CHECK_OK(test_io_settle(ov_t, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_IO, 1000000, 0, ov_t)));
        }
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool has_word(const char *list, const char *w) {
    size_t n = strlen(w);
    for (const char *p = list; (p = strstr(p, w)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == 0 || p[n] == ' '))
            return true;
    return false;
}

static const char *const names[] = {"futex_wait", "submit_all", "coop_taskrun", "cqsize"};
#define NNAMES (sizeof names / sizeof names[0])

static void round_trip(const char *level) {
    if (level)
        CHECK_OK(setenv("IOCOMP_URING_FEATURES", level, 1));
    else
        CHECK_OK(unsetenv("IOCOMP_URING_FEATURES"));
    iocomp_config cfg = test_config(1, 1, cb, NULL);
    cfg.backend = "uring";
    eng = test_io_engine(&cfg);
    const char *feat = iocomp_backend_features(eng);
    printf("io_uring_features: level %-14s -> \"%s\"\n", level ? level : "(all)", feat);
    if (level && strcmp(level, "min") == 0)
        CHECK_MSG(strcmp(feat, "") == 0, "min level uses \"%s\"", feat);
    if (level && level[0] == '-')
        CHECK_MSG(!has_word(feat, level + 1), "%s: still uses \"%s\"", level, feat);
    if (!level) {
        /* Linux 6.7 and later has every optional feature. */
        struct utsname u;
        CHECK_OK(uname(&u));
        unsigned maj = 0, min = 0;
        sscanf(u.release, "%u.%u", &maj, &min);
        if (maj > 6 || (maj == 6 && min >= 7))
            for (size_t i = 0; i < NNAMES; i++)
                CHECK_MSG(has_word(feat, names[i]), "kernel %s, all features: \"%s\" lacks %s",
                          u.release, feat, names[i]);
    }
    ov_a = test_io_ov(eng, 1);
    ov_b = test_io_ov(eng, 2);
    ov_t = test_io_ov(eng, 3);
    ov_m = test_io_ov(eng, 5);
    iocomp_overlapped *ov_h = test_io_ov(eng, 4);
    int sv[2];
    test_socketpair(sv);
    good_fd = sv[0];
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], KEY_IO));

    /* The worker's own recv in flight, then it parks in its ring. */
    atomic_store(&batch_phase, 1);
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_RUN));
    test_sleep_us(30000);
    /* Posted packets for the ring-parked worker, after idle gaps. */
    uint64_t lat[20];
    for (int i = 0; i < 20; i++) {
        test_sleep_us(5000);
        int before = atomic_load(&pings);
        uint64_t t0 = test_now_ns();
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_PING));
        CHECK_MSG(TEST_WAIT_UNTIL(atomic_load(&pings) == before + 1, 5000),
                  "%s: a post to the parked worker never ran", level ? level : "(all)");
        lat[i] = atomic_load(&ping_ns) - t0;
    }
    qsort(lat, 20, sizeof lat[0], cmp_u64);
    printf("io_uring_features: wake of a ring-parked worker: median %.1f us, max %.1f us\n",
           (double)lat[10] / 1e3, (double)lat[19] / 1e3);
    CHECK_MSG(lat[10] < 40000000ull, "%s: median wake-up %.1f ms: the kick is lost, the monitor "
              "delivers", level ? level : "(all)", (double)lat[10] / 1e6);
    /* Parked, it stays asleep: a wake-up entry that fires again at once
     * (an eventfd left undrained) would spin the worker. */
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    test_sleep_us(300000);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu_ms = (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
    printf("io_uring_features: CPU while parked 300 ms: %.2f ms\n", cpu_ms);
    CHECK_MSG(cpu_ms < 100.0, "%s: %.1f ms of CPU in 300 ms parked", level ? level : "(all)", cpu_ms);
    /* A host recv (another socket) handed off to the parked worker. */
    int hv[2];
    test_socketpair(hv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, hv[0], KEY_IO));
    test_io_arm(ov_h);
    CHECK_OK(test_io_settle(ov_h, iocomp_recv(eng, hv[0], bbuf, sizeof bbuf, 0, ov_h)));
    test_sleep_us(20000);
    CHECK_EQ(send(hv[1], "host", 4, 0), 4);
    struct test_io *th = test_io_wait(ov_h, 1, 5000);
    CHECK_EQ(th->status, 0);
    CHECK_EQ(th->bytes, 4u);
    CHECK_OK(iocomp_close_fd(eng, hv[0]));
    close(hv[1]);
    /* Data for the worker's recv, parked again meanwhile. */
    test_sleep_us(20000);
    CHECK_EQ(send(sv[1], "ping", 4, 0), 4);
    struct test_io *ta = test_io_wait(ov_a, 1, 5000);
    CHECK_EQ(ta->status, 0);
    CHECK_EQ(ta->bytes, 4u);
    CHECK(memcmp(abuf, "ping", 4) == 0);
    /* A send, read by the peer. */
    test_io_arm(ov_a);
    CHECK_OK(test_io_settle(ov_a, iocomp_send(eng, sv[0], "pong", 4, 0, ov_a)));
    ta = test_io_wait(ov_a, 2, 5000);
    CHECK_EQ(ta->status, 0);
    CHECK_EQ(ta->bytes, 4u);
    char got[4];
    CHECK_EQ(recv(sv[1], got, 4, MSG_WAITALL), 4);
    /* A timer. */
    test_io_arm(ov_t);
    CHECK_OK(test_io_settle(ov_t, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_IO, 2000000, 0, ov_t)));
    struct test_io *tt = test_io_wait(ov_t, 1, 5000);
    CHECK_EQ(tt->status, 0);
    /* A cancel. */
    test_io_arm(ov_a);
    CHECK_OK(test_io_settle(ov_a, iocomp_recv(eng, sv[0], abuf, sizeof abuf, 0, ov_a)));
    test_sleep_us(5000);
    CHECK_OK(iocomp_cancel(eng, ov_a));
    ta = test_io_wait(ov_a, 3, 5000);
    CHECK_EQ(ta->status, -ECANCELED);
    /* A batch whose first SQE names a closed descriptor. */
    int bv[2];
    test_socketpair(bv);
    bad_fd = bv[0];
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, bad_fd, KEY_IO));
    close(bv[0]); /* raw: the binding stays, the number is closed (and kept free: nothing opens) */
    atomic_store(&batch_phase, 2);
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_RUN));
    struct test_io *tm = test_io_wait(ov_m, 1, 5000);
    CHECK_EQ(tm->status, -EFAULT);
    struct test_io *tb = test_io_wait(ov_b, 1, 5000);
    CHECK_EQ(tb->status, -EBADF);
    tt = test_io_wait(ov_t, 2, 5000);
    CHECK_EQ(tt->status, 0);
    CHECK_OK(iocomp_unbind(eng, bad_fd));
    close(bv[1]);
    /* Close with a recv pending. */
    test_io_arm(ov_a);
    CHECK_OK(test_io_settle(ov_a, iocomp_recv(eng, sv[0], abuf, sizeof abuf, 0, ov_a)));
    test_sleep_us(5000);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    ta = test_io_wait(ov_a, 4, 5000);
    CHECK_EQ(ta->status, -ECANCELED);
    close(sv[1]);

    iocomp_stats st;
    CHECK_OK(iocomp_get_stats(eng, &st));
    CHECK_EQ(st.io_cq_dropped, 0u);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(ov_a);
    iocomp_overlapped_free(ov_b);
    iocomp_overlapped_free(ov_t);
    iocomp_overlapped_free(ov_h);
    iocomp_overlapped_free(ov_m);
}

int main(void) {
    test_begin("io_uring_features", 0);
    iocomp_config probe = test_config(1, 1, cb, NULL);
    probe.backend = "uring";
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(&probe, &e);
    if (rc == -ENOSYS || rc == -EPERM || rc == -EOPNOTSUPP)
        test_skip("io_uring cannot run here (not even at the minimum level)");
    CHECK_OK(rc);
    CHECK_OK(iocomp_engine_destroy(e));

    bad_msg = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(bad_msg != MAP_FAILED);
    round_trip(NULL);
    for (size_t i = 0; i < NNAMES; i++) {
        char lv[32];
        snprintf(lv, sizeof lv, "-%s", names[i]);
        round_trip(lv);
    }
    round_trip("min");
    CHECK_EQ(setenv("IOCOMP_URING_FEATURES", "-no_such_feature", 1), 0);
    iocomp_config bad = test_config(1, 1, cb, NULL);
    bad.backend = "uring";
    CHECK_EQ(iocomp_engine_create(&bad, &e), -EINVAL);
    unsetenv("IOCOMP_URING_FEATURES");
    test_end();
}
