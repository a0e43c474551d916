/*
 * io_hosting_runtime_gone: OnComplete's own return value, as its page defines
 * it (issue 14 item 8). E_FAIL or HOST_E_CLRNOTAVAILABLE says the runtime is
 * gone: iocomp calls no further OnComplete of that manager; later
 * completions are still consumed exactly once but only counted
 * (iocomp_hosting_undelivered()), one line on stderr says so once; S_OK (and
 * a new SetCLRIoCompletionManager) goes on. On each backend:
 *   1. a manager that answers HOST_E_CLRNOTAVAILABLE: after its first call,
 *      100 posts (default port and a port of CreateIoCompletionPort), a recv
 *      that finds data and a cancelled recv reach no OnComplete (its calls
 *      stay 1) and are counted (102); stderr got exactly one "runtime is
 *      gone" line; CloseIoCompletionPort of a port with 10 packets queued is
 *      S_OK and counts them (112);
 *   2. re-armed with a manager that answers E_FAIL: one call, then 5 posts
 *      counted (117), its calls stay 1;
 *   3. re-armed with one that answers S_OK: 3 posts delivered (calls 3),
 *      nothing more counted;
 *   4. the first manager again, gone again, 50 posts queued and
 *      iocomp_engine_destroy() == 0 at once: all consumed, counted (167),
 *      that manager's calls 2;
 *   5. the default instance (iocomp_hosting_default()) with a gone manager:
 *      20 posts counted, iocomp_hosting_shutdown() == S_OK.
 * On the old code OnComplete's result was ignored: the gone manager's calls
 * grow with every completion (and the counter did not exist).
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"

struct clr {
    ICLRIoCompletionManager vt;
    HRESULT answer;
    atomic_uint_fast64_t calls;
};

static HRESULT on_complete(ICLRIoCompletionManager *self, DWORD err, DWORD bytes,
                           void *ov) {
    (void)err, (void)bytes;
    struct clr *c = (struct clr *)self;
    if (ov)
        test_io_fire(ov, (int32_t)err, bytes, 0);
    atomic_fetch_add(&c->calls, 1);
    /* A gone answer takes 2 ms: the window between the call counting itself
     * and iocomp switching the manager off (WAIT_GONE) is then open on every
     * run, not once in hundreds (a TSan run hit it). */
    if (c->answer != S_OK) test_sleep_us(2000);
    return c->answer;
}

static const ICLRIoCompletionManagerVtbl clr_vtbl = TEST_CLR_VTBL(on_complete);
static struct clr gone1 = {{&clr_vtbl}, HOST_E_CLRNOTAVAILABLE, 0};
static struct clr gone2 = {{&clr_vtbl}, E_FAIL, 0};
static struct clr good = {{&clr_vtbl}, S_OK, 0};
static struct clr gone_default = {{&clr_vtbl}, HOST_E_CLRNOTAVAILABLE, 0};

static void post_n(iocomp_engine *e, HANDLE port, int n) {
    for (int i = 0; i < n; i++)
        CHECK_OK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, (uint32_t)i, NULL, 0));
}

#define WAIT_UNDELIVERED(m, n)                                                                 \
    CHECK_MSG(TEST_WAIT_UNTIL(iocomp_hosting_undelivered(m) == (n), 5000),                   \
              "undelivered %llu, want %llu", (unsigned long long)iocomp_hosting_undelivered(m), \
              (unsigned long long)(n))

/* stderr goes to log_fd while the test counts the report; on a failed CHECK
 * (abort) this hands what it holds back to the real stderr. */
