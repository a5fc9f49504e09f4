/* C loops for the benchmark suite (benchmarks/): each function runs one
 * workload of the comparison table entirely in C goroutines, so no Python
 * cost is paid per iteration, and returns the elapsed nanoseconds for the
 * whole run (the caller divides by its operation count), or -1 on failure.
 *
 * Each mirrors the Go program in benchmarks/go/main.go line for line, so the
 * two rows measure the same thing. Joins use a goro_waitgroup_t: the caller
 * (a plain thread, cffi having released the GIL) waits on it. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pygoro.h"

/* ---- spawn + join ---- */

struct spawn_ctx {
    goro_waitgroup_t wg;
    int n;
};

static void spawn_child(void *arg)
{
    goro_waitgroup_done(&((struct spawn_ctx *)arg)->wg);
}

static void spawn_parent(void *arg)
{
    struct spawn_ctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        goro_waitgroup_add(&c->wg, 1);
        goro_go(spawn_child, c);
    }
    goro_waitgroup_done(&c->wg);
}

/* A goroutine starts n children, each of which only calls wg.Done; the
 * caller waits for all of them. */
int64_t bench_spawn_join(int n)
{
    struct spawn_ctx c;
    memset(&c, 0, sizeof c);
    c.n = n;
    int64_t t0 = goro_nanotime();
    goro_waitgroup_add(&c.wg, 1);
    goro_go(spawn_parent, &c);
    goro_waitgroup_wait(&c.wg);
    return goro_nanotime() - t0;
}

/* ---- unbuffered ping-pong ---- */

struct pingpong {
    goro_chan_t *ping, *pong;
    int64_t iters;
    goro_waitgroup_t wg;
    _Atomic int bad;
};

static void pp_echo(void *arg)
{
    struct pingpong *p = arg;
    int64_t v;
    bool ok;
    for (int64_t i = 0; i < p->iters; i++) {
        goro_chan_recv(p->ping, &v, &ok);
        v++;
        goro_chan_send(p->pong, &v);
    }
    goro_waitgroup_done(&p->wg);
}

static void pp_driver(void *arg)
{
    struct pingpong *p = arg;
    int64_t v = 0;
    bool ok;
    for (int64_t i = 0; i < p->iters; i++) {
        int64_t sent = v;
        goro_chan_send(p->ping, &v);
        goro_chan_recv(p->pong, &v, &ok);
        if (v != sent + 1)
            atomic_store(&p->bad, 1);
    }
    goro_waitgroup_done(&p->wg);
}

/* Two goroutines bounce a counter over two unbuffered channels: one
 * operation is a full round trip (2 sends, 2 receives, 2 switches). */
int64_t bench_pingpong(int64_t iters)
{
    struct pingpong p;
    memset(&p, 0, sizeof p);
    p.ping = goro_chan_new(sizeof(int64_t), 0);
    p.pong = goro_chan_new(sizeof(int64_t), 0);
    p.iters = iters;
    goro_waitgroup_add(&p.wg, 2);
    int64_t t0 = goro_nanotime();
    goro_go(pp_echo, &p);
    goro_go(pp_driver, &p);
    goro_waitgroup_wait(&p.wg);
    int64_t dt = goro_nanotime() - t0;
    goro_chan_free(p.ping);
    goro_chan_free(p.pong);
    return atomic_load(&p.bad) ? -1 : dt;
}

/* ---- buffered producer -> consumer ---- */

struct pipe {
    goro_chan_t *c;
    int64_t n;
    int64_t sum;
    goro_waitgroup_t wg;
};

static void pipe_producer(void *arg)
{
    struct pipe *p = arg;
    for (int64_t i = 0; i < p->n; i++)
        goro_chan_send(p->c, &i);
    goro_chan_close(p->c);
    goro_waitgroup_done(&p->wg);
}

static void pipe_consumer(void *arg)
{
    struct pipe *p = arg;
    int64_t v, sum = 0;
    bool ok;
    for (;;) {
        goro_chan_recv(p->c, &v, &ok);
        if (!ok)
            break;
        sum += v;
    }
    p->sum = sum;
    goro_waitgroup_done(&p->wg);
}

/* One producer sends n items on a channel of capacity cap and closes it;
 * one consumer ranges over it. One operation is one item. */
int64_t bench_buffered(int64_t n, int cap)
{
    struct pipe p;
    memset(&p, 0, sizeof p);
    p.c = goro_chan_new(sizeof(int64_t), (size_t)cap);
    p.n = n;
    goro_waitgroup_add(&p.wg, 2);
    int64_t t0 = goro_nanotime();
    goro_go(pipe_consumer, &p);
    goro_go(pipe_producer, &p);
    goro_waitgroup_wait(&p.wg);
    int64_t dt = goro_nanotime() - t0;
    goro_chan_free(p.c);
    return p.sum == n * (n - 1) / 2 ? dt : -1;
}

