/*
 * cpu.c - how many CPUs this process may use (the default min_threads and
 * the pool's concurrency target): the affinity mask, further limited by a
 * cgroup v2 cpu.max quota on the process's cgroup or any ancestor.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"

/* ceil(quota / period) of the tightest cpu.max on the path, 0 if none. */
static uint32_t cgroup_quota_cpus(void) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return 0;
    char line[4096], path[4096] = "";
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) == 0) { /* the v2 hierarchy */
            snprintf(path, sizeof path, "%s", line + 3);
            path[strcspn(path, "\n")] = '\0';
            break;
        }
    }
    fclose(f);
    if (path[0] != '/') return 0;
    uint32_t best = 0;
    for (;;) {
        char file[4200];
        snprintf(file, sizeof file, "/sys/fs/cgroup%s/cpu.max", strcmp(path, "/") ? path : "");
        FILE *q = fopen(file, "re");
        if (q) {
            char quota[32];
            unsigned long long period = 0;
            if (fscanf(q, "%31s %llu", quota, &period) == 2 && strcmp(quota, "max") != 0 && period) {
                unsigned long long qv = strtoull(quota, NULL, 10);
                uint32_t n = (uint32_t)((qv + period - 1) / period);
                if (n == 0) n = 1;
                if (best == 0 || n < best) best = n;
            }
            fclose(q);
        }
        char *slash = strrchr(path, '/');
        if (!slash || slash == path) {
            if (strcmp(path, "/") == 0) break;
            strcpy(path, "/");
            continue;
        }
        *slash = '\0';
    }
    return best;
}

IOCOMP_API uint32_t iocomp_usable_cpus(void) {
    uint32_t n = 0;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) n = (uint32_t)CPU_COUNT(&set);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (uint32_t)c : 1;
    }
    uint32_t q = cgroup_quota_cpus();
    if (q && q < n) n = q;
    return n ? n : 1;
}

uint64_t ioc_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
