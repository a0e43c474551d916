/*
 * elastic_start_backoff: when a worker thread cannot be started, the monitor
 * backs off instead of retrying at every sample (audit defect 13: with
 * RLIMIT_NPROC reached it failed ~600 starts in 300 ms).
 *
 * A child process (as nobody when run as root, so that the limit applies)
 * creates an engine (min 1, max 8, concurrency 4), then lowers RLIMIT_NPROC
 * to 1: every thread start fails with EAGAIN. Three callbacks that block
 * 400 ms each are posted: the monitor sees a blocked worker with work
 * waiting and wants a thread. Over those 1.2 s it tries a few times
 * (1, 2, 4... ms apart, at most 1 s): at most 20 failures. All three
 * callbacks still run, on the one worker, and destroy returns 0.
 */
#include "test.h"

#include <grp.h>
#include <sys/resource.h>
#include <sys/wait.h>

static atomic_uint_fast64_t ran;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    test_sleep_us(400000);
    atomic_fetch_add(&ran, 1);
}

static int child(void) {
    if (geteuid() == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            return 77; /* root that cannot drop to nobody: the limit would not apply */
    }
    iocomp_config cfg = test_config(1, 8, cb, NULL);
    cfg.concurrency = 4;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    struct rlimit rl = {1, 1};
    CHECK_OK(setrlimit(RLIMIT_NPROC, &rl));
    uint64_t f0 = test_stats(e).thread_start_failures;
    for (int i = 0; i < 3; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&ran, 3, 10000);
    iocomp_stats s = test_stats(e);
    uint64_t failed = s.thread_start_failures - f0;
    printf("thread starts refused: %" PRIu64 " in 1.2 s; threads_live %u\n", failed, s.threads_live);
    CHECK_MSG(failed >= 1, "the monitor never tried to start a thread (the test saw nothing)");
    CHECK_MSG(failed <= 20, "%" PRIu64 " failed thread starts in 1.2 s: no backoff", failed);
    CHECK_EQ(s.threads_live, 1);
    CHECK_OK(iocomp_engine_destroy(e));
    return 0;
}

int main(void) {
    test_begin("elastic_start_backoff", 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child());
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK_MSG(WIFEXITED(st), "the child died (signal %d)", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    if (WEXITSTATUS(st) == 77)
        test_skip("running as root without the right to become nobody: RLIMIT_NPROC does not apply to root");
    CHECK_EQ(WEXITSTATUS(st), 0);
    test_end();
}
