/*
 * overlapped.c - request memory: header + host extension from a jemalloc
 * arena owned by the engine.
 *
 * Design
 * ------
 * Each engine takes an arena from a process-wide pool (arenas.create when
 * the pool is empty) and every worker binds itself to it (thread.arena), so
 * an overlapped allocated on a worker is mallocx(size, 0): jemalloc's
 * thread-cache fast path, with the worker's own automatic tcache filling from
 * the engine's arena. Host threads allocate with MALLOCX_ARENA(arena) through
 * their own automatic tcache. Frees are sdallocx(p, size, 0) on any thread
 * (sized: jemalloc skips the size-class lookup).
 *
 * The jemalloc is the library's own (CMakeLists.txt, "private jemalloc"):
 * Debian's libjemalloc_pic.a linked into libiocomp with every symbol made
 * local but three, renamed ioc_je_mallocx / ioc_je_sdallocx /
 * ioc_je_mallctl. So linking or loading libiocomp never replaces the host's
 * malloc/free (nor a jemalloc the host links itself: the two share no state,
 * though both read MALLOC_CONF from the environment), only overlapped memory
 * lives in these arenas, and binding a worker to the engine's arena
 * (thread.arena) redirects nothing of the host's: a callback's own malloc is
 * still the host's.
 *
 * Arenas are never destroyed: engine destroy returns its arena to the pool
 * for the next engine. Automatic tcaches mix arenas freely (a host thread's
 * cache may hold a freed overlapped of any engine's arena), so
 * arena.<i>.destroy could free memory another thread's cache still hands
 * out. Keeping the arena means an overlapped may outlive its engine with
 * nothing special to do (invariant 5: no arena torn down while a request
 * lives, trivially), and a thousand create/destroy cycles reuse the same
 * few arenas.
 *
 * Measured (bench/ovalloc.c, alloc+free of a 128+64-byte overlapped inside
 * a callback): explicit-tcache + MALLOCX_ARENA on every call was 25-26 ns
 * against 13.6 ns for mallocx/dallocx; jemalloc's flagged slow path was 39%
 * of the profile.
 *
 * Sanitizer builds (IOCOMP_SANITIZER_BUILD) use aligned_alloc/free instead,
 * so ASan sees use-after-free of an overlapped and TSan its hand-offs.
 *
 * The extension size
 * ------------------
 * e->ext_size may change (iocomp_set_host_overlapped_size) until it freezes,
 * and it freezes only when a call that makes a port, a binding or an
 * overlapped succeeds: a refused call leaves it settable (audit defect 10).
 * Ports and bindings do not use the size, so they freeze it after they
 * committed (port.c, io.c); a set that overlaps them is ordered before them.
 * An overlapped does use it, from the moment it reads it until its init
 * callback returns, and the callback runs without e->lock (it may call
 * iocomp back). So, before the size is frozen, alloc and init
 *   E1 read the size and count themselves into heap->ext_users under e->lock,
 *   E2 allocate, zero and run the init callback with that size, unlocked,
 *   E3 under e->lock again leave ext_users and, on success only, freeze.
 * iocomp_set_host_overlapped_size refuses (-EBUSY) while the size is frozen
 * or ext_users > 0, so the size never changes under an allocation that uses
 * it; once a failed one has left, the size is settable again. After the size
 * froze, alloc and init read ext_frozen (acquire, pairing with the release
 * store that froze it) and e->ext_size lock-free: it never changes again.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/request.h"

#if !defined(IOCOMP_SANITIZER_BUILD)
#include <jemalloc/jemalloc.h> /* MALLOCX_ARENA only: the functions are the private copy's */
/* The private jemalloc's entry points (objcopy-renamed mallocx, sdallocx,
 * mallctl; see the design note above). Hidden: they stay inside libiocomp,
 * also when libiocomp.a is linked into a program. */
#define IOC_JE_API __attribute__((visibility("hidden")))
IOC_JE_API void *ioc_je_mallocx(size_t size, int flags);
IOC_JE_API void ioc_je_sdallocx(void *ptr, size_t size, int flags);
IOC_JE_API int ioc_je_mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
#endif

#define OV_MAGIC 0x696f6376u      /* "iocv" */
#define OV_MAGIC_FREED 0x64656164u /* "dead" */

enum { OVF_ALLOCATED = 1, OVF_EMBEDDED = 2 };

/* The private view of iocomp_overlapped's bytes: core/request.h (magic,
 * flags, engine and size are ours; size of allocated ones is kept for sized
 * deallocation). */
#define ioc_ovh ioc_req

