/*
 * iocomp-physics: what this machine charges for the things iocomp's hot
 * paths are made of, measured by iocomp's own probe (tools/bench.sh prints it
 * at the top of every run, also on a clone with no peer kit beside it):
 *
 *   line     one cache line moved between two CPUs: two threads pinned to
 *            CPU A and CPU B bounce a counter on one line; half a round trip
 *   futex    a futex wake-up: the waker stamps the clock and FUTEX_WAKEs a
 *            thread blocked in FUTEX_WAIT on the other CPU, which stamps on
 *            return; the difference (the median of the rounds)
 *   syscall  one getppid(2) system call, in a loop
 *   yield    one sched_yield(2) with nothing else runnable on the CPU
 *
 *   iocomp-physics [-a CPU] [-b CPU] [-r rounds]
 *
 * Prints one line per figure ("PHYSICS name=value unit") and a summary line
 * "PHYSICS_SUMMARY line_ns=.. futex_us=.. syscall_ns=.. yield_ns=.. cpus=A,B".
 * With one usable CPU the line and futex figures are -1 (nothing to cross).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu) {
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- line: ping-pong on one cache line ---------------------------------------------- */
static _Alignas(128) _Atomic uint64_t ball;
static int cpu_a, cpu_b;
static uint64_t bounces;

static void *pong(void *arg) {
    (void)arg;
    pin(cpu_b);
    for (uint64_t i = 1; i <= bounces; i++) {
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i - 1) __builtin_ia32_pause();
        atomic_store_explicit(&ball, 2 * i, memory_order_release);
    }
    return NULL;
}

static double measure_line(void) {
    pthread_t t;
    atomic_store(&ball, 0);
    if (pthread_create(&t, NULL, pong, NULL) != 0) return -1;
    pin(cpu_a);
    uint64_t t0 = 0;
    for (uint64_t i = 1; i <= bounces; i++) {
        if (i == bounces / 10 + 1) t0 = now_ns(); /* the first tenth warms up */
        atomic_store_explicit(&ball, 2 * i - 1, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != 2 * i) __builtin_ia32_pause();
    }
    uint64_t dt = now_ns() - t0;
    pthread_join(t, NULL);
    uint64_t n = bounces - bounces / 10;
    return (double)dt / (double)n / 2.0; /* a round trip is two transfers */
}

/* ---- futex: wake-up latency -------------------------------------------------------- */
static _Atomic uint32_t fword;
static _Atomic uint64_t woke_at;
static _Atomic int phase; /* 0 idle, 1 the waiter is about to wait, 2 quit */

static long futex(_Atomic uint32_t *w, int op, uint32_t v) {
    return syscall(SYS_futex, (uint32_t *)w, op, v, NULL, NULL, 0);
}

static void *waiter(void *arg) {
    int rounds = *(int *)arg;
    pin(cpu_b);
    for (int i = 0; i < rounds; i++) {
        atomic_store(&fword, 0);
        atomic_store(&phase, 1);
        while (atomic_load(&fword) == 0) futex(&fword, FUTEX_WAIT_PRIVATE, 0);
        atomic_store(&woke_at, now_ns());
        while (atomic_load(&phase) != 0) __builtin_ia32_pause();
    }
    return NULL;
}

static double measure_futex(int rounds) {
    pthread_t t;
    uint64_t *lat = calloc((size_t)rounds, sizeof *lat);
    if (!lat || pthread_create(&t, NULL, waiter, &rounds) != 0) {
        free(lat);
        return -1;
    }
    pin(cpu_a);
    for (int i = 0; i < rounds; i++) {
        while (atomic_load(&phase) != 1) __builtin_ia32_pause();
        usleep(200); /* let it block in FUTEX_WAIT */
        atomic_store(&woke_at, 0);
        uint64_t t0 = now_ns();
        atomic_store(&fword, 1);
        futex(&fword, FUTEX_WAKE_PRIVATE, 1);
        uint64_t w;
        while ((w = atomic_load(&woke_at)) == 0) __builtin_ia32_pause();
        lat[i] = w - t0;
        atomic_store(&phase, 0);
    }
    pthread_join(t, NULL);
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_u64);
    double med = (double)lat[rounds / 2];
    free(lat);
    return med;
}

static double measure_loop(int which, int n) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < n; i++) {
        if (which == 0) syscall(SYS_getppid);
        else sched_yield();
    }
    return (double)(now_ns() - t0) / n;
}

int main(int argc, char **argv) {
    int rounds = 200, opt;
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    sched_getaffinity(0, sizeof allowed, &allowed);
    int ncpu = CPU_COUNT(&allowed), first = -1, second = -1;
    for (int c = 0; c < CPU_SETSIZE && second < 0; c++)
        if (CPU_ISSET(c, &allowed)) {
            if (first < 0) first = c;
            else second = c;
        }
    cpu_a = first;
    cpu_b = second;
    while ((opt = getopt(argc, argv, "a:b:r:")) != -1) {
        switch (opt) {
        case 'a': cpu_a = atoi(optarg); break;
        case 'b': cpu_b = atoi(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: iocomp-physics [-a CPU] [-b CPU] [-r rounds]\n");
            return 2;
        }
    }
    if (rounds < 3) rounds = 3;
    bounces = 200000;
    double line = -1, fut = -1;
    if (ncpu >= 2 && cpu_b >= 0 && cpu_a != cpu_b) {
        line = measure_line();
        fut = measure_futex(rounds);
    }
    pin(cpu_a >= 0 ? cpu_a : 0);
    double sys = measure_loop(0, 200000), yld = measure_loop(1, 200000);
    printf("PHYSICS line=%.1f ns (CPU %d <-> CPU %d)\n", line, cpu_a, cpu_b);
    printf("PHYSICS futex=%.2f us (median of %d wake-ups)\n", fut < 0 ? -1 : fut / 1000.0, rounds);
    printf("PHYSICS syscall=%.1f ns (getppid)\n", sys);
    printf("PHYSICS yield=%.1f ns (sched_yield)\n", yld);
    printf("PHYSICS_SUMMARY line_ns=%.1f futex_us=%.2f syscall_ns=%.1f yield_ns=%.1f cpus=%d,%d\n", line,
           fut < 0 ? -1 : fut / 1000.0, sys, yld, cpu_a, cpu_b);
    return 0;
}
