/*
 * close_deep_nest: closes nested twelve deep from callbacks all return 0,
 * and the deepest one, closing the port whose callback is at the bottom of
 * the stack, counts that callback as its own (the frame list of
 * ioc_dispatch; the fixed array it replaced recorded 8 frames).
 *
 * One worker, ports P0..P11, one packet queued on each (P0's callback waits
 * until all are queued). The callback of Pk (k < 11) closes P(k+1): the
 * helping close runs P(k+1)'s packet nested, whose callback closes P(k+2)...
 * down to depth 12, where P11's callback closes P0 (its callback is at depth
 * 1, still open): 0 at once, and every close returns 0. 5 rounds.
 *
 * (A close whose own port's callback sits deeper than 8 frames needs a
 * nested callback of an open port, which helping never runs: nested
 * callbacks are those of closing ports. So the short count could only have
 * come from the no-memory path that runs a packet in place.)
 */
#include "test.h"

#define DEPTH 12

static iocomp_engine *eng;
static iocomp_port_t ports[DEPTH];
static atomic_int posted;
static atomic_int rc[DEPTH];
static atomic_uint_fast64_t ran;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov;
    int k = (int)key;
    if (k == 0)
        CHECK(TEST_WAIT_UNTIL(atomic_load(&posted), 5000));
    if (k + 1 < DEPTH)
        atomic_store(&rc[k + 1], iocomp_port_close(eng, ports[k + 1]));
    else
        atomic_store(&rc[0], iocomp_port_close(eng, ports[0])); /* the deepest closes the bottom one's port */
    atomic_fetch_add(&ran, 1);
}

int main(void) {
    test_begin("close_deep_nest", 0);
    iocomp_config cfg = test_config(1, 1, cb, NULL);
    cfg.close_timeout_ms = 3000;
    CHECK_OK(iocomp_engine_create(&cfg, &eng));
    for (int round = 0; round < 5; round++) {
        atomic_store(&posted, 0);
        atomic_store(&ran, 0);
        for (int k = 0; k < DEPTH; k++) {
            CHECK_OK(iocomp_port_create(eng, &ports[k]));
            atomic_store(&rc[k], 1);
        }
        for (int k = 0; k < DEPTH; k++)
            CHECK_OK(iocomp_post(eng, ports[k], 0, 0, NULL, (uintptr_t)k));
        atomic_store(&posted, 1);
        TEST_WAIT_COUNT(&ran, DEPTH, 20000);
        CHECK_MSG(atomic_load(&rc[0]) == 0, "round %d: the depth-%d callback closing P0: %d", round,
                  DEPTH, (int)atomic_load(&rc[0]));
        for (int k = 1; k < DEPTH; k++)
            CHECK_MSG(atomic_load(&rc[k]) == 0, "round %d: close of P%d at depth %d: %d", round, k, k,
                      (int)atomic_load(&rc[k]));
    }
    CHECK_OK(iocomp_engine_destroy(eng));
    test_end();
}
