/*
 * destroy_stuck_callback: the iocomp_engine_destroy() contract (-ETIMEDOUT
 * when a callback is still running at close_timeout_ms; the engine is then
 * closed but alive and a later destroy finishes) and the diagnostics the
 * design promises for it: a line on stderr that names the stuck worker's
 * kernel thread id, and stats.longest_callback_us / longest_callback_tid
 * pointing at that callback.
 *
 * close_timeout_ms = 300. A callback blocks until the test releases it (not
 * forever, so the test ends clean). destroy returns -ETIMEDOUT in between
 * 250 ms and 5 s; stderr (fd 2 redirected to a temp file around the call)
 * says "tid <the callback's gettid()>"; longest_callback_tid is that tid and
 * longest_callback_us >= 200000. After the release destroy returns 0 and no
 * thread or descriptor is left (test_end()).
 */
#include "test.h"

#include <ctype.h>

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open;
static atomic_int entered;
static atomic_int cb_tid;
static atomic_int done;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx, (void)status, (void)bytes, (void)ov, (void)key;
    atomic_store(&cb_tid, (int)test_gettid());
    atomic_store(&entered, 1);
    pthread_mutex_lock(&gate_mu);
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    atomic_store(&done, 1);
}

/* True if text contains the decimal number n as a whole number. */
static bool has_number(const char *text, long n) {
    char want[32];
    snprintf(want, sizeof want, "%ld", n);
    size_t k = strlen(want);
    for (const char *p = strstr(text, want); p; p = strstr(p + 1, want)) {
        bool left = p == text || !isdigit((unsigned char)p[-1]);
        bool right = !isdigit((unsigned char)p[k]);
        if (left && right)
            return true;
    }
    return false;
}

int main(void) {
    test_begin("destroy_stuck_callback", 0);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 2;
    cfg.close_timeout_ms = 300;
    cfg.on_complete = cb;
    iocomp_engine *e;
    CHECK_OK(iocomp_engine_create(&cfg, &e));

    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 1));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&entered), 5000));
    int tid = atomic_load(&cb_tid);
    CHECK(tid > 0);

    /* Capture stderr around the call. */
    char path[] = "/tmp/iocomp_destroy_stuck_XXXXXX";
    int tmp = mkstemp(path);
    CHECK(tmp >= 0);
    CHECK_OK(unlink(path));
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0);
    CHECK(dup2(tmp, 2) == 2);
    uint64_t t0 = test_now_ns();
    int rc = iocomp_engine_destroy(e);
    uint64_t ms = (test_now_ns() - t0) / 1000000u;
    fflush(stderr);
    CHECK(dup2(saved, 2) == 2);
    CHECK_OK(close(saved));

    char text[4096];
    ssize_t len = pread(tmp, text, sizeof text - 1, 0);
    CHECK(len >= 0);
    text[len] = 0;
    CHECK_OK(close(tmp));
    printf("destroy_stuck_callback: destroy -> %d after %" PRIu64 " ms; stderr: %s", rc, ms,
           len ? text : "(nothing)\n");

    CHECK_EQ(rc, -ETIMEDOUT);
    CHECK_MSG(ms >= 250 && ms < 5000, "destroy took %" PRIu64 " ms for a 300 ms deadline", ms);
    CHECK_MSG(strstr(text, "tid") != NULL, "stderr does not say \"tid\": \"%s\"", text);
    CHECK_MSG(has_number(text, tid), "stderr does not name the stuck worker's tid %d: \"%s\"", tid,
              text);

    /* Closed but alive: the stats still answer and point at the callback. */
    iocomp_stats s = test_stats(e);
    CHECK_MSG(s.longest_callback_tid != 0, "longest_callback_tid 0 (us %" PRIu64 ")",
              s.longest_callback_us);
    CHECK_EQ(s.longest_callback_tid, tid);
    CHECK_MSG(s.longest_callback_us >= 200000, "longest_callback_us %" PRIu64
              " for a callback running > 300 ms", s.longest_callback_us);
    CHECK_EQ(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 2), -ESHUTDOWN);
    CHECK_EQ(atomic_load(&done), 0);

    pthread_mutex_lock(&gate_mu);
    gate_open = true;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
    CHECK(TEST_WAIT_UNTIL(atomic_load(&done), 5000));
    CHECK_OK(iocomp_engine_destroy(e));
    test_end();
}
