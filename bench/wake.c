/*
 * iocomp-wake - wake-up latency of an idle engine, against a raw futex
 * hand-off measured in the same process.
 *
 * For each spacing S (default 2, 20, 200, 2000 us): the main thread (not a
 * worker) posts one packet at a time to an engine with W workers; before
 * each post it waits until the previous packet's callback has started and
 * then another S has passed, so every packet meets an engine that has been
 * idle for S (workers spinning inside their spin window for small S, parked
 * for large S). Waits spin on CLOCK_MONOTONIC (nanosleep oversleeps by about
 * 90 us on these machines). The packet carries its post time in its key;
 * latency = post -> callback start, both from CLOCK_MONOTONIC.
 *
 * Reference, same spacing, same process: a thread parked in FUTEX_WAIT
 * (never spinning) that the main thread wakes with FUTEX_WAKE; latency =
 * the time stamped just before the wake -> the waiter running again.
 *
 * Engine CPU: during every iocomp phase, the process CPU time
 * (CLOCK_PROCESS_CPUTIME_ID) minus the main thread's own
 * (CLOCK_THREAD_CPUTIME_ID) over the phase's wall time, as % of one core
 * (the futex waiter is parked then and costs nothing). At 2000 us spacing
 * this is the "idle CPU" figure; a phase with no posts at all is measured
 * too (idle_noposts).
 *
 * Output, one line per spacing and implementation, in the kit's RESULT
 * format (ops = packets measured, secs = phase wall time):
 *   RESULT workload=wake-Sus impl=iocomp threads=W ops=K secs=T ops_per_s=K/T
 *          p50_us=A p99_us=B p999_us=C engine_cpu_pct=P vs_futex_p50=R
 *   RESULT workload=wake-Sus impl=futex threads=1 ... 
 * then one summary line:
 *   WAKE_SUMMARY workers=W spin_window_p50_us=(2 us spacing) parked_p50_us=(2000 us)
 *          futex_p50_us=(2000 us) parked_vs_futex=R idle_cpu_pct=(2000 us) idle_noposts_cpu_pct=
 *
 *   iocomp-wake [-w workers] [-d secs per phase] [-s us,us,...]
 */
#include <iocomp.h>

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_util.h"

#define MAX_SAMPLES 20000u
#define MIN_SAMPLES 200u

/* Shared between the poster and whoever receives (a worker or the futex waiter). */
static struct {
    _Alignas(64) atomic_uint done_seq;   /* packets received so far in this phase */
    _Alignas(64) atomic_ullong t_last;   /* when the last one was received, ns */
    uint64_t *lat;                       /* lat[i]: latency of packet i, ns */
} sh;

/* --- iocomp side ------------------------------------------------------------- */
static iocomp_engine *eng;
static iocomp_port_t port;

static void wake_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                    uintptr_t key) {
    uint64_t t = bu_now_ns();
    (void)ctx; (void)status; (void)ov;
    sh.lat[bytes] = t - (uint64_t)key;
    atomic_store_explicit(&sh.t_last, t, memory_order_relaxed);
    atomic_store_explicit(&sh.done_seq, bytes + 1, memory_order_release);
}

static void wake_send(uint32_t i) {
    uint64_t t = bu_now_ns();
    int rc = iocomp_post(eng, port, 0, i, NULL, (uintptr_t)t);
    if (rc < 0) {
        fprintf(stderr, "iocomp_post: %d (%s)\n", rc, iocomp_strerror(rc));
        exit(1);
    }
}

/* --- futex side ------------------------------------------------------------------ */
static _Alignas(64) atomic_uint fseq;   /* bumped by the poster for each packet */
static uint64_t fstamp;                  /* its post time (published by fseq) */
static uint32_t fidx;                    /* its index */
static atomic_int fstop;

static long futex(atomic_uint *uaddr, int op, unsigned val) {
    return syscall(SYS_futex, (unsigned *)uaddr, op, val, NULL, NULL, 0);
}

