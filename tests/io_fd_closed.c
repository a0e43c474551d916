/*
 * io_fd_closed: descriptors closed under pending requests, and descriptor
 * numbers reused (issue #3 "Tests": host closes a descriptor with an
 * operation pending; descriptor number reuse; BRIEF §4 invariant 1, §5
 * "closed while an op is pending, reused number").
 *
 * Closed with close(2) while a recv is pending (nothing sent), the request
 * does not end by itself (iocomp.h: io_uring holds its own reference, epoll
 * never reports it again): no completion within 50 ms. It then completes
 * exactly once with -ECANCELED and the binding's key when the host ends it,
 * each way in turn: iocomp_cancel_fd() (returns 1), iocomp_unbind(),
 * iocomp_close_fd() (returns close(2)'s -EBADF, the request is cancelled all
 * the same), the port's close. iocomp_close_fd() on an open descriptor with
 * a recv pending returns 0, cancels it and closes the descriptor.
 *
 * Reuse, REUSE rounds: a recv pending on fd A (key K1); A closed; a new
 * socketpair takes the same number A. Binding it is -EEXIST until the host
 * unbinds A, which cancels the old request (-ECANCELED, key K1). A is bound
 * again (key K2) with a recv pending; data then sent to the OLD file's peer
 * (every other round the old file is kept alive by a dup(), so its epoll
 * registration and readiness live on) must not complete the new request;
 * data sent to the new peer completes it once, with key K2 and exactly the
 * new peer's bytes. No completion ever arrives for a stale generation.
 *
 * close(2) right after the submit returned 0, the number at once reused by a
 * socket with data ready (REUSE rounds): the request stays pending (no
 * completion in 2-20 ms, never the new socket's data) until unbind cancels
 * it; the new socket's data is still there.
 *
 * iocomp_close_fd() from a callback right after that callback submitted a
 * recv on the descriptor, the number at once reused by a socket with data
 * ready: the recv completes -ECANCELED, never with the new socket's data
 * (io_uring: its SQE was not issued yet when the cancel came).
 */
#include "test.h"

#include <sys/stat.h>

static iocomp_engine *eng;
static atomic_uint_fast64_t calls, accepted;

#define KEY_IN_CB 0x1BCBu
static void in_callback(void);
static atomic_int in_cb_stage;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_IN_CB && !ov) { /* the posted packet of close_fd_in_callback() */
        in_callback();
        atomic_store(&in_cb_stage, 2);
        return;
    }
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

static uint64_t done(iocomp_overlapped *ov) { return atomic_load(&test_io_of(ov)->completions); }

static void submit_recv(iocomp_overlapped *ov, int fd, void *buf, uint32_t len) {
    test_io_arm(ov);
    int rc = test_io_settle(ov, iocomp_recv(eng, fd, buf, len, 0, ov));
    CHECK_MSG(rc == 0, "recv on %d: %d (%s)", fd, rc, test_errname(rc));
    atomic_fetch_add(&accepted, 1);
}

static void expect(iocomp_overlapped *ov, uint64_t n, int32_t status, uint32_t bytes,
                   uintptr_t key, int line) {
    struct test_io *t = test_io_wait(ov, n, 5000);
    CHECK_MSG(atomic_load(&t->status) == status && atomic_load(&t->bytes) == bytes &&
                  atomic_load(&t->key) == key,
              "line %d: status %d (%s) bytes %u key 0x%lx; want %d, %u, 0x%lx", line,
              (int)atomic_load(&t->status), test_errname(atomic_load(&t->status)),
              (unsigned)atomic_load(&t->bytes), (unsigned long)atomic_load(&t->key), status, bytes,
              (unsigned long)key);
}
#define EXPECT(ov, n, st, by, key) expect((ov), (n), (st), (by), (key), __LINE__)

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

enum how { BY_CANCEL_FD, BY_UNBIND, BY_CLOSE_FD, BY_PORT_CLOSE };
static const char *how_name[] = {"cancel_fd", "unbind", "close_fd", "port close"};

