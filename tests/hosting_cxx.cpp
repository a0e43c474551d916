/*
 * hosting_cxx (issue #14 item 7): the hosting face from C++, as a runtime's
 * C++ host would use it.
 *   1. A C++ class deriving ICLRIoCompletionManager (virtual methods, no C
 *      table) is installed with SetCLRIoCompletionManager; iocomp (C) calls
 *      its OnComplete through the vtable with the right This, HRESULT, bytes
 *      and overlapped; iocomp AddRefs it once and Releases it when the object
 *      is freed.
 *   2. iocomp's IHostIoCompletionManager is called through C++ virtual calls
 *      (m->GetMinThreads(&d)), QueryInterface takes a C++ REFIID (a
 *      reference), Release frees.
 *   3. The vtable order against MSCorEE.h: the namespace mscoree below is a
 *      transcription of MSCorEE.h's two interfaces, written independently of
 *      <iocomp/hosting.h>. Each of the 11 methods is called through it and its
 *      effect checked through the C API, so a method in the wrong slot runs
 *      the wrong method and fails.
 * Standalone (tests/test.h is C): CHECK aborts, alarm() is the timeout.
 */
#include <iocomp.h>
#include <iocomp/hosting.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#define CHECK(c)                                                                                    \
    do {                                                                                            \
        if (!(c)) {                                                                                 \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);              \
            std::abort();                                                                           \
        }                                                                                           \
    } while (0)

namespace mscoree {
/* MSCorEE.h (the .NET Framework SDK / coreclr's mscoree.h), method order only. */
struct IUnknown {
    virtual HRESULT QueryInterface(const IID &riid, void **ppvObject) = 0;
    virtual ULONG AddRef() = 0;
    virtual ULONG Release() = 0;
};
struct IHostIoCompletionManager : public IUnknown {
    virtual HRESULT CreateIoCompletionPort(HANDLE *phPort) = 0;
    virtual HRESULT CloseIoCompletionPort(HANDLE hPort) = 0;
    virtual HRESULT SetMaxThreads(DWORD dwMaxIOCompletionThreads) = 0;
    virtual HRESULT GetMaxThreads(DWORD *pdwMaxIOCompletionThreads) = 0;
    virtual HRESULT GetAvailableThreads(DWORD *pdwAvailableIOCompletionThreads) = 0;
    virtual HRESULT GetHostOverlappedSize(DWORD *pcbSize) = 0;
    virtual HRESULT SetCLRIoCompletionManager(void *pManager) = 0;
    virtual HRESULT InitializeHostOverlapped(void *pvOverlapped) = 0;
    virtual HRESULT Bind(HANDLE hPort, HANDLE hHandle) = 0;
    virtual HRESULT SetMinThreads(DWORD dwMinIOCompletionThreads) = 0;
    virtual HRESULT GetMinThreads(DWORD *pdwMinIOCompletionThreads) = 0;
};
} // namespace mscoree

/* The runtime's side, as a C++ class. */
class Runtime : public ICLRIoCompletionManager {
  public:
    std::atomic<long> refs{1}; /* the runtime's own */
    std::atomic<int> calls{0};
    std::atomic<DWORD> last_err{0xdead}, last_bytes{0};
    std::atomic<void *> last_ov{nullptr}, last_this{nullptr};
    std::atomic<int> block{0}, entered{0}; /* OnComplete waits while block */

    HRESULT QueryInterface(REFIID riid, void **ppv) override {
        if (!std::memcmp(&riid, &IID_IUnknown, sizeof(IID)) ||
            !std::memcmp(&riid, &IID_ICLRIoCompletionManager, sizeof(IID))) {
            AddRef();
            *ppv = this;
            return S_OK;
        }
        *ppv = nullptr;
        return E_NOINTERFACE;
    }
    ULONG AddRef() override { return (ULONG)++refs; }
    ULONG Release() override { return (ULONG)--refs; }
    HRESULT OnComplete(DWORD err, DWORD bytes, void *ov) override {
        entered++;
        while (block.load()) usleep(100);
        last_this = this;
        last_err = err;
        last_bytes = bytes;
        last_ov = ov;
        calls++;
        return S_OK;
    }
};

static int init_calls;
static int on_init(void *, iocomp_overlapped *, void *ext, size_t n) {
    std::memset(ext, 0x5a, n);
    init_calls++;
    return 0;
}

static void wait_calls(Runtime &rt, int n) {
    for (int i = 0; i < 5000 && rt.calls.load() < n; i++) usleep(1000);
    CHECK(rt.calls.load() == n);
}

