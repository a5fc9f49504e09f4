/* Runtime timers, goroutine sleep, and the public Timer/Ticker/AfterFunc.
 *
 * One min-heap of pending timers ordered by `when`, under one rtlock. Go
 * keeps a heap per P to avoid that lock's contention; with a handful of Ps
 * (2 here) an add or stop is a few dozen ns under an uncontended lock, and a
 * single heap makes "the earliest timer" one atomic load (timers_next) for
 * the scheduler and for the idle M that sleeps until it. Memory is one
 * pointer per pending timer plus the timer itself; nothing is scanned per
 * tick: only due timers are touched.
 *
 * Who runs timers: any M in schedule()/find_runnable when timers_next() is
 * due, the one idle "timer sleeper" M when its timed futex sleep expires,
 * and sysmon when every M is busy. timers_run needs no P.
 *
 * Timer states: IDLE (not in the heap), PENDING (in the heap), RUNNING (its
 * function is executing, outside the lock). timer_stop and timer_reset wait
 * for a RUNNING timer's function to return, so after they return the
 * function is not running and, for stop, will not run: callers free timers
 * (on goroutine stacks, in select) right after stopping them. A timer
 * function must therefore never stop or reset its own timer, and a timer's
 * owner must timer_stop it before freeing it (even after it fired: the
 * function may have woken the owner before timers_run is done with it).
 *
 * Timer channels follow Go 1.23: capacity 1 internally, and stop/reset
 * drain it, so no value from before the call is ever received; both report
 * "was pending" if they prevented a delivery, drained or not yet fired.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "sched.h"

enum { TIMER_IDLE = 0, TIMER_PENDING, TIMER_RUNNING };

static struct {
    struct rtlock lock;
    struct timer **heap;
    int32_t n, cap;
    _Atomic int64_t next; /* heap[0]->when, or 0 when empty */
} th = {.lock = RTLOCK_INIT};

/* ---- heap (th.lock held) ---- */

static void heap_set(int32_t i, struct timer *t)
{
    th.heap[i] = t;
    t->heap_index = i;
}

static void sift_up(int32_t i)
{
    struct timer *t = th.heap[i];
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (th.heap[parent]->when <= t->when)
            break;
        heap_set(i, th.heap[parent]);
        i = parent;
    }
    heap_set(i, t);
}

static void sift_down(int32_t i)
{
    struct timer *t = th.heap[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= th.n)
            break;
        if (c + 1 < th.n && th.heap[c + 1]->when < th.heap[c]->when)
            c++;
        if (t->when <= th.heap[c]->when)
            break;
        heap_set(i, th.heap[c]);
        i = c;
    }
    heap_set(i, t);
}

static bool heap_add(struct timer *t)
{
    if (th.n == th.cap) {
        int32_t ncap = th.cap ? th.cap * 2 : 64;
        struct timer **nh = realloc(th.heap, (size_t)ncap * sizeof *nh);
        if (nh == NULL)
            return false;
        th.heap = nh;
        th.cap = ncap;
    }
    heap_set(th.n++, t);
    sift_up(t->heap_index);
    return true;
}

static void heap_del(struct timer *t)
{
    int32_t i = t->heap_index;
    struct timer *last = th.heap[--th.n];
    t->heap_index = -1;
    if (i == th.n)
        return;
    heap_set(i, last);
    if (i > 0 && th.heap[(i - 1) / 2]->when > last->when)
        sift_up(i);
    else
        sift_down(i);
}

static void publish_next(void)
{
    atomic_store_explicit(&th.next, th.n ? th.heap[0]->when : 0, memory_order_release);
}

/* ---- runtime timers ---- */

void timer_init(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg)
{
    memset(t, 0, sizeof *t);
    t->f = f;
    t->arg = arg;
    t->heap_index = -1;
}

/* Wait (lock dropped) until t's function has returned. th.lock held on entry
 * and on return. */
static void wait_not_running(struct timer *t)
{
    while (atomic_load_explicit(&t->state, memory_order_acquire) == TIMER_RUNNING) {
        rtlock_unlock(&th.lock);
        sched_yield();
        rtlock_lock(&th.lock);
    }
}

