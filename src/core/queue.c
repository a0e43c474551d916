/*
 * queue.c - the rings that move completion packets between threads.
 *
 * Theory of operation
 * -------------------
 * Two kinds of queue, both concurrencykit ck_ring of 32-byte packets (the
 * typed ck_ring_*_pkt flavour from CK_RING_PROTOTYPE, so packets are copied
 * by value and nothing is allocated per packet):
 *
 *  1. A worker's local ring, SPMC. Producer: the owning worker only (posts
 *     made inside its callbacks, batches it moves in from the inject queue or
 *     steals). Consumers: the owner and any thief. SPMC is exactly that shape:
 *     enqueue needs no atomic read-modify-write (one producer), every dequeue
 *     is a CAS on c_head, which is what lets thieves and the owner race.
 *
 *  2. The engine's inject ring: any non-worker thread produces (and a worker
 *     whose local ring is full), every worker consumes. Producers take the
 *     inject mutex and enqueue with the single-producer operation (the SPMC
 *     flavour); consumers take lock-free, with the multi-consumer CAS.
 *     Why not ck's MPMC enqueue: it reserves a slot (CAS on p_head), copies,
 *     then waits for p_tail to reach its ticket, i.e. for every earlier
 *     reserver to commit. A poster preempted between reserve and commit
 *     makes every other poster spin until it runs again; with 4 posters on
 *     2 CPUs that measured 300-400 packets/s (tests/exactly_once_post). A
 *     mutex holder that is preempted makes the others sleep in the kernel
 *     instead, and an uncontended lock costs about what the CAS did.
 *     Behind the ring, an unbounded overflow list (a FIFO of 256-packet
 *     chunks, under its own mutex so that consumers draining it never touch
 *     the producers' lock) takes what does not fit, so a full ring is
 *     backpressure on memory, never a dropped packet. ovf_count tells
 *     consumers, without the lock, whether to look there. Producers always try
 *     the ring first: the list is only the spill-over.
 *
 * Batch take. Consumers take up to `max` packets with one CAS on c_head
 * (ioc_ring_take): the multi-consumer dequeue of ck_ring (_ck_ring_dequeue_mc,
 * ck 0.7.1) generalised from 1 to n slots. It is correct for the same reason
 * the single-slot version is: slots in [c_head, p_tail) are published (the
 * producer's ck_pr_fence_store before its p_tail store pairs with our
 * ck_pr_fence_load after reading p_tail); we copy them out, then the CAS on
 * c_head both claims them and hands the slots back to producers, who never
 * write a slot before c_head has passed it. The copies are ordered before
 * the CAS by a release fence (a load-store ordering: ck's own dequeue has
 * only a store-store fence there, enough on x86, not under the C11 model
 * nor on aarch64); every consumer path goes through this function or its
 * one-slot copy for the owner's pop (ioc_local_pop). The producer (ck's SP enqueue) writes a slot
 * only after it read a c_head past it, a control dependency that aarch64
 * and POWER honour for stores. A failed CAS means another
 * consumer took some of them: our copies are discarded and we retry from the
 * c_head the CAS returned. Workers use it to move a batch from the inject
 * ring (one CAS per batch instead of one per packet, which is what two
 * workers contending on the inject c_head would otherwise pay) and to steal
 * half of a victim's ring.
 *
 * Invariants
 *   Q1 A packet is in exactly one place at a time: a ring slot in
 *      [c_head, p_tail), an overflow chunk, a LIFO slot, or a consumer's local
 *      copy after a successful CAS. Nothing copies a packet without then
 *      either owning it (successful CAS / lock) or discarding the copy.
 *   Q2 A ring of N slots holds N-1 packets; enqueue fails when full and the
 *      caller sends the packet elsewhere (inject ring, then overflow).
 *   Q3 A failed try-dequeue does not prove emptiness (a racing consumer may
 *      have won); emptiness for parking decisions is judged by the indices
 *      after a seq_cst fence (park.c), never by a failed take.
 *
 * TSan: ck_pr is invisible to ThreadSanitizer in the default build and the
 * slot copies are racy by design (a discarded copy may overlap a producer's
 * write), so tests/tsan.supp suppresses races inside ck_ring's own functions,
 * ioc_ring_take and ioc_local_pop only. The hand-off of each packet is annotated instead:
 * the producer releases on the ring after its enqueue, the consumer acquires
 * on it after its take, so everything the poster wrote before posting (the
 * request's memory) happens-before the callback, and TSan checks that.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/probes.h"

#define OVF_CHUNK 256u

struct ioc_ovf_chunk {
    struct ioc_ovf_chunk *next;
    uint32_t head, tail; /* [head, tail) in pkts */
    struct ioc_pkt pkts[OVF_CHUNK];
};

