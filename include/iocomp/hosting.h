/*
 * iocomp/hosting.h - the .NET hosting face of iocomp.
 *
 * IHostIoCompletionManager (MSCorEE.h) as a COM object that iocomp
 * implements: lpVtbl, IUnknown's three entries, then the 11 methods in
 * MSCorEE.h's order, with HRESULT returns and the real IIDs; callable from C
 * (p->lpVtbl->Bind(p, ...)) and from C++ (p->Bind(...)).
 * ICLRIoCompletionManager, whose OnComplete the runtime implements and
 * iocomp calls, has the same COM layout. The layer is thin: each method
 * calls the C API of <iocomp.h> and maps its -errno result through one table
 * (src/core/status.def) to an HRESULT, and completion statuses to the
 * HRESULTs OnComplete takes (S_OK, HOST_E_INTERRUPTED,
 * HRESULT_FROM_WIN32(code), E_FAIL: see OnComplete below). The C API keeps
 * -errno throughout. (iocomp 0.1's plain table of function pointers,
 * iocomp_host_io_completion_manager, is gone: 0.2 changed the ABI.)
 *
 * Handles: a port HANDLE is the iocomp_port_t value cast to a pointer; a
 * bound HANDLE is the file descriptor cast to a pointer ((HANDLE)(intptr_t)fd).
 * Bind() uses the descriptor number as the completion key.
 *
 * Threads: every method may be called from any thread, including inside
 * OnComplete, as the C function it wraps says. OnComplete runs on engine
 * worker threads.
 */
#ifndef IOCOMP_HOSTING_H
#define IOCOMP_HOSTING_H

#include <iocomp.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The vocabulary types and macros, with MSCorEE.h's / winerror.h's values.
 * Each macro is defined only if it is not already. A host whose own headers
 * (a runtime's PAL, windows.h) define the types defines IOCOMP_HAVE_WIN_TYPES
 * before including this header; its HRESULT, DWORD, ULONG, HANDLE, GUID,
 * IID and REFIID must then be the Windows ones (32-bit HRESULT, DWORD and
 * ULONG), and in C++ its IUnknown too. A host that includes MSCorEE.h (the
 * two interfaces and their IIDs) also defines IOCOMP_HAVE_MSCOREE; iocomp
 * then uses those declarations, whose layout is the one below.
 */
#ifndef IOCOMP_HAVE_WIN_TYPES
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
#endif
#ifndef REFIID
#ifdef __cplusplus
#define REFIID const IID &
#else
#define REFIID const IID *
#endif
#endif
#ifndef STDMETHODCALLTYPE
#define STDMETHODCALLTYPE /* the platform's default convention on Linux, as the PAL */
#endif

/* The real values of MSCorEE.h / winerror.h / corerror.h. */
#ifndef S_OK
#define S_OK ((HRESULT)0x00000000)
#endif
#ifndef E_NOTIMPL
#define E_NOTIMPL ((HRESULT)0x80004001)
#endif
#ifndef E_NOINTERFACE
#define E_NOINTERFACE ((HRESULT)0x80004002)
#endif
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003)
#endif
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005)
#endif
#ifndef E_OUTOFMEMORY
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#endif
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057)
#endif
#ifndef HOST_E_INTERRUPTED
#define HOST_E_INTERRUPTED ((HRESULT)0x80131021)
#endif
#ifndef HOST_E_INVALIDOPERATION
#define HOST_E_INVALIDOPERATION ((HRESULT)0x80131022)
#endif
#ifndef HOST_E_CLRNOTAVAILABLE
#define HOST_E_CLRNOTAVAILABLE ((HRESULT)0x80131023)
#endif
#ifndef HOST_E_TIMEOUT
#define HOST_E_TIMEOUT ((HRESULT)0x80131024)
#endif
#ifndef HOST_E_NOT_OWNER
#define HOST_E_NOT_OWNER ((HRESULT)0x80131025)
#endif
#ifndef HOST_E_ABANDONED
#define HOST_E_ABANDONED ((HRESULT)0x80131026)
#endif
#ifndef HRESULT_FROM_WIN32
/* winerror.h: a Win32 code x in FACILITY_WIN32 (0x8007xxxx); 0 stays S_OK. */
#define HRESULT_FROM_WIN32(x)                                                                     \
    ((HRESULT)(x) <= 0 ? (HRESULT)(x) : (HRESULT)(((uint32_t)(x) & 0x0000FFFFu) | 0x80070000u))