static void *futex_waiter(void *unused) {
    (void)unused;
    unsigned seen = 0;
    for (;;) {
        unsigned cur;
        while ((cur = atomic_load_explicit(&fseq, memory_order_acquire)) == seen)
            futex(&fseq, FUTEX_WAIT_PRIVATE, seen); /* parks at once: no spin */
        uint64_t t = bu_now_ns();
        if (atomic_load_explicit(&fstop, memory_order_relaxed)) return NULL;
        seen = cur;
        sh.lat[fidx] = t - fstamp;
        atomic_store_explicit(&sh.t_last, t, memory_order_relaxed);
        atomic_store_explicit(&sh.done_seq, fidx + 1, memory_order_release);
    }
}

static void futex_send(uint32_t i) {
    fidx = i;
    fstamp = bu_now_ns();
    atomic_fetch_add_explicit(&fseq, 1, memory_order_release);
    futex(&fseq, FUTEX_WAKE_PRIVATE, 1);
}

/* --- one phase -------------------------------------------------------------------- */
typedef struct {
    double p50, p99, p999; /* us */
    double secs;
    double cpu_pct;        /* CPU of everything but the main thread, % of one core */
    unsigned n;
} phase_result;

/* Sends warm + n packets with `send`, each one `spacing` ns after the
 * previous one was received; the first warm ones are not recorded. */
static phase_result run_phase(void (*send)(uint32_t), uint64_t spacing, unsigned n, unsigned warm) {
    phase_result r = { 0 };
    unsigned total = warm + n;
    atomic_store(&sh.done_seq, 0);
    atomic_store(&sh.t_last, bu_now_ns());
    uint64_t w0 = 0, p0 = 0, m0 = 0;
    for (unsigned i = 0; i < total; i++) {
        if (i == warm) {
            w0 = bu_now_ns();
            p0 = bu_process_cpu_ns();
            m0 = bu_thread_cpu_ns();
        }
        while (atomic_load_explicit(&sh.done_seq, memory_order_acquire) != i) __builtin_ia32_pause();
        bu_spin_until(atomic_load_explicit(&sh.t_last, memory_order_relaxed) + spacing);
        send(i);
    }
    while (atomic_load_explicit(&sh.done_seq, memory_order_acquire) != total) __builtin_ia32_pause();
    uint64_t w1 = bu_now_ns(), p1 = bu_process_cpu_ns(), m1 = bu_thread_cpu_ns();
    r.secs = (double)(w1 - w0) / 1e9;
    double other = (double)(p1 - p0) - (double)(m1 - m0);
    r.cpu_pct = 100.0 * (other < 0 ? 0 : other) / (double)(w1 - w0);
    bu_samples s = { sh.lat + warm, n, n };
    int sorted = 0;
    r.p50 = bu_samples_quantile_us(&s, 0.50, &sorted);
    r.p99 = bu_samples_quantile_us(&s, 0.99, &sorted);
    r.p999 = bu_samples_quantile_us(&s, 0.999, &sorted);
    r.n = n;
    return r;
}

