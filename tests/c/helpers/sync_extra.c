/* C-side drivers for tests/c/test_sync_extra.py: Pool, the weighted
 * Semaphore and the atomics, driven by C goroutines and plain pthreads at
 * full parallelism (no GIL).
 *
 * As in the other helpers, each driver checks its invariants as it goes and
 * returns the number of violations (0 = pass), printing the first few to
 * stderr. Workers are joined with a WaitGroup (tested elsewhere, in
 * helpers/sync.c); a driver that cannot finish in SX_DEADLINE aborts with a
 * message rather than hanging the run. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime.h"
#include "sync/semaphore.h"

#define SX_MS 1000000LL
#define SX_DEADLINE (60LL * 1000 * SX_MS)

static _Atomic int64_t sx_nerr;

static void sx_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sx_fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&sx_nerr, 1) >= 10)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("sync_extra test: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

#define EXPECT(cond, ...)          \
    do {                           \
        if (!(cond))               \
            sx_fail(__VA_ARGS__);  \
    } while (0)

/* Poll until cond, parking between looks (works at GOMAXPROCS=1). */
#define SX_AWAIT(cond, what)                                                          \
    do {                                                                              \
        int64_t end_ = nanotime() + SX_DEADLINE;                                      \
        while (!(cond)) {                                                             \
            if (nanotime() > end_) {                                                  \
                fprintf(stderr, "sync_extra test: stuck waiting for %s\n", what);    \
                goro_dump(stderr);                                                    \
                fflush(stderr);                                                       \
                abort();                                                              \
            }                                                                         \
            goro_sleep(20000);                                                        \
        }                                                                             \
    } while (0)

/* ---- workers ---- */

enum { SX_GOROUTINE = 0, SX_THREAD = 1 };

struct sx_job {
    goro_fn fn;
    void *arg;
    goro_waitgroup_t *wg;
};

static void sx_job_run(void *p)
{
    struct sx_job job = *(struct sx_job *)p;
    free(p);
    job.fn(job.arg);
    goro_waitgroup_done(job.wg);
}

static void *sx_thread_main(void *p)
{
    sx_job_run(p);
    return NULL;
}

/* Run fn(arg) in a new goroutine or detached pthread, counted in wg. */
static void sx_start(goro_waitgroup_t *wg, int kind, goro_fn fn, void *arg)
{
    struct sx_job *job = malloc(sizeof *job);
    if (job == NULL)
        abort();
    *job = (struct sx_job){fn, arg, wg};
    goro_waitgroup_add(wg, 1);
    if (kind == SX_GOROUTINE) {
        if (goro_go(sx_job_run, job) != GORO_OK)
            abort();
        return;
    }
    pthread_t t;
    if (pthread_create(&t, NULL, sx_thread_main, job) != 0)
        abort();
    pthread_detach(t);
}

/* Run fn(arg) as a goroutine (kind SX_GOROUTINE) or on this thread, and
 * wait for it. */
static void sx_run_as(int kind, goro_fn fn, void *arg)
{
    if (kind == SX_THREAD) {
        fn(arg);
        return;
    }
    goro_waitgroup_t wg = {0};
    sx_start(&wg, SX_GOROUTINE, fn, arg);
    goro_waitgroup_wait(&wg);
}

