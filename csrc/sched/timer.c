/* Runtime timers (pygoro's time.go): what ends a goroutine's sleep, times
 * out a select, makes a Timer or Ticker send, starts an AfterFunc.
 *
 * One heap for the whole runtime
 * ------------------------------
 * Pending timers live in one 4-ary min-heap ordered by `when`, under one
 * rtlock (th.lock). Go gives every P its own heap so that Ps never contend
 * for timers; that pays off at dozens of Ps. pygoro runs with a handful (2
 * on the machines it is measured on), and one heap buys two things: "the
 * earliest timer" is one atomic load (th.next, timers_next) for schedule()
 * and for the one idle M that sleeps until it, and any M or sysmon can run
 * due timers without stealing or merging heaps. Measured on the 2-vCPU VM
 * (-O2, best of 5 x 1M timer_reset+timer_stop pairs from plain threads;
 * tests/c/test_timer.py::test_heap_cost prints the same from goroutines):
 *
 *   pending  new timer lands       threads  4-ary     binary
 *   0        anywhere              1        ~30 ns    ~30 ns
 *   100k     at random             1        ~30 ns    ~30 ns
 *   100k     before all (root)     1        ~49 ns    ~55 ns
 *   1M       before all (root)     1        ~51 ns    ~61 ns
 *   100k     at random             2        50-110 ns per pair per thread
 *   100k     before all (root)     2        72-95 ns  100-190 ns
 *
 * So with both Ps hammering the one lock a pair costs about twice its
 * uncontended price: throughput is still one pair per ~25-50 ns, and a
 * timer is armed once per sleep or select timeout, each of which also
 * parks and readies a goroutine (0.5-1 us) or wakes an M (4-9 us). Firing costs
 * ~210 ns per timer with 1M due at once (either arity: the cache misses are
 * in the timers themselves, whose heap_index every move rewrites).
 *
 * Should profiles ever show th.lock, per-P heaps fit behind the same
 * interface: nothing outside this file sees the heap, only timer_reset,
 * timer_stop, timers_run and timers_next.
 *
 * The heap array holds {when, timer} pairs, so the comparisons of a sift
 * stay inside the array and never touch a timer's memory; the 4 children
 * of a node are 64 contiguous bytes. A 4-ary heap is half as deep as a
 * binary one, so a timer that sifts to the root (a short sleep among long
 * timeouts) moves half as often; above, that is 10-20% single-threaded and
 * less time holding the lock under contention. (8-ary measured no better.)
 *
 * Cost: each pending timer takes its own struct plus one 16-byte slot; the
 * array doubles when full and halves when under a quarter full, so memory
 * stays proportional to the number pending. Nothing is done per tick and
 * nothing is scanned: schedule() and the idle timer-sleeper M read th.next,
 * and only due timers are touched.
 *
 * States (every transition under th.lock):
 *   IDLE     not in the heap, f not running.
 *   PENDING  in the heap at heap_index.
 *   RUNNING  popped by timers_run; f runs (or is about to) with th.lock
 *            dropped. Then IDLE, or PENDING again for a periodic timer.
 *
 * The guarantee callers build on: timer_stop and timer_reset wait while t
 * is RUNNING, so when timer_stop returns f is not running and will not run
 * until the next reset. Goroutine sleeps and select timeouts keep their
 * timer on their own stack and stop it before returning; Timer channels
 * drain after a stop knowing no send is in flight. Hence two rules: f
 * must not stop or reset its own timer (it would wait for itself), and
 * whoever stops or resets a timer that may be running must not hold a lock
 * that timer's f takes (a Timer's channel lock; sched.lock, which go_ready
 * may take): f would wait for the lock and the stopper for f. (select arms
 * its fresh timer with channel locks held: never running, never waits.)
 *
 * seq: every timer_reset gives the arming a new number, and f receives the
 * number of the arming that fired it (Go's t.seq). Go's Stop does not wait
 * for a running f, so Go's timer channels need it to drop a send from
 * before a Stop; ours does wait, so nothing in pygoro has to check it yet.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "timer.h"

#ifndef TIMER_HEAP_ARITY
#define TIMER_HEAP_ARITY 4
#endif
#define TIMER_HEAP_MIN_CAP 64

enum { TIMER_IDLE = 0, TIMER_PENDING, TIMER_RUNNING };

struct timer_when {
    int64_t when; /* == t->when while t is in the heap */
    struct timer *t;
};

