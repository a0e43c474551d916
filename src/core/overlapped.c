/*
 * overlapped.c - request memory: header + host extension from a jemalloc
 * arena owned by the engine.
 *
 * Design
 * ------
 * Each engine creates its own arena (arenas.create) at engine creation. Every
 * allocation names both that arena and an explicit thread cache
 * (tcache.create): a worker owns one tcache, used only on its own thread, so
 * its alloc/free is jemalloc's thread-cache fast path; host threads share a
 * small set of striped caches, each under a spinlock (an explicit tcache may
 * be used by one thread at a time). Frees of an engine's overlapped go
 * through the freeing thread's cache of the same engine, so those caches only
 * ever hold memory of the engine's arena, which makes tearing it down exact:
 * destroy the tcaches (their contents return to the arena), then the arena.
 * (Binding workers with thread.arena would be as fast, but would also move
 * the host's own mallocs inside callbacks into the arena, and destroying the
 * arena would then free host memory.)
 *
 * Live count: allocations minus frees, kept per worker and per stripe by
 * whoever owns that counter (no shared atomic on the fast path); their sum is
 * exact once the engine is quiescent (destroy). If overlapped are still live
 * at destroy, the heap is *orphaned*: caches are destroyed, later frees go
 * straight to the arena (MALLOCX_TCACHE_NONE) and count down orphan_live; the
 * last one destroys the arena and the heap (invariant 5: no arena torn down
 * while a request lives).
 *
 * Sanitizer builds (IOCOMP_SANITIZER_BUILD) use aligned_alloc/free instead,
 * so ASan sees use-after-free of an overlapped and TSan its hand-offs.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

#if !defined(IOCOMP_SANITIZER_BUILD)
#include <jemalloc/jemalloc.h>
#endif

#define OV_MAGIC 0x696f6376u      /* "iocv" */
#define OV_MAGIC_FREED 0x64656164u /* "dead" */
#define HEAP_STRIPES 8u

enum { OVF_ALLOCATED = 1, OVF_EMBEDDED = 2 };

/* The private view of iocomp_overlapped's bytes. */
struct ioc_ovh {
    uint32_t magic;
    uint32_t flags;
    struct ioc_heap *heap; /* allocated ones: where to free */
    iocomp_engine *engine;
};
_Static_assert(sizeof(struct ioc_ovh) <= IOCOMP_OVERLAPPED_HEADER_SIZE, "header fits");

struct ioc_stripe {
    alignas(IOC_CACHELINE) pthread_spinlock_t lock;
    unsigned tcache;
    bool has_tcache;
    int64_t live;
};

struct ioc_heap {
    unsigned arena;
    bool has_arena;
    size_t size; /* header + extension, rounded to 16 */
    ioc_atomic(bool) orphaned;
    ioc_atomic(int64_t) orphan_live;
    struct ioc_stripe stripes[HEAP_STRIPES];
};

static inline struct ioc_ovh *hdr(iocomp_overlapped *ov) { return (struct ioc_ovh *)(void *)ov; }

#if !defined(IOCOMP_SANITIZER_BUILD)
static int mallctl_unsigned(const char *name, unsigned *out) {
    size_t sz = sizeof *out;
    if (IOC_FAULT(IOCOMP_FAULT_ALLOC)) return -ENOMEM;
    return mallctl(name, out, &sz, NULL, 0) == 0 ? 0 : -ENOMEM;
}
static void tcache_destroy(unsigned tc) {
    mallctl("tcache.destroy", NULL, NULL, &tc, sizeof tc);
}
#endif

int ioc_heap_create(iocomp_engine *e) {
    struct ioc_heap *h = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : aligned_alloc(IOC_CACHELINE, sizeof *h);
    if (!h) return -ENOMEM;
    memset(h, 0, sizeof *h);
    for (unsigned i = 0; i < HEAP_STRIPES; i++) pthread_spin_init(&h->stripes[i].lock, PTHREAD_PROCESS_PRIVATE);
#if !defined(IOCOMP_SANITIZER_BUILD)
    if (mallctl_unsigned("arenas.create", &h->arena) < 0) {
        free(h);
        return -ENOMEM;
    }
    h->has_arena = true;
#endif
    e->heap = h;
    return 0;
}

