/* Weighted semaphore (golang.org/x/sync/semaphore.Weighted).
 *
 * State: size, cur (units held), and a FIFO of waiters under an rtlock,
 * each wanting n units, counted in nwait. The invariants:
 *
 *   0 <= cur <= size
 *   a waiter is queued only while it cannot be served: either it does not
 *   fit (size - cur < n) or somebody is queued ahead of it
 *
 * so an acquire takes the fast path only when the queue is empty, and
 * serving (notify_waiters) stops at the first waiter that does not fit
 * instead of looking for a smaller one behind it. That is what keeps a
 * large request from being starved by a stream of small ones: once it
 * waits at the head, later requests queue behind it, however small.
 *
 * Lock-free fast paths. x/sync takes its mutex on every call; here cur is
 * an atomic changed only by CAS (or by fetch_sub when giving back units we
 * hold), and nwait (written under the lock) is read without it:
 *
 *   acquire: if nwait == 0, CAS cur -> cur + n while it fits
 *   release: CAS cur -> cur - n (refused if cur < n); if nwait != 0, take
 *            the lock and serve the queue
 *
 * The release's "CAS cur, then read nwait" against a queuing waiter's
 * "nwait++, then CAS-take (try once more), else queue" is a store-buffer
 * pattern (as in sema.c): with seq_cst on all four accesses, either the
 * waiter sees the released units or the releaser sees nwait > 0 and takes
 * the lock, which it gets only after the waiter queued and parked. A fast
 * acquirer that read nwait == 0 just before a waiter queued may still take
 * units: it arrived first, and its CAS keeps cur <= size. After that no
 * fast acquirer can pass a queued waiter. So the uncontended acquire and
 * release are one CAS each (the lock costs two atomic exchanges).
 *
 * A waiter lives on its own stack and is served in one of two ways:
 *
 *   park mode   (goro_semaphore_acquire) the waiter parks with go_park; the
 *               server marks it granted under the lock and go_readies it
 *               after unlocking (the waiter cannot leave before that).
 *   select mode (goro_semaphore_acquire_select) the waiter selects on a
 *               private `ready` channel, its cancel channel and a timeout,
 *               exactly as x/sync selects on ready and ctx.Done(). The
 *               server closes `ready` under the semaphore's lock.
 *
 * Select mode reuses everything select already does right: the timeout
 * timer, cancellation by any channel, and the interruptible main thread
 * (a signal ends the select with its sudogs withdrawn). A custom park that
 * competes with a channel would have to enqueue sudogs on that channel,
 * i.e. duplicate select. The cost is one channel allocation per wait that
 * actually blocks, next to a park/wake that costs far more.
 *
 * Withdrawal (cancel, timeout, signal) takes the lock and looks at
 * `granted`: if the server got there first, the units are ours, and we give
 * them back and serve the queue again (x/sync: "pretend we didn't");
 * otherwise we unlink ourselves and, if we were at the head and units are
 * free, serve the waiters behind us that now fit (x/sync's fix for
 * golang.org/issue/63615: without it they wait for an unrelated release).
 * The server closes `ready` while holding the lock, and the waiter frees
 * `ready` only after taking the lock, so the close is over by then.
 *
 * Lock order: semaphore lock, then a channel's lock (close of `ready`).
 * select never takes a semaphore lock while holding a channel lock.
 */
#include <stdlib.h>

#include "semaphore.h"

struct sem_waiter {
    int64_t n;
    uint64_t seq;       /* arrival order; kept by a retried wait (see queue_push) */
    struct sem_waiter *next;
    struct sem_waiter *prev;
    struct g *g;        /* park mode */
    goro_chan_t *ready; /* select mode; closed when granted */
    bool granted;       /* under the lock */
};

struct goro_semaphore {
    _Atomic int64_t cur;   /* units held; see the top for who changes it */
    _Atomic int64_t nwait; /* queued waiters: written under lock, read anywhere */
    int64_t size;
    struct rtlock lock;
    uint64_t next_seq; /* under lock */
    struct sem_waiter *head;
    struct sem_waiter *tail;
};

goro_semaphore_t *goro_semaphore_new(int64_t size)
{
    if (size < 1)
        return NULL;
    goro_semaphore_t *s = calloc(1, sizeof *s);
    if (s != NULL)
        s->size = size;
    return s;
}

