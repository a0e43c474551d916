/*
 * api_port: iocomp_port_create / iocomp_port_close. Handles are non-zero and
 * distinct; close twice -> -EBADF; a stale handle is refused with -EBADF by
 * post, bind and close even after its slot is reused; the default port cannot
 * be closed (-EINVAL) and is created on first use.
 */
#include "test.h"

static struct test_counter ctr;

int main(void) {
    test_begin("api_port", 0);
    iocomp_engine *e = test_engine(2, 2, test_counter_cb, &ctr);
    int fds[2];
    CHECK_OK(pipe(fds));

    uint32_t ports0 = test_stats(e).ports_open;

    iocomp_port_t a = 0, b = 0;
    CHECK_OK(iocomp_port_create(e, &a));
    CHECK_OK(iocomp_port_create(e, &b));
    CHECK(a != IOCOMP_DEFAULT_PORT);
    CHECK(b != IOCOMP_DEFAULT_PORT);
    CHECK(a != b);
    CHECK_EQ(test_stats(e).ports_open, ports0 + 2);

    /* A live port takes posts, with the exact values. */
    CHECK_OK(iocomp_post(e, a, -5, 77, (iocomp_overlapped *)(uintptr_t)0x40, 0xabc));
    TEST_WAIT_COUNT(&ctr.calls, 1, 5000);
    CHECK_EQ(atomic_load(&ctr.last_status), -5);
    CHECK_EQ(atomic_load(&ctr.last_bytes), 77);
    CHECK_EQU((uintptr_t)atomic_load(&ctr.last_ov), 0x40);
    CHECK_EQU(atomic_load(&ctr.last_key), 0xabc);

    /* Close, then every use of the stale handle is -EBADF. */
    CHECK_OK(iocomp_port_close(e, a));
    CHECK_EQ(test_stats(e).ports_open, ports0 + 1);
    CHECK_EQ(iocomp_port_close(e, a), -EBADF);
    CHECK_EQ(iocomp_post(e, a, 0, 0, NULL, 1), -EBADF);
    CHECK_EQ(iocomp_bind(e, a, fds[0], 1), -EBADF);
    CHECK_EQ(iocomp_unbind(e, fds[0]), -ENOENT); /* the refused bind left nothing */
    CHECK_EQ(atomic_load(&ctr.calls), 1);         /* refused posts get no callback */

    /* Unknown handles. */
    CHECK_EQ(iocomp_port_close(e, (iocomp_port_t)0xdeadbeef12345ull), -EBADF);
    CHECK_EQ(iocomp_post(e, (iocomp_port_t)0xdeadbeef12345ull, 0, 0, NULL, 0), -EBADF);
    CHECK_EQ(iocomp_port_close(e, UINT64_MAX), -EBADF);
    CHECK_EQ(iocomp_post(e, UINT64_MAX, 0, 0, NULL, 0), -EBADF);

    /* The default port: usable without creation, never closable. */
    CHECK_EQ(iocomp_port_close(e, IOCOMP_DEFAULT_PORT), -EINVAL);
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 1, 2, NULL, 3));
    TEST_WAIT_COUNT(&ctr.calls, 2, 5000);
    CHECK_EQ(atomic_load(&ctr.last_status), 1);
    CHECK_EQ(atomic_load(&ctr.last_key), 3);
    CHECK_EQ(iocomp_port_close(e, IOCOMP_DEFAULT_PORT), -EINVAL);
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 4)); /* still open */
    TEST_WAIT_COUNT(&ctr.calls, 3, 5000);
    /* b is open; the default port may or may not count in ports_open. */
    uint32_t pd = test_stats(e).ports_open;
    CHECK(pd == ports0 + 1 || pd == ports0 + 2);

    /* Slot reuse: old handles stay stale while new ones work. */
    enum { OLD = 64, CYCLES = 2000 };
    iocomp_port_t old[OLD];
    size_t nold = 0;
    old[nold++] = a;
    uint64_t calls = atomic_load(&ctr.calls);
    for (int i = 0; i < CYCLES; i++) {
        iocomp_port_t p;
        CHECK_OK(iocomp_port_create(e, &p));
        CHECK(p != IOCOMP_DEFAULT_PORT);
        CHECK(p != b);
        for (size_t j = 0; j < nold; j++) {
            CHECK_MSG(p != old[j], "cycle %d: new handle 0x%" PRIx64 " equals a stale one", i,
                      (uint64_t)p);
            CHECK_EQ(iocomp_post(e, old[j], 0, 0, NULL, 0), -EBADF);
        }
        CHECK_OK(iocomp_post(e, p, 0, 0, NULL, (uintptr_t)i));
        calls++;
        CHECK_OK(iocomp_port_close(e, p)); /* delivers first */
        CHECK_EQ(atomic_load(&ctr.calls), calls);
        CHECK_EQ(iocomp_port_close(e, p), -EBADF);
        if (nold < OLD)
            old[nold++] = p;
        else
            old[i % OLD] = p;
    }
    CHECK_EQ(test_stats(e).ports_open, pd);
    CHECK_OK(iocomp_port_close(e, b));
    CHECK_EQ(test_stats(e).ports_open, pd - 1);
    CHECK_EQ(iocomp_port_close(e, b), -EBADF);

    /* Out pointer and engine checks. */
    CHECK_EQ(iocomp_port_create(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_port_create(NULL, &a), -EINVAL);
    CHECK_EQ(iocomp_port_close(NULL, b), -EINVAL);

    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_OK(close(fds[0]));
    CHECK_OK(close(fds[1]));
    test_end();
}
