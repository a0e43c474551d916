/*
 * iocomp-nop - completion ingestion through the full path (CQE -> the
 * worker's ring -> callback -> resubmit), against a raw liburing loop doing
 * the same operations in the same process.
 *
 * The operation. iocomp has no public NOP; what both sides issue is chosen
 * with -o:
 *   poll   (default) IORING_OP_POLL_ADD for POLLOUT on an eventfd, which is
 *          always writable: the kernel completes it inside io_uring_enter()
 *          (one vfs_poll, no wait queue, no task work), the cheapest request
 *          a bound descriptor can make: 290 ns a request at batch 32 on this
 *          machine against 140 ns for IORING_OP_NOP.
 *   timer  iocomp_timer(e, port, key, 0, 0, ov): IORING_OP_TIMEOUT of 0 ns on
 *          the io_uring side. Not a NOP: the kernel arms an hrtimer, which
 *          fires from the timer interrupt and posts the CQE by task work; it
 *          measured ~8-10 us a request (~100-130 k/s) on both sides here, so
 *          it measures the kernel's timer path, not iocomp's (the ratio is
 *          ~1 whatever iocomp does). Kept for completeness.
 * The raw IORING_OP_NOP loop is measured too (impl=raw-uring-nop), so the
 * summary also gives iocomp's rate against a true NOP and its cost per
 * request in ns over the raw loop of the same operation.
 *
 * iocomp side: an engine with one worker (min = max = 1, io_uring backend),
 * one port, the eventfd bound to it. The main thread posts one start packet;
 * its callback, on the worker, submits B requests on B overlapped; every
 * completion's callback counts it and resubmits its overlapped until N were
 * issued; the N-th completion stamps the end. So every request is submitted
 * from a callback (the worker's own ring, no lock contention, no system call
 * until the worker runs out of queued packets and its poll() submits the
 * batch with one io_uring_enter and reaps the CQEs into its ring).
 * Measured: the start post -> the N-th callback.
 *
 * raw side: one thread, one ring with the engine's flags (256 SQ entries,
 * CQ 512, SUBMIT_ALL); B requests prepared and submitted, then the kit's
 * raw-uring W4 loop: io_uring_wait_cqe() (a peek, no system call when a CQE
 * is there, as it is for these inline completions), every ready CQE reaped
 * refills its slot, one io_uring_submit() for the refills: one
 * io_uring_enter per batch, without IORING_ENTER_GETEVENTS. (With
 * io_uring_submit_and_wait(1) instead, the raw loop measured ~10 % slower at
 * batch 1: the enter then also goes through the wait path.)
 *
 * Each repetition runs, for each batch, raw-uring, iocomp and raw-uring-nop
 * (raw and iocomp alternate which goes first from one repetition to the
 * next), each after an untimed warm-up of N/10. Per run a comment line on
 * stderr; after all repetitions, per batch, the median (by ops_per_s) of
 * each implementation as a RESULT line on stdout:
 *   RESULT workload=nop-b<B> impl=iocomp|raw-uring|raw-uring-nop threads=1 ops=N secs=S ops_per_s=X p50_us=- ...
 * and one summary line per batch:
 *   NOP_SUMMARY op=poll batch=B iocomp_ops_per_s=X raw_ops_per_s=Y ratio=X/Y
 *       iocomp_ns=.. raw_ns=.. overhead_ns=(iocomp_ns - raw_ns) raw_nop_ops_per_s=Z ratio_vs_nop=X/Z
 * (medians of the repetitions; ratio = median(iocomp) / median(raw)).
 *
 *   iocomp-nop [-n N] [-b 1,4,32,256] [-r reps] [-o poll|timer] [-i iocomp|raw]
 * (-i: run only that side, for profiling: no RESULT/summary lines then.)
 */
#include <iocomp.h>

#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_BATCH 256u
#define MAX_BATCHES 16
#define MAX_REPS 64
#define KEY_START 1u
#define KEY_OP 2u

enum { OP_POLL, OP_TIMER };
static int g_op = OP_POLL;

/* --- iocomp side ------------------------------------------------------------------- */
static struct {
    iocomp_engine *e;
    iocomp_port_t port;
    int efd;
    iocomp_overlapped *ov[MAX_BATCH];
    unsigned batch;
    unsigned long n, issued, done; /* only the one worker touches them during a run */
    uint64_t t_end;
    sem_t fin;
} io;

static int io_issue(iocomp_overlapped *ov) {
    if (g_op == OP_TIMER) return iocomp_timer(io.e, io.port, KEY_OP, 0, 0, ov);
    return iocomp_poll(io.e, io.efd, POLLOUT, ov);
}

static void io_fail(const char *what, int rc) {
    fprintf(stderr, "iocomp-nop: %s: %d (%s)\n", what, rc, iocomp_strerror(rc));
    exit(1);
}

