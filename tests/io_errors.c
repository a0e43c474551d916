/*
 * io_errors: errors of asynchronous operations (issue #3 "Tests": error from
 * the kernel: bad fd, EFAULT buffer, refused connection; BRIEF §4 invariants
 * 1 and 8, §5 bad input).
 *
 * Two kinds, and the test keeps them apart:
 *   - The kernel's errors come back as the completion's status (the submit
 *     returned 0, exactly one callback, bytes 0): read on a write-only file
 *     -EBADF, write on a read-only one -EBADF, recv into (void *)1 with data
 *     there -EFAULT, send from (void *)1 -EFAULT, recv on a regular file
 *     -ENOTSOCK, connect to a loopback port nobody listens on
 *     -ECONNREFUSED, accept on a socket that is not listening -EINVAL.
 *   - Refusals at submission return the negative value and no callback ever
 *     follows; the overlapped is untouched and works right after: fd never
 *     bound, unbound, -1 -> -EBADF; NULL ov, NULL engine, an overlapped of
 *     another engine, a buffer NULL with a length, iovcnt 0 / above IOV_MAX,
 *     bad flags (fsync, timer, accept), poll with no events -> -EINVAL; the
 *     overlapped still in flight -> -EBUSY; no completion manager ->
 *     -ENOTCONN; the fd's port closed -> -EBADF; a timer on a closed port
 *     -EBADF; a timer on a port that is closing -> -ESHUTDOWN.
 * The callback count equals the accepted requests at the end (no callback
 * for any refusal), and the engine keeps working.
 */
#include "test.h"

#include <poll.h>
#include <sys/uio.h>

static iocomp_engine *eng;
static atomic_uint_fast64_t calls, accepted;
static struct test_gate gate;
static iocomp_port_t closing_port;
static atomic_int close_rc = 1;

static void *closer_main(void *arg) {
    (void)arg;
    atomic_store(&close_rc, iocomp_port_close(eng, closing_port));
    return NULL;
}

#define KEY_GATE 0x6A7Eu

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (ov == NULL) { /* posts of the closing-port case; the first one blocks */
        if (key == KEY_GATE)
            test_gate_wait(&gate, 200);
        atomic_fetch_add(&calls, 1);
        return;
    }
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

static uint64_t run_base;
static void run_pre(iocomp_overlapped *ov) {
    run_base = atomic_load(&test_io_of(ov)->completions);
    test_io_arm(ov);
}
/* Accepted; one completion with want_status and bytes 0. */
static void run_fail(iocomp_overlapped *ov, int rc, int32_t want_status, int line) {
    CHECK_MSG(test_io_settle(ov, rc) == 0, "line %d: submit returned %d (%s), want 0", line, rc,
              test_errname(rc));
    atomic_fetch_add(&accepted, 1);
    struct test_io *t = test_io_wait(ov, run_base + 1, 5000);
    int32_t st = (int32_t)atomic_load(&t->status);
    CHECK_MSG(st == want_status, "line %d: status %d (%s), want %d (%s)", line, st,
              test_errname(st), want_status, test_errname(want_status));
    CHECK_MSG(atomic_load(&t->bytes) == 0, "line %d: bytes %u with an error", line,
              (unsigned)atomic_load(&t->bytes));
}
#define RUN_FAIL(ov, call, want) (run_pre(ov), run_fail((ov), (call), (want), __LINE__))

/* Refused with want; no callback (checked at the end and by the armed flag). */
static void refused(iocomp_overlapped *ov, int rc, int want, int line) {
    CHECK_MSG(rc == want, "line %d: submit returned %d (%s), want %d (%s)", line, rc,
              test_errname(rc), want, test_errname(want));
    test_io_settle(ov, rc);
}
#define REFUSED(ov, call, want) (test_io_arm(ov), refused((ov), (call), (want), __LINE__))

static int temp_file(int flags) {
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/iocomp-io_errors-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "0123456789", 10), 10);
    int fd2 = open(path, flags | O_CLOEXEC);
    CHECK(fd2 >= 0);
    CHECK_OK(unlink(path));
    CHECK_OK(close(fd));
    return fd2;
}

