/* Pool (Go's sync.Pool) for void* objects.
 *
 * Layout, as in Go's pool.go: one poolLocal per P, each with
 *
 *   private   one object, touched only by the goroutine running on that P
 *   shared    a stack of objects: the owner pushes and pops the newest end,
 *             thieves (other Ps, plain threads) take the oldest end
 *
 * plus one `fallback` stack for plain threads, which have no P.
 *
 *   get: own private -> own shared (newest) -> steal from the other Ps'
 *        shared (oldest; Ps in order starting after ours) -> fallback
 *        (oldest) -> new_fn. A plain thread: fallback (newest) -> steal.
 *   put: own private if empty, else own shared; plain thread: fallback
 *
 * Pinning. Go disables preemption (procPin) while it uses the P's slot.
 * pygoro never preempts: between sched_current_pid() and the end of the
 * operation this code does not park, so the goroutine stays on that P and
 * nobody else runs there. The private slot is therefore a plain field with
 * no atomics; the P's hand-over between Ms (under the scheduler's locks and
 * atomics) orders one owner's accesses before the next owner's.
 * new_fn and drain's release run after the P's slot is no longer in use,
 * since they may park.
 *
 * Shared stacks: a tiny per-P lock (an rtlock) rather than Go's lock-free
 * poolChain. Go's chain of growing ring buffers relies on the garbage
 * collector to reclaim a ring a thief may still be reading; in C that needs
 * hazard pointers or epochs. The lock is uncontended in the steady state
 * (only the owner uses its shared stack until some other P runs dry), costs
 * one atomic exchange and one store, and the owner's common get/put pair
 * never reaches it: it hits the private slot. The stack is a ring that
 * doubles when full and halves when a quarter full, so its memory follows
 * the number of pooled objects; growing happens under the lock (malloc
 * never calls back into the runtime).
 *
 * Memory bound. Go drops pooled objects at every GC (keeping one GC's worth
 * in a victim cache). Here nothing is dropped behind the program's back, as
 * a void* cannot be freed without knowing what it is: the pool holds
 * exactly the objects put and not yet taken, plus ring slack of at most 4x
 * per stack. goro_pool_drain is the program's GC: it empties the shared
 * stacks. Objects in private slots (at most one per P) stay until a get on
 * that P, or goro_pool_free; a P retired by lowering gomaxprocs keeps its
 * private object until it is revived or the pool freed.
 *
 * Per-P locals are allocated on a P's first put (cache-line aligned, so
 * two Ps' slots never share a line) and published with a CAS into a fixed
 * array of sched_max_procs() pointers; `nlocal` is the highest P id seen
 * plus one, so thieves scan only the Ps that ever used the pool.
 */
#include <stdlib.h>
#include <string.h>

#include "pool.h"

#define CACHE_LINE 64
#define RING_MIN 8 /* smallest ring; a power of two */

/* A ring of object pointers; guarded by the owning struct's lock. */
struct pool_ring {
    void **buf;
    size_t cap;   /* 0 or a power of two >= RING_MIN */
    size_t start; /* index of the oldest object */
    /* Written under the lock; read without it as an emptiness hint by
     * thieves, so atomic (relaxed: a stale answer only makes a get skip a
     * victim or take its lock for nothing). */
    _Atomic size_t n;
};

struct pool_local {
    _Alignas(CACHE_LINE) void *private; /* owner P only, see above */
    struct rtlock lock;                 /* guards shared */
    struct pool_ring shared;
};

struct goro_pool {
    void *(*new_fn)(void *arg);
    void *new_arg;
    int maxprocs;
    /* P id + 1 of the highest P that has a local; thieves scan below it.
     * Relaxed loads are enough: the locals themselves are published by the
     * acquire/release pair on locals[i]. */
    _Atomic int nlocal;
    _Atomic(struct pool_local *) *locals; /* maxprocs entries */
    struct pool_local fallback;           /* plain threads; private unused */
    /* No private slots (pool_no_private_slots): every object sits in a
     * locked shared stack, so pool_clear may run beside get and put. */
    bool shared_only;
};

/* ---- rings (lock held) ---- */

static size_t ring_len(struct pool_ring *r)
{
    return atomic_load_explicit(&r->n, memory_order_relaxed);
}

/* Move the contents into a ring of newcap slots. false if out of memory. */
static bool ring_resize(struct pool_ring *r, size_t newcap)
{
    void **nb = malloc(newcap * sizeof *nb);
    if (nb == NULL)
        return false;
    size_t n = ring_len(r);
    for (size_t i = 0; i < n; i++)
        nb[i] = r->buf[(r->start + i) & (r->cap - 1)];
    free(r->buf);
    r->buf = nb;
    r->cap = newcap;
    r->start = 0;
    return true;
}

