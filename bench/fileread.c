/*
 * iocomp-fileread - W4 of the peer kit: random reads from a page-cached file
 * at a fixed queue depth, on iocomp.
 *
 * The file (the kit's 256 MiB file, already in the page cache: run.sh reads
 * it whole before each repetition) is opened O_RDONLY and bound to a port of
 * an engine with min = max = W workers. The main thread submits the first Q
 * reads (iocomp_read of B bytes at a uniformly random B-aligned offset, with
 * replacement, on Q overlapped; a host thread's requests are spread over the
 * workers' rings), or with -s post a start packet whose callback submits
 * them all on its worker's ring; every completion's callback checks that B
 * bytes came back, records the latency and, until N reads were issued,
 * resubmits its overlapped at a new random offset (from the callback: the
 * worker's own ring). The callback that completes the N-th read stamps the
 * end. One untimed warm-up round (min(N, 20000) reads) first, which also
 * starts the workers and their rings. Measured: the first submit -> the N-th
 * completion; latency = submit -> the callback's start (completion seen by
 * the submitter, as the kit's peers measure it), with one clock read per
 * read like the kit's raw-uring loop: a read resubmitted from a callback is
 * stamped with that callback's start time. Offsets come from the kit's xorshift64*, one generator
 * per overlapped (seeded 42 + slot), so no state is shared between workers.
 *
 * With the io_uring backend a read is IORING_OP_READ on the worker's ring;
 * the reads of a page-cached file complete inside io_uring_enter. With
 * --backend epoll (-e epoll) a worker runs the pread itself (epoll cannot
 * watch regular files).
 *
 *   iocomp-fileread -f FILE [-n reads] [-q depth] [-b bytes] [-w workers] [-e uring|epoll] [-s host|post]
 *
 * prints one RESULT line in the kit's W4 format (impl=iocomp, threads=W):
 *   RESULT workload=fileread impl=iocomp threads=W ops=N secs=S ops_per_s=X p50_us=A p99_us=B p999_us=C
 * and engine statistics as a '#' comment on stderr (the kit's run.sh appends
 * those to the repetition's line). The kit runs it through W4_EXTRA:
 *   W4_EXTRA='iocomp-1w:<build>/bench/iocomp-fileread -f {FILE} -n {READS} -q {QD} -b {BS} -w 1'
 */
#include <iocomp.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"

/* The kit's log-linear histogram (peers/common/bench.h): exact below 256 ns,
 * then 128 sub-buckets per power of two, midpoints reported. One per worker
 * thread (no sharing on the hot path), merged at the end. */
#define HB 8
#define HSUB (1u << (HB - 1))
#define HBUCKETS ((64 - HB + 2) * HSUB)
typedef struct hist {
    uint64_t count[HBUCKETS];
    uint64_t total;
    struct hist *next;
} hist_t;

static inline unsigned hist_index(uint64_t v) {
    if (v < (1ull << HB)) return (unsigned)v;
    unsigned e = (unsigned)(63 - __builtin_clzll(v)) - (HB - 1);
    return e * HSUB + (unsigned)(v >> e);
}
static double hist_value(unsigned i) {
    if (i < (1u << HB)) return (double)i;
    unsigned e = i / HSUB - 1;
    uint64_t m = i % HSUB + HSUB;
    return ((double)(m << e) + (double)((m + 1) << e) - 1.0) / 2.0;
}
static double hist_quantile_us(const hist_t *h, double q) {
    if (h->total == 0) return -1;
    uint64_t rank = (uint64_t)(q * (double)h->total + 0.5), seen = 0;
    if (rank < 1) rank = 1;
    for (unsigned i = 0; i < HBUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) return hist_value(i) / 1000.0;
    }
    return -1;
}

