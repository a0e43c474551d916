/*
 * io_fork: fork() of a process whose engine is busy (iocomp.h, "fork").
 *
 * The parent keeps its engine busy the whole time: a host thread posts
 * packets as fast as the workers take them, a callback chain reposts itself,
 * and a recv waits in the backend on a socketpair. It forks FORKS times
 * (200, scaled). In each child:
 *   - every call on the inherited engine returns -ECHILD at once: post,
 *     recv (on an idle inherited overlapped), cancel of the pending recv,
 *     cancel_fd, bind, unbind, close_fd, port create/close, set/get min/max,
 *     available, stats, alloc, host size get/set, set_completion_manager and
 *     destroy; iocomp_overlapped_size() is 0, the backend name the parent's;
 *   - with io_uring, no mapping of the parent's rings is there
 *     (/proc/self/maps has no io_uring line: io_uring_ring_dontfork);
 *   - an inherited, idle overlapped can be freed;
 *   - a new engine of the child's own works: 100 posts delivered, a recv /
 *     send round trip on a new socketpair, destroy 0;
 *   - every 10th child execs this program with --check-exec, which fails
 *     if any descriptor it holds is an io_uring, eventfd, epoll or timerfd
 *     instance (every iocomp descriptor is close-on-exec).
 * A child that hangs (10 s) fails the test. After the forks the parent's
 * engine is intact: every posted packet delivered exactly once, the chain
 * still running, the pending recv completes with the bytes written, destroy
 * 0, no thread or descriptor left.
 *
 * Without the fork guard a child's post is accepted (0) and never runs:
 * the first check fails (the mutant, recorded in the commit).
 */
#include "test.h"

#include <dirent.h>
#include <sys/wait.h>

#define KEY_POST 0x9057u
#define KEY_CHAIN 0xC4A1u
#define KEY_SOCK 0x50CCu

static iocomp_engine *eng;
static atomic_uint_fast64_t posted, delivered, chain_runs;
static atomic_int stop_chain;
static iocomp_port_t chain_port;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_POST) {
        atomic_fetch_add(&delivered, 1);
        return;
    }
    if (key == KEY_CHAIN) {
        atomic_fetch_add(&chain_runs, 1);
        if (!atomic_load(&stop_chain)) CHECK_OK(iocomp_post(eng, chain_port, 0, 0, NULL, KEY_CHAIN));
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

static atomic_int stop_poster;
static void *poster(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_poster)) {
        if (atomic_load(&posted) - atomic_load(&delivered) > 4096) {
            sched_yield();
            continue;
        }
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_POST));
        atomic_fetch_add(&posted, 1);
    }
    return NULL;
}

/* ---- the child ---------------------------------------------------------------------- */
#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "io_fork child %d: %s:%d: %s\n", (int)getpid(), __FILE__, __LINE__, #cond); \
            _exit(10);                                                                            \
        }                                                                                         \
    } while (0)

static atomic_uint_fast64_t child_got;
static void child_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add(&child_got, 1);
}

static bool maps_have_uring(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "io_uring")) found = true;
    fclose(f);
    return found;
}