int main(int argc, char **argv) {
    unsigned long w = 2;
    double phase_secs = 1.0;
    char spacings_arg[256] = "2,20,200,2000";
    int c;
    while ((c = getopt(argc, argv, "w:d:s:")) != -1) {
        if (c == 'w') w = bu_parse_ul(optarg, "-w");
        else if (c == 'd') phase_secs = atof(optarg);
        else if (c == 's') snprintf(spacings_arg, sizeof spacings_arg, "%s", optarg);
        else {
            fprintf(stderr, "usage: iocomp-wake [-w workers] [-d secs per phase] [-s us,us,...]\n");
            return 2;
        }
    }
    if (w < 1 || w > IOCOMP_THREADS_LIMIT || phase_secs <= 0) { fprintf(stderr, "bad arguments\n"); return 2; }

    sh.lat = calloc(MAX_SAMPLES + 1000, sizeof *sh.lat);
    if (!sh.lat) return 1;
    memset(sh.lat, 0, (MAX_SAMPLES + 1000) * sizeof *sh.lat);

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = (uint32_t)w;
    cfg.on_complete = wake_cb;
    BU_CHECK(iocomp_engine_create(&cfg, &eng));
    BU_CHECK(iocomp_port_create(eng, &port));
    pthread_t fw;
    if (pthread_create(&fw, NULL, futex_waiter, NULL)) return 1;

    /* An engine with nothing to do at all: what do its workers cost? */
    double idle_noposts;
    {
        uint64_t settle = bu_now_ns() + 50000000ull;
        while (bu_now_ns() < settle) usleep(10000);
        uint64_t w0 = bu_now_ns(), p0 = bu_process_cpu_ns(), m0 = bu_thread_cpu_ns();
        usleep((useconds_t)(phase_secs * 500000)); /* half a phase */
        uint64_t w1 = bu_now_ns(), p1 = bu_process_cpu_ns(), m1 = bu_thread_cpu_ns();
        double other = (double)(p1 - p0) - (double)(m1 - m0);
        double pct = 100.0 * (other < 0 ? 0 : other) / (double)(w1 - w0);
        printf("# idle engine, no posts: %.3f %% of one core over %.2f s\n", pct, (double)(w1 - w0) / 1e9);
        fflush(stdout);
        idle_noposts = pct;
    }

    double spin_p50 = -1, parked_p50 = -1, futex_p50 = -1, idle_cpu = -1;
    char *save = NULL;
    for (char *tok = strtok_r(spacings_arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned long us = bu_parse_ul(tok, "-s");
        uint64_t spacing = (uint64_t)us * 1000;
        /* samples: about phase_secs of packets, assuming ~20 us per round trip */
        double want = phase_secs * 1e9 / (double)(spacing + 20000);
        unsigned n = want > MAX_SAMPLES ? MAX_SAMPLES : want < MIN_SAMPLES ? MIN_SAMPLES : (unsigned)want;
        unsigned warm = n / 20 > 10 ? n / 20 : 10;
        if (warm + n > MAX_SAMPLES + 1000) warm = MAX_SAMPLES + 1000 - n;

        iocomp_stats s0, s1;
        iocomp_get_stats(eng, &s0);
        phase_result io = run_phase(wake_send, spacing, n, warm);
        iocomp_get_stats(eng, &s1);
        phase_result fx = run_phase(futex_send, spacing, n, warm);

        char wl[32], extra[128];
        snprintf(wl, sizeof wl, "wake-%luus", us);
        snprintf(extra, sizeof extra, " engine_cpu_pct=%.2f vs_futex_p50=%.3f", io.cpu_pct,
                 fx.p50 > 0 ? io.p50 / fx.p50 : 0.0);
        bu_print_result(wl, "iocomp", (int)w, io.n, io.secs, io.p50, io.p99, io.p999, extra);
        bu_print_result(wl, "futex", 1, fx.n, fx.secs, fx.p50, fx.p99, fx.p999, NULL);
        double np = (double)(warm + n);
        printf("# wake-%luus iocomp per packet: parks=%.2f wakeups=%.2f steals=%.2f\n", us,
               (double)(s1.parks - s0.parks) / np, (double)(s1.wakeups - s0.wakeups) / np,
               (double)(s1.steals - s0.steals) / np);
        if (us == 2) spin_p50 = io.p50;
        if (us == 2000) { parked_p50 = io.p50; futex_p50 = fx.p50; idle_cpu = io.cpu_pct; }
    }

    printf("WAKE_SUMMARY workers=%lu spin_window_p50_us=%.2f parked_p50_us=%.2f futex_p50_us=%.2f "
           "parked_vs_futex=%.3f idle_cpu_pct=%.2f idle_noposts_cpu_pct=%.3f\n",
           w, spin_p50, parked_p50, futex_p50, futex_p50 > 0 ? parked_p50 / futex_p50 : -1.0,
           idle_cpu, idle_noposts);
    fflush(stdout);
    atomic_store(&fstop, 1);
    atomic_fetch_add(&fseq, 1);
    futex(&fseq, FUTEX_WAKE_PRIVATE, 1);
    pthread_join(fw, NULL);
    BU_CHECK(iocomp_port_close(eng, port));
    BU_CHECK(iocomp_engine_destroy(eng));

    free(sh.lat);
    return 0;
}