static uint64_t sx_rand(uint64_t *s)
{
    /* splitmix64: per-worker, deterministic */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void sx_yield(int kind)
{
    if (kind == SX_GOROUTINE)
        goro_gosched();
    else
        sched_yield();
}

/* ======================================================================== */
/* Pool                                                                      */

struct sx_obj {
    _Atomic int holder; /* 0: in the pool; else the id of the worker holding it */
    _Atomic int64_t uses;
};

struct sx_pool_test {
    goro_pool_t *pool;
    _Atomic int64_t created;
    _Atomic int64_t released;
    _Atomic int stop;
    int iters;
};

static void *sx_obj_new(void *arg)
{
    struct sx_pool_test *t = arg;
    struct sx_obj *o = calloc(1, sizeof *o);
    if (o == NULL)
        abort();
    atomic_fetch_add(&t->created, 1);
    return o;
}

static void sx_obj_release(void *x, void *arg)
{
    struct sx_pool_test *t = arg;
    struct sx_obj *o = x;
    EXPECT(atomic_load(&o->holder) == 0, "pool released an object held by worker %d",
           atomic_load(&o->holder));
    atomic_fetch_add(&t->released, 1);
    free(o);
}

struct sx_pool_worker {
    struct sx_pool_test *t;
    int id;
    int kind;
};

static void sx_pool_worker_main(void *p)
{
    struct sx_pool_worker *w = p;
    uint64_t seed = (uint64_t)w->id * 7919;
    struct sx_obj *held[4];
    for (int i = 0; i < w->t->iters; i++) {
        int k = 1 + (int)(sx_rand(&seed) % 4);
        for (int j = 0; j < k; j++) {
            held[j] = goro_pool_get(w->t->pool);
            int expected = 0;
            if (!atomic_compare_exchange_strong(&held[j]->holder, &expected, w->id))
                sx_fail("object handed to worker %d while worker %d holds it", w->id, expected);
            atomic_fetch_add(&held[j]->uses, 1);
        }
        if (sx_rand(&seed) % 8 == 0)
            sx_yield(w->kind); /* move between Ps while holding objects */
        for (int j = k - 1; j >= 0; j--) {
            int expected = w->id;
            if (!atomic_compare_exchange_strong(&held[j]->holder, &expected, 0))
                sx_fail("worker %d's object taken by worker %d", w->id, expected);
            EXPECT(goro_pool_put(w->t->pool, held[j]) == GORO_OK, "pool put failed");
        }
    }
}

static void sx_pool_drainer_main(void *p)
{
    struct sx_pool_test *t = p;
    while (!atomic_load(&t->stop)) {
        goro_pool_drain(t->pool, sx_obj_release, t);
        goro_sleep(200000);
    }
}

/* ngor goroutines and nthreads pthreads get 1-4 objects at a time, check
 * they are theirs alone, and put them back; with drain, a goroutine drains
 * the pool every 0.2 ms meanwhile. At the end every object ever created has
 * been released exactly once (by drain or by goro_pool_free). */
int64_t sx_pool_conservation(int ngor, int nthreads, int iters, int drain, int64_t *created,
                             int64_t *drained)
{
    atomic_store(&sx_nerr, 0);
    struct sx_pool_test t = {.iters = iters};
    t.pool = goro_pool_new(sx_obj_new, &t);
    int n = ngor + nthreads;
    struct sx_pool_worker *ws = calloc((size_t)n, sizeof *ws);
    goro_waitgroup_t wg = {0}, dwg = {0};
    if (drain)
        sx_start(&dwg, SX_GOROUTINE, sx_pool_drainer_main, &t);
    for (int i = 0; i < n; i++) {
        ws[i] = (struct sx_pool_worker){&t, i + 1, i < ngor ? SX_GOROUTINE : SX_THREAD};
        sx_start(&wg, ws[i].kind, sx_pool_worker_main, &ws[i]);
    }
    goro_waitgroup_wait(&wg);
    atomic_store(&t.stop, 1);
    goro_waitgroup_wait(&dwg);
    *drained = atomic_load(&t.released);
    goro_pool_free(t.pool, sx_obj_release, &t);
    *created = atomic_load(&t.created);
    EXPECT(atomic_load(&t.released) == *created, "created %lld objects, released %lld",
           (long long)*created, (long long)atomic_load(&t.released));
    free(ws);
    return atomic_load(&sx_nerr);
}

struct sx_reuse {
    struct sx_pool_test t;
    int64_t result;
};

static void sx_pool_reuse_main(void *p)
{
    struct sx_reuse *r = p;
    goro_pool_t *pool = r->t.pool;
    void *a = goro_pool_get(pool); /* empty: new */
    EXPECT(atomic_load(&r->t.created) == 1, "new not called on an empty pool");
    for (int i = 0; i < 100; i++) {
        EXPECT(goro_pool_put(pool, a) == GORO_OK, "put");
        void *b = goro_pool_get(pool);
        EXPECT(b == a, "round %d: put then get on one P/thread returned another object", i);
        a = b;
    }
    EXPECT(atomic_load(&r->t.created) == 1, "new called %lld times for one object",
           (long long)atomic_load(&r->t.created));
    void *b = goro_pool_get(pool); /* a is held: new again */
    EXPECT(b != a && atomic_load(&r->t.created) == 2, "second get while holding the first");
    EXPECT(goro_pool_put(pool, a) == GORO_OK && goro_pool_put(pool, b) == GORO_OK, "put");
    EXPECT(goro_pool_put(pool, NULL) == GORO_OK, "put(NULL) must be ignored");
    void *c = goro_pool_get(pool), *d = goro_pool_get(pool);
    EXPECT((c == a && d == b) || (c == b && d == a), "both objects come back");
    EXPECT(atomic_load(&r->t.created) == 2, "new called with objects in the pool");
    EXPECT(goro_pool_put(pool, c) == GORO_OK && goro_pool_put(pool, d) == GORO_OK, "put");
}

/* Put then get on the same P (a goroutine) or thread returns the same
 * object, and new runs only when the pool is empty. */
int64_t sx_pool_reuse(int kind)
{
    atomic_store(&sx_nerr, 0);
    struct sx_reuse r = {0};
    r.t.pool = goro_pool_new(sx_obj_new, &r.t);
    goro_pool_t *empty = goro_pool_new(NULL, NULL);
    EXPECT(goro_pool_get(empty) == NULL, "get without new_fn");
    goro_pool_free(empty, NULL, NULL);
    sx_run_as(kind, sx_pool_reuse_main, &r);
    goro_pool_free(r.t.pool, sx_obj_release, &r.t);
    EXPECT(atomic_load(&r.t.released) == 2, "free released %lld objects, not 2",
           (long long)atomic_load(&r.t.released));
    return atomic_load(&sx_nerr);
}

struct sx_steal {
    goro_pool_t *pool;
    int n;
    void **objs;
};

static void sx_pool_fill_main(void *p)
{
    struct sx_steal *s = p;
    for (int i = 0; i < s->n; i++)
        EXPECT(goro_pool_put(s->pool, s->objs[i]) == GORO_OK, "put");
}

static void sx_free_release(void *x, void *arg)
{
    (void)x;
    atomic_fetch_add((_Atomic int64_t *)arg, 1);
}

/* A goroutine fills the pool; this plain thread then takes them back by
 * stealing from that P's shared stack: all but the one object in the P's
 * private slot, each once. */
int64_t sx_pool_steal(int n, int *got)
{
    atomic_store(&sx_nerr, 0);
    struct sx_steal s = {goro_pool_new(NULL, NULL), n, calloc((size_t)n, sizeof(void *))};
    char *mem = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++)
        s.objs[i] = mem + i;
    sx_run_as(SX_GOROUTINE, sx_pool_fill_main, &s);
    char *seen = calloc((size_t)n, 1);
    *got = 0;
    void *x;
    while ((x = goro_pool_get(s.pool)) != NULL) {
        ptrdiff_t i = (char *)x - mem;
        EXPECT(i >= 0 && i < n && !seen[i], "steal returned object %td twice or unknown", i);
        if (i >= 0 && i < n)
            seen[i] = 1;
        (*got)++;
    }
    _Atomic int64_t left = 0;
    goro_pool_free(s.pool, sx_free_release, &left);
    EXPECT(*got + atomic_load(&left) == n, "got %d + left %lld != %d", *got,
           (long long)atomic_load(&left), n);
    free(seen);
    free(mem);
    free(s.objs);
    return atomic_load(&sx_nerr);
}

