/* select (Go's select.go).
 *
 * goro_select(cases, n, timeout) proceeds with exactly one of the cases
 * that can proceed, chosen uniformly at random among them, or, if none can:
 * returns at once (timeout 0, Go's default:), blocks until one can
 * (GORO_FOREVER), or until the timeout expires.
 *
 * How (select_go):
 *   1. Shuffle the enabled cases into a random poll order and sort them by
 *      channel address into a lock order. Locking every channel in address
 *      order, skipping repeats, makes concurrent selects over overlapping
 *      channels deadlock-free and lets the same channel appear in several
 *      cases (even as both send and receive).
 *   2. Pass 1, all locks held: take the first case, in poll order, that can
 *      proceed. The first ready case of a uniformly random permutation is a
 *      uniform choice among the ready cases.
 *   3. Pass 2: nothing ready and we may block. Enqueue one sudog per case
 *      (is_select set) on that channel's sendq or recvq, all on our stack,
 *      and park; the park's commit function unlocks the channels (and arms
 *      the timeout timer first).
 *   4. Whoever completes us - a sender, a receiver, a close, or the timer -
 *      must first win the CAS of g->select_done from 0 to 1; waitq_dequeue
 *      skips (and unlinks) sudogs whose CAS fails, so exactly one case
 *      happens. The winner records its sudog in g->param.
 *   5. Pass 3: woken, relock everything, remove our sudogs from the queues
 *      of every losing case, reset select_done, unlock.
 *
 * Our sudogs live on our stack, which stays valid: we cannot leave
 * select_go before retaking every channel lock, i.e. before the commit
 * function has dropped the last of them and before every waker that saw a
 * sudog of ours has finished with it (wakers touch sudogs only under the
 * sudog's channel lock). The timer is the one waker holding no channel
 * lock; timer_stop, before pass 3, waits until its callback is done.
 *
 * The timeout timer is armed inside the park's commit function, once our
 * stack is no longer in use: its callback may fire at once and go_ready
 * us, which is only allowed for a G that has finished parking.
 *
 * An interruptible thread woken early by a signal withdraws by winning the
 * select_done CAS itself; if it loses, some case (or the timer) committed to
 * it, and it waits for that waker's go_ready and completes normally.
 */
#include <stdlib.h>

#include "chan.h"

/* Cases whose sudogs and orders fit on the stack; more go to the heap. A
 * sudog is ~100 bytes and goroutine stacks are small. */
#define SELECT_STACK_CASES 8

struct select_park {
    struct timer *t; /* NULL without a timeout */
    int64_t when;
};

static void select_timeout_fired(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    struct g *gp = arg;
    /* Relaxed, as in waitq_dequeue: the CAS only elects the waker; our
     * go_ready publishes the wakeup, and the G leaves g->param NULL for us,
     * which is how it knows the timer won. */
    uint32_t zero = 0;
    if (atomic_compare_exchange_strong_explicit(&gp->select_done, &zero, 1, memory_order_relaxed,
                                                memory_order_relaxed))
        go_ready(gp);
}

static bool select_park_commit(struct g *gp, void *arg)
{
    struct select_park *sp = arg;
    /* Arm the timer before dropping any channel lock: even if it fires at
     * once, the G must take all those locks before it can return from
     * select_go, so it cannot leave while we still read its sudogs, nor
     * while timer_reset is still working on its timer. */
    if (sp->t != NULL)
        timer_reset(sp->t, sp->when, 0);
    /* gp->waiting lists our sudogs in lock order. Each sudog is read (its
     * channel and link) only while its channel is still locked by us: once
     * unlocked, a waker may be writing into it. */
    struct hchan *last = NULL;
    for (struct sudog *sg = gp->waiting; sg != NULL; sg = sg->waitlink) {
        if (sg->c != last && last != NULL)
            rtlock_unlock(&last->lock);
        last = sg->c;
    }
    if (last != NULL)
        rtlock_unlock(&last->lock);
    return true;
}

/* Lock every distinct channel of the enabled cases, in address order. */
static void sellock(goro_select_case *cases, const int32_t *lockorder, int n)
{
    struct hchan *prev = NULL;
    for (int k = 0; k < n; k++) {
        struct hchan *c = cases[lockorder[k]].c;
        if (c != prev)
            rtlock_lock(&c->lock);
        prev = c;
    }
}