static unsigned pow2_at_least(unsigned v, unsigned lo) {
    unsigned n = lo;
    while (n < v && n < (1u << 30)) n <<= 1;
    return n;
}

int ioc_queue_init(iocomp_engine *e) {
    unsigned cap = e->inject_cap;
    if (IOC_FAULT(IOCOMP_FAULT_ALLOC)) return -ENOMEM;
    e->inj.buf = aligned_alloc(IOC_CACHELINE, (size_t)cap * sizeof(struct ioc_pkt));
    if (!e->inj.buf) return -ENOMEM;
    ck_ring_init(&e->inj.ring, cap);
    pthread_mutex_init(&e->inj.lock, NULL);
    pthread_mutex_init(&e->inj.ovf_lock, NULL);
    e->inj.ovf_head = e->inj.ovf_tail = NULL;
    ioc_store(&e->inj.ovf_count, 0, IOC_RELAXED);
    return 0;
}

void ioc_queue_fini(iocomp_engine *e) {
    struct ioc_ovf_chunk *c = e->inj.ovf_head;
    while (c) {
        struct ioc_ovf_chunk *n = c->next;
        free(c);
        c = n;
    }
    e->inj.ovf_head = e->inj.ovf_tail = NULL;
    pthread_mutex_destroy(&e->inj.lock);
    pthread_mutex_destroy(&e->inj.ovf_lock);
    free(e->inj.buf);
    e->inj.buf = NULL;
}


/* A ring's slots for a requested capacity (0: dflt), a power of two in
 * [16, IOCOMP_QUEUE_CAPACITY_LIMIT]. iocomp_engine_create() refuses a
 * request above the limit (-ERANGE) before it gets here; the cap is the
 * backstop that keeps a ring's allocation bounded all the same. */
unsigned ioc_queue_capacity(unsigned requested, unsigned dflt) {
    unsigned v = requested ? requested : dflt;
    return pow2_at_least(v < IOCOMP_QUEUE_CAPACITY_LIMIT ? v : IOCOMP_QUEUE_CAPACITY_LIMIT, 16);
}

/* ---- batch take (MC-safe; see the theory above) -------------------------- */
/* Takes up to min(max, pending / share + 1) packets (share: how many
 * consumers the pending ones should be spread over; 1 = as many as fit). */
unsigned ioc_ring_take(struct ck_ring *r, struct ioc_pkt *buf, struct ioc_pkt *out, unsigned max, unsigned share) {
    const unsigned mask = r->mask;
    unsigned c = ck_pr_load_uint(&r->c_head);
    for (;;) {
        /* Pairs with the producer's fence_store + p_tail store: the slots
         * below p_tail are written. */
        ck_pr_fence_load();
        unsigned p = ck_pr_load_uint(&r->p_tail);
        unsigned n = p - c;
        if (n == 0) return 0;
        if (n > mask) { /* our c_head snapshot is stale (others took a lap): reload */
            c = ck_pr_load_uint(&r->c_head);
            continue;
        }
        if (share > 1) n = n / share + 1;
        if (n > max) n = max;
        ck_pr_fence_load();
        for (unsigned i = 0; i < n; i++) out[i] = buf[(c + i) & mask];
        /* The copies (loads) complete before the CAS hands the slots back
         * (a store): a release fence orders prior loads and stores before
         * later stores. ck's _ck_ring_dequeue_mc uses a store-store fence
         * here (ck_pr_fence_store_atomic: dmb ishst on aarch64), which lets
         * a slot read be satisfied after the CAS, from the producer's next
         * packet (audit, suspected item; x86 is TSO either way). On x86 this
         * is a compiler barrier; on aarch64 a dmb ish. Pairs with the
         * producer's read of c_head, which its slot write depends on. */
        ioc_fence(IOC_RELEASE);
        if (ck_pr_cas_uint_value(&r->c_head, c, c + n, &c)) {
            ioc_tsan_acquire(r); /* pairs with ioc_tsan_release in the pushes */
            return n;
        }
    }
}

