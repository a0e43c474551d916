/*
 * bad_input: invariant 8 for NULL handles and out pointers. Every function
 * given a NULL engine or a NULL out pointer returns -EINVAL (or its
 * documented neutral value), crashes nothing, and changes nothing: the
 * engine's settings and counters are as before and it still works.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

static struct test_counter ctr;

int main(void) {
    test_begin("bad_input", 0);
    iocomp_engine *e = test_engine(1, 4, test_counter_cb, &ctr);
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(e, &p));
    iocomp_stats before = test_stats(e);

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    iocomp_engine *e2 = (iocomp_engine *)(uintptr_t)0x1;
    iocomp_port_t port = 0x77;
    uint32_t u = 0x77;
    size_t z = 0x77;
    iocomp_overlapped *ov = NULL;
    iocomp_stats st;
    int fds[2];
    CHECK_OK(pipe(fds));

    CHECK_EQ(iocomp_engine_create(NULL, &e2), -EINVAL);
    CHECK_EQ(iocomp_engine_create(&cfg, NULL), -EINVAL);
    CHECK_EQ(iocomp_engine_create(NULL, NULL), -EINVAL);
    CHECK_EQ(iocomp_engine_destroy(NULL), -EINVAL);
    CHECK_EQ(iocomp_port_create(NULL, &port), -EINVAL);
    CHECK_EQ(iocomp_port_create(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_port_close(NULL, p), -EINVAL);
    CHECK_EQ(iocomp_port_close(NULL, IOCOMP_DEFAULT_PORT), -EINVAL);
    CHECK_EQ(iocomp_bind(NULL, p, fds[0], 1), -EINVAL);
    CHECK_EQ(iocomp_unbind(NULL, fds[0]), -EINVAL);
    CHECK_EQ(iocomp_set_completion_manager(NULL, test_counter_cb, &ctr), -EINVAL);
    CHECK_EQ(iocomp_set_completion_manager(NULL, NULL, NULL), -EINVAL);
    CHECK_EQ(iocomp_post(NULL, p, 0, 0, NULL, 0), -EINVAL);
    CHECK_EQ(iocomp_post(NULL, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0), -EINVAL);
    CHECK_EQ(iocomp_get_min_threads(NULL, &u), -EINVAL);
    CHECK_EQ(iocomp_get_min_threads(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_set_min_threads(NULL, 1), -EINVAL);
    CHECK_EQ(iocomp_get_max_threads(NULL, &u), -EINVAL);
    CHECK_EQ(iocomp_get_max_threads(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_set_max_threads(NULL, 4), -EINVAL);
    CHECK_EQ(iocomp_get_available_threads(NULL, &u), -EINVAL);
    CHECK_EQ(iocomp_get_available_threads(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_get_host_overlapped_size(NULL, &z), -EINVAL);
    CHECK_EQ(iocomp_get_host_overlapped_size(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_set_host_overlapped_size(NULL, 16), -EINVAL);
    CHECK_EQ(iocomp_overlapped_size(NULL), 0);
    CHECK_EQ(iocomp_overlapped_alloc(NULL, &ov), -EINVAL);
    CHECK_EQ(iocomp_overlapped_alloc(e, NULL), -EINVAL);
    iocomp_overlapped_free(NULL);
    CHECK_EQ(iocomp_overlapped_init(NULL, ov), -EINVAL);
    CHECK_EQ(iocomp_overlapped_init(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_get_stats(NULL, &st), -EINVAL);
    CHECK_EQ(iocomp_get_stats(e, NULL), -EINVAL);
    IHostIoCompletionManager *m = (IHostIoCompletionManager *)(uintptr_t)0x1;
    CHECK_EQ(iocomp_hosting_create(NULL, &m), -EINVAL);
    CHECK_EQ(iocomp_hosting_create(e, NULL), -EINVAL);
    /* The out values we passed were not used as results. */
    CHECK_EQ(u, 0x77);
    CHECK_EQ(z, 0x77);

    /* strerror names every value, known or not, and never returns NULL. */
    int errs[] = {0, -EINVAL, -EBADF, -EEXIST, -ENOENT, -ERANGE, -EBUSY, -ENOMEM, -EAGAIN,
                  -ETIMEDOUT, -ENOTCONN, -ESHUTDOWN, -ECANCELED, -EDEADLK, -EINTR, -EPERM,
                  -ENOSYS, -EOPNOTSUPP, -4095, -99999, 1, 12345, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        const char *s = iocomp_strerror(errs[i]);
        CHECK_MSG(s != NULL && s[0] != 0, "iocomp_strerror(%d)", errs[i]);
    }
    CHECK(strcmp(iocomp_strerror(-EINVAL), iocomp_strerror(-ENOMEM)) != 0);
    CHECK(strcmp(iocomp_strerror(-EBADF), iocomp_strerror(-EEXIST)) != 0);

    /* Misuse with a good engine: each refused, nothing changed. */
    CHECK_EQ(iocomp_post(e, (iocomp_port_t)0x123456789ull, 0, 0, NULL, 0), -EBADF);
    CHECK_EQ(iocomp_port_close(e, (iocomp_port_t)0x123456789ull), -EBADF);
    CHECK_EQ(iocomp_unbind(e, -1), -ENOENT);
    CHECK_EQ(iocomp_bind(e, p, -1, 0), -EBADF);

    iocomp_stats after = test_stats(e);
    CHECK_EQ(after.completions, before.completions);
    CHECK_EQ(after.ports_open, before.ports_open);
    CHECK_EQ(after.posts_remote, before.posts_remote);
    CHECK_OK(iocomp_get_min_threads(e, &u));
    CHECK_EQ(u, 1);
    CHECK_OK(iocomp_get_max_threads(e, &u));
    CHECK_EQ(u, 4);

    /* Still works. */
    CHECK_OK(iocomp_post(e, p, 5, 6, NULL, 7));
    TEST_WAIT_COUNT(&ctr.calls, 1, 5000);
    CHECK_EQ(atomic_load(&ctr.last_key), 7);
    CHECK_OK(iocomp_port_close(e, p));
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&ctr.calls), 1);
    CHECK_OK(close(fds[0]));
    CHECK_OK(close(fds[1]));
    test_end();
}
