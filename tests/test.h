/*
 * tests/test.h - the tiny harness every iocomp test program includes.
 *
 * One test = one program = one behaviour. A test calls test_begin() first
 * (arms an alarm() watchdog and records the process's baseline of threads and
 * descriptors), asserts with CHECK / CHECK_EQ (print file:line and the values,
 * then abort()), and ends with test_end(), which checks that the thread and
 * descriptor counts came back to the baseline (BRIEF §4 invariant 10, no
 * drift) and exits 0. Exit 77 (TEST_SKIP) is for what the machine truly cannot
 * do, nothing else.
 *
 * Loop counts that are large go through test_scaled(): the environment
 * variable IOCOMP_TEST_SCALE is a divisor (CI sets it for sanitizer builds).
 */
#ifndef IOCOMP_TEST_H
#define IOCOMP_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <iocomp.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TEST_SKIP 77

/* The watchdog fires a little before ctest's TIMEOUT so that the failure says
 * why (CMake passes the test's TIMEOUT as IOCOMP_TEST_TIMEOUT). */
#ifndef IOCOMP_TEST_TIMEOUT
#define IOCOMP_TEST_TIMEOUT 60
#endif

/* ---- assertions ----------------------------------------------------------- */

static inline const char *test_errname(long long v) {
    /* A readable name for small negative errno values, "" otherwise. */
    if (v < 0 && v > -4096)
        return strerrorname_np((int)-v) ? strerrorname_np((int)-v) : "";
    return "";
}

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            fflush(stderr);                                                           \
            abort();                                                                  \
        }                                                                             \
    } while (0)

#define CHECK_MSG(cond, ...)                                                          \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);  \
            fprintf(stderr, __VA_ARGS__);                                             \
            fputc('\n', stderr);                                                      \
            fflush(stderr);                                                           \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Compares as signed 64-bit (every iocomp value fits: -errno, counts, ids). */
