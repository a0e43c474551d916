/*
 * io_short_transfer: a transfer that returns fewer bytes than asked but
 * leaves data queued does not lose read readiness (audit issue 13, defect
 * 8). epoll's "short transfer" shortcut (a short read drained the receive
 * queue, so mark the side not ready without the -EAGAIN call) must apply
 * only where that is true: the next read would otherwise wait for an edge
 * that never comes, with the bytes queued.
 *
 * Each case: the receiving descriptor is registered first (a 1-byte read
 * completes), the bytes are queued and their edge has been seen (20 ms),
 * then the short operation completes with what it should, and a plain read
 * of 16 bytes must then complete within 3 s with the rest:
 *   - recv(16, MSG_PEEK) of 3 queued bytes: 3 (nothing consumed); then
 *     recv(16): the same 3 bytes. On an AF_UNIX stream pair and on TCP
 *     loopback;
 *   - recvmsg(MSG_PEEK), the same, on both;
 *   - TCP urgent data ("ab", then "X" with MSG_OOB, then "cd"): recv(16)
 *     stops at the mark with "ab"; the next recv(16) gets "cd";
 *   - AF_UNIX stream, "ab" sent with a descriptor (SCM_RIGHTS), then "cd":
 *     recv(16) returns "ab" alone (the kernel ends a read after a message
 *     that carried descriptors); the next recv(16) gets "cd";
 *   - a pipe in packet mode (pipe2 O_DIRECT), two writes "ab", "cd":
 *     read(16) returns one packet; the next read(16) the other.
 * Every request completes exactly once (test.h's armed flag).
 */
#include "test.h"

#include <netinet/tcp.h>
#include <sys/uio.h>

static iocomp_engine *eng;
static iocomp_overlapped *ov;
static atomic_uint_fast64_t calls, accepted;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *o, uintptr_t key) {
    (void)ctx;
    test_io_fire(o, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

enum op { OP_RECV, OP_RECVMSG, OP_READ };

/* Submits one read-side operation of 16 bytes and waits up to wait_ms for
 * it: it must complete with status 0 and exactly the bytes of data. */
static void expect_read(const char *what, int fd, enum op op, int flags, const char *data,
                        unsigned wait_ms) {
    char buf[16];
    memset(buf, 0, sizeof buf);
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    uint64_t n = atomic_load(&test_io_of(ov)->completions);
    test_io_arm(ov);
    int rc;
    switch (op) {
    case OP_RECV: rc = iocomp_recv(eng, fd, buf, sizeof buf, flags, ov); break;
    case OP_RECVMSG: rc = iocomp_recvmsg(eng, fd, &m, flags, ov); break;
    default: rc = iocomp_read(eng, fd, buf, sizeof buf, -1, ov); break;
    }
    CHECK_MSG(test_io_settle(ov, rc) == 0, "%s: submit: %d (%s)", what, rc, test_errname(rc));
    atomic_fetch_add(&accepted, 1);
    struct test_io *t = test_io_of(ov);
    size_t want = strlen(data);
    if (!TEST_WAIT_UNTIL(atomic_load(&t->completions) >= n + 1, wait_ms)) {
        char peek[16];
        int q = op == OP_READ ? -1 /* a pipe cannot be peeked */
                              : (int)recv(fd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
        CHECK_MSG(false,
                  "%s: the read did not complete within %u ms with %zu bytes to read (a peek "
                  "sees %d queued): read readiness was lost",
                  what, wait_ms, want, q);
    }
    CHECK_MSG(atomic_load(&t->status) == 0 && atomic_load(&t->bytes) == want,
              "%s: status %d (%s), bytes %u; want 0, %zu", what, (int)atomic_load(&t->status),
              test_errname(atomic_load(&t->status)), (unsigned)atomic_load(&t->bytes), want);
    CHECK_MSG(memcmp(buf, data, want) == 0, "%s: got \"%.16s\", want \"%s\"", what, buf, data);
}

/* Registers fd with the backend: a 1-byte read completes (and consumes
 * the registration's own edge, which would otherwise hide a lost one). */
static void warm(const char *what, int fd, int peer, enum op op) {
    CHECK_EQ(write(peer, "w", 1), 1);
    expect_read(what, fd, op == OP_READ ? OP_READ : OP_RECV, 0, "w", 5000);
}

static void tcp_pair(int sv[2]) {
    struct sockaddr_in la;
    int l = test_tcp_socket(true, &la);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    CHECK_OK(connect(c, (struct sockaddr *)&la, sizeof la));
    int s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    CHECK(s >= 0);
    CHECK_OK(close(l));
    int one = 1;
    CHECK_OK(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    sv[0] = s;
    sv[1] = c;
}

static void peek(bool tcp, enum op op) {
    char what[64];
    snprintf(what, sizeof what, "%s, %s(MSG_PEEK)", tcp ? "TCP" : "AF_UNIX", op == OP_RECV ? "recv" : "recvmsg");
    int sv[2];
    if (tcp)
        tcp_pair(sv);
    else
        test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 0x9EE4));
    warm(what, sv[0], sv[1], OP_RECV);
    CHECK_EQ(send(sv[1], "abc", 3, MSG_NOSIGNAL), 3);
    test_sleep_us(20000);
    expect_read(what, sv[0], op, MSG_PEEK, "abc", 5000);
    char w2[96];
    snprintf(w2, sizeof w2, "%s, then recv", what);
    expect_read(w2, sv[0], OP_RECV, 0, "abc", 3000);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
}

static void tcp_urgent(void) {
    const char *what = "TCP, recv at the urgent mark";
    int sv[2];
    tcp_pair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 0x0B));
    warm(what, sv[0], sv[1], OP_RECV);
    CHECK_EQ(send(sv[1], "ab", 2, 0), 2);
    CHECK_EQ(send(sv[1], "X", 1, MSG_OOB), 1);
    CHECK_EQ(send(sv[1], "cd", 2, 0), 2);
    test_sleep_us(20000);
    expect_read(what, sv[0], OP_RECV, 0, "ab", 5000);
    expect_read("TCP, recv after the urgent mark", sv[0], OP_RECV, 0, "cd", 3000);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
}

