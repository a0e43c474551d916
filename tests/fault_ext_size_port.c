/*
 * fault_ext_size_port: a port that could not be created does not fix the host
 * overlapped size (audit defect 10, the port half). With IOCOMP_FAULT_ALLOC
 * failing the allocation of the first block of port slots:
 * iocomp_port_create() -ENOMEM, CreateIoCompletionPort() E_OUTOFMEMORY, the
 * default port's creation on first use (a post to it, a bind to it) -ENOMEM.
 * After each, iocomp_set_host_overlapped_size() still succeeds; after the
 * same call succeeds, it is -EBUSY. Needs the fault seams.
 */
#include "test.h"

#include <iocomp/hosting.h>

#include "test_clr.h"
#include <iocomp/testing.h>

static struct test_counter ctr;

static iocomp_engine *make(void) {
    iocomp_engine *e = test_engine(1, 1, test_counter_cb, &ctr);
    return e;
}

static void check_settable(iocomp_engine *e, size_t to, const char *after) {
    int rc = iocomp_set_host_overlapped_size(e, to);
    CHECK_MSG(rc == 0, "set_host_overlapped_size after %s: %d (%s)", after, rc, iocomp_strerror(rc));
    size_t s = 0;
    CHECK_OK(iocomp_get_host_overlapped_size(e, &s));
    CHECK_EQ(s, to);
}

/* Runs expr with the next library allocation failing; returns its result and
 * checks that exactly that one failure was injected. */
#define WITH_ALLOC_FAULT(expr)                                                     \
    ({                                                                             \
        iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 1);                                   \
        int wf_rc_ = (int)(expr);                                                  \
        uint64_t wf_inj_ = iocomp_fault_injected(IOCOMP_FAULT_ALLOC);              \
        iocomp_fault_arm(IOCOMP_FAULT_ALLOC, 0);                                   \
        CHECK_MSG(wf_inj_ == 1, "%s: %" PRIu64 " failures injected", #expr, wf_inj_); \
        wf_rc_;                                                                    \
    })

int main(void) {
    test_begin("fault_ext_size_port", 0);

    /* iocomp_port_create */
    iocomp_engine *e = make();
    iocomp_port_t p = 77;
    CHECK_EQ(WITH_ALLOC_FAULT(iocomp_port_create(e, &p)), -ENOMEM);
    check_settable(e, 32, "port_create -ENOMEM");
    CHECK_OK(iocomp_port_create(e, &p));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 48), -EBUSY);
    CHECK_OK(iocomp_engine_destroy(e));

    /* CreateIoCompletionPort */
    e = make();
    IHostIoCompletionManager *m = NULL;
    CHECK_OK(iocomp_hosting_create(e, &m));
    HANDLE h = (HANDLE)(uintptr_t)0x5e17;
    CHECK_EQU(WITH_ALLOC_FAULT(m->lpVtbl->CreateIoCompletionPort(m, &h)), E_OUTOFMEMORY);
    check_settable(e, 32, "CreateIoCompletionPort E_OUTOFMEMORY");
    CHECK_EQU(m->lpVtbl->CreateIoCompletionPort(m, &h), S_OK);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 48), -EBUSY);
    iocomp_hosting_release(m);
    CHECK_OK(iocomp_engine_destroy(e));

    /* The default port, created on first use: by a post ... */
    e = make();
    CHECK_EQ(WITH_ALLOC_FAULT(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0)), -ENOMEM);
    check_settable(e, 32, "post to the default port -ENOMEM");
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    TEST_WAIT_COUNT(&ctr.calls, 1, 5000);
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 48), -EBUSY);
    CHECK_OK(iocomp_engine_destroy(e));

    /* ... and by a bind to it. */
    e = make();
    int pfd[2];
    CHECK_OK(pipe(pfd));
    CHECK_EQ(WITH_ALLOC_FAULT(iocomp_bind(e, IOCOMP_DEFAULT_PORT, pfd[0], 1)), -ENOMEM);
    check_settable(e, 32, "bind to the default port -ENOMEM");
    CHECK_OK(iocomp_bind(e, IOCOMP_DEFAULT_PORT, pfd[0], 1));
    CHECK_EQ(iocomp_set_host_overlapped_size(e, 48), -EBUSY);
    CHECK_OK(iocomp_engine_destroy(e));
    close(pfd[0]);
    close(pfd[1]);

    CHECK_EQ(atomic_load(&ctr.calls), 1);
    test_end();
}