#define CHECK_EQ(a, b)                                                                     \
    do {                                                                                   \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                   \
        if (check_a_ != check_b_) {                                                        \
            fprintf(stderr,                                                                \
                    "%s:%d: CHECK_EQ failed: %s == %s\n  left:  %lld (0x%llx) %s\n"      \
                    "  right: %lld (0x%llx) %s\n",                                         \
                    __FILE__, __LINE__, #a, #b, check_a_, (unsigned long long)check_a_,    \
                    test_errname(check_a_), check_b_, (unsigned long long)check_b_,        \
                    test_errname(check_b_));                                               \
            fflush(stderr);                                                                \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* Unsigned flavour, for 64-bit values with the top bit set (keys, pointers). */
#define CHECK_EQU(a, b)                                                                    \
    do {                                                                                   \
        unsigned long long check_a_ = (unsigned long long)(a),                            \
                           check_b_ = (unsigned long long)(b);                            \
        if (check_a_ != check_b_) {                                                        \
            fprintf(stderr, "%s:%d: CHECK_EQU failed: %s == %s\n  left:  0x%llx\n"       \
                            "  right: 0x%llx\n",                                           \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);                       \
            fflush(stderr);                                                                \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#define CHECK_OK(expr) CHECK_EQ((expr), 0)

/* ---- time, scale ------------------------------------------------------------ */

static inline uint64_t test_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void test_sleep_us(unsigned us) {
    struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline unsigned test_scale(void) {
    const char *s = getenv("IOCOMP_TEST_SCALE");
    long v = s ? strtol(s, NULL, 10) : 1;
    return v >= 1 ? (unsigned)v : 1u;
}

/* n divided by IOCOMP_TEST_SCALE, at least min_n. */
static inline uint64_t test_scaled_min(uint64_t n, uint64_t min_n) {
    uint64_t v = n / test_scale();
    return v < min_n ? min_n : v;
}
static inline uint64_t test_scaled(uint64_t n) { return test_scaled_min(n, 1); }

static inline pid_t test_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* Polls cond (an expression) until true or timeout_ms passes; yields the CPU
 * between polls (the machine has two cores, the workers need one). Evaluates
 * to true when cond became true. */
#define TEST_WAIT_UNTIL(cond, timeout_ms)                                         \
    ({                                                                            \
        uint64_t wait_deadline_ = test_now_ns() + (uint64_t)(timeout_ms)*1000000u; \
        bool wait_ok_ = false;                                                    \
        unsigned wait_spins_ = 0;                                                 \
        for (;;) {                                                                \
            if (cond) {                                                           \
                wait_ok_ = true;                                                  \
                break;                                                            \
            }                                                                     \
            if (test_now_ns() > wait_deadline_)                                   \
                break;                                                            \
            if (++wait_spins_ < 64)                                               \
                sched_yield();                                                    \
            else                                                                  \
                test_sleep_us(50);                                                \
        }                                                                         \
        wait_ok_;                                                                 \
    })

/* Waits until *ctr >= target; fails the test (with what was seen) after
 * timeout_ms. */
#define TEST_WAIT_COUNT(ctr, target, timeout_ms)                                              \
    do {                                                                                      \
        uint64_t wc_target_ = (uint64_t)(target);                                             \
        if (!TEST_WAIT_UNTIL(atomic_load(ctr) >= wc_target_, (timeout_ms))) {                 \
            fprintf(stderr, "%s:%d: timed out after %d ms waiting for %s >= %" PRIu64         \
                            " (seen %" PRIu64 ")\n",                                          \
                    __FILE__, __LINE__, (int)(timeout_ms), #ctr, wc_target_,                  \
                    (uint64_t)atomic_load(ctr));                                              \
            fflush(stderr);                                                                   \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* ---- callback counting -------------------------------------------------------- */

/* A simple callback that counts packets and remembers the last one; ctx is a
 * struct test_counter. */
struct test_counter {
    atomic_uint_fast64_t calls;
    atomic_int_fast32_t last_status;
    atomic_uint_fast32_t last_bytes;
    _Atomic(iocomp_overlapped *) last_ov;
    atomic_uintptr_t last_key;
    atomic_int last_tid;
};

static inline void test_counter_cb(void *ctx, int32_t status, uint32_t bytes,
                                   iocomp_overlapped *ov, uintptr_t key) {
    struct test_counter *c = (struct test_counter *)ctx;
    atomic_store(&c->last_status, status);
    atomic_store(&c->last_bytes, bytes);
    atomic_store(&c->last_ov, ov);
    atomic_store(&c->last_key, key);
    atomic_store(&c->last_tid, (int)test_gettid());
    atomic_fetch_add(&c->calls, 1); /* last: publishes the fields above */
}

/* A per-packet counter array (ck's validation style): one atomic byte per
 * packet id, which must end at exactly 1. */
struct test_once {
    size_t n;
    _Atomic uint8_t *seen;
    atomic_uint_fast64_t total;
    atomic_uint_fast64_t dups;  /* a packet seen a second time */
    atomic_uint_fast64_t wild;  /* an id out of range or a mangled packet */
};

static inline void test_once_init(struct test_once *o, size_t n) {
    o->n = n;
    o->seen = (_Atomic uint8_t *)calloc(n ? n : 1, 1);
    CHECK(o->seen != NULL);
    atomic_init(&o->total, 0);
    atomic_init(&o->dups, 0);
    atomic_init(&o->wild, 0);
}

static inline void test_once_hit(struct test_once *o, uint64_t id) {
    if (id >= o->n) {
        atomic_fetch_add(&o->wild, 1);
        return;
    }
    if (atomic_fetch_add_explicit(&o->seen[id], 1, memory_order_relaxed) != 0)
        atomic_fetch_add(&o->dups, 1);
    atomic_fetch_add_explicit(&o->total, 1, memory_order_release);
}

/* Every id in [0, n) seen exactly once; names the first bad one. */
static inline void test_once_check(struct test_once *o, const char *what) {
    size_t lost = 0, dup = 0, first_bad = SIZE_MAX;
    for (size_t i = 0; i < o->n; i++) {
        uint8_t v = atomic_load_explicit(&o->seen[i], memory_order_relaxed);
        if (v != 1) {
            if (first_bad == SIZE_MAX)
                first_bad = i;
            if (v == 0)
                lost++;
            else
                dup++;
        }
    }
    if (lost || dup || atomic_load(&o->wild) || atomic_load(&o->dups)) {
        fprintf(stderr,
                "%s: exactly-once violated: %zu packets, %zu lost, %zu seen more than once "
                "(dup events %" PRIu64 "), %" PRIu64 " wild; first bad id %zu (count %u)\n",
                what, o->n, lost, dup, (uint64_t)atomic_load(&o->dups),
                (uint64_t)atomic_load(&o->wild), first_bad,
                first_bad == SIZE_MAX ? 0u : (unsigned)atomic_load(&o->seen[first_bad]));
        fflush(stderr);
        abort();
    }
    CHECK_EQ(atomic_load(&o->total), o->n);
}

static inline void test_once_free(struct test_once *o) {
    free((void *)o->seen);
    o->seen = NULL;
}

/* ---- baseline: threads and descriptors (invariant 10) ---------------------------- */

struct test_baseline {
    int threads;
    int fds;
};

/* A gate for callbacks that must block until the test lets them go:
 * test_gate_wait() counts the caller in `entered`, then waits (polling
 * every poll_us) until test_gate_open(). */
struct test_gate {
    atomic_int open;
    atomic_uint_fast64_t entered;
};

static inline void test_gate_wait(struct test_gate *g, unsigned poll_us) {
    atomic_fetch_add(&g->entered, 1);
    while (!atomic_load(&g->open))
        test_sleep_us(poll_us);
}

static inline void test_gate_open(struct test_gate *g) { atomic_store(&g->open, 1); }

static inline int test_count_dir(const char *path) {
    DIR *d = opendir(path);
    CHECK(d != NULL);
    int self = dirfd(d), n = 0;
    char self_name[16];
    snprintf(self_name, sizeof self_name, "%d", self);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        if (strcmp(path, "/proc/self/fd") == 0 && strcmp(de->d_name, self_name) == 0)
            continue; /* the descriptor that reads the directory */
        n++;
    }
    closedir(d);
    return n;
}

static inline int test_count_threads(void) { return test_count_dir("/proc/self/task"); }
static inline int test_count_fds(void) { return test_count_dir("/proc/self/fd"); }

static inline struct test_baseline test_baseline_take(void) {
    struct test_baseline b = {test_count_threads(), test_count_fds()};
    return b;
}

static inline void test_dump_dir(const char *path, bool links) {
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p[512], buf[256] = "";
        if (links) {
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            ssize_t k = readlink(p, buf, sizeof buf - 1);
            if (k > 0)
                buf[k] = 0;
        } else {
            snprintf(p, sizeof p, "%s/%s/comm", path, de->d_name);
            FILE *f = fopen(p, "r");
            if (f) {
                if (!fgets(buf, sizeof buf, f))
                    buf[0] = 0;
                fclose(f);
                buf[strcspn(buf, "\n")] = 0;
            }
        }
        fprintf(stderr, "    %s %s\n", de->d_name, buf);
    }
    closedir(d);
}

/* Threads and descriptors back to b. A joined thread's task may linger in
 * /proc for a moment after pthread_join(), so this polls (up to 5 s). */
static inline void test_baseline_check_at(const struct test_baseline *b, const char *file,
                                          int line) {
    bool ok = TEST_WAIT_UNTIL(test_count_threads() == b->threads && test_count_fds() == b->fds,
                              5000);
    if (!ok) {
        fprintf(stderr, "%s:%d: drift: threads %d (baseline %d), fds %d (baseline %d)\n", file,
                line, test_count_threads(), b->threads, test_count_fds(), b->fds);
        fprintf(stderr, "  threads now:\n");
        test_dump_dir("/proc/self/task", false);
        fprintf(stderr, "  fds now:\n");
        test_dump_dir("/proc/self/fd", true);
        fflush(stderr);
        abort();
    }
}
#define test_baseline_check(b) test_baseline_check_at((b), __FILE__, __LINE__)

/* ---- watchdog, begin / end ------------------------------------------------------- */

static const char *test_name_ = "test";
static struct test_baseline test_start_baseline_;

static void test_watchdog_(int sig) {
    (void)sig;
    static const char msg[] = "\nwatchdog: the test ran past its time limit (a hang?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    abort();
}

static inline void *test_noop_thread_(void *arg) { return arg; }

/* Arms the watchdog (seconds; 0: the CMake TIMEOUT less a margin) and takes
 * the baseline that test_end() checks. Call first, before any thread. */
static inline void test_begin(const char *name, unsigned seconds) {
    test_name_ = name;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (seconds == 0)
        seconds = IOCOMP_TEST_TIMEOUT > 10 ? IOCOMP_TEST_TIMEOUT - 3 : IOCOMP_TEST_TIMEOUT;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = test_watchdog_;
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds);
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer starts a background thread of its own with the first
     * pthread_create: make that happen before the baseline. */
    {
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, test_noop_thread_, NULL));
        CHECK_OK(pthread_join(t, NULL));
        TEST_WAIT_UNTIL(test_count_threads() >= 2, 1000);
    }
#endif
    test_start_baseline_ = test_baseline_take();
}

/* Checks the no-drift invariant against the baseline of test_begin() and
 * exits 0. Call after every engine is destroyed and every test thread joined. */
#define test_end() test_end_at(__FILE__, __LINE__)
static inline void test_end_at(const char *file, int line) {
    test_baseline_check_at(&test_start_baseline_, file, line);
    alarm(0);
    printf("%s: ok\n", test_name_);
    fflush(stdout);
    exit(0);
}

static inline void test_skip(const char *why) {
    printf("%s: skipped: %s\n", test_name_, why);
    fflush(stdout);
    exit(TEST_SKIP);
}

/* ---- small helpers ---------------------------------------------------------------- */

static inline iocomp_stats test_stats(iocomp_engine *e) {
    iocomp_stats s;
    memset(&s, 0xA5, sizeof s);
    CHECK_OK(iocomp_get_stats(e, &s));
    return s;
}

/* A default config with these thread limits (0: the defaults) and cb. */
static inline iocomp_config test_config(uint32_t min, uint32_t max, iocomp_complete_cb cb, void *ctx) {
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = min;
    cfg.max_threads = max;
    cfg.on_complete = cb;
    cfg.on_complete_ctx = ctx;
    return cfg;
}

/* An engine with these thread limits (0: the defaults) and cb installed. */
static inline iocomp_engine *test_engine(uint32_t min, uint32_t max, iocomp_complete_cb cb,
                                         void *ctx) {
    iocomp_config cfg = test_config(min, max, cb, ctx);
    iocomp_engine *e = NULL;
    CHECK_OK(iocomp_engine_create(&cfg, &e));
    CHECK(e != NULL);
    return e;
}

/* Thread start that fails the test rather than returning an error. */
static inline pthread_t test_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    CHECK_OK(pthread_create(&t, NULL, fn, arg));
    return t;
}

static inline void test_join(pthread_t t) { CHECK_OK(pthread_join(t, NULL)); }

/* A tiny xorshift generator for tests that want varied but repeatable input. */
static inline uint64_t test_rand(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* ---- I/O tests (tests/io_*.c) --------------------------------------------------------
 *
 * CMake registers every I/O test once per backend (name.uring, name.epoll) with
 * IOCOMP_BACKEND set; test_io_engine() checks that the engine really runs the
 * backend the registration names, so a .epoll test cannot pass on io_uring.
 *
 * Exactly-once per request: each overlapped carries a struct test_io in its
 * host extension (cfg.host_overlapped_size = sizeof(struct test_io)). The
 * submitter arms it (0 -> 1) before the call and settles it after: a refused
 * or inline request must still be armed (no callback ran for it) and is
 * disarmed. The callback fires it (1 -> 0): finding it unarmed means a second
 * completion for one request, or a completion for a refused one. Both are
 * counted in test_io_bad and named on stderr.
 */
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

struct test_io {
    atomic_int armed;                 /* 1: submitted, callback not yet run */
    atomic_uint_fast64_t completions; /* callbacks for this overlapped, ever */
    atomic_int_fast32_t status;       /* of the last completion */
    atomic_uint_fast32_t bytes;
    atomic_uintptr_t key;
    atomic_uint_fast64_t done_ns;     /* test_now_ns() at the last callback's start */
    atomic_int tid;                   /* the thread that ran it */
    uint64_t user;                    /* the test's own tag */
};

static atomic_uint_fast64_t test_io_bad;

static inline struct test_io *test_io_of(iocomp_overlapped *ov) {
    return (struct test_io *)iocomp_overlapped_ext(ov);
}

/* The backend the registration asks for (IOCOMP_BACKEND), or NULL. */
static inline const char *test_io_backend(void) {
    const char *b = getenv("IOCOMP_BACKEND");
    return b && *b ? b : NULL;
}

/* Creates an engine from cfg (host_overlapped_size is set to struct
 * test_io when the test left it 0) and checks its backend against
 * IOCOMP_BACKEND. A forced backend that cannot start fails the test: the
 * machine can run both, so that is a bug, not a skip. */
static inline void test_io_warm_cb_(void *ctx, int32_t status, uint32_t bytes,
                                    iocomp_overlapped *ov, uintptr_t key) {
    (void)status, (void)bytes, (void)ov, (void)key;
    atomic_store((atomic_int *)ctx, 1);
}

/* Returns once a worker of e has run a callback. The window right after
 * iocomp_engine_create(), before any worker thread has started, is
 * io_first_submit's subject (io_uring's host hand-off refused submits there
 * with -EAGAIN when this was written); the other I/O tests start after it so
 * that they test what they are about. */
static inline void test_io_warm_up(iocomp_engine *e, iocomp_complete_cb cb, void *ctx) {
    atomic_int seen = 0;
    CHECK_OK(iocomp_set_completion_manager(e, test_io_warm_cb_, &seen));
    CHECK_OK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, NULL, 0));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&seen) == 1, 5000));
    CHECK_OK(iocomp_set_completion_manager(e, cb, ctx));
}

