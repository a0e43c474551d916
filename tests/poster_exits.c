/*
 * poster_exits: the submitting thread exits before its completions arrive
 * (BRIEF §5). 8 short-lived threads post 1000 packets each and are joined
 * while the only worker is held in a callback; afterwards every packet is
 * delivered exactly once.
 */
#include "test.h"

#define THREADS 8
#define PER 1000
#define KEY_GATE UINTPTR_MAX

static iocomp_engine *eng;
static struct test_once once;
static atomic_int gate_open, gate_in;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key == KEY_GATE) {
        atomic_store(&gate_in, 1);
        while (!atomic_load(&gate_open))
            test_sleep_us(200);
        return;
    }
    test_once_hit(&once, key);
}

static void *poster(void *arg) {
    uint64_t first = (uintptr_t)arg * PER;
    for (uint64_t id = first; id < first + PER; id++)
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, id));
    return NULL;
}

int main(void) {
    test_begin("poster_exits", 0);
    test_once_init(&once, THREADS * PER);
    eng = test_engine(1, 1, cb, NULL);
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_GATE));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&gate_in), 5000));
    for (int round = 0; round < 2; round++) {
        pthread_t t[THREADS / 2];
        for (uintptr_t i = 0; i < THREADS / 2; i++)
            t[i] = test_thread(poster, (void *)(i + round * THREADS / 2));
        for (int i = 0; i < THREADS / 2; i++)
            test_join(t[i]); /* gone, with all their packets still queued */
    }
    CHECK_EQ(atomic_load(&once.total), 0);
    atomic_store(&gate_open, 1);
    TEST_WAIT_COUNT(&once.total, THREADS * PER, 10000);
    test_sleep_us(10000);
    test_once_check(&once, "poster_exits");
    CHECK_OK(iocomp_engine_destroy(eng));
    test_once_free(&once);
    test_end();
}
