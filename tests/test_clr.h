/*
 * test_clr.h - an ICLRIoCompletionManager for the hosting tests, in the COM
 * layout (lpVtbl: QueryInterface, AddRef, Release, OnComplete), after
 * <iocomp/hosting.h>. Every test manager shares one reference count,
 * test_clr_refs (AddRefs minus Releases), so a test can check that iocomp
 * holds exactly one reference per installed manager and drops it.
 *
 *   static const ICLRIoCompletionManagerVtbl vt = TEST_CLR_VTBL(on_complete);
 *   static ICLRIoCompletionManager clr = {&vt};
 */
#ifndef IOCOMP_TEST_CLR_H
#define IOCOMP_TEST_CLR_H

#include <iocomp/hosting.h>

#include <stdatomic.h>
#include <string.h>

static atomic_long test_clr_refs;

static inline HRESULT test_clr_qi(ICLRIoCompletionManager *self, REFIID riid, void **ppv) {
    if (!ppv) return E_POINTER;
    if (memcmp(riid, &IID_IUnknown, sizeof(IID)) && memcmp(riid, &IID_ICLRIoCompletionManager, sizeof(IID))) {
        *ppv = NULL;
        return E_NOINTERFACE;
    }
    atomic_fetch_add(&test_clr_refs, 1);
    *ppv = self;
    return S_OK;
}
static inline ULONG test_clr_addref(ICLRIoCompletionManager *self) {
    (void)self;
    return (ULONG)(atomic_fetch_add(&test_clr_refs, 1) + 1);
}
static inline ULONG test_clr_release(ICLRIoCompletionManager *self) {
    (void)self;
    return (ULONG)(atomic_fetch_sub(&test_clr_refs, 1) - 1);
}
#define TEST_CLR_VTBL(fn) {test_clr_qi, test_clr_addref, test_clr_release, (fn)}

#endif
