/*
 * bench_util.h - small helpers shared by the iocomp bench programs: the
 * monotonic clock, a latency recorder, option parsing helpers and the
 * one-line RESULT printer.
 *
 * The RESULT line has exactly the field order and number formats of the peer
 * kit's (peers/README.md, "Output format"), so that the kit's run.sh and
 * summarize.sh read iocomp's lines next to the peers':
 *
 *   RESULT workload=W impl=I threads=T ops=N secs=S ops_per_s=X \
 *          p50_us=A p99_us=B p999_us=C[ extra fields]
 *
 * secs with 4 decimals, ops_per_s rounded to an integer, latencies in
 * microseconds with 2 decimals or "-" where latency does not apply.
 */
#ifndef IOCOMP_BENCH_UTIL_H
#define IOCOMP_BENCH_UTIL_H

#include <iocomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline uint64_t bu_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread, ns. */
static inline uint64_t bu_thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of the whole process (all threads), ns. */
static inline uint64_t bu_process_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Busy-waits until bu_now_ns() >= t (nanosleep oversleeps by ~90 us on the
 * machines this runs on, so short waits spin on the clock). Returns now. */
static inline uint64_t bu_spin_until(uint64_t t) {
    uint64_t n;
    while ((n = bu_now_ns()) < t) __builtin_ia32_pause();
    return n;
}

/* Keeps the compiler from dropping a computation whose result is unused. */
#define BU_ESCAPE(p) __asm__ __volatile__("" : : "g"(p) : "memory")

/* --- latency samples -----------------------------------------------------
 * Exact percentiles from a fixed array of samples (ns). The wake benchmark
 * records at most a few tens of thousands of values, so sorting them is
 * cheaper and more exact than a histogram. */
typedef struct {
    uint64_t *v;
    size_t n, cap;
} bu_samples;

static inline int bu_samples_init(bu_samples *s, size_t cap) {
    s->v = (uint64_t *)malloc((cap ? cap : 1) * sizeof *s->v);
    s->n = 0;
    s->cap = cap;
    if (!s->v) return -1;
    memset(s->v, 0, (cap ? cap : 1) * sizeof *s->v); /* fault the pages in now, not while timing */
    return 0;
}
static inline void bu_samples_free(bu_samples *s) { free(s->v); s->v = NULL; s->n = s->cap = 0; }
static inline void bu_samples_add(bu_samples *s, uint64_t ns) { if (s->n < s->cap) s->v[s->n++] = ns; }

static int bu_cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
/* Sorts the samples (once) and returns the q-quantile in microseconds
 * (nearest rank), or -1 when there are none. */
static inline double bu_samples_quantile_us(bu_samples *s, double q, int *sorted) {
    if (s->n == 0) return -1;
    if (!*sorted) { qsort(s->v, s->n, sizeof *s->v, bu_cmp_u64); *sorted = 1; }
    size_t rank = (size_t)(q * (double)s->n + 0.5);
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return (double)s->v[rank - 1] / 1000.0;
}

/* --- the RESULT line --------------------------------------------------------
 * p50/p99/p999 < 0 print as "-" (latency does not apply). extra: appended as
 * is (" key=value" fields), may be NULL. */
static inline void bu_print_result(const char *workload, const char *impl, int threads,
                                   uint64_t ops, double secs, double p50_us, double p99_us,
                                   double p999_us, const char *extra) {
    char a[32] = "-", b[32] = "-", c[32] = "-";
    if (p50_us >= 0) snprintf(a, sizeof a, "%.2f", p50_us);
    if (p99_us >= 0) snprintf(b, sizeof b, "%.2f", p99_us);
    if (p999_us >= 0) snprintf(c, sizeof c, "%.2f", p999_us);
    printf("RESULT workload=%s impl=%s threads=%d ops=%llu secs=%.4f ops_per_s=%.0f "
           "p50_us=%s p99_us=%s p999_us=%s%s\n",
           workload, impl, threads, (unsigned long long)ops, secs,
           secs > 0 ? (double)ops / secs : 0.0, a, b, c, extra ? extra : "");
    fflush(stdout);
}

/* --- small option helpers ------------------------------------------------------ */
static inline unsigned long bu_parse_ul(const char *s, const char *what) {
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end) {
        fprintf(stderr, "bad %s: '%s'\n", what, s);
        exit(2);
    }
    return v;
}

/* Dies with a message when an iocomp call fails (rc < 0). */
#define BU_CHECK(call)                                                                   \
    do {                                                                                 \
        int bu_rc_ = (call);                                                             \
        if (bu_rc_ < 0) {                                                                \
            fprintf(stderr, "%s:%d: %s failed: %d (%s)\n", __FILE__, __LINE__, #call,    \
                    bu_rc_, iocomp_strerror(bu_rc_));                                    \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

/* An engine of exactly `workers` threads (min = max) with one port. */
static inline void bu_engine_open(uint32_t workers, iocomp_complete_cb cb, iocomp_engine **e,
                                  iocomp_port_t *port) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = workers;
    cfg.on_complete = cb;
    BU_CHECK(iocomp_engine_create(&cfg, e));
    BU_CHECK(iocomp_port_create(*e, port));
}

static inline void bu_engine_close(iocomp_engine **e, iocomp_port_t port) {
    BU_CHECK(iocomp_port_close(*e, port));
    BU_CHECK(iocomp_engine_destroy(*e));
    *e = NULL;
}

#ifdef __cplusplus
}
#endif
#endif /* IOCOMP_BENCH_UTIL_H */
