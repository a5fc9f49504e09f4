/* C-side drivers for tests/c/test_timer.py: runtime timers (sched/timer.c),
 * sleep (sched/sleep.c) and the public Timer/Ticker/AfterFunc
 * (sched/time_public.c). Goroutines run at full parallelism; Python only
 * asserts. Every wait is a poll with a deadline, so a bug fails a test
 * instead of hanging it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime.h"
#include "sched/timer.h"

#define MS 1000000LL

/* Poll until *flag >= want or timeout_ns passes; true if reached. */
static bool wait_for(_Atomic int64_t *flag, int64_t want, int64_t timeout_ns)
{
    int64_t end = nanotime() + timeout_ns;
    while (atomic_load(flag) < want) {
        if (nanotime() > end)
            return false;
        usleep(200);
    }
    return true;
}

/* Values received from t's channel by polling try_recv for window_ns. */
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

static bool try_recv_value(goro_timer_t *t)
{
    int64_t v;
    bool ok;
    return goro_chan_try_recv(goro_timer_chan(t), &v, &ok) == GORO_OK && ok;
}

/* Poll until t delivers a value; false if none within timeout_ns. */
static bool recv_within(goro_timer_t *t, int64_t timeout_ns)
{
    int64_t end = nanotime() + timeout_ns;
    while (!try_recv_value(t)) {
        if (nanotime() > end)
            return false;
        usleep(200);
    }
    return true;
}

/* ---- sleep ---- */

struct sleep_ctx {
    int64_t ns;
    _Atomic int64_t done;
    _Atomic int64_t elapsed;
    _Atomic int64_t status;
};

static void sleeper(void *arg)
{
    struct sleep_ctx *c = arg;
    int64_t t0 = nanotime();
    int r = goro_sleep(c->ns);
    atomic_fetch_add(&c->elapsed, nanotime() - t0);
    atomic_store(&c->status, r);
    atomic_fetch_add(&c->done, 1);
}

/* n goroutines sleep ns concurrently; returns the wall time for all. */
int64_t timer_sleepers(int n, int64_t ns)
{
    struct sleep_ctx c = {.ns = ns};
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        goro_go(sleeper, &c);
    if (!wait_for(&c.done, n, 30000 * MS))
        return -1;
    return nanotime() - t0;
}

/* One sleep of ns, in a goroutine or on this plain thread; returns how long
 * it took, or -1 if the sleep failed. */
int64_t timer_sleep_once(int64_t ns, int in_goroutine)
{
    struct sleep_ctx c = {.ns = ns};
    if (in_goroutine) {
        goro_go(sleeper, &c);
        if (!wait_for(&c.done, 1, 30000 * MS))
            return -1;
    } else {
        sleeper(&c);
    }
    return atomic_load(&c.status) == GORO_OK ? atomic_load(&c.elapsed) : -1;
}

/* Sleep(0) and negative sleeps return at once, on a thread and in a
 * goroutine; returns the longest of them (ns), -1 on a bad status. */
int64_t timer_sleep_nonpositive(void)
{
    int64_t worst = 0;
    const int64_t durations[] = {0, -1, INT64_MIN};
    for (int g = 0; g < 2; g++) {
        for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
            int64_t dt = timer_sleep_once(durations[i], g);
            if (dt < 0)
                return -1;
            if (g == 0 && dt > worst)
                worst = dt; /* a goroutine's figure includes its spawn */
        }
    }
    return worst;
}

static void on_sigusr1(int sig)
{
    (void)sig;
}

struct intr_ctx {
    int64_t ns;
    bool interruptible;
    _Atomic int64_t ready;
    int status;
    int64_t elapsed;
};

static void *intr_sleeper(void *arg)
{
    struct intr_ctx *c = arg;
    goro_thread_set_interruptible(c->interruptible);
    atomic_store(&c->ready, 1);
    int64_t t0 = nanotime();
    c->status = goro_sleep(c->ns);
    c->elapsed = nanotime() - t0;
    goro_thread_set_interruptible(false);
    return NULL;
}

/* A plain thread sleeps ns; another signals it (SIGUSR1, no SA_RESTART)
 * after signal_after_ns. Returns the sleep's status; *elapsed its length. */
