/*
 * gbench_shim.h - a small C API over Google Benchmark (C++, Debian
 * libbenchmark-dev 1.7.1), so that iocomp's benchmarks are written in C.
 *
 *   static void bm_x(gb_state *st, void *arg) {
 *       int workers = (int)gb_range(st, 0);
 *       ... set up (not timed) ...
 *       while (gb_keep_running(st)) {
 *           ... one iteration ...
 *       }
 *       gb_set_items_processed(st, gb_iterations(st) * ITEMS);
 *       gb_counter(st, "ns_per_op", ..., GB_COUNTER_DEFAULT);
 *   }
 *
 *   int main(int argc, char **argv) {
 *       gb_bench *b = gb_register("post", bm_x, NULL);
 *       gb_arg_name(b, "workers");
 *       gb_arg(b, 1); gb_arg(b, 2);
 *       gb_use_real_time(b);
 *       return gb_main(argc, argv);
 *   }
 *
 * gb_main() accepts Google Benchmark's own flags (--benchmark_filter,
 * --benchmark_format=json, --benchmark_repetitions, ...) and prints its
 * normal console or JSON output. The benchmark function is called on the
 * thread that calls gb_main() (unless gb_threads() asks for more), possibly
 * several times (Google Benchmark grows the iteration count until the run is
 * long enough, unless gb_iterations_fixed() fixes it).
 */
#ifndef IOCOMP_GBENCH_SHIM_H
#define IOCOMP_GBENCH_SHIM_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A running benchmark (benchmark::State). Valid inside the benchmark function. */
typedef struct gb_state gb_state;
/* A registered benchmark (benchmark::internal::Benchmark); its settings. */
typedef struct gb_bench gb_bench;

typedef void (*gb_fn)(gb_state *st, void *arg);

/* Counter flags: the values of benchmark::Counter::Flags. */
enum gb_counter_flags {
    GB_COUNTER_DEFAULT = 0,
    GB_COUNTER_RATE = 1 << 0,               /* divided by the run's time */
    GB_COUNTER_AVG_THREADS = 1 << 1,        /* divided by the thread count */
    GB_COUNTER_ITERATION_INVARIANT = 1 << 2, /* multiplied by the iterations */
    GB_COUNTER_AVG_ITERATIONS = 1 << 3,     /* divided by the iterations */
    GB_COUNTER_INVERT = (int)(1u << 31)     /* 1/x, applied last */
};

/* Time units for gb_unit(). */
enum gb_time_unit { GB_NS = 0, GB_US = 1, GB_MS = 2, GB_S = 3 };

/* --- registration (before gb_main) ----------------------------------------- */
/* Registers fn under name; arg is passed to every call. The name is copied. */
gb_bench *gb_register(const char *name, gb_fn fn, void *arg);
/* Adds one run with a single argument (gb_range(st, 0)). */
gb_bench *gb_arg(gb_bench *b, int64_t a);
/* Adds one run with n arguments (gb_range(st, 0..n-1)). */
gb_bench *gb_args(gb_bench *b, const int64_t *a, int n);
/* Names the first argument (shown as name:value in the benchmark's name). */
gb_bench *gb_arg_name(gb_bench *b, const char *name);
/* Names the n arguments. */
gb_bench *gb_arg_names(gb_bench *b, const char *const *names, int n);
/* Measures wall-clock time instead of the main thread's CPU time. Use it for
 * everything that hands work to other threads. */
gb_bench *gb_use_real_time(gb_bench *b);
/* The iteration time comes from gb_set_iteration_time(). */
gb_bench *gb_use_manual_time(gb_bench *b);
/* Fixes the number of iterations (no growth run). */
gb_bench *gb_iterations_fixed(gb_bench *b, int64_t n);
/* Repeats each run n times and reports mean/median/stddev/cv as well. */
gb_bench *gb_repetitions(gb_bench *b, int n);
/* With repetitions: report only the aggregates. */
gb_bench *gb_report_aggregates_only(gb_bench *b, bool only);
/* Minimum time of a run in seconds (when the iterations are not fixed). */
gb_bench *gb_min_time(gb_bench *b, double secs);
/* Unit of the time columns. */
gb_bench *gb_unit(gb_bench *b, enum gb_time_unit u);
/* Runs the function on n threads at once (each with its own gb_state). */
gb_bench *gb_threads(gb_bench *b, int n);

/* --- inside the benchmark function -------------------------------------------- */
/* true while another iteration is wanted: while (gb_keep_running(st)) {...} */
bool gb_keep_running(gb_state *st);
/* Same, counting n iterations at a time. */
bool gb_keep_running_batch(gb_state *st, int64_t n);
/* Argument i of this run. */
int64_t gb_range(gb_state *st, int i);
/* Iterations done so far (after the loop: all of them). */
int64_t gb_iterations(gb_state *st);
/* Index of this thread (gb_threads) and the number of threads. */
int gb_thread_index(gb_state *st);
int gb_thread_count(gb_state *st);
/* Totals for the whole run; reported as per-second rates. */
void gb_set_items_processed(gb_state *st, int64_t items);
void gb_set_bytes_processed(gb_state *st, int64_t bytes);
/* Sets (replaces) a user counter: flags from gb_counter_flags. */
void gb_counter(gb_state *st, const char *name, double value, int flags);
/* Stops / restarts the timer inside the loop (costly: about a microsecond). */
void gb_pause_timing(gb_state *st);
void gb_resume_timing(gb_state *st);
/* Reports an error for this run; gb_keep_running() then returns false. Call it
 * before the loop, or break out of the loop right after it. */
void gb_skip_with_error(gb_state *st, const char *msg);
bool gb_error_occurred(gb_state *st);
/* With gb_use_manual_time(): the time of the current iteration, seconds. */
void gb_set_iteration_time(gb_state *st, double secs);
/* A label shown next to the run's results. */
void gb_set_label(gb_state *st, const char *label);

/* --- running -------------------------------------------------------------------- */
/* Parses Google Benchmark's flags from argv (removing them), fails on unknown
 * ones, runs the registered benchmarks that the filter selects, prints the
 * reports. Returns 0, or 1 for a bad command line. */
int gb_main(int argc, char **argv);
/* Parses and removes Google Benchmark's flags only (for programs that take
 * their own options too); gb_run() then runs. gb_main() = gb_init + gb_run. */
void gb_init(int *argc, char **argv);
int gb_run(void);
/* true when the flags asked for a machine-readable format (json/csv) on
 * stdout: anything else printed to stdout would corrupt it. Valid after
 * gb_init()/gb_main() has parsed the flags. */
bool gb_stdout_is_machine_format(void);

#ifdef __cplusplus
}
#endif
#endif /* IOCOMP_GBENCH_SHIM_H */
