/*
 * iocomp-sched - W5 of the peer kit: Tokio's four scheduler benchmarks
 * (benches/rt_multi_threaded.rs, tokio 1.24 tree) on an iocomp engine, with
 * Tokio's constants, ported one to one as the kit's sched/mutex-pool does.
 *
 * The pieces:
 *   spawn        iocomp_post() of a packet whose key is the task function and
 *                whose overlapped pointer is the task's argument (cast; iocomp
 *                never dereferences a posted overlapped). The engine callback
 *                calls key(ov). No allocation. From a worker the packet goes
 *                to that worker's own queue (most recent first), from the
 *                benchmark thread to the engine's inject queue.
 *   yield_now    the task posts itself again. NB: from a worker that is a
 *                local post, and iocomp runs the most recent local post first
 *                (LIFO slot), so unless another worker steals it the yielding
 *                task runs again at once: Tokio 1.24 defers a yielded task
 *                until its worker has nothing else, the mutex pool puts it at
 *                the back of its FIFO. iocomp has no "post to the back" call.
 *   std mpsc to the benchmark thread    a POSIX semaphore (sem_post/sem_wait),
 *                as in the kit's mutex-pool.
 *   oneshot      an atomic arrival counter per one-shot; send and await each
 *                add 1; whoever is second continues the receiver, inline if
 *                it is the receiver, by posting the receiver's continuation if
 *                it is the sender (the wake-up). One malloc per ping holds
 *                both one-shots (Tokio allocates two channels).
 *
 * The benchmark thread is the main thread; it is never a worker (Tokio's
 * block_on runs its future on the calling thread), so its spawns are remote:
 *   spawn_many      the benchmark thread posts NUM_SPAWN = 10,000 tasks; each
 *                   does a relaxed fetch_sub on a shared counter, the one
 *                   that brings it to 0 signals the benchmark thread.
 *   yield_many      the benchmark thread posts TASKS = 200 tasks, each yields
 *                   NUM_YIELD = 1,000 times, then signals; 200 waits.
 *   ping_pong       the benchmark thread posts one root task, which posts
 *                   NUM_PINGS = 1,000 ping tasks (local); each ping spawns a
 *                   pong, sends on one-shot 1, awaits one-shot 2; the pong
 *                   awaits one-shot 1 and sends on one-shot 2; the last ping
 *                   to finish signals.
 *   chained_spawn   the benchmark thread posts the root task running
 *                   iter(ITER = 1,000); iter(n) posts iter(n-1); iter(0)
 *                   signals.
 *
 *   iocomp-sched -b NAME -i ITERS -w W
 *       ceil(ITERS/10) untimed warm-up iterations, then ITERS iterations
 *       timed as one block (each includes the benchmark thread's wake-up at
 *       its end); prints
 *       RESULT workload=sched-NAME impl=iocomp threads=W ops=ITERS*items secs=S
 *              ops_per_s=X p50_us=- p99_us=- p999_us=- ns_per_op=Y
 *   iocomp-sched [Google Benchmark flags]
 *       Google Benchmark mode: the four benchmarks at 1 and 2 workers; time
 *       per iteration (Tokio's ns/iter) and ns_per_op.
 */
#include <iocomp.h>

#include <errno.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench_util.h"
#include "gbench_shim.h"

#define NUM_SPAWN 10000 /* spawn_many */
#define NUM_YIELD 1000  /* yield_many */
#define TASKS     200   /* yield_many */
#define NUM_PINGS 1000  /* ping_pong */
#define ITER      1000  /* chained_spawn */

typedef void (*task_fn)(void *arg);

static iocomp_engine *eng;
static iocomp_port_t port;

/* The engine callback: run the task named by the packet. */
static void dispatch(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                     uintptr_t key) {
    (void)ctx; (void)status; (void)bytes;
    ((task_fn)key)((void *)ov);
}

static inline void spawn(task_fn fn, void *arg) {
    int rc = iocomp_post(eng, port, 0, 0, (iocomp_overlapped *)arg, (uintptr_t)fn);
    if (__builtin_expect(rc < 0, 0)) {
        fprintf(stderr, "iocomp_post: %d (%s)\n", rc, iocomp_strerror(rc));
        abort();
    }
}