void goro_semaphore_free(goro_semaphore_t *s)
{
    if (s == NULL)
        return;
    rtlock_lock(&s->lock);
    bool waiting = s->head != NULL;
    rtlock_unlock(&s->lock);
    if (waiting)
        rt_throw("goro_semaphore_free: semaphore has waiters");
    free(s);
}

/* ---- queue (lock held) ---- */

/* Queue w in arrival order: a new waiter (seq 0) gets the next number and
 * goes to the back; a waiter retrying after an interrupted wait (Python's
 * main thread, after its signal handlers ran) gets its old place back, in
 * front of everyone who arrived after it. */
static void queue_push(goro_semaphore_t *s, struct sem_waiter *w)
{
    if (w->seq == 0)
        w->seq = ++s->next_seq;
    struct sem_waiter *p = s->tail; /* w goes after p */
    while (p != NULL && p->seq > w->seq)
        p = p->prev;
    w->prev = p;
    w->next = p != NULL ? p->next : s->head;
    if (w->next != NULL)
        w->next->prev = w;
    else
        s->tail = w;
    if (p != NULL)
        p->next = w;
    else
        s->head = w;
    /* seq_cst: the queuing waiter's store in the pattern at the top */
    atomic_fetch_add(&s->nwait, 1);
}

static void queue_remove(goro_semaphore_t *s, struct sem_waiter *w)
{
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        s->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    else
        s->tail = w->prev;
    w->next = w->prev = NULL;
    atomic_fetch_sub(&s->nwait, 1);
}

/* Add n to cur if it fits: the only way units are taken. */
static bool take_units(goro_semaphore_t *s, int64_t n)
{
    int64_t c = atomic_load(&s->cur);
    while (s->size - c >= n) {
        if (atomic_compare_exchange_weak(&s->cur, &c, c + n))
            return true;
    }
    return false;
}

/* Serve waiters in order while the head fits. Select-mode waiters are
 * woken here (closing ready, under the lock: see the top); park-mode
 * waiters are returned as a list linked by next, to go_ready after the
 * lock is released. */
static struct sem_waiter *notify_waiters(goro_semaphore_t *s)
{
    struct sem_waiter *wake = NULL, **tailp = &wake;
    struct sem_waiter *w;
    while ((w = s->head) != NULL && take_units(s, w->n)) {
        queue_remove(s, w);
        w->granted = true;
        if (w->ready != NULL) {
            goro_chan_close(w->ready);
        } else {
            *tailp = w;
            tailp = &w->next;
        }
    }
    return wake;
}

/* Ready the park-mode waiters notify_waiters returned; no lock held. */
static void wake_all(struct sem_waiter *w)
{
    while (w != NULL) {
        /* After go_ready the waiter may return and its stack be reused:
         * read everything first. */
        struct sem_waiter *next = w->next;
        struct g *gp = w->g;
        go_ready(gp);
        w = next;
    }
}

/* ---- acquire / release ---- */

/* Take n units if they fit and nobody is queued; with or without the lock
 * (with it, nwait is exact). */
static bool try_take(goro_semaphore_t *s, int64_t n)
{
    /* seq_cst load: a fast acquirer must not see a stale 0 after a waiter
     * queued and a release already looked (see the top) */
    return atomic_load(&s->nwait) == 0 && take_units(s, n);
}

/* A waiter about to queue, lock held: count ourselves in first (the
 * store), then try once more (the load); see the top. On success we were
 * never queued. */
static bool try_take_queuing(goro_semaphore_t *s, struct sem_waiter *w)
{
    queue_push(s, w);
    if (s->head == w && take_units(s, w->n)) {
        queue_remove(s, w);
        return true;
    }
    return false;
}

int goro_semaphore_try_acquire(goro_semaphore_t *s, int64_t n)
{
    if (n < 1 || n > s->size)
        return GORO_EINVAL;
    return try_take(s, n) ? GORO_OK : GORO_WOULDBLOCK;
}

static bool sem_park_unlock(struct g *gp, void *arg)
{
    (void)gp;
    rtlock_unlock(arg);
    return true;
}

int goro_semaphore_acquire(goro_semaphore_t *s, int64_t n)
{
    if (n < 1 || n > s->size)
        return GORO_EINVAL;
    if (try_take(s, n))
        return GORO_OK;
    struct sem_waiter w = {.n = n, .g = getg()};
    rtlock_lock(&s->lock);
    if (try_take_queuing(s, &w)) {
        rtlock_unlock(&s->lock);
        return GORO_OK;
    }
    go_park(sem_park_unlock, &s->lock, WAIT_SEMACQUIRE);
    /* Readied only by notify_waiters, after it marked us granted and took
     * our units; go_ready's release pairs with the wakeup's acquire. */
    return GORO_OK;
}

