/*
 * iocomp-post - W1 of the peer kit: an outside thread posts tiny jobs.
 *
 * The main thread (not a worker) posts N packets to a port of an engine with
 * min = max = W workers. Each completion callback does a relaxed fetch_add on
 * one shared counter; the callback that brings it to N stamps the end time
 * and wakes the main thread. Measured: first post -> last callback. One
 * untimed warm-up round (min(N, 10000) packets) first, as the kit's peers do.
 *
 *   iocomp-post -n N -w W     one RESULT line in the kit's format:
 *       RESULT workload=post impl=iocomp threads=W ops=N secs=S ops_per_s=X p50_us=- ...
 *   iocomp-post [Google Benchmark flags]
 *       Google Benchmark mode: the same workload (100,000 posts per
 *       iteration) at 1 and 2 workers, items/s.
 */
#include <iocomp.h>

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench_util.h"
#include "gbench_shim.h"

typedef struct {
    _Alignas(64) atomic_ulong counter; /* its own cache line: the one hot word */
    _Alignas(64) unsigned long target;
    uint64_t t_end;
    sem_t done;
    iocomp_engine *e;
    iocomp_port_t port;
} post_bench;

static void post_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                    uintptr_t key) {
    (void)status; (void)bytes; (void)ov; (void)key;
    post_bench *b = ctx;
    if (atomic_fetch_add_explicit(&b->counter, 1, memory_order_relaxed) == b->target - 1) {
        b->t_end = bu_now_ns();
        sem_post(&b->done);
    }
}

static void pb_open(post_bench *b, uint32_t workers) {
    memset(b, 0, sizeof *b);
    sem_init(&b->done, 0, 0);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = workers;
    cfg.on_complete = post_cb;
    cfg.on_complete_ctx = b;
    BU_CHECK(iocomp_engine_create(&cfg, &b->e));
    BU_CHECK(iocomp_port_create(b->e, &b->port));
}

static void pb_close(post_bench *b) {
    BU_CHECK(iocomp_port_close(b->e, b->port));
    BU_CHECK(iocomp_engine_destroy(b->e));
    sem_destroy(&b->done);
}

/* One round of n posts; returns first post -> last callback, seconds. */
static double pb_round(post_bench *b, unsigned long n) {
    if (n == 0) return 0;
    atomic_store_explicit(&b->counter, 0, memory_order_relaxed);
    b->target = n; /* published to the workers by the posts below */
    uint64_t t0 = bu_now_ns();
    for (unsigned long i = 0; i < n; i++) {
        int rc = iocomp_post(b->e, b->port, 0, 0, NULL, 0);
        if (rc < 0) {
            fprintf(stderr, "iocomp_post: %d (%s) after %lu posts\n", rc, iocomp_strerror(rc), i);
            exit(1);
        }
    }
    while (sem_wait(&b->done) != 0 && errno == EINTR) {}
    return (double)(b->t_end - t0) / 1e9;
}

/* --- Google Benchmark mode ------------------------------------------------------ */
static void bm_post(gb_state *st, void *arg) {
    (void)arg;
    uint32_t w = (uint32_t)gb_range(st, 0);
    unsigned long n = (unsigned long)gb_range(st, 1);
    static post_bench b; /* one at a time; static keeps the aligned block off the stack */
    pb_open(&b, w);
    pb_round(&b, n < 10000 ? n : 10000); /* warm-up: starts and wakes the workers */
    while (gb_keep_running(st)) pb_round(&b, n);
    gb_set_items_processed(st, gb_iterations(st) * (int64_t)n);
    iocomp_stats s;
    if (iocomp_get_stats(b.e, &s) == 0) {
        gb_counter(st, "parks", (double)s.parks, GB_COUNTER_DEFAULT);
        gb_counter(st, "steals", (double)s.steals, GB_COUNTER_DEFAULT);
    }
    pb_close(&b);
}

static int gbench_mode(int argc, char **argv) {
    static const char *const names[] = { "workers", "posts" };
    gb_bench *bm = gb_register("post", bm_post, NULL);
    gb_arg_names(bm, names, 2);
    for (int64_t w = 1; w <= 2; w++) {
        int64_t a[2] = { w, 100000 };
        gb_args(bm, a, 2);
    }
    gb_use_real_time(bm);
    gb_unit(bm, GB_MS);
    return gb_main(argc, argv);
}

int main(int argc, char **argv) {
    int kit = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-n")) kit = 1;
    if (!kit) return gbench_mode(argc, argv);

    unsigned long n = 5000000, w = 2;
    int c;
    while ((c = getopt(argc, argv, "n:w:")) != -1) {
        if (c == 'n') n = bu_parse_ul(optarg, "-n");
        else if (c == 'w') w = bu_parse_ul(optarg, "-w");
        else {
            fprintf(stderr, "usage: iocomp-post -n posts [-w workers]   (no -n: Google Benchmark mode)\n");
            return 2;
        }
    }
    if (w < 1 || w > IOCOMP_THREADS_LIMIT) { fprintf(stderr, "bad -w\n"); return 2; }
    static post_bench b;
    pb_open(&b, (uint32_t)w);
    pb_round(&b, n < 10000 ? n : 10000); /* warm-up, not reported */
    iocomp_stats s0, s1;
    iocomp_get_stats(b.e, &s0);
    double secs = pb_round(&b, n);
    iocomp_get_stats(b.e, &s1);
    bu_print_result("post", "iocomp", (int)w, n, secs, -1, -1, -1, NULL);
    /* Comment lines go to stderr: run.sh appends '#' lines of stderr to the rep line. */
    fprintf(stderr, "# stats: completions=%llu remote=%llu steals=%llu stolen=%llu parks=%llu wakeups=%llu overflows=%llu inject_batches=%llu\n",
            (unsigned long long)(s1.completions - s0.completions),
            (unsigned long long)(s1.posts_remote - s0.posts_remote),
            (unsigned long long)(s1.steals - s0.steals), (unsigned long long)(s1.stolen - s0.stolen),
            (unsigned long long)(s1.parks - s0.parks), (unsigned long long)(s1.wakeups - s0.wakeups),
            (unsigned long long)(s1.overflows - s0.overflows),
            (unsigned long long)(s1.inject_batches - s0.inject_batches));
    pb_close(&b);
    return 0;
}
