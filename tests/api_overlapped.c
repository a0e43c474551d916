/*
 * api_overlapped: the host extension size (GetHostOverlappedSize), the init
 * callback (InitializeHostOverlapped) on every alloc and on
 * iocomp_overlapped_init, with ext == (char *)ov + 128, ext_size the engine's
 * size, zeroed, on the calling thread; init failures propagate and leak
 * nothing; the size is fixed once a port, binding or overlapped exists
 * (-EBUSY); overlapped may outlive their engine (invariant 5); misaligned
 * embedded headers are -EINVAL.
 */
#include "test.h"

#include <stdalign.h>

struct init_ctx {
    atomic_uint_fast64_t calls;
    atomic_uint_fast64_t not_zeroed; /* calls that saw a non-zero extension byte */
    atomic_uint_fast64_t bad_ext;    /* ext != ov + 128 or wrong size */
    _Atomic(iocomp_overlapped *) last_ov;
    atomic_int last_tid;
    atomic_int fail; /* returned when non-zero */
    size_t want_size;
};

static int init_cb(void *ctx, iocomp_overlapped *ov, void *ext, size_t ext_size) {
    struct init_ctx *c = ctx;
    if (ext != (unsigned char *)ov + IOCOMP_OVERLAPPED_HEADER_SIZE || ext != iocomp_overlapped_ext(ov) ||
        ext_size != c->want_size)
        atomic_fetch_add(&c->bad_ext, 1);
    const unsigned char *p = ext;
    for (size_t i = 0; i < ext_size; i++)
        if (p[i]) {
            atomic_fetch_add(&c->not_zeroed, 1);
            break;
        }
    atomic_store(&c->last_ov, ov);
    atomic_store(&c->last_tid, (int)test_gettid());
    int f = atomic_load(&c->fail);
    if (!f)
        memset(ext, 0x5a, ext_size); /* the host's own initialisation */
    atomic_fetch_add(&c->calls, 1);
    return f;
}

static bool ext_is(iocomp_overlapped *ov, size_t n, unsigned char v) {
    const unsigned char *p = iocomp_overlapped_ext(ov);
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return false;
    return true;
}

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    long size = 0, res = 0;
    CHECK_EQ(fscanf(f, "%ld %ld", &size, &res), 2);
    fclose(f);
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* the quarantine / shadow memory make RSS meaningless */
#else
#define SANITIZED 0
#endif

static iocomp_engine *make(struct init_ctx *ic, size_t host, iocomp_complete_cb cb, void *ctx) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 2;
    cfg.host_overlapped_size = host;
    cfg.overlapped_init = ic ? init_cb : NULL;
    cfg.overlapped_init_ctx = ic;
    cfg.on_complete = cb;
    cfg.on_complete_ctx = ctx;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    if (ic)
        ic->want_size = host;
    return e;
}

static size_t host_size(iocomp_engine *e) {
    size_t v = 12345;
    CHECK_OK(iocomp_get_host_overlapped_size(e, &v));
    return v;
}

/* Overlapped allocated on a worker, inside a callback, kept past the engine. */
#define WORKER_OVS 64
static iocomp_overlapped *worker_ovs[WORKER_OVS];
static atomic_uint_fast64_t worker_done;
static iocomp_engine *worker_e;
static void alloc_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                     uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    CHECK_OK(iocomp_overlapped_alloc(worker_e, &worker_ovs[key]));
    atomic_fetch_add(&worker_done, 1);
}

