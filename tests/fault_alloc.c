/*
 * fault_alloc: invariant 8 for allocation failure at the N-th allocation, for
 * every N (BRIEF §5). For N = 1, 2, ...: arm IOCOMP_FAULT_ALLOC at N and run
 * engine create, hosting wrapper, port create, bind, callback install, posts,
 * overlapped alloc, port close and destroy. Every step either succeeds or
 * returns -ENOMEM (and only when a failure was injected); after a refusal the
 * same step succeeds (the seam fails once), every accepted post is delivered
 * exactly once, and threads and descriptors return to the baseline (ASan in
 * CI checks memory). Stops at the first N that the whole run never reaches.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"
#include <iocomp/testing.h>

#define POSTS 16

static atomic_uint_fast64_t calls;
static atomic_int init_calls;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_fetch_add(&calls, 1);
}

static int init_cb(void *ctx, iocomp_overlapped *ov, void *ext, size_t n) {
    (void)ctx, (void)ov, (void)ext, (void)n;
    atomic_fetch_add(&init_calls, 1);
    return 0;
}

static uint64_t injected(void) { return iocomp_fault_injected(IOCOMP_FAULT_ALLOC); }

/* rc of a step: 0, or -ENOMEM that we injected. Returns true on -ENOMEM. */
#define STEP(expr, what)                                                                       \
    ({                                                                                         \
        uint64_t inj0_ = injected();                                                           \
        int rc_ = (expr);                                                                      \
        CHECK_MSG(rc_ == 0 || rc_ == -ENOMEM, "N=%" PRIu64 ": %s = %d", n, what, rc_);         \
        if (rc_ == -ENOMEM)                                                                    \
            CHECK_MSG(injected() > inj0_, "N=%" PRIu64 ": %s = -ENOMEM but nothing injected", n, \
                      what);                                                                   \
        rc_ == -ENOMEM;                                                                        \
    })

static int pipefd[2];

static void run(uint64_t n) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 2;
    cfg.host_overlapped_size = 32;
    cfg.overlapped_init = init_cb;
    iocomp_engine *e = NULL;
    if (STEP(iocomp_engine_create(&cfg, &e), "engine_create"))
        return; /* nothing left behind: the caller checks the baseline */

    IHostIoCompletionManager *m = NULL;
    if (STEP(iocomp_hosting_create(e, &m), "hosting_create"))
        CHECK_OK(iocomp_hosting_create(e, &m));

    iocomp_port_t p;
    if (STEP(iocomp_port_create(e, &p), "port_create"))
        CHECK_OK(iocomp_port_create(e, &p));

    if (STEP(iocomp_bind(e, p, pipefd[0], 5), "bind")) {
        CHECK_EQ(iocomp_unbind(e, pipefd[0]), -ENOENT); /* nothing registered */
        CHECK_OK(iocomp_bind(e, p, pipefd[0], 5));
    }
    if (STEP(iocomp_bind(e, IOCOMP_DEFAULT_PORT, pipefd[1], 6), "bind default"))
        CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, pipefd[1], 6));

    if (STEP(iocomp_set_completion_manager(e, cb, NULL), "set_completion_manager"))
        CHECK_OK(iocomp_set_completion_manager(e, cb, NULL));

    atomic_store(&calls, 0);
    uint64_t accepted = 0;
    for (int i = 0; i < POSTS; i++)
        if (!STEP(iocomp_post(e, i % 2 ? p : IOCOMP_DEFAULT_PORT, 0, 0, NULL, (uintptr_t)i), "post"))
            accepted++;

    iocomp_overlapped *ov = NULL;
    int ic0 = atomic_load(&init_calls);
    if (STEP(iocomp_overlapped_alloc(e, &ov), "overlapped_alloc")) {
        CHECK_OK(iocomp_overlapped_alloc(e, &ov));
    }
    CHECK(ov != NULL);
    CHECK(atomic_load(&init_calls) >= ic0 + 1);

    /* Threads may change while the pool works; nothing below may fail. */
    CHECK_OK(iocomp_port_close(e, p));
    TEST_WAIT_COUNT(&calls, accepted, 10000);
    iocomp_hosting_release(m);
    CHECK_OK(iocomp_unbind(e, pipefd[1]));
    CHECK_EQ(iocomp_unbind(e, pipefd[0]), -ENOENT); /* gone with the port */
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&calls), accepted);
    iocomp_overlapped_free(ov); /* after the engine: allowed */
}

int main(void) {
    test_begin("fault_alloc", 0);
    CHECK_OK(pipe(pipefd));
    struct test_baseline b = test_baseline_take();

    /* A clean run first, to count the allocation sites. */
    iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 0);
    run(0);
    uint64_t clean_calls = iocomp_fault_calls(IOCOMP_FAULT_ALLOC);
    test_baseline_check(&b);
    printf("fault_alloc: a clean run makes %" PRIu64 " allocations\n", clean_calls);

    uint64_t n, failures = 0;
    for (n = 1; n < 100000; n++) {
        iocomp_fault_arm(IOCOMP_FAULT_ALLOC, n);
        run(n);
        uint64_t inj = injected();
        iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 0);
        CHECK_MSG(inj <= 1, "N=%" PRIu64 ": %" PRIu64 " failures injected by a one-shot arm", n, inj);
        test_baseline_check(&b);
        if (inj == 0)
            break; /* the whole run made fewer than n allocations */
        failures++;
    }
    printf("fault_alloc: %" PRIu64 " runs with a failure injected, stopped at N=%" PRIu64 "\n", failures, n);
    CHECK(failures >= 1);
    CHECK_OK(close(pipefd[0]));
    CHECK_OK(close(pipefd[1]));
    test_end();
}
