/*
 * iocomp-fib - W2 of the peer kit: fork-join fib(n) with a cutoff.
 *
 * fib(n): n < cutoff: plain serial recursion; else spawn fib(n-1) as a task,
 * compute fib(n-2) inline, join. An iocomp callback must not block waiting
 * for a child, so the join is continuation-passing: every call with
 * n >= cutoff gets a frame {pending = 2, val[2], parent, slot}; the spawned
 * child delivers into val[0], the inline part into val[1], and whichever of
 * the two arrives second (atomic fetch_sub on pending) adds them and delivers
 * the sum into its own parent, and so on up to the root. No callback ever
 * waits.
 *
 * A spawn is one iocomp_post() whose packet carries the whole task by value:
 * bytes = n, ov = the parent frame (cast; never dereferenced by iocomp),
 * status = the slot. Every call with n >= cutoff posts exactly one packet, so
 * fib(32) with cutoff 12 posts 28,656 tasks, as the kit's peers spawn
 * (checked at run time against iocomp's post counters), plus the root
 * packet the benchmark thread posts.
 *
 * Frames: from a per-worker free list (thread-local, capped; a frame freed on
 * another worker goes to that worker's list) or plain malloc/free (which is
 * jemalloc's here: the static library pulls in Debian's libjemalloc, which
 * exports malloc). -a list|malloc picks one. Measured on the 2-vCPU KVM
 * machine, fib(32)/c12, -i 50, 2 workers, 4 alternating runs each: free list
 * 10.70-10.94 M ops/s, malloc 10.75-11.17 M ops/s: no difference beyond the
 * noise (a frame costs a few ns against ~90 ns of leaf work per task), so the
 * default is malloc, the simpler of the two.
 *
 *   iocomp-fib -n 32 -c 12 -i 100 -w W [-a list|malloc]
 *       one untimed warm-up fib(n), then i timed calls; checks each result
 *       against serial fib; prints
 *       RESULT workload=spawn impl=iocomp threads=W ops=tasks*iters secs=S ...
 *   iocomp-fib [Google Benchmark flags]
 *       Google Benchmark mode: fib(32)/c12 at 1 and 2 workers, both frame
 *       allocators.
 */
#include <iocomp.h>

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <unistd.h>

#include "bench_util.h"
#include "gbench_shim.h"

typedef struct frame {
    atomic_int pending; /* arrivals still to come: 2, the root 1 */
    int slot;           /* where this frame's sum goes in its parent */
    struct frame *parent; /* NULL: the root */
    long val[2];        /* [0] the spawned fib(n-1), [1] the inline fib(n-2) */
} frame;

static iocomp_engine *eng;
static iocomp_port_t port;
static int cutoff = 12;
static int use_freelist = 0; /* -a list: 1 (see the top of the file) */

static frame root;
static long root_result;
static sem_t root_done;

/* --- frames ------------------------------------------------------------------- */
#define FREELIST_CAP 4096
static __thread frame *fl_head;
static __thread unsigned fl_len;
static __thread int fl_registered;
static pthread_key_t fl_key; /* its destructor empties a worker's list when the worker exits */

static void fl_drain(void *unused) {
    (void)unused;
    while (fl_head) {
        frame *f = fl_head;
        fl_head = f->parent;
        free(f);
    }
    fl_len = 0;
}

static inline frame *frame_alloc(void) {
    if (use_freelist && fl_head) {
        frame *f = fl_head;
        fl_head = f->parent;
        fl_len--;
        return f;
    }
    frame *f = malloc(sizeof *f);
    if (!f) abort();
    return f;
}

static inline void frame_free(frame *f) {
    if (use_freelist && fl_len < FREELIST_CAP) {
        if (__builtin_expect(!fl_registered, 0)) {
            pthread_setspecific(fl_key, &fl_key); /* any non-NULL value: run fl_drain at exit */
            fl_registered = 1;
        }
        f->parent = fl_head;
        fl_head = f;
        fl_len++;
        return;
    }
    free(f);
}

/* --- fib ------------------------------------------------------------------------- */
static long sfib(int n) { return n < 2 ? n : sfib(n - 1) + sfib(n - 2); }

static unsigned long tasks(int n) { return n < cutoff ? 0 : 1 + tasks(n - 1) + tasks(n - 2); }

static inline void spawn_fib(int n, frame *parent, int slot) {
    int rc = iocomp_post(eng, port, slot, (uint32_t)n, (iocomp_overlapped *)parent, 0);
    if (__builtin_expect(rc < 0, 0)) {
        fprintf(stderr, "iocomp_post: %d (%s)\n", rc, iocomp_strerror(rc));
        abort();
    }
}

/* Delivers v into f->val[slot]; the second arrival completes f, upwards. */
static void deliver(frame *f, int slot, long v) {
    for (;;) {
        f->val[slot] = v;
        if (atomic_fetch_sub_explicit(&f->pending, 1, memory_order_acq_rel) != 1) return;
        v = f->val[0] + f->val[1];
        if (!f->parent) { /* the root */
            root_result = v;
            sem_post(&root_done);
            return;
        }
        frame *p = f->parent;
        slot = f->slot;
        frame_free(f);
        f = p;
    }
}

/* fib(n) whose value goes to parent->val[slot]. */
static void fib_task(int n, frame *parent, int slot) {
    while (n >= cutoff) {
        frame *f = frame_alloc();
        atomic_init(&f->pending, 2);
        f->parent = parent;
        f->slot = slot;
        spawn_fib(n - 1, f, 0); /* the child task */
        parent = f;             /* and fib(n-2) inline, into slot 1 */
        slot = 1;
        n -= 2;
    }
    deliver(parent, slot, sfib(n));
}