static void selunlock(goro_select_case *cases, const int32_t *lockorder, int n)
{
    /* Reverse order, unlocking each channel at its first occurrence. The
     * order does not matter for deadlock freedom; it is Go's. */
    for (int k = n - 1; k >= 0; k--) {
        struct hchan *c = cases[lockorder[k]].c;
        if (k > 0 && c == cases[lockorder[k - 1]].c)
            continue;
        rtlock_unlock(&c->lock);
    }
}

/* Heap sort of the enabled cases by channel address (Go's choice: no
 * recursion, no allocation, O(n log n) for huge selects). */
static void sort_lockorder(goro_select_case *cases, int32_t *order, int n)
{
#define KEY(k) ((uintptr_t)cases[order[k]].c)
    for (int i = 0; i < n; i++) {
        /* sift up into a max-heap */
        int j = i;
        int32_t v = order[i];
        uintptr_t key = (uintptr_t)cases[v].c;
        while (j > 0 && KEY((j - 1) / 2) < key) {
            order[j] = order[(j - 1) / 2];
            j = (j - 1) / 2;
        }
        order[j] = v;
    }
    for (int i = n - 1; i > 0; i--) {
        int32_t v = order[i];
        uintptr_t key = (uintptr_t)cases[v].c;
        order[i] = order[0];
        int j = 0;
        for (;;) {
            int k = 2 * j + 1;
            if (k >= i)
                break;
            if (k + 1 < i && KEY(k) < KEY(k + 1))
                k++;
            if (key < KEY(k)) {
                order[j] = order[k];
                j = k;
            } else {
                break;
            }
        }
        order[j] = v;
    }
#undef KEY
}

/* One enabled case and no timeout: a plain channel operation, as Go's
 * compiler rewrites such selects. It keeps the lock-free fast paths. */
static inline __attribute__((always_inline)) int select_one(goro_select_case *cas, int i,
                                                           bool block)
{
    int rc;
    if (cas->dir == GORO_SELECT_SEND) {
        rc = chan_send(cas->c, cas->elem, block);
        if (rc == GORO_CLOSED)
            return GORO_SELECT_CLOSED_BASE - i;
    } else {
        rc = chan_recv(cas->c, cas->elem, &cas->recv_ok, block);
    }
    switch (rc) {
    case GORO_OK:
        return i;
    case GORO_WOULDBLOCK:
        return GORO_SELECT_NONE;
    default:
        return GORO_SELECT_INTERRUPTED;
    }
}

/* Select with no enabled case: nothing can ever be ready. */
static int select_none(int64_t timeout_ns)
{
    if (timeout_ns == 0)
        return GORO_SELECT_NONE;
    if (timeout_ns > 0)
        return go_sleep(timeout_ns) ? GORO_SELECT_NONE : GORO_SELECT_INTERRUPTED;
    /* select {}: park for good. An interruptible thread comes back. */
    struct g *gp = getg();
    bool intr = thread_is_interruptible();
    gp->thread_interruptible = intr;
    go_park(NULL, NULL, WAIT_SELECT_NO_CASES);
    gp->thread_interruptible = false;
    if (!intr || !gp->thread_interrupted)
        rt_throw("goroutine woken from select with no cases");
    return GORO_SELECT_INTERRUPTED;
}