/* ---- local ring ------------------------------------------------------------- */
bool ioc_local_push(struct ioc_worker *w, const struct ioc_pkt *p) {
    ioc_tsan_release(&w->ring);
    return ck_ring_enqueue_spmc_pkt(&w->ring, w->ring_buf, (struct ioc_pkt *)p);
}

/* The owner's pop races thieves: ck's multi-consumer dequeue of one slot,
 * with ioc_ring_take's load-store ordering of the copy before the CAS (a
 * release fence, not ck's store-store fence; see there). */
bool ioc_local_pop(struct ioc_worker *w, struct ioc_pkt *out) {
    struct ck_ring *r = &w->ring;
    const unsigned mask = r->mask;
    unsigned c = ck_pr_load_uint(&r->c_head);
    for (;;) {
        ck_pr_fence_load(); /* pairs with the producer's fence_store + p_tail store */
        if (c == ck_pr_load_uint(&r->p_tail)) return false;
        ck_pr_fence_load();
        *out = w->ring_buf[c & mask];
        ioc_fence(IOC_RELEASE); /* the copy before the CAS hands the slot back */
        if (ck_pr_cas_uint_value(&r->c_head, c, c + 1, &c)) {
            ioc_tsan_acquire(r); /* pairs with ioc_tsan_release in the pushes */
            return true;
        }
    }
}

/* Packets in a ring now (a hint: it may change at once). The one place
 * outside ck's functions that reads ck_ring indices (see tsan.supp). */
unsigned ioc_ring_pending(struct ck_ring *r) {
    unsigned c = ck_pr_load_uint(&r->c_head);
    unsigned p = ck_pr_load_uint(&r->p_tail);
    unsigned n = p - c;
    return n > r->mask ? 0 : n;
}

uint64_t ioc_local_size(struct ioc_worker *w) { return ioc_ring_pending(&w->ring); }

/* ---- inject ring + overflow ---------------------------------------------------- */
/* The inject lock is held; takes the overflow lock. */
static int ovf_push(iocomp_engine *e, const struct ioc_pkt *p) {
    struct ioc_inject *q = &e->inj;
    pthread_mutex_lock(&q->ovf_lock);
    struct ioc_ovf_chunk *t = q->ovf_tail;
    if (!t || t->tail == OVF_CHUNK) {
        struct ioc_ovf_chunk *n = IOC_FAULT(IOCOMP_FAULT_ALLOC) ? NULL : malloc(sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&q->ovf_lock);
            return -ENOMEM;
        }
        n->next = NULL;
        n->head = n->tail = 0;
        if (t) t->next = n;
        else q->ovf_head = n;
        q->ovf_tail = t = n;
    }
    t->pkts[t->tail++] = *p;
    /* Release: a consumer that sees the count (acquire) then takes the lock,
     * which orders the data anyway; the count is the lock-free hint. */
    ioc_fetch_add(&q->ovf_count, 1, IOC_RELEASE);
    ioc_fetch_add(&q->ovf_total, 1, IOC_RELAXED);
    pthread_mutex_unlock(&q->ovf_lock);
    return 0;
}

static unsigned ovf_take(iocomp_engine *e, struct ioc_pkt *out, unsigned max) {
    struct ioc_inject *q = &e->inj;
    unsigned n = 0;
    pthread_mutex_lock(&q->ovf_lock);
    while (n < max && q->ovf_head) {
        struct ioc_ovf_chunk *h = q->ovf_head;
        while (n < max && h->head < h->tail) out[n++] = h->pkts[h->head++];
        if (h->head == h->tail) {
            q->ovf_head = h->next;
            if (!q->ovf_head) q->ovf_tail = NULL;
            free(h);
        }
    }
    if (n) ioc_fetch_sub(&q->ovf_count, n, IOC_RELAXED);
    pthread_mutex_unlock(&q->ovf_lock);
    return n;
}

