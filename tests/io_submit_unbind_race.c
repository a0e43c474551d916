/*
 * io_submit_unbind_race: a submit that read the binding before an unbind
 * (iocomp_close_fd) and reaches the backend after its cancel pass is
 * cancelled, and never reaches the file that takes the number next (audit,
 * suspected item). It used to be linked after the pass, neither refused nor
 * cancelled; on io_uring the host path then duplicated the descriptor
 * number, by then the next file's.
 *
 * The fault seam IOCOMP_FAULT_PAUSE holds one submit for 50 ms right after
 * it read the binding. A host thread (and, in the second half, a callback)
 * submits a recv on socket X that way; meanwhile the main thread calls
 * iocomp_close_fd(X), makes a new socket pair whose first end gets X, binds
 * it and queues "new" on it. The paused recv must complete once with
 * -ECANCELED (or be refused), and a recv on the new binding then gets
 * "new", whole. 10 rounds each.
 */
#include "test.h"

#include <iocomp/testing.h>

#define KEY_OLD 1u
#define KEY_NEW 2u
#define KEY_RUN 3u

static iocomp_engine *eng;
static int xfd, sv[2];
static iocomp_overlapped *ov_old, *ov_new;
static char obuf[8], nbuf[8];
static atomic_int inside, old_rc;

static void submit_paused(void) {
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 1);
    atomic_store(&inside, 1);
    test_io_arm(ov_old);
    atomic_store(&old_rc, test_io_settle(ov_old, iocomp_recv(eng, xfd, obuf, sizeof obuf, 0, ov_old)));
}

static void *host_submitter(void *arg) {
    (void)arg;
    submit_paused();
    return NULL;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_RUN) {
        submit_paused();
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

int main(void) {
    test_begin("io_submit_unbind_race", 0);
    iocomp_config cfg = test_config(2, 2, cb, NULL);
    eng = test_io_engine(&cfg);
    ov_old = test_io_ov(eng, 1);
    ov_new = test_io_ov(eng, 2);
    for (int round = 0; round < 20; round++) {
        bool from_cb = round >= 10;
        test_socketpair(sv);
        xfd = sv[0];
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, xfd, KEY_OLD));
        uint64_t on = atomic_load(&test_io_of(ov_old)->completions);
        uint64_t nn = atomic_load(&test_io_of(ov_new)->completions);
        atomic_store(&inside, 0);
        atomic_store(&old_rc, 1);
        pthread_t t;
        if (from_cb)
            CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_RUN));
        else
            t = test_thread(host_submitter, NULL);
        CHECK(TEST_WAIT_UNTIL(atomic_load(&inside), 5000));
        test_sleep_us(10000); /* inside the 50 ms pause, binding read */
        CHECK_OK(iocomp_close_fd(eng, xfd));
        int nv[2];
        test_socketpair(nv);
        CHECK_MSG(nv[0] == xfd, "round %d: the new socket got %d, not %d", round, nv[0], xfd);
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, nv[0], KEY_NEW));
        CHECK_EQ(send(nv[1], "new", 3, 0), 3);
        if (!from_cb)
            test_join(t);
        CHECK(TEST_WAIT_UNTIL(atomic_load(&old_rc) != 1, 5000));
        int rc = atomic_load(&old_rc);
        if (rc == 0) {
            struct test_io *o = test_io_wait(ov_old, on + 1, 3000);
            CHECK_MSG(atomic_load(&o->status) == -ECANCELED,
                      "round %d (%s): the recv submitted on the old socket completed %d with %u bytes "
                      "(key %lu) instead of -ECANCELED", round, from_cb ? "callback" : "host",
                      (int)atomic_load(&o->status), (unsigned)atomic_load(&o->bytes),
                      (unsigned long)atomic_load(&o->key));
        } else {
            CHECK_MSG(rc == -EBADF, "round %d: the paused submit returned %d", round, rc);
        }
        test_io_arm(ov_new);
        CHECK_OK(test_io_settle(ov_new, iocomp_recv(eng, nv[0], nbuf, sizeof nbuf, 0, ov_new)));
        struct test_io *n = test_io_wait(ov_new, nn + 1, 3000);
        CHECK_EQ(atomic_load(&n->status), 0);
        CHECK_MSG(atomic_load(&n->bytes) == 3 && memcmp(nbuf, "new", 3) == 0,
                  "round %d: the new socket's data was taken (%u bytes left)", round,
                  (unsigned)atomic_load(&n->bytes));
        CHECK_OK(iocomp_close_fd(eng, nv[0]));
        CHECK_OK(close(nv[1]));
        CHECK_OK(close(sv[1]));
    }
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(ov_old);
    iocomp_overlapped_free(ov_new);
    test_end();
}
