/* Randomized stress of channels, select, timers, Mutex and WaitGroup with
 * exact accounting of every value (tests/c/test_stress.py).
 *
 * The run is a sequence of rounds. A round makes a few channels (random
 * capacities, unbuffered ones included) and starts worker goroutines plus a
 * few pthreads; each worker draws operations at random from its own seeded
 * generator: blocking and non-blocking sends and receives, selects of 1-4
 * cases (some disabled) with a default, a timeout, a timer channel's case or
 * no way out, short-lived helper goroutines that make one blocking send,
 * Mutex-guarded increments, RWMutex readers checking that no write is seen
 * half-done (writers may park holding it), a Once per round, sleeps, yields, and rarely the close of a
 * channel, which is then replaced by a fresh one in its slot. A gomaxprocs
 * goroutine changes GOMAXPROCS between 1 and 4 every few milliseconds.
 *
 * Every value is a unique id. A send that returns OK marks the id `sent`, a
 * send that fails because the channel was closed marks it `failed` (provably
 * undelivered); a receive marks it `recvd` and complains if it was already
 * set. To end a round the driver sets `stop` and swaps every slot for a
 * closed sentinel, closing what it took out, so every blocked operation
 * returns; it waits for the workers and helpers (a WaitGroup), drains each
 * channel's buffer, and then checks: recvd == sent exactly, and failed ∩
 * recvd empty. Finally the goroutine count must come back to where it was.
 *
 * Determinism: the run's seed fixes every worker's choices (each worker has
 * its own generator); the interleaving is the scheduler's. Failures print
 * the seed and round. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pygoro.h"

#define MS 1000000LL
#define US 1000LL
#define NCHAN_MAX 16
#define NSTAT 16

/* indices of the out[] array reported to Python (see cdefs/stress.h) */
enum {
    ST_OPS, ST_SENT, ST_FAILED, ST_RECVD, ST_SELECTS, ST_NONE, ST_TIMER_FIRES,
    ST_CLOSES, ST_GOROUTINES, ST_THREADS, ST_PROCS_CHANGES, ST_ROUNDS,
    ST_MUTEX_ADDS, ST_DRAINED, ST_LEFTOVER, ST_ELAPSED_NS,
    /* kept per round only, not reported */
    ST_RW_WRITES, ST_ONCE_TRIES, NSTAT_ALL,
};

static _Atomic int64_t nerrors;
static uint64_t run_seed;
static _Atomic int run_round;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&nerrors, 1) < 10) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "stress (seed %llu, round %d): ", (unsigned long long)run_seed,
                atomic_load(&run_round));
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

/* splitmix64: seeds the per-worker generators from (seed, index) */
static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

struct rng {
    uint64_t s;
};

static uint32_t rnd(struct rng *r, uint32_t n)
{
    /* xorshift64*: fast, and plenty for choosing operations */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)(((r->s * 0x2545f4914f6cdd1dull) >> 32) % n);
}

/* ---- one round ---- */

struct bits {
    _Atomic uint64_t *w;
};

static bool bit_set(struct bits *b, int64_t v)
{
    uint64_t m = 1ull << (v % 64);
    return atomic_fetch_or_explicit(&b->w[v / 64], m, memory_order_relaxed) & m;
}

static bool bit_get(struct bits *b, int64_t v)
{
    return atomic_load_explicit(&b->w[v / 64], memory_order_relaxed) & (1ull << (v % 64));
}

struct round {
    int nchan;
    _Atomic(goro_chan_t *) slot[NCHAN_MAX];
    goro_chan_t *closed_sentinel;
    /* every channel made this round, freed at its end */
    pthread_mutex_t all_mu;
    goro_chan_t **all;
    int nall, allcap;
    _Atomic int stop;
    int64_t per;  /* ids per worker */
    int64_t nids;
    struct bits sent, failed, recvd;
    goro_waitgroup_t wg; /* workers, helpers, the gomaxprocs goroutine */
    goro_mutex_t mu;
    int64_t guarded;     /* under mu */
    goro_rwmutex_t rw;
    /* under rw; plain, so that TSAN checks the RWMutex's happens-before */
    int64_t pair[2]; /* equal whenever rw is not write-locked */
    goro_once_t once;
    _Atomic int64_t once_calls;
    int64_t stat[NSTAT_ALL]; /* summed by workers at their end, under all_mu */
    int max_procs;
};