/* Everything but the single-case non-blocking select (select_go). */
static __attribute__((noinline)) int select_cases(goro_select_case *cases, int ncases,
                                                  int64_t timeout_ns)
{
    if (unlikely(ncases < 0 || (ncases > 0 && cases == NULL)))
        rt_throw("goro_select: bad case array (%p, %d cases)", (void *)cases, ncases);

    int n = 0, only = -1;
    for (int i = 0; i < ncases; i++) {
        goro_select_case *cas = &cases[i];
        cas->recv_ok = false;
        if (cas->c == NULL)
            continue;
        if (unlikely(cas->dir != GORO_SELECT_RECV && cas->dir != GORO_SELECT_SEND))
            rt_throw("goro_select: case %d has direction %d (want GORO_SELECT_RECV or "
                     "GORO_SELECT_SEND)",
                     i, cas->dir);
        if (unlikely(cas->dir == GORO_SELECT_SEND && cas->elem == NULL && cas->c->elemsize != 0))
            rt_throw("goro_select: case %d sends a NULL element (elemsize %zu)", i,
                     cas->c->elemsize);
        n++;
        only = i;
    }
    if (n == 0)
        return select_none(timeout_ns);
    if (n == 1 && timeout_ns <= 0)
        return select_one(&cases[only], only, timeout_ns != 0);

    int64_t when = 0;
    if (timeout_ns > 0) {
        int64_t now = nanotime();
        when = timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    }

    _Alignas(64) struct sudog stack_sgs[SELECT_STACK_CASES]; /* the first in one line, see struct sudog */
    int32_t stack_orders[2 * SELECT_STACK_CASES];
    struct sudog *sgs = stack_sgs;
    int32_t *pollorder = stack_orders;
    void *heap = NULL;
    if (ncases > SELECT_STACK_CASES) {
        heap = malloc((size_t)ncases * (sizeof(struct sudog) + 2 * sizeof(int32_t)));
        if (heap == NULL)
            rt_throw("goro_select: out of memory for %d cases", ncases);
        sgs = heap;
        pollorder = (int32_t *)(sgs + ncases);
    }
    int32_t *lockorder = pollorder + ncases;

    /* Inside-out Fisher-Yates: a uniform permutation of the enabled cases. */
    int k = 0;
    for (int i = 0; i < ncases; i++) {
        if (cases[i].c == NULL)
            continue;
        /* the first draw is always 0: skip the thread-local RNG */
        uint32_t j = k == 0 ? 0 : cheaprandn((uint32_t)k + 1);
        pollorder[k] = pollorder[j];
        pollorder[j] = i;
        lockorder[k] = i;
        k++;
    }
    sort_lockorder(cases, lockorder, n);

    int ret;
    struct g *wake = NULL;

    /* Pass 1: look for a case that can proceed now. */
    sellock(cases, lockorder, n);
    for (k = 0; k < n; k++) {
        int i = pollorder[k];
        goro_select_case *cas = &cases[i];
        struct hchan *c = cas->c;
        if (cas->dir == GORO_SELECT_RECV) {
            struct sudog *sg = waitq_dequeue(&c->sendq);
            if (sg != NULL) {
                wake = chan_recv_direct(c, sg, cas->elem);
                cas->recv_ok = true;
            } else if (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
                chan_buf_take(c, cas->elem);
                cas->recv_ok = true;
            } else if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
                chan_elem_clear(c, cas->elem);
                cas->recv_ok = false;
            } else {
                continue;
            }
            ret = i;
            goto done_locked;
        }
        if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
            ret = GORO_SELECT_CLOSED_BASE - i;
            goto done_locked;
        }
        struct sudog *sg = waitq_dequeue(&c->recvq);
        if (sg != NULL) {
            wake = chan_send_direct(c, sg, cas->elem);
        } else if (atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz) {
            chan_buf_put(c, cas->elem);
        } else {
            continue;
        }
        ret = i;
        goto done_locked;
    }
    if (timeout_ns == 0) {
        ret = GORO_SELECT_NONE;
        goto done_locked;
    }

    /* Pass 2: enqueue on every channel, in lock order, and park. */
    struct g *gp = getg();
    gp->param = NULL;
    struct sudog **link = &gp->waiting;
    for (k = 0; k < n; k++) {
        int i = lockorder[k];
        struct sudog *sg = &sgs[i];
        memset(sg, 0, sizeof *sg);
        sg->g = gp;
        sg->is_select = true;
        sg->ticket = (uint32_t)i;
        sg->elem = cases[i].elem;
        sg->c = cases[i].c;
        *link = sg;
        link = &sg->waitlink;
        waitq_enqueue(cases[i].dir == GORO_SELECT_SEND ? &sg->c->sendq : &sg->c->recvq, sg);
    }
    *link = NULL;

    struct timer t;
    struct select_park sp = {NULL, when};
    if (timeout_ns > 0) {
        timer_init(&t, select_timeout_fired, gp);
        sp.t = &t;
    }
    bool intr = thread_is_interruptible();
    gp->thread_interruptible = intr;
    go_park(select_park_commit, &sp, WAIT_SELECT);
    if (unlikely(intr)) {
        gp->thread_interruptible = false;
        if (gp->thread_interrupted) {
            uint32_t zero = 0;
            /* Withdraw by claiming ourselves. Relaxed, like every other
             * contender (waitq_dequeue): we only need to know who won. */
            if (atomic_compare_exchange_strong_explicit(&gp->select_done, &zero, 1,
                                                        memory_order_relaxed,
                                                        memory_order_relaxed)) {
                if (sp.t != NULL)
                    timer_stop(sp.t);
                sellock(cases, lockorder, n);
                for (k = 0; k < n; k++) {
                    int i = lockorder[k];
                    struct hchan *c = cases[i].c;
                    waitq_remove(cases[i].dir == GORO_SELECT_SEND ? &c->sendq : &c->recvq,
                                 &sgs[i]);
                }
                atomic_store_explicit(&gp->select_done, 0, memory_order_relaxed);
                gp->waiting = NULL;
                ret = GORO_SELECT_INTERRUPTED;
                goto done_locked;
            }
            /* A case or the timer won: its go_ready is on the way. */
            chan_count_interrupt_commit();
            go_park_commit_wait(gp);
        }
    }

    /* Woken by the winner. The timer holds no channel lock, so stop it
     * before resetting select_done: afterwards its callback cannot run. */
    if (sp.t != NULL)
        timer_stop(sp.t);

    /* Pass 3: with every lock held no waker can be looking at our sudogs;
     * unlink the losers (waitq_remove ignores those a waker already
     * skipped). */
    sellock(cases, lockorder, n);
    struct sudog *win = gp->param;
    gp->param = NULL;
    atomic_store_explicit(&gp->select_done, 0, memory_order_relaxed);
    for (k = 0; k < n; k++) {
        int i = lockorder[k];
        struct sudog *sg = &sgs[i];
        if (sg == win)
            continue;
        struct hchan *c = cases[i].c;
        waitq_remove(cases[i].dir == GORO_SELECT_SEND ? &c->sendq : &c->recvq, sg);
    }
    gp->waiting = NULL;

    if (win == NULL) {
        if (sp.t == NULL)
            rt_throw("select woken with no winning case and no timeout");
        ret = GORO_SELECT_NONE;
    } else {
        int i = (int)win->ticket;
        if (cases[i].dir == GORO_SELECT_RECV) {
            /* A close does not write the element (chan_close_collect), so
             * the zero value is stored here, for the winning case only: a
             * losing case's buffer stays untouched, as in Go, and may even
             * be another case's send buffer. */
            if (!win->success)
                chan_elem_clear(cases[i].c, cases[i].elem);
            cases[i].recv_ok = win->success;
            ret = i;
        } else {
            ret = win->success ? i : GORO_SELECT_CLOSED_BASE - i;
        }
    }

