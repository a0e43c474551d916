/*
 * io_signal_storm: I/O under a storm of signals without SA_RESTART (issue #3
 * "Tests": a signal storm, pthread_kill to every worker every 100 us
 * without SA_RESTART: nothing lost, no error surfaced; BRIEF §5 "EINTR
 * storms").
 *
 * What it really covers. iocomp's workers and monitor block every
 * asynchronous signal (scale.c spawn()), so a signal sent to them stays
 * pending and never interrupts their system calls; the test checks that
 * mask (SigBlk in /proc/self/task/<tid>/status has SIGUSR1 for every engine
 * thread) and sends them SIGUSR1 anyway with tgkill (engine threads are the
 * tasks that appeared with the engine, io_uring's own iou-* kernel workers
 * left out). The signals that do interrupt system calls are the ones to the
 * host threads, which call iocomp while a SIGUSR1 handler installed without
 * SA_RESTART fires every 100 us: their submits (host hand-off, skip-on-
 * success recvs done inline on the calling thread), cancels, port creates
 * and closes (with requests in flight: close waits and cancels), and the
 * engine's destroy at the end all run with the storm on.
 *
 * HOSTS threads, each for RUN_MS: on its own socketpair, a recv submitted
 * first (pending), then a send from the other end through iocomp, both
 * completing with exactly the bytes; a 50 us timer; every 16 rounds a port
 * with a pending recv is closed (-ECANCELED); a skip-on-success recv with
 * data there returns IOCOMP_INLINE with the bytes. Checked: every submit
 * returns 0 (or IOCOMP_INLINE where expected), every completion is the
 * expected one exactly once (no -EINTR ever), close and destroy return 0,
 * the handler ran on host threads (the storm hit) and never on an engine
 * thread.
 */
#include "test.h"

#include <sys/syscall.h>

#define HOSTS 2
#define RUN_MS 1000
#define MAX_TIDS 64

static iocomp_engine *eng;
static atomic_uint_fast64_t handler_hits, handler_on_engine, signals_sent, rounds_done;
static atomic_uint_fast64_t calls, accepted, bad;
static atomic_int stop_signals;
static pid_t engine_tids[MAX_TIDS];
static atomic_int n_engine_tids;
static pthread_t host_threads[HOSTS + 1];
static bool host_alive[HOSTS + 1];  /* under sig_lock: pthread_kill only before the join */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int hosts_done;