static void closed_pending(iocomp_overlapped *ov, enum how how) {
    char buf[16];
    int sv[2];
    test_socketpair(sv);
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(eng, &p));
    uintptr_t key = 0xC105Eu + how;
    CHECK_OK(iocomp_bind(eng, p, sv[0], key));
    uint64_t n = done(ov);
    submit_recv(ov, sv[0], buf, sizeof buf);
    test_sleep_us(5000);
    int a = sv[0];
    CHECK_OK(close(a));
    test_sleep_us(50000);
    CHECK_MSG(done(ov) == n, "%s: the request ended by itself when its descriptor was closed",
              how_name[how]);
    switch (how) {
    case BY_CANCEL_FD:
        CHECK_EQ(iocomp_cancel_fd(eng, a), 1);
        break;
    case BY_UNBIND:
        CHECK_OK(iocomp_unbind(eng, a));
        break;
    case BY_CLOSE_FD:
        CHECK_EQ(iocomp_close_fd(eng, a), -EBADF); /* close(2) of a closed number */
        break;
    case BY_PORT_CLOSE:
        CHECK_OK(iocomp_port_close(eng, p));
        break;
    }
    EXPECT(ov, n + 1, -ECANCELED, 0, key);
    test_sleep_us(10000);
    CHECK_EQ(done(ov), n + 1);
    if (how != BY_PORT_CLOSE)
        CHECK_OK(iocomp_port_close(eng, p));
    CHECK_OK(close(sv[1]));
}

static void close_fd_pending(iocomp_overlapped *ov) {
    char buf[16];
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 0xCF));
    uint64_t n = done(ov);
    submit_recv(ov, sv[0], buf, sizeof buf);
    test_sleep_us(5000);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    EXPECT(ov, n + 1, -ECANCELED, 0, 0xCF);
    CHECK(!fd_open(sv[0]));
    CHECK_OK(close(sv[1]));
}

/* A socketpair whose first end is number want (the lowest free number, as
 * the caller just closed it). */
static void pair_at(int want, int sv[2]) {
    test_socketpair(sv);
    CHECK_MSG(sv[0] == want, "the descriptor number was not reused: got %d, want %d", sv[0],
              want);
}

static void reuse(iocomp_overlapped *ov_old, iocomp_overlapped *ov_new, int round) {
    char old_buf[16], new_buf[16];
    int s1[2];
    test_socketpair(s1);
    int a = s1[0];
    uintptr_t k1 = (uintptr_t)round << 8 | 1, k2 = (uintptr_t)round << 8 | 2;
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a, k1));
    uint64_t n_old = done(ov_old), n_new = done(ov_new);
    submit_recv(ov_old, a, old_buf, sizeof old_buf);
    int keep = -1;
    if (round & 1) { /* the old file stays alive (and registered, on epoll) */
        keep = fcntl(a, F_DUPFD_CLOEXEC, 100);
        CHECK(keep >= 100);
    }
    CHECK_OK(close(a));
    int s2[2];
    pair_at(a, s2);
    CHECK_EQ(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a, k2), -EEXIST);
    CHECK_OK(iocomp_unbind(eng, a));
    EXPECT(ov_old, n_old + 1, -ECANCELED, 0, k1);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a, k2));
    memset(new_buf, 0, sizeof new_buf);
    submit_recv(ov_new, a, new_buf, sizeof new_buf);
    /* The old file becomes readable: nothing for the new binding. */
    ssize_t sent_old = send(s1[1], "OLD", 3, MSG_NOSIGNAL);
    if (keep >= 0)
        CHECK_EQ(sent_old, 3);
    else /* the old file is gone once nothing holds it (EPIPE), or not yet */
        CHECK(sent_old == 3 || (sent_old == -1 && errno == EPIPE));
    test_sleep_us(round < 4 ? 20000 : 1000);
    CHECK_MSG(done(ov_new) == n_new, "round %d: the new request completed from the old file's "
                                     "data (status %d, bytes %u)",
              round, (int)atomic_load(&test_io_of(ov_new)->status),
              (unsigned)atomic_load(&test_io_of(ov_new)->bytes));
    CHECK_EQ(send(s2[1], "new!", 4, 0), 4);
    EXPECT(ov_new, n_new + 1, 0, 4, k2);
    CHECK(memcmp(new_buf, "new!", 4) == 0);
    CHECK_EQ(done(ov_old), n_old + 1);
    CHECK_OK(iocomp_close_fd(eng, a));
    if (keep >= 0) {
        char b[8];
        CHECK_EQ(recv(keep, b, sizeof b, MSG_DONTWAIT), 3); /* the old data is still there */
        CHECK_OK(close(keep));
    }
    CHECK_OK(close(s1[1]));
    CHECK_OK(close(s2[1]));
}