struct ioc_heap {
    unsigned arena;
    bool has_arena;
    /* Allocations and inits in progress that read the extension size before
     * it froze (under e->lock; see "The extension size" below). */
    uint32_t ext_users;
};

static inline struct ioc_ovh *hdr(iocomp_overlapped *ov) { return (struct ioc_ovh *)(void *)ov; }

#if !defined(IOCOMP_SANITIZER_BUILD)
/* The process-wide pool of arenas released by destroyed engines. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned *pool;
static size_t pool_n, pool_cap;
#endif

int ioc_heap_create(iocomp_engine *e) {
    struct ioc_heap *h = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : calloc(1, sizeof *h);
    if (!h) return -ENOMEM;
#if !defined(IOCOMP_SANITIZER_BUILD)
    pthread_mutex_lock(&pool_lock);
    if (pool_n) {
        h->arena = pool[--pool_n];
        h->has_arena = true;
    }
    pthread_mutex_unlock(&pool_lock);
    if (!h->has_arena) {
        size_t sz = sizeof h->arena;
        if (IOC_FAULT(IOCOMP_FAULT_ALLOC) || ioc_je_mallctl("arenas.create", &h->arena, &sz, NULL, 0) != 0) {
            free(h);
            return -ENOMEM;
        }
        h->has_arena = true;
    }
#endif
    e->heap = h;
    return 0;
}

/* At destroy, after every worker has exited: the arena goes back to the pool. */
void ioc_heap_release(iocomp_engine *e) {
    struct ioc_heap *h = e->heap;
    if (!h) return;
    e->heap = NULL;
#if !defined(IOCOMP_SANITIZER_BUILD)
    if (h->has_arena) {
        pthread_mutex_lock(&pool_lock);
        if (pool_n == pool_cap) {
            size_t nc = pool_cap ? pool_cap * 2 : 16;
            unsigned *np = realloc(pool, nc * sizeof *np);
            if (np) {
                pool = np;
                pool_cap = nc;
            }
        }
        if (pool_n < pool_cap) pool[pool_n++] = h->arena; /* else: kept, unused (no memory to remember it) */
        pthread_mutex_unlock(&pool_lock);
    }
#endif
    free(h);
}

/* On the worker's own thread, before its first callback. If jemalloc
 * refuses, the worker's overlapped come from its default arena instead:
 * slower to share, equally correct (nothing is ever torn down). */
void ioc_heap_worker_init(struct ioc_worker *w) {
#if !defined(IOCOMP_SANITIZER_BUILD)
    unsigned a = w->e->heap->arena;
    ioc_je_mallctl("thread.arena", NULL, NULL, &a, sizeof a);
#else
    (void)w;
#endif
}

static size_t ov_size_of(size_t ext) { return (IOCOMP_OVERLAPPED_HEADER_SIZE + ext + 15u) & ~(size_t)15u; }

/* E1: the extension size to use, and whether this call counted itself in
 * ext_users (then ext_end() must follow). Fast path once frozen: one
 * acquire load, pairing with the release store in ext_end() (or port.c's
 * ioc_freeze_ext / default_port), after which ext_size is never written. */
static size_t ext_begin(iocomp_engine *e, bool *counted) {
    *counted = false;
    if (ioc_likely(ioc_load(&e->ext_frozen, IOC_ACQUIRE))) return e->ext_size;
    pthread_mutex_lock(&e->lock);
    size_t ext = e->ext_size;
    if (!ioc_load(&e->ext_frozen, IOC_RELAXED)) { /* under e->lock, as every store to it */
        e->heap->ext_users++;
        *counted = true;
    }
    pthread_mutex_unlock(&e->lock);
    return ext;
}

/* E3: leaves ext_users; the size freezes only if the call succeeded. */
static void ext_end(iocomp_engine *e, bool counted, bool ok) {
    if (!counted) return;
    pthread_mutex_lock(&e->lock);
    e->heap->ext_users--;
    if (ok) ioc_store(&e->ext_frozen, true, IOC_RELEASE); /* pairs with ext_begin's acquire */
    pthread_mutex_unlock(&e->lock);
}

static void *raw_alloc(iocomp_engine *e, size_t size) {
    if (IOC_FAULT(IOCOMP_FAULT_ALLOC)) return NULL;
#if defined(IOCOMP_SANITIZER_BUILD)
    return aligned_alloc(16, size);
#else
    if (ioc_self_in(e)) return ioc_je_mallocx(size, 0); /* bound to the engine's arena */
    return ioc_je_mallocx(size, MALLOCX_ARENA(e->heap->arena));
#endif
}