static void on_sigusr1(int sig) {
    (void)sig;
    int saved = errno;
    pid_t me = (pid_t)syscall(SYS_gettid);
    int n = atomic_load(&n_engine_tids);
    for (int i = 0; i < n; i++)
        if (engine_tids[i] == me)
            atomic_fetch_add(&handler_on_engine, 1);
    atomic_fetch_add(&handler_hits, 1);
    errno = saved;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

/* Submit (expecting 0) and count. */
static void submit(iocomp_overlapped *ov, int rc, int line) {
    rc = test_io_settle(ov, rc);
    if (rc != 0) {
        atomic_fetch_add(&bad, 1);
        fprintf(stderr, "io_signal_storm: line %d: submit returned %d (%s)\n", line, rc,
                test_errname(rc));
        abort();
    }
    atomic_fetch_add(&accepted, 1);
}
#define SUBMIT(ov, call) (test_io_arm(ov), submit((ov), (call), __LINE__))

static void expect(iocomp_overlapped *ov, uint64_t n, int32_t status, uint32_t bytes, int line) {
    struct test_io *t = test_io_of(ov);
    if (!TEST_WAIT_UNTIL(atomic_load(&t->completions) >= n, 10000)) {
        fprintf(stderr, "io_signal_storm: line %d: completion %" PRIu64 " of overlapped %" PRIu64
                        " missing after 10 s (a lost completion)\n", line, n, t->user);
        abort();
    }
    if (atomic_load(&t->status) != status || atomic_load(&t->bytes) != bytes) {
        fprintf(stderr, "io_signal_storm: line %d: status %d (%s) bytes %u, want %d, %u\n", line,
                (int)atomic_load(&t->status), test_errname(atomic_load(&t->status)),
                (unsigned)atomic_load(&t->bytes), status, bytes);
        abort();
    }
}
#define EXPECT(ov, n, st, by) expect((ov), (n), (st), (by), __LINE__)

static uint64_t done(iocomp_overlapped *ov) { return atomic_load(&test_io_of(ov)->completions); }

static void *host_main(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    int sv[2], sk[2];
    test_socketpair(sv);
    test_socketpair(sk);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 0x100u + id));
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[1], 0x200u + id));
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sk[0], 0x300u + id));
    CHECK_OK(iocomp_set_skip_on_success(eng, sk[0]));
    iocomp_overlapped *rov = test_io_ov(eng, 1), *sov = test_io_ov(eng, 2),
                      *tov = test_io_ov(eng, 3), *pov = test_io_ov(eng, 4),
                      *kov = test_io_ov(eng, 5);
    unsigned char out[64], in[64];
    uint64_t end = test_now_ns() + (uint64_t)RUN_MS * 1000000u;
    for (unsigned r = 0; test_now_ns() < end; r++) {
        uint32_t len = 1 + r % 64;
        memset(out, (int)(r & 0xFF), len);
        uint64_t nr = done(rov), ns = done(sov), nt = done(tov);
        SUBMIT(rov, iocomp_recv(eng, sv[0], in, sizeof in, 0, rov));
        SUBMIT(sov, iocomp_send(eng, sv[1], out, len, 0, sov));
        SUBMIT(tov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 7, 50000, 0, tov));
        EXPECT(sov, ns + 1, 0, len);
        EXPECT(rov, nr + 1, 0, len);
        CHECK(memcmp(in, out, len) == 0);
        EXPECT(tov, nt + 1, 0, 0);
        /* Skip on success, on this (signalled) thread. */
        CHECK_EQ(send(sk[1], "s", 1, 0), 1);
        test_io_arm(kov);
        CHECK_EQ(test_io_settle(kov, iocomp_recv(eng, sk[0], in, sizeof in, 0, kov)),
                 IOCOMP_INLINE);
        uint32_t b = 0;
        CHECK_EQ(iocomp_overlapped_result(kov, &b), 0);
        CHECK_EQ(b, 1);
        if (r % 16 == 0) { /* a port closed with a recv in flight */
            iocomp_port_t p;
            CHECK_OK(iocomp_port_create(eng, &p));
            int pp[2];
            test_socketpair(pp);
            CHECK_OK(iocomp_bind(eng, p, pp[0], 0x400u + id));
            uint64_t np = done(pov);
            SUBMIT(pov, iocomp_recv(eng, pp[0], in, sizeof in, 0, pov));
            if (r % 32 == 0)
                CHECK_EQ(iocomp_cancel(eng, pov), 0);
            CHECK_OK(iocomp_port_close(eng, p));
            EXPECT(pov, np + 1, -ECANCELED, 0);
            CHECK_OK(close(pp[0]));
            CHECK_OK(close(pp[1]));
        }
        atomic_fetch_add(&rounds_done, 1);
    }
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(iocomp_close_fd(eng, sv[1]));
    CHECK_OK(iocomp_close_fd(eng, sk[0]));
    CHECK_OK(close(sk[1]));
    iocomp_overlapped_free(rov);
    iocomp_overlapped_free(sov);
    iocomp_overlapped_free(tov);
    iocomp_overlapped_free(pov);
    iocomp_overlapped_free(kov);
    atomic_fetch_add(&hosts_done, 1);
    return NULL;
}

static void *signaller(void *arg) {
    (void)arg;
    pid_t pid = getpid();
    while (!atomic_load(&stop_signals)) {
        pthread_mutex_lock(&sig_lock);
        for (int i = 0; i <= HOSTS; i++)
            if (host_alive[i] && pthread_kill(host_threads[i], SIGUSR1) == 0)
                atomic_fetch_add(&signals_sent, 1);
        pthread_mutex_unlock(&sig_lock);
        int n = atomic_load(&n_engine_tids);
        for (int i = 0; i < n; i++)
            if (syscall(SYS_tgkill, pid, engine_tids[i], SIGUSR1) == 0)
                atomic_fetch_add(&signals_sent, 1);
        test_sleep_us(100);
    }
    return NULL;
}

