/* C-side drivers for the sync tests (tests/c/test_sync.py): the semaphore,
 * Mutex, RWMutex, WaitGroup, Once and Cond, driven by C goroutines and
 * plain pthreads at full parallelism (no GIL).
 *
 * Each driver checks what it can on the spot and returns the number of
 * violations it saw (0 = pass), printing the first few to stderr; measured
 * figures come back through out-parameters. Workers are joined through a
 * channel (not a WaitGroup: that is under test here), with a deadline: a
 * lost wakeup aborts the process with a message instead of hanging the test
 * run (carrying on would leave goroutines pointing into a returned frame). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/sema.h"

#define MS 1000000LL
#define SEC 1000000000LL
#define DEADLINE (60 * SEC)

static _Atomic int64_t nerrors;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&nerrors, 1) < 10) {
        va_list ap;
        va_start(ap, fmt);
        fputs("sync test: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

#define CHECK(cond, ...)       \
    do {                       \
        if (!(cond))           \
            fail(__VA_ARGS__); \
    } while (0)

static void reset_errors(void)
{
    atomic_store(&nerrors, 0);
}

static int64_t errors(void)
{
    return atomic_load(&nerrors);
}

static _Noreturn void stuck(const char *what)
{
    fprintf(stderr, "sync test: stuck for %lld s waiting for %s (lost wakeup?)\n",
            (long long)(DEADLINE / SEC), what);
    goro_dump(stderr); /* who is parked where: the log of a CI run shows it */
    fflush(stderr);
    abort();
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* Poll until cond holds; sleeping parks a goroutine, so this works at
 * GOMAXPROCS=1 too. */
#define WAIT_UNTIL(cond, what)                         \
    do {                                               \
        int64_t deadline_ = nanotime() + DEADLINE;     \
        while (!(cond)) {                              \
            if (nanotime() > deadline_)                \
                stuck(what);                           \
            goro_sleep(20000);                         \
        }                                              \
    } while (0)

static void spin_for(int64_t ns)
{
    int64_t end = nanotime() + ns;
    while (nanotime() < end)
        ;
}

/* ---- workers: goroutines or pthreads, joined through a channel ---- */

enum { GOROUTINE = 0, PTHREAD = 1 };

struct group {
    goro_chan_t *done; /* elemsize 0, one send per worker */
    int n;
};

static void group_init(struct group *g, int n)
{
    g->done = goro_chan_new(0, (size_t)n);
    g->n = 0;
}

static void group_done(struct group *g)
{
    CHECK(goro_chan_send(g->done, NULL) == GORO_OK, "group_done send");
}

struct thread_start {
    goro_fn fn;
    void *arg;
};

static void *thread_main(void *p)
{
    struct thread_start ts = *(struct thread_start *)p;
    free(p);
    ts.fn(ts.arg);
    return NULL;
}

/* Start fn(arg) as a goroutine or a detached pthread. */
static void spawn(int kind, goro_fn fn, void *arg)
{
    if (kind == GOROUTINE) {
        if (goro_go(fn, arg) != GORO_OK)
            abort();
        return;
    }
    struct thread_start *ts = xmalloc(sizeof *ts);
    ts->fn = fn;
    ts->arg = arg;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &a, thread_main, ts) != 0)
        abort();
    pthread_attr_destroy(&a);
}

static void group_go(struct group *g, int kind, goro_fn fn, void *arg)
{
    g->n++;
    spawn(kind, fn, arg);
}

static void group_wait(struct group *g)
{
    goro_select_case cs[1] = {{g->done, GORO_SELECT_RECV, NULL, false}};
    for (int i = 0; i < g->n; i++) {
        if (goro_select(cs, 1, DEADLINE) != 0)
            stuck("workers to finish");
    }
    goro_chan_free(g->done);
}

struct run_as_arg {
    goro_fn fn;
    void *arg;
    struct group g;
};

static void run_as_main(void *p)
{
    struct run_as_arg *a = p;
    a->fn(a->arg);
    group_done(&a->g);
}

/* Run fn(arg) as a goroutine (or on this thread) and wait for it. */
static void run_as(int kind, goro_fn fn, void *arg)
{
    if (kind == PTHREAD) {
        fn(arg);
        return;
    }
    struct run_as_arg a = {fn, arg, {NULL, 0}};
    group_init(&a.g, 1);
    group_go(&a.g, GOROUTINE, run_as_main, &a);
    group_wait(&a.g);
}

/* ======================================================================== */
/* Semaphore                                                                 */

struct sema_order {
    _Atomic uint32_t sema;
    _Atomic int next;  /* slot in order[] for the next G that gets through */
    _Atomic int *order; /* atomic: written after the slot is taken */
    struct group g;
};

struct sema_waiter {
    struct sema_order *so;
    int id;
};

static void sema_waiter_main(void *p)
{
    struct sema_waiter *w = p;
    goro_semacquire(&w->so->sema);
    int k = atomic_fetch_add(&w->so->next, 1);
    atomic_store(&w->so->order[k], w->id);
    group_done(&w->so->g);
}

/* n waiters (alternating goroutine / pthread when mixed) queue on one
 * semaphore one after another; n single releases must let them through in
 * the order they queued. */
int64_t sync_sema_fifo(int n, int mixed)
{
    reset_errors();
    struct sema_order so = {0};
    so.order = xmalloc(sizeof(_Atomic int) * (size_t)n);
    for (int i = 0; i < n; i++)
        atomic_store(&so.order[i], -1);
    struct sema_waiter *ws = xmalloc(sizeof *ws * (size_t)n);
    group_init(&so.g, n);
    for (int i = 0; i < n; i++) {
        ws[i].so = &so;
        ws[i].id = i;
        group_go(&so.g, mixed && (i & 1) ? PTHREAD : GOROUTINE, sema_waiter_main, &ws[i]);
        WAIT_UNTIL(sema_nwaiters(&so.sema) == i + 1, "a sema waiter to queue");
    }
    for (int i = 0; i < n; i++) {
        goro_semrelease(&so.sema, false);
        WAIT_UNTIL(atomic_load(&so.order[i]) != -1, "a released sema waiter");
        CHECK(atomic_load(&so.order[i]) == i, "release %d let waiter %d through (FIFO wants %d)",
              i, atomic_load(&so.order[i]), i);
    }
    group_wait(&so.g);
    CHECK(atomic_load(&so.sema) == 0, "count left %u", atomic_load(&so.sema));
    free((void *)so.order);
    free(ws);
    return errors();
}