int timer_sleep_signalled(int64_t ns, int64_t signal_after_ns, int interruptible,
                          int64_t *elapsed)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, &old);
    struct intr_ctx c = {.ns = ns, .interruptible = interruptible != 0};
    pthread_t th;
    pthread_create(&th, NULL, intr_sleeper, &c);
    wait_for(&c.ready, 1, 5000 * MS);
    usleep((useconds_t)(signal_after_ns / 1000));
    pthread_kill(th, SIGUSR1);
    pthread_join(th, NULL);
    sigaction(SIGUSR1, &old, NULL);
    *elapsed = c.elapsed;
    return c.status;
}

/* ---- Timer ---- */

int timer_fires_once(int64_t ns)
{
    int64_t v = 0, t0 = nanotime(); /* before arming: it fires at >= t0 + ns */
    goro_timer_t *t = goro_timer_new(ns, 0);
    bool ok;
    goro_chan_recv(goro_timer_chan(t), &v, &ok); /* blocks until it fires */
    int more = count_values(t, 5 * ns);
    bool again = goro_timer_stop(t); /* fired and received: not pending */
    goro_timer_free(t);
    return ok && v >= t0 + ns && more == 0 && !again ? 1 : 0;
}

/* Stop before the fire: true, nothing ever arrives, a second stop is false. */
int timer_stop_prevents(int64_t ns)
{
    goro_timer_t *t = goro_timer_new(ns, 0);
    bool was = goro_timer_stop(t);
    int got = count_values(t, 3 * ns);
    bool again = goro_timer_stop(t);
    goro_timer_free(t);
    return was && got == 0 && !again ? 1 : 0;
}

/* Reset's return value: true while pending (or fired but not received),
 * false once the value was received. A reset timer fires at the new time. */
int timer_reset_results(int64_t ns)
{
    int fails = 0;
    goro_timer_t *t = goro_timer_new(100 * ns, 0);
    int64_t t0 = nanotime(), v;
    bool ok;
    if (!goro_timer_reset(t, ns, 0)) /* pending: true */
        fails |= 1;
    goro_chan_recv(goro_timer_chan(t), &v, &ok);
    if (!ok || nanotime() - t0 > 50 * ns) /* the new, short duration counted */
        fails |= 2;
    if (goro_timer_reset(t, ns, 0)) /* fired and received: false */
        fails |= 4;
    usleep((useconds_t)(3 * ns / 1000)); /* fires, nobody receives */
    if (!goro_timer_reset(t, 100 * ns, 0)) /* undelivered counts as pending */
        fails |= 8;
    if (goro_timer_stop(t) != true) /* pending again after the reset */
        fails |= 16;
    goro_timer_free(t);
    return fails;
}

/* Go 1.23: the timer fires but nobody receives; stop; nothing stale is
 * received afterwards; a reset then delivers a fresh value. */
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

/* Go 1.23 for reset: fired, not received, reset to long: nothing arrives
 * before the new time; the new value arrives after it. Same for a Ticker
 * reset to a long period. */
int timer_no_stale_after_reset(int64_t ns, int ticker)
{
    int64_t period = ticker ? ns : 0;
    goro_timer_t *t = goro_timer_new(ns, period);
    usleep((useconds_t)(4 * ns / 1000)); /* fired (several times if a ticker) */
    int64_t t0 = nanotime();
    goro_timer_reset(t, 20 * ns, ticker ? 20 * ns : 0);
    int early = count_values(t, 5 * ns); /* well before the new time */
    int64_t v;
    bool ok;
    goro_chan_recv(goro_timer_chan(t), &v, &ok);
    goro_timer_free(t);
    return early == 0 && ok && v >= t0 + 20 * ns ? 1 : 0;
}

/* ---- Ticker ---- */

