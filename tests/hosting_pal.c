/*
 * hosting_pal (issue #14 item 7): <iocomp/hosting.h> coexists with a host's
 * own Windows vocabulary, as a runtime's PAL defines it. This file defines
 * HRESULT, DWORD, ULONG, HANDLE, GUID/IID/REFIID and the HRESULT macros
 * itself first (PAL spellings: long-suffixed constants, _HRESULT_TYPEDEF_),
 * then IOCOMP_HAVE_WIN_TYPES, then includes the header: it must compile with
 * -Werror (no redefinition, no conflicting typedef) and the object must work
 * through those types. Before the guards, the header's unguarded typedefs
 * and macros collided with these.
 */
#include <stdint.h>

typedef int32_t HRESULT;
typedef uint32_t DWORD;
typedef uint32_t ULONG;
typedef void *HANDLE;
typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;
typedef GUID IID;
#define REFIID const IID *
#define _HRESULT_TYPEDEF_(sc) ((HRESULT)sc)
#define S_OK _HRESULT_TYPEDEF_(0x00000000L)
#define E_FAIL _HRESULT_TYPEDEF_(0x80004005L)
#define E_INVALIDARG _HRESULT_TYPEDEF_(0x80070057L)
#define E_NOINTERFACE _HRESULT_TYPEDEF_(0x80004002L)
#define E_POINTER _HRESULT_TYPEDEF_(0x80004003L)
#define HRESULT_FROM_WIN32(x) ((HRESULT)(x) <= 0 ? ((HRESULT)(x)) : ((HRESULT)(((x) & 0x0000FFFF) | (7 << 16) | 0x80000000)))
static const IID IID_IUnknown = {0x00000000, 0x0000, 0x0000, {0xC0, 0, 0, 0, 0, 0, 0, 0x46}};

#define IOCOMP_HAVE_WIN_TYPES 1
#include "test.h"

#include <iocomp/hosting.h>

int main(void) {
    test_begin("hosting_pal", IOCOMP_TEST_TIMEOUT);
    iocomp_engine *e = test_engine(1, 2, NULL, NULL);
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    DWORD d = 0;
    CHECK_EQU(m->lpVtbl->GetMaxThreads(m, &d), S_OK);
    CHECK_EQ(d, 2);
    void *out = NULL;
    CHECK_EQU(m->lpVtbl->QueryInterface(m, &IID_IUnknown, &out), S_OK);
    CHECK(out == m);
    CHECK_EQU(m->lpVtbl->QueryInterface(m, &IID_IHostIoCompletionManager, &out), S_OK);
    CHECK_EQU(m->lpVtbl->Release(m), 2);
    CHECK_EQU(m->lpVtbl->Release(m), 1);
    CHECK_EQU(m->lpVtbl->SetMaxThreads(m, 0), E_INVALIDARG);
    CHECK_EQU(iocomp_oncomplete_hresult_from_errno(-EIO), HRESULT_FROM_WIN32(1117)); /* ERROR_IO_DEVICE */
    iocomp_hosting_release(m);
    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
