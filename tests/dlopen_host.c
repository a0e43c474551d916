/*
 * dlopen_host: a host that does not link libiocomp loads it with dlopen (as a
 * P/Invoke or plug-in host does), creates an engine, posts one packet, waits
 * for its callback and destroys the engine; exit 0 only if the callback ran
 * once with the posted values.
 *
 *   dlopen_host <path to libiocomp.so>
 *
 * All of it on a second thread, which then exits after the dlclose (its
 * thread-specific destructors run then, including the private jemalloc's):
 * without -z nodelete on libiocomp.so that exit jumped into unmapped code
 * (found by review). The main thread checks it ended well.
 *
 * ctest runs it with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=4096:
 * libiocomp's private jemalloc keeps its thread state in initial-exec TLS
 * (2.6 KiB), more than glibc's default dlopen reserve, so without the tunable
 * the dlopen fails with "cannot allocate memory in static TLS block" in
 * builds with jemalloc (docs/ARCHITECTURE.md, "Overlapped memory").
 */
#define _GNU_SOURCE
#include <iocomp.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static atomic_int calls, good;

static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov,
                        uintptr_t key) {
    atomic_store(&good, ctx == (void *)&calls && status == 3 && bytes == 5 && !ov && key == 9);
    atomic_fetch_add(&calls, 1);
}

#define SYM(lib, name) ((__typeof__(&name))must_sym(lib, #name))
static void *must_sym(void *lib, const char *name) {
    void *p = dlsym(lib, name);
    if (!p) {
        fprintf(stderr, "dlopen_host: %s: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

static int host(const char *path);
static const char *lib_path;
static int host_rc = -1;
static void *host_thread(void *arg) {
    (void)arg;
    host_rc = host(lib_path);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_host <libiocomp.so>\n");
        return 2;
    }
    alarm(30);
    lib_path = argv[1];
    pthread_t t;
    if (pthread_create(&t, NULL, host_thread, NULL) != 0 || pthread_join(t, NULL) != 0) {
        fprintf(stderr, "dlopen_host: thread\n");
        return 1;
    }
    if (host_rc != 0) return 1;
    printf("dlopen_host: ok\n");
    return 0;
}

static int host(const char *path) {
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen_host: dlopen: %s\n", dlerror());
        return 1;
    }
    iocomp_config cfg;
    SYM(lib, iocomp_config_init)(&cfg);
    cfg.min_threads = 1;
    cfg.on_complete = on_complete;
    cfg.on_complete_ctx = &calls;
    iocomp_engine *e = NULL;
    int rc = SYM(lib, iocomp_engine_create)(&cfg, &e);
    if (rc == 0) rc = SYM(lib, iocomp_post)(e, IOCOMP_DEFAULT_PORT, 3, 5, NULL, 9);
    if (rc != 0) {
        fprintf(stderr, "dlopen_host: %s\n", SYM(lib, iocomp_strerror)(rc));
        return 1;
    }
    for (int i = 0; i < 10000 && atomic_load(&calls) == 0; i++) usleep(1000);
    rc = SYM(lib, iocomp_engine_destroy)(e);
    if (rc != 0 || atomic_load(&calls) != 1 || !atomic_load(&good)) {
        fprintf(stderr, "dlopen_host: destroy %d, callback ran %d time(s), values %s\n", rc,
                atomic_load(&calls), atomic_load(&good) ? "right" : "wrong");
        return 1;
    }
    if (dlclose(lib) != 0) {
        fprintf(stderr, "dlopen_host: dlclose: %s\n", dlerror());
        return 1;
    }
    return 0;
}