done_locked:
    selunlock(cases, lockorder, n);
    if (wake != NULL)
        go_ready(wake);
    free(heap);
    return ret;
}

/* `select { case <-c: ... default: }` and its send twin - one valid enabled
 * case, no waiting - go straight to the channel's fast path, as Go's
 * compiler rewrites them, before select_cases' setup (a validation loop,
 * the permutation, a frame sized for SELECT_STACK_CASES sudogs), which cost
 * more than the operation itself. So does `select { case <-c: }` with no
 * timeout (Go compiles it to a plain receive): a plain park also wakes
 * without select's pass 3, which relocks the channel after every wake (a
 * context cancel waking 1000 `select(ctx.done_case())` waiters paid it
 * 1000 times). Anything unusual takes the general path, which validates. */
int select_go(goro_select_case *cases, int ncases, int64_t timeout_ns)
{
    if (ncases == 1 && (timeout_ns == 0 || timeout_ns == GORO_FOREVER) && cases != NULL &&
        cases->c != NULL &&
        (cases->dir == GORO_SELECT_RECV ||
         (cases->dir == GORO_SELECT_SEND && (cases->elem != NULL || cases->c->elemsize == 0)))) {
        cases->recv_ok = false;
        return select_one(cases, 0, timeout_ns != 0);
    }
    return select_cases(cases, ncases, timeout_ns);
}

int goro_select(goro_select_case *cases, int ncases, int64_t timeout_ns)
{
    return select_go(cases, ncases, timeout_ns);
}