static bool ring_push(struct pool_ring *r, void *x)
{
    size_t n = ring_len(r);
    if (n == r->cap && !ring_resize(r, r->cap ? r->cap * 2 : RING_MIN))
        return false;
    r->buf[(r->start + n) & (r->cap - 1)] = x;
    atomic_store_explicit(&r->n, n + 1, memory_order_relaxed);
    return true;
}

/* Halve a ring that is a quarter full (failure to shrink is harmless). */
static void ring_maybe_shrink(struct pool_ring *r, size_t n)
{
    if (r->cap > RING_MIN && n <= r->cap / 4)
        ring_resize(r, r->cap / 2);
}

static void *ring_pop_newest(struct pool_ring *r)
{
    size_t n = ring_len(r);
    if (n == 0)
        return NULL;
    n--;
    void *x = r->buf[(r->start + n) & (r->cap - 1)];
    atomic_store_explicit(&r->n, n, memory_order_relaxed);
    ring_maybe_shrink(r, n);
    return x;
}

static void *ring_pop_oldest(struct pool_ring *r)
{
    size_t n = ring_len(r);
    if (n == 0)
        return NULL;
    void *x = r->buf[r->start];
    r->start = (r->start + 1) & (r->cap - 1);
    atomic_store_explicit(&r->n, n - 1, memory_order_relaxed);
    ring_maybe_shrink(r, n - 1);
    return x;
}

/* ---- locals ---- */

static void *local_pop(struct pool_local *l, bool newest)
{
    if (ring_len(&l->shared) == 0) /* hint; see struct pool_ring */
        return NULL;
    rtlock_lock(&l->lock);
    void *x = newest ? ring_pop_newest(&l->shared) : ring_pop_oldest(&l->shared);
    rtlock_unlock(&l->lock);
    return x;
}

static bool local_push(struct pool_local *l, void *x)
{
    rtlock_lock(&l->lock);
    bool ok = ring_push(&l->shared, x);
    rtlock_unlock(&l->lock);
    return ok;
}