struct worker {
    struct round *r;
    struct rng rng;
    int64_t next_id, end_id;
    int64_t stat[NSTAT_ALL];
};

struct helper {
    struct round *r;
    goro_chan_t *c;
    int64_t id;
};

static void round_add_chan(struct round *r, goro_chan_t *c)
{
    pthread_mutex_lock(&r->all_mu);
    if (r->nall == r->allcap) {
        r->allcap = r->allcap ? 2 * r->allcap : 64;
        r->all = realloc(r->all, sizeof *r->all * (size_t)r->allcap);
        if (!r->all)
            abort();
    }
    r->all[r->nall++] = c;
    pthread_mutex_unlock(&r->all_mu);
}

static size_t pick_cap(struct rng *g)
{
    static const size_t caps[] = {0, 0, 0, 1, 2, 4, 16, 128};
    return caps[rnd(g, sizeof caps / sizeof caps[0])];
}

static goro_chan_t *new_chan(struct round *r, struct rng *g)
{
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), pick_cap(g));
    if (!c)
        abort();
    round_add_chan(r, c);
    return c;
}

static void note_recv(struct round *r, int64_t v)
{
    if (v < 0 || v >= r->nids) {
        fail("received out-of-range value %lld", (long long)v);
        return;
    }
    if (bit_set(&r->recvd, v))
        fail("value %lld received twice", (long long)v);
}

static void note_send(struct round *r, int64_t id, int status, int64_t *stat)
{
    if (status == GORO_OK) {
        if (bit_set(&r->sent, id))
            fail("id %lld sent twice", (long long)id);
        stat[ST_SENT]++;
    } else if (status == GORO_CLOSED) {
        if (bit_set(&r->failed, id))
            fail("id %lld failed twice", (long long)id);
        stat[ST_FAILED]++;
    } else {
        fail("send returned %d", status);
    }
}

static goro_chan_t *pick_chan(struct worker *w)
{
    struct round *r = w->r;
    return atomic_load_explicit(&r->slot[rnd(&w->rng, (uint32_t)r->nchan)], memory_order_acquire);
}

/* Close the channel in a random slot and put a fresh one in its place. Only
 * the CAS winner closes, so a close never fails; a second close is checked
 * to report GORO_CLOSED. After stop the slot holds the sentinel and the CAS
 * fails: the fresh channel is then never published. */
static void replace_and_close(struct worker *w)
{
    struct round *r = w->r;
    int i = (int)rnd(&w->rng, (uint32_t)r->nchan);
    goro_chan_t *c = atomic_load_explicit(&r->slot[i], memory_order_acquire);
    if (c == r->closed_sentinel)
        return;
    goro_chan_t *nc = new_chan(r, &w->rng);
    if (!atomic_compare_exchange_strong_explicit(&r->slot[i], &c, nc, memory_order_acq_rel,
                                                 memory_order_acquire))
        return; /* nc stays in r->all, unused, freed at the end */
    if (goro_chan_close(c) != GORO_OK)
        fail("close of a channel only we close failed");
    if (goro_chan_close(c) != GORO_CLOSED)
        fail("second close did not report GORO_CLOSED");
    w->stat[ST_CLOSES]++;
}

static void helper_main(void *arg)
{
    struct helper *h = arg;
    int64_t stat[NSTAT_ALL] = {0};
    note_send(h->r, h->id, goro_chan_send(h->c, &h->id), stat);
    pthread_mutex_lock(&h->r->all_mu);
    h->r->stat[ST_SENT] += stat[ST_SENT];
    h->r->stat[ST_FAILED] += stat[ST_FAILED];
    pthread_mutex_unlock(&h->r->all_mu);
    struct round *r = h->r;
    free(h);
    goro_waitgroup_done(&r->wg);
}

