/* C-side drivers for the channel and select tests (tests/c/test_chan.py).
 *
 * Each driver runs C goroutines (and sometimes plain pthreads) at full
 * parallelism, checks what it can on the spot and returns the number of
 * violations it saw (0 = pass), printing the first few to stderr. Joins use
 * channels too: every worker sends on a `done` channel as its last act. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chan/chan.h"

static _Atomic int64_t nerrors;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    if (atomic_fetch_add(&nerrors, 1) < 10) {
        va_list ap;
        va_start(ap, fmt);
        fputs("chan test: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
}

#define CHECK(cond, ...)          \
    do {                          \
        if (!(cond))              \
            fail(__VA_ARGS__);    \
    } while (0)

static void reset_errors(void)
{
    atomic_store(&nerrors, 0);
}

static int64_t errors(void)
{
    return atomic_load(&nerrors);
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);
    if (!p)
        abort();
    return p;
}

/* ---- workers: goroutines or pthreads, joined through a channel ---- */

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

/* kind 0: goroutine, 1: pthread (detached: joined through g->done too) */
static void group_go(struct group *g, int kind, goro_fn fn, void *arg)
{
    g->n++;
    if (kind == 0) {
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

static void group_wait(struct group *g)
{
    for (int i = 0; i < g->n; i++) {
        bool ok;
        CHECK(goro_chan_recv(g->done, NULL, &ok) == GORO_OK && ok, "group_wait recv");
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

/* Runs fn(arg) in a goroutine and waits for it: lets a driver run its own
 * part as a goroutine rather than as this plain thread. */
static void run_as(int in_goroutine, goro_fn fn, void *arg)
{
    if (!in_goroutine) {
        fn(arg);
        return;
    }
    struct run_as_arg a = {fn, arg, {NULL, 0}};
    group_init(&a.g, 1);
    group_go(&a.g, 0, run_as_main, &a);
    group_wait(&a.g);
}

/* ---- exactly-once bookkeeping ---- */

struct tally {
    _Atomic uint64_t *bits;
    int64_t n;
    _Atomic int64_t count;
    _Atomic int64_t sum;
};

static void tally_init(struct tally *t, int64_t n)
{
    t->bits = xmalloc(sizeof(uint64_t) * (size_t)((n + 63) / 64));
    t->n = n;
    atomic_store(&t->count, 0);
    atomic_store(&t->sum, 0);
}

static void tally_add(struct tally *t, int64_t v)
{
    if (v < 0 || v >= t->n) {
        fail("received out-of-range value %lld", (long long)v);
        return;
    }
    uint64_t bit = 1ull << (v % 64);
    uint64_t old = atomic_fetch_or(&t->bits[v / 64], bit);
    CHECK(!(old & bit), "value %lld received twice", (long long)v);
    atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->sum, v, memory_order_relaxed);
}

/* Checks every value 0..n-1 arrived once; frees the bitmap. */
static void tally_finish(struct tally *t, int64_t *count, int64_t *sum)
{
    int64_t missing = 0;
    for (int64_t v = 0; v < t->n; v++)
        if (!(atomic_load(&t->bits[v / 64]) & (1ull << (v % 64))))
            missing++;
    CHECK(missing == 0, "%lld values never received", (long long)missing);
    int64_t want = t->n * (t->n - 1) / 2;
    CHECK(atomic_load(&t->count) == t->n, "count %lld, want %lld",
          (long long)atomic_load(&t->count), (long long)t->n);
    CHECK(atomic_load(&t->sum) == want, "sum %lld, want %lld", (long long)atomic_load(&t->sum),
          (long long)want);
    if (count)
        *count = atomic_load(&t->count);
    if (sum)
        *sum = atomic_load(&t->sum);
    free(t->bits);
}

/* Number of sudogs queued on q (under the channel lock). */
static int qlen(goro_chan_t *c, int send)
{
    rtlock_lock(&c->lock);
    int n = 0;
    for (struct sudog *s = send ? c->sendq.first : c->recvq.first; s; s = s->next)
        n++;
    rtlock_unlock(&c->lock);
    return n;
}

static void wait_qlen(goro_chan_t *c, int send, int n)
{
    int64_t deadline = nanotime() + 10LL * 1000000000;
    while (qlen(c, send) != n) {
        if (nanotime() > deadline) {
            fail("queue never reached %d waiters (has %d)", n, qlen(c, send));
            return;
        }
        usleep(200);
    }
}

/* Sleep ns in a select timeout on a channel nobody uses (exercises the
 * select timer path). */
static void nap(int64_t ns)
{
    goro_chan_t *never = goro_chan_new(0, 0);
    goro_select_case cs[1] = {{never, GORO_SELECT_RECV, NULL, false}};
    CHECK(goro_select(cs, 1, ns) == GORO_SELECT_NONE, "nap");
    goro_chan_free(never);
}

/* ======================================================================== */
/* Prime sieve: a chain of filter goroutines                                 */

struct sieve {
    goro_chan_t *quit; /* closed when the driver has its primes */
    struct group g;
};

struct sieve_stage {
    struct sieve *s;
    goro_chan_t *in;  /* NULL for the generator */
    goro_chan_t *out;
    int64_t prime;
};

/* Send v on out unless quit closes first. */
static bool sieve_send(struct sieve_stage *st, int64_t v)
{
    goro_select_case cs[2] = {
        {st->out, GORO_SELECT_SEND, &v, false},
        {st->s->quit, GORO_SELECT_RECV, NULL, false},
    };
    int r = goro_select(cs, 2, GORO_FOREVER);
    CHECK(r == 0 || r == 1, "sieve send select returned %d", r);
    return r == 0;
}

static void sieve_generate(void *arg)
{
    struct sieve_stage *st = arg;
    for (int64_t i = 2; sieve_send(st, i); i++)
        ;
    struct sieve *s = st->s;
    free(st);
    group_done(&s->g);
}

static void sieve_filter(void *arg)
{
    struct sieve_stage *st = arg;
    for (;;) {
        int64_t v = 0;
        goro_select_case cs[2] = {
            {st->in, GORO_SELECT_RECV, &v, false},
            {st->s->quit, GORO_SELECT_RECV, NULL, false},
        };
        int r = goro_select(cs, 2, GORO_FOREVER);
        if (r != 0)
            break;
        CHECK(cs[0].recv_ok, "sieve input closed");
        if (v % st->prime != 0 && !sieve_send(st, v))
            break;
    }
    struct sieve *s = st->s;
    free(st);
    group_done(&s->g);
}

struct sieve_run {
    int n;
    int64_t *out;
};

static void sieve_main(void *arg)
{
    struct sieve_run *run = arg;
    struct sieve s;
    s.quit = goro_chan_new(0, 0);
    group_init(&s.g, run->n + 1);
    goro_chan_t **chans = xmalloc(sizeof(goro_chan_t *) * (size_t)(run->n + 1));
    goro_chan_t *ch = goro_chan_new(sizeof(int64_t), 0);
    chans[0] = ch;
    struct sieve_stage *gen = xmalloc(sizeof *gen);
    gen->s = &s;
    gen->out = ch;
    group_go(&s.g, 0, sieve_generate, gen);
    for (int i = 0; i < run->n; i++) {
        int64_t p = 0;
        bool ok = false;
        CHECK(goro_chan_recv(ch, &p, &ok) == GORO_OK && ok, "sieve recv");
        run->out[i] = p;
        goro_chan_t *ch1 = goro_chan_new(sizeof(int64_t), 0);
        chans[i + 1] = ch1;
        struct sieve_stage *f = xmalloc(sizeof *f);
        f->s = &s;
        f->in = ch;
        f->out = ch1;
        f->prime = p;
        group_go(&s.g, 0, sieve_filter, f);
        ch = ch1;
    }
    CHECK(goro_chan_close(s.quit) == GORO_OK, "close quit");
    group_wait(&s.g);
    for (int i = 0; i <= run->n; i++)
        goro_chan_free(chans[i]);
    free(chans);
    goro_chan_free(s.quit);
}

int64_t chan_sieve(int n, int64_t *out, int in_goroutine)
{
    reset_errors();
    struct sieve_run run = {n, out};
    run_as(in_goroutine, sieve_main, &run);
    return errors();
}

/* ======================================================================== */
/* N senders, M receivers on one channel                                     */

struct mpmc {
    goro_chan_t *c;
    struct tally t;
    int64_t per;
    _Atomic int senders_left;
    _Atomic int next_id;
    struct group g;
};

static void mpmc_sender(void *arg)
{
    struct mpmc *m = arg;
    int64_t id = atomic_fetch_add(&m->next_id, 1);
    for (int64_t k = 0; k < m->per; k++) {
        int64_t v = id * m->per + k;
        CHECK(goro_chan_send(m->c, &v) == GORO_OK, "mpmc send failed");
    }
    if (atomic_fetch_sub(&m->senders_left, 1) == 1)
        CHECK(goro_chan_close(m->c) == GORO_OK, "mpmc close");
    group_done(&m->g);
}

static void mpmc_receiver(void *arg)
{
    struct mpmc *m = arg;
    for (;;) {
        int64_t v = -1;
        bool ok;
        CHECK(goro_chan_recv(m->c, &v, &ok) == GORO_OK, "mpmc recv");
        if (!ok) {
            CHECK(v == 0, "closed recv left %lld in elem", (long long)v);
            break;
        }
        tally_add(&m->t, v);
    }
    group_done(&m->g);
}

/* kinds: bit 0 = senders are pthreads, bit 1 = receivers are pthreads;
 * bit 2 = alternate (every other worker of each side the other kind). */
int64_t chan_mpmc(int nsend, int nrecv, int64_t per, int cap, int kinds, int64_t *count,
                  int64_t *sum)
{
    reset_errors();
    struct mpmc m;
    m.c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    m.per = per;
    tally_init(&m.t, nsend * per);
    atomic_store(&m.senders_left, nsend);
    atomic_store(&m.next_id, 0);
    group_init(&m.g, nsend + nrecv);
    int alt = (kinds & 4) != 0;
    for (int i = 0; i < nrecv; i++)
        group_go(&m.g, ((kinds >> 1) & 1) ^ (alt & i), mpmc_receiver, &m);
    for (int i = 0; i < nsend; i++)
        group_go(&m.g, (kinds & 1) ^ (alt & i), mpmc_sender, &m);
    group_wait(&m.g);
    tally_finish(&m.t, count, sum);
    CHECK(goro_chan_len(m.c) == 0, "len after drain");
    goro_chan_free(m.c);
    return errors();
}

/* FIFO: one sender, one receiver, values must arrive in order. */
struct fifo {
    goro_chan_t *c;
    int64_t n;
    struct group g;
};

static void fifo_sender(void *arg)
{
    struct fifo *f = arg;
    for (int64_t v = 0; v < f->n; v++)
        CHECK(goro_chan_send(f->c, &v) == GORO_OK, "fifo send");
    goro_chan_close(f->c);
    group_done(&f->g);
}

static void fifo_receiver(void *arg)
{
    struct fifo *f = arg;
    int64_t want = 0, v;
    bool ok;
    while (goro_chan_recv(f->c, &v, &ok) == GORO_OK && ok) {
        CHECK(v == want, "fifo got %lld, want %lld", (long long)v, (long long)want);
        want = v + 1;
    }
    CHECK(want == f->n, "fifo ended at %lld of %lld", (long long)want, (long long)f->n);
    group_done(&f->g);
}

int64_t chan_fifo(int64_t n, int cap)
{
    reset_errors();
    struct fifo f;
    f.c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    f.n = n;
    group_init(&f.g, 2);
    group_go(&f.g, 0, fifo_receiver, &f);
    group_go(&f.g, 0, fifo_sender, &f);
    group_wait(&f.g);
    goro_chan_free(f.c);
    return errors();
}

/* Blocked senders on a full buffered channel are served in FIFO order, and
 * a receiver takes the buffer head while the first waiting sender's value
 * moves into the buffer tail. Driven step by step from one thread. */
struct fifo_sender_arg {
    goro_chan_t *c;
    int64_t v;
    struct group *g;
};

static void one_send(void *arg)
{
    struct fifo_sender_arg *a = arg;
    CHECK(goro_chan_send(a->c, &a->v) == GORO_OK, "one_send");
    group_done(a->g);
}

int64_t chan_full_handoff(int cap, int nwaiters)
{
    reset_errors();
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    struct group g;
    group_init(&g, nwaiters);
    for (int64_t v = 0; v < cap; v++)
        CHECK(goro_chan_try_send(c, &v) == GORO_OK, "fill");
    int64_t v = 999;
    CHECK(goro_chan_try_send(c, &v) == GORO_WOULDBLOCK, "try_send on full");
    struct fifo_sender_arg *args = xmalloc(sizeof *args * (size_t)nwaiters);
    for (int i = 0; i < nwaiters; i++) {
        args[i].c = c;
        args[i].v = cap + i;
        args[i].g = &g;
        group_go(&g, 0, one_send, &args[i]);
        wait_qlen(c, 1, i + 1); /* enqueue one at a time: known order */
    }
    for (int64_t want = 0; want < cap + nwaiters; want++) {
        bool ok;
        int64_t got = -1;
        CHECK(goro_chan_recv(c, &got, &ok) == GORO_OK && ok, "recv");
        CHECK(got == want, "full handoff got %lld, want %lld", (long long)got, (long long)want);
        /* while waiters remain, each receive pulls one into the buffer */
        size_t expect_len = (size_t)(want < nwaiters ? cap : cap + nwaiters - want - 1);
        CHECK(goro_chan_len(c) == expect_len, "len %zu want %zu after %lld",
              goro_chan_len(c), expect_len, (long long)want);
    }
    group_wait(&g);
    free(args);
    goro_chan_free(c);
    return errors();
}

/* ======================================================================== */
/* Several senders and receivers selecting over several channels             */

struct selmp {
    goro_chan_t **chans;
    int nchans;
    int dup;           /* add channel 0 twice and a NULL case */
    int64_t per;
    struct tally t;
    _Atomic int senders_left;
    _Atomic int next_id;
    _Atomic int64_t chosen[64];
    struct group g;
};

static int selmp_cases(struct selmp *m, goro_select_case *cs, int dir, int64_t *elems)
{
    int n = 0;
    for (int i = 0; i < m->nchans; i++) {
        cs[n] = (goro_select_case){m->chans[i], dir, &elems[n], false};
        n++;
    }
    if (m->dup) {
        cs[n] = (goro_select_case){NULL, dir, &elems[n], false};
        n++;
        cs[n] = (goro_select_case){m->chans[0], dir, &elems[n], false};
        n++;
    }
    return n;
}

static void selmp_sender(void *arg)
{
    struct selmp *m = arg;
    int64_t id = atomic_fetch_add(&m->next_id, 1);
    goro_select_case cs[40];
    int64_t elems[40];
    int n = selmp_cases(m, cs, GORO_SELECT_SEND, elems);
    for (int64_t k = 0; k < m->per; k++) {
        int64_t v = id * m->per + k;
        for (int i = 0; i < n; i++)
            elems[i] = v;
        int r = goro_select(cs, n, GORO_FOREVER);
        CHECK(r >= 0 && r < n && cs[r].c != NULL, "sender select returned %d", r);
        if (r >= 0 && r < 64)
            atomic_fetch_add_explicit(&m->chosen[r], 1, memory_order_relaxed);
    }
    if (atomic_fetch_sub(&m->senders_left, 1) == 1)
        for (int i = 0; i < m->nchans; i++)
            CHECK(goro_chan_close(m->chans[i]) == GORO_OK, "close");
    group_done(&m->g);
}

static void selmp_receiver(void *arg)
{
    struct selmp *m = arg;
    goro_select_case cs[40];
    int64_t elems[40];
    int n = selmp_cases(m, cs, GORO_SELECT_RECV, elems);
    int live = 0;
    for (int i = 0; i < n; i++)
        live += cs[i].c != NULL;
    while (live > 0) {
        for (int i = 0; i < n; i++)
            elems[i] = -1;
        int r = goro_select(cs, n, GORO_FOREVER);
        if (r < 0 || r >= n || cs[r].c == NULL) {
            fail("receiver select returned %d", r);
            break;
        }
        if (!cs[r].recv_ok) {
            CHECK(elems[r] == 0, "closed case left %lld", (long long)elems[r]);
            cs[r].c = NULL; /* Go's nil-channel idiom: disable it */
            live--;
            continue;
        }
        tally_add(&m->t, elems[r]);
    }
    group_done(&m->g);
}

/* caps[i] is the capacity of channel i (nchans <= 32). */
int64_t chan_select_mpmc(int nchans, const int *caps, int nsend, int nrecv, int64_t per, int dup,
                         int kinds, int64_t *chosen_out)
{
    reset_errors();
    struct selmp *m = xmalloc(sizeof *m);
    m->nchans = nchans;
    m->dup = dup;
    m->per = per;
    m->chans = xmalloc(sizeof(goro_chan_t *) * (size_t)nchans);
    for (int i = 0; i < nchans; i++)
        m->chans[i] = goro_chan_new(sizeof(int64_t), (size_t)caps[i]);
    tally_init(&m->t, nsend * per);
    atomic_store(&m->senders_left, nsend);
    group_init(&m->g, nsend + nrecv);
    for (int i = 0; i < nrecv; i++)
        group_go(&m->g, (kinds >> 1) & 1 ? i & 1 : 0, selmp_receiver, m);
    for (int i = 0; i < nsend; i++)
        group_go(&m->g, (kinds & 1) ? i & 1 : 0, selmp_sender, m);
    group_wait(&m->g);
    tally_finish(&m->t, NULL, NULL);
    int ncases = nchans + (dup ? 2 : 0);
    for (int i = 0; i < ncases && i < 64; i++)
        chosen_out[i] = atomic_load(&m->chosen[i]);
    for (int i = 0; i < nchans; i++)
        goro_chan_free(m->chans[i]);
    free(m->chans);
    free(m);
    return errors();
}

/* Two goroutines each selecting {send on c, receive from c} on the same
 * unbuffered channel: every round pairs one's send with the other's
 * receive. */
struct pair {
    goro_chan_t *c;
    int64_t rounds;
    struct tally t;
    _Atomic int64_t sends;
    _Atomic int next_id;
    struct group g;
};

static void pair_worker(void *arg)
{
    struct pair *p = arg;
    int64_t id = atomic_fetch_add(&p->next_id, 1);
    int64_t sent = 0;
    for (int64_t k = 0; k < p->rounds; k++) {
        int64_t out = id * p->rounds + sent, in = -1;
        goro_select_case cs[2] = {
            {p->c, GORO_SELECT_SEND, &out, false},
            {p->c, GORO_SELECT_RECV, &in, false},
        };
        int r = goro_select(cs, 2, GORO_FOREVER);
        if (r == 0) {
            sent++;
            atomic_fetch_add(&p->sends, 1);
        } else if (r == 1 && cs[1].recv_ok) {
            tally_add(&p->t, in);
        } else {
            fail("pair select returned %d", r);
        }
    }
    group_done(&p->g);
}

/* Returns errors; *sends = number of completed sends (== receives). The
 * values received must be exactly the values sent: id*rounds + 0..sent-1. */
int64_t chan_select_same_chan(int64_t rounds, int64_t *sends)
{
    reset_errors();
    struct pair p;
    p.c = goro_chan_new(sizeof(int64_t), 0);
    p.rounds = rounds;
    tally_init(&p.t, 2 * rounds);
    atomic_store(&p.sends, 0);
    atomic_store(&p.next_id, 0);
    group_init(&p.g, 2);
    group_go(&p.g, 0, pair_worker, &p);
    group_go(&p.g, 0, pair_worker, &p);
    group_wait(&p.g);
    *sends = atomic_load(&p.sends);
    CHECK(*sends == rounds, "%lld sends in %lld rounds", (long long)*sends, (long long)rounds);
    CHECK(atomic_load(&p.t.count) == *sends, "received %lld of %lld",
          (long long)atomic_load(&p.t.count), (long long)*sends);
    free(p.t.bits);
    goro_chan_free(p.c);
    return errors();
}

/* ======================================================================== */
/* Fairness and the non-blocking paths                                       */

/* ncases recv cases on closed channels (always ready) plus NULL cases in
 * between; counts how often each case is chosen. */
int64_t chan_select_fairness(int iters, int nready, int64_t *counts)
{
    reset_errors();
    goro_chan_t *cl[16];
    goro_select_case cs[32];
    int n = 0;
    for (int i = 0; i < nready; i++) {
        cl[i] = goro_chan_new(sizeof(int64_t), 0);
        goro_chan_close(cl[i]);
        cs[n++] = (goro_select_case){NULL, GORO_SELECT_RECV, NULL, false};
        cs[n++] = (goro_select_case){cl[i], GORO_SELECT_RECV, NULL, false};
    }
    for (int i = 0; i < n; i++)
        counts[i] = 0;
    for (int k = 0; k < iters; k++) {
        int r = goro_select(cs, n, k & 1 ? 0 : GORO_FOREVER);
        if (r < 0 || r >= n) {
            fail("fairness select returned %d", r);
            continue;
        }
        CHECK(cs[r].c != NULL, "NULL case %d chosen", r);
        CHECK(!cs[r].recv_ok, "recv_ok on a closed channel");
        counts[r]++;
    }
    for (int i = 0; i < nready; i++)
        goro_chan_free(cl[i]);
    return errors();
}

/* Same with a mix of ready kinds: a buffered channel with a value, a send
 * to a buffered channel with room, a closed channel. */
int64_t chan_select_fairness_mixed(int iters, int64_t *counts)
{
    reset_errors();
    goro_chan_t *a = goro_chan_new(sizeof(int64_t), 1);
    goro_chan_t *b = goro_chan_new(sizeof(int64_t), 1);
    goro_chan_t *cl = goro_chan_new(sizeof(int64_t), 0);
    goro_chan_close(cl);
    counts[0] = counts[1] = counts[2] = 0;
    for (int k = 0; k < iters; k++) {
        int64_t one = 1, x = -1, y = 7;
        if (goro_chan_len(a) == 0)
            CHECK(goro_chan_try_send(a, &one) == GORO_OK, "refill a");
        if (goro_chan_len(b) == 1) {
            bool ok;
            CHECK(goro_chan_try_recv(b, &x, &ok) == GORO_OK && ok && x == 7, "drain b");
        }
        goro_select_case cs[3] = {
            {a, GORO_SELECT_RECV, &x, false},
            {b, GORO_SELECT_SEND, &y, false},
            {cl, GORO_SELECT_RECV, &x, false},
        };
        int r = goro_select(cs, 3, 0);
        if (r < 0 || r > 2) {
            fail("mixed select returned %d", r);
            continue;
        }
        if (r == 0)
            CHECK(cs[0].recv_ok && x == 1, "case 0 value");
        if (r == 2)
            CHECK(!cs[2].recv_ok && x == 0, "case 2 closed");
        counts[r]++;
    }
    goro_chan_free(a);
    goro_chan_free(b);
    goro_chan_free(cl);
    return errors();
}

/* ======================================================================== */
/* close                                                                     */

struct closer {
    goro_chan_t *r;   /* receivers block here */
    goro_chan_t *s;   /* senders block here (unbuffered, nobody receives) */
    goro_chan_t *other;  /* selectors also receive here: never ready */
    goro_chan_t *other2; /* and send here: never ready */
    _Atomic int64_t woken_recv, woken_send, woken_sel;
    struct group g;
};

static void close_receiver(void *arg)
{
    struct closer *c = arg;
    int64_t v = 12345;
    bool ok = true;
    int rc = goro_chan_recv(c->r, &v, &ok);
    CHECK(rc == GORO_OK && !ok && v == 0, "closed receiver: rc %d ok %d v %lld", rc, ok,
          (long long)v);
    atomic_fetch_add(&c->woken_recv, 1);
    group_done(&c->g);
}

static void close_sender(void *arg)
{
    struct closer *c = arg;
    int64_t v = 5;
    int rc = goro_chan_send(c->s, &v);
    CHECK(rc == GORO_CLOSED, "blocked sender on closed channel: rc %d", rc);
    atomic_fetch_add(&c->woken_send, 1);
    group_done(&c->g);
}

static void close_selector(void *arg)
{
    struct closer *c = arg;
    int64_t v = 777, w = 0, x = 9;
    goro_select_case cs[3] = {
        {c->other, GORO_SELECT_RECV, &w, false},
        {c->r, GORO_SELECT_RECV, &v, false},
        {c->other2, GORO_SELECT_SEND, &x, false},
    };
    int r = goro_select(cs, 3, GORO_FOREVER);
    CHECK(r == 1 && !cs[1].recv_ok && v == 0, "selector woken by close: %d ok %d v %lld", r,
          cs[1].recv_ok, (long long)v);
    /* a selecting sender on the closed channel fails with CLOSED_BASE - i */
    goro_select_case cs2[2] = {
        {c->other, GORO_SELECT_RECV, &w, false},
        {c->s, GORO_SELECT_SEND, &x, false},
    };
    r = goro_select(cs2, 2, GORO_FOREVER);
    CHECK(r == GORO_SELECT_CLOSED_BASE - 1, "select send on closed: %d", r);
    atomic_fetch_add(&c->woken_sel, 1);
    group_done(&c->g);
}

static void close_sel_sender(void *arg)
{
    struct closer *c = arg;
    int64_t x = 9, w;
    goro_select_case cs[2] = {
        {c->other, GORO_SELECT_RECV, &w, false},
        {c->s, GORO_SELECT_SEND, &x, false},
    };
    int r = goro_select(cs, 2, GORO_FOREVER);
    CHECK(r == GORO_SELECT_CLOSED_BASE - 1, "blocked select sender woken by close: %d", r);
    atomic_fetch_add(&c->woken_sel, 1);
    group_done(&c->g);
}

/* kinds as in chan_mpmc (bit 1: waiters are pthreads). */
int64_t chan_close_wakes(int nrecv, int nsend, int nsel, int kinds)
{
    reset_errors();
    struct closer c;
    memset(&c, 0, sizeof c);
    c.r = goro_chan_new(sizeof(int64_t), 0);
    c.s = goro_chan_new(sizeof(int64_t), 0);
    c.other = goro_chan_new(sizeof(int64_t), 0);
    c.other2 = goro_chan_new(sizeof(int64_t), 0);
    group_init(&c.g, nrecv + nsend + 2 * nsel);
    int k = (kinds >> 1) & 1;
    for (int i = 0; i < nrecv; i++)
        group_go(&c.g, k, close_receiver, &c);
    for (int i = 0; i < nsel; i++)
        group_go(&c.g, k, close_selector, &c);
    wait_qlen(c.r, 0, nrecv + nsel);
    for (int i = 0; i < nsend; i++)
        group_go(&c.g, k, close_sender, &c);
    for (int i = 0; i < nsel; i++)
        group_go(&c.g, k, close_sel_sender, &c);
    wait_qlen(c.s, 1, nsend + nsel);
    CHECK(atomic_load(&c.woken_recv) == 0 && atomic_load(&c.woken_send) == 0,
          "someone woke before close");
    CHECK(goro_chan_close(c.r) == GORO_OK, "close r");
    CHECK(goro_chan_close(c.s) == GORO_OK, "close s");
    CHECK(goro_chan_close(c.r) == GORO_CLOSED, "close of closed channel");
    CHECK(goro_chan_closed(c.r), "goro_chan_closed");
    group_wait(&c.g);
    CHECK(atomic_load(&c.woken_recv) == nrecv, "receivers woken %lld",
          (long long)atomic_load(&c.woken_recv));
    CHECK(atomic_load(&c.woken_send) == nsend, "senders woken %lld",
          (long long)atomic_load(&c.woken_send));
    CHECK(atomic_load(&c.woken_sel) == 2 * nsel, "selectors woken %lld",
          (long long)atomic_load(&c.woken_sel));
    /* every waiter withdrew from `other` */
    CHECK(qlen(c.other, 0) == 0 && qlen(c.other2, 1) == 0, "stale sudogs on other");
    /* later operations */
    int64_t v = 3;
    bool ok = true;
    CHECK(goro_chan_send(c.s, &v) == GORO_CLOSED, "send after close");
    CHECK(goro_chan_try_send(c.s, &v) == GORO_CLOSED, "try_send after close");
    CHECK(goro_chan_recv(c.r, &v, &ok) == GORO_OK && !ok && v == 0, "recv after close");
    v = 3;
    CHECK(goro_chan_try_recv(c.r, &v, &ok) == GORO_OK && !ok && v == 0, "try_recv after close");
    goro_chan_free(c.r);
    goro_chan_free(c.s);
    goro_chan_free(c.other);
    goro_chan_free(c.other2);
    return errors();
}

/* Close of a buffered channel with values in it: receivers drain the values
 * first, then see ok = false. */
int64_t chan_close_drains(int cap)
{
    reset_errors();
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    for (int64_t v = 1; v <= cap; v++)
        CHECK(goro_chan_send(c, &v) == GORO_OK, "fill");
    CHECK(goro_chan_close(c) == GORO_OK, "close");
    CHECK(goro_chan_len(c) == (size_t)cap, "len after close");
    for (int64_t want = 1; want <= cap; want++) {
        int64_t v = -1;
        bool ok = false;
        int rc = want & 1 ? goro_chan_recv(c, &v, &ok) : goro_chan_try_recv(c, &v, &ok);
        CHECK(rc == GORO_OK && ok && v == want, "drain %lld got %lld ok %d", (long long)want,
              (long long)v, ok);
    }
    int64_t v = -1;
    bool ok = true;
    CHECK(goro_chan_recv(c, &v, &ok) == GORO_OK && !ok && v == 0, "drained");
    goro_chan_free(c);
    return errors();
}

/* ======================================================================== */
/* Timeouts                                                                  */

/* select over empty channels with a timeout: returns the select result and
 * the elapsed ns. */
int chan_select_timeout(int64_t ns, int nchans, int64_t *elapsed)
{
    goro_chan_t *c[4];
    goro_select_case cs[4];
    int64_t v;
    for (int i = 0; i < nchans; i++) {
        c[i] = goro_chan_new(sizeof(int64_t), (size_t)i);
        cs[i] = (goro_select_case){c[i], GORO_SELECT_RECV, &v, false};
    }
    int64_t t0 = nanotime();
    int r = goro_select(cs, nchans, ns);
    *elapsed = nanotime() - t0;
    for (int i = 0; i < nchans; i++) {
        if (qlen(c[i], 0) != 0)
            r = -100; /* stale sudog */
        goro_chan_free(c[i]);
    }
    return r;
}

/* What a select writes into its cases' buffers: only the winning receive
 * case's. A losing or timed-out receive case's buffer is untouched, even
 * when it is also a send case's buffer (the C API reads a send's value at
 * the hand-over), and a receive case woken by close gets the zero value. */
struct buffers_peer {
    goro_chan_t *c;
    int close; /* else receive one value */
    int64_t got;
};

static void *buffers_peer_main(void *p)
{
    struct buffers_peer *b = p;
    usleep(20000); /* let the select park */
    if (b->close) {
        goro_chan_close(b->c);
    } else {
        bool ok = false;
        if (goro_chan_recv(b->c, &b->got, &ok) != GORO_OK || !ok)
            b->got = -1;
    }
    return NULL;
}

int64_t chan_select_buffers(void)
{
    reset_errors();
    goro_chan_t *a = goro_chan_new(sizeof(int64_t), 0);
    goro_chan_t *b = goro_chan_new(sizeof(int64_t), 0);
    int64_t v = 42;
    goro_select_case cs[2] = {{a, GORO_SELECT_RECV, &v, false}, {b, GORO_SELECT_SEND, &v, false}};

    /* timed out: the receive buffer keeps its value */
    CHECK(goro_select(cs, 1, 5 * 1000000) == GORO_SELECT_NONE && v == 42,
          "timed-out select changed its receive buffer to %lld", (long long)v);

    /* the send case wins while the receive case, same buffer, waits too */
    struct buffers_peer peer = {b, 0, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, buffers_peer_main, &peer) != 0)
        abort();
    int r = goro_select(cs, 2, GORO_FOREVER);
    pthread_join(t, NULL);
    CHECK(r == 1 && peer.got == 42 && v == 42,
          "send case of a shared buffer: select %d, receiver got %lld, buffer %lld", r,
          (long long)peer.got, (long long)v);

    /* a close wakes the receive case: zero value, recv_ok false */
    struct buffers_peer closer = {a, 1, 0};
    if (pthread_create(&t, NULL, buffers_peer_main, &closer) != 0)
        abort();
    cs[0].recv_ok = true;
    r = goro_select(cs, 1, 10000 * 1000000LL);
    pthread_join(t, NULL);
    CHECK(r == 0 && !cs[0].recv_ok && v == 0,
          "receive case woken by close: select %d, ok %d, value %lld", r, cs[0].recv_ok,
          (long long)v);
    goro_chan_free(a);
    goro_chan_free(b);
    return errors();
}

struct timeout_run {
    int64_t ns;
    int nchans;
    int64_t elapsed;
    int r;
};

static void timeout_main(void *arg)
{
    struct timeout_run *t = arg;
    t->r = chan_select_timeout(t->ns, t->nchans, &t->elapsed);
}

int chan_select_timeout_in_goroutine(int64_t ns, int nchans, int64_t *elapsed)
{
    struct timeout_run t = {ns, nchans, 0, 0};
    run_as(1, timeout_main, &t);
    *elapsed = t.elapsed;
    return t.r;
}

/* Receivers selecting with short timeouts race senders doing blocking
 * sends: every value must still arrive exactly once, whichever of timer and
 * case wins each race. */
struct trace {
    goro_chan_t *c[2];
    int64_t per;
    int64_t timeout;
    struct tally t;
    _Atomic int64_t timeouts;
    _Atomic int senders_left;
    _Atomic int next_id;
    struct group g;
};

static void trace_sender(void *arg)
{
    struct trace *t = arg;
    int64_t id = atomic_fetch_add(&t->next_id, 1);
    for (int64_t k = 0; k < t->per; k++) {
        int64_t v = id * t->per + k;
        CHECK(goro_chan_send(t->c[k & 1], &v) == GORO_OK, "trace send");
        if ((k & 15) == 0)
            nap(20000);
    }
    if (atomic_fetch_sub(&t->senders_left, 1) == 1) {
        goro_chan_close(t->c[0]);
        goro_chan_close(t->c[1]);
    }
    group_done(&t->g);
}

static void trace_receiver(void *arg)
{
    struct trace *t = arg;
    int64_t v[2];
    goro_select_case cs[2] = {
        {t->c[0], GORO_SELECT_RECV, &v[0], false},
        {t->c[1], GORO_SELECT_RECV, &v[1], false},
    };
    int live = 2;
    while (live) {
        int r = goro_select(cs, 2, t->timeout);
        if (r == GORO_SELECT_NONE) {
            atomic_fetch_add(&t->timeouts, 1);
            continue;
        }
        if (r < 0 || r > 1) {
            fail("trace select %d", r);
            break;
        }
        if (!cs[r].recv_ok) {
            cs[r].c = NULL;
            live--;
            continue;
        }
        tally_add(&t->t, v[r]);
    }
    group_done(&t->g);
}

int64_t chan_select_timeout_race(int nsend, int nrecv, int64_t per, int64_t timeout_ns,
                                 int64_t *timeouts)
{
    reset_errors();
    struct trace *t = xmalloc(sizeof *t);
    t->c[0] = goro_chan_new(sizeof(int64_t), 0);
    t->c[1] = goro_chan_new(sizeof(int64_t), 2);
    t->per = per;
    t->timeout = timeout_ns;
    tally_init(&t->t, nsend * per);
    atomic_store(&t->senders_left, nsend);
    group_init(&t->g, nsend + nrecv);
    for (int i = 0; i < nrecv; i++)
        group_go(&t->g, i & 1, trace_receiver, t); /* half pthreads */
    for (int i = 0; i < nsend; i++)
        group_go(&t->g, 0, trace_sender, t);
    group_wait(&t->g);
    tally_finish(&t->t, NULL, NULL);
    *timeouts = atomic_load(&t->timeouts);
    goro_chan_free(t->c[0]);
    goro_chan_free(t->c[1]);
    free(t);
    return errors();
}

/* ======================================================================== */
/* Elements: size 0, large, and chan_free_elems                              */

struct big {
    int64_t a[9];
};

static void big_sender(void *arg)
{
    goro_chan_t *c = arg;
    for (int64_t i = 0; i < 1000; i++) {
        struct big b;
        for (int j = 0; j < 9; j++)
            b.a[j] = i * 10 + j;
        CHECK(goro_chan_send(c, &b) == GORO_OK, "big send");
    }
    goro_chan_close(c);
}

int64_t chan_elems(void)
{
    reset_errors();
    /* elemsize 0: a semaphore of capacity 3 */
    goro_chan_t *z = goro_chan_new(0, 3);
    for (int i = 0; i < 3; i++)
        CHECK(goro_chan_try_send(z, NULL) == GORO_OK, "zero-size send");
    CHECK(goro_chan_try_send(z, NULL) == GORO_WOULDBLOCK, "zero-size full");
    CHECK(goro_chan_len(z) == 3 && goro_chan_cap(z) == 3 && goro_chan_elemsize(z) == 0, "z len");
    bool ok = false;
    CHECK(goro_chan_recv(z, NULL, &ok) == GORO_OK && ok, "zero-size recv");
    goro_chan_free(z);

    /* a 72-byte element through an unbuffered and a buffered channel */
    for (int cap = 0; cap <= 5; cap += 5) {
        goro_chan_t *c = goro_chan_new(sizeof(struct big), (size_t)cap);
        goro_go(big_sender, c);
        struct big b;
        int64_t i = 0;
        while (goro_chan_recv(c, &b, &ok) == GORO_OK && ok) {
            for (int j = 0; j < 9; j++)
                CHECK(b.a[j] == i * 10 + j, "big element %lld corrupted", (long long)i);
            i++;
        }
        for (int j = 0; j < 9; j++)
            CHECK(b.a[j] == 0, "closed big recv not zeroed");
        CHECK(i == 1000, "big count %lld", (long long)i);
        /* the sender may still be returning from close; it touches c no more */
        goro_chan_free(c);
    }
    return errors();
}

static void release_count(void *elem, void *ctx)
{
    int64_t *acc = ctx;
    acc[0] += 1;
    acc[1] += *(int64_t *)elem;
}

/* Buffer values with a wrapped ring, then release them: count and sum. */
int64_t chan_free_elems_check(int cap, int nput, int ntake, int64_t *released)
{
    reset_errors();
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    int64_t next_take = 0;
    for (int64_t v = 0; v < nput; v++) {
        if (goro_chan_len(c) == (size_t)cap) {
            int64_t x;
            bool ok;
            CHECK(goro_chan_try_recv(c, &x, &ok) == GORO_OK && x == next_take, "take");
            next_take++;
        }
        CHECK(goro_chan_try_send(c, &v) == GORO_OK, "put");
    }
    for (int i = 0; i < ntake; i++) {
        int64_t x;
        bool ok;
        CHECK(goro_chan_try_recv(c, &x, &ok) == GORO_OK && x == next_take, "take2");
        next_take++;
    }
    released[0] = released[1] = 0;
    chan_free_elems(c, release_count, released);
    CHECK(goro_chan_len(c) == 0, "len after free_elems");
    int64_t x;
    bool ok;
    CHECK(goro_chan_try_recv(c, &x, &ok) == GORO_WOULDBLOCK, "empty after free_elems");
    /* still usable */
    CHECK(goro_chan_try_send(c, &x) == GORO_OK, "send after free_elems");
    goro_chan_free(c);
    return errors();
}

/* ======================================================================== */
/* Interrupting a plain thread's wait                                        */

static void on_sigusr1(int sig)
{
    (void)sig;
}

static void install_sigusr1(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the futex wait returns EINTR */
    sigaction(SIGUSR1, &sa, NULL);
}

struct intr {
    goro_chan_t *c[2];
    int64_t n;
    int mode;             /* 0 recv, 1 select recv, 2 send, 3 select send */
    struct tally t;
    _Atomic int64_t interrupted;
    _Atomic int stop;
    _Atomic int ready;
    pthread_t victim;
    struct group g;
};

/* The interruptible side: receives (or sends) n values, retrying after
 * every interruption. */
static void *intr_victim(void *arg)
{
    struct intr *in = arg;
    goro_thread_set_interruptible(true);
    atomic_store(&in->ready, 1);
    int64_t k = 0;
    while (k < in->n) {
        int64_t v = in->mode >= 2 ? k : -1, w = -1;
        int rc;
        bool ok = true;
        goro_select_case cs[2] = {
            {in->c[0], in->mode == 3 ? GORO_SELECT_SEND : GORO_SELECT_RECV, &v, false},
            {in->c[1], GORO_SELECT_RECV, &w, false}, /* never ready */
        };
        switch (in->mode) {
        case 0:
            rc = goro_chan_recv(in->c[0], &v, &ok);
            rc = rc == GORO_INTERRUPTED ? -2 : (rc == GORO_OK ? 0 : -9);
            break;
        case 1:
            rc = goro_select(cs, 2, GORO_FOREVER);
            ok = cs[0].recv_ok;
            break;
        case 2:
            rc = goro_chan_send(in->c[0], &v);
            rc = rc == GORO_INTERRUPTED ? -2 : (rc == GORO_OK ? 0 : -9);
            break;
        default:
            rc = goro_select(cs, 2, GORO_FOREVER);
            break;
        }
        if (rc == -2) {
            atomic_fetch_add(&in->interrupted, 1);
            continue;
        }
        if (rc != 0) {
            fail("victim op returned %d", rc);
            break;
        }
        if (in->mode < 2) {
            CHECK(ok, "victim recv !ok");
            tally_add(&in->t, v);
        }
        k++;
    }
    goro_thread_set_interruptible(false);
    atomic_store(&in->stop, 1);
    return NULL;
}

static void intr_peer(void *arg)
{
    struct intr *in = arg;
    for (int64_t k = 0; k < in->n; k++) {
        if (in->mode < 2) {
            CHECK(goro_chan_send(in->c[0], &k) == GORO_OK, "peer send");
        } else {
            int64_t v = -1;
            bool ok;
            CHECK(goro_chan_recv(in->c[0], &v, &ok) == GORO_OK && ok, "peer recv");
            tally_add(&in->t, v);
        }
        /* let the victim fall asleep now and then */
        if ((k & 7) == 0)
            nap(30000);
    }
    group_done(&in->g);
}

static void *intr_signaller(void *arg)
{
    struct intr *in = arg;
    while (!atomic_load(&in->ready))
        usleep(10);
    while (!atomic_load(&in->stop)) {
        pthread_kill(in->victim, SIGUSR1);
        usleep(20 + (cheaprand() % 40));
    }
    return NULL;
}

int64_t chan_interrupt(int mode, int64_t n, int cap, int64_t *interrupted, int64_t *commits)
{
    reset_errors();
    install_sigusr1();
    struct intr *in = xmalloc(sizeof *in);
    in->c[0] = goro_chan_new(sizeof(int64_t), (size_t)cap);
    in->c[1] = goro_chan_new(sizeof(int64_t), 0);
    in->n = n;
    in->mode = mode;
    tally_init(&in->t, n);
    group_init(&in->g, 1);
    uint64_t commits0 = chan_interrupt_commits();
    if (pthread_create(&in->victim, NULL, intr_victim, in) != 0)
        abort();
    pthread_t sig;
    if (pthread_create(&sig, NULL, intr_signaller, in) != 0)
        abort();
    group_go(&in->g, 0, intr_peer, in);
    pthread_join(in->victim, NULL);
    pthread_join(sig, NULL);
    group_wait(&in->g);
    tally_finish(&in->t, NULL, NULL);
    CHECK(qlen(in->c[0], 0) == 0 && qlen(in->c[0], 1) == 0 && qlen(in->c[1], 0) == 0,
          "stale sudogs after interruptions");
    *interrupted = atomic_load(&in->interrupted);
    *commits = (int64_t)(chan_interrupt_commits() - commits0);
    goro_chan_free(in->c[0]);
    goro_chan_free(in->c[1]);
    free(in);
    return errors();
}

/* An interruptible thread blocked on a channel nobody touches: a signal
 * (or the runtime going idle) returns GORO_INTERRUPTED with nothing queued. */
struct lone {
    goro_chan_t *c;
    int mode;
    int rc;
    _Atomic int ready;
};

static void *lone_waiter(void *arg)
{
    struct lone *l = arg;
    goro_thread_set_interruptible(true);
    atomic_store(&l->ready, 1);
    int64_t v = 0;
    bool ok;
    goro_select_case cs[2] = {
        {l->c, GORO_SELECT_RECV, &v, false},
        {l->c, GORO_SELECT_SEND, &v, false},
    };
    switch (l->mode) {
    case 0:
        l->rc = goro_chan_recv(l->c, &v, &ok);
        break;
    case 1:
        l->rc = goro_chan_send(l->c, &v);
        break;
    case 2:
        l->rc = goro_select(cs, 2, GORO_FOREVER);
        break;
    case 3:
        l->rc = goro_chan_recv(NULL, &v, &ok);
        break;
    default:
        l->rc = goro_select(NULL, 0, GORO_FOREVER);
        break;
    }
    goro_thread_set_interruptible(false);
    return NULL;
}

int chan_interrupt_lone(int mode, int *queued_after)
{
    install_sigusr1();
    struct lone l = {goro_chan_new(sizeof(int64_t), 0), mode, 99, 0};
    pthread_t t;
    if (pthread_create(&t, NULL, lone_waiter, &l) != 0)
        abort();
    while (!atomic_load(&l.ready))
        usleep(10);
    if (mode <= 2)
        wait_qlen(l.c, mode == 1, 1);
    else
        usleep(20000);
    pthread_kill(t, SIGUSR1);
    pthread_join(t, NULL);
    *queued_after = qlen(l.c, 0) + qlen(l.c, 1);
    goro_chan_free(l.c);
    return l.rc;
}

/* ======================================================================== */
/* Speed (reported, not asserted)                                            */

struct pp {
    goro_chan_t *a, *b;
    int64_t iters;
    struct group g;
};

static void pp_echo(void *arg)
{
    struct pp *p = arg;
    int64_t v;
    bool ok;
    while (goro_chan_recv(p->a, &v, &ok) == GORO_OK && ok)
        goro_chan_send(p->b, &v);
    group_done(&p->g);
}

static void pp_main(void *arg)
{
    struct pp *p = arg;
    for (int64_t i = 0; i < p->iters; i++) {
        int64_t v = i;
        bool ok;
        goro_chan_send(p->a, &v);
        goro_chan_recv(p->b, &v, &ok);
        CHECK(v == i, "ping-pong value");
    }
    goro_chan_close(p->a);
    group_done(&p->g);
}

/* ns per unbuffered round trip between two goroutines. */
int64_t chan_pingpong(int64_t iters, int64_t *errs)
{
    reset_errors();
    struct pp p;
    p.a = goro_chan_new(sizeof(int64_t), 0);
    p.b = goro_chan_new(sizeof(int64_t), 0);
    p.iters = iters;
    group_init(&p.g, 2);
    int64_t t0 = nanotime();
    group_go(&p.g, 0, pp_echo, &p);
    group_go(&p.g, 0, pp_main, &p);
    group_wait(&p.g);
    int64_t dt = nanotime() - t0;
    goro_chan_free(p.a);
    goro_chan_free(p.b);
    *errs = errors();
    return dt / (iters ? iters : 1);
}

/* ns per failed try_recv on an empty channel (the lock-free path). */
int64_t chan_try_empty_cost(int64_t iters)
{
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), 4);
    int64_t v;
    bool ok;
    int64_t t0 = nanotime();
    for (int64_t i = 0; i < iters; i++)
        if (goro_chan_try_recv(c, &v, &ok) != GORO_WOULDBLOCK)
            abort();
    int64_t dt = nanotime() - t0;
    goro_chan_free(c);
    return dt / (iters ? iters : 1);
}
