/*
 * atomic.h - the one seam for atomics in iocomp (over <stdatomic.h>).
 *
 * Every atomic operation in the library goes through these macros, so that a
 * sanitizer or model-checking build has one place to change. Each use in the
 * code says what it publishes and which operation it pairs with.
 *
 * ck_ring is the exception by design: its indices are ck_pr operations
 * (inline assembly on x86-64, or __sync builtins when CK_USE_CC_BUILTINS=1,
 * which the ThreadSanitizer build sets). The hand-off of each packet through
 * a ck_ring is annotated for TSan with ioc_tsan_release()/ioc_tsan_acquire()
 * (see queue.c), so TSan still checks the memory a request carries.
 */
#ifndef IOCOMP_CORE_ATOMIC_H
#define IOCOMP_CORE_ATOMIC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define ioc_atomic(T) _Atomic(T)

#define IOC_RELAXED memory_order_relaxed
#define IOC_ACQUIRE memory_order_acquire
#define IOC_RELEASE memory_order_release
#define IOC_ACQ_REL memory_order_acq_rel
#define IOC_SEQ_CST memory_order_seq_cst

#define ioc_load(p, mo) atomic_load_explicit((p), (mo))
#define ioc_store(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define ioc_fetch_add(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define ioc_fetch_sub(p, v, mo) atomic_fetch_sub_explicit((p), (v), (mo))
#define ioc_fetch_or(p, v, mo) atomic_fetch_or_explicit((p), (v), (mo))
#define ioc_xchg(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
/* Strong CAS; *expected is updated on failure. */
#define ioc_cas(p, expected, desired, mo_ok, mo_fail)                                             \
    atomic_compare_exchange_strong_explicit((p), (expected), (desired), (mo_ok), (mo_fail))
#define ioc_fence(mo) atomic_thread_fence(mo)
/* Loads of words that another party declares plainly but updates with
 * atomics (a kernel-shared ring's head and tail, liburing's fields). */
#define ioc_load_raw(p, mo) __atomic_load_n((p), (mo))

/*
 * A full (StoreLoad) barrier, for the Dekker pairs (park.c, scale.c).
 * On x86-64, GCC emits MFENCE for atomic_thread_fence(seq_cst); a locked
 * no-op RMW on the stack is an equally full barrier for ordinary memory
 * accesses and cheaper (what Linux's smp_mb() uses since 4.15). The
 * ThreadSanitizer does not model fences (GCC rejects atomic_thread_fence
 * under -fsanitize=thread): that build uses a seq_cst RMW on a local, a real
 * barrier for the hardware that adds no synchronisation TSan would believe.
 * The data each Dekker pair protects is published by atomics or ck_ring
 * hand-offs that TSan sees, so nothing is hidden from it.
 */
#if defined(IOCOMP_TSAN)
#define ioc_fence_full()                                                                          \
    do {                                                                                          \
        ioc_atomic(int) ioc_fence_local_ = 0;                                                     \
        atomic_fetch_add_explicit(&ioc_fence_local_, 0, memory_order_seq_cst);                    \
    } while (0)
#elif defined(__x86_64__)
#define ioc_fence_full() __asm__ __volatile__("lock; orq $0, (%%rsp)" ::: "memory", "cc")
#else
#define ioc_fence_full() atomic_thread_fence(memory_order_seq_cst)
#endif

/*
 * A counter written by one thread only and read by any: a relaxed load and a
 * relaxed store, no read-modify-write (no lock prefix, no line bounce when the
 * owner's line is hot). Readers see each value whole.
 */
#define ioc_owner_inc(p, v) ioc_store((p), ioc_load((p), IOC_RELAXED) + (v), IOC_RELAXED)

static inline void ioc_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#else
    __asm__ __volatile__("" ::: "memory");
#endif
}

/* ThreadSanitizer annotations for hand-offs through ck_ring. */
#if defined(IOCOMP_TSAN)
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define ioc_tsan_acquire(a) __tsan_acquire((void *)(a))
#define ioc_tsan_release(a) __tsan_release((void *)(a))
#else
#define ioc_tsan_acquire(a) ((void)0)
#define ioc_tsan_release(a) ((void)0)
#endif

#define IOC_CACHELINE 64
#define ioc_likely(x) __builtin_expect(!!(x), 1)
#define ioc_unlikely(x) __builtin_expect(!!(x), 0)

#endif