static void nop_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx; (void)bytes;
    if (key == KEY_START) { /* on the worker: start B requests */
        for (unsigned i = 0; i < io.batch && io.issued < io.n; i++, io.issued++) {
            int rc = io_issue(io.ov[i]);
            if (rc != 0) io_fail("submit", rc);
        }
        return;
    }
    if (status < 0) io_fail("completion", status);
    if (++io.done == io.n) {
        io.t_end = bu_now_ns();
        sem_post(&io.fin);
        return;
    }
    if (io.issued < io.n) {
        io.issued++;
        int rc = io_issue(ov);
        if (rc != 0) io_fail("resubmit", rc);
    }
}

static void io_open(void) {
    sem_init(&io.fin, 0, 0);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = 1;
    cfg.backend = "uring";
    cfg.on_complete = nop_cb;
    BU_CHECK(iocomp_engine_create(&cfg, &io.e));
    BU_CHECK(iocomp_port_create(io.e, &io.port));
    io.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (io.efd < 0) { perror("eventfd"); exit(1); }
    BU_CHECK(iocomp_bind(io.e, io.port, io.efd, KEY_OP));
    for (unsigned i = 0; i < MAX_BATCH; i++) BU_CHECK(iocomp_overlapped_alloc(io.e, &io.ov[i]));
}

static void io_close(void) {
    for (unsigned i = 0; i < MAX_BATCH; i++) iocomp_overlapped_free(io.ov[i]);
    BU_CHECK(iocomp_unbind(io.e, io.efd));
    close(io.efd);
    bu_engine_close(&io.e, io.port);
    sem_destroy(&io.fin);
}

/* One run: N requests, B in flight. Returns seconds. */
static double io_run(unsigned batch, unsigned long n) {
    io.batch = batch;
    io.n = n;
    io.issued = io.done = 0;
    uint64_t t0 = bu_now_ns();
    /* The post publishes the fields above to the worker (its queue's release/acquire). */
    int rc = iocomp_post(io.e, io.port, 0, 0, NULL, KEY_START);
    if (rc < 0) io_fail("post", rc);
    while (sem_wait(&io.fin) != 0 && errno == EINTR) {}
    return (double)(io.t_end - t0) / 1e9;
}

/* --- raw liburing side ---------------------------------------------------------------- */
static struct io_uring raw_ring;
static int raw_efd;
static struct __kernel_timespec raw_ts0;

static void raw_prep(struct io_uring_sqe *sqe, int nop, unsigned slot) {
    if (nop) io_uring_prep_nop(sqe);
    else if (g_op == OP_TIMER) io_uring_prep_timeout(sqe, &raw_ts0, 0, 0);
    else io_uring_prep_poll_add(sqe, raw_efd, POLLOUT);
    io_uring_sqe_set_data64(sqe, slot);
}

static void raw_open(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE; /* as the engine's rings */
    p.cq_entries = 2 * MAX_BATCH;
    int rc = io_uring_queue_init_params(MAX_BATCH, &raw_ring, &p);
    if (rc < 0) io_fail("io_uring_queue_init_params", rc);
    raw_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (raw_efd < 0) { perror("eventfd"); exit(1); }
}

static void raw_close(void) {
    io_uring_queue_exit(&raw_ring);
    close(raw_efd);
}

static double raw_run(unsigned batch, unsigned long n, int nop) {
    unsigned long issued = 0, done = 0;
    uint64_t t0 = bu_now_ns();
    for (unsigned i = 0; i < batch && issued < n; i++, issued++) raw_prep(io_uring_get_sqe(&raw_ring), nop, i);
    io_uring_submit(&raw_ring);
    while (done < n) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&raw_ring, &cqe); /* a peek: a system call only if none is ready */
        if (rc < 0 && rc != -EINTR) io_fail("io_uring_wait_cqe", rc);
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&raw_ring, head, cqe) {
            if (cqe->res < 0 && !(g_op == OP_TIMER && cqe->res == -ETIME)) io_fail("raw completion", cqe->res);
            seen++;
            done++;
            if (issued < n) {
                raw_prep(io_uring_get_sqe(&raw_ring), nop, (unsigned)cqe->user_data);
                issued++;
            }
        }
        io_uring_cq_advance(&raw_ring, seen);
        io_uring_submit(&raw_ring); /* one io_uring_enter for the batch */
    }
    return (double)(bu_now_ns() - t0) / 1e9;
}

/* --- driver ------------------------------------------------------------------------------ */
enum { I_RAW, I_IOCOMP, I_NOP, I_COUNT };
static const char *const impl_name[I_COUNT] = {"raw-uring", "iocomp", "raw-uring-nop"};

