/*
 * io_hosting_status: ICLRIoCompletionManager::OnComplete's dwErrorCode is "an
 * HRESULT value" (the OnComplete page; issue 14 item 8), for real I/O on each
 * backend, through the hosting face (iocomp_hosting_create() +
 * SetCLRIoCompletionManager):
 *   - a recv that finds data: S_OK (0), bytes the data's length;
 *   - a posted completion with status 0: S_OK;
 *   - a pending recv cancelled (iocomp_cancel): HOST_E_INTERRUPTED
 *     (0x80131021), bytes 0 (before: 995, ERROR_OPERATION_ABORTED);
 *   - a connect to a closed TCP port on 127.0.0.1 (bound, not listening):
 *     HRESULT_FROM_WIN32(ERROR_CONNECTION_REFUSED) = 0x800704C9 (before:
 *     1225);
 *   - a posted status the table does not know (-4000): E_FAIL (before: 31).
 * Each completion reaches OnComplete exactly once (the armed flag of test.h),
 * with the overlapped submitted, the manager's own object as self, and
 * iocomp_hosting_undelivered() stays 0 (every OnComplete returns S_OK).
 * On the old code the cancel, connect and unknown cases fail (Win32 codes);
 * the S_OK cases cannot tell (S_OK == ERROR_SUCCESS == 0) and are here for
 * the contract.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

struct clr {
    ICLRIoCompletionManager vt;
    atomic_uint_fast64_t calls;
    _Atomic(void *) last_self;
};

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    struct clr *c = (struct clr *)self;
    atomic_store(&c->last_self, (void *)self);
    if (ov)
        test_io_fire(ov, (int32_t)err, bytes, 0); /* status field: the HRESULT */
    atomic_fetch_add(&c->calls, 1);
    return S_OK;
}

static iocomp_engine *eng;
static struct clr clr;

/* Submitted with rc; waits for its one OnComplete and checks the HRESULT. */
static void expect(iocomp_overlapped *ov, uint64_t base, int rc, HRESULT want, uint32_t bytes,
                   int line) {
    CHECK_MSG(test_io_settle(ov, rc) == 0, "line %d: submit returned %d (%s)", line, rc,
              test_errname(rc));
    struct test_io *t = test_io_wait(ov, base + 1, 5000);
    uint32_t got = (uint32_t)atomic_load(&t->status);
    CHECK_MSG(got == (uint32_t)want, "line %d: dwErrorCode 0x%08x, want 0x%08x", line,
              (unsigned)got, (unsigned)(uint32_t)want);
    CHECK_MSG(atomic_load(&t->bytes) == bytes, "line %d: bytes %u, want %u", line,
              (unsigned)atomic_load(&t->bytes), (unsigned)bytes);
    CHECK(atomic_load(&clr.last_self) == (void *)&clr);
}
#define BASE(ov) atomic_load(&test_io_of(ov)->completions)

int main(void) {
    test_begin("io_hosting_status", 0);
    eng = test_io_engine_n(2, NULL, NULL); /* test_io extensions; no C callback */
    printf("io_hosting_status: backend %s\n", iocomp_backend_name(eng));
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(eng, &m));
    static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
    clr.vt.lpVtbl = &clr_vtbl;
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &clr.vt), S_OK);
    iocomp_overlapped *ov = test_io_ov(eng, 1);
    char buf[64];

    /* A recv that finds data: S_OK. */
    int sv[2];
    test_socketpair(sv);
    CHECK_EQU(m->lpVtbl->Bind(m, NULL, (HANDLE)(intptr_t)sv[0]), S_OK);
    CHECK_EQ(send(sv[1], "hello", 5, 0), 5);
    uint64_t b = BASE(ov);
    test_io_arm(ov);
    expect(ov, b, iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov), S_OK, 5, __LINE__);
    CHECK(memcmp(buf, "hello", 5) == 0);

    /* A posted completion with status 0: S_OK. */
    b = BASE(ov);
    test_io_arm(ov);
    expect(ov, b, iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 3, ov, 0), S_OK, 3, __LINE__);

    /* A pending recv, cancelled: HOST_E_INTERRUPTED. */
    b = BASE(ov);
    test_io_arm(ov);
    CHECK_OK(iocomp_recv(eng, sv[0], buf, sizeof buf, 0, ov));
    test_sleep_us(5000);
    CHECK_EQ(BASE(ov), b); /* still pending */
    CHECK_OK(iocomp_cancel(eng, ov));
    expect(ov, b, 0, HOST_E_INTERRUPTED, 0, __LINE__);
    CHECK_EQU((uint32_t)HOST_E_INTERRUPTED, 0x80131021u);

    /* A refused connect: HRESULT_FROM_WIN32(ERROR_CONNECTION_REFUSED). */
    struct sockaddr_in dead;
    int holder = test_tcp_socket(false, &dead);
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(c >= 0);
    CHECK_EQU(m->lpVtbl->Bind(m, NULL, (HANDLE)(intptr_t)c), S_OK);
    b = BASE(ov);
    test_io_arm(ov);
    expect(ov, b, iocomp_connect(eng, c, (struct sockaddr *)&dead, sizeof dead, ov),
           (HRESULT)0x800704C9u, 0, __LINE__);
    CHECK_EQU((uint32_t)HRESULT_FROM_WIN32(1225), 0x800704C9u);

    /* A status the table does not know: E_FAIL. */
    b = BASE(ov);
    test_io_arm(ov);
    expect(ov, b, iocomp_post(eng, IOCOMP_DEFAULT_PORT, -4000, 0, ov, 0), E_FAIL, 0, __LINE__);

    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&clr.calls), 5);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_EQU(iocomp_hosting_undelivered(m), 0);

    CHECK_OK(iocomp_close_fd(eng, c));
    CHECK_OK(close(holder));
    CHECK_OK(iocomp_close_fd(eng, sv[0]));
    CHECK_OK(close(sv[1]));
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&clr.calls), 5);
    iocomp_hosting_release(m); /* after the destroy: no completion can run */
    iocomp_overlapped_free(ov);
    test_end();
}