static inline iocomp_engine *test_io_engine(iocomp_config *cfg) {
    if (cfg->host_overlapped_size == 0)
        cfg->host_overlapped_size = sizeof(struct test_io);
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(cfg, &e);
    CHECK_MSG(rc == 0, "iocomp_engine_create with IOCOMP_BACKEND=%s: %d (%s)",
              test_io_backend() ? test_io_backend() : "(unset)", rc, iocomp_strerror(rc));
    const char *want = test_io_backend();
    const char *have = iocomp_backend_name(e);
    CHECK_MSG(want == NULL || strcmp(want, have) == 0, "engine runs backend '%s', not '%s'", have,
              want);
    /* The .uring-min registration: the minimum io_uring level, or nothing. */
    const char *level = getenv("IOCOMP_URING_FEATURES");
    if (level && strcmp(level, "min") == 0 && strcmp(have, "uring") == 0)
        CHECK_MSG(strcmp(iocomp_backend_features(e), "") == 0,
                  "IOCOMP_URING_FEATURES=min, but the engine uses '%s' (a build without the seam?)",
                  iocomp_backend_features(e));
    test_io_warm_up(e, cfg->on_complete, cfg->on_complete_ctx);
    return e;
}

/* An engine with min = max = n workers, cb installed, test_io extensions. */
static inline iocomp_engine *test_io_engine_n(uint32_t n, iocomp_complete_cb cb, void *ctx) {
    iocomp_config cfg = test_config(n, n, cb, ctx);
    return test_io_engine(&cfg);
}

