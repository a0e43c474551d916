/*
 * multi_engine: several engines live in one process and share nothing
 * (BRIEF §1 "nothing is global except the hosting layer's default
 * instance"). Three engines, each with its own callback context, get packets
 * from one thread; each packet reaches its own engine's callback only,
 * exactly once; destroying one leaves the others working.
 */
#include "test.h"

#define ENGINES 3
#define PER 20000

struct ectx {
    int id;
    struct test_once once;
    atomic_uint_fast64_t wrong;
};
static struct ectx ctx[ENGINES];

static void cb(void *c, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)bytes, (void)ov;
    struct ectx *x = c;
    if (status != x->id)
        atomic_fetch_add(&x->wrong, 1);
    test_once_hit(&x->once, key);
}

int main(void) {
    test_begin("multi_engine", 0);
    uint64_t per = test_scaled_min(PER, 2000);
    iocomp_engine *e[ENGINES];
    iocomp_port_t p[ENGINES];
    for (int i = 0; i < ENGINES; i++) {
        ctx[i].id = i;
        test_once_init(&ctx[i].once, per);
        e[i] = test_engine(1, 2, cb, &ctx[i]);
        CHECK_OK(iocomp_port_create(e[i], &p[i]));
    }
    /* Port handles are per engine: one engine's handle means nothing to another
     * unless it happens to name a port there; posting with its own is right. */
    for (uint64_t k = 0; k < per; k++)
        for (int i = 0; i < ENGINES; i++)
            CHECK_OK(iocomp_post(e[i], k % 2 ? p[i] : IOCOMP_DEFAULT_PORT, i, 0, NULL, k));
    for (int i = 0; i < ENGINES; i++)
        TEST_WAIT_COUNT(&ctx[i].once.total, per, 20000);
    test_sleep_us(10000);
    for (int i = 0; i < ENGINES; i++) {
        test_once_check(&ctx[i].once, "multi_engine");
        CHECK_EQ(atomic_load(&ctx[i].wrong), 0);
        CHECK_EQ(test_stats(e[i]).completions, per);
    }
    /* Destroy the middle one; the others still work. */
    CHECK_OK(iocomp_engine_destroy(e[1]));
    for (int i = 0; i < ENGINES; i += 2) {
        CHECK_OK(iocomp_post(e[i], p[i], i, 0, NULL, 0));
        TEST_WAIT_COUNT(&ctx[i].once.total, per + 1, 5000);
        CHECK_OK(iocomp_engine_destroy(e[i]));
    }
    for (int i = 0; i < ENGINES; i++)
        test_once_free(&ctx[i].once);
    test_end();
}