static void do_select(struct worker *w)
{
    struct round *r = w->r;
    goro_select_case cases[5];
    int64_t vals[5];
    int64_t ids[5];
    int n = 1 + (int)rnd(&w->rng, 4);
    for (int i = 0; i < n; i++) {
        cases[i].c = rnd(&w->rng, 8) == 0 ? NULL : pick_chan(w);
        cases[i].recv_ok = false;
        ids[i] = -1;
        if (w->next_id < w->end_id && rnd(&w->rng, 2)) {
            cases[i].dir = GORO_SELECT_SEND;
            ids[i] = vals[i] = w->next_id++; /* unused if another case wins */
        } else {
            cases[i].dir = GORO_SELECT_RECV;
            vals[i] = -1;
        }
        cases[i].elem = &vals[i];
    }
    /* how it can end: default, a timeout, a timer channel, or only a case */
    int64_t timeout = GORO_FOREVER;
    goro_timer_t *t = NULL;
    goro_chan_t *tc = NULL;
    int64_t fired;
    switch (rnd(&w->rng, 4)) {
    case 0:
        timeout = 0;
        break;
    case 1:
        timeout = (int64_t)rnd(&w->rng, 300) * US;
        break;
    case 2:
        t = goro_timer_new((int64_t)rnd(&w->rng, 300) * US, 0);
        if (!t)
            abort();
        tc = cases[n].c = goro_timer_chan(t);
        cases[n].dir = GORO_SELECT_RECV;
        cases[n].elem = &fired;
        cases[n].recv_ok = false;
        n++;
        break;
    default:
        break;
    }
    int enabled = 0;
    for (int i = 0; i < n; i++)
        enabled += cases[i].c != NULL;
    if (enabled == 0 && timeout == GORO_FOREVER)
        timeout = 0; /* select {} with only nil cases would block forever */
    int k = goro_select(cases, n, timeout);
    w->stat[ST_SELECTS]++;
    if (t) {
        goro_timer_stop(t);
        goro_timer_free(t);
    }
    if (k == GORO_SELECT_NONE) {
        if (timeout == GORO_FOREVER)
            fail("select without timeout returned NONE");
        w->stat[ST_NONE]++;
        return;
    }
    if (k <= GORO_SELECT_CLOSED_BASE) {
        int i = GORO_SELECT_CLOSED_BASE - k;
        if (i < 0 || i >= n || cases[i].dir != GORO_SELECT_SEND || ids[i] < 0) {
            fail("select returned closed for case %d of %d", i, n);
            return;
        }
        note_send(r, ids[i], GORO_CLOSED, w->stat);
        return;
    }
    if (k < 0 || k >= n) {
        fail("select returned %d", k);
        return;
    }
    if (tc != NULL && cases[k].c == tc) {
        if (!cases[k].recv_ok)
            fail("timer channel case chosen but not ok");
        w->stat[ST_TIMER_FIRES]++;
        return;
    }
    if (cases[k].c == NULL)
        fail("select chose a disabled case");
    if (cases[k].dir == GORO_SELECT_SEND) {
        note_send(r, ids[k], GORO_OK, w->stat);
    } else if (cases[k].recv_ok) {
        note_recv(r, vals[k]);
        w->stat[ST_RECVD]++;
    }
}

static void once_fn(void *arg)
{
    atomic_fetch_add_explicit(&((struct round *)arg)->once_calls, 1, memory_order_relaxed);
}

