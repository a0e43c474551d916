/*
 * iocomp/hosting.h - the .NET hosting face of iocomp.
 *
 * iocomp_host_io_completion_manager mirrors IHostIoCompletionManager
 * (MSCorEE.h) method for method, in its vtable order, with HRESULT returns;
 * iocomp_clr_io_completion_manager mirrors ICLRIoCompletionManager, whose
 * OnComplete the runtime implements and iocomp calls. The layer is thin: each
 * method calls the C API of <iocomp.h> and maps its -errno result through
 * one table (src/core/status.def) to an HRESULT, and completion statuses to
 * the HRESULTs OnComplete takes (S_OK, HOST_E_INTERRUPTED,
 * HRESULT_FROM_WIN32(code), E_FAIL: see OnComplete below). The C API keeps
 * -errno throughout.
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

typedef int32_t HRESULT;
typedef uint32_t DWORD;
typedef void *HANDLE;

/* The real values of MSCorEE.h / winerror.h / corerror.h. */
#define S_OK ((HRESULT)0x00000000)
#define E_NOTIMPL ((HRESULT)0x80004001)
#define E_FAIL ((HRESULT)0x80004005)
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#define E_INVALIDARG ((HRESULT)0x80070057)
#define HOST_E_INTERRUPTED ((HRESULT)0x80131021)
#define HOST_E_INVALIDOPERATION ((HRESULT)0x80131022)
#define HOST_E_CLRNOTAVAILABLE ((HRESULT)0x80131023)
#define HOST_E_TIMEOUT ((HRESULT)0x80131024)
#define HOST_E_NOT_OWNER ((HRESULT)0x80131025)
#define HOST_E_ABANDONED ((HRESULT)0x80131026)
#ifndef HRESULT_FROM_WIN32
/* winerror.h: a Win32 code x in FACILITY_WIN32 (0x8007xxxx); 0 stays S_OK. */
#define HRESULT_FROM_WIN32(x)                                                                     \
    ((HRESULT)(x) <= 0 ? (HRESULT)(x) : (HRESULT)(((uint32_t)(x) & 0x0000FFFFu) | 0x80070000u))
#endif

/* ICLRIoCompletionManager, implemented by the runtime (or any host code). */
typedef struct iocomp_clr_io_completion_manager iocomp_clr_io_completion_manager;
struct iocomp_clr_io_completion_manager {
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
     *       (the completion was consumed), later ones are delivered. */
    HRESULT (*OnComplete)(iocomp_clr_io_completion_manager *self, DWORD dwErrorCode,
                          DWORD NumberOfBytesTransferred, void *pvOverlapped);
};

/* IHostIoCompletionManager, implemented by iocomp. */
typedef struct iocomp_host_io_completion_manager iocomp_host_io_completion_manager;
struct iocomp_host_io_completion_manager {
    /* *phPort gets the new port, or 0 (NULL) if none was created, whatever
     * the failure. E_INVALIDARG phPort NULL (nothing written) or self NULL;
     * E_OUTOFMEMORY no memory, or the engine's 65535 port slots (the default
     * port's included) are in use; HOST_E_ABANDONED the engine is being
     * destroyed (iocomp_engine_destroy() ran, or timed out). */
    HRESULT (*CreateIoCompletionPort)(iocomp_host_io_completion_manager *self, HANDLE *phPort);
    /* Closes and drains the port (iocomp_port_close()). E_INVALIDARG unknown,
     * stale or closed port; HOST_E_TIMEOUT a callback outlived the deadline. */
    HRESULT (*CloseIoCompletionPort)(iocomp_host_io_completion_manager *self, HANDLE hPort);
    /* E_INVALIDARG 0, or below the current min, or above the hard cap. */
    HRESULT (*SetMaxThreads)(iocomp_host_io_completion_manager *self, DWORD dwMaxIOCompletionThreads);
    HRESULT (*GetMaxThreads)(iocomp_host_io_completion_manager *self, DWORD *pdwMaxIOCompletionThreads);
    HRESULT (*GetAvailableThreads)(iocomp_host_io_completion_manager *self, DWORD *pdwAvailableIOCompletionThreads);
    HRESULT (*GetHostOverlappedSize)(iocomp_host_io_completion_manager *self, DWORD *pcbSize);
    /* Installs pManager->OnComplete as the completion callback; NULL removes
     * it (later requests are refused, HOST_E_CLRNOTAVAILABLE; ones already
     * queued still go to the last manager). The object must stay valid while
     * completions may run. Installing a manager ends a "runtime gone" state
     * (see OnComplete): it is called from then on; iocomp_hosting_undelivered()
     * keeps its count. E_INVALIDARG pManager->OnComplete NULL;
     * E_OUTOFMEMORY no memory. */
    HRESULT (*SetCLRIoCompletionManager)(iocomp_host_io_completion_manager *self,
                                         iocomp_clr_io_completion_manager *pManager);
    /* Runs the host's initialisation on the extension that follows the
     * header at pvOverlapped (iocomp_overlapped_init()). E_INVALIDARG NULL or
     * misaligned; the init callback's failure mapped. */
    HRESULT (*InitializeHostOverlapped)(iocomp_host_io_completion_manager *self, void *pvOverlapped);
    /* hPort NULL means the default port. E_INVALIDARG bad descriptor, bad
     * port, or the descriptor already bound. */
    HRESULT (*Bind)(iocomp_host_io_completion_manager *self, HANDLE hPort, HANDLE hHandle);
    /* E_INVALIDARG above the current max or the hard cap. */
    HRESULT (*SetMinThreads)(iocomp_host_io_completion_manager *self, DWORD dwMinIOCompletionThreads);
    HRESULT (*GetMinThreads)(iocomp_host_io_completion_manager *self, DWORD *pdwMinIOCompletionThreads);
};

/*
 * Wraps an engine in the hosting interface. The engine stays the caller's;
 * the wrapper must be freed with iocomp_hosting_release() (which leaves the
 * engine alone). Thread: any. Errors: -EINVAL, -ENOMEM.
 * Memory: the engine's completion callback, once SetCLRIoCompletionManager()
 * installed a manager, reads the wrapper (its manager, its "runtime gone"
 * state and its counter): release the wrapper only when no completion of it
 * can run or be queued any more (every accepted request delivered and none
 * accepted after, e.g. SetCLRIoCompletionManager(NULL) once drained), or
 * after iocomp_engine_destroy() returned 0.
 */
IOCOMP_API int iocomp_hosting_create(iocomp_engine *e, iocomp_host_io_completion_manager **out);
IOCOMP_API void iocomp_hosting_release(iocomp_host_io_completion_manager *m);
/* The engine behind a wrapper. */
IOCOMP_API iocomp_engine *iocomp_hosting_engine(iocomp_host_io_completion_manager *m);

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
 * Memory: the instance (wrapper and engine) is iocomp's: never pass it to
 * iocomp_hosting_release() or iocomp_engine_destroy(); shutdown frees it.
 *
 * iocomp_hosting_shutdown() destroys it as iocomp_engine_destroy() does
 * (every port closed, every accepted request delivered first) and frees the
 * wrapper; a later call of iocomp_hosting_default() creates a new one.
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
IOCOMP_API iocomp_host_io_completion_manager *iocomp_hosting_default(void);
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
IOCOMP_API uint64_t iocomp_hosting_undelivered(iocomp_host_io_completion_manager *m);

#ifdef __cplusplus
}
#endif
#endif /* IOCOMP_HOSTING_H */
