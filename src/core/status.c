/*
 * status.c - error descriptions and the hosting mappings, all from the one
 * table in status.def. This is the only place where an errno value becomes
 * an HRESULT (a method's result or OnComplete's dwErrorCode) or a Win32
 * error code.
 */
#include <errno.h>
#include <limits.h>

#include <iocomp.h>
#include <iocomp/hosting.h>

struct ioc_status_row {
    int err;
    uint32_t hresult;
    uint32_t win32;
    const char *msg;
};

static const struct ioc_status_row rows[] = {
#define X(name, hr, w32, msg) {name, hr, w32, msg},
#include "core/status.def"
#undef X
};

static const struct ioc_status_row *find(int err) {
    if (err == INT_MIN) return NULL; /* -INT_MIN does not exist */
    int e = err < 0 ? -err : err;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].err == e) return &rows[i];
    return NULL;
}

IOCOMP_API const char *iocomp_strerror(int err) {
    if (err == 0) return "success";
    const struct ioc_status_row *r = find(err);
    return r ? r->msg : "unknown error";
}

IOCOMP_API HRESULT iocomp_hresult_from_errno(int err) {
    if (err >= 0) return S_OK;
    const struct ioc_status_row *r = find(err);
    return (HRESULT)(r ? r->hresult : 0x80004005u /* E_FAIL */);
}

IOCOMP_API DWORD iocomp_win32_from_errno(int err) {
    if (err >= 0) return 0; /* ERROR_SUCCESS */
    const struct ioc_status_row *r = find(err);
    return r ? r->win32 : 31u /* ERROR_GEN_FAILURE */;
}

/* OnComplete's dwErrorCode, "an HRESULT value" (ICLRIoCompletionManager::
 * OnComplete): S_OK; HOST_E_INTERRUPTED for a cancelled request (the call
 * terminated before completion); any other errno of the table as
 * HRESULT_FROM_WIN32 of its Win32 column (nothing lost: the low 16 bits are
 * that code); E_FAIL for a value the table does not know. */
IOCOMP_API HRESULT iocomp_oncomplete_hresult_from_errno(int err) {
    if (err >= 0) return S_OK;
    if (err == -ECANCELED) return HOST_E_INTERRUPTED;
    const struct ioc_status_row *r = find(err);
    return r ? HRESULT_FROM_WIN32(r->win32) : E_FAIL;
}