static void rw_op(struct worker *w)
{
    struct round *r = w->r;
    if (rnd(&w->rng, 5) == 0) {
        goro_rwmutex_lock(&r->rw);
        r->pair[0]++;
        if (rnd(&w->rng, 4) == 0)
            goro_gosched(); /* hold it across a park */
        r->pair[1]++;
        if (goro_rwmutex_unlock(&r->rw) != GORO_OK)
            fail("rwmutex unlock");
        w->stat[ST_RW_WRITES]++;
    } else {
        goro_rwmutex_rlock(&r->rw);
        int64_t a = r->pair[0];
        if (rnd(&w->rng, 10) == 0)
            goro_gosched();
        int64_t b = r->pair[1];
        if (a != b || a != r->pair[0])
            fail("a reader saw a half-done write (%lld, %lld)", (long long)a, (long long)b);
        if (goro_rwmutex_runlock(&r->rw) != GORO_OK)
            fail("rwmutex runlock");
    }
    if (rnd(&w->rng, 20) == 0) {
        w->stat[ST_ONCE_TRIES]++;
        goro_once_do(&r->once, once_fn, r);
        if (atomic_load_explicit(&r->once_calls, memory_order_relaxed) != 1)
            fail("once_do returned before its function ran once");
    }
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    struct round *r = w->r;
    while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
        w->stat[ST_OPS]++;
        uint32_t op = rnd(&w->rng, 1000);
        bool have_id = w->next_id < w->end_id;
        if (op < 200 && have_id) { /* blocking send */
            int64_t id = w->next_id++;
            note_send(r, id, goro_chan_send(pick_chan(w), &id), w->stat);
        } else if (op < 300 && have_id) { /* try_send */
            int64_t id = w->next_id;
            int s = goro_chan_try_send(pick_chan(w), &id);
            if (s != GORO_WOULDBLOCK) {
                w->next_id++;
                note_send(r, id, s, w->stat);
            }
        } else if (op < 500) { /* blocking recv */
            int64_t v = -1;
            bool ok = true;
            if (goro_chan_recv(pick_chan(w), &v, &ok) != GORO_OK)
                fail("recv status");
            if (ok) {
                note_recv(r, v);
                w->stat[ST_RECVD]++;
            } else if (v != 0) {
                fail("recv from closed channel left %lld in elem", (long long)v);
            }
        } else if (op < 600) { /* try_recv */
            int64_t v = -1;
            bool ok = false;
            int s = goro_chan_try_recv(pick_chan(w), &v, &ok);
            if (s == GORO_OK && ok) {
                note_recv(r, v);
                w->stat[ST_RECVD]++;
            } else if (s != GORO_OK && s != GORO_WOULDBLOCK) {
                fail("try_recv status %d", s);
            }
        } else if (op < 850) {
            do_select(w);
        } else if (op < 880 && have_id) { /* a helper goroutine's one send */
            struct helper *h = xcalloc(1, sizeof *h);
            h->r = r;
            h->c = pick_chan(w);
            h->id = w->next_id++;
            if (goro_waitgroup_add(&r->wg, 1) != GORO_OK)
                fail("wg add");
            if (goro_go(helper_main, h) != GORO_OK)
                abort();
            w->stat[ST_GOROUTINES]++;
        } else if (op < 905) { /* RWMutex: readers never see a half-done write */
            rw_op(w);
        } else if (op < 930) { /* guarded increment */
            goro_mutex_lock(&r->mu);
            r->guarded++;
            goro_mutex_unlock(&r->mu);
            w->stat[ST_MUTEX_ADDS]++;
        } else if (op < 960) {
            goro_gosched();
        } else if (op < 990) {
            goro_sleep((int64_t)rnd(&w->rng, 200) * US);
        } else if (op < 993) {
            replace_and_close(w);
        }
    }
    pthread_mutex_lock(&r->all_mu);
    for (int i = 0; i < NSTAT_ALL; i++)
        r->stat[i] += w->stat[i];
    pthread_mutex_unlock(&r->all_mu);
    goro_waitgroup_done(&r->wg);
}

struct procs_changer {
    struct round *r;
    struct rng rng;
    int64_t changes;
};

static void procs_main(void *arg)
{
    struct procs_changer *p = arg;
    while (!atomic_load_explicit(&p->r->stop, memory_order_relaxed)) {
        goro_gomaxprocs(1 + (int)rnd(&p->rng, (uint32_t)p->r->max_procs));
        p->changes++;
        goro_sleep((1 + (int64_t)rnd(&p->rng, 5)) * MS);
    }
    goro_waitgroup_done(&p->r->wg);
}

