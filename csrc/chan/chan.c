/* Channels (Go's chan.go).
 *
 * A channel is a FIFO of elements (a ring of dataqsiz slots, empty for an
 * unbuffered channel) plus two FIFO queues of parked Gs: receivers waiting
 * for a value (recvq) and senders waiting for room or a receiver (sendq).
 * One rtlock guards everything; the parked Gs' sudogs live on their own
 * stacks and point at the element to send or the buffer to receive into.
 *
 * Invariants (with c->lock held), not counting the sudogs of selects that
 * another case has already won, which stay queued until their G comes back
 * to remove them and which every waker skips:
 *   - At least one of sendq and recvq is empty, except for an unbuffered
 *     channel with one G selecting on both sending and receiving on it,
 *     whose two sudogs can sit in both queues at once (a select never
 *     completes against itself: it is parked).
 *   - Buffered: qcount > 0 implies recvq is empty (a receiver would have
 *     taken the value); qcount < dataqsiz implies sendq is empty (a sender
 *     would have used the slot).
 *   - Once closed, sendq stays empty (close fails every waiting sender and
 *     later senders fail at once) and recvq stays empty (close wakes every
 *     receiver, later ones return at once); qcount only decreases.
 *
 * A sender meeting a parked receiver copies its value straight into the
 * receiver's buffer (and vice versa); a receiver on a full buffered channel
 * with a parked sender takes the head of the buffer and moves that sender's
 * value into the freed slot. The woken G finds its operation done and its
 * sudog's `success` set (false: woken by close).
 *
 * Interruptible threads (the Python main thread) may come back from go_park
 * early: they retake the lock and withdraw their sudog if it is still
 * queued (nothing happened: GORO_INTERRUPTED); if a waker has already
 * dequeued it, the operation is committed and they wait for the waker's
 * go_ready instead (go_park_commit_wait), so nothing is lost or doubled.
 *
 * Non-blocking operations on an empty or full channel return without the
 * lock; the reasoning is in chan_try_send_fails / chan_try_recv_fails.
 */
#include <stdlib.h>

#include "chan.h"

/* Go's maxAlign: the ring is placed after the header at this alignment, so
 * any element type can live in it. */
#define CHAN_BUF_ALIGN 16

static _Atomic uint64_t interrupt_commits;

uint64_t chan_interrupt_commits(void)
{
    return atomic_load_explicit(&interrupt_commits, memory_order_relaxed);
}

void chan_count_interrupt_commit(void)
{
    atomic_fetch_add_explicit(&interrupt_commits, 1, memory_order_relaxed);
}

goro_chan_t *goro_chan_new(size_t elemsize, size_t cap)
{
    size_t hdr = (sizeof(struct hchan) + CHAN_BUF_ALIGN - 1) & ~(size_t)(CHAN_BUF_ALIGN - 1);
    size_t mem;
    if (elemsize != 0 && cap > (SIZE_MAX - hdr) / elemsize)
        return NULL;
    mem = elemsize * cap;
    /* Go caps elements at 64 KiB; we only refuse absurd sizes (a blocked
     * sender's copy happens under the lock, so keep them sane). */
    if (elemsize > ((size_t)1 << 30))
        return NULL;
    struct hchan *c = aligned_alloc(CHAN_BUF_ALIGN, (hdr + mem + CHAN_BUF_ALIGN - 1) &
                                                        ~(size_t)(CHAN_BUF_ALIGN - 1));
    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof *c);
    c->dataqsiz = cap;
    c->elemsize = elemsize;
    c->buf = (char *)c + hdr;
    return c;
}

void goro_chan_free(goro_chan_t *c)
{
    if (c == NULL)
        return;
    /* Freeing a channel somebody is parked on would let a later waker write
     * into freed memory and strand the waiter: report it now. */
    rtlock_lock(&c->lock);
    bool waiters = c->recvq.first != NULL || c->sendq.first != NULL;
    rtlock_unlock(&c->lock);
    if (waiters)
        rt_throw("goro_chan_free of a channel with blocked senders or receivers");
    free(c);
}

void chan_free_elems(struct hchan *c, void (*release)(void *elem, void *ctx), void *ctx)
{
    /* No lock: the caller guarantees nobody else can reach c, and release
     * may run arbitrary Python code (DESIGN.md rule 12). Count down as we go
     * so a re-entrant call sees only what is left. */
    while (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
        void *elem = chan_buf(c, c->recvx);
        if (++c->recvx == c->dataqsiz)
            c->recvx = 0;
        atomic_store_explicit(&c->qcount, atomic_load_explicit(&c->qcount, memory_order_relaxed) - 1,
                              memory_order_relaxed);
        release(elem, ctx);
    }
    c->sendx = c->recvx;
}

