/* Channels: the structure shared by chan.c, select.c and the Python bridge.
 *
 * struct hchan is Go's hchan: a ring buffer of dataqsiz elements of elemsize
 * bytes (allocated inline after the header), the queues of blocked senders
 * and receivers, and one rtlock guarding all of it. The helpers below move
 * one element between a sudog, the buffer and a caller's buffer; each is
 * called with c->lock held and is shared by the single-channel operations
 * (chan.c) and select (select.c), so both follow one set of rules:
 *
 *   - Every element is copied exactly once per hop (sender -> buffer ->
 *     receiver, or sender -> receiver directly) and never left behind in two
 *     places: the Python bridge stores PyObject* and hands the reference
 *     over by memcpy.
 *   - A helper that completes a parked G's operation only fills in its
 *     sudog and returns the G; the caller readies it after dropping the
 *     lock(s), never before (the G may only run once the lock it parked
 *     with has been dropped by its own park, which go_park guarantees, and
 *     readying after our unlock keeps the critical section short).
 */
#ifndef PYGORO_CHAN_H
#define PYGORO_CHAN_H

#include <string.h>

#include "../runtime.h"

struct hchan {
    /* Buffered element count. Written only under lock, but read without it
     * by the non-blocking fast paths and goro_chan_len: see chan.c for why
     * stores are release and the fast path's load is acquire. */
    _Atomic size_t qcount;
    size_t dataqsiz;        /* capacity of the ring; 0 for unbuffered */
    size_t elemsize;
    char *buf;              /* dataqsiz * elemsize bytes, after the header */
    /* 0 open, 1 closed; set once, under lock, with a release store. */
    _Atomic uint32_t closed;
    size_t sendx;           /* next slot to fill */
    size_t recvx;           /* next slot to drain */
    struct waitq recvq;     /* blocked receivers */
    struct waitq sendq;     /* blocked senders */
    struct rtlock lock;
};

static inline void *chan_buf(struct hchan *c, size_t i)
{
    return c->buf + i * c->elemsize;
}

/* Copy one element. A pointer-sized element (the Python bridge's PyObject*)
 * gets a constant-size copy, i.e. one load and one store. */
static inline void chan_elem_copy(struct hchan *c, void *dst, const void *src)
{
    if (c->elemsize == sizeof(void *))
        memcpy(dst, src, sizeof(void *));
    else if (c->elemsize != 0)
        memcpy(dst, src, c->elemsize);
}

static inline void chan_elem_clear(struct hchan *c, void *dst)
{
    if (dst != NULL && c->elemsize != 0)
        memset(dst, 0, c->elemsize);
}

/* c->lock held. sg is a receiver just dequeued from c->recvq: hand it *ep
 * directly (Go's send). Returns the G to go_ready after unlocking. */
static inline struct g *chan_send_direct(struct hchan *c, struct sudog *sg, const void *ep)
{
    if (sg->elem != NULL)
        chan_elem_copy(c, sg->elem, ep);
    sg->success = true;
    struct g *gp = sg->g;
    gp->param = sg; /* select: tells the G which of its sudogs won */
    return gp;
}

/* c->lock held. sg is a sender just dequeued from c->sendq (Go's recv).
 * Unbuffered: take its value directly. Buffered: the buffer must be full
 * (a sender only waits then), so take the head element and put the
 * sender's value in the slot it frees, which is also the tail: FIFO order
 * is kept and no element is copied twice. ep may be NULL (value dropped). */
static inline struct g *chan_recv_direct(struct hchan *c, struct sudog *sg, void *ep)
{
    if (c->dataqsiz == 0) {
        if (ep != NULL)
            chan_elem_copy(c, ep, sg->elem);
    } else {
        void *qp = chan_buf(c, c->recvx);
        if (ep != NULL)
            chan_elem_copy(c, ep, qp);
        chan_elem_copy(c, qp, sg->elem);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        c->sendx = c->recvx;
    }
    sg->success = true;
    struct g *gp = sg->g;
    gp->param = sg;
    return gp;
}