/* ticks ticks arrive, increasing; after stop nothing more. */
int timer_ticker_ticks(int64_t period_ns, int ticks)
{
    goro_timer_t *t = goro_timer_new(period_ns, period_ns);
    goro_chan_t *c = goro_timer_chan(t);
    int64_t prev = 0;
    for (int i = 0; i < ticks; i++) {
        int64_t v;
        bool ok;
        goro_chan_recv(c, &v, &ok);
        if (!ok || v <= prev) {
            goro_timer_free(t);
            return 0;
        }
        prev = v;
    }
    goro_timer_stop(t);
    int after = count_values(t, 3 * period_ns);
    goro_timer_free(t);
    return after == 0 ? 1 : 0;
}

/* Ticks received in window_ns by a goroutine-free poller, after a reset of
 * the ticker from a long period to `period_ns`. */
int timer_ticker_reset_count(int64_t period_ns, int64_t window_ns)
{
    goro_timer_t *t = goro_timer_new(1000 * period_ns, 1000 * period_ns);
    goro_timer_reset(t, period_ns, period_ns);
    int got = count_values(t, window_ns);
    goro_timer_free(t);
    return got;
}

/* A slow receiver: the ticker keeps one value buffered and drops the rest,
 * so after sleeping through many periods exactly one tick is waiting. The
 * first tick is awaited (a loaded machine may fire it late) before the 20
 * periods of sleep over which later ticks must be dropped. */
int timer_ticker_drops(int64_t period_ns)
{
    goro_timer_t *t = goro_timer_new(period_ns, period_ns);
    int64_t end = nanotime() + 10000 * MS;
    while (goro_chan_len(goro_timer_chan(t)) == 0 && nanotime() < end)
        usleep(200);
    usleep((useconds_t)(20 * period_ns / 1000));
    size_t queued = goro_chan_len(goro_timer_chan(t));
    goro_timer_free(t);
    return (int)queued;
}

/* ---- AfterFunc ---- */

struct after_ctx {
    _Atomic int64_t runs;
    _Atomic uint64_t goid;
};

static void after_fn(void *arg)
{
    struct after_ctx *c = arg;
    atomic_store(&c->goid, goro_goid());
    atomic_fetch_add(&c->runs, 1);
}

/* Runs once, in a goroutine; goro_timer_chan is NULL; stop afterwards is
 * false. With stop_first, a stop before expiry returns true and fn never
 * runs. */
int timer_after_func_runs(int64_t ns, int stop_first)
{
    struct after_ctx c = {0};
    goro_timer_t *t = goro_after_func(ns, after_fn, &c);
    if (goro_timer_chan(t) != NULL)
        return 0;
    int ok;
    if (stop_first) {
        bool was = goro_timer_stop(t);
        usleep((useconds_t)(5 * ns / 1000));
        ok = was && atomic_load(&c.runs) == 0;
    } else {
        wait_for(&c.runs, 1, 10000 * MS);
        usleep((useconds_t)(3 * ns / 1000));
        bool was = goro_timer_stop(t);
        ok = !was && atomic_load(&c.runs) == 1 && atomic_load(&c.goid) != 0;
    }
    goro_timer_free(t);
    return ok;
}

/* ---- the runtime timer itself ---- */

struct slow_ctx {
    int64_t spin_ns;
    _Atomic int64_t started;
    _Atomic int64_t finished;
    _Atomic int64_t release; /* ends the spin early */
};

static void slow_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct slow_ctx *c = arg;
    atomic_fetch_add(&c->started, 1);
    int64_t end = nanotime() + c->spin_ns;
    while (nanotime() < end && !atomic_load(&c->release))
        ;
    atomic_fetch_add(&c->finished, 1);
}

/* timer_stop while f runs: it waits for f, and f never runs again.
 * periodic: the same for a periodic timer (stop then returns true: the
 * runner re-armed it before stop could remove it). Returns 0 on success, a
 * bit mask of failures otherwise. */
int timer_stop_waits_for_running(int64_t spin_ns, int periodic)
{
    struct slow_ctx c = {.spin_ns = spin_ns};
    struct timer t;
    timer_init(&t, slow_fire, &c);
    timer_reset(&t, nanotime(), periodic ? spin_ns : 0);
    if (!wait_for(&c.started, 1, 10000 * MS))
        return 1;
    bool was = timer_stop(&t);
    int fails = 0;
    if (atomic_load(&c.finished) != atomic_load(&c.started))
        fails |= 2; /* returned while f was still running */
    if (was != (periodic != 0))
        fails |= 4;
    int64_t runs = atomic_load(&c.started);
    usleep((useconds_t)(5 * spin_ns / 1000));
    if (atomic_load(&c.started) != runs)
        fails |= 8; /* ran again after stop */
    if (timer_stop(&t))
        fails |= 16;
    return fails;
}