/* Is a receive from c ready right now? (consumes a value, if one is there) */
static bool cancel_ready(goro_chan_t *c, void *elem)
{
    if (c == NULL)
        return false;
    goro_select_case cs[1] = {{c, GORO_SELECT_RECV, elem, false}};
    return goro_select(cs, 1, 0) == 0;
}

int semaphore_acquire_select_seq(goro_semaphore_t *s, int64_t n, goro_chan_t *cancel,
                                 void *cancel_elem, int64_t timeout_ns, uint64_t *seq)
{
    if (n < 1 || n > s->size)
        return GORO_EINVAL;
    /* A cancel that was ready before the call wins even when the units are
     * free (x/sync: ctx being done "happened before" the acquire). */
    if (cancel_ready(cancel, cancel_elem))
        return GORO_CANCELED;
    if (try_take(s, n))
        return GORO_OK;
    if (timeout_ns == 0)
        return GORO_TIMEOUT;

    /* Allocated outside the lock; only waits that really block pay for it. */
    struct sem_waiter w = {.n = n, .seq = *seq};
    w.ready = goro_chan_new(0, 0);
    if (w.ready == NULL)
        return GORO_ENOMEM;
    rtlock_lock(&s->lock);
    bool taken = try_take_queuing(s, &w);
    *seq = w.seq;
    rtlock_unlock(&s->lock);
    if (taken) {
        goro_chan_free(w.ready);
        return GORO_OK;
    }

    goro_select_case cs[2] = {
        {w.ready, GORO_SELECT_RECV, NULL, false},
        {cancel, GORO_SELECT_RECV, cancel_elem, false}, /* NULL channel: never */
    };
    int r = goro_select(cs, 2, timeout_ns);

    struct sem_waiter *wake = NULL;
    rtlock_lock(&s->lock);
    /* Whatever select said, `granted` (under the lock) decides: a server
     * may have served us while the select was ending another way. */
    bool granted = w.granted;
    if (r != 0) {
        if (granted) {
            atomic_fetch_sub(&s->cur, n); /* give the units back */
            wake = notify_waiters(s);
        } else {
            bool was_head = s->head == &w;
            queue_remove(s, &w);
            if (was_head)
                wake = notify_waiters(s); /* serves nobody unless units are free */
        }
    }
    rtlock_unlock(&s->lock);
    /* The server closed ready under the lock we just held: it is done with
     * the channel, and nobody else knows it. */
    goro_chan_free(w.ready);
    wake_all(wake);
    if (r == 0)
        return GORO_OK;
    if (r == 1)
        return GORO_CANCELED;
    if (r == GORO_SELECT_INTERRUPTED)
        return GORO_INTERRUPTED;
    return GORO_TIMEOUT;
}

int goro_semaphore_acquire_select(goro_semaphore_t *s, int64_t n, goro_chan_t *cancel,
                                  void *cancel_elem, int64_t timeout_ns)
{
    uint64_t seq = 0;
    return semaphore_acquire_select_seq(s, n, cancel, cancel_elem, timeout_ns, &seq);
}

int goro_semaphore_release(goro_semaphore_t *s, int64_t n)
{
    if (n < 1)
        return GORO_EINVAL;
    int64_t c = atomic_load(&s->cur);
    do {
        if (c < n)
            return GORO_EMISUSE;
    } while (!atomic_compare_exchange_weak(&s->cur, &c, c - n));
    /* After the CAS (seq_cst): the releaser's load in the pattern at the top. */
    if (atomic_load(&s->nwait) == 0)
        return GORO_OK;
    rtlock_lock(&s->lock);
    struct sem_waiter *wake = notify_waiters(s);
    rtlock_unlock(&s->lock);
    wake_all(wake);
    return GORO_OK;
}

int64_t goro_semaphore_size(goro_semaphore_t *s)
{
    return s->size;
}

int64_t goro_semaphore_held(goro_semaphore_t *s)
{
    return atomic_load(&s->cur);
}

int64_t goro_semaphore_waiters(goro_semaphore_t *s)
{
    return atomic_load(&s->nwait);
}