/* ---- parking ------------------------------------------------------------ */

static bool chan_park_commit(struct g *gp, void *arg)
{
    (void)gp;
    rtlock_unlock(arg);
    return true;
}

bool chan_park(struct hchan *c, struct waitq *q, struct sudog *sg, enum wait_reason reason)
{
    struct g *gp = sg->g;
    /* false for goroutines: only a plain thread that asked for it */
    bool intr = thread_is_interruptible();
    gp->thread_interruptible = intr;
    go_park(chan_park_commit, &c->lock, reason);
    if (likely(!intr))
        return true;
    gp->thread_interruptible = false;
    if (!gp->thread_interrupted)
        return true;
    /* A signal (or the runtime going idle) cut the sleep short. Whether the
     * operation happened is decided under the lock: a waker dequeues our
     * sudog under it before touching anything of ours. */
    rtlock_lock(&c->lock);
    bool withdrawn = waitq_withdraw(q, sg);
    rtlock_unlock(&c->lock);
    if (withdrawn)
        return false;
    /* Committed: the waker has filled in sg (or will, under the lock it
     * holds) and its go_ready is on the way. Wait for it uninterruptibly,
     * so that our reads of sg happen after its writes. */
    chan_count_interrupt_commit();
    go_park_commit_wait(gp);
    return true;
}

/* Block forever: a nil channel, or a select with no cases. An interruptible
 * thread returns (nothing can have happened). */
static void park_forever(enum wait_reason reason)
{
    struct g *gp = getg();
    bool intr = thread_is_interruptible();
    gp->thread_interruptible = intr;
    go_park(NULL, NULL, reason);
    gp->thread_interruptible = false;
    if (!intr || !gp->thread_interrupted)
        rt_throw("goroutine woken from a wait on a nil channel");
}

/* ---- send, receive, close ----------------------------------------------- */

/* The blocking and locked paths of chan_send (chan.h): out of line, so that
 * the fast path in front of it needs no stack frame. */
__attribute__((noinline)) int chan_send_slow(struct hchan *c, const void *ep, bool block)
{
    if (unlikely(c == NULL)) {
        if (!block)
            return GORO_WOULDBLOCK;
        park_forever(WAIT_CHAN_SEND_NIL);
        return GORO_INTERRUPTED;
    }
    if (unlikely(ep == NULL && c->elemsize != 0))
        rt_throw("channel send of a NULL element (elemsize %zu)", c->elemsize);

    if (!block && atomic_load_explicit(&c->closed, memory_order_relaxed) == 0 && chan_full(c))
        return GORO_WOULDBLOCK;

    rtlock_lock(&c->lock);
    if (unlikely(atomic_load_explicit(&c->closed, memory_order_relaxed))) {
        rtlock_unlock(&c->lock);
        return GORO_CLOSED;
    }
    struct sudog *sg = waitq_dequeue(&c->recvq);
    if (sg != NULL) {
        struct g *gp = chan_send_direct(c, sg, ep);
        rtlock_unlock(&c->lock);
        go_ready(gp);
        return GORO_OK;
    }
    if (atomic_load_explicit(&c->qcount, memory_order_relaxed) < c->dataqsiz) {
        chan_buf_put(c, ep);
        rtlock_unlock(&c->lock);
        return GORO_OK;
    }
    if (!block) {
        rtlock_unlock(&c->lock);
        return GORO_WOULDBLOCK;
    }

    /* Park until a receiver takes the value or the channel is closed. The
     * receiver reads from ep directly, so ep must stay valid: it does, we
     * are blocked until then. */
    _Alignas(64) struct sudog mysg; /* one line for the waker: see struct sudog */
    memset(&mysg, 0, sizeof mysg);
    mysg.g = getg();
    mysg.elem = (void *)ep;
    mysg.c = c;
    waitq_enqueue(&c->sendq, &mysg);
    if (!chan_park(c, &c->sendq, &mysg, WAIT_CHAN_SEND))
        return GORO_INTERRUPTED;
    return mysg.success ? GORO_OK : GORO_CLOSED;
}