int main() {
    alarm(30);
    iocomp_config cfg;
    iocomp_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 4;
    cfg.host_overlapped_size = 24;
    cfg.overlapped_init = on_init;
    iocomp_engine *e = nullptr;
    CHECK(iocomp_engine_create(&cfg, &e) == 0);
    IHostIoCompletionManager *m = nullptr;
    CHECK(iocomp_hosting_create(e, &m) == 0 && m);

    /* 2. C++ calls on iocomp's object. */
    DWORD d = 0;
    CHECK(m->GetMinThreads(&d) == S_OK && d == 1);
    CHECK(m->GetMaxThreads(&d) == S_OK && d == 4);
    void *out = nullptr;
    CHECK(m->QueryInterface(IID_IHostIoCompletionManager, &out) == S_OK && out == m);
    CHECK(m->QueryInterface(IID_ICLRIoCompletionManager, &out) == E_NOINTERFACE && out == nullptr);
    CHECK(m->Release() == 1);

    /* 1. A C++ runtime object, called from C. */
    Runtime rt;
    CHECK(m->SetCLRIoCompletionManager(&rt) == S_OK);
    CHECK(rt.refs.load() == 2); /* iocomp's reference */
    HANDLE port = nullptr;
    CHECK(m->CreateIoCompletionPort(&port) == S_OK && port);
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, -ECANCELED, 0, (iocomp_overlapped *)0x40, 0) == 0);
    wait_calls(rt, 1);
    CHECK(rt.last_this.load() == &rt);
    CHECK(rt.last_err.load() == (DWORD)HOST_E_INTERRUPTED);
    CHECK(rt.last_ov.load() == (void *)0x40);
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 77, nullptr, 0) == 0);
    wait_calls(rt, 2);
    CHECK(rt.last_err.load() == (DWORD)S_OK && rt.last_bytes.load() == 77);

    /* 3. Each method through MSCorEE.h's order, checked by its effect. */
    auto *x = reinterpret_cast<mscoree::IHostIoCompletionManager *>(m);
    uint32_t v = 0;
    CHECK(x->SetMaxThreads(3) == S_OK);
    CHECK(iocomp_get_max_threads(e, &v) == 0 && v == 3);
    CHECK(x->GetMaxThreads(&d) == S_OK && d == 3);
    CHECK(x->SetMinThreads(2) == S_OK);
    CHECK(iocomp_get_min_threads(e, &v) == 0 && v == 2);
    CHECK(x->GetMinThreads(&d) == S_OK && d == 2);
    /* Available = max - busy: with two OnCompletes held inside (min 2: two
     * workers), 3 - 2 = 1, which no other getter returns here (max 3, min 2:
     * a slot mix-up with either shows). */
    rt.block = 1;
    int entered = rt.entered.load();
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 1, nullptr, 0) == 0);
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)port, 0, 1, nullptr, 0) == 0);
    for (int i = 0; i < 5000 && rt.entered.load() < entered + 2; i++) usleep(1000);
    CHECK(rt.entered.load() == entered + 2);
    CHECK(x->GetAvailableThreads(&d) == S_OK && d == 1);
    CHECK(iocomp_get_available_threads(e, &v) == 0 && v == 1);
    rt.block = 0;
    wait_calls(rt, 4);
    CHECK(x->GetHostOverlappedSize(&d) == S_OK && d == 24);
    HANDLE p2 = nullptr;
    CHECK(x->CreateIoCompletionPort(&p2) == S_OK && p2 && p2 != port);
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)p2, 0, 5, nullptr, 0) == 0);
    wait_calls(rt, 5);
    CHECK(x->CloseIoCompletionPort(p2) == S_OK);
    CHECK(iocomp_post(e, (iocomp_port_t)(uintptr_t)p2, 0, 5, nullptr, 0) < 0); /* closed */
    alignas(16) static unsigned char ovbuf[256]; /* iocomp_overlapped_size(e) bytes at least */
    CHECK(iocomp_overlapped_size(e) <= sizeof ovbuf);
    int before = init_calls;
    CHECK(x->InitializeHostOverlapped(ovbuf) == S_OK && init_calls == before + 1);
    CHECK(ovbuf[IOCOMP_OVERLAPPED_HEADER_SIZE] == 0x5a);
    CHECK(iocomp_overlapped_ext(reinterpret_cast<iocomp_overlapped *>(ovbuf)) ==
          ovbuf + IOCOMP_OVERLAPPED_HEADER_SIZE);
    CHECK((iocomp_overlapped_ext)(reinterpret_cast<iocomp_overlapped *>(ovbuf)) ==
          ovbuf + IOCOMP_OVERLAPPED_HEADER_SIZE); /* the exported function */
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    CHECK(x->Bind(port, (HANDLE)(intptr_t)sv[0]) == S_OK);
    CHECK(iocomp_bind(e, (iocomp_port_t)(uintptr_t)port, sv[0], 0) == -EEXIST); /* bound */
    CHECK(x->SetCLRIoCompletionManager(nullptr) == S_OK);
    CHECK(iocomp_post(e, IOCOMP_DEFAULT_PORT, 0, 0, nullptr, 0) == -ENOTCONN); /* removed */
    CHECK(x->SetCLRIoCompletionManager(&rt) == S_OK);
    CHECK(x->AddRef() == 2 && x->Release() == 1);
    void *o2 = nullptr;
    CHECK(x->QueryInterface(IID_IUnknown, &o2) == S_OK && o2 == m && x->Release() == 1);

    CHECK(iocomp_close_fd(e, sv[0]) == 0);
    close(sv[1]);
    CHECK(m->CloseIoCompletionPort(port) == S_OK);
    CHECK(rt.refs.load() == 2);
    CHECK(m->Release() == 0); /* frees the object: iocomp's reference on rt goes */
    CHECK(rt.refs.load() == 1);
    CHECK(iocomp_engine_destroy(e) == 0);
    std::printf("hosting_cxx: ok\n");
    return 0;
}