static void heap_free_all(struct ioc_heap *h) {
#if !defined(IOCOMP_SANITIZER_BUILD)
    for (unsigned i = 0; i < HEAP_STRIPES; i++)
        if (h->stripes[i].has_tcache) tcache_destroy(h->stripes[i].tcache);
    if (h->has_arena) {
        char name[64];
        snprintf(name, sizeof name, "arena.%u.destroy", h->arena);
        mallctl(name, NULL, NULL, NULL, 0);
    }
#endif
    for (unsigned i = 0; i < HEAP_STRIPES; i++) pthread_spin_destroy(&h->stripes[i].lock);
    free(h);
}

int ioc_heap_worker_init(struct ioc_worker *w) {
#if !defined(IOCOMP_SANITIZER_BUILD)
    if (mallctl_unsigned("tcache.create", &w->tcache) < 0) return -ENOMEM;
    w->has_tcache = true;
#endif
    return 0;
}

void ioc_heap_worker_fini(struct ioc_worker *w) {
#if !defined(IOCOMP_SANITIZER_BUILD)
    if (w->has_tcache) tcache_destroy(w->tcache);
#endif
    w->has_tcache = false;
}

/* At destroy, after every worker has exited: free the heap, or orphan it. */
void ioc_heap_release(iocomp_engine *e) {
    struct ioc_heap *h = e->heap;
    if (!h) return;
    int64_t live = 0;
    for (uint32_t i = 0; i < IOCOMP_THREADS_LIMIT; i++) {
        struct ioc_worker *w = ioc_load(&e->workers[i], IOC_RELAXED);
        if (w) live += ioc_load(&w->ov_live, IOC_RELAXED);
    }
    for (unsigned i = 0; i < HEAP_STRIPES; i++) live += h->stripes[i].live;
    e->heap = NULL;
    if (live <= 0) {
        heap_free_all(h);
        return;
    }
#if !defined(IOCOMP_SANITIZER_BUILD)
    for (unsigned i = 0; i < HEAP_STRIPES; i++) {
        if (h->stripes[i].has_tcache) tcache_destroy(h->stripes[i].tcache);
        h->stripes[i].has_tcache = false;
    }
#endif
    ioc_store(&h->orphan_live, live, IOC_RELAXED);
    /* Release: a later free (on any thread, ordered after destroy by the
     * host) that reads orphaned sees orphan_live. */
    ioc_store(&h->orphaned, true, IOC_RELEASE);
}

static size_t ov_size(iocomp_engine *e) {
    return (IOCOMP_OVERLAPPED_HEADER_SIZE + e->ext_size + 15u) & ~(size_t)15u;
}

static void *raw_alloc(iocomp_engine *e, size_t size) {
    struct ioc_heap *h = e->heap;
    if (IOC_FAULT(IOCOMP_FAULT_ALLOC)) return NULL;
#if defined(IOCOMP_SANITIZER_BUILD)
    void *p = aligned_alloc(16, size);
    struct ioc_worker *w = ioc_self_in(e);
    if (p) {
        if (w) {
            ioc_owner_inc(&w->ov_live, 1);
        } else {
            struct ioc_stripe *s = &h->stripes[(uintptr_t)pthread_self() % HEAP_STRIPES];
            pthread_spin_lock(&s->lock);
            s->live++;
            pthread_spin_unlock(&s->lock);
        }
    }
    return p;
#else
    struct ioc_worker *w = ioc_self_in(e);
    void *p;
    if (w) {
        p = mallocx(size, MALLOCX_ARENA(h->arena) | MALLOCX_TCACHE(w->tcache));
        if (p) ioc_owner_inc(&w->ov_live, 1);
        return p;
    }
    struct ioc_stripe *s = &h->stripes[((uintptr_t)pthread_self() >> 12) % HEAP_STRIPES];
    pthread_spin_lock(&s->lock);
    if (!s->has_tcache) {
        size_t sz = sizeof s->tcache;
        s->has_tcache = mallctl("tcache.create", &s->tcache, &sz, NULL, 0) == 0;
    }
    p = mallocx(size, MALLOCX_ARENA(h->arena) |
                          (s->has_tcache ? MALLOCX_TCACHE(s->tcache) : MALLOCX_TCACHE_NONE));
    if (p) s->live++;
    pthread_spin_unlock(&s->lock);
    return p;
#endif
}