static void count_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    atomic_fetch_add((_Atomic int64_t *)arg, 1);
}

/* Random adds, resets and stops of n runtime timers far in the future; the
 * heap invariants hold after each round and every stop's answer matches
 * what this test armed. Returns 0 on success. */
int timer_heap_random_ops(int n, int rounds)
{
    struct timer *ts = calloc((size_t)n, sizeof *ts);
    bool *armed = calloc((size_t)n, sizeof *armed);
    _Atomic int64_t fired = 0;
    int64_t base = nanotime() + 3600 * 1000 * MS;
    uint32_t x = 12345;
    int fails = 0;
    for (int i = 0; i < n; i++)
        timer_init(&ts[i], count_fire, &fired);
    for (int r = 0; r < rounds && !fails; r++) {
        for (int k = 0; k < n; k++) {
            x = x * 1103515245u + 12345u;
            int i = (int)((x >> 8) % (uint32_t)n);
            int64_t when = base + (int64_t)((x >> 4) % 1000000u); /* duplicates too */
            switch ((x >> 28) % 3) {
            case 0:
            case 1:
                if (timer_reset(&ts[i], when, 0) != armed[i])
                    fails |= 1;
                armed[i] = true;
                break;
            default:
                if (timer_stop(&ts[i]) != armed[i])
                    fails |= 2;
                armed[i] = false;
            }
        }
        if (!timers_heap_verify())
            fails |= 4;
    }
    for (int i = 0; i < n; i++)
        if (timer_stop(&ts[i]) != armed[i])
            fails |= 8;
    if (!timers_heap_verify() || atomic_load(&fired) != 0)
        fails |= 16;
    free(ts);
    free(armed);
    return fails;
}

struct due_ctx {
    struct timer t;
    int64_t when;
    _Atomic int64_t fired_at;
    _Atomic int64_t *count;
};

static void due_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct due_ctx *d = arg;
    atomic_store(&d->fired_at, nanotime());
    atomic_fetch_add(d->count, 1);
}

/* n timers due at random times over spread_ns, armed in random order, one
 * in `stop_every` stopped again. Every timer fires exactly once, none early,
 * except the ones whose timer_stop returned true, which never fire; *max_late
 * gets the worst lateness. Which stops come in time is up to the load (arming
 * 20k timers under TSAN on a busy machine outlasts the 20 ms head start), so
 * the stop's own answer decides what is expected, and a wrong answer fails. */
int timer_due_in_order(int n, int64_t spread_ns, int stop_every, int64_t *max_late)
{
    struct due_ctx *d = calloc((size_t)n, sizeof *d);
    bool *stopped = calloc((size_t)n, sizeof *stopped);
    _Atomic int64_t count = 0;
    int64_t base = nanotime() + 20 * MS;
    uint32_t x = 777;
    int expected = 0;
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        d[i].when = base + (int64_t)(x % (uint32_t)(spread_ns / 1000)) * 1000;
        d[i].count = &count;
        timer_init(&d[i].t, due_fire, &d[i]);
        timer_reset(&d[i].t, d[i].when, 0);
    }
    for (int i = 0; i < n; i++) {
        if (stop_every > 0 && i % stop_every == 0)
            stopped[i] = timer_stop(&d[i].t);
        if (!stopped[i])
            expected++;
    }
    wait_for(&count, expected, spread_ns + 10000 * MS);
    usleep(20000);
    int fails = atomic_load(&count) == expected ? 0 : 1;
    int64_t late = 0;
    for (int i = 0; i < n; i++) {
        timer_stop(&d[i].t);
        int64_t at = atomic_load(&d[i].fired_at);
        if (stopped[i]) {
            if (at != 0)
                fails |= 2; /* stop said it stopped it, yet it fired */
            continue;
        }
        if (at == 0)
            fails |= 4;
        else if (at < d[i].when)
            fails |= 8; /* early */
        else if (at - d[i].when > late)
            late = at - d[i].when;
    }
    *max_late = late;
    free(stopped);
    free(d);
    return fails;
}

