/*
 * io_uring_disabled: the kernel.io_uring_disabled sysctl (Linux 6.6+;
 * issue #10 item 4). Needs root; changes a machine-wide setting, so ctest
 * runs it alone (RUN_SERIAL) and the parent restores the old value on every
 * path (the engines run in children, each a fresh process with a fresh
 * probe: iocomp probes io_uring once per process).
 *   2 (disabled for everyone): a default engine runs epoll and works (a
 *     post and a recv round trip); a forced "uring" fails with -EPERM,
 *     the kernel's error, and leaves nothing behind;
 *   1 (disabled unless privileged or in io_uring_group): as root a default
 *     engine still runs io_uring;
 *   0 restored: io_uring again;
 *   and in one process across the changes: an engine first made at 2 runs
 *     epoll, the next one, made after the parent set 0, runs io_uring (a
 *     refusal is not remembered), and one made at 2 again runs epoll (nor
 *     is a success: before, a process whose probe had passed made its
 *     default engines fail with -EPERM at 2).
 * Skipped (77) without root, without the sysctl, or in a build without
 * io_uring.
 */
#include "test.h"

#include <sys/wait.h>

#define SYSCTL "/proc/sys/kernel/io_uring_disabled"

static int read_value(void) {
    FILE *f = fopen(SYSCTL, "r");
    if (!f) return -1;
    int v = -1;
    if (fscanf(f, "%d", &v) != 1) v = -1;
    fclose(f);
    return v;
}
static bool write_value(int v) {
    FILE *f = fopen(SYSCTL, "w");
    if (!f) return false;
    bool ok = fprintf(f, "%d\n", v) > 0;
    return fclose(f) == 0 && ok;
}

static atomic_int got;
static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add(&got, 1);
}

/* In a child: a default engine must run `want` and work; a forced "uring"
 * must give forced_rc. Exit 0 when all holds. */
static int child(const char *want, int forced_rc) {
    iocomp_config cfg = test_config(2, 2, cb, NULL);
    cfg.backend = "auto";
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(&cfg, &e);
    if (rc != 0) { fprintf(stderr, "default engine: %d (%s)\n", rc, iocomp_strerror(rc)); return 1; }
    if (strcmp(iocomp_backend_name(e), want) != 0) {
        fprintf(stderr, "default engine runs %s, want %s\n", iocomp_backend_name(e), want);
        return 2;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 3;
    iocomp_overlapped *ov = NULL;
    char buf[4];
    if (iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1) != 0 || iocomp_bind(e, IOCOMP_DEFAULT_PORT, sv[0], 2) != 0 ||
        iocomp_overlapped_alloc(e, &ov) != 0 || iocomp_recv(e, sv[0], buf, sizeof buf, 0, ov) != 0 ||
        write(sv[1], "ok", 2) != 2)
        return 4;
    if (!TEST_WAIT_UNTIL(atomic_load(&got) == 2, 5000)) return 5;
    if (iocomp_close_fd(e, sv[0]) != 0 || iocomp_engine_destroy(e) != 0) return 6;
    iocomp_overlapped_free(ov);
    close(sv[1]);
    int fds = test_count_fds();
    cfg.backend = "uring";
    e = NULL;
    rc = iocomp_engine_create(&cfg, &e);
    if (rc != forced_rc) {
        fprintf(stderr, "forced uring: %d (%s), want %d\n", rc, iocomp_strerror(rc), forced_rc);
        return 7;
    }
    if (rc == 0 && iocomp_engine_destroy(e) != 0) return 8;
    if (test_count_fds() != fds) return 9;
    return 0;
}

static int run_child(const char *want, int forced_rc) {
    pid_t pid = fork();
    if (pid == 0) _exit(child(want, forced_rc));
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* One engine's backend, default choice, in this process now. */
static const char *default_backend(void) {
    iocomp_config cfg = test_config(1, 1, cb, NULL);
    cfg.backend = "auto";
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(&cfg, &e);
    if (rc != 0) return iocomp_strerror(rc);
    const char *b = iocomp_backend_name(e);
    if (iocomp_engine_destroy(e) != 0) return "destroy failed";
    return b;
}

/* The parent sets the sysctl between the child's steps (pipes: the child
 * says 'n' when it wants the next value). */
static int run_sequence(const int *values, const char *const *want, int n) {
    int up[2], down[2];
    if (pipe(up) || pipe(down)) return -1;
    CHECK(write_value(values[0]));
    pid_t pid = fork();
    if (pid == 0) {
        close(up[0]), close(down[1]);
        for (int i = 0; i < n; i++) {
            const char *b = default_backend();
            if (strcmp(b, want[i]) != 0) {
                fprintf(stderr, "step %d (io_uring_disabled=%d): default engine %s, want %s\n", i, values[i], b, want[i]);
                _exit(20 + i);
            }
            char c = 'n';
            if (i + 1 < n && (write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)) _exit(30);
        }
        _exit(0);
    }
    close(up[1]), close(down[0]); /* a child that exits early ends the reads */
    for (int i = 1; i < n; i++) {
        char c;
        if (read(up[0], &c, 1) != 1) break;
        if (!write_value(values[i])) break;
        if (write(down[1], &c, 1) != 1) break;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    close(up[0]), close(down[1]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

int main(void) {
    test_begin("io_uring_disabled", 60);
    if (geteuid() != 0) test_skip("needs root to change kernel.io_uring_disabled");
    int old = read_value();
    if (old < 0) test_skip("no " SYSCTL " (Linux before 6.6)");
    if (old != 0) test_skip("kernel.io_uring_disabled is not 0 here: not changing a machine set that way");
    /* First, before this process has probed io_uring (a child inherits
     * what its parent's probe kept): the sequence in one fresh process. */
    int rs = -3;
    if (write_value(0)) {
        static const int vals[] = {2, 0, 2, 0};
        static const char *const want[] = {"epoll", "uring", "epoll", "uring"};
        rs = run_sequence(vals, want, 4);
        CHECK_MSG(write_value(old) && read_value() == old, "could not restore " SYSCTL " to %d", old);
    }
    {   /* a build without io_uring cannot show the difference */
        iocomp_config cfg = test_config(1, 1, cb, NULL);
        cfg.backend = "uring";
        iocomp_engine *e = NULL;
        int rc = iocomp_engine_create(&cfg, &e);
        if (rc == -ENOSYS) test_skip("built without io_uring");
        if (rc != 0 && old == 0) CHECK_MSG(0, "io_uring does not start with the sysctl at 0: %d", rc);
        if (rc == 0) CHECK_OK(iocomp_engine_destroy(e));
    }
    int r2 = -1, r1 = -1, r0 = -1;
    if (write_value(2)) {
        r2 = run_child("epoll", -EPERM);
        bool back = write_value(1);
        r1 = back ? run_child("uring", 0) : -2;
    }

    CHECK_MSG(write_value(old) && read_value() == old, "could not restore " SYSCTL " to %d", old);
    if (r2 == -1) test_skip("cannot write " SYSCTL " (read-only /proc/sys in this container?)");
    r0 = run_child("uring", 0);
    CHECK_MSG(r2 == 0, "io_uring_disabled=2: child failed (%d)", r2);
    CHECK_MSG(r1 == 0, "io_uring_disabled=1 as root: child failed (%d)", r1);
    CHECK_MSG(r0 == 0, "io_uring_disabled=0 again: child failed (%d)", r0);
    CHECK_MSG(rs == 0, "2 -> 0 -> 2 -> 0 in one process: child failed (%d)", rs);
    test_end();
    return 0;
}
