/*
 * io_submitter_exits: the thread that submitted a request exits before the
 * request completes (BRIEF §5 "the submitting thread exits before its
 * completion arrives"; §4 invariant 1). io_uring cancels a task's requests
 * when the task exits, so a backend that let host threads issue their own
 * requests would turn these into -ECANCELED (or lose them).
 *
 * THREADS short-lived host threads, each: a recv on its own socketpair (no
 * data yet), a 20 ms timer, a POLLIN poll on a second socketpair; then it
 * exits. After every thread is joined (and 30 ms more, so the timers fired
 * after their submitters were gone), the main thread sends the data: every
 * recv completes with exactly its bytes, every poll with POLLIN, every timer
 * with status 0, each exactly once, none cancelled. ROUNDS rounds.
 */
#include "test.h"

#include <poll.h>

#define THREADS 16

static iocomp_engine *eng;
struct job {
    int fd, peer, pfd, ppeer;
    iocomp_overlapped *rov, *tov, *pov;
    unsigned char buf[16];
};
static struct job jobs[THREADS];
static atomic_uint_fast64_t calls, bad;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

static void *submitter(void *arg) {
    struct job *j = arg;
    test_io_arm(j->rov);
    if (test_io_settle(j->rov, iocomp_recv(eng, j->fd, j->buf, sizeof j->buf, 0, j->rov)) != 0)
        atomic_fetch_add(&bad, 1);
    test_io_arm(j->tov);
    if (test_io_settle(j->tov, iocomp_timer(eng, IOCOMP_DEFAULT_PORT, 0x7E, 20000000u, 0,
                                            j->tov)) != 0)
        atomic_fetch_add(&bad, 1);
    test_io_arm(j->pov);
    if (test_io_settle(j->pov, iocomp_poll(eng, j->pfd, POLLIN, j->pov)) != 0)
        atomic_fetch_add(&bad, 1);
    return NULL;
}

int main(void) {
    test_begin("io_submitter_exits", 0);
    eng = test_io_engine_n(2, cb, NULL);
    for (int i = 0; i < THREADS; i++) {
        int a[2], b[2];
        test_socketpair(a);
        test_socketpair(b);
        jobs[i] = (struct job){.fd = a[0], .peer = a[1], .pfd = b[0], .ppeer = b[1]};
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, a[0], 0x100u + (unsigned)i));
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, b[0], 0x200u + (unsigned)i));
        jobs[i].rov = test_io_ov(eng, 1);
        jobs[i].tov = test_io_ov(eng, 2);
        jobs[i].pov = test_io_ov(eng, 3);
    }
    int rounds = (int)test_scaled_min(20, 5);
    for (int r = 0; r < rounds; r++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            t[i] = test_thread(submitter, &jobs[i]);
        for (int i = 0; i < THREADS; i++)
            test_join(t[i]);
        test_sleep_us(30000);
        char msg[16];
        for (int i = 0; i < THREADS; i++) {
            int len = snprintf(msg, sizeof msg, "r%d-t%d", r, i);
            CHECK_EQ(send(jobs[i].peer, msg, (size_t)len, 0), len);
            CHECK_EQ(send(jobs[i].ppeer, "p", 1, 0), 1);
        }
        for (int i = 0; i < THREADS; i++) {
            struct job *j = &jobs[i];
            int len = snprintf(msg, sizeof msg, "r%d-t%d", r, i);
            struct test_io *x = test_io_wait(j->rov, (uint64_t)r + 1, 5000);
            CHECK_MSG(atomic_load(&x->status) == 0, "round %d thread %d: recv status %d (%s)", r,
                      i, (int)atomic_load(&x->status), test_errname(atomic_load(&x->status)));
            CHECK_EQ(atomic_load(&x->bytes), len);
            CHECK(memcmp(j->buf, msg, (size_t)len) == 0);
            x = test_io_wait(j->tov, (uint64_t)r + 1, 5000);
            CHECK_MSG(atomic_load(&x->status) == 0, "round %d thread %d: timer status %d (%s)", r,
                      i, (int)atomic_load(&x->status), test_errname(atomic_load(&x->status)));
            x = test_io_wait(j->pov, (uint64_t)r + 1, 5000);
            CHECK_MSG(atomic_load(&x->status) == 0, "round %d thread %d: poll status %d (%s)", r,
                      i, (int)atomic_load(&x->status), test_errname(atomic_load(&x->status)));
            CHECK(atomic_load(&x->bytes) & POLLIN);
            char c;
            CHECK_EQ(recv(j->pfd, &c, 1, MSG_DONTWAIT), 1);
        }
    }
    test_sleep_us(20000);
    CHECK_EQ(atomic_load(&calls), (uint64_t)rounds * THREADS * 3);
    CHECK_EQ(atomic_load(&bad), 0);
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    for (int i = 0; i < THREADS; i++) {
        iocomp_overlapped_free(jobs[i].rov);
        iocomp_overlapped_free(jobs[i].tov);
        iocomp_overlapped_free(jobs[i].pov);
        CHECK_OK(close(jobs[i].fd));
        CHECK_OK(close(jobs[i].peer));
        CHECK_OK(close(jobs[i].pfd));
        CHECK_OK(close(jobs[i].ppeer));
    }
    test_end();
}
