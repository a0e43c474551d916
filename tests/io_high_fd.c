/*
 * io_high_fd: descriptors far above the usual range (issue #10 item 4).
 *
 * With RLIMIT_NOFILE raised (to 70000 when the hard limit allows, else as
 * high as it does; skipped below 16500), a socketpair end is moved to
 * 16400, 40000 and 65600 (those the limit allows) and each, on every
 * backend: is bound; a recv pending on it is cancelled (-ECANCELED, once);
 * a recv with data completes with the bytes; a send reaches the peer;
 * iocomp_close_fd closes it. The binding table grows in chunks
 * (IOC_BIND_CHUNK): each number lands in another chunk.
 */
#include "test.h"

#include <sys/resource.h>

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
}

int main(void) {
    test_begin("io_high_fd", 60);
    struct rlimit orig;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &orig));
    rlim_t want = 70000;
    if (orig.rlim_max != RLIM_INFINITY && orig.rlim_max < want) want = orig.rlim_max;
    if (want < 16500) test_skip("the hard RLIMIT_NOFILE is below 16500");
    struct rlimit raised = {want, orig.rlim_max};
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &raised));
    iocomp_engine *e = test_io_engine_n(2, cb, NULL);
    const int targets[] = {16400, 40000, 65600};
    int done = 0;
    for (size_t i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        int fd = targets[i];
        if ((rlim_t)fd >= want) continue;
        int sv[2];
        test_socketpair(sv);
        CHECK_EQ(dup3(sv[0], fd, O_CLOEXEC), fd);
        close(sv[0]);
        CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, fd, (uintptr_t)fd));
        iocomp_overlapped *ov = test_io_ov(e, (uint64_t)fd);
        char buf[16];
        /* pending, then cancelled */
        test_io_arm(ov);
        CHECK_OK(test_io_settle(ov, iocomp_recv(e, fd, buf, sizeof buf, 0, ov)));
        test_sleep_us(2000);
        CHECK_OK(iocomp_cancel(e, ov));
        struct test_io *t = test_io_wait(ov, 1, 5000);
        CHECK_EQ(atomic_load(&t->status), -ECANCELED);
        CHECK_EQU(atomic_load(&t->key), (uintptr_t)fd);
        /* with data */
        CHECK_EQ(write(sv[1], "high", 4), 4);
        test_io_arm(ov);
        CHECK_OK(test_io_settle(ov, iocomp_recv(e, fd, buf, sizeof buf, 0, ov)));
        t = test_io_wait(ov, 2, 5000);
        CHECK_EQ(atomic_load(&t->status), 0);
        CHECK_EQU(atomic_load(&t->bytes), 4);
        CHECK(memcmp(buf, "high", 4) == 0);
        /* a send */
        test_io_arm(ov);
        CHECK_OK(test_io_settle(ov, iocomp_send(e, fd, "fd!", 3, 0, ov)));
        t = test_io_wait(ov, 3, 5000);
        CHECK_EQ(atomic_load(&t->status), 0);
        char got[4] = {0};
        CHECK_EQ(read(sv[1], got, 3), 3);
        CHECK(memcmp(got, "fd!", 3) == 0);
        CHECK_OK(iocomp_close_fd(e, fd));
        CHECK(fcntl(fd, F_GETFD) == -1);
        close(sv[1]);
        iocomp_overlapped_free(ov);
        done++;
    }
    CHECK(done >= 1);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQU(atomic_load(&test_io_bad), 0);
    CHECK_OK(setrlimit(RLIMIT_NOFILE, &orig));
    printf("io_high_fd: %d descriptor(s) up to %d\n", done, done == 3 ? 65600 : done == 2 ? 40000 : 16400);
    test_end();
    return 0;
}
