/*
 * close_with_inflight: invariants 1 and 6. 10,000 packets are posted to a
 * port (callbacks slowed a little so most are still queued), then another
 * thread closes it. When close returns 0, all 10,000 callbacks have run
 * exactly once, and none runs after (a flag set at close return is never
 * seen by a callback of that port). Packets of another port keep flowing.
 * Repeated over several rounds with fresh ports.
 */
#include "test.h"

#define N 10000
#define OTHER_KEY_BASE 1000000u

static struct test_once once;
static atomic_int closed; /* set when close returned */
static atomic_uint_fast64_t after_close, other_calls;
static iocomp_engine *eng;
static iocomp_port_t victim;
static atomic_int close_rc;
static atomic_uint_fast64_t close_ns;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    if (key >= OTHER_KEY_BASE) {
        atomic_fetch_add(&other_calls, 1);
        return;
    }
    if (atomic_load(&closed))
        atomic_fetch_add(&after_close, 1);
    /* ~1 us of work: keeps the queue long while close starts */
    uint64_t end = test_now_ns() + 1000;
    while (test_now_ns() < end) {
    }
    test_once_hit(&once, key);
}

static void *closer(void *arg) {
    (void)arg;
    uint64_t t = test_now_ns();
    int rc = iocomp_port_close(eng, victim);
    /* Everything of the port has run now: check before anything else can. */
    atomic_store(&closed, 1);
    atomic_store(&close_ns, test_now_ns() - t);
    atomic_store(&close_rc, rc);
    return NULL;
}

int main(void) {
    test_begin("close_with_inflight", 0);
    eng = test_engine(2, 2, cb, NULL);
    iocomp_port_t other;
    CHECK_OK(iocomp_port_create(eng, &other));
    int rounds = (int)test_scaled_min(20, 3);

    for (int round = 0; round < rounds; round++) {
        test_once_init(&once, N);
        atomic_store(&closed, 0);
        CHECK_OK(iocomp_port_create(eng, &victim));
        for (uintptr_t i = 0; i < N; i++) {
            CHECK_OK(iocomp_post(eng, victim, 0, (uint32_t)i, NULL, i));
            if (i % 100 == 0)
                CHECK_OK(iocomp_post(eng, other, 0, 0, NULL, OTHER_KEY_BASE + i));
        }
        pthread_t t = test_thread(closer, NULL);
        test_join(t);
        CHECK_EQ(atomic_load(&close_rc), 0);
        /* At close return: every packet delivered, exactly once. */
        uint64_t at_return = atomic_load(&once.total);
        CHECK_MSG(at_return == N, "round %d: close returned with %" PRIu64 " of %d delivered",
                  round, at_return, N);
        test_once_check(&once, "close_with_inflight");
        /* Nothing after, and the handle is stale. */
        CHECK_EQ(iocomp_post(eng, victim, 0, 0, NULL, 0), -EBADF);
        CHECK_EQ(iocomp_port_close(eng, victim), -EBADF);
        test_sleep_us(10000);
        CHECK_EQ(atomic_load(&after_close), 0);
        CHECK_EQ(atomic_load(&once.total), N);
        if (round == 0)
            printf("close_with_inflight: close took %.2f ms\n", atomic_load(&close_ns) / 1e6);
        test_once_free(&once);
    }
    /* The other port was untouched and delivered everything. */
    TEST_WAIT_COUNT(&other_calls, (uint64_t)rounds * (N / 100), 5000);
    CHECK_OK(iocomp_post(eng, other, 0, 0, NULL, OTHER_KEY_BASE));
    TEST_WAIT_COUNT(&other_calls, (uint64_t)rounds * (N / 100) + 1, 5000);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_EQ(atomic_load(&after_close), 0);
    test_end();
}