/* ---- many pending timers ---- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* n Timers an hour out, created then stopped. out[0]: ns per create
 * (goro_timer_new: malloc, channel, arm), out[1]: ns per stop, out[2]/[3]:
 * heap length and capacity while all are pending, out[4]/[5]: the same
 * after the stops, out[6]: CPU µs the process used in idle_ns of idling
 * with all n pending. Returns 0, or -1 if a stop returned false. */
int timer_many_pending(int n, int64_t idle_ns, int64_t *out)
{
    goro_timer_t **ts = malloc((size_t)n * sizeof *ts);
    int64_t len0, cap0;
    timers_heap_stats(&len0, &cap0);
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        ts[i] = goro_timer_new(3600 * 1000 * MS + i, 0);
    int64_t t1 = nanotime();
    timers_heap_stats(&out[2], &out[3]);
    out[2] -= len0;
    double c0 = cpu_seconds();
    usleep((useconds_t)(idle_ns / 1000));
    out[6] = (int64_t)((cpu_seconds() - c0) * 1e6);
    int64_t t2 = nanotime();
    int bad = 0;
    for (int i = 0; i < n; i++)
        if (!goro_timer_stop(ts[i]))
            bad = -1;
    int64_t t3 = nanotime();
    timers_heap_stats(&out[4], &out[5]);
    out[4] -= len0;
    for (int i = 0; i < n; i++)
        goro_timer_free(ts[i]);
    free(ts);
    out[0] = (t1 - t0) / n;
    out[1] = (t3 - t2) / n;
    return bad;
}

/* ---- the heap's cost and contention ---- */

struct bench_ctx {
    int iters;
    int64_t span;
    bool early;
    _Atomic int64_t go;
    _Atomic int64_t done;
    _Atomic int64_t total_ns;
};

static void bench_loop(void *arg)
{
    struct bench_ctx *c = arg;
    struct timer t;
    timer_init(&t, count_fire, NULL);
    uint32_t x = (uint32_t)(uintptr_t)&t;
    while (atomic_load(&c->go) == 0)
        ;
    int64_t base = nanotime() + 3600 * 1000 * MS;
    int64_t t0 = nanotime();
    for (int i = 0; i < c->iters; i++) {
        x = x * 1103515245u + 12345u;
        int64_t off = (int64_t)(x % (uint32_t)c->span);
        timer_reset(&t, c->early ? base - c->span - off : base + off, 0);
        timer_stop(&t);
    }
    atomic_fetch_add(&c->total_ns, nanotime() - t0);
    atomic_fetch_add(&c->done, 1);
}

/* ns per timer_reset + timer_stop pair, averaged over `workers` goroutines
 * doing it at once, with `pending` other timers in the heap. The workers'
 * timers fall at random among the pending ones, or with `early` before all
 * of them (every add sifts up to the root: a short sleep among many long
 * timeouts). */
int64_t timer_bench_add_stop(int pending, int iters, int workers, int early)
{
    struct timer *bg = calloc((size_t)(pending ? pending : 1), sizeof *bg);
    int64_t base = nanotime() + 3600 * 1000 * MS;
    const int64_t span = 1000 * MS;
    uint32_t x = 99;
    for (int i = 0; i < pending; i++) {
        x = x * 1103515245u + 12345u;
        timer_init(&bg[i], count_fire, NULL);
        timer_reset(&bg[i], base + (int64_t)(x % (uint32_t)span), 0);
    }
    struct bench_ctx c = {.iters = iters, .span = span, .early = early != 0};
    for (int w = 0; w < workers; w++)
        goro_go(bench_loop, &c);
    usleep(2000); /* let them all reach the start line */
    atomic_store(&c.go, 1);
    bool ok = wait_for(&c.done, workers, 60000 * MS);
    for (int i = 0; i < pending; i++)
        timer_stop(&bg[i]);
    free(bg);
    return ok ? atomic_load(&c.total_ns) / workers / iters : -1;
}