/* A callback submits a recv, then iocomp_close_fd() on the descriptor, and
 * the number is at once taken by a socket with data ready, all before the
 * callback returns (on io_uring the recv is still an unsubmitted SQE of the
 * worker's ring then): the recv completes -ECANCELED, never with the new
 * socket's bytes, which stay in that socket. */
static struct {
    iocomp_overlapped *ov;
    char buf[16];
    int a, s2[2], rc;
} icb;

static void in_callback(void) {
    int s1[2];
    test_socketpair(s1);
    icb.a = s1[0];
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, icb.a, KEY_IN_CB));
    submit_recv(icb.ov, icb.a, icb.buf, sizeof icb.buf);
    icb.rc = iocomp_close_fd(eng, icb.a);
    test_socketpair(icb.s2);
    CHECK_EQ(send(icb.s2[1], "NEW", 3, 0), 3);
    CHECK_OK(close(s1[1]));
}

static void close_fd_in_callback(iocomp_overlapped *ov, int round) {
    icb.ov = ov;
    uint64_t n = done(ov);
    atomic_store(&in_cb_stage, 1);
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_IN_CB));
    for (int i = 0; i < 5000 && atomic_load(&in_cb_stage) != 2; i++) test_sleep_us(1000);
    CHECK_EQ(atomic_load(&in_cb_stage), 2);
    CHECK_EQ(icb.rc, 0);
    CHECK_MSG(icb.s2[0] == icb.a, "round %d: the number was not reused (%d, want %d)", round,
              icb.s2[0], icb.a);
    EXPECT(ov, n + 1, -ECANCELED, 0, KEY_IN_CB);
    char b[8];
    CHECK_EQ(recv(icb.s2[0], b, sizeof b, MSG_DONTWAIT), 3);
    CHECK_OK(close(icb.s2[0]));
    CHECK_OK(close(icb.s2[1]));
}

/* close(2) right after a submit returned 0, and the number taken at once by
 * a new socket with data ready: the accepted request belongs to the old file
 * (iocomp.h: the close does not end it), so it stays pending and never takes
 * the new socket's data; unbind cancels it. */
static void close_right_after_submit(iocomp_overlapped *ov, int round) {
    char buf[16];
    int s1[2], s2[2];
    test_socketpair(s1);
    int a = s1[0];
    uintptr_t key = 0xAF7E0000u | (unsigned)round;
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a, key));
    uint64_t n = done(ov);
    submit_recv(ov, a, buf, sizeof buf);
    CHECK_OK(close(a));
    pair_at(a, s2);
    CHECK_EQ(send(s2[1], "NEW", 3, 0), 3);
    test_sleep_us(round < 4 ? 20000 : 2000);
    struct test_io *t = test_io_of(ov);
    CHECK_MSG(done(ov) == n,
              "round %d: a recv accepted on fd %d completed after the host closed that "
              "descriptor and reused its number: status %d (%s), bytes %u%s",
              round, a, (int)atomic_load(&t->status), test_errname(atomic_load(&t->status)),
              (unsigned)atomic_load(&t->bytes),
              atomic_load(&t->bytes) == 3 ? " (the NEW socket's data)" : "");
    CHECK_OK(iocomp_unbind(eng, a));
    EXPECT(ov, n + 1, -ECANCELED, 0, key);
    char b[8];
    CHECK_EQ(recv(s2[0], b, sizeof b, MSG_DONTWAIT), 3); /* the new socket's data is intact */
    CHECK_OK(close(s2[0]));
    CHECK_OK(close(s2[1]));
    CHECK_OK(close(s1[1]));
}

int main(void) {
    test_begin("io_fd_closed", 0);
    eng = test_io_engine_n(2, cb, NULL);
    printf("io_fd_closed: backend %s\n", iocomp_backend_name(eng));
    iocomp_overlapped *ov = test_io_ov(eng, 1), *ov2 = test_io_ov(eng, 2);

    for (int how = BY_CANCEL_FD; how <= BY_PORT_CLOSE; how++)
        closed_pending(ov, (enum how)how);
    close_fd_pending(ov);
    int rounds = (int)test_scaled_min(400, 40);
    for (int r = 0; r < rounds; r++)
        close_right_after_submit(ov, r);
    for (int r = 0; r < rounds; r++)
        close_fd_in_callback(ov, r);
    for (int r = 0; r < rounds; r++)
        reuse(ov, ov2, r);

    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    iocomp_overlapped_free(ov);
    iocomp_overlapped_free(ov2);
    test_end();
}
