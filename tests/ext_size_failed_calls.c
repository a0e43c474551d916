/*
 * ext_size_failed_calls: a call that fails does not fix the host overlapped
 * size (audit defect 10). iocomp_overlapped_alloc() and _init() whose init
 * callback fails, the hosting InitializeHostOverlapped() returning that
 * failure, an alloc refused with -ENOMEM (fault-injection builds), binds
 * refused before any port exists: afterwards iocomp_set_host_overlapped_size()
 * still succeeds and the next overlapped gets the new size. While an alloc is
 * inside its init callback (on another thread, or from the callback itself)
 * a set is refused with -EBUSY and the allocation keeps the size it started
 * with; a failed one leaves the size settable again, a successful one fixes
 * it. (Ports refused with -ENOMEM: fault_ext_size_port.)
 */
#include "test.h"

#include <stdalign.h>

#include <iocomp/hosting.h>

#include "test_clr.h"
#if defined(IOCOMP_FAULT_INJECTION)
#include <iocomp/testing.h>
#endif

struct init_ctx {
    atomic_int fail;          /* returned by the callback (0: success) */
    atomic_int block;         /* 1: wait in the callback until released */
    atomic_int entered;       /* callbacks that started */
    atomic_int release;       /* set by the test to let a blocked callback go */
    atomic_size_t last_size;  /* ext_size the callback saw */
    atomic_int set_from_cb;   /* 1: call set_host_overlapped_size from the callback */
    atomic_int set_rc;        /* ... and its result */
    iocomp_engine *e;
};

static int init_cb(void *ctx, iocomp_overlapped *ov, void *ext, size_t ext_size) {
    struct init_ctx *c = ctx;
    (void)ov;
    atomic_store(&c->last_size, ext_size);
    memset(ext, 0x5a, ext_size); /* the host's own initialisation: all of it is ours */
    atomic_fetch_add(&c->entered, 1);
    if (atomic_load(&c->set_from_cb))
        atomic_store(&c->set_rc, iocomp_set_host_overlapped_size(c->e, 8));
    if (atomic_load(&c->block))
        CHECK(TEST_WAIT_UNTIL(atomic_load(&c->release), 10000));
    return atomic_load(&c->fail);
}

static iocomp_engine *make(struct init_ctx *ic, size_t host) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 2;
    cfg.host_overlapped_size = host;
    cfg.overlapped_init = init_cb;
    cfg.overlapped_init_ctx = ic;
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    ic->e = e;
    return e;
}

static size_t host_size(iocomp_engine *e) {
    size_t s = 12345;
    CHECK_OK(iocomp_get_host_overlapped_size(e, &s));
    return s;
}

/* The size is still settable: set it to `to` and see it take effect. */
static void check_settable(iocomp_engine *e, size_t to) {
    CHECK_EQ(iocomp_set_host_overlapped_size(e, to), 0);
    CHECK_EQ(host_size(e), to);
    CHECK(iocomp_overlapped_size(e) >= IOCOMP_OVERLAPPED_HEADER_SIZE + to);
}

/* An alloc on its own thread (its init callback may block). */
struct alloc_job {
    iocomp_engine *e;
    iocomp_overlapped *ov;
    int rc;
};
static void *alloc_thread(void *arg) {
    struct alloc_job *j = arg;
    j->rc = iocomp_overlapped_alloc(j->e, &j->ov);
    return NULL;
}

