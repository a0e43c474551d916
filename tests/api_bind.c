/*
 * api_bind: iocomp_bind / iocomp_unbind. A descriptor binds once (-EEXIST a
 * second time, to this or another port), bad descriptors are -EBADF (-1,
 * never opened, already closed), a closed or stale port is -EBADF, unbinding
 * what is not bound is -ENOENT, unbind then bind works, port
 * IOCOMP_DEFAULT_PORT is the default port, closing a port removes its
 * bindings, and iocomp never closes the caller's descriptor.
 */
#include "test.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static struct test_counter ctr;

static bool fd_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* A descriptor number that is not open now. */
static int closed_fd(void) {
    int fd = dup(0);
    CHECK(fd >= 0);
    CHECK_OK(close(fd));
    return fd;
}

int main(void) {
    test_begin("api_bind", 0);
    iocomp_engine *e = test_engine(1, 2, test_counter_cb, &ctr);

    int pfd[2], sv[2];
    CHECK_OK(pipe(pfd));
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    int efd = eventfd(0, 0);
    CHECK(efd >= 0);
    FILE *tf = tmpfile();
    CHECK(tf != NULL);
    int rfd = fileno(tf); /* a regular file */

    iocomp_port_t p, q;
    CHECK_OK(iocomp_port_create(e, &p));
    CHECK_OK(iocomp_port_create(e, &q));

    /* Every kind of descriptor binds. */
    CHECK_OK(iocomp_bind(e, p, pfd[0], 10));
    CHECK_OK(iocomp_bind(e, p, pfd[1], 11));
    CHECK_OK(iocomp_bind(e, q, sv[0], 12));
    CHECK_OK(iocomp_bind(e, q, efd, 13));
    CHECK_OK(iocomp_bind(e, p, rfd, 14));

    /* Twice, to the same or another port, with any key: -EEXIST. */
    CHECK_EQ(iocomp_bind(e, p, pfd[0], 10), -EEXIST);
    CHECK_EQ(iocomp_bind(e, p, pfd[0], 99), -EEXIST);
    CHECK_EQ(iocomp_bind(e, q, pfd[0], 10), -EEXIST);
    CHECK_EQ(iocomp_bind(e, IOCOMP_DEFAULT_PORT, pfd[0], 10), -EEXIST);
    CHECK_EQ(iocomp_bind(e, p, rfd, 14), -EEXIST);

    /* Bad descriptors: nothing registered. */
    int cfd = closed_fd();
    CHECK_EQ(iocomp_bind(e, p, -1, 1), -EBADF);
    CHECK_EQ(iocomp_bind(e, p, -12345, 1), -EBADF);
    CHECK_EQ(iocomp_bind(e, p, 1 << 28, 1), -EBADF); /* never opened */
    CHECK_EQ(iocomp_bind(e, p, INT_MAX, 1), -EBADF);
    CHECK_EQ(iocomp_bind(e, p, cfd, 1), -EBADF);       /* already closed */
    CHECK_EQ(iocomp_unbind(e, cfd), -ENOENT);
    CHECK_EQ(iocomp_unbind(e, -1), -ENOENT);

    /* Unknown / stale / closed port: -EBADF, nothing registered. */
    int sfd = sv[1];
    CHECK_EQ(iocomp_bind(e, (iocomp_port_t)0xdeadbeef12345ull, sfd, 1), -EBADF);
    iocomp_port_t r;
    CHECK_OK(iocomp_port_create(e, &r));
    CHECK_OK(iocomp_port_close(e, r));
    CHECK_EQ(iocomp_bind(e, r, sfd, 1), -EBADF);
    CHECK_EQ(iocomp_unbind(e, sfd), -ENOENT);

    /* Unbind, unbind again, bind again (elsewhere). */
    CHECK_OK(iocomp_unbind(e, pfd[0]));
    CHECK_EQ(iocomp_unbind(e, pfd[0]), -ENOENT);
    CHECK_OK(iocomp_bind(e, q, pfd[0], 20));
    CHECK_EQ(iocomp_bind(e, p, pfd[0], 20), -EEXIST);
    CHECK_OK(iocomp_unbind(e, pfd[0]));
    CHECK_OK(iocomp_bind(e, p, pfd[0], 21));

    /* The default port (what a managed runtime passes as a NULL port). */
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sfd, 30));
    CHECK_EQ(iocomp_bind(e, p, sfd, 30), -EEXIST);
    CHECK_EQ(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sfd, 30), -EEXIST);
    CHECK_OK(iocomp_unbind(e, sfd));
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, sfd, 31));

    /* Closing a port removes its bindings (p had pfd[0], pfd[1], rfd). */
    CHECK_OK(iocomp_port_close(e, p));
    CHECK_EQ(iocomp_unbind(e, pfd[1]), -ENOENT);
    CHECK_EQ(iocomp_unbind(e, rfd), -ENOENT);
    CHECK_OK(iocomp_bind(e, q, pfd[1], 40));
    CHECK_OK(iocomp_bind(e, q, rfd, 41));
    CHECK_OK(iocomp_bind(e, q, pfd[0], 42));

    /* Many descriptors on one port, then many bind/unbind cycles. */
    enum { MANY = 200 };
    int many[MANY];
    for (int i = 0; i < MANY; i++) {
        many[i] = eventfd(0, 0);
        CHECK(many[i] >= 0);
        CHECK_OK(iocomp_bind(e, q, many[i], (uintptr_t)i));
    }
    for (int i = 0; i < MANY; i += 2)
        CHECK_OK(iocomp_unbind(e, many[i]));
    for (int i = 0; i < MANY; i++)
        CHECK_EQ(iocomp_bind(e, IOCOMP_DEFAULT_PORT, many[i], 0), i % 2 ? -EEXIST : 0);
    for (int i = 0; i < 20000; i++) {
        CHECK_OK(iocomp_unbind(e, many[0]));
        CHECK_OK(iocomp_bind(e, i % 2 ? q : IOCOMP_DEFAULT_PORT, many[0], (uintptr_t)i));
    }

    CHECK_EQ(iocomp_bind(NULL, q, pfd[0], 0), -EINVAL);
    CHECK_EQ(iocomp_unbind(NULL, pfd[0]), -EINVAL);

    /* No completion ever came from binding. */
    CHECK_EQ(atomic_load(&ctr.calls), 0);
    CHECK_OK(iocomp_engine_destroy(e));

    /* iocomp never closed a descriptor of ours; bindings are gone with the
     * engine, the descriptors are still ours to close. */
    int ours[] = {pfd[0], pfd[1], sv[0], sv[1], efd, rfd};
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
        CHECK_MSG(fd_open(ours[i]), "fd %d was closed by iocomp", ours[i]);
    for (int i = 0; i < MANY; i++) {
        CHECK(fd_open(many[i]));
        CHECK_OK(close(many[i]));
    }
    CHECK_OK(close(pfd[0]));
    CHECK_OK(close(pfd[1]));
    CHECK_OK(close(sv[0]));
    CHECK_OK(close(sv[1]));
    CHECK_OK(close(efd));
    fclose(tf);
    test_end();
}
