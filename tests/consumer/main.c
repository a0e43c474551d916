/*
 * The install consumer (tests/consumer-test.sh): a program outside the iocomp
 * tree, built against an installed iocomp through find_package or
 * pkg-config. It creates an engine, posts one packet, waits for its callback
 * and destroys the engine; exit 0 only if the callback ran once with the
 * posted values.
 */
#include <iocomp.h>

#include <pthread.h>
#include <stdio.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int calls, good;

static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                        uintptr_t key) {
    pthread_mutex_lock(&lock);
    calls++;
    good = ctx == &calls && status == 7 && bytes == 42 && ov == NULL && key == 0x1234;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

#define CHECK(call)                                                                   \
    do {                                                                              \
        int rc_ = (call);                                                             \
        if (rc_ != 0) {                                                               \
            fprintf(stderr, "consumer: %s: %s\n", #call, iocomp_strerror(rc_));       \
            return 1;                                                                 \
        }                                                                             \
    } while (0)

int main(void) {
    iocomp_config cfg;
    iocomp_engine *e;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    CHECK(iocomp_engine_create(&cfg, &e));
    CHECK(iocomp_set_completion_manager(e, on_complete, &calls));
    CHECK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 7, 42, NULL, 0x1234));

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    pthread_mutex_lock(&lock);
    while (calls == 0 && pthread_cond_timedwait(&cond, &lock, &deadline) == 0) {
    }
    pthread_mutex_unlock(&lock);

    const char *backend = iocomp_backend_name(e);
    CHECK(iocomp_engine_destroy(e));
    if (calls != 1 || !good) {
        fprintf(stderr, "consumer: callback ran %d time(s)%s\n", calls,
                calls && !good ? " with the wrong values" : "");
        return 1;
    }
    printf("consumer: ok (backend %s)\n", backend ? backend : "?");
    return 0;
}
