/*
 * port_slots: the engine's 65535 port slots. Creating ports until refused
 * gives -ENOMEM at the documented limit (65535 slots, one of which the
 * default port may hold), the refusal changes nothing, and closing one port
 * frees a slot for the next create. Every live handle stays usable.
 */
#include "test.h"

static struct test_counter ctr;

int main(void) {
    test_begin("port_slots", 0);
    iocomp_engine *e = test_engine(1, 1, test_counter_cb, &ctr);
    /* Bring the default port into existence first, so its slot is taken. */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&ctr.calls, 1, 5000);

    enum { SLOTS = 65535 };
    iocomp_port_t *p = calloc(SLOTS + 1, sizeof *p);
    CHECK(p != NULL);
    size_t n = 0;
    int rc;
    while ((rc = iocomp_port_create(e, &p[n])) == 0) {
        CHECK(p[n] != IOCOMP_DEFAULT_PORT);
        n++;
        CHECK_MSG(n <= SLOTS, "more than %d ports created", SLOTS);
    }
    CHECK_EQ(rc, -ENOMEM);
    CHECK_MSG(n == SLOTS || n == SLOTS - 1, "ports created before -ENOMEM: %zu", n);
    printf("port_slots: %zu ports besides the default one\n", n);

    /* Refused again; the engine is unchanged and usable. */
    iocomp_port_t extra;
    CHECK_EQ(iocomp_port_create(e, &extra), -ENOMEM);
    CHECK_OK(iocomp_post(e, p[0], 0, 0, NULL, 1));
    CHECK_OK(iocomp_post(e, p[n - 1], 0, 0, NULL, 2));
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 3));
    TEST_WAIT_COUNT(&ctr.calls, 4, 5000);

    /* Close one: its slot can be taken again, with a new handle. */
    iocomp_port_t gone = p[n / 2];
    CHECK_OK(iocomp_port_close(e, gone));
    CHECK_OK(iocomp_port_create(e, &p[n / 2]));
    CHECK(p[n / 2] != gone);
    CHECK_EQ(iocomp_post(e, gone, 0, 0, NULL, 0), -EBADF);
    CHECK_EQ(iocomp_port_create(e, &extra), -ENOMEM);

    /* Close half explicitly, the rest with the engine. */
    for (size_t i = 0; i < n; i += 2)
        CHECK_OK(iocomp_port_close(e, p[i]));
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&ctr.calls), 4);
    free(p);
    test_end();
}
