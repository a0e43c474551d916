/*
 * iocomp-echo - a TCP echo server on iocomp, for the peer kit's W3 workload.
 *
 *   iocomp-echo [--port N] [--threads T] [--backend uring|epoll]
 *               [--addr A] [--accepts K] [--skip-on-success] [--stats] [--spin-ns NS]
 *               [--verbose]
 *   iocomp-echo PORT                 (the kit's form: W3_EXTRA_SERVER='name:iocomp-echo {PORT} ...')
 *
 * It listens on 127.0.0.1:N (--addr to change) and echoes whatever each
 * connection sends, until SIGINT or SIGTERM; then it destroys the engine (every
 * request in flight completes with -ECANCELED, every connection is closed) and
 * exits 0. It prints nothing on stdout (the kit's client produces the figures);
 * --stats prints the engine's counters on stderr at exit. SIGUSR1 prints
 * them at any time (one "iocomp-echo: stats ..." line on stderr, the server
 * goes on), with or without --stats.
 * --verbose adds to the start-up line (stderr) the backend's optional
 * features in use (iocomp_backend_features: "futex_wait submit_all ...",
 * "(minimum level)" when none).
 * --spin-ns sets iocomp_config.spin_ns (how long an idle worker searches
 * before it parks; 4294967295: never spin; default: the engine default).
 *
 * Engine: min = max = T workers (default 2), the backend from --backend (or
 * IOCOMP_BACKEND, else io_uring when it probes fine). Everything after start-up
 * is submitted from completion callbacks:
 *   - the listening socket is bound to the port with key KEY_LISTEN and has K
 *     (default 4) iocomp_accept() requests outstanding, each on its own
 *     overlapped (armed from the callback of a packet that main posts with
 *     the overlapped, so that a worker submits them); an accept's callback sets TCP_NODELAY on the new socket,
 *     binds it (key KEY_CONN), starts its first recv and re-arms the accept;
 *   - each connection owns one preallocated overlapped (iocomp_overlapped_alloc)
 *     whose host extension is the connection: its descriptor, state and a
 *     BUF_SIZE buffer. It alternates recv -> send -> recv: a recv's bytes are
 *     sent back; a short send sends the rest from where it stopped; when all
 *     is sent the next recv starts on the same overlapped. One request is in
 *     flight per connection at any time, so the overlapped is never shared.
 *   - a recv of 0 bytes (peer closed) or any error ends the connection:
 *     iocomp_close_fd() and iocomp_overlapped_free() from the callback.
 * With --skip-on-success the connections get iocomp_set_skip_on_success():
 * an operation that finishes at once returns IOCOMP_INLINE and the callback
 * goes on with the next step itself (a loop, not recursion). That trades the
 * ring round trip of the send for a system call of its own, and costs a failed
 * non-blocking recv attempt per message in a ping-pong load (the next message
 * is never there yet): see bench/README.md for what it measured.
 *
 * The kit starts it as 'taskset -c 0 bash -c "exec iocomp-echo ..."', so the
 * process itself is the server (its CPU time is the server's) and every
 * thread, the engine's workers and monitor included, runs on CPU 0.
 */
#include <iocomp.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 4096u /* per connection; the kit's messages are 64 bytes */
#define KEY_LISTEN 1u
#define KEY_CONN 2u
#define KEY_START 3u /* a posted packet: arm the accept on its overlapped */

enum { ST_ACCEPT = 1, ST_RECV, ST_SEND };

/* The host extension of every overlapped: an accept slot or a connection. */
struct conn {
    uint32_t state;          /* ST_* */
    int fd;                  /* the connection (accept slots: the listener) */
    uint32_t len, off;       /* bytes in buf to send back, bytes sent so far */
    unsigned char buf[BUF_SIZE];
};

static iocomp_engine *g_e;
static iocomp_port_t g_port;
static int g_lfd = -1, g_skip;
static atomic_long g_conns_open, g_conns_total, g_accept_errors, g_submit_errors;

static void conn_end(iocomp_overlapped *ov, struct conn *c) {
    iocomp_close_fd(g_e, c->fd); /* unbinds (cancels nothing: this was its only request) and closes */
    iocomp_overlapped_free(ov);
    atomic_fetch_sub_explicit(&g_conns_open, 1, memory_order_relaxed);
}

