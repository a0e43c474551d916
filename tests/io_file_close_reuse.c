/*
 * io_file_close_reuse: requests on a regular file that are still queued
 * when the host cancels them, unbinds or closes the descriptor never reach
 * the file that takes the number next (audit issue 13, defect 4; iocomp.h,
 * iocomp_close_fd: "a request it cancels never touches the descriptor
 * again, so the number may be reused at once").
 *
 * Queued: both workers are held in gated callbacks (or one is, and the
 * other runs the callback that submits), so the requests cannot start. On
 * file A (4096 bytes of 'a'): a write (16 bytes at 0), a writev (2 x 8 at
 * 1024), a read (64 at 2048) and an fsync. Then, each way in turn:
 * iocomp_close_fd(A) (returns 0); iocomp_unbind(A) then close(2);
 * iocomp_cancel_fd(A) (returns 4 on epoll) then iocomp_close_fd;
 * iocomp_cancel() of each (returns 0 on epoll) then iocomp_close_fd. File B
 * is opened at once and must get A's number; then the gate opens. Each
 * request completes exactly once; B stays empty; A is unchanged; the read
 * buffer is untouched. On epoll (regular files run on a worker, PKT_EXEC)
 * nothing could start, so each completes -ECANCELED. On io_uring the
 * monitor's rescue may issue a request while its worker is held: then it
 * may instead complete with its own result, on A (checked in A's bytes).
 * Done from a host thread and from a callback.
 *
 * Started (epoll, fault-injection builds): a write on A queues behind held
 * workers; the gate opens with the IOCOMP_FAULT_PAUSE seam armed, which
 * holds the worker 50 ms between claiming the write and its call; the
 * host's iocomp_close_fd(A) meanwhile must not return before that call
 * ran: the write completes with 16 bytes, on A; B, opened at the number
 * right after close_fd returned, stays empty.
 *
 * Racing (no gate; host thread and callback in turn): a write and a read on
 * A, iocomp_close_fd(A) right after, B opened at the number. Each completes
 * once, -ECANCELED or with its result on A (a system call already running
 * when close_fd came finishes on A before close_fd returns); never on B.
 */
#include "test.h"

#include <sys/stat.h>
#include <sys/uio.h>
#if defined(IOCOMP_FAULT_INJECTION)
#include <iocomp/testing.h>
#endif

static iocomp_engine *eng;
static atomic_uint_fast64_t calls, accepted;
static struct test_gate gate;
static atomic_uint_fast64_t gate_left; /* gated callbacks that returned */
static bool strict; /* epoll: queued requests cannot have started */
static char dir[256];
static unsigned n_ran, n_cancelled; /* outcomes, for the log */

#define KEY_GATE 0x6A7Eu
#define KEY_IN_CB 0x1BCBu
#define FILE_LEN 4096
#define W_OFF 0
#define W_LEN 16
#define WV_OFF 1024
#define RD_OFF 2048
#define RD_LEN 64

enum { R_WRITE, R_WRITEV, R_READ, R_FSYNC, NREQ };
static const char *req_name[NREQ] = {"write", "writev", "read", "fsync"};
enum how { BY_CLOSE_FD, BY_UNBIND, BY_CANCEL_FD, BY_CANCEL_OV, NHOW };
static const char *how_name[NHOW] = {"iocomp_close_fd", "iocomp_unbind + close", "iocomp_cancel_fd",
                                     "iocomp_cancel"};

struct round {
    iocomp_overlapped *ov[NREQ];
    uint64_t n0[NREQ];
    unsigned mask; /* the requests submitted: 1 << R_* */
    int nreq;      /* how many */
    char wbuf[W_LEN], wv1[8], wv2[8], rbuf[RD_LEN];
    struct iovec iov[2];
    char path_a[300], path_b[300];
    int a, b, rc;
    uintptr_t key;
};
static struct round rd;
static void (*in_cb_fn)(void);
static atomic_int in_cb_stage;

static void cb(void *ctx, int32_t status, uint32_t bytes, iocomp_overlapped *ov, uintptr_t key) {
    (void)ctx;
    if (!ov && key == KEY_GATE) {
        test_gate_wait(&gate, 100);
        atomic_fetch_add(&gate_left, 1);
        return;
    }
    if (!ov && key == KEY_IN_CB) {
        in_cb_fn();
        atomic_store(&in_cb_stage, 2);
        return;
    }
    test_io_fire(ov, status, bytes, key);
    atomic_fetch_add(&calls, 1);
}