/* Cost of a get+put pair from a goroutine (hits the P's private slot). */
struct sx_cost {
    int64_t iters;
    int64_t ns;
    void *obj;
};

static void sx_pool_cost_main(void *p)
{
    struct sx_cost *c = p;
    goro_pool_t *pool = goro_pool_new(NULL, NULL);
    goro_pool_put(pool, c);
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < c->iters; i++) {
        void *x = goro_pool_get(pool);
        goro_pool_put(pool, x);
    }
    c->ns = nanotime() - t0;
    goro_pool_free(pool, NULL, NULL);
}

int64_t sx_pool_getput_ns(int64_t iters, int kind)
{
    struct sx_cost c = {iters, 0, NULL};
    sx_run_as(kind, sx_pool_cost_main, &c);
    return c.ns;
}

/* ======================================================================== */
/* Semaphore                                                                 */

enum { SX_PARK = 0, SX_SELECT = 1 };

static int sx_acquire(goro_semaphore_t *s, int64_t n, int mode)
{
    if (mode == SX_PARK)
        return goro_semaphore_acquire(s, n);
    return goro_semaphore_acquire_select(s, n, NULL, NULL, GORO_FOREVER);
}

struct sx_fifo {
    goro_semaphore_t *sem;
    _Atomic int order;     /* next grant number */
    _Atomic int got[64];   /* grant number + 1 of each waiter, 0: not yet */
    _Atomic int gate;      /* waiters release once it is set */
    int mode_big, mode_small;
};

