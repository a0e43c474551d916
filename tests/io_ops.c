/*
 * io_ops: every asynchronous operation succeeds and reports the right
 * result (issue #3 "Tests": every operation, success; short reads and writes
 * reported as such; BRIEF §4 invariant 1 for normal completions, 9 by the
 * per-backend registration).
 *
 * One engine, two workers. Each request gets exactly one callback (the
 * test_io record in its extension), with the binding's key (or the timer's),
 * status 0 and the exact bytes:
 *   - write / read at an offset on a temporary file, a read across EOF is
 *     short (the bytes that exist), a read at EOF gives 0; the data match;
 *   - a write that RLIMIT_FSIZE cuts short reports the bytes written, one at
 *     the limit reports -EFBIG (a kernel error as status);
 *   - writev / readv with differently split iovecs at an offset;
 *   - fsync, fdatasync: status 0, bytes 0;
 *   - recv / send on a socketpair: a recv issued before the data completes
 *     when it comes, a recv larger than what is there is short;
 *     recvmsg / sendmsg with two iovecs each;
 *   - accept + connect over TCP loopback: bytes of accept is the new
 *     descriptor, whose peer is the connecting socket, and addr is filled;
 *   - poll: POLLIN pending until a byte arrives (bytes = revents with
 *     POLLIN), POLLOUT ready at once;
 *   - timers, relative and absolute (CLOCK_MONOTONIC): status 0, never
 *     before the time asked; an absolute time in the past and 0 ns complete
 *     at once;
 *   - skip on success: with data there, recv and send return IOCOMP_INLINE
 *     with the result in iocomp_overlapped_result() and no callback ever
 *     follows; without data, recv returns 0 and completes later through the
 *     callback. stats.io_inline counts the inline ones.
 * Nothing runs twice: the total of callbacks equals the accepted requests.
 */
#include "test.h"

#include <poll.h>
#include <sys/stat.h>

#define KEY_FILE 0xF11E0000u
#define KEY_SOCK 0x50C0000u
#define KEY_PEER 0x9EE90000u
#define KEY_LISTEN 0x1157u
#define KEY_CLIENT 0xC11Eu
#define KEY_TIMER 0x71AEu
#define KEY_SKIP 0x5419u

static iocomp_engine *eng;
static atomic_uint_fast64_t calls, accepted;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

/* Submits (rc must be 0), waits for the one completion, checks status and
 * key, returns bytes. RUN arms first (the comma sequences it before call). */
static uint64_t run_base;
static void run_pre(iocomp_overlapped *ov) {
    run_base = atomic_load(&test_io_of(ov)->completions);
    test_io_arm(ov);
}
static uint32_t run_wait(iocomp_overlapped *ov, int rc, int32_t want_status, uintptr_t want_key,
                         int line) {
    CHECK_MSG(test_io_settle(ov, rc) == 0, "line %d: submit returned %d", line, rc);
    atomic_fetch_add(&accepted, 1);
    struct test_io *t = test_io_wait(ov, run_base + 1, 5000);
    CHECK_MSG(atomic_load(&t->status) == want_status, "line %d: status %d, want %d", line,
              (int)atomic_load(&t->status), want_status);
    CHECK_MSG(atomic_load(&t->key) == want_key, "line %d: key 0x%lx, want 0x%lx", line,
              (unsigned long)atomic_load(&t->key), (unsigned long)want_key);
    return (uint32_t)atomic_load(&t->bytes);
}
#define RUN(ov, call, want_status, want_key)                                                  \
    (run_pre(ov), run_wait((ov), (call), (want_status), (uintptr_t)(want_key), __LINE__))

#define SUBMIT(ov, call)                                                                      \
    do {                                                                                      \
        test_io_arm(ov);                                                                      \
        CHECK_EQ(test_io_settle((ov), (call)), 0);                                            \
        atomic_fetch_add(&accepted, 1);                                                       \
    } while (0)

static uint64_t completions_of(iocomp_overlapped *ov) {
    return atomic_load(&test_io_of(ov)->completions);
}