static int open_file(const char *path, bool fill) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
    if (fill) {
        char buf[FILE_LEN];
        memset(buf, 'a', sizeof buf);
        CHECK_EQ(pwrite(fd, buf, sizeof buf, 0), FILE_LEN);
    }
    return fd;
}

/* Holds n workers inside gated callbacks. */
static void hold_workers(uint64_t n) {
    /* The last stage's gated callbacks have all returned before the reset. */
    CHECK(TEST_WAIT_UNTIL(atomic_load(&gate_left) == atomic_load(&gate.entered), 5000));
    atomic_store(&gate.open, 0);
    atomic_store(&gate.entered, 0);
    atomic_store(&gate_left, 0);
    for (uint64_t i = 0; i < n; i++)
        CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_GATE));
    TEST_WAIT_COUNT(&gate.entered, n, 5000);
}

/* Opens A, binds it and submits the round's requests (any thread). */
#define ALL ((1u << NREQ) - 1)
static void start_round(unsigned mask, uintptr_t key) {
    rd.mask = mask;
    rd.nreq = __builtin_popcount(mask);
    rd.key = key;
    rd.a = open_file(rd.path_a, true);
    CHECK_OK(iocomp_bind(eng, IOCOMP_DEFAULT_PORT, rd.a, key));
    memset(rd.wbuf, 'W', sizeof rd.wbuf);
    memset(rd.wv1, 'V', sizeof rd.wv1);
    memset(rd.wv2, 'v', sizeof rd.wv2);
    memset(rd.rbuf, 0xEE, sizeof rd.rbuf);
    rd.iov[0] = (struct iovec){rd.wv1, sizeof rd.wv1};
    rd.iov[1] = (struct iovec){rd.wv2, sizeof rd.wv2};
    static const int order[NREQ] = {R_WRITE, R_READ, R_WRITEV, R_FSYNC};
    for (int k = 0; k < NREQ; k++) {
        int i = order[k];
        if (!(mask & 1u << i))
            continue;
        iocomp_overlapped *ov = rd.ov[i];
        rd.n0[i] = atomic_load(&test_io_of(ov)->completions);
        test_io_arm(ov);
        int rc;
        switch (i) {
        case R_WRITE: rc = iocomp_write(eng, rd.a, rd.wbuf, W_LEN, W_OFF, ov); break;
        case R_WRITEV: rc = iocomp_writev(eng, rd.a, rd.iov, 2, WV_OFF, ov); break;
        case R_READ: rc = iocomp_read(eng, rd.a, rd.rbuf, RD_LEN, RD_OFF, ov); break;
        default: rc = iocomp_fsync(eng, rd.a, 0, ov); break;
        }
        CHECK_MSG(test_io_settle(ov, rc) == 0, "%s on fd %d: %d (%s)", req_name[i], rd.a, rc,
                  test_errname(rc));
        atomic_fetch_add(&accepted, 1);
    }
}

static bool submitted(int i) { return rd.mask & 1u << i; }

/* Ends the requests on A as `how` says, then opens B, which must get A's
 * number (the lowest free one: A just released it). */
static void end_round(enum how how) {
    int rc;
    switch (how) {
    case BY_CLOSE_FD:
        CHECK_EQ(iocomp_close_fd(eng, rd.a), 0);
        break;
    case BY_UNBIND:
        CHECK_OK(iocomp_unbind(eng, rd.a));
        CHECK_OK(close(rd.a));
        break;
    case BY_CANCEL_FD:
        rc = iocomp_cancel_fd(eng, rd.a);
        if (strict)
            CHECK_MSG(rc == rd.nreq, "iocomp_cancel_fd with %d file requests queued: %d (%s)",
                      rd.nreq, rc, test_errname(rc));
        else
            CHECK_MSG(rc >= 0 && rc <= rd.nreq, "iocomp_cancel_fd: %d (%s)", rc, test_errname(rc));
        CHECK_EQ(iocomp_close_fd(eng, rd.a), 0);
        break;
    default:
        for (int i = 0; i < NREQ; i++) {
            if (!submitted(i))
                continue;
            rc = iocomp_cancel(eng, rd.ov[i]);
            if (strict)
                CHECK_MSG(rc == 0, "iocomp_cancel of a queued file %s: %d (%s)", req_name[i], rc,
                          test_errname(rc));
            else
                CHECK_MSG(rc == 0 || rc == -ENOENT, "iocomp_cancel: %d (%s)", rc, test_errname(rc));
        }
        CHECK_EQ(iocomp_close_fd(eng, rd.a), 0);
        break;
    }
    rd.b = open_file(rd.path_b, false);
}