static inline bool test_io_is_uring(iocomp_engine *e) {
    return strcmp(iocomp_backend_name(e), "uring") == 0;
}

static inline iocomp_overlapped *test_io_ov(iocomp_engine *e, uint64_t user) {
    iocomp_overlapped *ov = NULL;
    CHECK_OK(iocomp_overlapped_alloc(e, &ov));
    test_io_of(ov)->user = user;
    return ov;
}

/* Before a submit. */
static inline void test_io_arm(iocomp_overlapped *ov) {
    int was = atomic_exchange(&test_io_of(ov)->armed, 1);
    CHECK_MSG(was == 0, "overlapped %p armed twice (previous completion never came)", (void *)ov);
}

/* After a submit returned rc: 0 keeps it armed (its callback may even have
 * run already); a refusal or IOCOMP_INLINE disarms it and must find it still
 * armed. Returns rc. */
static inline int test_io_settle(iocomp_overlapped *ov, int rc) {
    if (rc == 0)
        return rc;
    if (atomic_exchange(&test_io_of(ov)->armed, 0) != 1) {
        atomic_fetch_add(&test_io_bad, 1);
        fprintf(stderr, "overlapped %p: a callback ran for a request that returned %d\n",
                (void *)ov, rc);
    }
    return rc;
}

