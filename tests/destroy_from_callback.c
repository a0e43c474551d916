/*
 * destroy_from_callback: invariant 7. iocomp_engine_destroy() called from the
 * engine's own callback is refused with -EDEADLK and changes nothing: the
 * engine keeps delivering, ports and the default port still work, and a
 * destroy from outside then returns 0. A callback of engine A may destroy
 * another engine B.
 */
#include "test.h"

static iocomp_engine *eng, *other;
static atomic_int rc_self = 1, rc_other = 1;
static atomic_uint_fast64_t calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key == 1)
        atomic_store(&rc_self, iocomp_engine_destroy(eng));
    if (key == 2)
        atomic_store(&rc_other, iocomp_engine_destroy(other));
    atomic_fetch_add(&calls, 1);
}

int main(void) {
    test_begin("destroy_from_callback", 0);
    eng = test_engine(1, 2, cb, NULL);
    other = test_engine(1, 1, NULL, NULL);
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(eng, &p));

    CHECK_OK(iocomp_post(eng, p, 0, 0, NULL, 1));
    TEST_WAIT_COUNT(&calls, 1, 5000);
    CHECK_EQ(atomic_load(&rc_self), -EDEADLK);

    /* Nothing changed. */
    for (int i = 0; i < 100; i++) {
        CHECK_OK(iocomp_post(eng, p, 0, 0, NULL, 0));
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    }
    TEST_WAIT_COUNT(&calls, 201, 5000);
    iocomp_port_t q;
    CHECK_OK(iocomp_port_create(eng, &q));
    CHECK_OK(iocomp_port_close(eng, q));
    uint32_t v;
    CHECK_OK(iocomp_get_max_threads(eng, &v));
    CHECK_EQ(v, 2);

    /* Twice more, from a nested repost. */
    CHECK_OK(iocomp_post(eng, p, 0, 0, NULL, 1));
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1));
    TEST_WAIT_COUNT(&calls, 203, 5000);
    CHECK_EQ(atomic_load(&rc_self), -EDEADLK);

    /* Another engine may be destroyed from this one's callback. */
    CHECK_OK(iocomp_post(eng, p, 0, 0, NULL, 2));
    TEST_WAIT_COUNT(&calls, 204, 5000);
    CHECK_EQ(atomic_load(&rc_other), 0);

    CHECK_OK(iocomp_port_close(eng, p));
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&calls), 204);
    test_end();
}