static inline uint64_t rng_next(uint64_t *s) { /* the kit's xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* The host extension of each overlapped: its slot. */
struct slot {
    uint64_t t_submit;
    uint64_t seed;
    unsigned char *buf;
};

static struct {
    iocomp_engine *e;
    iocomp_port_t port;
    int fd;
    uint32_t bs;
    uint64_t nblocks;
    int record; /* latencies go into the histograms (the timed round) */
    _Alignas(64) atomic_ulong done;
    _Alignas(64) unsigned long n;
    uint64_t t_end;
    sem_t fin;
    pthread_mutex_t hlock;
    hist_t *hists; /* every thread's histogram */
    atomic_int failed;
} g;

static _Thread_local hist_t *my_hist;

static hist_t *thread_hist(void) {
    if (!my_hist) {
        my_hist = calloc(1, sizeof *my_hist);
        if (!my_hist) { perror("calloc"); exit(1); }
        pthread_mutex_lock(&g.hlock);
        my_hist->next = g.hists;
        g.hists = my_hist;
        pthread_mutex_unlock(&g.hlock);
    }
    return my_hist;
}

static void fail(const char *what, int rc) {
    fprintf(stderr, "iocomp-fileread: %s: %d (%s)\n", what, rc, iocomp_strerror(rc));
    exit(1);
}

/* t: the submit time to record (the callback passes its own start time, as
 * the kit's raw-uring loop stamps a refill with its reap time: one clock
 * read per read). */
static void submit(iocomp_overlapped *ov, uint64_t t) {
    struct slot *s = iocomp_overlapped_ext(ov);
    int64_t off = (int64_t)((rng_next(&s->seed) % g.nblocks) * g.bs);
    s->t_submit = t;
    int rc = iocomp_read(g.e, g.fd, s->buf, g.bs, off, ov);
    if (rc != 0) fail("iocomp_read", rc);
}

#define KEY_READ 0u
#define KEY_START 1u
static iocomp_overlapped **g_ovs;
static unsigned g_first;
static int g_start_post; /* -s post: a worker submits the first reads */

static void read_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    uint64_t t = bu_now_ns();
    if (key == KEY_START) { /* the round's start packet: the first reads, from this worker */
        for (unsigned i = 0; i < g_first; i++) submit(g_ovs[i], bu_now_ns());
        return;
    }
    struct slot *s = iocomp_overlapped_ext(ov);
    if (status < 0 || bytes != g.bs) {
        fprintf(stderr, "iocomp-fileread: read returned status %d bytes %u\n", status, bytes);
        exit(1);
    }
    if (g.record) {
        hist_t *h = thread_hist();
        h->count[hist_index(t - s->t_submit)]++;
        h->total++;
    }
    /* One atomic per read: the completions numbered 1 .. n - first each
     * issue one more read (first + (n - first) = n in all), so the one
     * numbered n is the round's last. */
    unsigned long d = atomic_fetch_add_explicit(&g.done, 1, memory_order_acq_rel) + 1;
    if (d <= g.n - g_first) {
        submit(ov, t);
    } else if (d == g.n) {
        g.t_end = bu_now_ns();
        sem_post(&g.fin);
    }
}

/* One round of n reads with q in flight (q <= the overlapped given). Seconds. */
static double round_run(iocomp_overlapped **ovs, unsigned q, unsigned long n, int record) {
    g.n = n;
    g.record = record;
    atomic_store(&g.done, 0);
    unsigned first = q < n ? q : (unsigned)n;
    g_ovs = ovs;
    g_first = first;
    uint64_t t0 = bu_now_ns();
    if (g_start_post) { /* a worker submits the first reads (all on its own ring) */
        int rc = iocomp_post(g.e, g.port, 0, 0, NULL, KEY_START);
        if (rc < 0) fail("iocomp_post", rc);
    } else { /* this thread does: the backend spreads them over the workers' rings */
        for (unsigned i = 0; i < first; i++) submit(ovs[i], bu_now_ns());
    }
    while (sem_wait(&g.fin) != 0 && errno == EINTR) {}
    return (double)(g.t_end - t0) / 1e9;
}