/* A waiter woken by a plain release whose count a barger takes before it
 * runs goes back to the front of the queue, not the back. GOMAXPROCS=1
 * makes the interleaving deterministic: the woken waiter sits in the
 * releaser's runnext until the releaser yields. */
struct requeue {
    struct sema_order so;
};

static _Atomic int requeue_skipped;

static void requeue_driver(void *p)
{
    struct sema_order *so = p;
    /* waiters 0 and 1 are queued, in that order */
    goro_semrelease(&so->sema, false); /* wakes 0, count 1 */
    if (!sema_tryacquire(&so->sema)) {
        /* Waiter 0 ran on another P and took the count first: gomaxprocs 1
         * is not one P while sysmon has Ps lent (a P that looks stuck, as
         * under a sanitizer's slowness), so the round checks nothing. */
        atomic_fetch_add(&requeue_skipped, 1);
        goro_semrelease(&so->sema, false);
        WAIT_UNTIL(atomic_load(&so->order[1]) != -1, "the second waiter");
        return;
    }
    /* Let waiter 0 run: it finds no count and must queue again. */
    WAIT_UNTIL(sema_nwaiters(&so->sema) == 2, "the beaten waiter to queue again");
    goro_semrelease(&so->sema, false);
    WAIT_UNTIL(atomic_load(&so->order[0]) != -1, "the first waiter");
    CHECK(atomic_load(&so->order[0]) == 0, "beaten waiter 0 lost its place to waiter %d",
          atomic_load(&so->order[0]));
    goro_semrelease(&so->sema, false);
    WAIT_UNTIL(atomic_load(&so->order[1]) != -1, "the second waiter");
}

/* errors(), or minus the number of rounds not exercised (see above) */
int64_t sync_sema_requeue_front(int rounds)
{
    reset_errors();
    atomic_store(&requeue_skipped, 0);
    int old = goro_gomaxprocs(1);
    for (int r = 0; r < rounds; r++) {
        struct sema_order so = {0};
        _Atomic int order[2] = {-1, -1};
        so.order = order;
        struct sema_waiter ws[2] = {{&so, 0}, {&so, 1}};
        group_init(&so.g, 2);
        for (int i = 0; i < 2; i++) {
            group_go(&so.g, GOROUTINE, sema_waiter_main, &ws[i]);
            WAIT_UNTIL(sema_nwaiters(&so.sema) == i + 1, "a sema waiter to queue");
        }
        run_as(GOROUTINE, requeue_driver, &so);
        group_wait(&so.g);
    }
    goro_gomaxprocs(old);
    return errors() ? errors() : -(int64_t)atomic_load(&requeue_skipped);
}

/* Handoff: semrelease(handoff) gives the count to the waiter, so a barging
 * acquire right after it must fail, and (from a goroutine) the waiter runs
 * before the releaser continues. Without handoff the count is up for grabs
 * and the barger gets it. */
struct handoff {
    _Atomic uint32_t sema;
    _Atomic int ran;
    struct group g;
    bool handoff;
    int64_t waiter_first;
    int64_t barged;
};

static void handoff_waiter(void *p)
{
    struct handoff *h = p;
    goro_semacquire(&h->sema);
    atomic_store(&h->ran, 1);
    group_done(&h->g);
}

static void handoff_driver(void *p)
{
    struct handoff *h = p;
    WAIT_UNTIL(sema_nwaiters(&h->sema) == 1, "the handoff waiter to queue");
    goro_semrelease(&h->sema, h->handoff);
    bool got = sema_tryacquire(&h->sema);
    if (atomic_load(&h->ran))
        h->waiter_first++;
    if (h->handoff) {
        CHECK(!got, "acquired a count that was handed off");
    } else if (got) {
        /* Barged: the woken waiter finds nothing and queues again. */
        h->barged++;
        goro_semrelease(&h->sema, false);
    }
}

int64_t sync_sema_handoff(int rounds, int handoff, int driver_kind, int procs,
                          int64_t *waiter_first, int64_t *barged)
{
    reset_errors();
    int old = goro_gomaxprocs(procs);
    struct handoff h = {0};
    h.handoff = handoff != 0;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&h.ran, 0);
        group_init(&h.g, 1);
        group_go(&h.g, GOROUTINE, handoff_waiter, &h);
        run_as(driver_kind, handoff_driver, &h);
        group_wait(&h.g);
        CHECK(atomic_load(&h.sema) == 0, "count left %u", atomic_load(&h.sema));
    }
    goro_gomaxprocs(old);
    *waiter_first = h.waiter_first;
    *barged = h.barged;
    return errors();
}

/* Many goroutines and threads acquire and release one semaphore with count
 * k: never more than k inside at once, and no wakeup is lost. */
struct sema_stress {
    _Atomic uint32_t sema;
    uint32_t k;
    _Atomic int inside;
    _Atomic int max_inside;
    int64_t iters;
    struct group g;
};

static void sema_stress_main(void *p)
{
    struct sema_stress *s = p;
    for (int64_t i = 0; i < s->iters; i++) {
        goro_semacquire(&s->sema);
        int in = atomic_fetch_add(&s->inside, 1) + 1;
        CHECK(in <= (int)s->k, "%d inside a semaphore of %u", in, s->k);
        int m = atomic_load(&s->max_inside);
        while (in > m && !atomic_compare_exchange_weak(&s->max_inside, &m, in))
            ;
        if ((i & 15) == 0)
            goro_gosched();
        atomic_fetch_sub(&s->inside, 1);
        goro_semrelease(&s->sema, (i & 7) == 0);
    }
    group_done(&s->g);
}