int ioc_inject_push(iocomp_engine *e, const struct ioc_pkt *p) {
    struct ioc_inject *q = &e->inj;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    ioc_tsan_release(&q->ring);
    /* Single producer while the lock is held: the SPMC enqueue (no CAS). */
    if (!ck_ring_enqueue_spmc_pkt(&q->ring, q->buf, (struct ioc_pkt *)p)) r = ovf_push(e, p);
    if (r == 0) ioc_owner_inc(&q->posts, 1); /* one writer at a time: the lock holder */
    pthread_mutex_unlock(&q->lock);
    return r;
}

/*
 * A host thread's post: the accept/close decision and the count are made
 * under the inject lock, so the poster needs no locked RMW of its own for
 * them. The closer pairs with it through ioc_inject_barrier(): it marks the
 * port CLOSING, then takes and releases the lock once. A poster whose
 * critical section came first is counted (the lock orders it before the
 * closer's reads); one that comes after sees CLOSING (the closer's CAS
 * happened before its lock). Returns 0, -EBADF, -ESHUTDOWN or -ENOMEM.
 */
int ioc_inject_post(iocomp_engine *e, struct ioc_port *port, uint32_t gen, const struct ioc_pkt *p) {
    struct ioc_inject *q = &e->inj;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    uint64_t c = ioc_load(&port->ctl, IOC_ACQUIRE);
    if (ioc_unlikely((uint32_t)(c >> 32) != gen || (uint32_t)c != P_OPEN)) {
        r = (uint32_t)(c >> 32) == gen && (uint32_t)c == P_CLOSING ? -ESHUTDOWN : -EBADF;
    } else {
        ioc_tsan_release(&q->ring);
        if (!ck_ring_enqueue_spmc_pkt(&q->ring, q->buf, (struct ioc_pkt *)p)) r = ovf_push(e, p);
        if (r == 0) {
            ioc_owner_inc(&port->count_host, 1); /* one writer at a time: the lock holder */
            ioc_owner_inc(&q->posts, 1);
            IOC_PROBE4(inject, e, p->port_idx, p->status, p->bytes);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return r;
}

/* A host thread's I/O request: decided and counted like a post (the closer's
 * ioc_inject_barrier orders it), but nothing is queued: the backend produces
 * the packet later. */
int ioc_inject_accept(iocomp_engine *e, struct ioc_port *port, uint32_t gen) {
    struct ioc_inject *q = &e->inj;
    int r = 0;
    pthread_mutex_lock(&q->lock);
    uint64_t c = ioc_load(&port->ctl, IOC_ACQUIRE);
    if (ioc_unlikely((uint32_t)(c >> 32) != gen || (uint32_t)c != P_OPEN))
        r = (uint32_t)(c >> 32) == gen && (uint32_t)c == P_CLOSING ? -ESHUTDOWN : -EBADF;
    else
        ioc_owner_inc(&port->count_host, 1); /* one writer at a time: the lock holder */
    pthread_mutex_unlock(&q->lock);
    return r;
}

void ioc_inject_barrier(iocomp_engine *e) {
    pthread_mutex_lock(&e->inj.lock);
    pthread_mutex_unlock(&e->inj.lock);
}

/*
 * Consumers take from the ring first, but every 8th take from a non-empty
 * overflow list goes to the list first, so packets that overflowed are not
 * starved by a ring that producers keep refilling. There is no FIFO promise
 * between packets (work stealing has none either).
 */
unsigned ioc_inject_take(iocomp_engine *e, struct ioc_pkt *out, unsigned max, unsigned share, uint32_t tick) {
    bool ovf = ioc_load(&e->inj.ovf_count, IOC_ACQUIRE) != 0;
    if (ovf && (tick & 7) == 0) {
        unsigned n = ovf_take(e, out, max);
        if (n) return n;
    }
    unsigned n = ioc_ring_take(&e->inj.ring, e->inj.buf, out, max, share);
    if (n || !ovf) return n;
    return ovf_take(e, out, max);
}

bool ioc_inject_nonempty(iocomp_engine *e) {
    return ioc_ring_pending(&e->inj.ring) != 0 || ioc_load(&e->inj.ovf_count, IOC_ACQUIRE) != 0;
}