/* c->lock held, qcount < dataqsiz. */
static inline void chan_buf_put(struct hchan *c, const void *ep)
{
    chan_elem_copy(c, chan_buf(c, c->sendx), ep);
    if (++c->sendx == c->dataqsiz)
        c->sendx = 0;
    size_t n = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    /* release: see the fast-path comment in chan.c */
    atomic_store_explicit(&c->qcount, n + 1, memory_order_release);
}

/* c->lock held, qcount > 0. ep may be NULL (value dropped). */
static inline void chan_buf_take(struct hchan *c, void *ep)
{
    if (ep != NULL)
        chan_elem_copy(c, ep, chan_buf(c, c->recvx));
    if (++c->recvx == c->dataqsiz)
        c->recvx = 0;
    size_t n = atomic_load_explicit(&c->qcount, memory_order_relaxed);
    atomic_store_explicit(&c->qcount, n - 1, memory_order_release);
}

/* A lock-free read of q->first, for the non-blocking fast paths. The queue
 * is otherwise only touched under the channel lock; waitq.c writes `first`
 * with release stores so that these reads are race-free. */
static inline bool waitq_empty_hint(struct waitq *q)
{
    return __atomic_load_n(&q->first, __ATOMIC_ACQUIRE) == NULL;
}

/* Under the queue's lock: remove sg if it is still queued. Returns true if
 * it was (nobody has dequeued it), false if a waker already took it. Used
 * by an interrupted thread to withdraw its wait. */
bool waitq_withdraw(struct waitq *q, struct sudog *sg);

/* Park the current G on sg, queued on q of c, with c->lock held; c->lock is
 * released by the park. Returns false if the wait was interrupted and
 * withdrawn (interruptible thread only); true once a waker completed it. */
bool chan_park(struct hchan *c, struct waitq *q, struct sudog *sg, enum wait_reason reason);

/* Single-channel operations: chan_send and chan_recv below. block=false is
 * Go's select with one case and a default. A NULL channel blocks forever
 * (Go's nil channel), or until interrupted on an interruptible thread.
 * Their lock-free fast paths are inline here, so a `select` with one case
 * and a default (select.c) costs no call; everything else is the slow
 * path in chan.c. */
int chan_send_slow(struct hchan *c, const void *ep, bool block);
int chan_recv_slow(struct hchan *c, void *ep, bool *ok, bool block);

/* ---- lock-free fast paths ----------------------------------------------
 *
 * A non-blocking operation on a channel that cannot proceed should not take
 * the lock: a polling loop over an idle channel would otherwise bounce its
 * cache line between cores. These follow Go's chansend/chanrecv fast paths
 * and their argument, restated for C11 atomics.
 *
 * Send. The send can't proceed when the channel is open and "full": no
 * parked receiver (unbuffered) or qcount == dataqsiz (buffered). We read
 * `closed` and then fullness, each a single atomic word. A closed channel
 * never goes from "not full" back to "full" (after close recvq stays empty
 * and qcount only falls), so when we see open-then-full there was a moment,
 * between the two reads, at which it was both open and full; we report the
 * send as failing at that moment. The reads may even be reordered (seeing
 * full, then open, means it was open when we saw it full), so relaxed
 * loads do; they still see anything that happened-before the call
 * (coherence), so a caller that knows a receiver is waiting or a slot is
 * free never gets WOULDBLOCK. A stale "full" only costs a failed try, which
 * a non-blocking caller must accept anyway.
 *
 * Receive. The receive can't proceed when the channel is open and empty: no
 * parked sender (unbuffered) or qcount == 0 (buffered). Here the order of
 * the two reads matters: read "closed" first and a channel that was open
 * and non-empty could be closed and drained before we read "empty", and we
 * would wrongly report "open and empty". So we read emptiness first with an
 * acquire load, then `closed`:
 *   - Emptying after a close happens in a later critical section than the
 *     close (or, for an unbuffered channel, in the close's own critical
 *     section after the store of closed, when it releases the parked
 *     senders). qcount and waitq.first are stored with release, so if our
 *     acquire load reads an "empty" written after the close, the close's
 *     store of closed = 1 happens-before our next load, which then sees 1.
 *     Seeing closed == 0 therefore means the "empty" we read predates the
 *     close: the channel was open and empty then; report WOULDBLOCK.
 *   - Seeing closed == 1 (an acquire load of a release store), everything
 *     before the close is visible, including any send that filled the
 *     buffer between our first read and the close, so we read emptiness
 *     again: still empty means closed and drained (ok=false), which stays
 *     true for good; otherwise take the lock and receive normally.
 * Go needs sequentially consistent loads for this; in C11 the release/
 * acquire pairs above carry the argument.
 */

