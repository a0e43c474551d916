/*
 * malloc_hygiene (issue #14 item 1): linking libiocomp leaves the host's
 * allocator alone, and the overlapped still come from jemalloc.
 *
 * Built twice: against libiocomp.so (malloc_hygiene) and libiocomp.a
 * (malloc_hygiene.static). In both:
 *   1. malloc, free, calloc, realloc, posix_memalign, aligned_alloc and
 *      malloc_usable_size, as the dynamic linker resolves them for the whole
 *      process (RTLD_DEFAULT), are glibc's own (the libc.so.6 definitions);
 *   2. none of jemalloc's API names (mallocx, sdallocx, dallocx, mallctl,
 *      nallocx, rallocx) can be found in the process: libiocomp's jemalloc
 *      is private and cannot interpose a host's, nor be interposed by one;
 *   3. overlapped memory does not come from the host's malloc: 4096
 *      overlapped with a 256-byte extension, allocated on a host thread and
 *      inside a callback, leave glibc's in-use bytes (mallinfo2) grown by
 *      less than a tenth of what they occupy (mutant: an overlapped.c that
 *      used malloc grows them by all of it);
 *   4. a callback's own malloc is still glibc's (binding the worker to the
 *      engine's jemalloc arena redirects nothing of the host's): 4096
 *      mallocs of 256 bytes in a callback grow glibc's in-use bytes by at
 *      least that much.
 * Sanitizer builds skip: there the sanitizer owns malloc by design and
 * iocomp has no jemalloc (overlapped.c, "Sanitizer builds").
 */
#include "test.h"

#include <dlfcn.h>
#include <malloc.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

enum { N = 4096, EXT = 256 };

static iocomp_overlapped *ovs[N];
static void *blocks[N];
static atomic_int phase_done;
static size_t in_cb_delta_ov, in_cb_delta_malloc;

static size_t glibc_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static size_t grown(size_t before, size_t after) { return after > before ? after - before : 0; }

/* Inside a callback (a worker): phase 1 allocates overlapped, phase 2 the
 * host's own blocks; each measures glibc's growth around itself. */
static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                        uintptr_t key) {
    iocomp_engine *e = ctx;
    if (status == 1) {
        size_t before = glibc_in_use();
        for (int i = 0; i < N; i++) CHECK_OK(iocomp_overlapped_alloc(e, &ovs[i]));
        in_cb_delta_ov = grown(before, glibc_in_use());
        for (int i = 0; i < N; i++) iocomp_overlapped_free(ovs[i]);
    } else {
        size_t before = glibc_in_use();
        for (int i = 0; i < N; i++) CHECK((blocks[i] = malloc(EXT)) != NULL);
        in_cb_delta_malloc = grown(before, glibc_in_use());
        for (int i = 0; i < N; i++) free(blocks[i]);
    }
    atomic_fetch_add(&phase_done, 1);
}

int main(void) {
    test_begin("malloc_hygiene", IOCOMP_TEST_TIMEOUT);
#ifdef SANITIZED
    test_skip("sanitizer build: the sanitizer owns malloc and iocomp has no jemalloc");
#endif
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    CHECK_MSG(libc != NULL, "libc.so.6 not loaded? %s", dlerror());

    /* 1. The process's allocator entry points are glibc's. */
    static const char *const own[] = {"malloc",        "free",          "calloc",            "realloc",
                                      "posix_memalign", "aligned_alloc", "malloc_usable_size"};
    for (size_t i = 0; i < sizeof own / sizeof *own; i++) {
        void *seen = dlsym(RTLD_DEFAULT, own[i]), *glibc = dlsym(libc, own[i]);
        Dl_info where = {0};
        if (seen) dladdr(seen, &where);
        CHECK_MSG(seen == glibc, "%s resolves to %p in %s, not glibc's %p", own[i], seen,
                  where.dli_fname ? where.dli_fname : "?", glibc);
    }
    /* 2. No jemalloc API is visible to (or from) the host. */
    static const char *const je[] = {"mallocx", "sdallocx", "dallocx", "mallctl", "nallocx", "rallocx"};
    for (size_t i = 0; i < sizeof je / sizeof *je; i++) {
        void *seen = dlsym(RTLD_DEFAULT, je[i]);
        Dl_info where = {0};
        if (seen) dladdr(seen, &where);
        CHECK_MSG(seen == NULL, "%s is visible in the process (from %s)", je[i],
                  where.dli_fname ? where.dli_fname : "?");
    }

    iocomp_config cfg = test_config(1, 1, NULL, NULL);
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK_OK(iocomp_set_completion_manager(e, on_complete, e));
    CHECK_OK(iocomp_set_host_overlapped_size(e, EXT));
    const size_t occupies = (size_t)N * (IOCOMP_OVERLAPPED_HEADER_SIZE + EXT);

    /* 3. On a host thread. */
    size_t before = glibc_in_use();
    for (int i = 0; i < N; i++) CHECK_OK(iocomp_overlapped_alloc(e, &ovs[i]));
    size_t host_delta = grown(before, glibc_in_use());
    for (int i = 0; i < N; i++) iocomp_overlapped_free(ovs[i]);
    CHECK_MSG(host_delta < occupies / 10, "host-thread overlapped grew glibc's heap by %zu of %zu bytes",
              host_delta, occupies);

    /* 3 and 4 inside a callback, one after the other. */
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 1, 0, NULL, 0));
    TEST_WAIT_UNTIL(atomic_load(&phase_done) == 1, 10000);
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 2, 0, NULL, 0));
    TEST_WAIT_UNTIL(atomic_load(&phase_done) == 2, 10000);
    CHECK_MSG(in_cb_delta_ov < occupies / 10, "callback overlapped grew glibc's heap by %zu of %zu bytes",
              in_cb_delta_ov, occupies);
    CHECK_MSG(in_cb_delta_malloc >= (size_t)N * EXT,
              "a callback's %d mallocs of %d bytes grew glibc's heap by only %zu bytes", N, EXT,
              in_cb_delta_malloc);

    CHECK_OK(iocomp_engine_destroy(e));
    printf("malloc_hygiene: glibc heap growth: %zu (host overlapped), %zu (callback overlapped), "
           "%zu (callback malloc) bytes for %zu bytes of overlapped\n",
           host_delta, in_cb_delta_ov, in_cb_delta_malloc, occupies);
    test_end();
}