/* Each request completed once; B is empty; A holds its own bytes, changed
 * only where a request completed with its own result (never when strict). */
static void check_round(const char *what, bool may_run) {
    int32_t st[NREQ] = {-ECANCELED, -ECANCELED, -ECANCELED, -ECANCELED};
    uint32_t by[NREQ] = {0};
    for (int i = 0; i < NREQ; i++) {
        if (!submitted(i))
            continue;
        struct test_io *t = test_io_wait(rd.ov[i], rd.n0[i] + 1, 5000);
        st[i] = (int32_t)atomic_load(&t->status);
        by[i] = (uint32_t)atomic_load(&t->bytes);
        CHECK_EQU(atomic_load(&t->key), rd.key);
    }
    CHECK_MSG(rd.b == rd.a, "%s: file B got descriptor %d, not A's number %d", what, rd.b, rd.a);
    struct stat sb;
    CHECK_OK(fstat(rd.b, &sb));
    CHECK_MSG(sb.st_size == 0,
              "%s: file B (fd %d, opened after A was closed) has %lld bytes: a request queued "
              "on A reached B (write: status %d bytes %u)",
              what, rd.b, (long long)sb.st_size, st[R_WRITE], by[R_WRITE]);
    static const uint32_t want[NREQ] = {W_LEN, 16, RD_LEN, 0};
    for (int i = 0; i < NREQ; i++) {
        if (!submitted(i))
            continue;
        bool ran = st[i] == 0 && by[i] == want[i];
        if (ran)
            n_ran++;
        else
            n_cancelled++;
        CHECK_MSG((st[i] == -ECANCELED && by[i] == 0) || (may_run && !strict && ran),
                  "%s: the queued %s completed with status %d (%s), bytes %u; want -ECANCELED",
                  what, req_name[i], st[i], test_errname(st[i]), by[i]);
    }
    char buf[FILE_LEN + 1];
    int fa = open(rd.path_a, O_RDONLY | O_CLOEXEC);
    CHECK(fa >= 0);
    CHECK_EQ(pread(fa, buf, sizeof buf, 0), FILE_LEN);
    CHECK_OK(close(fa));
    for (int off = 0; off < FILE_LEN; off++) {
        char c = 'a';
        if (off >= W_OFF && off < W_OFF + W_LEN && st[R_WRITE] == 0)
            c = 'W';
        if (submitted(R_WRITEV) && off >= WV_OFF && off < WV_OFF + 16 && st[R_WRITEV] == 0)
            c = off < WV_OFF + 8 ? 'V' : 'v';
        CHECK_MSG(buf[off] == c, "%s: file A byte %d is 0x%02x, want '%c'", what, off,
                  (unsigned char)buf[off], c);
    }
    for (int k = 0; k < RD_LEN; k++)
        CHECK_MSG((unsigned char)rd.rbuf[k] == (st[R_READ] == 0 ? 'a' : 0xEE),
                  "%s: read buffer byte %d is 0x%02x (read status %d)", what, k,
                  (unsigned char)rd.rbuf[k], st[R_READ]);
    CHECK_OK(close(rd.b));
    CHECK_OK(unlink(rd.path_a));
    CHECK_OK(unlink(rd.path_b));
}

/* ---- queued, from a host thread -------------------------------------------------- */
static void queued_from_host(enum how how) {
    char what[96];
    snprintf(what, sizeof what, "host, %s", how_name[how]);
    hold_workers(2);
    start_round(ALL, 0xF11E0u + how);
    end_round(how);
    test_gate_open(&gate);
    check_round(what, true);
}

/* ---- queued, from a callback (the other worker held) ----------------------------- */
static enum how cb_how;
static void queued_in_cb(void) {
    start_round(ALL, 0xCB0u + cb_how);
    end_round(cb_how);
}

static void run_in_cb(void (*fn)(void)) {
    in_cb_fn = fn;
    atomic_store(&in_cb_stage, 1);
    CHECK_OK(iocomp_post(eng, IOCOMP_DEFAULT_PORT, 0, 0, NULL, KEY_IN_CB));
    CHECK(TEST_WAIT_UNTIL(atomic_load(&in_cb_stage) == 2, 5000));
}