/* ---- timers while every M is idle ---- */

static bool wait_all_idle(int64_t timeout_ns)
{
    int64_t end = nanotime() + timeout_ns;
    for (;;) {
        goro_stats_t s;
        goro_get_stats(&s);
        if (s.npidle == s.gomaxprocs && s.nmspinning == 0)
            return true;
        if (nanotime() > end)
            return false;
        usleep(1000);
    }
}

/* With every P idle and one M asleep until a far timer, a plain thread arms
 * an earlier AfterFunc: the scheduler must wake for it. Returns the delay
 * from its due time to its run (ns), or -1. */
int64_t timer_fires_while_idle(int64_t ns)
{
    struct after_ctx far = {0}, near = {0};
    goro_timer_t *tfar = goro_after_func(3600 * 1000 * MS, after_fn, &far);
    if (!wait_all_idle(5000 * MS)) {
        goro_timer_free(tfar);
        return -2;
    }
    usleep(5000); /* an M has had time to go to sleep until tfar */
    int64_t due = nanotime() + ns;
    goro_timer_t *tnear = goro_after_func(ns, after_fn, &near);
    bool ok = wait_for(&near.runs, 1, 10000 * MS);
    int64_t late = nanotime() - due;
    goro_timer_free(tnear);
    goro_timer_free(tfar);
    return ok && atomic_load(&far.runs) == 0 ? late : -1;
}

/* ---- concurrent stop/reset/receive ---- */

struct stress_ctx {
    int iters;
    goro_timer_t *shared;
    _Atomic int64_t stale;    /* values received right after our own stop */
    _Atomic int64_t received; /* values received from own timers */
    _Atomic int64_t done;
    _Atomic int64_t stop_recv;
};

/* Each worker owns a timer: reset to a tiny duration, sometimes wait past
 * it, stop, and then the channel must be empty (only the owner receives).
 * Meanwhile it also resets and stops the shared timer. */
static void stress_worker(void *arg)
{
    struct stress_ctx *c = arg;
    goro_timer_t *t = goro_timer_new(3600 * 1000 * MS, 0);
    uint32_t x = (uint32_t)(uintptr_t)&x;
    for (int i = 0; i < c->iters; i++) {
        x = x * 1103515245u + 12345u;
        int64_t ns = (int64_t)(x % 50000u); /* 0..50 µs */
        goro_timer_reset(t, ns, (x >> 20) % 4 == 0 ? ns + 1000 : 0);
        if ((x >> 16) % 2)
            goro_sleep(ns);
        if ((x >> 17) % 3 == 0 && try_recv_value(t))
            atomic_fetch_add(&c->received, 1);
        goro_timer_stop(t);
        if (try_recv_value(t))
            atomic_fetch_add(&c->stale, 1);
        if ((x >> 24) % 4 == 0)
            goro_timer_reset(c->shared, (int64_t)(x % 20000u), 0);
        else if ((x >> 24) % 4 == 1)
            goro_timer_stop(c->shared);
    }
    goro_timer_free(t);
    atomic_fetch_add(&c->done, 1);
}

/* A receiver on the shared timer, until told to stop. */
static void stress_receiver(void *arg)
{
    struct stress_ctx *c = arg;
    goro_chan_t *ch = goro_timer_chan(c->shared);
    while (!atomic_load(&c->stop_recv)) {
        goro_select_case cs = {ch, GORO_SELECT_RECV, NULL, false};
        goro_select(&cs, 1, 1 * MS);
    }
    atomic_fetch_add(&c->done, 1);
}

/* workers goroutines plus this thread hammer timers. Returns the number of
 * stale values seen (must be 0); *received counts real deliveries, so the
 * test can tell that fires did happen. */