struct sx_fifo_waiter {
    struct sx_fifo *f;
    int id; /* 0: the big waiter */
    int64_t n;
};

static void sx_fifo_waiter_main(void *p)
{
    struct sx_fifo_waiter *w = p;
    struct sx_fifo *f = w->f;
    int r = sx_acquire(f->sem, w->n, w->id == 0 ? f->mode_big : f->mode_small);
    EXPECT(r == GORO_OK, "waiter %d: acquire returned %d", w->id, r);
    atomic_store(&f->got[w->id], atomic_fetch_add(&f->order, 1) + 1);
    if (w->id != 0)
        SX_AWAIT(atomic_load(&f->gate), "the gate");
    EXPECT(goro_semaphore_release(f->sem, w->n) == GORO_OK, "waiter %d release", w->id);
}

/* Size 10, all held by us. A big waiter (10) queues first, then nsmall
 * waiters of 1, in a known order. Releasing our units one at a time must
 * serve nobody until the big waiter fits (the small ones wait behind it
 * although units are free); then the small ones are served in queue order,
 * 10 at a time. */
int64_t sx_sem_fifo(int nsmall, int kind, int mode_big, int mode_small)
{
    atomic_store(&sx_nerr, 0);
    if (nsmall > 60)
        return -1;
    struct sx_fifo *f = calloc(1, sizeof *f);
    f->sem = goro_semaphore_new(10);
    f->mode_big = mode_big;
    f->mode_small = mode_small;
    EXPECT(goro_semaphore_try_acquire(f->sem, 10) == GORO_OK, "initial acquire");
    struct sx_fifo_waiter ws[64];
    goro_waitgroup_t wg = {0};
    for (int i = 0; i <= nsmall; i++) {
        ws[i] = (struct sx_fifo_waiter){f, i, i == 0 ? 10 : 1};
        sx_start(&wg, kind, sx_fifo_waiter_main, &ws[i]);
        SX_AWAIT(goro_semaphore_waiters(f->sem) == i + 1, "a waiter to queue");
    }
    for (int i = 0; i < 10; i++) {
        goro_sleep(200000); /* give a wrongly woken waiter time to show */
        EXPECT(atomic_load(&f->order) == 0, "someone was served with %d units held", 10 - i);
        EXPECT(goro_semaphore_try_acquire(f->sem, 1) == GORO_WOULDBLOCK,
               "try_acquire barged past the queue");
        EXPECT(goro_semaphore_release(f->sem, 1) == GORO_OK, "release");
    }
    SX_AWAIT(atomic_load(&f->got[0]) != 0, "the big waiter");
    EXPECT(atomic_load(&f->got[0]) == 1, "big waiter served as number %d", atomic_load(&f->got[0]));
    /* The big waiter released 10: the first 10 small ones get in, and stay
     * (gate closed), so nobody else can. */
    int first = nsmall < 10 ? nsmall : 10;
    SX_AWAIT(atomic_load(&f->order) == 1 + first, "the first small waiters");
    goro_sleep(200000);
    EXPECT(atomic_load(&f->order) == 1 + first, "%d served with 10 units",
           atomic_load(&f->order) - 1);
    /* A waiter bumps order before it records got[]: wait for the record
     * (under TSAN the gap is long enough to be seen); one that was not
     * served never records, and the wait fails. */
    for (int i = 1; i <= first; i++)
        SX_AWAIT(atomic_load(&f->got[i]) != 0, "each of the first small waiters to be served");
    atomic_store(&f->gate, 1);
    goro_waitgroup_wait(&wg);
    EXPECT(goro_semaphore_held(f->sem) == 0 && goro_semaphore_waiters(f->sem) == 0,
           "held %lld, waiters %lld at the end", (long long)goro_semaphore_held(f->sem),
           (long long)goro_semaphore_waiters(f->sem));
    goro_semaphore_free(f->sem);
    free(f);
    return atomic_load(&sx_nerr);
}