/* Runs the connection's state machine from a finished step (status, bytes)
 * until a request is in flight or the connection ends. */
static void conn_step(iocomp_overlapped *ov, struct conn *c, int32_t status, uint32_t bytes) {
    for (;;) {
        if (status < 0 || (c->state == ST_RECV && bytes == 0)) { /* error, or the peer closed */
            conn_end(ov, c);
            return;
        }
        int rc;
        if (c->state == ST_RECV) {
            c->len = bytes;
            c->off = 0;
            c->state = ST_SEND;
            rc = iocomp_send(g_e, c->fd, c->buf, c->len, 0, ov);
        } else {
            c->off += bytes;
            if (c->off < c->len) { /* short send: the rest */
                rc = iocomp_send(g_e, c->fd, c->buf + c->off, c->len - c->off, 0, ov);
            } else {
                c->state = ST_RECV;
                rc = iocomp_recv(g_e, c->fd, c->buf, BUF_SIZE, 0, ov);
            }
        }
        if (rc == 0) return; /* in flight: its completion continues */
        if (rc < 0) {        /* refused (-ESHUTDOWN while the engine closes) */
            if (rc != -ESHUTDOWN && rc != -EBADF)
                atomic_fetch_add_explicit(&g_submit_errors, 1, memory_order_relaxed);
            conn_end(ov, c);
            return;
        }
        status = iocomp_overlapped_result(ov, &bytes); /* IOCOMP_INLINE: go on here */
    }
}

static void conn_start(int fd) {
    static const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    iocomp_overlapped *ov;
    if (iocomp_bind(g_e, g_port, fd, KEY_CONN) < 0 || iocomp_overlapped_alloc(g_e, &ov) < 0) {
        atomic_fetch_add_explicit(&g_submit_errors, 1, memory_order_relaxed);
        iocomp_close_fd(g_e, fd);
        return;
    }
    if (g_skip) iocomp_set_skip_on_success(g_e, fd);
    struct conn *c = iocomp_overlapped_ext(ov);
    c->fd = fd;
    c->state = ST_RECV;
    atomic_fetch_add_explicit(&g_conns_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&g_conns_total, 1, memory_order_relaxed);
    int rc = iocomp_recv(g_e, fd, c->buf, BUF_SIZE, 0, ov);
    if (rc == 0) return;
    if (rc < 0) {
        conn_end(ov, c);
        return;
    }
    uint32_t bytes;
    int32_t st = iocomp_overlapped_result(ov, &bytes);
    conn_step(ov, c, st, bytes);
}

static int accept_arm(iocomp_overlapped *ov) {
    return iocomp_accept(g_e, g_lfd, NULL, NULL, SOCK_CLOEXEC, ov);
}

static void on_complete(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    struct conn *c = iocomp_overlapped_ext(ov);
    if (key == KEY_START) {
        int rc = accept_arm(ov);
        if (rc != 0) {
            fprintf(stderr, "iocomp-echo: iocomp_accept: %s\n", iocomp_strerror(rc));
            iocomp_overlapped_free(ov);
        }
        return;
    }
    if (key == KEY_LISTEN) {
        if (status >= 0) {
            conn_start((int)bytes);
        } else if (status == -ECANCELED) { /* the engine closes: the slot ends */
            iocomp_overlapped_free(ov);
            return;
        } else {
            atomic_fetch_add_explicit(&g_accept_errors, 1, memory_order_relaxed); /* EMFILE & co: re-arm */
        }
        if (accept_arm(ov) != 0) iocomp_overlapped_free(ov); /* -ESHUTDOWN while closing */
        return;
    }
    conn_step(ov, c, status, bytes);
}

static void usage(void) {
    fprintf(stderr,
            "usage: iocomp-echo [--port N] [--threads T] [--backend uring|epoll] [--addr 127.0.0.1]\n"
            "                   [--accepts K] [--skip-on-success] [--stats] [--spin-ns NS] [--verbose]\n"
            "       iocomp-echo PORT\n");
    exit(2);
}