/* The local of P pid, allocating it on first use; NULL if out of memory. */
static struct pool_local *local_get(goro_pool_t *p, int pid)
{
    /* acquire: pairs with the release CAS below, so the fields of a local
     * published by another P are initialised when we see its pointer. */
    struct pool_local *l = atomic_load_explicit(&p->locals[pid], memory_order_acquire);
    if (l != NULL)
        return l;
    l = aligned_alloc(CACHE_LINE, sizeof *l);
    if (l == NULL)
        return NULL;
    memset(l, 0, sizeof *l);
    struct pool_local *expected = NULL;
    /* Only the goroutine running on P pid allocates its local, so the CAS
     * cannot fail today; it stays a CAS so that a future caller without
     * that guarantee cannot leak or overwrite a local. */
    if (!atomic_compare_exchange_strong_explicit(&p->locals[pid], &expected, l,
                                                 memory_order_release, memory_order_acquire)) {
        free(l);
        return expected;
    }
    int want = pid + 1;
    int cur = atomic_load_explicit(&p->nlocal, memory_order_relaxed);
    while (cur < want &&
           !atomic_compare_exchange_weak_explicit(&p->nlocal, &cur, want, memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    return l;
}

/* ---- public API ---- */

goro_pool_t *goro_pool_new(void *(*new_fn)(void *arg), void *arg)
{
    goro_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    p->maxprocs = sched_max_procs();
    p->locals = calloc((size_t)p->maxprocs, sizeof *p->locals);
    if (p->locals == NULL) {
        free(p);
        return NULL;
    }
    p->new_fn = new_fn;
    p->new_arg = arg;
    return p;
}

void pool_no_private_slots(goro_pool_t *p)
{
    p->shared_only = true;
}

/* Take one object from anywhere but our own P's private slot and shared
 * stack: other Ps' shared stacks (oldest first), then the fallback (a plain
 * thread has looked at it already). */
static void *pool_steal(goro_pool_t *p, int pid)
{
    int n = atomic_load_explicit(&p->nlocal, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        int victim = (pid + 1 + i) % n;
        if (victim == pid)
            continue;
        struct pool_local *l = atomic_load_explicit(&p->locals[victim], memory_order_acquire);
        void *x;
        if (l != NULL && (x = local_pop(l, false)) != NULL)
            return x;
    }
    return pid >= 0 ? local_pop(&p->fallback, false) : NULL;
}

void *goro_pool_get(goro_pool_t *p)
{
    int pid = sched_current_pid();
    void *x = NULL;
    if (pid >= 0) {
        struct pool_local *l = atomic_load_explicit(&p->locals[pid], memory_order_acquire);
        if (l != NULL) {
            if (!p->shared_only) {
                x = l->private;
                l->private = NULL;
            }
            if (x == NULL)
                x = local_pop(l, true);
        }
    } else {
        x = local_pop(&p->fallback, true); /* a plain thread's own stack */
    }
    if (x == NULL)
        x = pool_steal(p, pid);
    /* From here on the P's slot is not used: new_fn may park. */
    if (x == NULL && p->new_fn != NULL)
        x = p->new_fn(p->new_arg);
    return x;
}

int goro_pool_put(goro_pool_t *p, void *x)
{
    if (x == NULL)
        return GORO_OK;
    int pid = sched_current_pid();
    struct pool_local *l = pid >= 0 ? local_get(p, pid) : &p->fallback;
    if (l == NULL)
        l = &p->fallback; /* no memory for a local: the fallback still works */
    else if (pid >= 0 && !p->shared_only && l->private == NULL) {
        l->private = x;
        return GORO_OK;
    }
    return local_push(l, x) ? GORO_OK : GORO_ENOMEM;
}

/* Detach a local's whole shared ring under its lock. */
static struct pool_ring local_take_shared(struct pool_local *l)
{
    rtlock_lock(&l->lock);
    struct pool_ring r = {l->shared.buf, l->shared.cap, l->shared.start, ring_len(&l->shared)};
    l->shared.buf = NULL;
    l->shared.cap = 0;
    l->shared.start = 0;
    atomic_store_explicit(&l->shared.n, 0, memory_order_relaxed);
    rtlock_unlock(&l->lock);
    return r;
}

/* Release a detached ring's objects (no lock held) and free it. */
static size_t ring_release(struct pool_ring r, void (*release)(void *, void *), void *arg)
{
    size_t n = ring_len(&r);
    for (size_t i = 0; i < n && release != NULL; i++)
        release(r.buf[(r.start + i) & (r.cap - 1)], arg);
    free(r.buf);
    return n;
}

size_t goro_pool_drain(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg)
{
    size_t total = 0;
    int n = atomic_load_explicit(&p->nlocal, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        struct pool_local *l = atomic_load_explicit(&p->locals[i], memory_order_acquire);
        if (l != NULL)
            total += ring_release(local_take_shared(l), release, arg);
    }
    return total + ring_release(local_take_shared(&p->fallback), release, arg);
}

void goro_pool_free(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg)
{
    if (p == NULL)
        return;
    /* Exclusive access: the private slots can be read from here. */
    for (int i = 0; i < p->maxprocs; i++) {
        struct pool_local *l = atomic_load_explicit(&p->locals[i], memory_order_acquire);
        if (l == NULL)
            continue;
        if (l->private != NULL && release != NULL)
            release(l->private, arg);
        ring_release(local_take_shared(l), release, arg);
        free(l);
    }
    ring_release(local_take_shared(&p->fallback), release, arg);
    free(p->locals);
    free(p);
}

/* ---- for the Python bridge (pool.h) ---- */

int pool_visit(goro_pool_t *p, int (*visit)(void *x, void *arg), void *arg)
{
    int n = atomic_load_explicit(&p->nlocal, memory_order_relaxed);
    for (int i = -1; i < n; i++) {
        struct pool_local *l =
            i < 0 ? &p->fallback : atomic_load_explicit(&p->locals[i], memory_order_acquire);
        if (l == NULL)
            continue;
        int r;
        if (l->private != NULL && (r = visit(l->private, arg)) != 0)
            return r;
        /* No lock: nobody else uses the pool now (pool.h), and visit is
         * Python's GC callback, which must not run under a runtime lock. */
        struct pool_ring *ring = &l->shared;
        size_t len = ring_len(ring);
        for (size_t k = 0; k < len; k++)
            if ((r = visit(ring->buf[(ring->start + k) & (ring->cap - 1)], arg)) != 0)
                return r;
    }
    return 0;
}

size_t pool_clear(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg)
{
    /* Take the private objects first (exclusive access, see pool.h), then
     * release them with the shared stacks, all outside any lock. */
    size_t total = 0;
    int n = atomic_load_explicit(&p->nlocal, memory_order_relaxed);
    for (int i = 0; i < n; i++) {
        struct pool_local *l = atomic_load_explicit(&p->locals[i], memory_order_acquire);
        void *x = l != NULL ? l->private : NULL;
        if (x == NULL)
            continue;
        l->private = NULL;
        if (release != NULL)
            release(x, arg);
        total++;
    }
    return total + goro_pool_drain(p, release, arg);
}