int64_t sync_sema_stress(int ngor, int nthreads, uint32_t k, int64_t iters, int *max_inside)
{
    reset_errors();
    struct sema_stress s = {0};
    atomic_store(&s.sema, k);
    s.k = k;
    s.iters = iters;
    group_init(&s.g, ngor + nthreads);
    for (int i = 0; i < ngor + nthreads; i++)
        group_go(&s.g, i < ngor ? GOROUTINE : PTHREAD, sema_stress_main, &s);
    group_wait(&s.g);
    CHECK(atomic_load(&s.sema) == k, "count %u at the end, want %u", atomic_load(&s.sema), k);
    CHECK(sema_nwaiters(&s.sema) == 0, "waiters left");
    *max_inside = atomic_load(&s.max_inside);
    return errors();
}

/* ======================================================================== */
/* Mutex                                                                     */

int32_t sync_mutex_state(goro_mutex_t *m)
{
    return atomic_load(&m->state);
}

uint32_t sync_mutex_sema(goro_mutex_t *m)
{
    return atomic_load(&m->sema);
}

/* Put a quiet Mutex (nobody using it) into a given state, for tests of the
 * fast paths' guess that need a word with waiters counted. */
void sync_mutex_set(goro_mutex_t *m, int32_t state, uint32_t sema)
{
    atomic_store(&m->state, state);
    atomic_store(&m->sema, sema);
}

struct excl {
    goro_mutex_t mu;
    int64_t counter; /* plain: only the lock protects it */
    int64_t shadow;  /* plain: must always equal counter outside the lock */
    _Atomic int inside;
    int64_t iters;
    int use_trylock;
    _Atomic int64_t starving_seen;
    _Atomic int64_t trylock_wins;
    struct group g;
};

static void excl_main(void *p)
{
    struct excl *e = p;
    bool goroutine = in_goroutine();
    for (int64_t i = 0; i < e->iters; i++) {
        if (e->use_trylock && (i & 3) == 0) {
            while (!goro_mutex_trylock(&e->mu))
                goro_gosched();
            atomic_fetch_add_explicit(&e->trylock_wins, 1, memory_order_relaxed);
        } else {
            goro_mutex_lock(&e->mu);
        }
        CHECK(atomic_fetch_add_explicit(&e->inside, 1, memory_order_relaxed) == 0,
              "two holders inside the Mutex");
        if (atomic_load_explicit(&e->mu.state, memory_order_relaxed) & MUTEX_STARVING)
            atomic_fetch_add_explicit(&e->starving_seen, 1, memory_order_relaxed);
        CHECK(e->counter == e->shadow, "torn update seen: %lld != %lld", (long long)e->counter,
              (long long)e->shadow);
        e->counter++;
        /* Now and then hold the lock across a yield, so that others queue,
         * park and (sometimes) starve. */
        if (goroutine && (i & 63) == 0)
            goro_gosched();
        e->shadow++;
        atomic_fetch_sub_explicit(&e->inside, 1, memory_order_relaxed);
        CHECK(goro_mutex_unlock(&e->mu) == GORO_OK, "unlock of a held Mutex failed");
    }
    group_done(&e->g);
}

int64_t sync_mutex_exclusion(int ngor, int nthreads, int64_t iters, int use_trylock,
                             int64_t *counter, int64_t *starving_seen)
{
    reset_errors();
    struct excl *e = xmalloc(sizeof *e);
    e->iters = iters;
    e->use_trylock = use_trylock;
    group_init(&e->g, ngor + nthreads);
    for (int i = 0; i < ngor + nthreads; i++)
        group_go(&e->g, i < ngor ? GOROUTINE : PTHREAD, excl_main, e);
    group_wait(&e->g);
    *counter = e->counter;
    *starving_seen = atomic_load(&e->starving_seen);
    CHECK(atomic_load(&e->mu.state) == 0, "state %#x after all unlocked",
          (unsigned)atomic_load(&e->mu.state));
    CHECK(sema_nwaiters(&e->mu.sema) == 0, "waiters left on the Mutex");
    free(e);
    return errors();
}

/* Starvation: a hog re-locks in a tight loop, holding the lock nearly all
 * the time; a waiter takes the lock now and then. In normal mode the hog,
 * already running, wins nearly every race against the woken waiter; after
 * the waiter has waited 1 ms it switches the Mutex to starvation mode and
 * the hog's next unlock hands the lock over. Measures the waiter's waits.
 *
 * yield_every > 0: a goroutine hog yields (inside the lock, so the waiter
 * gains nothing from it) every that many rounds. 0 never yields: see
 * test_sync.py for why the tests avoid that for now. */
struct starve {
    goro_mutex_t mu;
    _Atomic int stop;
    int64_t hold_ns;
    int yield_every;
    int nsamples;
    int64_t *waits;
    _Atomic int64_t hog_rounds;
    int64_t starving_seen; /* waiter held the lock in starvation mode */
    int64_t max_overtaken;
    struct group g;
};

static void starve_hog(void *p)
{
    struct starve *s = p;
    bool goroutine = in_goroutine();
    int64_t n = 0;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        goro_mutex_lock(&s->mu);
        spin_for(s->hold_ns);
        if (goroutine && s->yield_every > 0 && ++n % s->yield_every == 0)
            goro_gosched();
        goro_mutex_unlock(&s->mu);
        atomic_fetch_add_explicit(&s->hog_rounds, 1, memory_order_relaxed);
    }
    group_done(&s->g);
}

