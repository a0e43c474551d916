/*
 * close_post_race: invariants 1 and 6 with posts racing the close. Two
 * threads post to a port as fast as they can while a third closes it. Every
 * post that returned 0 is delivered exactly once, before close returns; every
 * refused one (-ESHUTDOWN while closing, -EBADF after) is never delivered;
 * once a poster is refused, it is refused from then on.
 */
#include "test.h"

#define POSTERS 2
#define PER_POSTER (1u << 20)

static iocomp_engine *eng;
static iocomp_port_t victim;
static uint8_t accepted[POSTERS][PER_POSTER];
static _Atomic uint8_t seen[POSTERS][PER_POSTER];
static atomic_int closed, stop;
static atomic_uint_fast64_t after_close, wild;
static uint64_t posted[POSTERS];
static pthread_barrier_t go;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)ov;
    if (atomic_load(&closed))
        atomic_fetch_add(&after_close, 1);
    if ((uint32_t)status >= POSTERS || bytes >= PER_POSTER || key != ((uintptr_t)status << 32 | bytes)) {
        atomic_fetch_add(&wild, 1);
        return;
    }
    atomic_fetch_add(&seen[status][bytes], 1);
}

static void *poster(void *arg) {
    uint32_t who = (uint32_t)(uintptr_t)arg;
    pthread_barrier_wait(&go);
    bool refused = false;
    uint32_t i;
    for (i = 0; i < PER_POSTER && !atomic_load(&stop); i++) {
        int rc = iocomp_post(eng, victim, (int32_t)who, i, NULL, (uintptr_t)who << 32 | i);
        if (rc == 0) {
            CHECK_MSG(!refused, "poster %u: post %u accepted after a refusal", who, i);
            accepted[who][i] = 1;
        } else {
            CHECK_MSG(rc == -ESHUTDOWN || rc == -EBADF, "poster %u: post %u = %d", who, i, rc);
            refused = true;
            if (i % 64 == 0)
                sched_yield();
        }
    }
    posted[who] = i;
    return NULL;
}

int main(void) {
    test_begin("close_post_race", 0);
    eng = test_engine(2, 2, cb, NULL);
    int rounds = (int)test_scaled_min(40, 4);
    uint64_t seed = 42, total_acc = 0, total_ref = 0;
    CHECK_OK(pthread_barrier_init(&go, NULL, POSTERS + 1));

    for (int round = 0; round < rounds; round++) {
        memset(accepted, 0, sizeof accepted);
        memset((void *)seen, 0, sizeof seen);
        atomic_store(&closed, 0);
        atomic_store(&stop, 0);
        CHECK_OK(iocomp_port_create(eng, &victim));
        pthread_t t[POSTERS];
        for (uintptr_t i = 0; i < POSTERS; i++)
            t[i] = test_thread(poster, (void *)i);
        pthread_barrier_wait(&go);
        test_sleep_us((unsigned)(test_rand(&seed) % 3000));
        int rc = iocomp_port_close(eng, victim);
        atomic_store(&closed, 1);
        CHECK_EQ(rc, 0);
        test_sleep_us(2000); /* posters keep trying against the closed port */
        atomic_store(&stop, 1);
        for (int i = 0; i < POSTERS; i++)
            test_join(t[i]);
        test_sleep_us(5000);
        CHECK_EQ(atomic_load(&after_close), 0);
        CHECK_EQ(atomic_load(&wild), 0);
        for (int w = 0; w < POSTERS; w++)
            for (uint32_t i = 0; i < posted[w]; i++) {
                uint8_t s = atomic_load(&seen[w][i]);
                CHECK_MSG(s == accepted[w][i], "round %d poster %d packet %u: accepted %u, delivered %u times",
                          round, w, i, accepted[w][i], s);
                total_acc += accepted[w][i];
                total_ref += !accepted[w][i];
            }
    }
    printf("close_post_race: %d rounds, %" PRIu64 " accepted, %" PRIu64 " refused\n", rounds, total_acc,
           total_ref);
    CHECK(total_acc > 0);
    CHECK(total_ref > 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    CHECK_OK(pthread_barrier_destroy(&go));
    test_end();
}