/* --- the benchmark thread's channel: () messages ------------------------------- */
static sem_t done;
static void done_send(void) { sem_post(&done); }
static void done_recv(void) { while (sem_wait(&done) != 0 && errno == EINTR) {} }

static _Alignas(64) atomic_size_t rem; /* spawn_many, ping_pong: tasks left */

/* --- spawn_many ------------------------------------------------------------------ */
static void sm_task(void *unused) {
    (void)unused;
    if (atomic_fetch_sub_explicit(&rem, 1, memory_order_relaxed) == 1) done_send();
}

static void spawn_many(void) {
    atomic_store_explicit(&rem, NUM_SPAWN, memory_order_relaxed);
    for (int i = 0; i < NUM_SPAWN; i++) spawn(sm_task, NULL);
    done_recv();
}

/* --- yield_many ------------------------------------------------------------------- */
static int yields_left[TASKS];

static void ym_task(void *arg) {
    int *left = arg;
    if (*left > 0) {
        (*left)--;
        spawn(ym_task, left); /* yield_now: post itself again */
    } else {
        done_send();
    }
}

static void yield_many(void) {
    for (int i = 0; i < TASKS; i++) {
        yields_left[i] = NUM_YIELD;
        spawn(ym_task, &yields_left[i]);
    }
    for (int i = 0; i < TASKS; i++) done_recv();
}

/* --- ping_pong ---------------------------------------------------------------------- */
typedef struct {
    atomic_int o1, o2; /* arrivals at one-shot 1 (ping sends, pong awaits) and 2 (pong sends, ping awaits) */
} ping_t;

static void pp_ping_after_rx2(ping_t *p) {
    free(p);
    if (atomic_fetch_sub_explicit(&rem, 1, memory_order_relaxed) == 1) done_send();
}
static void pp_ping_resume(void *arg) { pp_ping_after_rx2(arg); }

static void pp_pong_after_rx1(ping_t *p) { /* tx2.send(()) */
    if (atomic_fetch_add_explicit(&p->o2, 1, memory_order_acq_rel) == 1)
        spawn(pp_ping_resume, p); /* the ping awaits rx2: wake it */
}
static void pp_pong_resume(void *arg) { pp_pong_after_rx1(arg); }

static void pp_pong(void *arg) { /* rx1.await */
    ping_t *p = arg;
    if (atomic_fetch_add_explicit(&p->o1, 1, memory_order_acq_rel) == 1) pp_pong_after_rx1(p);
}

static void pp_ping(void *unused) {
    (void)unused;
    ping_t *p = malloc(sizeof *p);
    if (!p) abort();
    atomic_init(&p->o1, 0);
    atomic_init(&p->o2, 0);
    spawn(pp_pong, p);                                                   /* tokio::spawn(pong) */
    if (atomic_fetch_add_explicit(&p->o1, 1, memory_order_acq_rel) == 1) /* tx1.send(()) */
        spawn(pp_pong_resume, p);                                        /* pong awaits rx1: wake it */
    if (atomic_fetch_add_explicit(&p->o2, 1, memory_order_acq_rel) == 1) /* rx2.await */
        pp_ping_after_rx2(p);                                            /* already sent: Ready */
    /* else the pong's tx2.send posts pp_ping_resume; p is not touched here again */
}

static void pp_root(void *unused) {
    (void)unused;
    for (int i = 0; i < NUM_PINGS; i++) spawn(pp_ping, NULL);
}

static void ping_pong(void) {
    atomic_store_explicit(&rem, NUM_PINGS, memory_order_relaxed);
    spawn(pp_root, NULL);
    done_recv();
}

/* --- chained_spawn ------------------------------------------------------------------ */
static void cs_iter(void *arg) {
    uintptr_t n = (uintptr_t)arg;
    if (n == 0) done_send();
    else spawn(cs_iter, (void *)(n - 1));
}

static void chained_spawn(void) {
    spawn(cs_iter, (void *)(uintptr_t)ITER); /* the root task runs iter(ITER) */
    done_recv();
}

/* --- the table -------------------------------------------------------------------------- */
typedef struct {
    const char *name;
    void (*body)(void);
    uint64_t items; /* per iteration */
} sched_bench;