static int read_tids(pid_t *out, int max) {
    DIR *d = opendir("/proc/self/task");
    CHECK(d != NULL);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max)
        if (de->d_name[0] != '.')
            out[n++] = (pid_t)atoi(de->d_name);
    closedir(d);
    return n;
}

static bool task_comm_is(pid_t tid, const char *prefix) {
    char p[64], buf[64] = "";
    snprintf(p, sizeof p, "/proc/self/task/%d/comm", (int)tid);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    return strncmp(buf, prefix, strlen(prefix)) == 0;
}

/* SIGUSR1 blocked in tid's mask. */
static bool blocks_sigusr1(pid_t tid) {
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/self/task/%d/status", (int)tid);
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    bool yes = false;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "SigBlk:", 7) == 0)
            yes = (strtoull(line + 7, NULL, 16) >> (SIGUSR1 - 1)) & 1;
    fclose(f);
    return yes;
}

int main(void) {
    test_begin("io_signal_storm", 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sa.sa_flags = 0; /* no SA_RESTART: interrupted system calls fail with EINTR */
    sigemptyset(&sa.sa_mask);
    CHECK_OK(sigaction(SIGUSR1, &sa, &old));

    pid_t before[MAX_TIDS], after[MAX_TIDS];
    int nb = read_tids(before, MAX_TIDS);
    eng = test_io_engine_n(2, cb, NULL);
    int na = read_tids(after, MAX_TIDS);
    int ne = 0;
    for (int i = 0; i < na; i++) {
        bool old_one = false;
        for (int j = 0; j < nb; j++)
            old_one |= after[i] == before[j];
        if (!old_one && !task_comm_is(after[i], "iou-") && ne < MAX_TIDS)
            engine_tids[ne++] = after[i];
    }
    CHECK_MSG(ne >= 3, "found %d engine threads, want the 2 workers and the monitor", ne);
    for (int i = 0; i < ne; i++)
        CHECK_MSG(blocks_sigusr1(engine_tids[i]), "engine thread %d does not block SIGUSR1",
                  (int)engine_tids[i]);
    atomic_store(&n_engine_tids, ne);

    host_threads[0] = pthread_self();
    host_alive[0] = true;
    for (uintptr_t i = 0; i < HOSTS; i++) {
        host_threads[i + 1] = test_thread(host_main, (void *)i);
        host_alive[i + 1] = true;
    }
    pthread_t sig = test_thread(signaller, NULL);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&hosts_done) == HOSTS, RUN_MS + 20000));
    pthread_mutex_lock(&sig_lock);
    for (int i = 1; i <= HOSTS; i++)
        host_alive[i] = false;
    pthread_mutex_unlock(&sig_lock);
    for (int i = 0; i < HOSTS; i++)
        test_join(host_threads[i + 1]);

    /* The engine's destroy with the storm still on (main is signalled). */
    iocomp_stats s = test_stats(eng);
    const char *backend = test_io_is_uring(eng) ? "uring" : "epoll";
    CHECK_OK(iocomp_engine_destroy(eng));
    atomic_store(&stop_signals, 1);
    test_join(sig);
    CHECK_OK(sigaction(SIGUSR1, &old, NULL));

    printf("io_signal_storm: %s, %" PRIu64 " rounds, %" PRIu64 " signals sent (to %d engine "
           "threads and %d host threads), handler ran %" PRIu64 " times; io_eintr %" PRIu64 "\n",
           backend, (uint64_t)atomic_load(&rounds_done),
           (uint64_t)atomic_load(&signals_sent), ne, HOSTS + 1,
           (uint64_t)atomic_load(&handler_hits), s.io_eintr);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_EQ(atomic_load(&handler_on_engine), 0);
    CHECK(atomic_load(&handler_hits) > 100);
    CHECK(atomic_load(&rounds_done) > 10);
    test_end();
}