int64_t timer_stress(int workers, int iters, int64_t *received)
{
    struct stress_ctx c = {.iters = iters};
    c.shared = goro_timer_new(3600 * 1000 * MS, 0);
    goro_go(stress_receiver, &c);
    for (int w = 0; w < workers; w++)
        goro_go(stress_worker, &c);
    stress_worker(&c); /* a plain thread too */
    bool ok = wait_for(&c.done, workers + 1, 60000 * MS);
    atomic_store(&c.stop_recv, 1);
    ok = ok && wait_for(&c.done, workers + 2, 10000 * MS);
    goro_timer_free(c.shared);
    *received = atomic_load(&c.received);
    return ok ? atomic_load(&c.stale) : -1;
}

/* ---- fork ---- */

static void fork_sleeper(void *arg)
{
    goro_sleep(*(int64_t *)arg);
}

/* Fork while timers are pending (a Timer an hour out, a goroutine's sleep,
 * a 1 ms Ticker) and one is running (its function spins until the parent
 * has forked: fork can take a while with many goroutine stacks mapped). In the
 * child: no timer survives, the heap is consistent, stopping the inherited
 * timers is a harmless false (not a wait for a runner that did not survive
 * the fork), and new timers and sleeps work. Returns the child's failure
 * bits, or -1 if it did not exit (a 10 s alarm kills a hung child). */
int timer_fork_child(void)
{
    static int64_t nap = 200 * MS;
    goro_timer_t *hour = goro_timer_new(3600 * 1000 * MS, 0);
    goro_timer_t *tick = goro_timer_new(1 * MS, 1 * MS);
    goro_go(fork_sleeper, &nap);
    struct slow_ctx slow_c = {.spin_ns = 10000 * MS};
    struct timer slow;
    timer_init(&slow, slow_fire, &slow_c);
    timer_reset(&slow, nanotime(), 0);
    wait_for(&slow_c.started, 1, 10000 * MS);
    goro_runtime_before_fork();
    pid_t pid = fork();
    if (pid == 0) {
        alarm(10);
        goro_runtime_after_fork_child();
        int fails = 0;
        if (timer_stop(&slow))
            fails |= 32;
        if (atomic_load(&slow_c.finished) != 0)
            fails |= 64; /* (it was mid-run in the parent's other thread) */
        int64_t len, cap;
        timers_heap_stats(&len, &cap);
        if (len != 0 || !timers_heap_verify())
            fails |= 1;
        if (goro_timer_stop(hour))
            fails |= 2;
        goro_timer_stop(tick);
        if (count_values(tick, 10 * MS) != 0)
            fails |= 4;
        goro_timer_t *t = goro_timer_new(5 * MS, 0);
        if (!recv_within(t, 2000 * MS))
            fails |= 8;
        struct sleep_ctx c = {.ns = 5 * MS};
        goro_go(sleeper, &c);
        if (!wait_for(&c.done, 1, 2000 * MS))
            fails |= 16;
        _exit(fails);
    }
    goro_runtime_after_fork_parent();
    atomic_store(&slow_c.release, 1);
    timer_stop(&slow);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        status = -1;
    else
        status = WEXITSTATUS(status);
    goro_timer_free(tick);
    goro_timer_free(hour);
    return status;
}

/* ---- a timer while a goroutine hogs a P ---- */

static void hog(void *arg)
{
    struct slow_ctx *c = arg;
    atomic_store(&c->started, 1);
    int64_t end = nanotime() + c->spin_ns;
    while (nanotime() < end)
        ;
    atomic_store(&c->finished, 1);
}

/* One goroutine spins (never yields) for hog_ns while the other Ps are
 * idle; once every idle M has gone to sleep, a plain thread arms an
 * AfterFunc due in ns. Returns its lateness (ns), or -1. */
int64_t timer_fires_beside_hog(int64_t ns, int64_t hog_ns)
{
    struct slow_ctx h = {.spin_ns = hog_ns};
    struct after_ctx a = {0};
    goro_go(hog, &h);
    wait_for(&h.started, 1, 5000 * MS);
    usleep(30000); /* the other Ms park (no timer pending: without timeout) */
    int64_t due = nanotime() + ns;
    goro_timer_t *t = goro_after_func(ns, after_fn, &a);
    bool ok = wait_for(&a.runs, 1, 10000 * MS);
    int64_t late = nanotime() - due;
    goro_timer_free(t);
    wait_for(&h.finished, 1, 10000 * MS);
    return ok ? late : -1;
}
