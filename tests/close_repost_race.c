/*
 * close_repost_race: invariants 1 and 6 on the worker path. Callbacks keep
 * re-posting chains, to the port being closed (same-port posts, which need
 * no accept/close Dekker pair, port.c) and across to a second port (the
 * seq_cst path), while a host thread closes the first port. Every post that
 * returned 0 is delivered exactly once, and nothing of the closed port runs
 * after close returns; refused posts (-ESHUTDOWN, then -EBADF) end a chain.
 */
#include "test.h"

#define CHAINS 64
#define MAX_ID (1u << 22)

static iocomp_engine *eng;
static iocomp_port_t victim, other;
static _Atomic uint8_t accepted[MAX_ID], seen[MAX_ID];
static atomic_uint next_id;
static atomic_int closed;
static atomic_uint_fast64_t after_close, refused, wild;

/* key: id << 1 | (1 if it was posted to the victim) */
static void post_one(iocomp_port_t to) {
    uint32_t id = atomic_fetch_add(&next_id, 1);
    if (id >= MAX_ID) return; /* the chain ends */
    uintptr_t key = (uintptr_t)id << 1 | (to == victim);
    atomic_store(&accepted[id], 1); /* before the post: its callback may run at once */
    int rc = iocomp_post(eng, to, 0, 0, NULL, key);
    if (rc != 0) {
        atomic_store(&accepted[id], 0);
        /* The victim refuses once its close began; `other` only while the
         * test closes it, after the victim's close returned. */
        CHECK_MSG((to == victim || atomic_load(&closed)) && (rc == -ESHUTDOWN || rc == -EBADF),
                  "post to %s = %d", to == victim ? "victim" : "other", rc);
        atomic_fetch_add(&refused, 1);
    }
}

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    uint32_t id = (uint32_t)(key >> 1);
    if (id >= MAX_ID) {
        atomic_fetch_add(&wild, 1);
        return;
    }
    if ((key & 1) && atomic_load(&closed)) atomic_fetch_add(&after_close, 1);
    atomic_fetch_add(&seen[id], 1);
    /* Alternate: same port (the relaxed path) and the other port (seq_cst). */
    iocomp_port_t mine = (key & 1) ? victim : other;
    post_one(id % 3 == 0 ? (mine == victim ? other : victim) : mine);
}

int main(void) {
    test_begin("close_repost_race", 0);
    eng = test_engine(2, 2, cb, NULL);
    int rounds = (int)test_scaled_min(30, 3);
    uint64_t seed = 7, total = 0;
    for (int r = 0; r < rounds; r++) {
        memset((void *)accepted, 0, sizeof accepted);
        memset((void *)seen, 0, sizeof seen);
        atomic_store(&next_id, 0);
        atomic_store(&closed, 0);
        CHECK_OK(iocomp_port_create(eng, &victim));
        CHECK_OK(iocomp_port_create(eng, &other));
        for (int i = 0; i < CHAINS; i++) post_one(i % 2 ? victim : other);
        test_sleep_us((unsigned)(200 + test_rand(&seed) % 3000));
        CHECK_OK(iocomp_port_close(eng, victim));
        atomic_store(&closed, 1);
        /* The chains on `other` end when they cross to the closed victim or
         * run out of ids; close `other` to wait for the rest. */
        CHECK_OK(iocomp_port_close(eng, other));
        CHECK_EQ(atomic_load(&after_close), 0);
        CHECK_EQ(atomic_load(&wild), 0);
        uint32_t n = atomic_load(&next_id);
        if (n > MAX_ID) n = MAX_ID;
        for (uint32_t id = 0; id < n; id++)
            CHECK_MSG(atomic_load(&seen[id]) == atomic_load(&accepted[id]),
                      "round %d packet %u: accepted %u, delivered %u times", r, id,
                      atomic_load(&accepted[id]), atomic_load(&seen[id]));
        total += n;
    }
    printf("close_repost_race: %d rounds, %" PRIu64 " posts, %" PRIu64 " refused\n", rounds, total,
           (uint64_t)atomic_load(&refused));
    CHECK(atomic_load(&refused) > 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    test_end();
}