static void starve_waiter(void *p)
{
    struct starve *s = p;
    /* let the hog get going */
    WAIT_UNTIL(atomic_load(&s->hog_rounds) > 100, "the hog to start");
    for (int i = 0; i < s->nsamples; i++) {
        int64_t t0 = nanotime();
        int64_t r0 = atomic_load_explicit(&s->hog_rounds, memory_order_relaxed);
        goro_mutex_lock(&s->mu);
        s->waits[i] = nanotime() - t0;
        /* Times the hog got the lock while we waited: unlike the wait, not
         * inflated when the OS takes the CPU from the hog's thread while it
         * holds the lock. */
        int64_t overtaken = atomic_load_explicit(&s->hog_rounds, memory_order_relaxed) - r0;
        if (overtaken > s->max_overtaken)
            s->max_overtaken = overtaken;
        if (atomic_load_explicit(&s->mu.state, memory_order_relaxed) & MUTEX_STARVING)
            s->starving_seen++;
        goro_mutex_unlock(&s->mu);
        goro_sleep(MS / 2);
    }
    atomic_store(&s->stop, 1);
    group_done(&s->g);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* waits_out[0..3]: max, median, 90th percentile wait (ns), and the most
 * hog rounds that completed during one wait. */
int64_t sync_mutex_starvation(int hog_kind, int waiter_kind, int64_t hold_ns, int yield_every,
                              int nsamples, int64_t *waits_out, int64_t *hog_rounds,
                              int64_t *starving_seen)
{
    reset_errors();
    struct starve *s = xmalloc(sizeof *s);
    s->hold_ns = hold_ns;
    s->yield_every = yield_every;
    s->nsamples = nsamples;
    s->waits = xmalloc(sizeof(int64_t) * (size_t)nsamples);
    group_init(&s->g, 2);
    group_go(&s->g, hog_kind, starve_hog, s);
    group_go(&s->g, waiter_kind, starve_waiter, s);
    group_wait(&s->g);
    qsort(s->waits, (size_t)nsamples, sizeof(int64_t), cmp_i64);
    waits_out[0] = s->waits[nsamples - 1];
    waits_out[1] = s->waits[nsamples / 2];
    waits_out[2] = s->waits[nsamples * 9 / 10];
    waits_out[3] = s->max_overtaken;
    *hog_rounds = atomic_load(&s->hog_rounds);
    *starving_seen = s->starving_seen;
    CHECK(atomic_load(&s->mu.state) == 0, "state %#x at the end", (unsigned)atomic_load(&s->mu.state));
    free(s->waits);
    free(s);
    return errors();
}

/* Normal mode barges: with a waiter parked (and not starving), the holder
 * unlocks and at once try-locks again: it wins, because the woken waiter
 * has to be scheduled before it can compete. */
struct barge {
    goro_mutex_t mu;
    _Atomic int got;
    int pairs;
    int64_t barged, tries;
    struct group g;
};

static void barge_waiter(void *p)
{
    struct barge *b = p;
    goro_mutex_lock(&b->mu);
    atomic_store(&b->got, 1);
    goro_mutex_unlock(&b->mu);
    group_done(&b->g);
}

static void barge_holder(void *p)
{
    struct barge *b = p;
    goro_mutex_lock(&b->mu);
    group_go(&b->g, GOROUTINE, barge_waiter, b);
    WAIT_UNTIL(sema_nwaiters(&b->mu.sema) == 1, "the Mutex waiter to park");
    /* The waiter has waited a few µs; all of this takes well under 1 ms. */
    for (int i = 0; i < b->pairs; i++) {
        goro_mutex_unlock(&b->mu);
        b->tries++;
        if (goro_mutex_trylock(&b->mu)) {
            b->barged++;
            continue;
        }
        goro_mutex_lock(&b->mu); /* the waiter got in first */
    }
    goro_mutex_unlock(&b->mu);
}

int64_t sync_mutex_barging(int rounds, int pairs, int holder_kind, int64_t *barged,
                           int64_t *tries)
{
    reset_errors();
    struct barge b = {0};
    b.pairs = pairs;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&b.got, 0);
        group_init(&b.g, 1);
        run_as(holder_kind, barge_holder, &b);
        group_wait(&b.g);
        CHECK(atomic_load(&b.got) == 1, "the waiter never got the Mutex");
        CHECK(atomic_load(&b.mu.state) == 0, "state %#x", (unsigned)atomic_load(&b.mu.state));
    }
    *barged = b.barged;
    *tries = b.tries;
    return errors();
}

/* Starvation mode hands off: once a waiter that waited over 1 ms has set
 * STARVING, Unlock gives it the lock, and the unlocker cannot take the
 * lock back before the waiter has had it. */
struct starve_handoff {
    goro_mutex_t mu;
    _Atomic int got;
    int64_t trylock_won_after;
    struct group g;
};

static void sh_waiter(void *p)
{
    struct starve_handoff *h = p;
    goro_mutex_lock(&h->mu);
    atomic_store(&h->got, 1);
    goro_mutex_unlock(&h->mu);
    group_done(&h->g);
}

static void sh_holder(void *p)
{
    struct starve_handoff *h = p;
    goro_mutex_lock(&h->mu);
    group_go(&h->g, GOROUTINE, sh_waiter, h);
    WAIT_UNTIL(sema_nwaiters(&h->mu.sema) == 1, "the Mutex waiter to park");
    goro_sleep(2 * MS); /* the waiter has now waited over 1 ms */
    /* Wake it (normal mode) and barge straight back in; the waiter finds
     * the lock taken, notices its wait and switches to starvation mode. */
    goro_mutex_unlock(&h->mu);
    if (!goro_mutex_trylock(&h->mu)) {
        /* It got in already (it ran on another P): nothing to test. */
        goro_mutex_lock(&h->mu);
    }
    if (atomic_load(&h->got)) {
        goro_mutex_unlock(&h->mu);
        return;
    }
    WAIT_UNTIL((atomic_load(&h->mu.state) & MUTEX_STARVING) != 0 && sema_nwaiters(&h->mu.sema) == 1,
               "the waiter to switch the Mutex to starvation mode");
    goro_mutex_unlock(&h->mu); /* hands off */
    if (goro_mutex_trylock(&h->mu)) {
        CHECK(atomic_load(&h->got) == 1, "unlocker re-took a Mutex in starvation mode");
        h->trylock_won_after++;
        goro_mutex_unlock(&h->mu);
    }
}