struct sx_sem_stress {
    goro_semaphore_t *sem;
    int64_t size;
    _Atomic int64_t inside; /* units held by workers, by their own count */
    _Atomic int64_t max_inside;
    _Atomic int64_t ok, canceled, timedout, wouldblock;
    _Atomic int stop;
    int iters;
};

struct sx_sem_worker {
    struct sx_sem_stress *st;
    int id;
    int kind;
    int big; /* always asks for the whole size */
    int64_t rounds;
};

static void sx_sem_enter(struct sx_sem_stress *st, int64_t n)
{
    int64_t now = atomic_fetch_add(&st->inside, n) + n;
    EXPECT(now <= st->size, "%lld units held of %lld", (long long)now, (long long)st->size);
    int64_t mx = atomic_load(&st->max_inside);
    while (now > mx && !atomic_compare_exchange_weak(&st->max_inside, &mx, now))
        ;
}

static void sx_sem_stress_main(void *p)
{
    struct sx_sem_worker *w = p;
    struct sx_sem_stress *st = w->st;
    uint64_t seed = (uint64_t)w->id * 104729 + 1;
    goro_chan_t *cancel = goro_chan_new(0, 0);
    goro_chan_close(cancel);
    for (int i = 0; i < st->iters && !atomic_load(&st->stop); i++) {
        int64_t n = w->big ? st->size : 1 + (int64_t)(sx_rand(&seed) % (uint64_t)st->size);
        int how = w->big ? 0 : (int)(sx_rand(&seed) % 5);
        int r;
        switch (how) {
        case 0: r = goro_semaphore_acquire(st->sem, n); break;
        case 1: r = goro_semaphore_try_acquire(st->sem, n); break;
        case 2: /* a timeout that races with grants */
            r = goro_semaphore_acquire_select(st->sem, n, NULL, NULL,
                                              (int64_t)(sx_rand(&seed) % 50000));
            break;
        case 3: /* already cancelled: must fail, even if units are free */
            r = goro_semaphore_acquire_select(st->sem, n, cancel, NULL, GORO_FOREVER);
            EXPECT(r == GORO_CANCELED, "acquire with a closed cancel channel returned %d", r);
            break;
        default: r = goro_semaphore_acquire_select(st->sem, n, NULL, NULL, GORO_FOREVER); break;
        }
        if (r == GORO_CANCELED) { atomic_fetch_add(&st->canceled, 1); continue; }
        if (r == GORO_TIMEOUT) { atomic_fetch_add(&st->timedout, 1); continue; }
        if (r == GORO_WOULDBLOCK) { atomic_fetch_add(&st->wouldblock, 1); continue; }
        EXPECT(r == GORO_OK, "acquire returned %d", r);
        atomic_fetch_add(&st->ok, 1);
        sx_sem_enter(st, n);
        if (sx_rand(&seed) % 4 == 0)
            sx_yield(w->kind);
        atomic_fetch_sub(&st->inside, n);
        EXPECT(goro_semaphore_release(st->sem, n) == GORO_OK, "release");
        w->rounds++;
    }
    goro_chan_free(cancel);
}

