/*
 * io_cancel_twice: a second cancel of a request whose first cancel took it
 * out before it was issued returns at once (audit defect 3). On io_uring a
 * host thread's request waits in its slot's hand-off list until the owner
 * worker issues it; a cancel there completes it -ECANCELED through the inject
 * queue, and a second iocomp_cancel() used to spin until that packet ran:
 * forever when the canceller is the callback of the only worker.
 *
 * One worker. In each round a callback lets a host thread submit a recv
 * (no data: it waits; on io_uring it sits in the busy worker's hand-off
 * list), then, still inside the callback, ends it one way (iocomp_cancel,
 * iocomp_cancel_fd, iocomp_unbind) and calls iocomp_cancel(ov) again: it
 * must return (0 or -ENOENT; the watchdog catches a spin) and the recv must
 * complete exactly once with -ECANCELED. The same from the host thread.
 */
#include "test.h"

#define KEY_RUN 0xC0FFEEu
#define ROUNDS 30

enum { HOW_CANCEL, HOW_CANCEL_FD, HOW_UNBIND, HOW_N };

static iocomp_engine *eng;
static int sv[2];
static iocomp_overlapped *rov;
static char rbuf[8];
static atomic_int want, submitted; /* the round the callback waits for / the host submitted */
static atomic_int how, second_rc, first_rc;
static atomic_uint_fast64_t rounds_done;

static void *host_submitter(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS * HOW_N; i++) {
        while (atomic_load(&want) != i + 1)
            sched_yield();
        test_io_arm(rov);
        CHECK_OK(test_io_settle(rov, iocomp_recv(eng, sv[0], rbuf, sizeof rbuf, 0, rov)));
        atomic_store(&submitted, i + 1);
    }
    return NULL;
}

static int end_it(int h) {
    switch (h) {
    case HOW_CANCEL: return iocomp_cancel(eng, rov);
    case HOW_CANCEL_FD: return iocomp_cancel_fd(eng, sv[0]) == 1 ? 0 : -1;
    default: return iocomp_unbind(eng, sv[0]);
    }
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (key == KEY_RUN) {
        int round = (int)atomic_load(&rounds_done) + 1;
        atomic_store(&want, round);
        while (atomic_load(&submitted) != round)
            sched_yield();
        atomic_store(&first_rc, end_it(atomic_load(&how)));
        atomic_store(&second_rc, iocomp_cancel(eng, rov)); /* used to spin here forever */
        atomic_fetch_add(&rounds_done, 1);
        return;
    }
    test_io_fire(ov, status, bytes, key);
}

static void check_round(int h, uint64_t n, const char *where) {
    struct test_io *t = test_io_wait(rov, n, 3000);
    CHECK_MSG(atomic_load(&first_rc) == 0, "%s, way %d: the first cancel returned %d", where, h,
              (int)atomic_load(&first_rc));
    int rc = atomic_load(&second_rc);
    CHECK_MSG(rc == 0 || rc == -ENOENT, "%s, way %d: the second cancel returned %d", where, h, rc);
    CHECK_EQ(atomic_load(&t->status), -ECANCELED);
    if (h == HOW_UNBIND)
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 7));
}

int main(void) {
    test_begin("io_cancel_twice", 0);
    eng = test_io_engine_n(1, cb, NULL);
    test_socketpair(sv);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], 7));
    rov = test_io_ov(eng, 1);
    pthread_t th = test_thread(host_submitter, NULL);
    uint64_t n = 0;
    for (int i = 0; i < ROUNDS * HOW_N; i++) {
        int h = i % HOW_N;
        atomic_store(&how, h);
        uint64_t before = atomic_load(&rounds_done);
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_RUN));
        TEST_WAIT_COUNT(&rounds_done, before + 1, 10000);
        check_round(h, ++n, "from a callback");
    }
    test_join(th);
    /* From the host thread: both cancels on this thread, the worker idle. */
    for (int i = 0; i < ROUNDS * HOW_N; i++) {
        int h = i % HOW_N;
        test_io_arm(rov);
        CHECK_OK(test_io_settle(rov, iocomp_recv(eng, sv[0], rbuf, sizeof rbuf, 0, rov)));
        atomic_store(&first_rc, end_it(h));
        atomic_store(&second_rc, iocomp_cancel(eng, rov));
        check_round(h, ++n, "from the host");
    }
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    iocomp_overlapped_free(rov);
    CHECK_OK(close(sv[0]));
    CHECK_OK(close(sv[1]));
    test_end();
}