int64_t sync_mutex_starving_handoff(int rounds, int holder_kind, int64_t *tested)
{
    reset_errors();
    struct starve_handoff h = {0};
    int64_t n = 0;
    for (int r = 0; r < rounds; r++) {
        atomic_store(&h.got, 0);
        group_init(&h.g, 1);
        run_as(holder_kind, sh_holder, &h);
        group_wait(&h.g);
        CHECK(atomic_load(&h.got) == 1, "the waiter never got the Mutex");
        int32_t st = atomic_load(&h.mu.state);
        CHECK(st == 0, "state %#x at the end (starvation mode not left?)", (unsigned)st);
        n++;
    }
    *tested = n;
    return errors();
}

/* ns per uncontended lock+unlock pair. */
int64_t sync_mutex_uncontended_ns(int64_t iters)
{
    goro_mutex_t mu = GORO_MUTEX_INIT;
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < iters; i++) {
        goro_mutex_lock(&mu);
        goro_mutex_unlock(&mu);
    }
    return (nanotime() - t0) / (iters ? iters : 1);
}

/* ns per lock+unlock pair with n goroutines (or threads) hammering one
 * Mutex, each doing a little work inside. */
struct contend {
    goro_mutex_t mu;
    int64_t iters;
    int64_t counter;
    struct group g;
};

static void contend_main(void *p)
{
    struct contend *c = p;
    for (int64_t i = 0; i < c->iters; i++) {
        goro_mutex_lock(&c->mu);
        c->counter++;
        goro_mutex_unlock(&c->mu);
    }
    group_done(&c->g);
}

int64_t sync_mutex_contended_ns(int n, int kind, int64_t iters)
{
    reset_errors();
    struct contend *c = xmalloc(sizeof *c);
    c->iters = iters;
    group_init(&c->g, n);
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        group_go(&c->g, kind, contend_main, c);
    group_wait(&c->g);
    int64_t dt = nanotime() - t0;
    int64_t total = c->counter;
    free(c);
    if (total != iters * n) {
        fail("counter %lld, want %lld", (long long)total, (long long)(iters * n));
        return -1;
    }
    return dt / (total ? total : 1);
}

/* ns per uncontended rlock+runlock pair. */
int64_t sync_rw_uncontended_read_ns(int64_t iters)
{
    goro_rwmutex_t rw = {0};
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < iters; i++) {
        goro_rwmutex_rlock(&rw);
        goro_rwmutex_runlock(&rw);
    }
    return (nanotime() - t0) / (iters ? iters : 1);
}

/* ======================================================================== */
/* RWMutex                                                                   */

uint64_t sync_rw_state(goro_rwmutex_t *rw)
{
    return atomic_load(&rw->readers);
}

struct rw {
    goro_rwmutex_t rw;
    int64_t a, b; /* plain: writers bump both under the write lock */
    _Atomic int readers_in;
    _Atomic int writers_in;
    _Atomic int max_readers;
    int iters;
    int64_t read_hold_ns;
    _Atomic int64_t reads, writes;
    struct group g;
};

static void rw_reader(void *p)
{
    struct rw *s = p;
    for (int i = 0; i < s->iters; i++) {
        if ((i & 7) == 0) {
            while (!goro_rwmutex_tryrlock(&s->rw))
                goro_gosched();
        } else {
            goro_rwmutex_rlock(&s->rw);
        }
        int in = atomic_fetch_add(&s->readers_in, 1) + 1;
        int m = atomic_load(&s->max_readers);
        while (in > m && !atomic_compare_exchange_weak(&s->max_readers, &m, in))
            ;
        CHECK(atomic_load(&s->writers_in) == 0, "reader inside with a writer");
        CHECK(s->a == s->b, "reader saw a half-done write");
        if ((i & 15) == 0)
            goro_sleep(100000); /* park while holding the read lock */
        else
            spin_for(s->read_hold_ns);
        atomic_fetch_sub(&s->readers_in, 1);
        atomic_fetch_add_explicit(&s->reads, 1, memory_order_relaxed);
        CHECK(goro_rwmutex_runlock(&s->rw) == GORO_OK, "runlock of a held read lock failed");
    }
    group_done(&s->g);
}

static void rw_writer(void *p)
{
    struct rw *s = p;
    for (int i = 0; i < s->iters; i++) {
        if ((i & 7) == 0) {
            while (!goro_rwmutex_trylock(&s->rw))
                goro_sleep(10000);
        } else {
            goro_rwmutex_lock(&s->rw);
        }
        CHECK(atomic_fetch_add(&s->writers_in, 1) == 0, "two writers inside");
        CHECK(atomic_load(&s->readers_in) == 0, "writer inside with %d readers",
              atomic_load(&s->readers_in));
        s->a++;
        if ((i & 3) == 0)
            goro_gosched();
        s->b++;
        atomic_fetch_sub(&s->writers_in, 1);
        atomic_fetch_add_explicit(&s->writes, 1, memory_order_relaxed);
        CHECK(goro_rwmutex_unlock(&s->rw) == GORO_OK, "unlock of a write-held RWMutex failed");
        goro_sleep(50000);
    }
    group_done(&s->g);
}

int64_t sync_rw_readers_writers(int nreaders, int nwriters, int reader_threads, int iters,
                                int64_t read_hold_ns, int *max_readers, int64_t *writes)
{
    reset_errors();
    struct rw *s = xmalloc(sizeof *s);
    s->iters = iters;
    s->read_hold_ns = read_hold_ns;
    group_init(&s->g, nreaders + nwriters);
    for (int i = 0; i < nreaders; i++)
        group_go(&s->g, i < reader_threads ? PTHREAD : GOROUTINE, rw_reader, s);
    for (int i = 0; i < nwriters; i++)
        group_go(&s->g, GOROUTINE, rw_writer, s);
    group_wait(&s->g);
    *max_readers = atomic_load(&s->max_readers);
    *writes = s->a;
    CHECK(s->a == s->b && s->a == (int64_t)nwriters * iters, "a=%lld b=%lld, want %lld",
          (long long)s->a, (long long)s->b, (long long)nwriters * iters);
    CHECK(atomic_load(&s->rw.readers) == 0, "readers word %#llx at the end",
          (unsigned long long)atomic_load(&s->rw.readers));
    CHECK(atomic_load(&s->rw.w.state) == 0, "writer Mutex state %#x at the end",
          (unsigned)atomic_load(&s->rw.w.state));
    free(s);
    return errors();
}

