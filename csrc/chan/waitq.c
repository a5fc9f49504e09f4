/* Wait queues of sudogs (Go's waitq): doubly linked FIFO lists guarded by
 * the lock of whatever owns them (a channel's lock).
 *
 * Invariants:
 *   - A queued sudog is reachable from q->first; a sudog that is not queued
 *     has next == prev == NULL and is not q->first. A sudog is only ever
 *     linked on one queue, and each is removed exactly once, either by a
 *     waker (waitq_dequeue) or by its own G (waitq_remove / waitq_withdraw).
 *   - A select parks one G on several queues (one sudog per case), and
 *     exactly one waker may complete it: the one whose CAS of
 *     g->select_done 0 -> 1 succeeds. waitq_dequeue unlinks a sudog before
 *     trying the CAS, so a sudog whose G was claimed elsewhere is dropped
 *     from the queue on the way; its G later calls waitq_remove for every
 *     case, which is a no-op for a sudog that is no longer linked.
 *
 * q->first is also read without the lock, by the channel's non-blocking
 * fast paths (waitq_empty_hint in chan.h), so every write of it is an atomic
 * release store: the lock-free reader then sees either the old or the new
 * pointer, never a torn one, and (see chan.c) a NULL that a close stored
 * carries the close with it. The other fields are only touched under lock.
 */
#include "chan.h"

static inline void set_first(struct waitq *q, struct sudog *sg)
{
    __atomic_store_n(&q->first, sg, __ATOMIC_RELEASE);
}

void waitq_enqueue(struct waitq *q, struct sudog *sg)
{
    sg->next = NULL;
    struct sudog *x = q->last;
    if (x != NULL) {
        sg->prev = x;
        x->next = sg;
        q->last = sg;
        return;
    }
    sg->prev = NULL;
    q->last = sg;
    set_first(q, sg);
}

struct sudog *waitq_dequeue(struct waitq *q)
{
    for (;;) {
        struct sudog *sg = q->first;
        if (sg == NULL)
            return NULL;
        struct sudog *y = sg->next;
        if (y == NULL) {
            q->last = NULL;
            set_first(q, NULL);
        } else {
            y->prev = NULL;
            set_first(q, y);
            sg->next = NULL; /* marks it unlinked, see waitq_remove */
        }
        /* A select's G may be parked on several queues; between another
         * case winning it and the G taking our lock to remove its other
         * sudogs, we can meet one here. The CAS makes exactly one waker the
         * winner. Relaxed: it only has to pick a winner, it publishes
         * nothing. What the winner writes into the sudog reaches the G
         * through go_ready (release/acquire), and the G's own reset of
         * select_done to 0 happens under every lock of its select, after
         * the winner readied it, so no stale CAS can follow it. */
        if (sg->is_select) {
            uint32_t zero = 0;
            if (!atomic_compare_exchange_strong_explicit(&sg->g->select_done, &zero, 1,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed))
                continue;
        }
        return sg;
    }
}

void waitq_remove(struct waitq *q, struct sudog *sg)
{
    struct sudog *x = sg->prev;
    struct sudog *y = sg->next;
    if (x != NULL) {
        if (y != NULL) {
            x->next = y;
            y->prev = x;
        } else {
            x->next = NULL;
            q->last = x;
        }
        sg->next = NULL;
        sg->prev = NULL;
        return;
    }
    if (y != NULL) {
        y->prev = NULL;
        set_first(q, y);
        sg->next = NULL;
        return;
    }
    /* Unlinked on both sides: either the only element, or already
     * dequeued. q->first tells which. */
    if (q->first == sg) {
        q->last = NULL;
        set_first(q, NULL);
    }
}

bool waitq_withdraw(struct waitq *q, struct sudog *sg)
{
    if (sg->prev == NULL && sg->next == NULL && q->first != sg)
        return false;
    waitq_remove(q, sg);
    return true;
}