int main(int argc, char **argv) {
    const char *path = NULL, *backend = NULL;
    unsigned long n = 2000000, q = 32, bs = 4096, w = 1;
    int c;
    while ((c = getopt(argc, argv, "f:n:q:b:w:e:s:")) != -1) {
        switch (c) {
        case 'f': path = optarg; break;
        case 'n': n = bu_parse_ul(optarg, "-n"); break;
        case 'q': q = bu_parse_ul(optarg, "-q"); break;
        case 'b': bs = bu_parse_ul(optarg, "-b"); break;
        case 'w': w = bu_parse_ul(optarg, "-w"); break;
        case 'e': backend = optarg; break;
        case 's':
            if (!strcmp(optarg, "post")) g_start_post = 1;
            else if (!strcmp(optarg, "host")) g_start_post = 0;
            else { fprintf(stderr, "bad -s (host|post)\n"); return 2; }
            break;
        default:
            fprintf(stderr, "usage: iocomp-fileread -f FILE [-n reads] [-q depth] [-b bytes] [-w workers] [-e uring|epoll] [-s host|post]\n");
            return 2;
        }
    }
    if (!path || n == 0 || q == 0 || q > 65536 || bs == 0 || bs > (1u << 30) || w < 1 || w > IOCOMP_THREADS_LIMIT) {
        fprintf(stderr, "iocomp-fileread: bad arguments (-f FILE is required)\n");
        return 2;
    }
    g.fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (g.fd < 0 || fstat(g.fd, &st)) { perror("open"); return 1; }
    g.bs = (uint32_t)bs;
    g.nblocks = (uint64_t)st.st_size / bs;
    if (g.nblocks == 0) { fprintf(stderr, "iocomp-fileread: file smaller than one block\n"); return 1; }
    sem_init(&g.fin, 0, 0);
    pthread_mutex_init(&g.hlock, NULL);

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = (uint32_t)w;
    cfg.backend = backend;
    cfg.on_complete = read_cb;
    cfg.host_overlapped_size = sizeof(struct slot);
    BU_CHECK(iocomp_engine_create(&cfg, &g.e));
    BU_CHECK(iocomp_port_create(g.e, &g.port));
    BU_CHECK(iocomp_bind(g.e, g.port, g.fd, KEY_READ));

    unsigned char *bufs = aligned_alloc(4096, ((q * bs + 4095) / 4096) * 4096);
    iocomp_overlapped **ovs = calloc(q, sizeof *ovs);
    if (!bufs || !ovs) { perror("alloc"); return 1; }
    memset(bufs, 0, q * bs); /* fault the buffers in outside the timing */
    for (unsigned long i = 0; i < q; i++) {
        BU_CHECK(iocomp_overlapped_alloc(g.e, &ovs[i]));
        struct slot *s = iocomp_overlapped_ext(ovs[i]);
        s->seed = 42 + i;
        s->buf = bufs + i * bs;
    }

    round_run(ovs, (unsigned)q, n < 20000 ? n : 20000, 0); /* warm-up, not reported */
    iocomp_stats s0, s1;
    iocomp_get_stats(g.e, &s0);
    double secs = round_run(ovs, (unsigned)q, n, 1);
    iocomp_get_stats(g.e, &s1);

    hist_t *all = calloc(1, sizeof *all);
    if (!all) { perror("calloc"); return 1; }
    for (hist_t *h = g.hists; h; h = h->next) {
        for (unsigned i = 0; i < HBUCKETS; i++) all->count[i] += h->count[i];
        all->total += h->total;
    }
    bu_print_result("fileread", "iocomp", (int)w, n, secs, hist_quantile_us(all, 0.50), hist_quantile_us(all, 0.99),
                    hist_quantile_us(all, 0.999), NULL);
    fprintf(stderr, "# backend=%s start=%s completions=%llu io_submitted=%llu steals=%llu stolen=%llu parks=%llu wakeups=%llu "
                    "sq_full=%llu cq_overflow=%llu rescued=%llu\n",
            iocomp_backend_name(g.e), g_start_post ? "post" : "host",
            (unsigned long long)(s1.completions - s0.completions),
            (unsigned long long)(s1.io_submitted - s0.io_submitted), (unsigned long long)(s1.steals - s0.steals),
            (unsigned long long)(s1.stolen - s0.stolen), (unsigned long long)(s1.parks - s0.parks),
            (unsigned long long)(s1.wakeups - s0.wakeups), (unsigned long long)(s1.io_sq_full - s0.io_sq_full),
            (unsigned long long)(s1.io_cq_overflow - s0.io_cq_overflow),
            (unsigned long long)(s1.io_rescued - s0.io_rescued));

    BU_CHECK(iocomp_unbind(g.e, g.fd));
    bu_engine_close(&g.e, g.port); /* the last callback has returned after this */
    for (unsigned long i = 0; i < q; i++) iocomp_overlapped_free(ovs[i]);
    close(g.fd);
    for (hist_t *h = g.hists, *next; h; h = next) {
        next = h->next;
        free(h);
    }
    free(all);
    free(ovs);
    free(bufs);
    return 0;
}