/* A pending writer blocks new readers: with a reader inside, a writer
 * queues; a reader arriving after it must wait for the writer, which goes
 * first. Also checks that a misplaced runlock in that state (the writer
 * holds the lock, one reader is only queued) is refused and changes
 * nothing. */
struct wpend {
    goro_rwmutex_t rw;
    _Atomic int seq;
    _Atomic int writer_at, reader_at; /* seq values when each got in */
    _Atomic int writer_has;
    goro_chan_t *release_writer;
    struct group g;
};

static void wpend_writer(void *p)
{
    struct wpend *s = p;
    goro_rwmutex_lock(&s->rw);
    atomic_store(&s->writer_at, atomic_fetch_add(&s->seq, 1) + 1);
    atomic_store(&s->writer_has, 1);
    bool ok;
    CHECK(goro_chan_recv(s->release_writer, NULL, &ok) == GORO_OK, "release recv");
    CHECK(goro_rwmutex_unlock(&s->rw) == GORO_OK, "writer unlock");
    group_done(&s->g);
}

static void wpend_reader(void *p)
{
    struct wpend *s = p;
    goro_rwmutex_rlock(&s->rw);
    atomic_store(&s->reader_at, atomic_fetch_add(&s->seq, 1) + 1);
    CHECK(goro_rwmutex_runlock(&s->rw) == GORO_OK, "late reader runlock");
    group_done(&s->g);
}

int64_t sync_rw_writer_blocks_readers(int reader_kind)
{
    reset_errors();
    struct wpend *s = xmalloc(sizeof *s);
    s->release_writer = goro_chan_new(0, 1);
    group_init(&s->g, 2);
    goro_rwmutex_rlock(&s->rw); /* reader 1: this thread */
    group_go(&s->g, GOROUTINE, wpend_writer, s);
    WAIT_UNTIL((int64_t)atomic_load(&s->rw.readers) < 0, "the writer to announce itself");
    CHECK(!goro_rwmutex_tryrlock(&s->rw), "tryrlock succeeded with a writer pending");
    CHECK(!goro_rwmutex_trylock(&s->rw), "trylock succeeded with a writer pending");
    group_go(&s->g, reader_kind, wpend_reader, s);
    WAIT_UNTIL(sema_nwaiters(&s->rw.reader_sem) == 1, "the late reader to queue");
    goro_sleep(5 * MS);
    CHECK(atomic_load(&s->reader_at) == 0, "a reader got in past a pending writer");
    CHECK(atomic_load(&s->writer_at) == 0, "the writer got in past an active reader");
    CHECK(goro_rwmutex_unlock(&s->rw) == GORO_EMISUSE,
          "unlock while the writer still waits for readers was accepted");
    CHECK(goro_rwmutex_runlock(&s->rw) == GORO_OK, "reader 1 runlock");
    WAIT_UNTIL(atomic_load(&s->writer_has), "the writer to get in");
    /* The writer holds the lock; the only reader counted is queued. */
    uint64_t before = atomic_load(&s->rw.readers);
    CHECK(goro_rwmutex_runlock(&s->rw) == GORO_EMISUSE,
          "runlock with the write lock held was accepted");
    CHECK(atomic_load(&s->rw.readers) == before, "refused runlock changed the state");
    CHECK(goro_chan_send(s->release_writer, NULL) == GORO_OK, "release send");
    group_wait(&s->g);
    CHECK(atomic_load(&s->writer_at) == 1 && atomic_load(&s->reader_at) == 2,
          "order writer %d reader %d, want 1 2", atomic_load(&s->writer_at),
          atomic_load(&s->reader_at));
    CHECK(atomic_load(&s->rw.readers) == 0 && atomic_load(&s->rw.w.state) == 0,
          "state %#llx/%#x at the end", (unsigned long long)atomic_load(&s->rw.readers),
          (unsigned)atomic_load(&s->rw.w.state));
    goro_chan_free(s->release_writer);
    free(s);
    return errors();
}

/* ======================================================================== */
/* WaitGroup                                                                 */

uint64_t sync_wg_state(goro_waitgroup_t *wg)
{
    return atomic_load(&wg->state);
}

struct wgt {
    goro_waitgroup_t wg;
    _Atomic int64_t work;
    int64_t want;
    struct group waiters;
};

static void wg_worker(void *p)
{
    struct wgt *s = p;
    if (in_goroutine())
        goro_gosched();
    atomic_fetch_add_explicit(&s->work, 1, memory_order_relaxed);
    CHECK(goro_waitgroup_done(&s->wg) == GORO_OK, "done failed");
}

static void wg_waiter(void *p)
{
    struct wgt *s = p;
    CHECK(goro_waitgroup_wait(&s->wg) == GORO_OK, "wait reported misuse");
    CHECK(atomic_load_explicit(&s->work, memory_order_relaxed) == s->want,
          "wait returned after %lld of %lld Done", (long long)atomic_load(&s->work),
          (long long)s->want);
    group_done(&s->waiters);
}

/* rounds of: Add(n), n workers Done (goroutines, some threads), nwaiters
 * waiters (goroutines and threads) each check all work is done. */
int64_t sync_wg_rounds(int rounds, int nworkers, int nwaiters)
{
    reset_errors();
    struct wgt *s = xmalloc(sizeof *s);
    for (int r = 0; r < rounds; r++) {
        atomic_store(&s->work, 0);
        s->want = nworkers;
        CHECK(goro_waitgroup_add(&s->wg, nworkers) == GORO_OK, "add");
        group_init(&s->waiters, nwaiters);
        for (int i = 0; i < nwaiters; i++)
            group_go(&s->waiters, (i & 1) ? PTHREAD : GOROUTINE, wg_waiter, s);
        /* workers end with Done: the waiters are what we join */
        for (int i = 0; i < nworkers; i++)
            spawn((i % 8) == 7 ? PTHREAD : GOROUTINE, wg_worker, s);
        group_wait(&s->waiters);
        CHECK(atomic_load(&s->wg.state) == 0, "state %#llx after a round",
              (unsigned long long)atomic_load(&s->wg.state));
    }
    free(s);
    return errors();
}