static void fill(unsigned char *b, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static int temp_file(void) {
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/iocomp-io_ops-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkostemp(path, O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_OK(unlink(path));
    return fd;
}

static void file_ops(iocomp_overlapped *ov) {
    int fd = temp_file();
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, fd, KEY_FILE));

    enum { A = 6000, B = 100, OFF_B = 8192 };
    static unsigned char wa[A], wb[B], rbuf[16384];
    fill(wa, A, 1);
    fill(wb, B, 2);
    CHECK_EQ(RUN(ov, iocomp_write(eng, fd, wa, A, 0, ov), 0, KEY_FILE), A);
    CHECK_EQ(RUN(ov, iocomp_write(eng, fd, wb, B, OFF_B, ov), 0, KEY_FILE), B);
    struct stat st;
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, OFF_B + B);

    /* Whole read of the first block. */
    memset(rbuf, 0, sizeof rbuf);
    CHECK_EQ(RUN(ov, iocomp_read(eng, fd, rbuf, A, 0, ov), 0, KEY_FILE), A);
    CHECK(memcmp(rbuf, wa, A) == 0);
    /* Across EOF: short, exactly the bytes that exist. */
    memset(rbuf, 0xEE, sizeof rbuf);
    CHECK_EQ(RUN(ov, iocomp_read(eng, fd, rbuf, 4096, OFF_B, ov), 0, KEY_FILE), B);
    CHECK(memcmp(rbuf, wb, B) == 0);
    CHECK_EQ(rbuf[B], 0xEE); /* nothing written past what was read */
    /* The hole between the two writes reads as zeros. */
    CHECK_EQ(RUN(ov, iocomp_read(eng, fd, rbuf, 100, A + 10, ov), 0, KEY_FILE), 100);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(rbuf[i], 0);
    /* At and past EOF: 0 bytes, status 0. */
    CHECK_EQ(RUN(ov, iocomp_read(eng, fd, rbuf, 4096, OFF_B + B, ov), 0, KEY_FILE), 0);
    CHECK_EQ(RUN(ov, iocomp_read(eng, fd, rbuf, 4096, 1 << 20, ov), 0, KEY_FILE), 0);

    /* writev / readv, split differently. */
    static unsigned char v1[10], v2[3000], v3[1], r1[1500], r2[2000];
    fill(v1, sizeof v1, 3);
    fill(v2, sizeof v2, 4);
    fill(v3, sizeof v3, 5);
    struct iovec wv[3] = {{v1, sizeof v1}, {v2, sizeof v2}, {v3, sizeof v3}};
    CHECK_EQ(RUN(ov, iocomp_writev(eng, fd, wv, 3, 20000, ov), 0, KEY_FILE), 3011);
    struct iovec rv[2] = {{r1, sizeof r1}, {r2, sizeof r2}};
    CHECK_EQ(RUN(ov, iocomp_readv(eng, fd, rv, 2, 20000, ov), 0, KEY_FILE), 3011); /* short */
    unsigned char all[3011], got[3500];
    memcpy(all, v1, 10);
    memcpy(all + 10, v2, 3000);
    memcpy(all + 3010, v3, 1);
    memcpy(got, r1, 1500);
    memcpy(got + 1500, r2, 2000);
    CHECK(memcmp(all, got, 3011) == 0);

    CHECK_EQ(RUN(ov, iocomp_fsync(eng, fd, 0, ov), 0, KEY_FILE), 0);
    CHECK_EQ(RUN(ov, iocomp_fsync(eng, fd, IOCOMP_FSYNC_DATASYNC, ov), 0, KEY_FILE), 0);

    /* A short write: RLIMIT_FSIZE cuts it at the limit (process-wide, put
     * back right after). A write at the limit is -EFBIG (SIGXFSZ ignored). */
    struct sigaction ign, old_sa;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    CHECK_OK(sigaction(SIGXFSZ, &ign, &old_sa));
    struct rlimit old_rl, rl;
    CHECK_OK(getrlimit(RLIMIT_FSIZE, &old_rl));
    rl = old_rl;
    rl.rlim_cur = 65536;
    CHECK_OK(setrlimit(RLIMIT_FSIZE, &rl));
    uint32_t short_w = RUN(ov, iocomp_write(eng, fd, wa, 100, 65536 - 40, ov), 0, KEY_FILE);
    int32_t efbig_status;
    {
        uint64_t n = completions_of(ov);
        SUBMIT(ov, iocomp_write(eng, fd, wa, 100, 65536, ov));
        struct test_io *t = test_io_wait(ov, n + 1, 5000);
        efbig_status = (int32_t)atomic_load(&t->status);
        CHECK_EQ(atomic_load(&t->bytes), 0);
    }
    CHECK_OK(setrlimit(RLIMIT_FSIZE, &old_rl));
    CHECK_OK(sigaction(SIGXFSZ, &old_sa, NULL));
    CHECK_EQ(short_w, 40);
    CHECK_EQ(efbig_status, -EFBIG);
    CHECK_OK(fstat(fd, &st));
    CHECK_EQ(st.st_size, 65536);

    CHECK_OK(iocomp_unbind(eng, fd));
    CHECK_OK(close(fd));
}