static void queued_from_callback(enum how how) {
    char what[96];
    snprintf(what, sizeof what, "callback, %s", how_name[how]);
    hold_workers(1);
    cb_how = how;
    run_in_cb(queued_in_cb);
    test_gate_open(&gate);
    check_round(what, true);
}

/* ---- a system call already started ---------------------------------------------------- */
static void started(void) {
#if defined(IOCOMP_FAULT_INJECTION)
    if (!strict) /* io_uring runs no system call on a worker: no such window */
        return;
    strict = false;
    /* The seam is one counter for every pause site (the submit path has one
     * too): arm it only once the write is queued behind held workers, so
     * the next pause is the claim's. */
    hold_workers(2);
    start_round(1u << R_WRITE, 0x57A);
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 1);
    test_gate_open(&gate);
    CHECK(TEST_WAIT_UNTIL(iocomp_fault_calls(IOCOMP_FAULT_PAUSE) >= 1, 5000));
    uint64_t t0 = test_now_ns();
    end_round(BY_CLOSE_FD);
    uint64_t dt = test_now_ns() - t0;
    iocomp_fault_arm(IOCOMP_FAULT_PAUSE, 0);
    struct test_io *t = test_io_wait(rd.ov[R_WRITE], rd.n0[R_WRITE] + 1, 5000);
    CHECK_MSG(atomic_load(&t->status) == 0 && atomic_load(&t->bytes) == W_LEN,
              "started: a write whose system call was under way completed with status %d (%s), "
              "bytes %u (iocomp_close_fd took %llu us)",
              (int)atomic_load(&t->status), test_errname(atomic_load(&t->status)),
              (unsigned)atomic_load(&t->bytes), (unsigned long long)(dt / 1000));
    check_round("started, iocomp_close_fd", true);
    printf("io_file_close_reuse: started: iocomp_close_fd returned after %llu us\n",
           (unsigned long long)(dt / 1000));
    strict = true;
#endif
}

/* ---- racing the workers ------------------------------------------------------------ */
static void race_in_cb(void) {
    start_round(1u << R_WRITE | 1u << R_READ, 0xACE);
    end_round(BY_CLOSE_FD);
}

static void racing(int round) {
    char what[96];
    snprintf(what, sizeof what, "racing round %d (%s)", round, round & 1 ? "callback" : "host");
    bool was = strict;
    strict = false; /* the workers run: a request may have started */
    if (round & 1) {
        run_in_cb(race_in_cb);
    } else {
        start_round(1u << R_WRITE | 1u << R_READ, 0xACE);
        if (round & 2)
            test_sleep_us((unsigned)(round % 7) * 10);
        end_round(BY_CLOSE_FD);
    }
    check_round(what, true);
    strict = was;
}

int main(void) {
    test_begin("io_file_close_reuse", 0);
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/iocomp_fcr_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(rd.path_a, sizeof rd.path_a, "%s/A", dir);
    snprintf(rd.path_b, sizeof rd.path_b, "%s/B", dir);

    eng = test_io_engine_n(2, cb, NULL);
    printf("io_file_close_reuse: backend %s\n", iocomp_backend_name(eng));
    strict = !test_io_is_uring(eng);
    for (int i = 0; i < NREQ; i++)
        rd.ov[i] = test_io_ov(eng, (uint64_t)i);

    for (int how = 0; how < NHOW; how++)
        queued_from_host((enum how)how);
    for (int how = 0; how < NHOW; how++)
        queued_from_callback((enum how)how);
    printf("io_file_close_reuse: queued: %u ran on A, %u cancelled\n", n_ran, n_cancelled);
    started();
    n_ran = n_cancelled = 0;
    int rounds = (int)test_scaled_min(300, 30);
    for (int r = 0; r < rounds; r++)
        racing(r);
    printf("io_file_close_reuse: racing: %u ran on A, %u cancelled\n", n_ran, n_cancelled);

    test_sleep_us(10000);
    CHECK_EQ(atomic_load(&calls), atomic_load(&accepted));
    CHECK_EQ(atomic_load(&test_io_bad), 0);
    CHECK_OK(iocomp_engine_destroy(eng));
    for (int i = 0; i < NREQ; i++)
        iocomp_overlapped_free(rd.ov[i]);
    CHECK_OK(rmdir(dir));
    test_end();
}
