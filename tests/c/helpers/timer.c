/* C-side drivers for tests/c/test_timer.py. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <unistd.h>

#include "runtime.h"

struct sleep_ctx {
    int64_t ns;
    _Atomic int left;
};

static void sleeper(void *arg)
{
    struct sleep_ctx *c = arg;
    goro_sleep(c->ns);
    atomic_fetch_sub(&c->left, 1);
}

/* n goroutines sleep ns concurrently; returns the wall time for all. */
int64_t timer_sleepers(int n, int64_t ns)
{
    struct sleep_ctx c = {ns, n};
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        goro_go(sleeper, &c);
    while (atomic_load(&c.left) > 0)
        usleep(500);
    return nanotime() - t0;
}

/* Returns the number of values received within 5 periods. */
static int count_values(goro_timer_t *t, int64_t window_ns)
{
    goro_chan_t *c = goro_timer_chan(t);
    int got = 0;
    int64_t end = nanotime() + window_ns;
    while (nanotime() < end) {
        int64_t v;
        bool ok;
        if (goro_chan_try_recv(c, &v, &ok) == GORO_OK && ok)
            got++;
        usleep(200);
    }
    return got;
}

int timer_fires_once(int64_t ns)
{
    goro_timer_t *t = goro_timer_new(ns, 0);
    int64_t v;
    bool ok;
    goro_chan_recv(goro_timer_chan(t), &v, &ok); /* blocks until it fires */
    int more = count_values(t, 5 * ns);
    goro_timer_free(t);
    return ok && more == 0 ? 1 : 0;
}

int timer_stop_prevents(int64_t ns)
{
    goro_timer_t *t = goro_timer_new(ns, 0);
    bool was = goro_timer_stop(t);
    int got = count_values(t, 3 * ns);
    bool again = goro_timer_stop(t);
    goro_timer_free(t);
    return was && got == 0 && !again ? 1 : 0;
}

/* Go 1.23: the timer fires but nobody receives; stop; nothing stale arrives. */
int timer_no_stale_after_stop(int64_t ns)
{
    goro_timer_t *t = goro_timer_new(ns, 0);
    usleep((useconds_t)(3 * ns / 1000));
    bool was = goro_timer_stop(t); /* the undelivered value counts as pending */
    int got = count_values(t, 2 * ns);
    goro_timer_reset(t, ns, 0);
    int64_t v;
    bool ok;
    goro_chan_recv(goro_timer_chan(t), &v, &ok);
    goro_timer_free(t);
    return was && got == 0 && ok ? 1 : 0;
}

int timer_ticker_ticks(int64_t period_ns, int ticks)
{
    goro_timer_t *t = goro_timer_new(period_ns, period_ns);
    goro_chan_t *c = goro_timer_chan(t);
    int64_t prev = 0;
    for (int i = 0; i < ticks; i++) {
        int64_t v;
        bool ok;
        goro_chan_recv(c, &v, &ok);
        if (!ok || v <= prev)
            return 0;
        prev = v;
    }
    goro_timer_stop(t);
    int after = count_values(t, 3 * period_ns);
    goro_timer_free(t);
    return after == 0 ? 1 : 0;
}

static _Atomic int after_func_runs;
static _Atomic uint64_t after_func_goid;

static void after_fn(void *arg)
{
    (void)arg;
    atomic_store(&after_func_goid, goro_goid());
    atomic_fetch_add(&after_func_runs, 1);
}

int timer_after_func_runs(int64_t ns)
{
    atomic_store(&after_func_runs, 0);
    goro_timer_t *t = goro_after_func(ns, after_fn, NULL);
    usleep((useconds_t)(10 * ns / 1000));
    int runs = atomic_load(&after_func_runs);
    bool was = goro_timer_stop(t);
    goro_timer_free(t);
    return runs == 1 && !was && atomic_load(&after_func_goid) != 0 ? 1 : 0;
}

/* n pending timers created and stopped; returns ns per add+stop. */
int64_t timer_many_pending(int n)
{
    goro_timer_t **ts = malloc((size_t)n * sizeof *ts);
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        ts[i] = goro_timer_new(3600LL * 1000000000, 0);
    for (int i = 0; i < n; i++)
        if (!goro_timer_stop(ts[i]))
            return -1;
    int64_t dt = nanotime() - t0;
    for (int i = 0; i < n; i++)
        goro_timer_free(ts[i]);
    free(ts);
    return dt / n;
}