static void socket_ops(iocomp_overlapped *ov, iocomp_overlapped *ov2) {
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], KEY_SOCK));
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[1], KEY_PEER));
    unsigned char out[256], in[256];
    fill(out, sizeof out, 9);

    /* A recv issued before the data: still pending 20 ms later; then a send
     * from the peer completes both. */
    uint64_t n = completions_of(ov2);
    SUBMIT(ov2, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov2));
    test_sleep_us(20000);
    CHECK_EQ(completions_of(ov2), n);
    CHECK_EQ(RUN(ov, iocomp_send(eng, sv[1], out, 100, 0, ov), 0, KEY_PEER), 100);
    struct test_io *t = test_io_wait(ov2, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 100); /* short: 256 asked, 100 there */
    CHECK_EQU(atomic_load(&t->key), KEY_SOCK);
    CHECK(memcmp(in, out, 100) == 0);

    /* Data first, then the recv: completes with it. */
    CHECK_EQ(send(sv[1], out + 100, 50, 0), 50);
    memset(in, 0, sizeof in);
    CHECK_EQ(RUN(ov, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov), 0, KEY_SOCK), 50);
    CHECK(memcmp(in, out + 100, 50) == 0);

    /* sendmsg / recvmsg, two iovecs each, split differently. */
    unsigned char a[7], b[60], c[20], d[100];
    fill(a, sizeof a, 11);
    fill(b, sizeof b, 12);
    struct iovec wv[2] = {{a, sizeof a}, {b, sizeof b}};
    struct msghdr wm;
    memset(&wm, 0, sizeof wm);
    wm.msg_iov = wv;
    wm.msg_iovlen = 2;
    CHECK_EQ(RUN(ov, iocomp_sendmsg(eng, sv[1], &wm, 0, ov), 0, KEY_PEER), 67);
    struct iovec rv[2] = {{c, sizeof c}, {d, sizeof d}};
    struct msghdr rm;
    memset(&rm, 0, sizeof rm);
    rm.msg_iov = rv;
    rm.msg_iovlen = 2;
    CHECK_EQ(RUN(ov, iocomp_recvmsg(eng, sv[0], &rm, 0, ov), 0, KEY_SOCK), 67);
    unsigned char want[67], have[120];
    memcpy(want, a, 7);
    memcpy(want + 7, b, 60);
    memcpy(have, c, 20);
    memcpy(have + 20, d, 100);
    CHECK(memcmp(want, have, 67) == 0);

    /* poll: POLLOUT is ready at once; POLLIN waits for a byte. */
    uint32_t rev = RUN(ov, iocomp_poll(eng, sv[0], POLLOUT, ov), 0, KEY_SOCK);
    CHECK(rev & POLLOUT);
    CHECK(!(rev & ~(uint32_t)(POLLOUT | POLLWRNORM | POLLWRBAND)));
    n = completions_of(ov2);
    SUBMIT(ov2, iocomp_poll(eng, sv[0], POLLIN, ov2));
    test_sleep_us(20000);
    CHECK_EQ(completions_of(ov2), n);
    CHECK_EQ(send(sv[1], "x", 1, 0), 1);
    t = test_io_wait(ov2, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK(atomic_load(&t->bytes) & POLLIN);
    CHECK_EQU(atomic_load(&t->key), KEY_SOCK);
    CHECK_EQ(recv(sv[0], in, sizeof in, MSG_DONTWAIT), 1); /* poll consumed nothing */

    /* The peer closes: a pending recv completes with 0 bytes (EOF). */
    n = completions_of(ov2);
    SUBMIT(ov2, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov2));
    test_sleep_us(5000);
    CHECK_OK(iocomp_unbind(eng, sv[1]));
    CHECK_OK(close(sv[1]));
    t = test_io_wait(ov2, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 0);

    CHECK_OK(iocomp_unbind(eng, sv[0]));
    CHECK_OK(close(sv[0]));
}