bool timer_reset(struct timer *t, int64_t when, int64_t period)
{
    if (when <= 0)
        when = 1;
    rtlock_lock(&th.lock);
    wait_not_running(t);
    bool was = atomic_load_explicit(&t->state, memory_order_relaxed) == TIMER_PENDING;
    int64_t old_next = atomic_load_explicit(&th.next, memory_order_relaxed);
    t->when = when;
    t->period = period;
    if (was) {
        int32_t i = t->heap_index;
        if (i > 0 && th.heap[(i - 1) / 2]->when > when)
            sift_up(i);
        else
            sift_down(i);
    } else if (!heap_add(t)) {
        rtlock_unlock(&th.lock);
        rt_throw("out of memory adding a timer");
    }
    atomic_store_explicit(&t->state, TIMER_PENDING, memory_order_relaxed);
    publish_next();
    rtlock_unlock(&th.lock);
    if (old_next == 0 || when < old_next)
        sched_timers_changed(when);
    return was;
}

bool timer_stop(struct timer *t)
{
    rtlock_lock(&th.lock);
    wait_not_running(t);
    bool was = atomic_load_explicit(&t->state, memory_order_relaxed) == TIMER_PENDING;
    if (was) {
        heap_del(t);
        atomic_store_explicit(&t->state, TIMER_IDLE, memory_order_relaxed);
        publish_next();
    }
    rtlock_unlock(&th.lock);
    return was;
}

int64_t timers_next(void)
{
    return atomic_load_explicit(&th.next, memory_order_acquire);
}

int64_t timers_run(int64_t now)
{
    rtlock_lock(&th.lock);
    while (th.n > 0 && th.heap[0]->when <= now) {
        struct timer *t = th.heap[0];
        heap_del(t);
        int64_t delay = now - t->when;
        atomic_store_explicit(&t->state, TIMER_RUNNING, memory_order_relaxed);
        publish_next();
        rtlock_unlock(&th.lock);
        t->f(t->arg, t->seq, delay);
        rtlock_lock(&th.lock);
        if (t->period > 0) {
            /* next tick after now; ticks missed by a late run are dropped */
            int64_t next = t->when + t->period;
            if (next <= now)
                next = now + t->period - (now - t->when) % t->period;
            t->when = next;
            heap_add(t);
            atomic_store_explicit(&t->state, TIMER_PENDING, memory_order_release);
        } else {
            /* release: a stopper waiting in wait_not_running sees f done */
            atomic_store_explicit(&t->state, TIMER_IDLE, memory_order_release);
        }
        publish_next();
    }
    int64_t next = th.n ? th.heap[0]->when : 0;
    rtlock_unlock(&th.lock);
    return next;
}

void timers_before_fork(void)
{
    rtlock_lock(&th.lock);
}

void timers_after_fork_parent(void)
{
    rtlock_unlock(&th.lock);
}

void timers_after_fork_child(void)
{
    th.lock = (struct rtlock)RTLOCK_INIT;
    th.n = 0;
    atomic_store(&th.next, 0);
}

/* ---- sleep ---- */

static void sleep_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    go_ready(arg);
}

struct sleep_arg {
    struct timer *t;
    int64_t when;
};

static bool sleep_arm(struct g *gp, void *arg)
{
    (void)gp;
    /* armed only now that the G is off its stack: the timer may fire at once */
    struct sleep_arg *sa = arg;
    timer_reset(sa->t, sa->when, 0);
    return true;
}