static void child(iocomp_overlapped *idle_ov, iocomp_overlapped *pending_ov, iocomp_overlapped *spare,
                  int sock, bool exec_check, const char *self) {
    const int E = -ECHILD;
    char buf[8];
    uint32_t u;
    size_t sz;
    iocomp_port_t p;
    iocomp_stats st;
    iocomp_overlapped *o;
    CHILD_CHECK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_POST) == E);
    CHILD_CHECK(iocomp_post(eng, chain_port, 0, 0, NULL, KEY_CHAIN) == E);
    CHILD_CHECK(iocomp_recv(eng, sock, buf, sizeof buf, 0, idle_ov) == E);
    CHILD_CHECK(iocomp_send(eng, sock, "x", 1, 0, idle_ov) == E);
    CHILD_CHECK(iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 1, 1000, 0, idle_ov) == E);
    CHILD_CHECK(iocomp_cancel(eng, pending_ov) == E);
    CHILD_CHECK(iocomp_cancel_fd(eng, sock) == E);
    CHILD_CHECK(iocomp_set_skip_on_success(eng, sock) == E);
    CHILD_CHECK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, 0, 1) == E);
    CHILD_CHECK(iocomp_unbind(eng, sock) == E);
    CHILD_CHECK(iocomp_close_fd(eng, sock) == E);
    CHILD_CHECK(fcntl(sock, F_GETFD) != -1); /* close_fd refused: the descriptor is still open */
    CHILD_CHECK(iocomp_port_create(eng, &p) == E);
    CHILD_CHECK(iocomp_port_close(eng, chain_port) == E);
    CHILD_CHECK(iocomp_get_min_threads(eng, &u) == E);
    CHILD_CHECK(iocomp_get_max_threads(eng, &u) == E);
    CHILD_CHECK(iocomp_set_min_threads(eng, 1) == E);
    CHILD_CHECK(iocomp_set_max_threads(eng, 4) == E);
    CHILD_CHECK(iocomp_get_available_threads(eng, &u) == E);
    CHILD_CHECK(iocomp_get_stats(eng, &st) == E);
    CHILD_CHECK(iocomp_overlapped_alloc(eng, &o) == E);
    CHILD_CHECK(iocomp_get_host_overlapped_size(eng, &sz) == E);
    CHILD_CHECK(iocomp_set_host_overlapped_size(eng, 8) == E);
    CHILD_CHECK(iocomp_set_completion_manager(eng, child_cb, NULL) == E);
    CHILD_CHECK(iocomp_engine_destroy(eng) == E);
    CHILD_CHECK(iocomp_overlapped_size(eng) == 0);
    CHILD_CHECK(strcmp(iocomp_strerror(E), "unknown error") != 0);
    const char *be = iocomp_backend_name(eng);
    CHILD_CHECK(be && (strcmp(be, "uring") == 0 || strcmp(be, "epoll") == 0));
    if (strcmp(be, "uring") == 0) CHILD_CHECK(!maps_have_uring());
    iocomp_overlapped_free(spare); /* inherited and idle: the child may free it */

    /* An engine of the child's own: not in sanitizer builds, whose runtimes
     * are not fork-safe in a multi-threaded parent (TSan's die_after_fork
     * ends a child that starts a thread; gcc 12's ASan allocator lock, held
     * by a parent thread at the fork, hangs the child's first allocation on
     * a new thread: seen). The refusals above are what they check. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    (void)exec_check, (void)self;
    _exit(0);
#endif
    iocomp_config cfg = test_config(1, 1, child_cb, NULL);
    cfg.backend = be;
    iocomp_engine *ce = NULL;
    CHILD_CHECK(iocomp_engine_create(&cfg, &ce) == 0);
    for (int i = 0; i < 100; i++) CHILD_CHECK(iocomp_post(ce, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 7) == 0);
    int sv[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    CHILD_CHECK(iocomp_bind(ce, IOCOMP_DEFAULT_PORT, sv[0], 9) == 0);
    iocomp_overlapped *cov = NULL;
    CHILD_CHECK(iocomp_overlapped_alloc(ce, &cov) == 0);
    char rb[4] = {0};
    int rrc = iocomp_recv(ce, sv[0], rb, sizeof rb, 0, cov);
    if (rrc) fprintf(stderr, "child recv rc %d\n", rrc);
    CHILD_CHECK(rrc == 0);
    CHILD_CHECK(write(sv[1], "kid", 3) == 3);
    uint64_t t0 = test_now_ns();
    while (atomic_load(&child_got) < 101 && test_now_ns() - t0 < 5000000000ull) test_sleep_us(200);
    if (atomic_load(&child_got) != 101) fprintf(stderr, "child got %d\n", (int)atomic_load(&child_got));
    CHILD_CHECK(atomic_load(&child_got) == 101);
    CHILD_CHECK(memcmp(rb, "kid", 3) == 0);
    CHILD_CHECK(iocomp_close_fd(ce, sv[0]) == 0);
    close(sv[1]);
    iocomp_overlapped_free(cov);
    CHILD_CHECK(iocomp_engine_destroy(ce) == 0);

    if (exec_check) {
        execl(self, self, "--check-exec", (char *)NULL);
        fprintf(stderr, "io_fork child: exec %s: %s\n", self, strerror(errno));
        _exit(11);
    }
    _exit(0);
}

/* The exec'd program: no iocomp descriptor may have survived the exec. */
static int check_exec(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return 12;
    struct dirent *de;
    int bad = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0) continue;
        target[n] = 0;
        if (strstr(target, "io_uring") || strstr(target, "eventfd") || strstr(target, "eventpoll") ||
            strstr(target, "timerfd")) {
            fprintf(stderr, "io_fork exec check: fd %s survived exec: %s\n", de->d_name, target);
            bad = 1;
        }
    }
    closedir(d);
    return bad ? 13 : 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--check-exec") == 0) return check_exec();
    test_begin("io_fork", 120);
    eng = test_io_engine_n(2, cb, NULL);
    CHECK_OK(iocomp_port_create(eng, &chain_port));
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], KEY_SOCK));
    iocomp_overlapped *pending = test_io_ov(eng, 1), *idle = test_io_ov(eng, 2);
    char rbuf[16] = {0};
    test_io_arm(pending);
    CHECK_OK(test_io_settle(pending, iocomp_recv(eng, sv[0], rbuf, sizeof rbuf, 0, pending)));
    CHECK_OK(iocomp_post(eng, chain_port, 0, 0, NULL, KEY_CHAIN));
    pthread_t pt = test_thread(poster, NULL);

    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(sl > 0);
    self[sl] = 0;

    unsigned forks = (unsigned)test_scaled_min(200, 20);
    for (unsigned i = 0; i < forks; i++) {
        iocomp_overlapped *spare = test_io_ov(eng, 100 + i);
        uint64_t chain0 = atomic_load(&chain_runs), del0 = atomic_load(&delivered);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) child(idle, pending, spare, sv[0], i % 10 == 0, self);
        iocomp_overlapped_free(spare); /* the parent's copy */
        int status = 0;
        uint64_t t0 = test_now_ns();
        pid_t w;
        while ((w = waitpid(pid, &status, WNOHANG)) == 0 && test_now_ns() - t0 < 10000000000ull)
            test_sleep_us(500);
        if (w == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK_MSG(0, "fork %u: the child hung for 10 s", i);
        }
        CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %u: the child failed (status 0x%x)", i,
                  status);
        /* The parent's engine went on meanwhile. */
        CHECK(TEST_WAIT_UNTIL(atomic_load(&chain_runs) > chain0 && atomic_load(&delivered) > del0, 5000));
    }

    atomic_store(&stop_poster, 1);
    test_join(pt);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&delivered) == atomic_load(&posted), 10000));
    atomic_store(&stop_chain, 1);
    CHECK_EQU(atomic_load(&test_io_of(pending)->completions), 0); /* still waiting */
    CHECK_EQ(write(sv[1], "parent", 6), 6);
    struct test_io *t = test_io_wait(pending, 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQU(atomic_load(&t->bytes), 6);
    CHECK(memcmp(rbuf, "parent", 6) == 0);
    test_sleep_us(20000); /* the last repost of the chain has run */
    uint64_t runs = atomic_load(&chain_runs);
    test_sleep_us(20000);
    CHECK_EQU(atomic_load(&chain_runs), runs); /* the chain stopped */
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    close(sv[1]);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(pending);
    iocomp_overlapped_free(idle);
    CHECK_EQU(atomic_load(&test_io_bad), 0);
    fprintf(stderr, "io_fork: %u forks, %" PRIu64 " packets posted and delivered, chain ran %" PRIu64 " times\n",
            forks, (uint64_t)atomic_load(&posted), (uint64_t)runs);
    test_end();
    return 0;
}