static void tcp_ops(iocomp_overlapped *ov, iocomp_overlapped *ov2) {
    struct sockaddr_in laddr;
    int lfd = test_tcp_socket(true, &laddr);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, lfd, KEY_LISTEN));
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(cfd >= 0);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, cfd, KEY_CLIENT));

    /* accept first (pending), then connect. */
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    memset(&peer, 0, sizeof peer);
    uint64_t n = completions_of(ov2);
    SUBMIT(ov2, iocomp_accept(eng, lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC, ov2));
    test_sleep_us(10000);
    CHECK_EQ(completions_of(ov2), n);
    CHECK_EQ(RUN(ov, iocomp_connect(eng, cfd, (struct sockaddr *)&laddr, sizeof laddr, ov), 0,
                 KEY_CLIENT),
             0);
    struct test_io *t = test_io_wait(ov2, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQU(atomic_load(&t->key), KEY_LISTEN);
    int afd = (int)atomic_load(&t->bytes);
    CHECK(afd > 2);
    CHECK(fcntl(afd, F_GETFD) >= 0);
    CHECK(fcntl(afd, F_GETFD) & FD_CLOEXEC);
    /* The accepted socket's peer is the client, and addr says so too. */
    struct sockaddr_in cname, apeer;
    socklen_t l = sizeof cname;
    CHECK_OK(getsockname(cfd, (struct sockaddr *)&cname, &l));
    l = sizeof apeer;
    CHECK_OK(getpeername(afd, (struct sockaddr *)&apeer, &l));
    CHECK_EQ(apeer.sin_port, cname.sin_port);
    CHECK_EQ(plen, sizeof peer);
    CHECK_EQ(peer.sin_family, AF_INET);
    CHECK_EQ(peer.sin_port, cname.sin_port);
    CHECK_EQ(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    /* Data flows over it. */
    unsigned char buf[8];
    CHECK_EQ(RUN(ov, iocomp_send(eng, cfd, "tcp!", 4, 0, ov), 0, KEY_CLIENT), 4);
    CHECK_EQ(recv(afd, buf, sizeof buf, 0), 4);
    CHECK(memcmp(buf, "tcp!", 4) == 0);
    CHECK_OK(close(afd));

    /* connect first to a listener with a free backlog slot, accept after,
     * without addr. */
    int c2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c2 >= 0);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, c2, KEY_CLIENT + 1));
    CHECK_EQ(RUN(ov, iocomp_connect(eng, c2, (struct sockaddr *)&laddr, sizeof laddr, ov), 0,
                 KEY_CLIENT + 1),
             0);
    int a2 = (int)RUN(ov2, iocomp_accept(eng, lfd, NULL, NULL, 0, ov2), 0, KEY_LISTEN);
    CHECK(a2 > 2);
    l = sizeof cname;
    CHECK_OK(getsockname(c2, (struct sockaddr *)&cname, &l));
    l = sizeof apeer;
    CHECK_OK(getpeername(a2, (struct sockaddr *)&apeer, &l));
    CHECK_EQ(apeer.sin_port, cname.sin_port);
    CHECK_OK(close(a2));

    CHECK_OK(iocomp_close_fd(eng, c2));
    CHECK_OK(iocomp_close_fd(eng, cfd));
    CHECK_OK(iocomp_close_fd(eng, lfd));
}

static void timer_ops(iocomp_overlapped *ov) {
    /* Relative. */
    for (int i = 0; i < 3; i++) {
        uint64_t ns = 20000000u + (uint64_t)i * 5000000u;
        uint64_t n = completions_of(ov);
        uint64_t t0 = test_now_ns();
        SUBMIT(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_TIMER + i, ns, 0, ov));
        struct test_io *t = test_io_wait(ov, n + 1, 5000);
        CHECK_EQ(atomic_load(&t->status), 0);
        CHECK_EQ(atomic_load(&t->bytes), 0);
        CHECK_EQU(atomic_load(&t->key), KEY_TIMER + i);
        uint64_t at = atomic_load(&t->done_ns);
        CHECK_MSG(at >= t0 + ns, "relative timer of %" PRIu64 " ns fired after %" PRIu64 " ns", ns,
                  at - t0);
    }
    /* Absolute, CLOCK_MONOTONIC. */
    for (int i = 0; i < 3; i++) {
        uint64_t deadline = test_now_ns() + 30000000u + (uint64_t)i * 3000000u;
        uint64_t n = completions_of(ov);
        SUBMIT(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, KEY_TIMER, deadline, IOCOMP_TIMER_ABS, ov));
        struct test_io *t = test_io_wait(ov, n + 1, 5000);
        CHECK_EQ(atomic_load(&t->status), 0);
        uint64_t at = atomic_load(&t->done_ns);
        CHECK_MSG(at >= deadline, "absolute timer fired %" PRIu64 " ns early", deadline - at);
    }
    /* Past absolute time and 0 ns: at once (well under a second). */
    uint64_t t0 = test_now_ns();
    CHECK_EQ(RUN(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 1, t0 - 1000000u, IOCOMP_TIMER_ABS, ov), 0,
                 1),
             0);
    CHECK_EQ(RUN(ov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 2, 0, 0, ov), 0, 2), 0);
    CHECK(test_now_ns() - t0 < 1000000000u);
    /* A timer on a port of its own, with its own key. */
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(eng, &p));
    CHECK_EQ(RUN(ov, iocomp_timer(eng, p, 0xABCDEFu, 1000000u, 0, ov), 0, 0xABCDEFu), 0);
    CHECK_OK(iocomp_port_close(eng, p));
}