static const sched_bench benches[] = {
    { "spawn_many", spawn_many, NUM_SPAWN },
    { "yield_many", yield_many, (uint64_t)TASKS * NUM_YIELD },
    { "ping_pong", ping_pong, NUM_PINGS },
    { "chained_spawn", chained_spawn, ITER },
};
#define NBENCH (sizeof benches / sizeof benches[0])

static void engine_open(uint32_t workers) { bu_engine_open(workers, dispatch, &eng, &port); }
static void engine_close(void) { bu_engine_close(&eng, port); }

/* --- Google Benchmark mode --------------------------------------------------------------- */
static void bm_sched(gb_state *st, void *arg) {
    const sched_bench *b = arg;
    engine_open((uint32_t)gb_range(st, 0));
    for (int i = 0; i < 3; i++) b->body(); /* warm-up */
    uint64_t t0 = bu_now_ns();
    while (gb_keep_running(st)) b->body();
    double ns = (double)(bu_now_ns() - t0);
    int64_t iters = gb_iterations(st);
    gb_set_items_processed(st, iters * (int64_t)b->items);
    if (iters > 0) gb_counter(st, "ns_per_op", ns / ((double)iters * (double)b->items), GB_COUNTER_DEFAULT);
    engine_close();
}

static int gbench_mode(int argc, char **argv) {
    for (size_t i = 0; i < NBENCH; i++) {
        char name[64];
        snprintf(name, sizeof name, "sched/%s", benches[i].name);
        gb_bench *bm = gb_register(name, bm_sched, (void *)&benches[i]);
        gb_arg_name(bm, "workers");
        gb_arg(bm, 1);
        gb_arg(bm, 2);
        gb_use_real_time(bm);
        gb_unit(bm, GB_US);
    }
    return gb_main(argc, argv);
}

static void usage(void) {
    fprintf(stderr, "usage: iocomp-sched -b spawn_many|yield_many|ping_pong|chained_spawn "
                    "[-i iterations] [-w workers]   (no -b: Google Benchmark mode)\n");
}

int main(int argc, char **argv) {
    sem_init(&done, 0, 0);
    int kit = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-b")) kit = 1;
    if (!kit) return gbench_mode(argc, argv);

    const char *name = "";
    unsigned long iters = 100, w = 2;
    int c;
    while ((c = getopt(argc, argv, "b:i:w:")) != -1) {
        if (c == 'b') name = optarg;
        else if (c == 'i') iters = bu_parse_ul(optarg, "-i");
        else if (c == 'w') w = bu_parse_ul(optarg, "-w");
        else { usage(); return 2; }
    }
    const sched_bench *b = NULL;
    for (size_t i = 0; i < NBENCH; i++)
        if (!strcmp(name, benches[i].name)) b = &benches[i];
    if (!b || w < 1 || w > IOCOMP_THREADS_LIMIT) { usage(); return 2; }

    engine_open((uint32_t)w);
    for (unsigned long i = 0; i < (iters + 9) / 10; i++) b->body(); /* warm-up, not reported */
    iocomp_stats s0, s1;
    iocomp_get_stats(eng, &s0);
    uint64_t t0 = bu_now_ns();
    for (unsigned long i = 0; i < iters; i++) b->body();
    double secs = (double)(bu_now_ns() - t0) / 1e9;
    iocomp_get_stats(eng, &s1);

    uint64_t ops = iters * b->items;
    char extra[64], workload[64];
    snprintf(extra, sizeof extra, " ns_per_op=%.1f", ops ? secs * 1e9 / (double)ops : 0.0);
    snprintf(workload, sizeof workload, "sched-%s", b->name);
    bu_print_result(workload, "iocomp", (int)w, ops, secs, -1, -1, -1, extra);
    fprintf(stderr, "# stats: completions=%llu local=%llu remote=%llu steals=%llu stolen=%llu parks=%llu wakeups=%llu\n",
            (unsigned long long)(s1.completions - s0.completions),
            (unsigned long long)(s1.posts_local - s0.posts_local),
            (unsigned long long)(s1.posts_remote - s0.posts_remote),
            (unsigned long long)(s1.steals - s0.steals), (unsigned long long)(s1.stolen - s0.stolen),
            (unsigned long long)(s1.parks - s0.parks), (unsigned long long)(s1.wakeups - s0.wakeups));
    engine_close();
    return 0;
}