static void kernel_errors(iocomp_overlapped *ov) {
    char buf[64];
    /* Bound, but the wrong mode. */
    int wo = temp_file(O_WRONLY);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, wo, 1));
    RUN_FAIL(ov, iocomp_read(eng, wo, buf, sizeof buf, 0, ov), -EBADF);
    struct iovec iv = {buf, sizeof buf};
    RUN_FAIL(ov, iocomp_readv(eng, wo, &iv, 1, 0, ov), -EBADF);
    int ro = temp_file(O_RDONLY);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, ro, 2));
    RUN_FAIL(ov, iocomp_write(eng, ro, "x", 1, 0, ov), -EBADF);
    /* A socket operation on a regular file. */
    RUN_FAIL(ov, iocomp_recv(eng, ro, buf, sizeof buf, 0, ov), -ENOTSOCK);

    /* EFAULT buffers, with data there (so the kernel touches the buffer). */
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 3));
    CHECK_EQ(send(sv[1], "data", 4, 0), 4);
    RUN_FAIL(ov, iocomp_recv(eng, sv[0], (void *)1, 16, 0, ov), -EFAULT);
    RUN_FAIL(ov, iocomp_send(eng, sv[0], (const void *)1, 16, 0, ov), -EFAULT);
    /* The data is still there for a good recv (the failed one took nothing). */
    int n = -1;
    {
        run_pre(ov);
        int rc = iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov);
        CHECK_EQ(test_io_settle(ov, rc), 0);
        atomic_fetch_add(&accepted, 1);
        struct test_io *t = test_io_wait(ov, run_base + 1, 5000);
        CHECK_EQ(atomic_load(&t->status), 0);
        n = (int)atomic_load(&t->bytes);
    }
    CHECK_EQ(n, 4);
    CHECK(memcmp(buf, "data", 4) == 0);

    /* Connection refused: a bound, non-listening loopback socket holds the
     * port, so nobody else can listen there meanwhile. */
    struct sockaddr_in dead;
    int holder = test_tcp_socket(false, &dead);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, c, 4));
    RUN_FAIL(ov, iocomp_connect(eng, c, (struct sockaddr *)&dead, sizeof dead, ov), -ECONNREFUSED);
    /* accept on a socket that does not listen. */
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, holder, 5));
    RUN_FAIL(ov, iocomp_accept(eng, holder, NULL, NULL, 0, ov), -EINVAL);

    CHECK_OK(iocomp_close_fd(eng, c));
    CHECK_OK(iocomp_close_fd(eng, holder));
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
    CHECK_OK(iocomp_close_fd(eng, wo));
    CHECK_OK(iocomp_close_fd(eng, ro));
}