static void raw_free(struct ioc_heap *h, iocomp_engine *e, void *p) {
    if (ioc_load(&h->orphaned, IOC_ACQUIRE)) {
#if defined(IOCOMP_SANITIZER_BUILD)
        free(p);
#else
        dallocx(p, MALLOCX_TCACHE_NONE);
#endif
        /* acq_rel: the last free sees every other free before it tears down. */
        if (ioc_fetch_sub(&h->orphan_live, 1, IOC_ACQ_REL) == 1) heap_free_all(h);
        return;
    }
    struct ioc_worker *w = ioc_self_in(e);
#if defined(IOCOMP_SANITIZER_BUILD)
    free(p);
    if (w) {
        ioc_owner_inc(&w->ov_live, -1);
    } else {
        struct ioc_stripe *s = &h->stripes[(uintptr_t)pthread_self() % HEAP_STRIPES];
        pthread_spin_lock(&s->lock);
        s->live--;
        pthread_spin_unlock(&s->lock);
    }
#else
    if (w) {
        dallocx(p, MALLOCX_TCACHE(w->tcache));
        ioc_owner_inc(&w->ov_live, -1);
        return;
    }
    struct ioc_stripe *s = &h->stripes[((uintptr_t)pthread_self() >> 12) % HEAP_STRIPES];
    pthread_spin_lock(&s->lock);
    dallocx(p, s->has_tcache ? MALLOCX_TCACHE(s->tcache) : MALLOCX_TCACHE_NONE);
    s->live--;
    pthread_spin_unlock(&s->lock);
#endif
}

static int run_init(iocomp_engine *e, iocomp_overlapped *ov) {
    if (!e->ov_init) return 0;
    int r = e->ov_init(e->ov_init_ctx, ov, iocomp_overlapped_ext(ov), e->ext_size);
    return r > 0 ? -r : r; /* a host returning +errno still fails */
}

IOCOMP_API int iocomp_overlapped_alloc(iocomp_engine *e, iocomp_overlapped **out) {
    if (!e || !out) return -EINVAL;
    ioc_freeze_ext(e);
    size_t size = ov_size(e);
    iocomp_overlapped *ov = raw_alloc(e, size);
    if (!ov) return -ENOMEM;
    memset(ov, 0, size);
    struct ioc_ovh *o = hdr(ov);
    o->magic = OV_MAGIC;
    o->flags = OVF_ALLOCATED;
    o->heap = e->heap;
    o->engine = e;
    int r = run_init(e, ov);
    if (r < 0) {
        o->magic = OV_MAGIC_FREED;
        raw_free(e->heap, e, ov);
        return r;
    }
    *out = ov;
    return 0;
}

IOCOMP_API void iocomp_overlapped_free(iocomp_overlapped *ov) {
    if (!ov) return;
    struct ioc_ovh *o = hdr(ov);
    if (o->magic != OV_MAGIC || !(o->flags & OVF_ALLOCATED)) {
        if (o->magic == OV_MAGIC && (o->flags & OVF_EMBEDDED)) return; /* caller's memory */
        fprintf(stderr, "iocomp: iocomp_overlapped_free(%p): not a live overlapped from "
                        "iocomp_overlapped_alloc (double free?)\n", (void *)ov);
        abort();
    }
    o->magic = OV_MAGIC_FREED;
    raw_free(o->heap, o->engine, ov);
}

IOCOMP_API int iocomp_overlapped_init(iocomp_engine *e, iocomp_overlapped *ov) {
    if (!e || !ov || ((uintptr_t)ov & 15u)) return -EINVAL;
    ioc_freeze_ext(e);
    memset(ov, 0, ov_size(e));
    struct ioc_ovh *o = hdr(ov);
    o->magic = OV_MAGIC;
    o->flags = OVF_EMBEDDED;
    o->engine = e;
    int r = run_init(e, ov);
    if (r < 0) o->magic = 0;
    return r;
}

IOCOMP_API size_t iocomp_overlapped_size(iocomp_engine *e) { return e ? ov_size(e) : 0; }

IOCOMP_API int iocomp_get_host_overlapped_size(iocomp_engine *e, size_t *out) {
    if (!e || !out) return -EINVAL;
    pthread_mutex_lock(&e->lock);
    *out = e->ext_size;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

IOCOMP_API int iocomp_set_host_overlapped_size(iocomp_engine *e, size_t size) {
    if (!e) return -EINVAL;
    if (size > IOCOMP_HOST_OVERLAPPED_LIMIT) return -ERANGE;
    int r = 0;
    pthread_mutex_lock(&e->lock);
    if (ioc_load(&e->ext_frozen, IOC_RELAXED)) r = -EBUSY;
    else e->ext_size = size;
    pthread_mutex_unlock(&e->lock);
    return r;
}