int main(void) {
    test_begin("ext_size_failed_calls", 0);
    static struct init_ctx ic;
    iocomp_engine *e = make(&ic, 16);

    /* 1. alloc whose init callback fails (negative and positive errno). */
    atomic_store(&ic.fail, -EIO);
    iocomp_overlapped *ov = (iocomp_overlapped *)(uintptr_t)0x1;
    CHECK_EQ(iocomp_overlapped_alloc(e, &ov), -EIO);
    CHECK(ov == (iocomp_overlapped *)(uintptr_t)0x1); /* untouched */
    CHECK_EQ(atomic_load(&ic.last_size), 16);
    check_settable(e, 32);
    atomic_store(&ic.fail, ENOSPC);
    CHECK_EQ(iocomp_overlapped_alloc(e, &ov), -ENOSPC);
    CHECK_EQ(atomic_load(&ic.last_size), 32);
    check_settable(e, 48);

    /* 2. iocomp_overlapped_init on caller memory, init failing. */
    static alignas(16) unsigned char buf[IOCOMP_OVERLAPPED_HEADER_SIZE + 4096];
    atomic_store(&ic.fail, -EPERM);
    CHECK_EQ(iocomp_overlapped_init(e, (iocomp_overlapped *)(void *)buf), -EPERM);
    CHECK_EQ(atomic_load(&ic.last_size), 48);
    check_settable(e, 64);

    /* 3. the hosting face: InitializeHostOverlapped returning the failure. */
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    CHECK_EQU(m->lpVtbl->InitializeHostOverlapped(m, buf), HOST_E_NOT_OWNER); /* -EPERM */
    DWORD d = 0;
    CHECK_EQU(m->lpVtbl->GetHostOverlappedSize(m, &d), S_OK);
    CHECK_EQ(d, 64);
    check_settable(e, 80);
    CHECK_EQU(m->lpVtbl->GetHostOverlappedSize(m, &d), S_OK);
    CHECK_EQ(d, 80);

    /* 4. binds refused before any port exists. */
    int pfd[2];
    CHECK_OK(pipe(pfd));
    CHECK_EQ(iocomp_bind(e, IOCOMP_DEFAULT_PORT, -1, 0), -EBADF);
    CHECK_EQ(iocomp_bind(e, (iocomp_port_t)1 << 32 | 7, pfd[0], 0), -EBADF); /* never created */
    check_settable(e, 96);

#if defined(IOCOMP_FAULT_INJECTION)
    /* 5. alloc refused for want of memory (the allocation itself fails). */
    atomic_store(&ic.fail, 0);
    int before = atomic_load(&ic.entered);
    iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 1);
    int rc = iocomp_overlapped_alloc(e, &ov);
    uint64_t inj = iocomp_fault_injected(IOCOMP_FAULT_ALLOC);
    iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 0);
    CHECK_EQ(rc, -ENOMEM);
    CHECK_EQ(inj, 1);
    CHECK_EQ(atomic_load(&ic.entered), before); /* no init for what was not allocated */
    check_settable(e, 112);
#endif

    /* 6. a set racing an alloc that is inside its init callback: refused,
     * and the allocation keeps its size; it fails, so the size is settable
     * again after it. */
    check_settable(e, 128);
    atomic_store(&ic.fail, -EIO);
    atomic_store(&ic.block, 1);
    atomic_store(&ic.release, 0);
    int n0 = atomic_load(&ic.entered);
    struct alloc_job j = {.e = e};
    pthread_t t = test_thread(alloc_thread, &j);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&ic.entered) == n0 + 1, 10000));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 256), -EBUSY);
    CHECK_EQ(host_size(e), 128);
    CHECK(iocomp_overlapped_size(e) == (IOCOMP_OVERLAPPED_HEADER_SIZE + 128));
    atomic_store(&ic.release, 1);
    test_join(t);
    CHECK_EQ(j.rc, -EIO);
    CHECK_EQ(atomic_load(&ic.last_size), 128);
    check_settable(e, 144);

    /* 7. the same from inside the callback itself. */
    atomic_store(&ic.block, 0);
    atomic_store(&ic.set_from_cb, 1);
    atomic_store(&ic.set_rc, 1);
    CHECK_EQ(iocomp_overlapped_alloc(e, &ov), -EIO);
    CHECK_EQ(atomic_load(&ic.set_rc), -EBUSY);
    CHECK_EQ(host_size(e), 144);
    atomic_store(&ic.set_from_cb, 0);
    check_settable(e, 160);

    /* 8. a racing set while an alloc that succeeds is in its callback: refused;
     * the overlapped has the size it started with, and that size is fixed. */
    atomic_store(&ic.fail, 0);
    atomic_store(&ic.block, 1);
    atomic_store(&ic.release, 0);
    n0 = atomic_load(&ic.entered);
    j = (struct alloc_job){.e = e};
    t = test_thread(alloc_thread, &j);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&ic.entered) == n0 + 1, 10000));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 8), -EBUSY);
    atomic_store(&ic.release, 1);
    test_join(t);
    CHECK_OK(j.rc);
    CHECK_EQ(atomic_load(&ic.last_size), 160);
    const unsigned char *x = iocomp_overlapped_ext(j.ov);
    for (size_t i = 0; i < 160; i++)
        CHECK_EQ(x[i], 0x5a);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 8), -EBUSY); /* an overlapped exists */
    CHECK_EQ(host_size(e), 160);
    CHECK_EQ(iocomp_overlapped_size(e), IOCOMP_OVERLAPPED_HEADER_SIZE + 160);
    iocomp_overlapped_free(j.ov);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 8), -EBUSY); /* fixed for good */

    iocomp_hosting_release(m);
    CHECK_OK(iocomp_engine_destroy(e));

    /* 9. a fresh engine: a successful embedded init fixes the size too. */
    atomic_store(&ic.block, 0);
    e = make(&ic, 16);
    CHECK_OK(iocomp_overlapped_init(e, (iocomp_overlapped *)(void *)buf));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 32), -EBUSY);
    CHECK_OK(iocomp_engine_destroy(e));

    close(pfd[0]);
    close(pfd[1]);
    test_end();
}