static void skip_ops(iocomp_overlapped *ov) {
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], KEY_SKIP));
    CHECK_EQ(iocomp_set_skip_on_success(eng, sv[1]), -EBADF); /* not bound */
    CHECK_OK(iocomp_set_skip_on_success(eng, sv[0]));
    CHECK_OK(iocomp_set_skip_on_success(eng, sv[0])); /* again: still set */
    iocomp_stats s0 = test_stats(eng);
    unsigned char in[64];

    /* Data there: inline, the result in the header, no callback. */
    CHECK_EQ(send(sv[1], "inline!", 7, 0), 7);
    uint64_t n = completions_of(ov);
    uint64_t c0 = atomic_load(&calls);
    test_io_arm(ov);
    CHECK_EQ(test_io_settle(ov, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov)), IOCOMP_INLINE);
    uint32_t bytes = 0xFFFFFFFFu;
    CHECK_EQ(iocomp_overlapped_result(ov, &bytes), 0);
    CHECK_EQ(bytes, 7);
    CHECK(memcmp(in, "inline!", 7) == 0);
    /* A send that fits the buffer: inline too. */
    test_io_arm(ov);
    CHECK_EQ(test_io_settle(ov, iocomp_send(eng, sv[0], "back", 4, 0, ov)), IOCOMP_INLINE);
    CHECK_EQ(iocomp_overlapped_result(ov, &bytes), 0);
    CHECK_EQ(bytes, 4);
    CHECK_EQ(recv(sv[1], in, sizeof in, MSG_DONTWAIT), 4);
    CHECK(memcmp(in, "back", 4) == 0);
    /* POLLOUT is ready: inline, bytes = revents. */
    test_io_arm(ov);
    CHECK_EQ(test_io_settle(ov, iocomp_poll(eng, sv[0], POLLOUT, ov)), IOCOMP_INLINE);
    CHECK_EQ(iocomp_overlapped_result(ov, &bytes), 0);
    CHECK(bytes & POLLOUT);
    /* No callback follows, now or later. */
    test_sleep_us(50000);
    CHECK_EQ(completions_of(ov), n);
    CHECK_EQ(atomic_load(&calls), c0);
    iocomp_stats s1 = test_stats(eng);
    CHECK_EQ(s1.io_inline - s0.io_inline, 3);
    CHECK_EQ(s1.io_submitted - s0.io_submitted, 0);

    /* No data: accepted (0), completes later through the callback. */
    SUBMIT(ov, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov));
    test_sleep_us(20000);
    CHECK_EQ(completions_of(ov), n);
    CHECK_EQ(send(sv[1], "later", 5, 0), 5);
    struct test_io *t = test_io_wait(ov, n + 1, 5000);
    CHECK_EQ(atomic_load(&t->status), 0);
    CHECK_EQ(atomic_load(&t->bytes), 5);
    CHECK_EQU(atomic_load(&t->key), KEY_SKIP);
    CHECK(memcmp(in, "later", 5) == 0);
    iocomp_stats s2 = test_stats(eng);
    CHECK_EQ(s2.io_submitted - s1.io_submitted, 1);
    CHECK_EQ(s2.io_inline, s1.io_inline);

    /* The option ends with the binding: rebound, a recv with data there goes
     * through the callback again. */
    CHECK_OK(iocomp_unbind(eng, sv[0]));
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], KEY_SKIP + 1));
    CHECK_EQ(send(sv[1], "cb", 2, 0), 2);
    CHECK_EQ(RUN(ov, iocomp_recv(eng, sv[0], in, sizeof in, 0, ov), 0, KEY_SKIP + 1), 2);

    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
}

int main(void) {
    test_begin("io_ops", 0);
    eng = test_io_engine_n(2, cb, NULL);
    printf("io_ops: backend %s\n", iocomp_backend_name(eng));
    iocomp_overlapped *ov = test_io_ov(eng, 1), *ov2 = test_io_ov(eng, 2);

    file_ops(ov);
    socket_ops(ov, ov2);
    tcp_ops(ov, ov2);
    timer_ops(ov);
    skip_ops(ov);

    /* Exactly one callback per accepted request, and nothing late. */
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    iocomp_stats s = test_stats(eng);
    CHECK_EQ(s.io_submitted, atomic_load(&accepted));
    CHECK_EQ(s.io_cq_dropped, 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    iocomp_overlapped_free(ov);
    iocomp_overlapped_free(ov2);
    test_end();
}