/* Workers acquire random weights in every way (blocking, try, timeout,
 * cancelled), hold them briefly and release: the units held never exceed
 * size, and at the end nothing is held and nobody waits. With `big`, one
 * more goroutine asks for the whole size each time: it must get through
 * `iters` times while the others keep coming (no starvation). */
int64_t sx_sem_stress(int ngor, int nthreads, int64_t size, int iters, int big,
                      int64_t *max_inside, int64_t *counts)
{
    atomic_store(&sx_nerr, 0);
    struct sx_sem_stress *st = calloc(1, sizeof *st);
    st->sem = goro_semaphore_new(size);
    st->size = size;
    st->iters = iters;
    int n = ngor + nthreads + (big ? 1 : 0);
    struct sx_sem_worker *ws = calloc((size_t)n, sizeof *ws);
    goro_waitgroup_t wg = {0};
    for (int i = 0; i < n; i++) {
        ws[i] = (struct sx_sem_worker){st, i, i < ngor || i == n - 1 ? SX_GOROUTINE : SX_THREAD,
                                       big && i == n - 1, 0};
        sx_start(&wg, ws[i].kind, sx_sem_stress_main, &ws[i]);
    }
    goro_waitgroup_wait(&wg);
    *max_inside = atomic_load(&st->max_inside);
    counts[0] = atomic_load(&st->ok);
    counts[1] = atomic_load(&st->wouldblock);
    counts[2] = atomic_load(&st->timedout);
    counts[3] = atomic_load(&st->canceled);
    counts[4] = big ? ws[n - 1].rounds : 0;
    EXPECT(goro_semaphore_held(st->sem) == 0, "%lld units held at the end",
           (long long)goro_semaphore_held(st->sem));
    EXPECT(goro_semaphore_waiters(st->sem) == 0, "waiters left at the end");
    goro_semaphore_free(st->sem);
    free(ws);
    free(st);
    return atomic_load(&sx_nerr);
}

struct sx_cancel {
    goro_semaphore_t *sem;
    goro_chan_t *cancel;
    int64_t timeout;
    _Atomic int result_a;
    _Atomic int b_done;
};

static void sx_cancel_a_main(void *p)
{
    struct sx_cancel *c = p;
    atomic_store(&c->result_a, goro_semaphore_acquire_select(c->sem, 10, c->cancel, NULL, c->timeout));
}

static void sx_cancel_b_main(void *p)
{
    struct sx_cancel *c = p;
    EXPECT(goro_semaphore_acquire(c->sem, 1) == GORO_OK, "B acquire");
    atomic_store(&c->b_done, 1);
}

/* Size 10 with 5 held: A asks for 10 (queues at the head), B for 1 (queues
 * behind A, though 5 are free). A's wait ends - its cancel channel closes
 * (timeout_ms 0) or its timeout expires - and B must then be served at
 * once, with no release to prompt it; A holds nothing. */