/* Reuse before Wait returned: the Add that zeroes the counter wakes the
 * waiter, and an Add for the next round lands before the waiter has run.
 * At GOMAXPROCS=1 the waiter sits in the releaser's runnext until the
 * releaser parks, so this is deterministic. */
struct wg_reuse {
    goro_waitgroup_t wg;
    _Atomic int result;
    struct group g;
};

static void wg_reuse_waiter(void *p)
{
    struct wg_reuse *s = p;
    atomic_store(&s->result, goro_waitgroup_wait(&s->wg));
    group_done(&s->g);
}

static void wg_reuse_driver(void *p)
{
    struct wg_reuse *s = p;
    WAIT_UNTIL(sema_nwaiters(&s->wg.sema) == 1, "the WaitGroup waiter to park");
    CHECK(goro_waitgroup_done(&s->wg) == GORO_OK, "done");
    CHECK(goro_waitgroup_add(&s->wg, 1) == GORO_OK, "add for the next round");
    WAIT_UNTIL(atomic_load(&s->result) != -1, "the waiter to return");
    CHECK(goro_waitgroup_done(&s->wg) == GORO_OK, "done of the next round");
}

int64_t sync_wg_reuse_misuse(int *waiter_result)
{
    reset_errors();
    int old = goro_gomaxprocs(1);
    struct wg_reuse s = {0};
    atomic_store(&s.result, -1);
    CHECK(goro_waitgroup_add(&s.wg, 1) == GORO_OK, "add");
    group_init(&s.g, 1);
    group_go(&s.g, GOROUTINE, wg_reuse_waiter, &s);
    run_as(GOROUTINE, wg_reuse_driver, &s);
    group_wait(&s.g);
    goro_gomaxprocs(old);
    *waiter_result = atomic_load(&s.result);
    CHECK(atomic_load(&s.wg.state) == 0, "state %#llx at the end",
          (unsigned long long)atomic_load(&s.wg.state));
    return errors();
}

/* ======================================================================== */
/* Once                                                                      */

struct oncet {
    goro_once_t once;
    _Atomic int runs;
    _Atomic int finished;
    int64_t fn_ns;
    goro_chan_t *gate;
    struct group g;
};

static void once_fn(void *p)
{
    struct oncet *s = p;
    atomic_fetch_add(&s->runs, 1);
    goro_sleep(s->fn_ns);
    atomic_store(&s->finished, 1);
}

static void once_caller(void *p)
{
    struct oncet *s = p;
    bool ok;
    goro_chan_recv(s->gate, NULL, &ok); /* all start together */
    goro_once_do(&s->once, once_fn, s);
    CHECK(atomic_load(&s->finished) == 1, "once_do returned before fn finished");
    goro_once_do(&s->once, once_fn, s);
    group_done(&s->g);
}

int64_t sync_once(int ncallers, int nthreads, int64_t fn_ns, int *runs)
{
    reset_errors();
    struct oncet *s = xmalloc(sizeof *s);
    s->fn_ns = fn_ns;
    s->gate = goro_chan_new(0, 0);
    group_init(&s->g, ncallers);
    for (int i = 0; i < ncallers; i++)
        group_go(&s->g, i < nthreads ? PTHREAD : GOROUTINE, once_caller, s);
    goro_sleep(MS);
    goro_chan_close(s->gate);
    group_wait(&s->g);
    *runs = atomic_load(&s->runs);
    CHECK(atomic_load(&s->once.m.state) == 0, "Once's Mutex left in state %#x",
          (unsigned)atomic_load(&s->once.m.state));
    goro_chan_free(s->gate);
    free(s);
    return errors();
}

static void nop(void *p)
{
    (void)p;
}

/* ps (not ns) per goro_once_do once done (the fast path). */
int64_t sync_once_done_ps(int64_t iters)
{
    goro_once_t o = {0};
    goro_once_do(&o, nop, NULL);
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < iters; i++)
        goro_once_do(&o, nop, NULL);
    return (nanotime() - t0) * 1000 / (iters ? iters : 1);
}

/* ======================================================================== */
/* Cond                                                                      */

struct condt {
    goro_mutex_t mu;
    goro_cond_t *c;
    int flag;          /* under mu */
    int woken;         /* under mu */
    int *order;        /* under mu */
    struct group g;
};

struct cond_waiter {
    struct condt *s;
    int id;
};

/* Signal wakes waiters one at a time, in the order they began waiting. */
static void cond_order_waiter(void *p)
{
    struct cond_waiter *w = p;
    struct condt *s = w->s;
    goro_mutex_lock(&s->mu);
    CHECK(goro_cond_wait(s->c) == GORO_OK, "cond wait");
    s->order[s->woken++] = w->id;
    goro_mutex_unlock(&s->mu);
    group_done(&s->g);
}

static int locked_woken(struct condt *s)
{
    goro_mutex_lock(&s->mu);
    int n = s->woken;
    goro_mutex_unlock(&s->mu);
    return n;
}

