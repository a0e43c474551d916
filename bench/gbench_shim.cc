// gbench_shim.cc - the C API of gbench_shim.h over Google Benchmark 1.7.
//
// gb_state is a benchmark::State and gb_bench a benchmark::internal::Benchmark,
// both only ever seen through pointers by C; every function here is a thin
// forwarder, so the per-iteration cost of gb_keep_running() is one call more
// than Google Benchmark's own inline KeepRunning() (a few ns; the iocomp
// benchmarks time microseconds or more per iteration, or batch with
// gb_keep_running_batch / manual time).
#include "gbench_shim.h"

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

namespace {

constexpr unsigned U(long long v) { return static_cast<unsigned>(v); }
static_assert(U(GB_COUNTER_RATE) == U(benchmark::Counter::kIsRate), "counter flags");
static_assert(U(GB_COUNTER_AVG_THREADS) == U(benchmark::Counter::kAvgThreads), "counter flags");
static_assert(U(GB_COUNTER_ITERATION_INVARIANT) == U(benchmark::Counter::kIsIterationInvariant),
              "counter flags");
static_assert(U(GB_COUNTER_AVG_ITERATIONS) == U(benchmark::Counter::kAvgIterations),
              "counter flags");
static_assert(U(GB_COUNTER_INVERT) == U(benchmark::Counter::kInvert), "counter flags");

inline benchmark::State &S(gb_state *st) { return *reinterpret_cast<benchmark::State *>(st); }
inline benchmark::internal::Benchmark *B(gb_bench *b) {
    return reinterpret_cast<benchmark::internal::Benchmark *>(b);
}
inline gb_bench *C(benchmark::internal::Benchmark *b) { return reinterpret_cast<gb_bench *>(b); }

bool machine_format = false;

}  // namespace

extern "C" {

gb_bench *gb_register(const char *name, gb_fn fn, void *arg) {
    auto *b = benchmark::RegisterBenchmark(name, [fn, arg](benchmark::State &st) {
        fn(reinterpret_cast<gb_state *>(&st), arg);
    });
    return C(b);
}

gb_bench *gb_arg(gb_bench *b, int64_t a) { return C(B(b)->Arg(a)); }

gb_bench *gb_args(gb_bench *b, const int64_t *a, int n) {
    return C(B(b)->Args(std::vector<int64_t>(a, a + n)));
}

gb_bench *gb_arg_name(gb_bench *b, const char *name) { return C(B(b)->ArgName(name)); }

gb_bench *gb_arg_names(gb_bench *b, const char *const *names, int n) {
    return C(B(b)->ArgNames(std::vector<std::string>(names, names + n)));
}

gb_bench *gb_use_real_time(gb_bench *b) { return C(B(b)->UseRealTime()); }
gb_bench *gb_use_manual_time(gb_bench *b) { return C(B(b)->UseManualTime()); }
gb_bench *gb_iterations_fixed(gb_bench *b, int64_t n) { return C(B(b)->Iterations(n)); }
gb_bench *gb_repetitions(gb_bench *b, int n) { return C(B(b)->Repetitions(n)); }
gb_bench *gb_report_aggregates_only(gb_bench *b, bool only) {
    return C(B(b)->ReportAggregatesOnly(only));
}
gb_bench *gb_min_time(gb_bench *b, double secs) { return C(B(b)->MinTime(secs)); }
gb_bench *gb_threads(gb_bench *b, int n) { return C(B(b)->Threads(n)); }

gb_bench *gb_unit(gb_bench *b, enum gb_time_unit u) {
    benchmark::TimeUnit t = benchmark::kNanosecond;
    switch (u) {
    case GB_NS: t = benchmark::kNanosecond; break;
    case GB_US: t = benchmark::kMicrosecond; break;
    case GB_MS: t = benchmark::kMillisecond; break;
    case GB_S: t = benchmark::kSecond; break;
    }
    return C(B(b)->Unit(t));
}

bool gb_keep_running(gb_state *st) { return S(st).KeepRunning(); }
bool gb_keep_running_batch(gb_state *st, int64_t n) { return S(st).KeepRunningBatch(n); }
int64_t gb_range(gb_state *st, int i) { return S(st).range(static_cast<std::size_t>(i)); }
int64_t gb_iterations(gb_state *st) { return static_cast<int64_t>(S(st).iterations()); }
int gb_thread_index(gb_state *st) { return S(st).thread_index(); }
int gb_thread_count(gb_state *st) { return S(st).threads(); }

void gb_set_items_processed(gb_state *st, int64_t items) { S(st).SetItemsProcessed(items); }
void gb_set_bytes_processed(gb_state *st, int64_t bytes) { S(st).SetBytesProcessed(bytes); }

void gb_counter(gb_state *st, const char *name, double value, int flags) {
    S(st).counters[name] =
        benchmark::Counter(value, static_cast<benchmark::Counter::Flags>(flags));
}

void gb_pause_timing(gb_state *st) { S(st).PauseTiming(); }
void gb_resume_timing(gb_state *st) { S(st).ResumeTiming(); }
void gb_skip_with_error(gb_state *st, const char *msg) { S(st).SkipWithError(msg); }
bool gb_error_occurred(gb_state *st) { return S(st).error_occurred(); }
void gb_set_iteration_time(gb_state *st, double secs) { S(st).SetIterationTime(secs); }
void gb_set_label(gb_state *st, const char *label) { S(st).SetLabel(label); }

void gb_init(int *argc, char **argv) {
    // Google Benchmark does not export its parsed flags; look for the format
    // flag ourselves (only the --flag=value spelling is accepted by it).
    for (int i = 1; i < *argc; i++) {
        const char *p = "--benchmark_format=";
        if (std::strncmp(argv[i], p, std::strlen(p)) == 0)
            machine_format = std::strcmp(argv[i] + std::strlen(p), "console") != 0;
    }
    benchmark::Initialize(argc, argv);
}

int gb_run(void) {
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

int gb_main(int argc, char **argv) {
    gb_init(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    return gb_run();
}

bool gb_stdout_is_machine_format(void) { return machine_format; }

}  // extern "C"
