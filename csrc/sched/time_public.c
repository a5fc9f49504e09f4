/* The public timers (Go's time.Timer, time.Ticker, time.AfterFunc): a
 * runtime timer plus, for Timer and Ticker, a channel of int64 nanotimes.
 *
 * Go 1.23 semantics: after goro_timer_stop or goro_timer_reset returns, no
 * value from before the call is received. The channel has a one-slot
 * buffer; the timer function only ever try_sends (a timer function must
 * not block), so a Ticker whose receiver is behind drops ticks, as Go's
 * does. Stop and reset (each under the timer's own lock `mu`):
 *
 *   1. timer_stop: afterwards the timer function is not running and will
 *      not run (runtime.h), so no send is in flight;
 *   2. drain the buffer: the one value an earlier fire may have left;
 *   3. reset only: re-arm.
 *
 * Go needs t.seq and a send lock for this because its Stop returns while a
 * send may still be in progress; pygoro's timer_stop waits for it instead,
 * which is what makes a single drain after it enough (and the runtime
 * timer's seq unnecessary here). The timer function takes no lock of ours,
 * so holding `mu` across timer_stop cannot deadlock against it.
 *
 * `mu` serialises stop, reset and free of one timer against each other.
 * Without it a stop racing a reset from another thread could drain the
 * value of the *new* arming (reset arms, it fires, the stop's drain eats
 * it), and the two would read and write t.period unordered.
 *
 * "Was pending" follows Go 1.23 too: a value that fired but was never
 * received counts as not yet delivered, so stopping (or resetting) a Timer
 * in that state returns true. For a Ticker only the timer's own state
 * counts (Go's Ticker.Stop returns nothing).
 */
#include <stdlib.h>

#include "timer.h"

struct goro_timer {
    struct timer t;
    struct rtlock mu; /* serialises stop/reset/free; never taken by fire */
    goro_chan_t *c;   /* Timer/Ticker: cap 1, int64 nanotime; NULL for AfterFunc */
    goro_fn fn;       /* AfterFunc */
    void *arg;
};

static void chan_timer_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct goro_timer *gt = arg;
    int64_t now = nanotime();
    /* A full buffer: the receiver has not taken the last value yet; this
     * one is dropped (a Ticker falls behind, it does not queue up). */
    goro_chan_try_send(gt->c, &now);
}

static void func_timer_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct goro_timer *gt = arg;
    if (go_spawn(gt->fn, gt->arg, "time.AfterFunc", NULL) == NULL)
        rt_throw("time.AfterFunc: cannot start a goroutine (out of memory)");
}

static goro_timer_t *timer_new(int64_t ns, int64_t period_ns, goro_fn fn, void *arg)
{
    struct goro_timer *gt = calloc(1, sizeof *gt);
    if (gt == NULL)
        return NULL;
    gt->mu = (struct rtlock)RTLOCK_INIT;
    if (fn == NULL) {
        gt->c = goro_chan_new(sizeof(int64_t), 1);
        if (gt->c == NULL) {
            free(gt);
            return NULL;
        }
        timer_init(&gt->t, chan_timer_fire, gt);
    } else {
        gt->fn = fn;
        gt->arg = arg;
        timer_init(&gt->t, func_timer_fire, gt);
    }
    goro_runtime_start(0); /* somebody has to run the timer */
    timer_reset(&gt->t, timer_when(ns), period_ns);
    return gt;
}

goro_timer_t *goro_timer_new(int64_t ns, int64_t period_ns)
{
    if (period_ns < 0)
        return NULL;
    return timer_new(ns, period_ns, NULL, NULL);
}

goro_timer_t *goro_after_func(int64_t ns, goro_fn fn, void *arg)
{
    if (fn == NULL)
        return NULL;
    return timer_new(ns, 0, fn, arg);
}

goro_chan_t *goro_timer_chan(goro_timer_t *gt)
{
    return gt->c;
}

/* Take the value a fire left in the buffer, if any (gt->mu held, the
 * runtime timer stopped). */
static bool timer_drain(struct goro_timer *gt)
{
    if (gt->c == NULL)
        return false;
    int64_t v;
    bool ok;
    return goro_chan_try_recv(gt->c, &v, &ok) == GORO_OK && ok;
}

bool goro_timer_stop(goro_timer_t *gt)
{
    rtlock_lock(&gt->mu);
    bool was = timer_stop(&gt->t);
    bool undelivered = timer_drain(gt) && gt->t.period == 0;
    rtlock_unlock(&gt->mu);
    return was || undelivered;
}

bool goro_timer_reset(goro_timer_t *gt, int64_t ns, int64_t period_ns)
{
    if (period_ns < 0 || gt->c == NULL)
        period_ns = 0; /* an AfterFunc runs once */
    rtlock_lock(&gt->mu);
    bool was = timer_stop(&gt->t);
    bool undelivered = timer_drain(gt) && gt->t.period == 0;
    timer_reset(&gt->t, timer_when(ns), period_ns);
    rtlock_unlock(&gt->mu);
    return was || undelivered;
}

void goro_timer_free(goro_timer_t *gt)
{
    if (gt == NULL)
        return;
    rtlock_lock(&gt->mu);
    timer_stop(&gt->t);
    rtlock_unlock(&gt->mu);
    if (gt->c != NULL)
        goro_chan_free(gt->c);
    free(gt);
}