static int log_fd = -1, saved_err = -1;
static void on_abort(int sig) {
    (void)sig;
    char b[4096];
    ssize_t n;
    off_t off = 0;
    while (log_fd >= 0 && saved_err >= 0 && (n = pread(log_fd, b, sizeof b, off)) > 0) {
        ssize_t w = write(saved_err, b, (size_t)n);
        (void)w;
        off += n;
    }
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

/* Reports in the log so far (read with pread: the offset is the writers'). */
static int count_reports(void) {
    fflush(stderr);
    static char text[1 << 16];
    ssize_t n = pread(log_fd, text, sizeof text - 1, 0);
    CHECK(n >= 0);
    text[n] = 0;
    int k = 0;
    for (const char *q = text; (q = strstr(q, "runtime is gone")) != NULL; q++)
        k++;
    return k;
}
/* Exactly n reports: waits for the n-th (its writer may still be in
 * fprintf), then a little longer for a wrong extra one. */
#define CHECK_REPORTS(n)                                                                     \
    do {                                                                                     \
        CHECK_MSG(TEST_WAIT_UNTIL(count_reports() >= (n), 5000), "reports %d, want %d",    \
                  count_reports(), (n));                                                     \
        test_sleep_us(20000);                                                                \
        CHECK_MSG(count_reports() == (n), "reports %d, want %d", count_reports(), (n));     \
    } while (0)

/* The manager whose first OnComplete said the runtime is gone is switched
 * off (GONE) before its report is written: after the n-th report, no packet
 * posted later can reach it. Waiting for its call count alone is not enough:
 * the call counts itself before it returns, and a packet posted then can be
 * delivered to it by the other worker before the switch (a second call that
 * the contract allows: it started before the first returned). */
#define WAIT_GONE(n)                                                                         \
    CHECK_MSG(TEST_WAIT_UNTIL(count_reports() >= (n), 5000), "reports %d, want %d", count_reports(), (n))

int main(void) {
    test_begin("io_hosting_runtime_gone", 0);
    iocomp_engine *e = test_io_engine_n(2, NULL, NULL);
    printf("io_hosting_runtime_gone: backend %s\n", iocomp_backend_name(e));
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    HANDLE port = NULL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &port), S_OK);

    /* stderr into a temporary file, to count the report. */
    FILE *log = tmpfile();
    CHECK(log != NULL);
    fflush(stderr);
    saved_err = dup(2);
    CHECK(saved_err >= 0);
    log_fd = fileno(log);
    CHECK(fcntl(log_fd, F_SETFL, O_APPEND) == 0); /* every write at the end */
    signal(SIGABRT, on_abort);
    CHECK(dup2(log_fd, 2) == 2);

    /* 1. HOST_E_CLRNOTAVAILABLE: the first call is the last. */
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &gone1.vt), S_OK);
    post_n(e, NULL, 1);
    TEST_WAIT_COUNT(&gone1.calls, 1, 5000);
    WAIT_GONE(1);
    CHECK_EQU(iocomp_hosting_undelivered(m), 0);
    post_n(e, NULL, 50);
    post_n(e, port, 50);
    int sv[2];
    test_socketpair(sv);
    CHECK_EQU(m->lpVtbl->Bind(m, NULL, (HANDLE)(intptr_t)sv[0]), S_OK);
    iocomp_overlapped *ov_data = test_io_ov(e, 1), *ov_cancel = test_io_ov(e, 2);
    char buf[16], buf2[16];
    CHECK_EQ(send(sv[1], "x", 1, 0), 1);
    CHECK_OK(iocomp_recv(e, sv[0], buf, sizeof buf, 0, ov_data));
    WAIT_UNDELIVERED(m, 101u);
    CHECK_OK(iocomp_recv(e, sv[0], buf2, sizeof buf2, 0, ov_cancel));
    test_sleep_us(5000);
    CHECK_OK(iocomp_cancel(e, ov_cancel));
    WAIT_UNDELIVERED(m, 102u);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&gone1.calls), 1);
    CHECK_REPORTS(1);
    /* Closing a port with packets queued still works and drains them. */
    HANDLE p2 = NULL;
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &p2), S_OK);
    post_n(e, p2, 10);
    CHECK_EQU(m->lpVtbl->CloseIoCompletionPort(m, p2), S_OK);
    WAIT_UNDELIVERED(m, 112u);
    CHECK_EQ(atomic_load(&gone1.calls), 1);

    /* 2. E_FAIL: the same, for a new manager. */
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &gone2.vt), S_OK);
    post_n(e, port, 1);
    TEST_WAIT_COUNT(&gone2.calls, 1, 5000);
    WAIT_GONE(2);
    post_n(e, port, 5);
    WAIT_UNDELIVERED(m, 117u);
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&gone2.calls), 1);
    CHECK_REPORTS(2);

    /* 3. S_OK: delivered again, nothing counted. */
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &good.vt), S_OK);
    post_n(e, port, 3);
    TEST_WAIT_COUNT(&good.calls, 3, 5000);
    test_sleep_us(20000);
    CHECK_EQU(iocomp_hosting_undelivered(m), 117u);
    CHECK_EQ(atomic_load(&gone1.calls), 1);
    CHECK_EQ(atomic_load(&gone2.calls), 1);

    /* 4. Gone again, then a destroy with packets queued. */
    CHECK_EQU(m->lpVtbl->SetCLRIoCompletionManager(m, &gone1.vt), S_OK);
    post_n(e, NULL, 1);
    TEST_WAIT_COUNT(&gone1.calls, 2, 5000);
    WAIT_GONE(3);
    post_n(e, NULL, 25);
    post_n(e, port, 25);
    CHECK_OK(iocomp_close_fd(e, sv[0]));
    CHECK_OK(close(sv[1]));
    CHECK_OK(iocomp_engine_destroy(e));
    CHECK_EQU(iocomp_hosting_undelivered(m), 167u);
    CHECK_EQ(atomic_load(&gone1.calls), 2);
    CHECK_EQ(atomic_load(&good.calls), 3);
    CHECK_REPORTS(3);
    iocomp_hosting_release(m);
    iocomp_overlapped_free(ov_data);
    iocomp_overlapped_free(ov_cancel);

    /* 5. The default instance: a gone runtime, then shutdown. */
    IHostIoCompletionManager *d = iocomp_hosting_default();
    CHECK(d != NULL);
    CHECK_EQU(d->lpVtbl->SetCLRIoCompletionManager(d, &gone_default.vt), S_OK);
    iocomp_engine *de = iocomp_hosting_engine(d);
    post_n(de, NULL, 1);
    TEST_WAIT_COUNT(&gone_default.calls, 1, 5000);
    WAIT_GONE(4);
    post_n(de, NULL, 20);
    WAIT_UNDELIVERED(d, 20u);
    CHECK_EQU(iocomp_hosting_shutdown(), S_OK);
    CHECK_EQ(atomic_load(&gone_default.calls), 1);
    CHECK_REPORTS(4);

    fflush(stderr);
    CHECK(dup2(saved_err, 2) == 2);
    signal(SIGABRT, SIG_DFL);
    CHECK_OK(close(saved_err));
    saved_err = log_fd = -1;
    CHECK_OK(fclose(log));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    test_end();
}