static unsigned long num(const char *s, const char *what, unsigned long lo, unsigned long hi) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "iocomp-echo: bad %s '%s'\n", what, s);
        exit(2);
    }
    return v;
}

/* Every counter of iocomp_stats and the server's own, one line on stderr. */
static void print_stats(void) {
    iocomp_stats s;
    int rc = iocomp_get_stats(g_e, &s);
    if (rc < 0) {
        fprintf(stderr, "iocomp-echo: stats: %s\n", iocomp_strerror(rc));
        return;
    }
    fprintf(stderr,
            "iocomp-echo: stats connections=%ld open=%ld accept_errors=%ld submit_errors=%ld "
            "completions=%llu posts_local=%llu posts_remote=%llu steals=%llu stolen=%llu "
            "inject_batches=%llu overflows=%llu parks=%llu wakeups=%llu threads_live=%u threads_busy=%u "
            "threads_parked=%u io_submitted=%llu io_inline=%llu io_cancels=%llu io_sq_full=%llu "
            "io_cq_overflow=%llu io_cq_dropped=%llu io_rescued=%llu io_eintr=%llu longest_callback_us=%llu\n",
            atomic_load(&g_conns_total), atomic_load(&g_conns_open), atomic_load(&g_accept_errors),
            atomic_load(&g_submit_errors), (unsigned long long)s.completions,
            (unsigned long long)s.posts_local, (unsigned long long)s.posts_remote,
            (unsigned long long)s.steals, (unsigned long long)s.stolen,
            (unsigned long long)s.inject_batches, (unsigned long long)s.overflows,
            (unsigned long long)s.parks, (unsigned long long)s.wakeups, s.threads_live, s.threads_busy,
            s.threads_parked, (unsigned long long)s.io_submitted, (unsigned long long)s.io_inline,
            (unsigned long long)s.io_cancels, (unsigned long long)s.io_sq_full,
            (unsigned long long)s.io_cq_overflow, (unsigned long long)s.io_cq_dropped,
            (unsigned long long)s.io_rescued, (unsigned long long)s.io_eintr,
            (unsigned long long)s.longest_callback_us);
}