#endif

/*
 * The two interfaces, laid out as COM objects: the object's first word is a
 * pointer to its vtable (lpVtbl), whose first three entries are IUnknown's
 * QueryInterface, AddRef, Release, then the methods in MSCorEE.h's order. In
 * C, p->lpVtbl->Bind(p, port, fd); in C++ the same objects are the abstract
 * classes below (a vtable of the same entries under the Itanium C++ ABI:
 * no virtual destructor, single inheritance from IUnknown), p->Bind(port, fd).
 * So a C++ class deriving ICLRIoCompletionManager can be handed to
 * SetCLRIoCompletionManager, and code written against MSCorEE.h calls
 * iocomp's IHostIoCompletionManager unchanged.
 *
 * IHostIoCompletionManager is implemented by iocomp; its methods are
 * documented in the C view below. ICLRIoCompletionManager is implemented by
 * the runtime (or any host code); OnComplete's contract is there too.
 */
#ifndef IOCOMP_HAVE_MSCOREE
#ifdef __cplusplus
} /* extern "C" */

#ifndef IOCOMP_HAVE_WIN_TYPES
struct IUnknown {
    virtual HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppvObject) = 0;
    virtual ULONG STDMETHODCALLTYPE AddRef() = 0;
    virtual ULONG STDMETHODCALLTYPE Release() = 0;
};
#endif
struct ICLRIoCompletionManager : public IUnknown {
    virtual HRESULT STDMETHODCALLTYPE OnComplete(DWORD dwErrorCode, DWORD NumberOfBytesTransferred,
                                                 void *pvOverlapped) = 0;
};
struct IHostIoCompletionManager : public IUnknown {
    virtual HRESULT STDMETHODCALLTYPE CreateIoCompletionPort(HANDLE *phPort) = 0;
    virtual HRESULT STDMETHODCALLTYPE CloseIoCompletionPort(HANDLE hPort) = 0;
    virtual HRESULT STDMETHODCALLTYPE SetMaxThreads(DWORD dwMaxIOCompletionThreads) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetMaxThreads(DWORD *pdwMaxIOCompletionThreads) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetAvailableThreads(DWORD *pdwAvailableIOCompletionThreads) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetHostOverlappedSize(DWORD *pcbSize) = 0;
    virtual HRESULT STDMETHODCALLTYPE SetCLRIoCompletionManager(ICLRIoCompletionManager *pManager) = 0;
    virtual HRESULT STDMETHODCALLTYPE InitializeHostOverlapped(void *pvOverlapped) = 0;
    virtual HRESULT STDMETHODCALLTYPE Bind(HANDLE hPort, HANDLE hHandle) = 0;
    virtual HRESULT STDMETHODCALLTYPE SetMinThreads(DWORD dwMinIOCompletionThreads) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetMinThreads(DWORD *pdwMinIOCompletionThreads) = 0;
};

