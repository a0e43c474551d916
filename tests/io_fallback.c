/*
 * io_fallback: io_uring refused by the kernel (issue #3 "Tests": a test
 * child with io_uring refused, seccomp returning ENOSYS or EPERM for
 * io_uring_setup, runs on epoll and passes; forcing uring there returns the
 * error; BRIEF §2 "fall back to epoll on ENOSYS/EPERM", §5 "io_uring
 * unavailable").
 *
 * Registered once (not per backend): it chooses the backends itself. The
 * parent runs itself again (posix_spawn of /proc/self/exe, so the child is a
 * fresh single-threaded process, also under the sanitizers) as
 * `io_fallback child ENOSYS` and `... child EPERM`. The child:
 *   - installs a seccomp filter (raw BPF, prctl(PR_SET_SECCOMP), after
 *     PR_SET_NO_NEW_PRIVS) that fails io_uring_setup with that errno and
 *     allows everything else, and checks that a raw io_uring_setup now fails
 *     so;
 *   - with IOCOMP_BACKEND unset and cfg.backend NULL: iocomp_engine_create
 *     succeeds, iocomp_backend_name() is "epoll", and a recv / send round
 *     trip on a socketpair and a timer complete with the right results;
 *   - cfg.backend = "uring", and IOCOMP_BACKEND=uring: creation fails with
 *     exactly -ENOSYS / -EPERM, and leaves nothing behind (no thread, no
 *     descriptor: the child's own drift check);
 *   - IOCOMP_BACKEND=epoll / cfg.backend "epoll" still work.
 * The parent requires both children to exit 0, and reports which backend a
 * default engine picks in the parent itself.
 */
#include "test.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <spawn.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

extern char **environ;

static atomic_uint_fast64_t calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

static void deny_io_uring_setup(int err) {
    struct sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW), /* another ABI: leave it */
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog fprog = {.len = (unsigned short)(sizeof prog / sizeof prog[0]),
                               .filter = prog};
    CHECK_OK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    CHECK_OK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog));
    unsigned char params[120];
    memset(params, 0, sizeof params);
    long r = syscall(__NR_io_uring_setup, 4, params);
    CHECK_MSG(r == -1 && errno == err, "io_uring_setup under the filter: %ld, errno %d", r,
              errno);
}

static iocomp_engine *engine_with(const char *backend, int *rc) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = 2;
    cfg.on_complete = cb;
    cfg.host_overlapped_size = sizeof(struct test_io);
    cfg.backend = backend;
    iocomp_engine *e = (iocomp_engine *)(uintptr_t)0x1;
    *rc = iocomp_engine_create(&cfg, &e);
    if (*rc != 0) {
        CHECK(e == (iocomp_engine *)(uintptr_t)0x1); /* out untouched on failure */
        return NULL;
    }
    return e;
}

/* A recv/send round trip and a timer on e. */
static void round_trip(iocomp_engine *e) {
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[0], 0xA));
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[1], 0xB));
    iocomp_overlapped *r = test_io_ov(e, 1), *s = test_io_ov(e, 2), *t = test_io_ov(e, 3);
    char in[16];
    test_io_arm(r);
    CHECK_OK(test_io_settle(r, iocomp_recv(e, sv[0], in, sizeof in, 0, r)));
    test_io_arm(s);
    CHECK_OK(test_io_settle(s, iocomp_send(e, sv[1], "fallback", 8, 0, s)));
    test_io_arm(t);
    CHECK_OK(test_io_settle(t, iocomp_timer(e, IOCOMP_DEFAULT_PORT, 0xC, 1000000, 0, t)));
    struct test_io *x = test_io_wait(s, 1, 5000);
    CHECK_EQ(atomic_load(&x->status), 0);
    CHECK_EQ(atomic_load(&x->bytes), 8);
    x = test_io_wait(r, 1, 5000);
    CHECK_EQ(atomic_load(&x->status), 0);
    CHECK_EQ(atomic_load(&x->bytes), 8);
    CHECK_EQU(atomic_load(&x->key), 0xA);
    CHECK(memcmp(in, "fallback", 8) == 0);
    x = test_io_wait(t, 1, 5000);
    CHECK_EQ(atomic_load(&x->status), 0);
    CHECK_EQU(atomic_load(&x->key), 0xC);
    CHECK_OK(iocomp_engine_destroy(e));
    iocomp_overlapped_free(r);
    iocomp_overlapped_free(s);
    iocomp_overlapped_free(t);
    CHECK_OK(close(sv[0]));
    CHECK_OK(close(sv[1]));
}

static int child_main(const char *which) {
    int err = strcmp(which, "EPERM") == 0 ? EPERM : ENOSYS;
    char name[64];
    snprintf(name, sizeof name, "io_fallback child %s", which);
    test_begin(strdup(name), 20);
    deny_io_uring_setup(err);
    CHECK_OK(unsetenv("IOCOMP_BACKEND"));

    int rc;
    iocomp_engine *e = engine_with(NULL, &rc);
    CHECK_MSG(e != NULL, "default engine with io_uring refused (%s): %d (%s)", which, rc,
              iocomp_strerror(rc));
    CHECK_MSG(strcmp(iocomp_backend_name(e), "epoll") == 0, "default backend is '%s'",
              iocomp_backend_name(e));
    round_trip(e);

    /* Forced io_uring: the kernel's error, not a silent fallback. */
    CHECK(engine_with("uring", &rc) == NULL);
    CHECK_EQ(rc, -err);
    CHECK_OK(setenv("IOCOMP_BACKEND", "uring", 1));
    CHECK(engine_with(NULL, &rc) == NULL);
    CHECK_EQ(rc, -err);
    /* Forced epoll works, from the variable and from the config. */
    CHECK_OK(setenv("IOCOMP_BACKEND", "epoll", 1));
    e = engine_with(NULL, &rc);
    CHECK_MSG(e != NULL, "IOCOMP_BACKEND=epoll: %d", rc);
    CHECK(strcmp(iocomp_backend_name(e), "epoll") == 0);
    round_trip(e);
    CHECK_OK(unsetenv("IOCOMP_BACKEND"));
    e = engine_with("epoll", &rc);
    CHECK_MSG(e != NULL, "cfg.backend epoll: %d", rc);
    round_trip(e);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    test_end();
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "child") == 0)
        return child_main(argv[2]);
#ifndef TEST_AUDIT_ARCH
    test_begin("io_fallback", 0);
    test_skip("no seccomp audit arch known for this architecture");
#endif
    test_begin("io_fallback", 0);
    {
        int rc;
        iocomp_engine *e = engine_with(NULL, &rc);
        CHECK_OK(rc);
        printf("io_fallback: a default engine here runs %s\n", iocomp_backend_name(e));
        CHECK_OK(iocomp_engine_destroy(e));
    }
    const char *errs[] = {"ENOSYS", "EPERM"};
    for (int i = 0; i < 2; i++) {
        char *args[] = {(char *)"io_fallback", (char *)"child", (char *)errs[i], NULL};
        pid_t pid;
        int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, args, environ);
        CHECK_MSG(rc == 0, "posix_spawn: %s", strerror(rc));
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
            CHECK(errno == EINTR);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "child with io_uring_setup -> %s: %s %d", errs[i],
                  WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        printf("io_fallback: io_uring_setup -> %s: epoll ran, forced uring refused with it\n",
               errs[i]);
    }
    test_end();
}