int main(int argc, char **argv) {
    unsigned long port = 0, threads = 2, accepts = 4;
    const char *backend = NULL, *addr = "127.0.0.1";
    int stats = 0, verbose = 0;
    unsigned long spin_ns = 0;
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},    {"threads", required_argument, NULL, 't'},
        {"backend", required_argument, NULL, 'b'}, {"addr", required_argument, NULL, 'a'},
        {"accepts", required_argument, NULL, 'k'}, {"skip-on-success", no_argument, NULL, 's'},
        {"stats", no_argument, NULL, 'S'},         {"help", no_argument, NULL, 'h'},
        {"spin-ns", required_argument, NULL, 'n'}, {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "p:t:b:a:k:n:sSvh", opts, NULL)) != -1) {
        switch (c) {
        case 'p': port = num(optarg, "--port", 1, 65535); break;
        case 't': threads = num(optarg, "--threads", 1, IOCOMP_THREADS_LIMIT); break;
        case 'b': backend = optarg; break;
        case 'a': addr = optarg; break;
        case 'k': accepts = num(optarg, "--accepts", 1, 1024); break;
        case 's': g_skip = 1; break;
        case 'S': stats = 1; break;
        case 'v': verbose = 1; break;
        case 'n': spin_ns = num(optarg, "--spin-ns", 1, UINT32_MAX); break;
        default: usage();
        }
    }
    if (optind < argc && !port) port = num(argv[optind++], "PORT", 1, 65535);
    if (optind < argc || !port) usage();
    if (backend && strcmp(backend, "uring") && strcmp(backend, "epoll")) usage();

    /* SIGINT/SIGTERM are taken by sigwait() below; block them before any
     * thread starts so that no worker gets them (workers block all signals
     * anyway). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGUSR1); /* a stats line, then on */
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN); /* sends add MSG_NOSIGNAL; this is for anything else */

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "iocomp-echo: bad --addr '%s'\n", addr);
        return 2;
    }
    int one = 1;
    g_lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_lfd < 0 || setsockopt(g_lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(g_lfd, (struct sockaddr *)&sa, sizeof sa) || listen(g_lfd, 1024)) {
        perror("iocomp-echo: socket/bind/listen");
        return 1;
    }

    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = cfg.max_threads = (uint32_t)threads;
    cfg.backend = backend;
    cfg.spin_ns = (uint32_t)spin_ns; /* 0: the default; UINT32_MAX: never spin */
    cfg.host_overlapped_size = sizeof(struct conn);
    cfg.on_complete = on_complete;
    int rc = iocomp_engine_create(&cfg, &g_e);
    if (rc < 0) {
        fprintf(stderr, "iocomp-echo: iocomp_engine_create (backend %s): %s\n", backend ? backend : "default",
                iocomp_strerror(rc));
        return 1;
    }
    if ((rc = iocomp_port_create(g_e, &g_port)) < 0 || (rc = iocomp_bind(g_e, g_port, g_lfd, KEY_LISTEN)) < 0) {
        fprintf(stderr, "iocomp-echo: port/bind: %s\n", iocomp_strerror(rc));
        return 1;
    }
    for (unsigned long i = 0; i < accepts; i++) {
        iocomp_overlapped *ov;
        if ((rc = iocomp_overlapped_alloc(g_e, &ov)) < 0) {
            fprintf(stderr, "iocomp-echo: iocomp_overlapped_alloc: %s\n", iocomp_strerror(rc));
            return 1;
        }
        ((struct conn *)iocomp_overlapped_ext(ov))->state = ST_ACCEPT;
        /* Armed by a worker (the packet's callback), like every later
         * request, so every request of the server comes from a callback.
         * (It also kept the server clear of the io_uring host-submit
         * -EAGAIN right after iocomp_engine_create(), fixed in acd4d45.) */
        if ((rc = iocomp_post(g_e, g_port, 0, 0, ov, KEY_START)) < 0) {
            fprintf(stderr, "iocomp-echo: iocomp_post: %s\n", iocomp_strerror(rc));
            return 1;
        }
    }
    const char *feat = iocomp_backend_features(g_e);
    fprintf(stderr, "iocomp-echo: %s:%lu, %lu worker(s), backend %s%s%s%s%s\n", addr, port, threads,
            iocomp_backend_name(g_e), verbose ? " (features: " : "",
            verbose ? (*feat ? feat : strcmp(iocomp_backend_name(g_e), "uring") == 0 ? "minimum level" : "none") : "",
            verbose ? ")" : "", g_skip ? ", skip-on-success" : "");

    int sig = 0;
    for (;;) {
        if (sigwait(&stop, &sig) != 0) continue;
        if (sig != SIGUSR1) break;
        print_stats(); /* main is not a worker: iocomp_get_stats from here is fine */
    }

    iocomp_stats s;
    int have = stats && iocomp_get_stats(g_e, &s) == 0;
    /* Closes the port: the accepts and the connections' requests complete
     * with -ECANCELED and their callbacks close and free them. */
    while ((rc = iocomp_engine_destroy(g_e)) == -ETIMEDOUT) {}
    close(g_lfd);
    if (have)
        fprintf(stderr,
                "iocomp-echo: signal %d; connections %ld (open at exit %ld), completions %llu, io_submitted %llu, "
                "io_inline %llu, steals %llu, parks %llu, accept errors %ld, submit errors %ld\n",
                sig, atomic_load(&g_conns_total), atomic_load(&g_conns_open), (unsigned long long)s.completions,
                (unsigned long long)s.io_submitted, (unsigned long long)s.io_inline, (unsigned long long)s.steals,
                (unsigned long long)s.parks, atomic_load(&g_accept_errors), atomic_load(&g_submit_errors));
    if (rc < 0) {
        fprintf(stderr, "iocomp-echo: iocomp_engine_destroy: %s\n", iocomp_strerror(rc));
        return 1;
    }
    if (atomic_load(&g_conns_open) != 0) {
        fprintf(stderr, "iocomp-echo: %ld connection(s) not closed at exit\n", atomic_load(&g_conns_open));
        return 1;
    }
    return 0;
}