int64_t sx_sem_cancel(int kind, int64_t timeout_ms)
{
    atomic_store(&sx_nerr, 0);
    struct sx_cancel c = {goro_semaphore_new(10), goro_chan_new(0, 0),
                          timeout_ms ? timeout_ms * SX_MS : GORO_FOREVER, -1, 0};
    EXPECT(goro_semaphore_try_acquire(c.sem, 5) == GORO_OK, "hold 5");
    goro_waitgroup_t wg = {0};
    sx_start(&wg, kind, sx_cancel_a_main, &c);
    SX_AWAIT(goro_semaphore_waiters(c.sem) == 1, "A to queue");
    sx_start(&wg, kind, sx_cancel_b_main, &c);
    SX_AWAIT(goro_semaphore_waiters(c.sem) == 2, "B to queue");
    EXPECT(goro_semaphore_held(c.sem) == 5, "B was served past A");
    if (timeout_ms == 0)
        goro_chan_close(c.cancel);
    goro_waitgroup_wait(&wg);
    int want = timeout_ms ? GORO_TIMEOUT : GORO_CANCELED;
    EXPECT(atomic_load(&c.result_a) == want, "A returned %d, not %d", atomic_load(&c.result_a), want);
    EXPECT(atomic_load(&c.b_done) == 1, "B not served");
    EXPECT(goro_semaphore_held(c.sem) == 6, "held %lld, not 6", (long long)goro_semaphore_held(c.sem));
    EXPECT(goro_semaphore_waiters(c.sem) == 0, "waiters left");
    EXPECT(goro_semaphore_release(c.sem, 6) == GORO_OK, "release 6");
    goro_semaphore_free(c.sem);
    goro_chan_free(c.cancel);
    return atomic_load(&sx_nerr);
}

struct sx_place {
    goro_semaphore_t *sem;
    _Atomic int order; /* 1: A was served first, 2: B was */
    _Atomic int a_requeued;
};

static void sx_place_a_main(void *p)
{
    struct sx_place *pl = p;
    uint64_t seq = 0;
    /* First wait ends (a timeout stands in for a signal), withdrawn. */
    int r = semaphore_acquire_select_seq(pl->sem, 1, NULL, NULL, 20 * SX_MS, &seq);
    EXPECT(r == GORO_TIMEOUT && seq != 0, "first wait: %d, seq %llu", r, (unsigned long long)seq);
    SX_AWAIT(goro_semaphore_waiters(pl->sem) == 1, "B to queue");
    atomic_store(&pl->a_requeued, 1);
    r = semaphore_acquire_select_seq(pl->sem, 1, NULL, NULL, GORO_FOREVER, &seq);
    EXPECT(r == GORO_OK, "retry: %d", r);
    int expected = 0;
    atomic_compare_exchange_strong(&pl->order, &expected, 1);
    goro_semaphore_release(pl->sem, 1);
}

static void sx_place_b_main(void *p)
{
    struct sx_place *pl = p;
    EXPECT(goro_semaphore_acquire(pl->sem, 1) == GORO_OK, "B acquire");
    int expected = 0;
    atomic_compare_exchange_strong(&pl->order, &expected, 2);
    goro_semaphore_release(pl->sem, 1);
}

/* A waits, gives up (its wait withdrawn), B queues, A retries with its
 * arrival number: A goes back in front of B and is served first. */
int64_t sx_sem_keep_place(int kind)
{
    atomic_store(&sx_nerr, 0);
    struct sx_place pl = {goro_semaphore_new(1), 0, 0};
    EXPECT(goro_semaphore_try_acquire(pl.sem, 1) == GORO_OK, "hold");
    goro_waitgroup_t wg = {0};
    sx_start(&wg, kind, sx_place_a_main, &pl);
    SX_AWAIT(goro_semaphore_waiters(pl.sem) == 1, "A to queue");
    sx_start(&wg, kind, sx_place_b_main, &pl);
    SX_AWAIT(atomic_load(&pl.a_requeued) && goro_semaphore_waiters(pl.sem) == 2,
             "A to queue again, with B");
    EXPECT(goro_semaphore_release(pl.sem, 1) == GORO_OK, "release");
    goro_waitgroup_wait(&wg);
    EXPECT(atomic_load(&pl.order) == 1, "B was served before A (order %d)",
           atomic_load(&pl.order));
    EXPECT(goro_semaphore_held(pl.sem) == 0, "held at the end");
    goro_semaphore_free(pl.sem);
    return atomic_load(&sx_nerr);
}

