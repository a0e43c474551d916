/*
 * api_engine: iocomp_config_init / iocomp_engine_create / iocomp_engine_destroy.
 * Defaults (min = usable CPUs, max = max(min, 1000), host size 0), every
 * documented config error, and a thousand create/destroy cycles that leave no
 * thread or descriptor behind (invariant 10) and keep working.
 */
#include "test.h"

#include <sched.h>

static struct test_counter ctr;

static int create_rc(uint32_t min, uint32_t max, size_t host) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = min;
    cfg.max_threads = max;
    cfg.host_overlapped_size = host;
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(&cfg, &e);
    if (rc == 0) {
        CHECK(e != NULL);
        CHECK_OK(iocomp_engine_destroy(e));
    }
    return rc;
}

int main(void) {
    test_begin("api_engine", 0);

    /* config_init: every field 0 or NULL. */
    iocomp_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    iocomp_config_init(&cfg);
    CHECK_EQ(cfg.min_threads, 0);
    CHECK_EQ(cfg.max_threads, 0);
    CHECK_EQ(cfg.host_overlapped_size, 0);
    CHECK(cfg.overlapped_init == NULL);
    CHECK(cfg.overlapped_init_ctx == NULL);
    CHECK(cfg.on_complete == NULL);
    CHECK(cfg.on_complete_ctx == NULL);
    CHECK_EQ(cfg.local_queue_capacity, 0);
    CHECK_EQ(cfg.inject_queue_capacity, 0);
    CHECK_EQ(cfg.spin_ns, 0);
    CHECK_EQ(cfg.close_timeout_ms, 0);

    /* usable CPUs: at least 1, at most the affinity mask. */
    uint32_t cpus = iocomp_usable_cpus();
    cpu_set_t set;
    CHECK_OK(sched_getaffinity(0, sizeof set, &set));
    CHECK(cpus >= 1);
    CHECK((int)cpus <= CPU_COUNT(&set));

    /* Defaults. */
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK(e != NULL);
    uint32_t v = 12345;
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, cpus);
    uint32_t maxd = cpus > IOCOMP_THREADS_DEFAULT_MAX ? cpus : IOCOMP_THREADS_DEFAULT_MAX;
    CHECK_OK(iocomp_get_max_threads(e, &v));
    CHECK_EQ(v, maxd);
    CHECK_OK(iocomp_get_available_threads(e, &v));
    CHECK_EQ(v, maxd); /* nothing busy */
    size_t hs = 999;
    CHECK_OK(iocomp_get_host_overlapped_size(e, &hs));
    CHECK_EQ(hs, 0);
    CHECK_EQ(iocomp_overlapped_size(e), IOCOMP_OVERLAPPED_HEADER_SIZE);
    /* A default engine starts one worker per usable CPU (min), and runs no
     * callback; it may have helper threads of its own beyond the workers. */
    CHECK_MSG(TEST_WAIT_UNTIL(test_stats(e).threads_live == cpus, 2000), "threads_live %u, want %u",
              test_stats(e).threads_live, cpus);
    iocomp_stats s = test_stats(e);
    CHECK(s.threads_started >= cpus);
    CHECK_EQ(s.completions, 0);
    CHECK_EQ(s.threads_busy, 0);
    CHECK(test_count_threads() >= test_start_baseline_.threads + (int)cpus);
    CHECK_OK(iocomp_engine_destroy(e));
    test_baseline_check(&test_start_baseline_);

    /* min only: max defaults to max(min, 1000). */
    iocomp_config_init(&cfg);
    cfg.min_threads = 3;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, 3);
    CHECK_OK(iocomp_get_max_threads(e, &v));
    CHECK_EQ(v, IOCOMP_THREADS_DEFAULT_MAX);
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 3, 2000));
    CHECK_OK(iocomp_engine_destroy(e));

    /* Exact min = max = 1; custom queue sizes (rounded up), never spin. */
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 1;
    cfg.local_queue_capacity = 1;
    cfg.inject_queue_capacity = 3;
    cfg.spin_ns = UINT32_MAX;
    cfg.close_timeout_ms = 1;
    cfg.host_overlapped_size = IOCOMP_HOST_OVERLAPPED_LIMIT;
    cfg.on_complete = test_counter_cb;
    cfg.on_complete_ctx = &ctr;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK_OK(iocomp_get_min_threads(e, &v));
    CHECK_EQ(v, 1);
    CHECK_OK(iocomp_get_max_threads(e, &v));
    CHECK_EQ(v, 1);
    CHECK_OK(iocomp_get_host_overlapped_size(e, &hs));
    CHECK_EQ(hs, IOCOMP_HOST_OVERLAPPED_LIMIT);
    CHECK(iocomp_overlapped_size(e) >= IOCOMP_OVERLAPPED_HEADER_SIZE + IOCOMP_HOST_OVERLAPPED_LIMIT);
    CHECK(TEST_WAIT_UNTIL(test_stats(e).threads_live == 1, 2000));
    for (int i = 0; i < 100; i++) /* more than the rounded-up rings hold */
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, i, (uint32_t)i, NULL, (uintptr_t)i));
    TEST_WAIT_COUNT(&ctr.calls, 100, 10000);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQ(atomic_load(&ctr.calls), 100);

    /* Bad configurations, each refused with its documented error. */
    iocomp_config_init(&cfg);
    CHECK_EQ(iocomp_engine_create(NULL, &e), -EINVAL);
    CHECK_EQ(iocomp_engine_create(&cfg, NULL), -EINVAL);
    CHECK_EQ(create_rc(4, 2, 0), -EINVAL);                 /* min > max */
    CHECK_EQ(create_rc(2, 1, 0), -EINVAL);
    CHECK_EQ(create_rc(1, IOCOMP_THREADS_LIMIT + 1, 0), -ERANGE);
    CHECK_EQ(create_rc(0, IOCOMP_THREADS_LIMIT + 1, 0), -ERANGE);
    CHECK_EQ(create_rc(IOCOMP_THREADS_LIMIT + 1, IOCOMP_THREADS_LIMIT + 1, 0), -ERANGE);
    CHECK_EQ(create_rc(1, UINT32_MAX, 0), -ERANGE);
    /* min above the limit with max defaulted: max(min, 1000) is above it too. */
    CHECK_EQ(create_rc(IOCOMP_THREADS_LIMIT + 1, 0, 0), -ERANGE);
    CHECK_EQ(create_rc(0, 0, IOCOMP_HOST_OVERLAPPED_LIMIT + 1), -ERANGE);
    CHECK_EQ(create_rc(0, 0, SIZE_MAX), -ERANGE);
    /* The limits themselves are allowed (max only: min stays at the CPUs). */
    CHECK_OK(create_rc(1, IOCOMP_THREADS_LIMIT, 0));
    test_baseline_check(&test_start_baseline_);

    /* A thousand create/destroy cycles: no drift, every engine works. */
    uint64_t cycles = test_scaled_min(1000, 50);
    atomic_store(&ctr.calls, 0);
    for (uint64_t i = 0; i < cycles; i++) {
        iocomp_config_init(&cfg);
        cfg.on_complete = test_counter_cb;
        cfg.on_complete_ctx = &ctr;
        if (i % 3 == 1) {
            cfg.min_threads = 1;
            cfg.max_threads = 2;
        }
        CHECK_OK(iocomp_engine_create(&cfg, &e));
        if (i % 2 == 0) {
            iocomp_port_t p;
            CHECK_OK(iocomp_port_create(e, &p));
            CHECK_OK(iocomp_post(e, p, 0, 1, NULL, i));
            if (i % 4 == 0)
                CHECK_OK(iocomp_port_close(e, p));
        }
        /* destroy delivers what was accepted first */
        CHECK_OK(iocomp_engine_destroy(e));
        CHECK_EQ(atomic_load(&ctr.calls), (i / 2) + 1);
    }
    test_end();
}