/* Sized deallocation: jemalloc skips looking the size class up. */
static void raw_free(void *p, size_t size) {
#if defined(IOCOMP_SANITIZER_BUILD)
    (void)size;
    free(p);
#else
    ioc_je_sdallocx(p, size, 0);
#endif
}

static int run_init(iocomp_engine *e, iocomp_overlapped *ov, size_t ext) {
    if (!e->ov_init) return 0;
    int r = e->ov_init(e->ov_init_ctx, ov, iocomp_overlapped_ext(ov), ext);
    return r > 0 ? -r : r; /* a host returning +errno still fails */
}

static int ov_alloc(iocomp_engine *e, size_t ext, iocomp_overlapped **out) {
    size_t size = ov_size_of(ext);
    iocomp_overlapped *ov = raw_alloc(e, size);
    if (!ov) return -ENOMEM;
    /* The header is iocomp's: only its used fields are written. The
     * extension is zeroed before the host's init sees it. */
    memset(iocomp_overlapped_ext(ov), 0, size - IOCOMP_OVERLAPPED_HEADER_SIZE);
    struct ioc_ovh *o = hdr(ov);
    o->magic = OV_MAGIC;
    o->flags = OVF_ALLOCATED;
    o->engine = e;
    o->size = size;
    ioc_store(&o->state, REQ_IDLE, IOC_RELAXED); /* published with the pointer */
    /* Not issued anywhere: what a cancel reads between a first submit's
     * claim and its own store of it (request.h, `ring`). */
    ioc_store(&o->ring, IOC_RING_NONE, IOC_RELAXED);
    int r = run_init(e, ov, ext);
    if (r < 0) {
        o->magic = OV_MAGIC_FREED;
        raw_free(ov, size);
        return r;
    }
    *out = ov;
    return 0;
}

IOCOMP_API int iocomp_overlapped_alloc(iocomp_engine *e, iocomp_overlapped **out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    bool counted;
    size_t ext = ext_begin(e, &counted);
    int r = ov_alloc(e, ext, out);
    ext_end(e, counted, r == 0);
    return r;
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
    raw_free(ov, o->size);
}

IOCOMP_API int iocomp_overlapped_init(iocomp_engine *e, iocomp_overlapped *ov) {
    if (!e || !ov || ((uintptr_t)ov & 15u)) return -EINVAL;
    IOC_FORK_GUARD(e);
    bool counted;
    size_t ext = ext_begin(e, &counted);
    memset(ov, 0, ov_size_of(ext));
    struct ioc_ovh *o = hdr(ov);
    o->magic = OV_MAGIC;
    o->flags = OVF_EMBEDDED;
    o->engine = e;
    ioc_store(&o->ring, IOC_RING_NONE, IOC_RELAXED); /* as in ov_alloc: zero would name ring 0 */
    int r = run_init(e, ov, ext);
    if (r < 0) o->magic = 0;
    ext_end(e, counted, r == 0);
    return r;
}

IOCOMP_API size_t iocomp_overlapped_size(iocomp_engine *e) {
    if (!e || ioc_forked(e)) return 0; /* a child of fork(): its lock may be held forever */
    if (ioc_likely(ioc_load(&e->ext_frozen, IOC_ACQUIRE))) return ov_size_of(e->ext_size);
    pthread_mutex_lock(&e->lock); /* still settable: read it as set_host_overlapped_size wrote it */
    size_t s = ov_size_of(e->ext_size);
    pthread_mutex_unlock(&e->lock);
    return s;
}

IOCOMP_API int iocomp_get_host_overlapped_size(iocomp_engine *e, size_t *out) {
    if (!e || !out) return -EINVAL;
    IOC_FORK_GUARD(e);
    pthread_mutex_lock(&e->lock);
    *out = e->ext_size;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

IOCOMP_API int iocomp_set_host_overlapped_size(iocomp_engine *e, size_t size) {
    if (!e) return -EINVAL;
    IOC_FORK_GUARD(e);
    if (size > IOCOMP_HOST_OVERLAPPED_LIMIT) return -ERANGE;
    int r = 0;
    pthread_mutex_lock(&e->lock);
    /* Frozen, or an alloc/init is using the size right now (E1-E3). */
    if (ioc_load(&e->ext_frozen, IOC_RELAXED) || e->heap->ext_users) r = -EBUSY;
    else e->ext_size = size;
    pthread_mutex_unlock(&e->lock);
    return r;
}

/* The exported function behind the header's inline macro (a P/Invoke host
 * cannot inline it). */
IOCOMP_API void *(iocomp_overlapped_ext)(iocomp_overlapped *ov) { return iocomp_overlapped_ext_inline_(ov); }