int64_t sync_cond_signal_order(int n, int mixed)
{
    reset_errors();
    struct condt s = {0};
    s.c = goro_cond_new(&s.mu);
    s.order = xmalloc(sizeof(int) * (size_t)n);
    struct cond_waiter *ws = xmalloc(sizeof *ws * (size_t)n);
    group_init(&s.g, n);
    goro_cond_signal(s.c); /* no waiter: a no-op, not saved for later */
    for (int i = 0; i < n; i++) {
        ws[i].s = &s;
        ws[i].id = i;
        group_go(&s.g, mixed && (i & 1) ? PTHREAD : GOROUTINE, cond_order_waiter, &ws[i]);
        WAIT_UNTIL(cond_waiters(s.c) == (uint32_t)i + 1, "a Cond waiter");
    }
    for (int i = 0; i < n; i++) {
        goro_cond_signal(s.c);
        WAIT_UNTIL(locked_woken(&s) == i + 1, "a signalled Cond waiter");
        if (i < 3) {
            goro_sleep(2 * MS);
            CHECK(locked_woken(&s) == i + 1, "one Signal woke %d waiters", locked_woken(&s) - i);
        }
        CHECK(s.order[i] == i, "signal %d woke waiter %d (FIFO wants %d)", i, s.order[i], i);
    }
    group_wait(&s.g);
    goro_cond_free(s.c);
    free(s.order);
    free(ws);
    return errors();
}

static void cond_bcast_waiter(void *p)
{
    struct condt *s = p;
    goro_mutex_lock(&s->mu);
    while (!s->flag)
        CHECK(goro_cond_wait(s->c) == GORO_OK, "cond wait");
    s->woken++;
    goro_mutex_unlock(&s->mu);
    group_done(&s->g);
}

int64_t sync_cond_broadcast(int n, int nthreads)
{
    reset_errors();
    struct condt s = {0};
    s.c = goro_cond_new(&s.mu);
    group_init(&s.g, n);
    for (int i = 0; i < n; i++)
        group_go(&s.g, i < nthreads ? PTHREAD : GOROUTINE, cond_bcast_waiter, &s);
    WAIT_UNTIL(cond_waiters(s.c) == (uint32_t)n, "every Cond waiter");
    goro_mutex_lock(&s.mu);
    s.flag = 1;
    goro_cond_broadcast(s.c);
    goro_mutex_unlock(&s.mu);
    group_wait(&s.g);
    CHECK(s.woken == n, "broadcast woke %d of %d", s.woken, n);
    CHECK(cond_waiters(s.c) == 0, "tickets left");
    goro_cond_free(s.c);
    return errors();
}

/* A bounded queue on Mutex + two Conds (Signal only): producers and
 * consumers, goroutines and threads; every value arrives exactly once. A
 * lost Signal shows up as a stuck run. */
struct bq {
    goro_mutex_t mu;
    goro_cond_t *not_full, *not_empty;
    int64_t *buf;
    int cap, head, len;
    int64_t per;
    _Atomic uint8_t *seen;
    _Atomic int64_t received;
    struct group g;
};

struct bq_prod {
    struct bq *q;
    int64_t base;
};

static void bq_producer(void *p)
{
    struct bq_prod *pr = p;
    struct bq *q = pr->q;
    for (int64_t i = 0; i < q->per; i++) {
        goro_mutex_lock(&q->mu);
        while (q->len == q->cap)
            goro_cond_wait(q->not_full);
        q->buf[(q->head + q->len) % q->cap] = pr->base + i;
        q->len++;
        goro_cond_signal(q->not_empty);
        goro_mutex_unlock(&q->mu);
    }
    group_done(&q->g);
}

static void bq_consumer(void *p)
{
    struct bq *q = p;
    for (;;) {
        goro_mutex_lock(&q->mu);
        while (q->len == 0)
            goro_cond_wait(q->not_empty);
        int64_t v = q->buf[q->head];
        q->head = (q->head + 1) % q->cap;
        q->len--;
        goro_cond_signal(q->not_full);
        goro_mutex_unlock(&q->mu);
        if (v < 0)
            break; /* sentinel */
        CHECK(atomic_fetch_add(&q->seen[v], 1) == 0, "value %lld received twice", (long long)v);
        atomic_fetch_add(&q->received, 1);
    }
    group_done(&q->g);
}

int64_t sync_cond_queue(int nprod, int ncons, int64_t per, int cap, int nthreads, int64_t *received)
{
    reset_errors();
    struct bq *q = xmalloc(sizeof *q);
    q->not_full = goro_cond_new(&q->mu);
    q->not_empty = goro_cond_new(&q->mu);
    q->cap = cap;
    q->buf = xmalloc(sizeof(int64_t) * (size_t)cap);
    q->per = per;
    int64_t total = per * nprod;
    q->seen = xmalloc((size_t)total);
    struct bq_prod *prods = xmalloc(sizeof *prods * (size_t)nprod);
    group_init(&q->g, nprod + ncons);
    for (int i = 0; i < nprod; i++) {
        prods[i].q = q;
        prods[i].base = per * i;
        group_go(&q->g, i < nthreads ? PTHREAD : GOROUTINE, bq_producer, &prods[i]);
    }
    for (int i = 0; i < ncons; i++)
        group_go(&q->g, i < nthreads ? PTHREAD : GOROUTINE, bq_consumer, q);
    WAIT_UNTIL(atomic_load(&q->received) == total, "consumers to drain the queue");
    /* one sentinel per consumer */
    for (int i = 0; i < ncons; i++) {
        goro_mutex_lock(&q->mu);
        while (q->len == q->cap)
            goro_cond_wait(q->not_full);
        q->buf[(q->head + q->len) % q->cap] = -1;
        q->len++;
        goro_cond_signal(q->not_empty);
        goro_mutex_unlock(&q->mu);
    }
    group_wait(&q->g);
    *received = atomic_load(&q->received);
    int64_t missing = 0;
    for (int64_t v = 0; v < total; v++)
        missing += atomic_load(&q->seen[v]) != 1;
    CHECK(missing == 0, "%lld values lost or doubled", (long long)missing);
    goro_cond_free(q->not_full);
    goro_cond_free(q->not_empty);
    free(q->buf);
    free((void *)q->seen);
    free(prods);
    free(q);
    return errors();
}

uint32_t sync_cond_pending(goro_cond_t *c)
{
    return cond_waiters(c);
}

/* Gs parked on a Mutex's semaphore. */
int sync_mutex_waiters(goro_mutex_t *m)
{
    return sema_nwaiters(&m->sema);
}