static void *thread_main(void *arg)
{
    worker_main(arg);
    return NULL;
}

/* Drain a closed channel's buffer: what is left was sent, so it counts. */
static int64_t drain(struct round *r, goro_chan_t *c)
{
    int64_t n = 0, v;
    bool ok;
    while (goro_chan_try_recv(c, &v, &ok) == GORO_OK && ok) {
        note_recv(r, v);
        n++;
    }
    return n;
}

/* Every id a worker (or its helpers) used lies in [its first id, next_id). */
static void check_round(struct round *r, struct worker *ws)
{
    int64_t lost = 0, ghost = 0, both = 0;
    for (int64_t v = 0; v < r->nids; v++) {
        struct worker *w = &ws[v / r->per];
        if (v >= w->next_id) {
            v = w->end_id - 1; /* skip the unused rest of its range */
            continue;
        }
        bool s = bit_get(&r->sent, v), f = bit_get(&r->failed, v), rv = bit_get(&r->recvd, v);
        if (s && !rv && lost++ < 3)
            fail("id %lld sent OK but never received", (long long)v);
        if (rv && !s && ghost++ < 3)
            fail("id %lld received but its send did not return OK%s", (long long)v,
                 f ? " (it returned CLOSED)" : "");
        if (s && f && both++ < 3)
            fail("id %lld both sent and failed", (long long)v);
    }
    if (r->pair[0] != r->stat[ST_RW_WRITES] || r->pair[1] != r->stat[ST_RW_WRITES])
        fail("rw-guarded pair (%lld, %lld), writes %lld", (long long)r->pair[0],
             (long long)r->pair[1], (long long)r->stat[ST_RW_WRITES]);
    if (atomic_load(&r->once_calls) != (r->stat[ST_ONCE_TRIES] > 0))
        fail("once ran %lld times after %lld tries", (long long)atomic_load(&r->once_calls),
             (long long)r->stat[ST_ONCE_TRIES]);
    if (r->guarded != r->stat[ST_MUTEX_ADDS])
        fail("mutex-guarded counter %lld, increments %lld", (long long)r->guarded,
             (long long)r->stat[ST_MUTEX_ADDS]);
}