int main(void) {
    test_begin("api_overlapped", 0);
    struct init_ctx ic;
    memset(&ic, 0, sizeof ic);
    struct test_counter ctr;
    memset(&ctr, 0, sizeof ctr);

    /* ---- the size: settable, bounded, until something exists */
    iocomp_engine *e = make(&ic, 0, test_counter_cb, &ctr);
    CHECK_EQ(host_size(e), 0);
    CHECK_EQ(iocomp_overlapped_size(e), IOCOMP_OVERLAPPED_HEADER_SIZE);
    CHECK_OK(iocomp_set_host_overlapped_size(e, 64));
    CHECK_EQ(host_size(e), 64);
    CHECK_EQ(iocomp_overlapped_size(e), IOCOMP_OVERLAPPED_HEADER_SIZE + 64);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, IOCOMP_HOST_OVERLAPPED_LIMIT + 1), -ERANGE);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, SIZE_MAX), -ERANGE);
    CHECK_EQ(host_size(e), 64);
    CHECK_OK(iocomp_set_host_overlapped_size(e, IOCOMP_HOST_OVERLAPPED_LIMIT));
    CHECK_EQ(host_size(e), IOCOMP_HOST_OVERLAPPED_LIMIT);
    CHECK_OK(iocomp_set_host_overlapped_size(e, 0));
    CHECK_EQ(host_size(e), 0);
    CHECK_OK(iocomp_set_host_overlapped_size(e, 100));
    CHECK(iocomp_overlapped_size(e) >= IOCOMP_OVERLAPPED_HEADER_SIZE + 100);
    CHECK_OK(iocomp_set_host_overlapped_size(e, 64));
    ic.want_size = 64;
    CHECK_EQ(iocomp_get_host_overlapped_size(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_get_host_overlapped_size(NULL, &(size_t){0}), -EINVAL);
    CHECK_EQ(iocomp_set_host_overlapped_size(NULL, 64), -EINVAL);
    CHECK_EQ(iocomp_overlapped_size(NULL), 0);
    CHECK_EQ(atomic_load(&ic.calls), 0);

    /* ---- alloc: aligned, init ran on it on this thread, ext zeroed first */
    iocomp_overlapped *ov = NULL;
    CHECK_OK(iocomp_overlapped_alloc(e, &ov));
    CHECK(ov != NULL);
    CHECK_EQ((uintptr_t)ov % 16, 0);
    CHECK_EQ(atomic_load(&ic.calls), 1);
    CHECK(atomic_load(&ic.last_ov) == ov);
    CHECK_EQ(atomic_load(&ic.last_tid), test_gettid());
    CHECK_EQ(atomic_load(&ic.not_zeroed), 0);
    CHECK_EQ(atomic_load(&ic.bad_ext), 0);
    CHECK(ext_is(ov, 64, 0x5a));
    /* Too late to change the size now. */
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 32), -EBUSY);
    CHECK_EQ(host_size(e), 64);

    /* Many at once: distinct, non-overlapping, each initialised. */
    enum { N = 1000 };
    iocomp_overlapped *many[N];
    for (int i = 0; i < N; i++) {
        CHECK_OK(iocomp_overlapped_alloc(e, &many[i]));
        CHECK_EQ((uintptr_t)many[i] % 16, 0);
        CHECK(ext_is(many[i], 64, 0x5a));
        memset(iocomp_overlapped_ext(many[i]), i & 0xff, 64);
    }
    for (int i = 0; i < N; i++)
        CHECK_MSG(ext_is(many[i], 64, (unsigned char)(i & 0xff)), "overlapped %d overwritten", i);
    CHECK_EQ(atomic_load(&ic.calls), 1 + N);
    CHECK_EQ(atomic_load(&ic.not_zeroed), 0);
    /* Posted overlapped are opaque values: delivered as given. */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 1, many[7], 7));
    TEST_WAIT_COUNT(&ctr.calls, 1, 5000);
    CHECK(atomic_load(&ctr.last_ov) == many[7]);
    for (int i = 0; i < N; i++)
        iocomp_overlapped_free(many[i]);
    iocomp_overlapped_free(NULL);

    /* ---- init of caller memory */
    size_t osz = iocomp_overlapped_size(e);
    unsigned char *buf = aligned_alloc(16, (osz + 32 + 15) / 16 * 16);
    CHECK(buf != NULL);
    memset(buf, 0xee, osz + 32);
    uint64_t calls0 = atomic_load(&ic.calls);
    iocomp_overlapped *emb = (iocomp_overlapped *)buf;
    CHECK_OK(iocomp_overlapped_init(e, emb));
    CHECK_EQ(atomic_load(&ic.calls), calls0 + 1);
    CHECK(atomic_load(&ic.last_ov) == emb);
    CHECK_EQ(atomic_load(&ic.not_zeroed), 0);
    CHECK(ext_is(emb, 64, 0x5a));
    CHECK_EQ(buf[osz], 0xee); /* nothing written past iocomp_overlapped_size() */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 2, emb, 8));
    TEST_WAIT_COUNT(&ctr.calls, 2, 5000);
    CHECK(atomic_load(&ctr.last_ov) == emb);
    /* Misaligned or NULL: -EINVAL, the init callback not called, memory untouched. */
    memset(buf, 0xee, osz + 32);
    for (int off = 1; off < 16; off++) {
        CHECK_EQ(iocomp_overlapped_init(e, (iocomp_overlapped *)(buf + off)), -EINVAL);
    }
    for (size_t i = 0; i < osz + 32; i++)
        CHECK_EQ(buf[i], 0xee);
    CHECK_EQ(iocomp_overlapped_init(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_overlapped_init(NULL, emb), -EINVAL);
    CHECK_EQ(atomic_load(&ic.calls), calls0 + 1);

    /* ---- init failure propagates, both ways */
    atomic_store(&ic.fail, -ENOSPC);
    iocomp_overlapped *bad = (iocomp_overlapped *)(uintptr_t)1;
    CHECK_EQ(iocomp_overlapped_alloc(e, &bad), -ENOSPC);
    CHECK_EQ(iocomp_overlapped_init(e, emb), -ENOSPC);
    atomic_store(&ic.fail, -EPERM);
    CHECK_EQ(iocomp_overlapped_alloc(e, &bad), -EPERM);
    atomic_store(&ic.fail, 0);
    CHECK_OK(iocomp_overlapped_alloc(e, &bad));
    CHECK(ext_is(bad, 64, 0x5a));
    iocomp_overlapped_free(bad);
    iocomp_overlapped_free(ov);
    CHECK_EQ(iocomp_overlapped_alloc(e, NULL), -EINVAL);
    CHECK_EQ(iocomp_overlapped_alloc(NULL, &bad), -EINVAL);
    CHECK_OK(iocomp_engine_destroy(e));
    free(buf);

    /* ---- failed and successful allocations leak nothing (ASan checks in CI;
     * here: 64 KiB extensions, so a leak would show in RSS) */
    memset(&ic, 0, sizeof ic);
    e = make(&ic, 64 * 1024, NULL, NULL);
    uint64_t loops = test_scaled_min(20000, 2000);
    for (int warm = 0; warm < 100; warm++) {
        CHECK_OK(iocomp_overlapped_alloc(e, &ov));
        iocomp_overlapped_free(ov);
    }
    long rss0 = rss_kib();
    atomic_store(&ic.fail, -EIO);
    for (uint64_t i = 0; i < loops; i++)
        CHECK_EQ(iocomp_overlapped_alloc(e, &ov), -EIO);
    atomic_store(&ic.fail, 0);
    for (uint64_t i = 0; i < loops; i++) {
        CHECK_OK(iocomp_overlapped_alloc(e, &ov));
        iocomp_overlapped_free(ov);
    }
    long grown = rss_kib() - rss0;
    if (!SANITIZED)
        CHECK_MSG(grown < 64 * 1024, "RSS grew by %ld KiB over %" PRIu64 " x 2 allocations of 64 KiB",
                  grown, loops);
    CHECK_EQ(atomic_load(&ic.calls), 100 + 2 * loops);
    CHECK_OK(iocomp_engine_destroy(e));

    /* ---- the size is fixed by a port, or by a binding */
    e = make(NULL, 16, NULL, NULL);
    iocomp_port_t p;
    CHECK_OK(iocomp_port_create(e, &p));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 32), -EBUSY);
    CHECK_OK(iocomp_port_close(e, p));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 32), -EBUSY); /* fixed for good */
    CHECK_EQ(host_size(e), 16);
    CHECK_OK(iocomp_engine_destroy(e));
    e = make(NULL, 16, NULL, NULL);
    int fds[2];
    CHECK_OK(pipe(fds));
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, fds[0], 1));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 32), -EBUSY);
    CHECK_EQ(host_size(e), 16);
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_OK(close(fds[0]));
    CHECK_OK(close(fds[1]));

    /* ---- overlapped outlive the engine (freed after destroy, some allocated
     * on a worker, freed on another thread) */
    memset(&ic, 0, sizeof ic);
    e = make(&ic, 48, alloc_cb, NULL);
    worker_e = e;
    for (uintptr_t i = 0; i < WORKER_OVS; i++)
        CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, i));
    TEST_WAIT_COUNT(&worker_done, WORKER_OVS, 5000);
    CHECK_EQ(atomic_load(&ic.calls), WORKER_OVS);
    iocomp_overlapped *mine[100];
    for (int i = 0; i < 100; i++)
        CHECK_OK(iocomp_overlapped_alloc(e, &mine[i]));
    CHECK_OK(iocomp_engine_destroy(e));
    for (int i = 0; i < WORKER_OVS; i++) {
        CHECK(ext_is(worker_ovs[i], 48, 0x5a)); /* still valid memory */
        iocomp_overlapped_free(worker_ovs[i]);
    }
    for (int i = 0; i < 100; i++) {
        memset(iocomp_overlapped_ext(mine[i]), 1, 48);
        iocomp_overlapped_free(mine[i]);
    }
    test_end();
}
