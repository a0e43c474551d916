/*
 * io_cancel_submit_race: iocomp_cancel on an overlapped whose first submit
 * is still inside iocomp_recv (claimed, not yet issued) neither touches the
 * request's fields nor loses the cancel. A cancel that returns 0 has asked
 * for the cancel: the request completes once, with -ECANCELED. One that
 * returns -ENOENT leaves it running: it completes with the data sent next.
 *
 * It used to fail on io_uring: a fresh overlapped's r->ring was whatever its
 * memory held (zero for iocomp_overlapped_init: "issued on slot 0"), so a
 * cancel in that window locked slot 0, marked the request cancelled and
 * answered 0; the submit then reset the mark and issued the recv, which was
 * never cancelled (a hang here, and a data race on r->cancelled under TSan:
 * the CI failure of io_cancel_race.uring).
 *
 * The fault seam IOCOMP_FAULT_PAUSE holds the submit for 50 ms right after
 * it read the binding; the main thread cancels 10 ms into it. Both kinds of
 * fresh overlapped (embedded, allocated), 6 rounds each.
 */
#include "test.h"

#include <iocomp/testing.h>

static iocomp_engine *eng;
static iocomp_overlapped *cur;
static int cur_fd;
static char buf[8];
static atomic_int inside, sub_rc;

static void *submitter(void *arg) {
    (void)arg;
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 1);
    atomic_store(&inside, 1);
    test_io_arm(cur);
    atomic_store(&sub_rc, test_io_settle(cur, iocomp_recv(eng, cur_fd, buf, sizeof buf, 0, cur)));
    return NULL;
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    test_io_fire(ov, status, bytes, key);
}

int main(void) {
    test_begin("io_cancel_submit_race", 0);
    eng = test_io_engine_n(2, cb, NULL);
    size_t size = iocomp_overlapped_size(eng);
    unsigned asked = 0, missed = 0;
    for (int round = 0; round < 12; round++) {
        bool embedded = round & 1;
        void *mem = NULL;
        iocomp_overlapped *ov = NULL;
        if (embedded) {
            mem = aligned_alloc(64, (size + 63) & ~(size_t)63);
            CHECK(mem != NULL);
            memset(mem, 0, size); /* what a host's zeroed memory holds */
            ov = mem;
            CHECK_OK(iocomp_overlapped_init(eng, ov));
        } else {
            ov = test_io_ov(eng, (uint64_t)round);
        }
        int sv[2];
        test_socketpair(sv);
        CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, sv[0], (uintptr_t)round));
        cur = ov;
        cur_fd = sv[0];
        atomic_store(&inside, 0);
        atomic_store(&sub_rc, 1);
        pthread_t t = test_thread(submitter, NULL);
        CHECK(TEST_WAIT_UNTIL(atomic_load(&inside), 5000));
        test_sleep_us(10000); /* inside the pause: claimed, fields not yet set */
        int rc = iocomp_cancel(eng, ov);
        CHECK_MSG(rc == 0 || rc == -ENOENT, "round %d: cancel during the submit: %d (%s)", round,
                  rc, test_errname(rc));
        pthread_join(t, NULL);
        CHECK_MSG(atomic_load(&sub_rc) == 0, "round %d: recv refused: %d", round,
                  atomic_load(&sub_rc));
        if (rc == 0) {
            asked++;
            CHECK_MSG(TEST_WAIT_UNTIL(atomic_load(&test_io_of(ov)->completions) == 1, 3000),
                      "round %d (%s): cancel returned 0, the recv never completed", round,
                      embedded ? "embedded" : "allocated");
            CHECK_MSG(atomic_load(&test_io_of(ov)->status) == -ECANCELED,
                      "round %d: a cancelled recv completed %d", round,
                      (int)atomic_load(&test_io_of(ov)->status));
        } else {
            missed++;
            CHECK_EQ(send(sv[1], "x", 1, 0), 1);
            CHECK_MSG(TEST_WAIT_UNTIL(atomic_load(&test_io_of(ov)->completions) == 1, 3000),
                      "round %d: the recv left running never got its byte", round);
            CHECK_EQ(atomic_load(&test_io_of(ov)->status), 0);
            CHECK_EQ(atomic_load(&test_io_of(ov)->bytes), 1u);
        }
        test_sleep_us(20000); /* no second completion */
        CHECK_EQ(atomic_load(&test_io_of(ov)->completions), 1u);
        CHECK_OK(iocomp_close_fd(eng, sv[0]));
        close(sv[1]);
        if (embedded)
            free(mem);
        else
            iocomp_overlapped_free(ov);
    }
    printf("io_cancel_submit_race: %s: %u cancels asked, %u answered -ENOENT\n",
           iocomp_backend_name(eng), asked, missed);
    CHECK_OK(iocomp_engine_destroy(eng));
    test_end();
    return 0;
}
