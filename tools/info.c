/*
 * iocomp-info - what iocomp runs on this machine: one line each for the
 * library version, the backend a default engine picks, the optional backend
 * features it uses (iocomp_backend_features), and the CPUs it may run on.
 *
 *   iocomp-info [--backend uring|epoll]
 *
 * It creates an engine of one worker with the default (or the given)
 * backend, reads it and destroys it. Exit status: 0, or 1 with the reason on
 * stderr when no engine can be created (a forced backend the kernel refuses).
 * tools/bench.sh prints its output at the top of every run.
 */
#include <iocomp.h>
#include <stdio.h>
#include <string.h>

static void nop_cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx; (void)status; (void)bytes; (void)ov; (void)key;
}

int main(int argc, char **argv) {
    const char *backend = NULL;
    if (argc == 3 && strcmp(argv[1], "--backend") == 0) backend = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: iocomp-info [--backend uring|epoll]\n");
        return 2;
    }
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = 1;
    cfg.on_complete = nop_cb;
    cfg.backend = backend;
    iocomp_engine *e = NULL;
    int rc = iocomp_engine_create(&cfg, &e);
    if (rc < 0) {
        fprintf(stderr, "iocomp-info: iocomp_engine_create (backend %s): %s\n", backend ? backend : "default",
                iocomp_strerror(rc));
        return 1;
    }
    const char *name = iocomp_backend_name(e), *feat = iocomp_backend_features(e);
    printf("iocomp %d.%d.%d\n", IOCOMP_VERSION_MAJOR, IOCOMP_VERSION_MINOR, IOCOMP_VERSION_PATCH);
    printf("backend %s\n", name);
    printf("features %s\n", *feat ? feat : strcmp(name, "uring") == 0 ? "(minimum level)" : "(none)");
    printf("usable_cpus %u\n", iocomp_usable_cpus());
    rc = iocomp_engine_destroy(e);
    if (rc < 0) {
        fprintf(stderr, "iocomp-info: iocomp_engine_destroy: %s\n", iocomp_strerror(rc));
        return 1;
    }
    return 0;
}