struct sx_sem_cost {
    int64_t iters;
    int64_t ns;
};

static void sx_sem_cost_main(void *p)
{
    struct sx_sem_cost *c = p;
    goro_semaphore_t *s = goro_semaphore_new(1);
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < c->iters; i++) {
        goro_semaphore_acquire(s, 1);
        goro_semaphore_release(s, 1);
    }
    c->ns = nanotime() - t0;
    goro_semaphore_free(s);
}

int64_t sx_sem_uncontended_ns(int64_t iters)
{
    struct sx_sem_cost c = {iters, 0};
    sx_run_as(SX_GOROUTINE, sx_sem_cost_main, &c);
    return c.ns;
}

/* ======================================================================== */
/* Atomics                                                                   */

struct sx_atomic_test {
    goro_atomic_int64_t added;
    goro_atomic_int64_t cased;
    goro_atomic_int64_t token; /* passed around by swap */
    _Atomic int64_t swapped_out;
    int64_t iters;
};

struct sx_atomic_worker {
    struct sx_atomic_test *t;
    int id;
    int kind;
};

static void sx_atomic_main(void *p)
{
    struct sx_atomic_worker *w = p;
    struct sx_atomic_test *t = w->t;
    int64_t out = 0;
    for (int64_t i = 0; i < t->iters; i++) {
        goro_atomic_int64_add(&t->added, 1);
        int64_t v = goro_atomic_int64_load(&t->cased);
        while (!goro_atomic_int64_cas(&t->cased, v, v + 2))
            v = goro_atomic_int64_load(&t->cased);
        /* Each worker swaps in values it owns (id, iteration); every value
         * put in must come out exactly once: sums balance. */
        out += goro_atomic_int64_swap(&t->token, (int64_t)w->id * 1000000 + i);
        if (i % 1024 == 0)
            sx_yield(w->kind);
    }
    atomic_fetch_add(&t->swapped_out, out);
}

/* ngor goroutines + nthreads pthreads: add(1), CAS-loop +2 and swap, iters
 * times each. The totals must be exact. */
int64_t sx_atomic_contention(int ngor, int nthreads, int64_t iters)
{
    atomic_store(&sx_nerr, 0);
    struct sx_atomic_test t = {.iters = iters};
    int n = ngor + nthreads;
    struct sx_atomic_worker *ws = calloc((size_t)n, sizeof *ws);
    goro_waitgroup_t wg = {0};
    int64_t put_in = 0;
    for (int i = 0; i < n; i++) {
        ws[i] = (struct sx_atomic_worker){&t, i, i < ngor ? SX_GOROUTINE : SX_THREAD};
        put_in += (int64_t)i * 1000000 * iters + iters * (iters - 1) / 2;
        sx_start(&wg, ws[i].kind, sx_atomic_main, &ws[i]);
    }
    goro_waitgroup_wait(&wg);
    int64_t total = (int64_t)n * iters;
    EXPECT(goro_atomic_int64_load(&t.added) == total, "add: %lld, not %lld",
           (long long)goro_atomic_int64_load(&t.added), (long long)total);
    EXPECT(goro_atomic_int64_load(&t.cased) == 2 * total, "cas loop: %lld, not %lld",
           (long long)goro_atomic_int64_load(&t.cased), (long long)(2 * total));
    int64_t out = atomic_load(&t.swapped_out) + goro_atomic_int64_load(&t.token);
    EXPECT(out == put_in, "swap: %lld came out, %lld went in", (long long)out, (long long)put_in);
    free(ws);
    return atomic_load(&sx_nerr);
}

int64_t sx_atomic_add_ns(int64_t iters)
{
    goro_atomic_int64_t a = {0};
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < iters; i++)
        goro_atomic_int64_add(&a, 1);
    int64_t ns = nanotime() - t0;
    return goro_atomic_int64_load(&a) == iters ? ns : -1;
}