/* A timer whose function a timers_run is running, in that runner's frame.
 * The list lets a fork child release timers whose runner did not survive
 * the fork. */
struct timer_running {
    struct timer *t;
    struct timer_running *next;
};

static struct {
    struct rtlock lock;
    struct timer_when *heap;
    int32_t len, cap;
    struct timer_running *running;
    /* heap[0].when, or 0 when the heap is empty. Written under th.lock and
     * read without it, as a hint: whoever acts on it either takes th.lock
     * (timers_run re-checks) or is ordered by sched.lock against the writer
     * (stopm reads it under sched.lock; timer_reset publishes before it
     * takes sched.lock in sched_timers_changed), so relaxed is enough. */
    _Atomic int64_t next;
    /* Timers popped by a timers_run whose function has not finished (and,
     * for a periodic timer, that is not back in the heap). While one is,
     * `next` may say "no timer" although the timer's effect (a goroutine
     * readied, a channel filled) is still to come: timers_quiet() must not
     * report quiet then, or a deadlock check raises falsely. */
    _Atomic int32_t nrunning;
} th = {.lock = RTLOCK_INIT};

/* t->state: stores are release and loads acquire. What a runner did to *t
 * before marking it IDLE (including f's own accesses) must be visible to a
 * stopper that sees IDLE without the lock (timer_stop's fast path) and may
 * then free t. */
static inline uint32_t timer_state(struct timer *t)
{
    return atomic_load_explicit(&t->state, memory_order_acquire);
}

static inline void timer_set_state(struct timer *t, uint32_t s)
{
    atomic_store_explicit(&t->state, s, memory_order_release);
}

/* ---- the heap (th.lock held) ---- */

static inline void heap_put(int32_t i, struct timer_when tw)
{
    th.heap[i] = tw;
    tw.t->heap_index = i;
}

static void siftup_timer(int32_t i)
{
    struct timer_when tw = th.heap[i];
    while (i > 0) {
        int32_t parent = (i - 1) / TIMER_HEAP_ARITY;
        if (th.heap[parent].when <= tw.when)
            break;
        heap_put(i, th.heap[parent]);
        i = parent;
    }
    heap_put(i, tw);
}

static void siftdown_timer(int32_t i)
{
    struct timer_when tw = th.heap[i];
    int64_t n = th.len;
    for (;;) {
        int64_t first = (int64_t)i * TIMER_HEAP_ARITY + 1;
        if (first >= n)
            break;
        int64_t end = first + TIMER_HEAP_ARITY < n ? first + TIMER_HEAP_ARITY : n;
        int64_t min = first;
        for (int64_t c = first + 1; c < end; c++)
            if (th.heap[c].when < th.heap[min].when)
                min = c;
        if (tw.when <= th.heap[min].when)
            break;
        heap_put(i, th.heap[min]);
        i = (int32_t)min;
    }
    heap_put(i, tw);
}

/* Restore the heap order around slot i after its `when` changed. */
static void timer_fix(int32_t i)
{
    if (i > 0 && th.heap[(i - 1) / TIMER_HEAP_ARITY].when > th.heap[i].when)
        siftup_timer(i);
    else
        siftdown_timer(i);
}

static void heap_resize(int32_t ncap)
{
    struct timer_when *nh = realloc(th.heap, (size_t)ncap * sizeof *nh);
    if (nh == NULL) {
        if (ncap < th.cap)
            return; /* could not shrink: keep the bigger array */
        rtlock_unlock(&th.lock);
        rt_throw("timers: out of memory growing the heap to %d timers", (int)ncap);
    }
    th.heap = nh;
    th.cap = ncap;
}