extern "C" {
#else /* C */

typedef struct ICLRIoCompletionManager ICLRIoCompletionManager;
typedef struct IHostIoCompletionManager IHostIoCompletionManager;

typedef struct ICLRIoCompletionManagerVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(ICLRIoCompletionManager *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(ICLRIoCompletionManager *This);
    ULONG(STDMETHODCALLTYPE *Release)(ICLRIoCompletionManager *This);
    /* Called at most once per accepted request, on a worker thread of the
     * engine (never on the submitting thread's stack unless that thread is
     * a worker), with the request's overlapped and byte count.
     *
     * dwErrorCode is an HRESULT, as the OnComplete page says
     * (iocomp_oncomplete_hresult_from_errno(), the one table):
     *   S_OK                     the request succeeded (status >= 0);
     *   HOST_E_INTERRUPTED       0x80131021, the call terminated before
     *                            completion: a cancelled request (-ECANCELED:
     *                            iocomp_cancel(), CancelIoEx, unbind, close);
     *   HRESULT_FROM_WIN32(code) 0x80070000 | code, any other error of the
     *                            table, code its Win32 column (e.g. a refused
     *                            connect 0x800704C9 = ERROR_CONNECTION_REFUSED
     *                            1225, ECONNRESET 0x80070040, EIO 0x8007045D);
     *   E_FAIL                   0x80004005, a status the table does not know.
     * Its low 16 bits (winerror.h's HRESULT_CODE) give the Win32 code back
     * for the HRESULT_FROM_WIN32 ones (iocomp_win32_from_errno() too).
     *
     * The return value, as the page defines it:
     *   S_OK (and any value not below): go on;
     *   E_FAIL or HOST_E_CLRNOTAVAILABLE: the runtime is gone (unloaded or
     *       in an unusable state). iocomp then calls no OnComplete of this
     *       manager through this wrapper again: every later completion of
     *       the engine is still consumed exactly once (ports drain, close
     *       and destroy work as always) but only counted, in
     *       iocomp_hosting_undelivered(); one line says so on stderr, once
     *       each time an installed manager goes away (not per completion:
     *       the first such result wins, racing ones say nothing). "Later"
     *       means: starting after that result was returned; a completion
     *       on another worker that had already read the manager before it
     *       (it runs concurrently with the failing call) may still make its
     *       one call, and gets no retry either way. A later
     *       SetCLRIoCompletionManager() with a manager (the same one too)
     *       delivers again from then on.
     *   any other failure (HOST_E_TIMEOUT, HOST_E_NOT_OWNER,
     *       HOST_E_ABANDONED, ...): that call failed; nothing is retried
     *       (the completion was consumed), later ones are delivered.
     * iocomp never calls the manager's QueryInterface; AddRef and Release:
     * see SetCLRIoCompletionManager. */
    HRESULT(STDMETHODCALLTYPE *OnComplete)(ICLRIoCompletionManager *This, DWORD dwErrorCode,
                                           DWORD NumberOfBytesTransferred, void *pvOverlapped);
} ICLRIoCompletionManagerVtbl;

struct ICLRIoCompletionManager {
    const struct ICLRIoCompletionManagerVtbl *lpVtbl;
};

typedef struct IHostIoCompletionManagerVtbl {
    /* IUnknown. QueryInterface: IID_IUnknown and IID_IHostIoCompletionManager
     * give the object itself (AddRef'd), S_OK; any other IID *ppvObject =
     * NULL, E_NOINTERFACE; ppvObject NULL E_POINTER. AddRef/Release: the
     * reference count (returned after the change); iocomp_hosting_create()
     * returns an object holding one reference, and the Release that drops
     * the last one frees it (what iocomp_hosting_release() says of it
     * applies to that Release). Thread: any. */
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(IHostIoCompletionManager *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(IHostIoCompletionManager *This);
    ULONG(STDMETHODCALLTYPE *Release)(IHostIoCompletionManager *This);
    /* On the default instance, every method below returns HOST_E_ABANDONED
     * once iocomp_hosting_shutdown() returned S_OK (an object the host still
     * holds a reference to). An object of iocomp_hosting_create() does not
     * know when its caller destroys the engine: call no method of it after
     * iocomp_engine_destroy(). */
    /* *phPort gets the new port, or 0 (NULL) if none was created, whatever
     * the failure. E_INVALIDARG phPort NULL (nothing written) or This NULL;
     * E_OUTOFMEMORY no memory, or the engine's 65535 port slots (the default
     * port's included) are in use; HOST_E_ABANDONED the engine is being
     * destroyed (iocomp_engine_destroy() ran, or timed out). */
    HRESULT(STDMETHODCALLTYPE *CreateIoCompletionPort)(IHostIoCompletionManager *This, HANDLE *phPort);
    /* Closes and drains the port (iocomp_port_close()). E_INVALIDARG unknown,
     * stale or closed port; HOST_E_TIMEOUT a callback outlived the deadline. */
    HRESULT(STDMETHODCALLTYPE *CloseIoCompletionPort)(IHostIoCompletionManager *This, HANDLE hPort);
    /* E_INVALIDARG 0, or below the current min, or above the hard cap. */
    HRESULT(STDMETHODCALLTYPE *SetMaxThreads)(IHostIoCompletionManager *This, DWORD dwMaxIOCompletionThreads);
    HRESULT(STDMETHODCALLTYPE *GetMaxThreads)(IHostIoCompletionManager *This, DWORD *pdwMaxIOCompletionThreads);
    HRESULT(STDMETHODCALLTYPE *GetAvailableThreads)(IHostIoCompletionManager *This,
                                                    DWORD *pdwAvailableIOCompletionThreads);
    HRESULT(STDMETHODCALLTYPE *GetHostOverlappedSize)(IHostIoCompletionManager *This, DWORD *pcbSize);
    /* Installs pManager's OnComplete as the completion callback; NULL removes
     * it (later requests are refused, HOST_E_CLRNOTAVAILABLE; ones already
     * queued still go to the last manager). Installing a manager ends a
     * "runtime gone" state (see OnComplete): it is called from then on;
     * iocomp_hosting_undelivered() keeps its count. References: iocomp
     * AddRefs each manager it installs and Releases every manager it ever
     * installed when the object is freed (its last Release: for the default
     * instance, its shutdown, or the host's last Release after it if the
     * host held a reference), not when one is replaced or removed: a completion
     * may still be running in the replaced manager's OnComplete then. So a
     * manager stays valid while its completions may run with nothing the
     * runtime must do. E_INVALIDARG pManager's lpVtbl, OnComplete, AddRef or
     * Release NULL; E_OUTOFMEMORY no memory (nothing changed, no AddRef). */
    HRESULT(STDMETHODCALLTYPE *SetCLRIoCompletionManager)(IHostIoCompletionManager *This,
                                                          ICLRIoCompletionManager *pManager);
    /* Runs the host's initialisation on the extension that follows the
     * header at pvOverlapped (iocomp_overlapped_init()). E_INVALIDARG NULL or
     * misaligned; the init callback's failure mapped. */
    HRESULT(STDMETHODCALLTYPE *InitializeHostOverlapped)(IHostIoCompletionManager *This, void *pvOverlapped);
    /* hPort NULL means the default port; hHandle is the descriptor
     * ((HANDLE)(intptr_t)fd), also the completion key. E_INVALIDARG bad
     * descriptor, bad port, or the descriptor already bound. */
    HRESULT(STDMETHODCALLTYPE *Bind)(IHostIoCompletionManager *This, HANDLE hPort, HANDLE hHandle);
    /* E_INVALIDARG above the current max or the hard cap. */
    HRESULT(STDMETHODCALLTYPE *SetMinThreads)(IHostIoCompletionManager *This, DWORD dwMinIOCompletionThreads);
    HRESULT(STDMETHODCALLTYPE *GetMinThreads)(IHostIoCompletionManager *This, DWORD *pdwMinIOCompletionThreads);
} IHostIoCompletionManagerVtbl;

struct IHostIoCompletionManager {
    const struct IHostIoCompletionManagerVtbl *lpVtbl;
};
#endif /* C */

/* The IIDs (MSCorEE.h's, and COM's IID_IUnknown). */
static const IID IID_IHostIoCompletionManager = {
    0x8BDE9D80, 0xEC06, 0x41D6, {0x83, 0xE6, 0x22, 0x58, 0x0E, 0xFF, 0xCC, 0x20}};
static const IID IID_ICLRIoCompletionManager = {
    0x2D74CE86, 0xB8D6, 0x4C84, {0xB3, 0xA7, 0x97, 0x68, 0x93, 0x3B, 0x3C, 0x12}};
#endif /* !IOCOMP_HAVE_MSCOREE */
#ifndef IOCOMP_HAVE_WIN_TYPES
static const IID IID_IUnknown = {0x00000000, 0x0000, 0x0000, {0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}};
#endif

/*
 * Wraps an engine in the hosting interface: *out is a new
 * IHostIoCompletionManager holding one reference (the caller's). The engine
 * stays the caller's: freeing the object (its last Release) leaves the
 * engine alone, and releases every ICLRIoCompletionManager it installed.
 * iocomp_hosting_release(m) is m's Release (for C callers that prefer a
 * function). Thread: any. Errors: -EINVAL, -ENOMEM.
 * Memory: the engine's completion callback, once SetCLRIoCompletionManager()
 * installed a manager, reads the wrapper (its manager, its "runtime gone"
 * state and its counter): drop the last reference only when no completion of
 * it can run or be queued any more (every accepted request delivered and none
 * accepted after, e.g. SetCLRIoCompletionManager(NULL) once drained), or
 * after iocomp_engine_destroy() returned 0.
 */
IOCOMP_API int iocomp_hosting_create(iocomp_engine *e, IHostIoCompletionManager **out);
IOCOMP_API void iocomp_hosting_release(IHostIoCompletionManager *m);
/* The engine behind a wrapper. */
IOCOMP_API iocomp_engine *iocomp_hosting_engine(IHostIoCompletionManager *m);

/*
 * The process's default instance, the only global state in iocomp: created
 * by the first call (and by the first one after iocomp_hosting_shutdown()
 * returned S_OK) with a default engine (iocomp_config_init(): min = usable
 * CPUs, 30 s close deadline). Returns NULL if it could not be created (no
 * memory, no thread): nothing is left behind and a later call tries again.
 * Thread: any, callbacks included (of this instance or of any engine).
 * Once the instance exists the call is one atomic load, no lock: it never
 * waits, also not while iocomp_hosting_shutdown() runs on another thread.
 * Only creating takes a lock: calls racing the first one wait for that
 * creation (an engine start, never a callback) and all get the one instance.
 * During a shutdown in progress it returns the instance being shut down (not
 * NULL, not a new one): that is still the default until the shutdown returns
 * S_OK, and stays it if the shutdown fails. It is closing: ports refuse new
 * requests (CreateIoCompletionPort HOST_E_ABANDONED, posts and I/O
 * -ESHUTDOWN), the thread getters and setters still answer as documented.
 * A callback of it may use the pointer until the callback returns (the
 * shutdown waits for it). A host thread that gets it during a shutdown must
 * not use it: its methods would race the destroy, and the pointer dangles
 * once the shutdown returns S_OK (see iocomp_hosting_shutdown() below).
 * Callbacks: the instance's OnComplete (SetCLRIoCompletionManager) runs on
 * its engine's worker threads.
 * Memory: the instance (wrapper and engine) is iocomp's: it holds a
 * reference of iocomp's own; never pass it to iocomp_hosting_release() or
 * iocomp_engine_destroy(). Shutdown destroys the engine and drops iocomp's
 * reference: the object is freed then, unless the host took references of
 * its own (AddRef, QueryInterface), in which case it stays valid, its
 * methods return HOST_E_ABANDONED, and the host's last Release frees it.
 *
 * iocomp_hosting_shutdown() destroys it as iocomp_engine_destroy() does
 * (every port closed, every accepted request delivered first) and drops
 * iocomp's reference to the wrapper (above); a later call of iocomp_hosting_default() creates a new one.
 * Thread: any thread that is not a worker of the default instance's engine
 * (from one, it is refused at once, below, and never waits). Shutdowns are
 * serialised: one called while another runs on another thread waits for it
 * (up to that one's close deadline), then shuts down whatever instance is
 * the default by then (S_OK if none). While it runs, callbacks of the
 * instance may go on calling the instance and iocomp_hosting_default() (it
 * answers at once); no host thread may call the instance's methods
 * concurrently (another shutdown excepted, as said), nor after S_OK
 * (pointers from iocomp_hosting_default() are dangling then).
 * Returns S_OK, also when there is no instance;
 *   HOST_E_INVALIDOPERATION called from a callback (OnComplete) of the
 *           default instance's engine: not from that thread (the C API's
 *           -EDEADLK, the one table), at once, without a lock, whether or
 *           not another thread's shutdown is in progress. Nothing changes:
 *           a shutdown in progress goes on and finishes once this callback
 *           returns; with none, the instance keeps working and a shutdown
 *           from another thread later succeeds;
 *   HOST_E_TIMEOUT callbacks were still running at the deadline (a callback
 *           blocks): the instance is closed (ports refuse new requests) but
 *           alive and still the default, what is queued is still delivered;
 *           call it again.
 */
IOCOMP_API IHostIoCompletionManager *iocomp_hosting_default(void);
IOCOMP_API HRESULT iocomp_hosting_shutdown(void);

/* The HRESULT for a 0 / -errno result, and the Win32 error code for a
 * completion status: the one mapping table, exposed for hosts. */
IOCOMP_API HRESULT iocomp_hresult_from_errno(int err);
IOCOMP_API DWORD iocomp_win32_from_errno(int err);
/* OnComplete's dwErrorCode for a completion status (0 / -errno): S_OK;
 * -ECANCELED HOST_E_INTERRUPTED; another errno of the table
 * HRESULT_FROM_WIN32(iocomp_win32_from_errno(err)); else E_FAIL. Pure. */
IOCOMP_API HRESULT iocomp_oncomplete_hresult_from_errno(int err);

/*
 * Completions this wrapper consumed but did not deliver because an OnComplete
 * returned E_FAIL or HOST_E_CLRNOTAVAILABLE (the runtime is gone; see
 * OnComplete), since iocomp_hosting_create(); 0 for m NULL. Thread: any,
 * callbacks included; one atomic load (relaxed: a count, not a fence).
 */
IOCOMP_API uint64_t iocomp_hosting_undelivered(IHostIoCompletionManager *m);

#ifdef __cplusplus
}
#endif
#endif /* IOCOMP_HOSTING_H */