/* ---- single-goroutine loops: select, timers ---- */

struct sel {
    int64_t iters;
    int64_t bad;
    goro_waitgroup_t wg;
};

/* Run loop(&s) in one goroutine for iters iterations; elapsed ns, or -1 if
 * the loop counted a wrong result in s.bad. */
static int64_t in_goroutine(goro_fn loop, int64_t iters)
{
    struct sel s;
    memset(&s, 0, sizeof s);
    s.iters = iters;
    goro_waitgroup_add(&s.wg, 1);
    int64_t t0 = goro_nanotime();
    goro_go(loop, &s);
    goro_waitgroup_wait(&s.wg);
    int64_t dt = goro_nanotime() - t0;
    return s.bad ? -1 : dt;
}

static void select2_loop(void *arg)
{
    struct sel *s = arg;
    goro_chan_t *a = goro_chan_new(sizeof(int64_t), 1);
    goro_chan_t *b = goro_chan_new(sizeof(int64_t), 1);
    int64_t one = 1, two = 2, va = 0, vb = 0, v;
    bool ok;
    for (int64_t i = 0; i < s->iters; i++) {
        goro_chan_send(a, &one);
        goro_chan_send(b, &two);
        goro_select_case cases[2] = {
            {.c = a, .dir = GORO_SELECT_RECV, .elem = &va},
            {.c = b, .dir = GORO_SELECT_RECV, .elem = &vb},
        };
        int k = goro_select(cases, 2, -1);
        /* drain the other one, so both are empty for the next round */
        goro_chan_recv(k == 0 ? b : a, &v, &ok);
        if (k < 0 || k > 1)
            s->bad++;
    }
    goro_chan_free(a);
    goro_chan_free(b);
    goro_waitgroup_done(&s->wg);
}

/* In one goroutine: send on a and b (capacity 1), select a receive over
 * both, receive the other. One operation is that whole round (Go's row:
 * 2 sends + select + recv). */
int64_t bench_select2(int64_t iters)
{
    return in_goroutine(select2_loop, iters);
}

static void select_default_loop(void *arg)
{
    struct sel *s = arg;
    goro_chan_t *c = goro_chan_new(sizeof(int64_t), 0);
    int64_t v;
    for (int64_t i = 0; i < s->iters; i++) {
        goro_select_case cases[1] = {{.c = c, .dir = GORO_SELECT_RECV, .elem = &v}};
        if (goro_select(cases, 1, 0) != GORO_SELECT_NONE)
            s->bad++;
    }
    goro_chan_free(c);
    goro_waitgroup_done(&s->wg);
}

/* select { case <-c: default: } on an empty unbuffered channel. */
int64_t bench_select_default(int64_t iters)
{
    return in_goroutine(select_default_loop, iters);
}

/* ---- timers ---- */

static void timer_stop_loop(void *arg)
{
    struct sel *s = arg;
    for (int64_t i = 0; i < s->iters; i++) {
        goro_timer_t *t = goro_timer_new(3600LL * 1000000000LL, 0);
        if (!goro_timer_stop(t))
            s->bad++;
        goro_timer_free(t);
    }
    goro_waitgroup_done(&s->wg);
}

/* t := time.NewTimer(time.Hour); t.Stop() (plus the free Go's GC does). */
int64_t bench_timer_stop(int64_t iters)
{
    return in_goroutine(timer_stop_loop, iters);
}

struct sleepers {
    int64_t ns;
    goro_waitgroup_t wg;
};

static void sleeper(void *arg)
{
    struct sleepers *s = arg;
    goro_sleep(s->ns);
    goro_waitgroup_done(&s->wg);
}

/* n goroutines each sleep ns; the time until the last one is done. */
int64_t bench_sleepers(int n, int64_t ns)
{
    struct sleepers s;
    memset(&s, 0, sizeof s);
    s.ns = ns;
    goro_waitgroup_add(&s.wg, n);
    int64_t t0 = goro_nanotime();
    for (int i = 0; i < n; i++)
        goro_go(sleeper, &s);
    goro_waitgroup_wait(&s.wg);
    return goro_nanotime() - t0;
}

/* ---- mutex ---- */

struct mu {
    goro_mutex_t m;
    int64_t iters;
    int64_t counter;
    goro_waitgroup_t wg;
};