static double run_one(int impl, unsigned batch, unsigned long n) {
    if (impl == I_IOCOMP) return io_run(batch, n);
    return raw_run(batch, n, impl == I_NOP);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of k values (the lower middle one for even k, so it is a real run). */
static double median_secs(double *v, int k) {
    double s[MAX_REPS];
    memcpy(s, v, (size_t)k * sizeof *v);
    qsort(s, (size_t)k, sizeof *s, cmp_d);
    return s[(k - 1) / 2];
}

int main(int argc, char **argv) {
    unsigned long n = 0, reps = 5;
    unsigned batches[MAX_BATCHES] = {1, 4, 32, 256};
    int nb = 4, c, only = -1;
    while ((c = getopt(argc, argv, "n:b:r:o:i:")) != -1) {
        if (c == 'n') n = bu_parse_ul(optarg, "-n");
        else if (c == 'i') {
            if (!strcmp(optarg, "iocomp")) only = I_IOCOMP;
            else if (!strcmp(optarg, "raw")) only = I_RAW;
            else { fprintf(stderr, "bad -i (iocomp|raw)\n"); return 2; }
        }
        else if (c == 'r') reps = bu_parse_ul(optarg, "-r");
        else if (c == 'o') {
            if (!strcmp(optarg, "poll")) g_op = OP_POLL;
            else if (!strcmp(optarg, "timer")) g_op = OP_TIMER;
            else { fprintf(stderr, "bad -o (poll|timer)\n"); return 2; }
        } else if (c == 'b') {
            nb = 0;
            for (char *s = strtok(optarg, ","); s; s = strtok(NULL, ",")) {
                unsigned long b = bu_parse_ul(s, "-b");
                if (b < 1 || b > MAX_BATCH || nb == MAX_BATCHES) { fprintf(stderr, "bad -b (1..%u)\n", MAX_BATCH); return 2; }
                batches[nb++] = (unsigned)b;
            }
        } else {
            fprintf(stderr, "usage: iocomp-nop [-n requests] [-b 1,4,32,256] [-r reps] [-o poll|timer] [-i iocomp|raw]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > MAX_REPS || nb == 0) { fprintf(stderr, "bad -r or -b\n"); return 2; }
    if (n == 0) n = g_op == OP_TIMER ? 50000 : 500000;
    const char *opname = g_op == OP_TIMER ? "timer" : "poll";

    io_open();
    raw_open();
    static double secs[MAX_BATCHES][I_COUNT][MAX_REPS];
    unsigned long warm = n / 10 ? n / 10 : 1;
    for (unsigned long r = 0; r < reps; r++) {
        for (int bi = 0; bi < nb; bi++) {
            unsigned b = batches[bi];
            int order[I_COUNT] = {I_RAW, I_IOCOMP, I_NOP};
            if (r & 1) { order[0] = I_IOCOMP; order[1] = I_RAW; }
            for (int k = 0; k < I_COUNT; k++) {
                int impl = order[k];
                if (only >= 0 && impl != only) continue;
                run_one(impl, b, warm);
                iocomp_stats s0, s1;
                iocomp_get_stats(io.e, &s0);
                double t = run_one(impl, b, n);
                iocomp_get_stats(io.e, &s1);
                secs[bi][impl][r] = t;
                fprintf(stderr, "# rep %lu/%lu op=%s batch=%u %s: %.0f ops/s (%.1f ns/op)", r + 1, reps, opname, b,
                        impl_name[impl], (double)n / t, t * 1e9 / (double)n);
                if (impl == I_IOCOMP)
                    fprintf(stderr, " parks=%llu sq_full=%llu cq_overflow=%llu", (unsigned long long)(s1.parks - s0.parks),
                            (unsigned long long)(s1.io_sq_full - s0.io_sq_full),
                            (unsigned long long)(s1.io_cq_overflow - s0.io_cq_overflow));
                fputc('\n', stderr);
            }
        }
    }
    for (int bi = 0; bi < nb && only < 0; bi++) {
        double med[I_COUNT];
        char wl[32];
        snprintf(wl, sizeof wl, "nop-b%u", batches[bi]);
        for (int i = 0; i < I_COUNT; i++) {
            med[i] = median_secs(secs[bi][i], (int)reps);
            char extra[64];
            snprintf(extra, sizeof extra, " op=%s batch=%u", i == I_NOP ? "nop" : opname, batches[bi]);
            bu_print_result(wl, impl_name[i], 1, n, med[i], -1, -1, -1, extra);
        }
        double x = (double)n / med[I_IOCOMP], y = (double)n / med[I_RAW], z = (double)n / med[I_NOP];
        printf("NOP_SUMMARY op=%s batch=%u iocomp_ops_per_s=%.0f raw_ops_per_s=%.0f ratio=%.3f iocomp_ns=%.1f "
               "raw_ns=%.1f overhead_ns=%.1f raw_nop_ops_per_s=%.0f ratio_vs_nop=%.3f reps=%lu\n",
               opname, batches[bi], x, y, x / y, 1e9 / x, 1e9 / y, 1e9 / x - 1e9 / y, z, x / z, reps);
    }
    fflush(stdout);
    raw_close();
    io_close();
    return 0;
}