bool go_sleep(int64_t ns)
{
    if (ns <= 0)
        return true;
    int64_t deadline = nanotime() + ns;
    struct g *gp = getg();
    if (!gp->is_thread) {
        struct timer t;
        timer_init(&t, sleep_fire, gp);
        struct sleep_arg sa = {&t, deadline};
        go_park(sleep_arm, &sa, WAIT_SLEEP);
        /* The timer lives on this stack: timers_run may still be finishing
         * with it after its go_ready woke us. timer_stop waits for that. */
        timer_stop(&t);
        return true;
    }
    /* A plain thread sleeps on its own futex; the main thread wakes early on
     * a signal so Python can run its handlers. */
    bool interruptible = thread_is_interruptible();
    gp->wait_reason = WAIT_SLEEP;
    atomic_store_explicit(&gp->thread_wake, 0, memory_order_relaxed);
    if (rt_hooks.thread_block_begin)
        rt_hooks.thread_block_begin(gp);
    bool completed = true;
    for (;;) {
        int64_t left = deadline - nanotime();
        if (left <= 0)
            break;
        if (futex_timedwait(&gp->thread_wake, 0, left) == -2 && interruptible) {
            completed = false;
            break;
        }
    }
    if (rt_hooks.thread_block_end)
        rt_hooks.thread_block_end(gp);
    gp->wait_reason = WAIT_NONE;
    return completed;
}

int goro_sleep(int64_t ns)
{
    return go_sleep(ns) ? GORO_OK : GORO_INTERRUPTED;
}

/* ---- public Timer / Ticker / AfterFunc ---- */

struct goro_timer {
    struct timer t;
    goro_chan_t *c; /* NULL for after_func */
    goro_fn fn;
    void *arg;
};

static void chan_timer_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct goro_timer *gt = arg;
    int64_t now = nanotime();
    /* a full buffer means the receiver is behind: the tick is dropped */
    goro_chan_try_send(gt->c, &now);
}

static void func_timer_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct goro_timer *gt = arg;
    if (go_spawn(gt->fn, gt->arg, "time.AfterFunc", NULL) == NULL)
        rt_throw("time.AfterFunc: cannot start a goroutine");
}

goro_timer_t *goro_timer_new(int64_t ns, int64_t period_ns)
{
    if (period_ns < 0)
        return NULL;
    struct goro_timer *gt = calloc(1, sizeof *gt);
    if (gt == NULL)
        return NULL;
    gt->c = goro_chan_new(sizeof(int64_t), 1);
    if (gt->c == NULL) {
        free(gt);
        return NULL;
    }
    goro_runtime_start(0);
    timer_init(&gt->t, chan_timer_fire, gt);
    timer_reset(&gt->t, nanotime() + (ns > 0 ? ns : 0), period_ns);
    return gt;
}

goro_timer_t *goro_after_func(int64_t ns, goro_fn fn, void *arg)
{
    if (fn == NULL)
        return NULL;
    struct goro_timer *gt = calloc(1, sizeof *gt);
    if (gt == NULL)
        return NULL;
    goro_runtime_start(0);
    gt->fn = fn;
    gt->arg = arg;
    timer_init(&gt->t, func_timer_fire, gt);
    timer_reset(&gt->t, nanotime() + (ns > 0 ? ns : 0), 0);
    return gt;
}

goro_chan_t *goro_timer_chan(goro_timer_t *gt)
{
    return gt->c;
}

/* Drain an undelivered value; true if there was one (Go 1.23: a value not
 * yet received counts as not yet fired). */
static bool drain(struct goro_timer *gt)
{
    if (gt->c == NULL)
        return false;
    int64_t v;
    bool ok, any = false;
    while (goro_chan_try_recv(gt->c, &v, &ok) == GORO_OK && ok)
        any = true;
    return any;
}

bool goro_timer_stop(goro_timer_t *gt)
{
    bool was = timer_stop(&gt->t); /* returns once no fire is in flight */
    bool drained = drain(gt);
    return was || (drained && gt->t.period == 0);
}

bool goro_timer_reset(goro_timer_t *gt, int64_t ns, int64_t period_ns)
{
    if (period_ns < 0)
        period_ns = 0;
    int64_t old_period = gt->t.period;
    bool was = timer_stop(&gt->t);
    bool drained = drain(gt);
    timer_reset(&gt->t, nanotime() + (ns > 0 ? ns : 0), gt->c ? period_ns : 0);
    return was || (drained && old_period == 0);
}

void goro_timer_free(goro_timer_t *gt)
{
    if (gt == NULL)
        return;
    timer_stop(&gt->t);
    if (gt->c)
        goro_chan_free(gt->c);
    free(gt);
}