static void mutex_loop(void *arg)
{
    struct mu *m = arg;
    /* A local copy, as Go's closure captures its count by value: reading
     * it through m would touch the mutex's contended line every loop. */
    int64_t iters = m->iters;
    for (int64_t i = 0; i < iters; i++) {
        goro_mutex_lock(&m->m);
        m->counter++;
        goro_mutex_unlock(&m->m);
    }
    goro_waitgroup_done(&m->wg);
}

/* n goroutines each lock, increment, unlock iters times (n = 1:
 * uncontended). Returns elapsed ns; operations = n * iters. */
int64_t bench_mutex(int n, int64_t iters)
{
    struct mu m;
    memset(&m, 0, sizeof m);
    m.iters = iters;
    goro_waitgroup_add(&m.wg, n);
    int64_t t0 = goro_nanotime();
    for (int i = 0; i < n; i++)
        goro_go(mutex_loop, &m);
    goro_waitgroup_wait(&m.wg);
    int64_t dt = goro_nanotime() - t0;
    return m.counter == n * iters ? dt : -1;
}

/* ---- a bystander beside a contended mutex ---- */

struct bystander {
    int64_t sleep_ns;
    int64_t *late;
    int max, n;
    _Atomic int stop;
    goro_waitgroup_t wg;
};

static void bystander_loop(void *arg)
{
    struct bystander *b = arg;
    while (!atomic_load(&b->stop) && b->n < b->max) {
        int64_t t0 = goro_nanotime();
        goro_sleep(b->sleep_ns);
        b->late[b->n++] = goro_nanotime() - t0 - b->sleep_ns;
    }
    goro_waitgroup_done(&b->wg);
}

/* bench_mutex(n, iters) while one more goroutine sleeps sleep_ns in a loop:
 * how late each of its wakeups ran (ns, up to max of them, count in
 * *nlate) says how long a goroutine queued beside the contenders waits for
 * a CPU. Returns bench_mutex's elapsed ns (-1: a lost update). */
int64_t bench_mutex_bystander(int n, int64_t iters, int64_t sleep_ns, int64_t *late, int max,
                              int *nlate)
{
    struct bystander b;
    memset(&b, 0, sizeof b);
    b.sleep_ns = sleep_ns;
    b.late = late;
    b.max = max;
    goro_waitgroup_add(&b.wg, 1);
    goro_go(bystander_loop, &b);
    int64_t dt = bench_mutex(n, iters);
    atomic_store(&b.stop, 1);
    goro_waitgroup_wait(&b.wg);
    *nlate = b.n;
    return dt;
}

/* ---- cancel fan-out: a closed channel broadcasts to n waiters ---- */

struct fanout {
    goro_chan_t *done;
    goro_waitgroup_t started, finished;
};

static void fanout_child(void *arg)
{
    struct fanout *f = arg;
    bool ok;
    goro_waitgroup_done(&f->started);
    goro_chan_recv(f->done, NULL, &ok);
    goro_waitgroup_done(&f->finished);
}

/* The C core has no context package: a context's cancellation is a close of
 * its done channel, which this measures: n goroutines block receiving on
 * one channel, then close wakes them all. Returns ns from the start of the
 * spawns to the last child done. */
int64_t bench_close_fanout(int n)
{
    struct fanout f;
    memset(&f, 0, sizeof f);
    f.done = goro_chan_new(0, 0);
    goro_waitgroup_add(&f.started, n);
    goro_waitgroup_add(&f.finished, n);
    int64_t t0 = goro_nanotime();
    for (int i = 0; i < n; i++)
        goro_go(fanout_child, &f);
    goro_waitgroup_wait(&f.started);
    goro_chan_close(f.done);
    goro_waitgroup_wait(&f.finished);
    int64_t dt = goro_nanotime() - t0;
    goro_chan_free(f.done);
    return dt;
}

/* ---- RSS per parked goroutine ---- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* n goroutines blocked receiving on one channel: RSS growth per goroutine
 * in bytes (then they are released and joined). Run in a fresh process. */
int64_t bench_rss_parked(int n)
{
    struct fanout f;
    memset(&f, 0, sizeof f);
    f.done = goro_chan_new(0, 0);
    goro_waitgroup_add(&f.started, n);
    goro_waitgroup_add(&f.finished, n);
    long before = rss_bytes();
    for (int i = 0; i < n; i++)
        goro_go(fanout_child, &f);
    goro_waitgroup_wait(&f.started);
    /* every child has called done(started) and is about to block, or is
     * blocked: give the last few a moment to reach recv */
    usleep(20000);
    long after = rss_bytes();
    goro_chan_close(f.done);
    goro_waitgroup_wait(&f.finished);
    goro_chan_free(f.done);
    return (after - before) / n;
}