static void timer_add(struct timer *t)
{
    if (th.len == th.cap) {
        if (th.cap > INT32_MAX / 2 / TIMER_HEAP_ARITY)
            rt_throw("timers: more than %d pending", (int)th.cap);
        heap_resize(th.cap ? th.cap * 2 : TIMER_HEAP_MIN_CAP);
    }
    int32_t i = th.len++;
    heap_put(i, (struct timer_when){t->when, t});
    siftup_timer(i);
}

static void timer_del(struct timer *t)
{
    int32_t i = t->heap_index;
    int32_t last = --th.len;
    t->heap_index = -1;
    if (i != last) {
        heap_put(i, th.heap[last]);
        timer_fix(i);
    }
    /* Halve at a quarter full, not at half: an add/stop pair at the
     * boundary must not realloc every time. */
    if (th.cap > TIMER_HEAP_MIN_CAP && th.len < th.cap / 4)
        heap_resize(th.cap / 2);
}

static inline void publish_next(void)
{
    /* release: pairs with timers_quiet's acquire load, so a reader that
     * sees the heap emptied by a pop also sees that pop's nrunning++. */
    atomic_store_explicit(&th.next, th.len ? th.heap[0].when : 0, memory_order_release);
}

/* Wait, with th.lock dropped, until t's function has returned. th.lock is
 * held on entry and on return. f never blocks, so this is short: spin a
 * little (f is usually a go_ready or a try_send, well under a µs), then
 * yield the CPU in case the runner's thread was preempted. */
static void timer_wait_running(struct timer *t)
{
    for (int i = 0; timer_state(t) == TIMER_RUNNING; i++) {
        rtlock_unlock(&th.lock);
        if (i < 4)
            sync_runtime_do_spin();
        else
            sched_yield();
        rtlock_lock(&th.lock);
    }
}

/* ---- runtime timers ---- */

void timer_init(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg)
{
    memset(t, 0, sizeof *t);
    t->f = f;
    t->arg = arg;
    t->heap_index = -1;
}

bool timer_reset(struct timer *t, int64_t when, int64_t period)
{
    if (when <= 0)
        when = 1; /* 0 means "no timer" to timers_next */
    rtlock_lock(&th.lock);
    timer_wait_running(t);
    int64_t old_next = atomic_load_explicit(&th.next, memory_order_relaxed);
    bool was = timer_state(t) == TIMER_PENDING;
    t->when = when;
    t->period = period > 0 ? period : 0;
    t->seq++;
    if (was) {
        th.heap[t->heap_index].when = when;
        timer_fix(t->heap_index);
    } else {
        timer_add(t);
        timer_set_state(t, TIMER_PENDING);
    }
    publish_next();
    rtlock_unlock(&th.lock);
    /* An idle M may be sleeping until old_next: it must wake earlier. */
    if (old_next == 0 || when < old_next)
        sched_timers_changed(when);
    return was;
}

bool timer_stop(struct timer *t)
{
    /* Fast path, no lock: IDLE means not in the heap and f not running (a
     * sleeping goroutine's timer has usually fired and been released by the
     * time the goroutine runs again). The acquire pairs with the runner's
     * release: its last accesses to *t happen before our caller frees t. */
    if (timer_state(t) == TIMER_IDLE)
        return false;
    rtlock_lock(&th.lock);
    timer_wait_running(t);
    bool was = timer_state(t) == TIMER_PENDING;
    if (was) {
        timer_del(t);
        timer_set_state(t, TIMER_IDLE);
        publish_next();
    }
    rtlock_unlock(&th.lock);
    return was;
}

int64_t timers_next(void)
{
    return atomic_load_explicit(&th.next, memory_order_relaxed);
}

bool timers_quiet(void)
{
    if (atomic_load_explicit(&th.next, memory_order_acquire) != 0)
        return false;
    return atomic_load_explicit(&th.nrunning, memory_order_acquire) == 0;
}

/* The first tick of a periodic timer strictly after now (Go drops ticks a
 * late run missed rather than firing them back to back). */
static int64_t next_period(int64_t when, int64_t period, int64_t now)
{
    int64_t next;
    if (__builtin_add_overflow(when, period, &next))
        return INT64_MAX;
    if (next > now)
        return next;
    int64_t skip = (now - next) / period + 1;
    if (__builtin_mul_overflow(skip, period, &skip) || __builtin_add_overflow(next, skip, &next))
        return INT64_MAX;
    return next;
}

