/*
 * iocomp/testing.h - fault seams for test builds only (not installed).
 *
 * Compiled in only when the library is configured with
 * -DIOCOMP_FAULT_INJECTION=ON (the test command does this); in every other
 * build these functions do not exist, and the seams in the library compile to
 * nothing, as jemalloc's test hooks do.
 *
 * A seam is a point before an internal allocation (IOCOMP_FAULT_ALLOC: every
 * malloc/calloc/mallocx/jemalloc mallctl the library makes) or before
 * pthread_create (IOCOMP_FAULT_THREAD). Arming a site makes its nth call from
 * now fail (1 = the next one) as if out of memory / EAGAIN; all later calls
 * succeed again. IOCOMP_FAULT_PAUSE fails nothing: its armed call sleeps
 * 50 ms, to hold a race window open. Its points, one count for all:
 * iocomp_port_create (between its early check of a destroy in progress and
 * the port table's lock), every descriptor operation's submit (right after
 * it read the binding), and epoll's deferred system call (after the worker
 * claimed the request, before the call). A test arms it when only the point
 * it means will be passed next. Thread: any; the counters are process-wide
 * atomics.
 */
#ifndef IOCOMP_TESTING_H
#define IOCOMP_TESTING_H

#include <stdint.h>
#include <iocomp.h>

#ifdef __cplusplus
extern "C" {
#endif

enum iocomp_fault_site {
    IOCOMP_FAULT_ALLOC = 0,
    IOCOMP_FAULT_THREAD = 1,
    IOCOMP_FAULT_PAUSE = 2,
    IOCOMP_FAULT_NSITES
};

#if defined(IOCOMP_FAULT_INJECTION)
/* Arms site so that its nth call from now fails; nth == 0 disarms it. */
IOCOMP_API void iocomp_fault_arm(enum iocomp_fault_site site, uint64_t nth);
/* Calls seen at site since the last iocomp_fault_arm() of that site. */
IOCOMP_API uint64_t iocomp_fault_calls(enum iocomp_fault_site site);
/* Failures injected at site since the last arm. */
IOCOMP_API uint64_t iocomp_fault_injected(enum iocomp_fault_site site);
#endif

#ifdef __cplusplus
}
#endif
#endif
