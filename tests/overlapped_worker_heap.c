/*
 * overlapped_worker_heap: invariant 5 and the engine's arena lifetime.
 * Callbacks allocate overlapped on the workers (the arena fast path: workers
 * are bound to the engine's arena), hand half to a host thread that frees
 * them, keep the other half past engine destroy and free them afterwards;
 * repeated over many engine lifetimes so destroyed engines' arenas are
 * reused. The extension is zeroed and initialised on every allocation.
 * Regression: destroy used to tear the arena down under worker caches that
 * still held its memory (a crash in jemalloc on every run).
 */
#include "test.h"

#define PER_ROUND 512

static iocomp_overlapped *made[PER_ROUND];
static atomic_uint done;
static atomic_uint init_calls;
static iocomp_engine *eng;

static int init_cb(void *ctx, iocomp_overlapped *ov, void *ext, size_t size) {
    (void)ctx, (void)ov;
    unsigned char *x = ext;
    for (size_t i = 0; i < size; i++)
        CHECK_MSG(x[i] == 0, "extension byte %zu not zeroed before init", i);
    memset(ext, 0xAB, size);
    atomic_fetch_add(&init_calls, 1);
    return 0;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    iocomp_overlapped *o;
    CHECK_OK(iocomp_overlapped_alloc(eng, &o));
    CHECK_EQ(((unsigned char *)iocomp_overlapped_ext(o))[63], 0xAB);
    made[key] = o;
    atomic_fetch_add(&done, 1);
}

int main(void) {
    test_begin("overlapped_worker_heap", 0);
    unsigned rounds = (unsigned)test_scaled_min(200, 20);
    for (unsigned r = 0; r < rounds; r++) {
        iocomp_config cfg;
        iocomp_config_init(&cfg);
        cfg.min_threads = cfg.max_threads = 2;
        cfg.host_overlapped_size = 64;
        cfg.overlapped_init = init_cb;
        cfg.on_complete = cb;
        CHECK_OK(iocomp_engine_create(&cfg, &eng));
        atomic_store(&done, 0);
        for (uintptr_t i = 0; i < PER_ROUND; i++)
            CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, i));
        CHECK(TEST_WAIT_UNTIL(atomic_load(&done) == PER_ROUND, 5000));
        for (unsigned i = 0; i < PER_ROUND / 2; i++) /* freed by a host thread while the engine lives */
            iocomp_overlapped_free(made[i]);
        CHECK_OK(iocomp_engine_destroy(eng));
        for (unsigned i = PER_ROUND / 2; i < PER_ROUND; i++) { /* outlived their engine */
            CHECK_EQ(((unsigned char *)iocomp_overlapped_ext(made[i]))[0], 0xAB);
            iocomp_overlapped_free(made[i]);
        }
    }
    CHECK_EQ(atomic_load(&init_calls), rounds * PER_ROUND);
    printf("overlapped_worker_heap: %u engines, %u overlapped each\n", rounds, PER_ROUND);
    test_end();
}