__attribute__((noinline)) int chan_recv_slow(struct hchan *c, void *ep, bool *ok, bool block)
{
    bool received = false;
    int rc = GORO_OK;
    if (unlikely(c == NULL)) {
        if (!block) {
            rc = GORO_WOULDBLOCK;
            goto out;
        }
        park_forever(WAIT_CHAN_RECEIVE_NIL);
        rc = GORO_INTERRUPTED;
        goto out;
    }

    if (!block && chan_empty(c)) {
        if (atomic_load_explicit(&c->closed, memory_order_acquire) == 0) {
            rc = GORO_WOULDBLOCK;
            goto out;
        }
        if (chan_empty(c)) {
            chan_elem_clear(c, ep);
            goto out;
        }
    }

    rtlock_lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed) &&
        atomic_load_explicit(&c->qcount, memory_order_relaxed) == 0) {
        rtlock_unlock(&c->lock);
        chan_elem_clear(c, ep);
        goto out;
    }
    /* Not closed, or closed with values still buffered (then sendq is
     * empty and we fall through to the buffer). */
    struct sudog *sg = waitq_dequeue(&c->sendq);
    if (sg != NULL) {
        struct g *gp = chan_recv_direct(c, sg, ep);
        rtlock_unlock(&c->lock);
        go_ready(gp);
        received = true;
        goto out;
    }
    if (atomic_load_explicit(&c->qcount, memory_order_relaxed) > 0) {
        chan_buf_take(c, ep);
        rtlock_unlock(&c->lock);
        received = true;
        goto out;
    }
    if (!block) {
        rtlock_unlock(&c->lock);
        rc = GORO_WOULDBLOCK;
        goto out;
    }

    _Alignas(64) struct sudog mysg; /* one line for the waker: see struct sudog */
    memset(&mysg, 0, sizeof mysg);
    mysg.g = getg();
    mysg.elem = ep;
    mysg.c = c;
    /* What a close leaves in *ep, written now while it is in our cache:
     * the closer then touches only our sudog (chan_close_collect). */
    chan_elem_clear(c, ep);
    waitq_enqueue(&c->recvq, &mysg);
    if (!chan_park(c, &c->recvq, &mysg, WAIT_CHAN_RECEIVE))
        rc = GORO_INTERRUPTED;
    else
        received = mysg.success; /* false: closed; close zeroed *ep */
out:
    if (ok != NULL)
        *ok = received;
    return rc;
}

int chan_close_collect(struct hchan *c, struct g **glist)
{
    if (c == NULL)
        return GORO_EINVAL;
    rtlock_lock(&c->lock);
    if (atomic_load_explicit(&c->closed, memory_order_relaxed)) {
        rtlock_unlock(&c->lock);
        return GORO_CLOSED;
    }
    /* release: pairs with the fast paths' acquire loads (see above), and
     * must precede the release stores that empty the queues below. */
    atomic_store_explicit(&c->closed, 1, memory_order_release);

    /* Collect every parked G, linked through schedlink (free while a G is
     * parked), for the caller to ready after we unlock: the lock is held
     * for the queue walk only. */
    struct g *head = *glist;
    struct sudog *sg;
    while ((sg = waitq_dequeue(&c->recvq)) != NULL) {
        /* *sg->elem is left alone: a plain receiver cleared it before it
         * queued, a select clears its winning case's after waking (one cold
         * line less per waiter when a cancel closes thousands) */
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = head;
        head = sg->g;
    }
    while ((sg = waitq_dequeue(&c->sendq)) != NULL) {
        /* the sender keeps its value (the bridge keeps its reference) */
        sg->success = false;
        sg->g->param = sg;
        sg->g->schedlink = head;
        head = sg->g;
    }
    rtlock_unlock(&c->lock);
    *glist = head;
    return GORO_OK;
}

int chan_close(struct hchan *c)
{
    struct g *glist = NULL;
    int rc = chan_close_collect(c, &glist);
    go_ready_list(glist);
    return rc;
}

/* ---- public API --------------------------------------------------------- */

int goro_chan_send(goro_chan_t *c, const void *elem)
{
    return chan_send(c, elem, true);
}

int goro_chan_recv(goro_chan_t *c, void *elem, bool *ok)
{
    return chan_recv(c, elem, ok, true);
}

int goro_chan_try_send(goro_chan_t *c, const void *elem)
{
    return chan_send(c, elem, false);
}

int goro_chan_try_recv(goro_chan_t *c, void *elem, bool *ok)
{
    return chan_recv(c, elem, ok, false);
}

int goro_chan_close(goro_chan_t *c)
{
    return chan_close(c);
}

size_t goro_chan_len(goro_chan_t *c)
{
    if (c == NULL)
        return 0;
    return atomic_load_explicit(&c->qcount, memory_order_relaxed);
}

size_t goro_chan_cap(goro_chan_t *c)
{
    return c == NULL ? 0 : c->dataqsiz;
}

size_t goro_chan_elemsize(goro_chan_t *c)
{
    return c == NULL ? 0 : c->elemsize;
}

bool goro_chan_closed(goro_chan_t *c)
{
    /* acquire: a caller that sees "closed" also sees what preceded close */
    return c != NULL && atomic_load_explicit(&c->closed, memory_order_acquire) != 0;
}