/* In the callback: records the completion; false (and counted, and said on
 * stderr) if this overlapped had no request outstanding. */
static inline bool test_io_fire(iocomp_overlapped *ov, int32_t status, uint32_t bytes,
                                uintptr_t key) {
    struct test_io *t = test_io_of(ov);
    atomic_store(&t->done_ns, test_now_ns());
    atomic_store(&t->status, status);
    atomic_store(&t->bytes, bytes);
    atomic_store(&t->key, key);
    atomic_store(&t->tid, (int)test_gettid());
    bool ok = atomic_exchange(&t->armed, 0) == 1;
    if (!ok) {
        atomic_fetch_add(&test_io_bad, 1);
        fprintf(stderr, "overlapped %p (tag %" PRIu64 "): a second completion (status %d, "
                        "bytes %u)\n", (void *)ov, t->user, status, bytes);
    }
    atomic_fetch_add(&t->completions, 1); /* last: publishes the fields */
    return ok;
}

/* Waits for the n-th completion of ov (up to timeout_ms) and returns its record. */
static inline struct test_io *test_io_wait(iocomp_overlapped *ov, uint64_t n, unsigned timeout_ms) {
    struct test_io *t = test_io_of(ov);
    TEST_WAIT_COUNT(&t->completions, n, timeout_ms);
    return t;
}

/* A connected AF_UNIX stream pair (close-on-exec). */
static inline void test_socketpair(int sv[2]) {
    CHECK_OK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv));
}

/* A TCP socket on 127.0.0.1 with an ephemeral port, listening when listen_ok
 * (else bound only: connecting to it is refused while it stays open, with no
 * other process able to take the port). *addr gets its address. */
static inline int test_tcp_socket(bool listen_ok, struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_OK(bind(fd, (struct sockaddr *)&a, sizeof a));
    socklen_t l = sizeof a;
    CHECK_OK(getsockname(fd, (struct sockaddr *)&a, &l));
    if (listen_ok)
        CHECK_OK(listen(fd, 128));
    if (addr)
        *addr = a;
    return fd;
}

/* Raises the soft descriptor limit to at least want (up to the hard limit);
 * returns what it is now. */
static inline rlim_t test_raise_nofile(rlim_t want) {
    struct rlimit rl;
    CHECK_OK(getrlimit(RLIMIT_NOFILE, &rl));
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        CHECK_OK(setrlimit(RLIMIT_NOFILE, &rl));
    }
    return rl.rlim_cur;
}

#endif /* IOCOMP_TEST_H */