static inline bool chan_full(struct hchan *c)
{
    if (c->dataqsiz == 0)
        return __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED) == NULL;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed) == c->dataqsiz;
}

static inline bool chan_empty(struct hchan *c)
{
    if (c->dataqsiz == 0)
        return waitq_empty_hint(&c->sendq);
    return atomic_load_explicit(&c->qcount, memory_order_acquire) == 0;
}

/* Non-blocking send on a full open channel / receive from an empty open
 * one - the polling loop, and every `select { case ...: default: }` - with
 * the lock-free checks argued above, which the slow paths make too, but
 * without their frame of six saved registers and a sudog: a fail costs a
 * few loads. Everything else goes to the slow path, which checks again. */
static inline int chan_send(struct hchan *c, const void *ep, bool block)
{
    if (!block && likely(c != NULL) && (ep != NULL || c->elemsize == 0) &&
        atomic_load_explicit(&c->closed, memory_order_relaxed) == 0 && chan_full(c))
        return GORO_WOULDBLOCK;
    return chan_send_slow(c, ep, block);
}

static inline int chan_recv(struct hchan *c, void *ep, bool *ok, bool block)
{
    if (!block && likely(c != NULL) && chan_empty(c) &&
        atomic_load_explicit(&c->closed, memory_order_acquire) == 0) {
        if (ok != NULL)
            *ok = false;
        return GORO_WOULDBLOCK;
    }
    return chan_recv_slow(c, ep, ok, block);
}

int chan_close(struct hchan *c);
/* Close c without readying its waiters: push them onto *glist (linked by
 * schedlink) for one go_ready_list after any number of closes. GORO_OK,
 * GORO_CLOSED (nothing done) or GORO_EINVAL (NULL). Many contexts cancelled
 * at once (pygoro.context) ready all their goroutines as one batch. */
int chan_close_collect(struct hchan *c, struct g **glist);

/* Hints for a loop of chan_close_collect over many cold channels (each
 * close is a chain of dependent misses: the channel, its first waiter's
 * sudog, that waiter's G): touch nothing, only start the loads of a
 * channel a few iterations ahead, then of its first waiter. A prefetch
 * never faults, so a stale q->first is harmless. */
static inline void chan_prefetch(const struct hchan *c)
{
    __builtin_prefetch(c, 1);
    __builtin_prefetch((const char *)c + 64, 1); /* recvq, lock */
}

static inline void chan_prefetch_waiter(struct hchan *c)
{
    /* an atomic load: q->first is read without the lock (waitq.c) */
    struct sudog *sg = __atomic_load_n(&c->recvq.first, __ATOMIC_RELAXED);
    if (sg != NULL)
        __builtin_prefetch(sg, 1);
}

/* select (select.c): goro_select's engine. */
int select_go(goro_select_case *cases, int ncases, int64_t timeout_ns);

/* For the Python bridge, before goro_chan_free: call release(elem, ctx) on
 * every element still buffered, oldest first, and leave the channel empty.
 * No other thread may use the channel any more, and no lock is held during
 * the callbacks (they may run Python code, e.g. Py_DECREF). */
void chan_free_elems(struct hchan *c, void (*release)(void *elem, void *ctx), void *ctx);

/* Interruptible threads that lost the race to withdraw their wait and had
 * to complete it instead (go_park_commit_wait). For tests. */
uint64_t chan_interrupt_commits(void);
void chan_count_interrupt_commit(void);

#endif