int64_t timers_run(int64_t now)
{
    rtlock_lock(&th.lock);
    while (th.len > 0 && th.heap[0].when <= now) {
        struct timer *t = th.heap[0].t;
        int64_t when = th.heap[0].when;
        timer_del(t);
        timer_set_state(t, TIMER_RUNNING);
        struct timer_running run = {t, th.running};
        th.running = &run;
        atomic_fetch_add_explicit(&th.nrunning, 1, memory_order_relaxed); /* before publish_next */
        publish_next();
        /* Copies: a periodic timer cannot change while RUNNING (reset
         * waits), but reading them under the lock keeps that obvious. */
        void (*f)(void *, uintptr_t, int64_t) = t->f;
        void *arg = t->arg;
        uintptr_t seq = t->seq;
        rtlock_unlock(&th.lock);

        f(arg, seq, now - when);

        rtlock_lock(&th.lock);
        struct timer_running **pr = &th.running;
        while (*pr != &run)
            pr = &(*pr)->next;
        *pr = run.next;
        if (t->period > 0) {
            t->when = next_period(when, t->period, now);
            timer_add(t);
            timer_set_state(t, TIMER_PENDING);
        } else {
            /* Last touch of *t: a stopper waiting in timer_wait_running (or
             * on the fast path) may free it as soon as it sees IDLE. */
            timer_set_state(t, TIMER_IDLE);
        }
        publish_next();
        /* release: f's effects (a G queued, a channel filled) and the
         * periodic timer's return to the heap are visible to a
         * timers_quiet() that sees the count drop. */
        atomic_fetch_sub_explicit(&th.nrunning, 1, memory_order_release);
    }
    int64_t next = th.len ? th.heap[0].when : 0;
    rtlock_unlock(&th.lock);
    return next;
}

void timers_heap_stats(int64_t *len, int64_t *cap)
{
    rtlock_lock(&th.lock);
    *len = th.len;
    *cap = th.cap;
    rtlock_unlock(&th.lock);
}

bool timers_heap_verify(void)
{
    bool ok = true;
    rtlock_lock(&th.lock);
    for (int32_t i = 0; i < th.len && ok; i++) {
        struct timer *t = th.heap[i].t;
        ok = t->heap_index == i && t->when == th.heap[i].when &&
             timer_state(t) == TIMER_PENDING &&
             (i == 0 || th.heap[(i - 1) / TIMER_HEAP_ARITY].when <= th.heap[i].when);
    }
    ok = ok && atomic_load_explicit(&th.next, memory_order_relaxed) ==
                   (th.len ? th.heap[0].when : 0);
    rtlock_unlock(&th.lock);
    return ok;
}

/* ---- fork ---- */

void timers_before_fork(void)
{
    rtlock_lock(&th.lock);
}

void timers_after_fork_parent(void)
{
    rtlock_unlock(&th.lock);
}

/* The child starts with no timers: their owners (sleeping goroutines,
 * selects, Ms) did not survive the fork, and a timer firing into an
 * abandoned G would resurrect it. Every timer is marked IDLE, so a surviving
 * owner's stop returns false instead of touching a heap slot that is gone,
 * and a timer whose runner was mid-f at fork time does not leave its
 * stopper waiting forever. The fork copied the whole address space, so the
 * heap and the runners' frames are readable here. */
void timers_after_fork_child(void)
{
    for (int32_t i = 0; i < th.len; i++) {
        th.heap[i].t->heap_index = -1;
        atomic_store_explicit(&th.heap[i].t->state, TIMER_IDLE, memory_order_relaxed);
    }
    for (struct timer_running *r = th.running; r != NULL; r = r->next)
        atomic_store_explicit(&r->t->state, TIMER_IDLE, memory_order_relaxed);
    th.len = 0;
    th.running = NULL;
    atomic_store_explicit(&th.next, 0, memory_order_relaxed);
    atomic_store_explicit(&th.nrunning, 0, memory_order_relaxed);
    th.lock = (struct rtlock)RTLOCK_INIT;
}