static void refusals(iocomp_overlapped *ov, iocomp_overlapped *busy_ov) {
    char buf[64];
    int sv[2];
    test_socketpair(sv);
    uint64_t calls0 = atomic_load(&calls);

    /* Not bound (never, -1, a number that is not open). */
    REFUSED(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov), -EBADF);
    REFUSED(ov, iocomp_send(eng, sv[0], "x", 1, 0, ov), -EBADF);
    REFUSED(ov, iocomp_read(eng, -1, buf, sizeof buf, 0, ov), -EBADF);
    REFUSED(ov, iocomp_poll(eng, 1 << 19, POLLIN, ov), -EBADF);
    REFUSED(ov, iocomp_fsync(eng, sv[0], 0, ov), -EBADF);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 10));
    CHECK_OK(iocomp_unbind(eng, sv[0]));
    REFUSED(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov), -EBADF);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 11));

    /* NULL overlapped / engine / pointers. */
    CHECK_EQ(iocomp_recv(eng, sv[0], buf, sizeof buf, 0, NULL), -EINVAL);
    CHECK_EQ(iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 1000, 0, NULL), -EINVAL);
    CHECK_EQ(iocomp_recv(NULL, sv[0], buf, sizeof buf, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_recv(eng, sv[0], NULL, 10, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_recvmsg(eng, sv[0], NULL, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_connect(eng, sv[0], NULL, 16, ov), -EINVAL);
    struct iovec iv = {buf, sizeof buf};
    REFUSED(ov, iocomp_readv(eng, sv[0], &iv, 0, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_readv(eng, sv[0], &iv, IOV_MAX + 1, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_readv(eng, sv[0], NULL, 1, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_recv(eng, sv[0], buf, 0x80000000u, 0, ov), -EINVAL);
    REFUSED(ov, iocomp_fsync(eng, sv[0], 0x100, ov), -EINVAL);
    REFUSED(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 1000, 0x100, ov), -EINVAL);
    REFUSED(ov, iocomp_accept(eng, sv[0], NULL, NULL, 0x4000000, ov), -EINVAL);
    REFUSED(ov, iocomp_poll(eng, sv[0], 0, ov), -EINVAL);
    struct sockaddr_in a;
    REFUSED(ov, iocomp_accept(eng, sv[0], (struct sockaddr *)&a, NULL, 0, ov), -EINVAL);

    /* An overlapped of another engine, a fake one, plain memory. */
    iocomp_engine *other = test_io_engine_n(1, cb, NULL);
    iocomp_overlapped *foreign = test_io_ov(other, 99);
    REFUSED(foreign, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, foreign), -EINVAL);
    REFUSED(foreign, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 1000, 0, foreign), -EINVAL);
    CHECK_EQ(iocomp_cancel(eng, foreign), -EINVAL);
    static _Alignas(16) unsigned char junk[1024];
    memset(junk, 0x5A, sizeof junk);
    CHECK_EQ(iocomp_recv(eng, sv[0], buf, sizeof buf, 0, (iocomp_overlapped *)junk), -EINVAL);
    CHECK_OK(iocomp_engine_destroy(other));
    iocomp_overlapped_free(foreign);

    /* In flight: a recv with nothing to read is pending; the same overlapped
     * is refused for any operation until its completion. */
    test_io_arm(busy_ov);
    CHECK_EQ(test_io_settle(busy_ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, busy_ov)), 0);
    atomic_fetch_add(&accepted, 1);
    char b2[8];
    CHECK_EQ(iocomp_recv(eng, sv[0], b2, sizeof b2, 0, busy_ov), -EBUSY);
    CHECK_EQ(iocomp_send(eng, sv[0], "y", 1, 0, busy_ov), -EBUSY);
    CHECK_EQ(iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 0, 0, busy_ov), -EBUSY);
    test_sleep_us(10000);
    CHECK_EQ(atomic_load(&test_io_of(busy_ov)->completions), 0);
    CHECK_EQ(send(sv[1], "zz", 2, 0), 2);
    struct test_io *t = test_io_wait(busy_ov, 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 2);
    CHECK(memcmp(buf, "zz", 2) == 0); /* the first request's buffer, not b2 */

    /* The fd's port closed: the binding went with it. */
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(eng, &p));
    int s2[2];
    test_socketpair(s2);
    CHECK_OK(iocomp_bind(eng, p, s2[0], 12));
    CHECK_OK(iocomp_port_close(eng, p));
    REFUSED(ov, iocomp_recv(eng, s2[0], buf, sizeof buf, 0, ov), -EBADF);
    REFUSED(ov, iocomp_timer(eng, p, 0, 1000, 0, ov), -EBADF);
    CHECK_EQ(iocomp_bind(eng, p, s2[1], 13), -EBADF);

    /* A port that is closing: a posted callback of the port blocks, another
     * thread closes the port; once posts say -ESHUTDOWN, a timer on the port
     * is refused the same way. */
    CHECK_OK(iocomp_port_create(eng, &closing_port));
    CHECK_OK(iocomp_post(eng, closing_port, 0, 0, NULL, KEY_GATE));
    atomic_fetch_add(&accepted, 1);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&gate.entered) == 1, 5000));
    pthread_t closer = test_thread(closer_main, NULL);
    uint64_t deadline = test_now_ns() + 5000000000u;
    for (;;) {
        int prc = iocomp_post(eng, closing_port, 0, 0, NULL, KEY_GATE + 1);
        if (prc == -ESHUTDOWN)
            break;
        CHECK_EQ(prc, 0);
        atomic_fetch_add(&accepted, 1);
        CHECK(test_now_ns() < deadline);
        test_sleep_us(100);
    }
    REFUSED(ov, iocomp_timer(eng, closing_port, 0, 1000, 0, ov), -ESHUTDOWN);
    CHECK_EQ(atomic_load(&close_rc), 1); /* still waiting for the blocked callback */
    test_gate_open(&gate);
    test_join(closer);
    CHECK_EQ(atomic_load(&close_rc), 0);
    REFUSED(ov, iocomp_timer(eng, closing_port, 0, 1000, 0, ov), -EBADF);

    /* No completion manager: -ENOTCONN, nothing else changes. */
    CHECK_OK(iocomp_set_completion_manager(eng, NULL, NULL));
    REFUSED(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov), -ENOTCONN);
    REFUSED(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0, 0, 0, ov), -ENOTCONN);
    CHECK_OK(iocomp_set_completion_manager(eng, cb, NULL));

    /* After all that, the same overlapped works. */
    CHECK_EQ(send(sv[1], "ok", 2, 0), 2);
    uint64_t base = atomic_load(&test_io_of(ov)->completions);
    test_io_arm(ov);
    CHECK_EQ(test_io_settle(ov, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov)), 0);
    atomic_fetch_add(&accepted, 1);
    t = test_io_wait(ov, base + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 2);

    /* Only the accepted ones called back. */
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK(atomic_load(&calls) > calls0);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
    CHECK_OK(close(s2[0]));
    CHECK_OK(close(s2[1]));
}

int main(void) {
    test_begin("io_errors", 0);
    eng = test_io_engine_n(2, cb, NULL);
    printf("io_errors: backend %s\n", iocomp_backend_name(eng));
    iocomp_overlapped *ov = test_io_ov(eng, 1), *ov2 = test_io_ov(eng, 2);

    kernel_errors(ov);
    refusals(ov, ov2);

    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    iocomp_overlapped_free(ov);
    iocomp_overlapped_free(ov2);
    test_end();
}