static void run_round_(uint64_t seed, int nworkers, int nthreads, int max_procs, int64_t ns,
                       int64_t *out)
{
    struct rng g = {splitmix(seed) | 1};
    struct round *r = xcalloc(1, sizeof *r);
    pthread_mutex_init(&r->all_mu, NULL);
    r->max_procs = max_procs;
    r->nchan = 1 + (int)rnd(&g, NCHAN_MAX);
    r->closed_sentinel = goro_chan_new(sizeof(int64_t), 0);
    goro_chan_close(r->closed_sentinel);
    for (int i = 0; i < r->nchan; i++)
        atomic_store(&r->slot[i], new_chan(r, &g));
    int nw = nworkers + nthreads;
    /* 16M ids a round (2 MiB per bitmap), shared out among the workers */
    r->per = ((int64_t)1 << 24) / nw;
    r->nids = r->per * nw;
    size_t words = (size_t)((r->nids + 63) / 64);
    r->sent.w = xcalloc(words, sizeof(uint64_t));
    r->failed.w = xcalloc(words, sizeof(uint64_t));
    r->recvd.w = xcalloc(words, sizeof(uint64_t));

    struct worker *ws = xcalloc((size_t)nw, sizeof *ws);
    pthread_t *th = xcalloc((size_t)(nthreads ? nthreads : 1), sizeof *th);
    struct procs_changer pc = {r, {splitmix(seed ^ 0x5eed) | 1}, 0};
    goro_waitgroup_add(&r->wg, nw + 1);
    for (int i = 0; i < nw; i++) {
        ws[i].r = r;
        ws[i].rng.s = splitmix(seed + 1 + (uint64_t)i) | 1;
        ws[i].next_id = r->per * i;
        ws[i].end_id = r->per * (i + 1);
        if (i < nworkers) {
            if (goro_go(worker_main, &ws[i]) != GORO_OK)
                abort();
        } else if (pthread_create(&th[i - nworkers], NULL, thread_main, &ws[i]) != 0) {
            abort();
        }
    }
    if (goro_go(procs_main, &pc) != GORO_OK)
        abort();
    goro_sleep(ns);

    atomic_store(&r->stop, 1);
    for (int i = 0; i < r->nchan; i++) {
        goro_chan_t *c = atomic_exchange(&r->slot[i], r->closed_sentinel);
        goro_chan_close(c); /* GORO_CLOSED if a worker closed it first: fine */
    }
    /* channels replaced earlier were closed by their replacer; unpublished
     * ones (lost CAS) are open but nobody ever saw them */
    goro_waitgroup_wait(&r->wg);
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < r->nall; i++) {
        r->stat[ST_DRAINED] += drain(r, r->all[i]);
        goro_chan_free(r->all[i]);
    }
    goro_chan_free(r->closed_sentinel);
    check_round(r, ws);

    for (int i = 0; i < NSTAT; i++)
        out[i] += r->stat[i];
    out[ST_RECVD] += r->stat[ST_DRAINED];
    out[ST_GOROUTINES] += nworkers + 1;
    out[ST_THREADS] += nthreads;
    out[ST_PROCS_CHANGES] += pc.changes;
    out[ST_ROUNDS]++;
    free(ws);
    free(th);
    free(r->sent.w);
    free(r->failed.w);
    free(r->recvd.w);
    free(r->all);
    pthread_mutex_destroy(&r->all_mu);
    free(r);
}

/* The whole run: rounds of random size and length (up to max_round_ns)
 * until duration_ns has passed. max_workers bounds the goroutine workers of
 * a round (one round in eight uses that many, the rest fewer), max_threads
 * the pthreads. out has NSTAT slots (see the enum above). Returns the number
 * of violations. */
int64_t stress_run(uint64_t seed, int64_t duration_ns, int64_t max_round_ns, int max_workers,
                   int max_threads, int max_procs, int64_t *out)
{
    atomic_store(&nerrors, 0);
    run_seed = seed;
    memset(out, 0, sizeof(int64_t) * NSTAT);
    struct rng g = {splitmix(seed) | 1};
    int orig_procs = goro_gomaxprocs(0);
    int64_t base = goro_num_goroutine();
    int64_t t0 = goro_nanotime();
    for (int round = 0; goro_nanotime() - t0 < duration_ns; round++) {
        atomic_store(&run_round, round);
        int nworkers = rnd(&g, 8) == 0 ? max_workers : 2 + (int)rnd(&g, (uint32_t)(max_workers / 4 + 1));
        int nthreads = (int)rnd(&g, (uint32_t)max_threads + 1);
        int64_t ns = max_round_ns / 10 + (int64_t)rnd(&g, 1000) * (max_round_ns / 1000);
        int64_t left = duration_ns - (goro_nanotime() - t0);
        if (ns > left)
            ns = left > 10 * MS ? left : 10 * MS;
        run_round_(splitmix(seed + 0x1000 * (uint64_t)(round + 1)), nworkers, nthreads,
                   max_procs, ns, out);
    }
    goro_gomaxprocs(orig_procs);
    /* workers exit right after their Done: wait for the count to settle */
    int64_t deadline = goro_nanotime() + 10000 * MS;
    while (goro_num_goroutine() != base && goro_nanotime() < deadline)
        goro_sleep(1 * MS);
    out[ST_LEFTOVER] = goro_num_goroutine() - base;
    if (out[ST_LEFTOVER] != 0)
        fail("%lld goroutines left behind", (long long)out[ST_LEFTOVER]);
    out[ST_ELAPSED_NS] = goro_nanotime() - t0;
    return atomic_load(&nerrors);
}