static void unix_rights(void) {
    const char *what = "AF_UNIX, recv of a message with SCM_RIGHTS";
    int sv[2];
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 0x5C));
    warm(what, sv[0], sv[1], OP_RECV);
    int passed = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(passed >= 0);
    char data[2] = {'a', 'b'};
    struct iovec iov = {data, sizeof data};
    union {
        struct cmsghdr h;
        char b[CMSG_SPACE(sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl.b;
    m.msg_controllen = sizeof ctl.b;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passed, sizeof passed);
    CHECK_EQ(sendmsg(sv[1], &m, MSG_NOSIGNAL), 2);
    CHECK_OK(close(passed));
    CHECK_EQ(send(sv[1], "cd", 2, MSG_NOSIGNAL), 2);
    test_sleep_us(20000);
    expect_read(what, sv[0], OP_RECV, 0, "ab", 5000);
    expect_read("AF_UNIX, recv after a message with SCM_RIGHTS", sv[0], OP_RECV, 0, "cd", 3000);
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
}

static void packet_pipe(void) {
    const char *what = "pipe in packet mode (O_DIRECT), read";
    int p[2];
    if (pipe2(p, O_DIRECT | O_CLOEXEC) != 0) {
        printf("io_short_transfer: no packet-mode pipes (%s): case skipped\n", strerror(errno));
        return;
    }
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, p[0], 0x91));
    warm(what, p[0], p[1], OP_READ);
    CHECK_EQ(write(p[1], "ab", 2), 2);
    CHECK_EQ(write(p[1], "cd", 2), 2);
    test_sleep_us(20000);
    expect_read(what, p[0], OP_READ, 0, "ab", 5000);
    expect_read("pipe in packet mode, the next read", p[0], OP_READ, 0, "cd", 3000);
    CHECK_OK(iocomp_close_fd(eng, p[0]));
    CHECK_OK(close(p[1]));
}

int main(void) {
    test_begin("io_short_transfer", 0);
    eng = test_io_engine_n(2, cb, NULL);
    printf("io_short_transfer: backend %s\n", iocomp_backend_name(eng));
    ov = test_io_ov(eng, 1);

    peek(false, OP_RECV);
    peek(true, OP_RECV);
    peek(false, OP_RECVMSG);
    peek(true, OP_RECVMSG);
    tcp_urgent();
    unix_rights();
    packet_pipe();

    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(ov);
    test_end();
}
