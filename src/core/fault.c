/*
 * fault.c - the test-only fault seams (see fault.h, iocomp/testing.h).
 * Empty unless the library is configured with IOCOMP_FAULT_INJECTION=ON.
 */
#include "core/fault.h"

#if defined(IOCOMP_FAULT_INJECTION)
#include <time.h>

#include "core/atomic.h"

/* Process-wide: relaxed is enough, a test arms a site and then makes calls
 * from the same thread (or joins the threads it started). */
static ioc_atomic(uint64_t) arm_at[IOCOMP_FAULT_NSITES];
static ioc_atomic(uint64_t) calls[IOCOMP_FAULT_NSITES];
static ioc_atomic(uint64_t) injected[IOCOMP_FAULT_NSITES];

IOCOMP_API void iocomp_fault_arm(enum iocomp_fault_site site, uint64_t nth) {
    if ((unsigned)site >= IOCOMP_FAULT_NSITES) return;
    ioc_store(&calls[site], 0, IOC_SEQ_CST);
    ioc_store(&injected[site], 0, IOC_SEQ_CST);
    ioc_store(&arm_at[site], nth, IOC_SEQ_CST);
}

IOCOMP_API uint64_t iocomp_fault_calls(enum iocomp_fault_site site) {
    return (unsigned)site < IOCOMP_FAULT_NSITES ? ioc_load(&calls[site], IOC_SEQ_CST) : 0;
}

IOCOMP_API uint64_t iocomp_fault_injected(enum iocomp_fault_site site) {
    return (unsigned)site < IOCOMP_FAULT_NSITES ? ioc_load(&injected[site], IOC_SEQ_CST) : 0;
}

bool ioc_fault_hit(enum iocomp_fault_site site) {
    uint64_t n = ioc_fetch_add(&calls[site], 1, IOC_SEQ_CST) + 1;
    if (ioc_load(&arm_at[site], IOC_SEQ_CST) == n) {
        ioc_fetch_add(&injected[site], 1, IOC_SEQ_CST);
        return true;
    }
    return false;
}
void ioc_fault_pause(void) {
    if (!ioc_fault_hit(IOCOMP_FAULT_PAUSE)) return;
    struct timespec ts = {0, 50000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}
#else
typedef int ioc_fault_unused_; /* ISO C: a translation unit is not empty */
#endif