static void fib_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                   uintptr_t key) {
    (void)ctx; (void)key;
    fib_task((int)bytes, (frame *)ov, (int)status);
}

/* One fib(n) on the engine, from the benchmark (main, non-worker) thread. */
static long pfib(int n) {
    atomic_init(&root.pending, 1);
    root.parent = NULL;
    root.val[0] = root.val[1] = 0;
    spawn_fib(n, &root, 0);
    while (sem_wait(&root_done) != 0 && errno == EINTR) {}
    return root_result;
}

static void engine_open(uint32_t workers) { bu_engine_open(workers, fib_cb, &eng, &port); }
static void engine_close(void) { bu_engine_close(&eng, port); }

/* --- Google Benchmark mode -------------------------------------------------------- */
static void bm_fib(gb_state *st, void *arg) {
    (void)arg;
    uint32_t w = (uint32_t)gb_range(st, 0);
    int n = (int)gb_range(st, 1);
    cutoff = (int)gb_range(st, 2);
    use_freelist = (int)gb_range(st, 3);
    long expect = sfib(n);
    engine_open(w);
    if (pfib(n) != expect) gb_skip_with_error(st, "wrong result");
    while (gb_keep_running(st)) {
        if (pfib(n) != expect) {
            gb_skip_with_error(st, "wrong result");
            break;
        }
    }
    gb_set_items_processed(st, gb_iterations(st) * (int64_t)tasks(n));
    engine_close();
}

static int gbench_mode(int argc, char **argv) {
    static const char *const names[] = { "workers", "n", "cutoff", "freelist" };
    gb_bench *bm = gb_register("fib", bm_fib, NULL);
    gb_arg_names(bm, names, 4);
    for (int64_t fl = 1; fl >= 0; fl--)
        for (int64_t w = 1; w <= 2; w++) {
            int64_t a[4] = { w, 32, 12, fl };
            gb_args(bm, a, 4);
        }
    gb_use_real_time(bm);
    gb_unit(bm, GB_MS);
    return gb_main(argc, argv);
}

int main(int argc, char **argv) {
    sem_init(&root_done, 0, 0);
    pthread_key_create(&fl_key, fl_drain);
    int kit = 0;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-n") || !strcmp(argv[i], "-i")) kit = 1;
    if (!kit) return gbench_mode(argc, argv);

    int n = 32, iters = 10, c;
    unsigned long w = 2;
    while ((c = getopt(argc, argv, "n:c:i:w:a:")) != -1) {
        if (c == 'n') n = (int)bu_parse_ul(optarg, "-n");
        else if (c == 'c') cutoff = (int)bu_parse_ul(optarg, "-c");
        else if (c == 'i') iters = (int)bu_parse_ul(optarg, "-i");
        else if (c == 'w') w = bu_parse_ul(optarg, "-w");
        else if (c == 'a' && !strcmp(optarg, "list")) use_freelist = 1;
        else if (c == 'a' && !strcmp(optarg, "malloc")) use_freelist = 0;
        else {
            fprintf(stderr, "usage: iocomp-fib [-n fib_arg] [-c cutoff] [-i iterations] [-w workers] "
                            "[-a list|malloc]   (no -n/-i: Google Benchmark mode)\n");
            return 2;
        }
    }
    if (w < 1 || w > IOCOMP_THREADS_LIMIT || n < 0 || n > 60 || cutoff < 2) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    volatile int vn = n; /* keeps the compiler from folding the serial checks */
    long expect = sfib(vn);
    unsigned long per = tasks(n);

    engine_open((uint32_t)w);
    if (pfib(n) != expect) { fprintf(stderr, "wrong result\n"); return 1; } /* warm-up */
    iocomp_stats s0, s1;
    iocomp_get_stats(eng, &s0);
    long got = 0;
    int bad = 0;
    uint64_t t0 = bu_now_ns();
    for (int i = 0; i < iters; i++) {
        got = pfib(n);
        bad |= got != expect;
    }
    double secs = (double)(bu_now_ns() - t0) / 1e9;
    iocomp_get_stats(eng, &s1);
    if (bad) { fprintf(stderr, "wrong result %ld (expected %ld)\n", got, expect); return 1; }

    bu_print_result("spawn", "iocomp", (int)w, per * (unsigned long)iters, secs, -1, -1, -1, NULL);
    /* Every fib posts `per` tasks plus the root packet. Posts are counted by
     * the posting thread before the post returns, so the count is complete
     * when the root's completion has woken us; the completion counter is
     * not (a callback is counted after it returns, without a snapshot). */
    unsigned long long posts = (s1.posts_local - s0.posts_local) + (s1.posts_remote - s0.posts_remote);
    unsigned long long want = (unsigned long long)(per + 1) * (unsigned long long)iters;
    fprintf(stderr, "# tasks/fib=%lu posts/fib=%.1f frames=%s steals=%llu stolen=%llu parks=%llu\n",
            per, iters ? (double)posts / iters : 0.0, use_freelist ? "freelist" : "malloc",
            (unsigned long long)(s1.steals - s0.steals), (unsigned long long)(s1.stolen - s0.stolen),
            (unsigned long long)(s1.parks - s0.parks));
    if (posts != want)
        fprintf(stderr, "# WARNING: %llu posts counted, expected %llu\n", posts, want);
    engine_close();
    return 0;
}
