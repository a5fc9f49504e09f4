/* The runtime semaphore and the notify list (Go's runtime/sema.go).
 *
 * Semaphore. semacquire1/semrelease1 are not a general-purpose semaphore so
 * much as a sleep/wakeup pair for the contended paths of Mutex, RWMutex and
 * WaitGroup: every sleep is paired with one wakeup, even when the wakeup
 * (the release) happens before the sleep. The count lives in the caller's
 * 32-bit word; the waiters live here, in a fixed table of SEMTAB_SIZE
 * buckets keyed by the word's address. Each bucket has an rtlock, a list of
 * parked sudogs and `nwait`, the number of Gs that are in, or about to
 * enter, the bucket's queues.
 *
 * The nwait trick (keeps the lock off an uncontended release):
 *
 *     acquirer                          releaser
 *     lock(bucket)                      xadd(addr, +1)
 *     xadd(nwait, +1)                   if load(nwait) == 0: return
 *     if cansemacquire(addr): undo      lock(bucket); dequeue; ready
 *     queue; park (unlocks)
 *
 * This is a store-buffer (Dekker) pattern: each side writes one word and
 * reads the other's. With all four accesses seq_cst, the single total order
 * puts one side's write before the other side's read, so either the
 * acquirer sees the count (and does not sleep) or the releaser sees
 * nwait > 0 (and takes the lock, which it can only get once the acquirer has
 * queued itself and parked). Weaker orders would let both reads see the old
 * values: a lost wakeup.
 *
 * Queue shape. A bucket holds a doubly linked list (next/prev) of "heads",
 * one sudog per distinct address with parked waiters; each head carries the
 * other waiters on its address as a singly linked FIFO (waitlink), with
 * waittail pointing at the last, so enqueue at either end and dequeue are
 * O(1) once the head is found. Go keeps the heads in a treap to bound the
 * search at O(log n) when many distinct addresses share a bucket
 * (golang.org/issue/17953 was about many waiters on one address, which the
 * second-level list fixes). We keep a plain list: finding the head costs
 * one pointer chase per distinct contended address in the bucket, and with
 * 251 buckets that is about one unless a program has hundreds of distinct
 * Mutexes contended at the same instant, where a list walk under a
 * bucket lock is still short next to the park it precedes. A treap can
 * replace the list behind sema_queue/sema_dequeue if that ever shows.
 *
 * Order. Waiters queue FIFO unless they ask for lifo (a Mutex waiter that
 * was woken and lost the race for the lock). Unlike Go, a waiter woken here
 * whose count was taken by a barging fast-path acquirer before it ran also
 * re-queues at the head: it has already waited its turn once.
 *
 * Handoff. semrelease1(addr, true) takes the count it just added back out
 * and gives it to the dequeued waiter (s->ticket = 1), so no barger can take
 * it; the releasing goroutine then yields (go_sched) so the waiter, now in
 * this P's runnext, runs at once (Go's goyield; golang.org/issue/33747).
 * A releasing plain thread does not yield: the waiter is already queued for
 * an M and yielding an OS thread buys nothing.
 *
 * Sudogs live on the waiters' stacks (ours never move). A waiter's sudog is
 * only touched by others while it is queued (under the bucket lock) and by
 * the one releaser that dequeued it, between the dequeue and go_ready;
 * after go_ready the waiter may return and the sudog is gone.
 *
 * Interruptible waits. semacquire1 never gives up, as Go's Mutex.Lock does
 * not. sema_acquire(..., intr=true), used by the Python bridge, lets an
 * interruptible plain thread (Python's main thread, see
 * goro_thread_set_interruptible) whose sleep a signal cut short withdraw:
 * under the bucket lock it takes its sudog back out of the queue and undoes
 * its nwait. If a releaser dequeued it first, the releaser is committed to
 * it (its go_ready is on the way, with a ticket or a count), so the thread
 * waits for that uninterruptibly and reports the acquisition as
 * SEMA_ACQUIRED_INTERRUPTED; the caller, which knows what the count means
 * (a Mutex wakeup, a handoff, a WaitGroup release), then gives it up
 * properly. Goroutines are never interrupted.
 */
#include <stdlib.h>
#include <string.h>

#include "sema.h"

#define SEMTAB_SIZE 251 /* prime, so it does not correlate with user patterns */
#define CACHE_LINE 64

struct sema_root {
    _Alignas(CACHE_LINE) struct rtlock lock;
    /* Gs queued or about to queue in this bucket; read without the lock */
    _Atomic uint32_t nwait;
    struct sudog *heads; /* one sudog per distinct address, see above */
};

static struct sema_root semtable[SEMTAB_SIZE];

static struct sema_root *root_for(_Atomic uint32_t *addr)
{
    return &semtable[((uintptr_t)addr >> 3) % SEMTAB_SIZE];
}

bool sema_tryacquire(_Atomic uint32_t *addr)
{
    /* seq_cst: this load is the acquirer's read in the nwait pattern above,
     * and the successful CAS must also acquire what the releaser published
     * before its xadd. */
    uint32_t v = atomic_load(addr);
    while (v != 0) {
        if (atomic_compare_exchange_weak(addr, &v, v - 1))
            return true;
    }
    return false;
}

/* Queue s as a waiter on addr. Bucket lock held. */
static void sema_queue(struct sema_root *root, uintptr_t addr, struct sudog *s, bool lifo)
{
    s->addr = addr;
    s->waitlink = NULL;
    s->waittail = NULL;
    for (struct sudog *t = root->heads; t != NULL; t = t->next) {
        if (t->addr != addr)
            continue;
        if (lifo) {
            /* s becomes the head in t's place; t leads s's wait list. */
            s->prev = t->prev;
            s->next = t->next;
            if (s->prev != NULL)
                s->prev->next = s;
            else
                root->heads = s;
            if (s->next != NULL)
                s->next->prev = s;
            s->waitlink = t;
            s->waittail = t->waittail != NULL ? t->waittail : t;
            t->prev = NULL;
            t->next = NULL;
            t->waittail = NULL;
        } else {
            if (t->waittail != NULL)
                t->waittail->waitlink = s;
            else
                t->waitlink = s;
            t->waittail = s;
        }
        return;
    }
    /* First waiter on addr: a new head. */
    s->prev = NULL;
    s->next = root->heads;
    if (s->next != NULL)
        s->next->prev = s;
    root->heads = s;
}

/* Remove and return the first waiter on addr, or NULL. Bucket lock held. */
static struct sudog *sema_dequeue(struct sema_root *root, uintptr_t addr)
{
    struct sudog *s = root->heads;
    while (s != NULL && s->addr != addr)
        s = s->next;
    if (s == NULL)
        return NULL;
    struct sudog *t = s->waitlink;
    if (t != NULL) {
        /* The next waiter on addr takes s's place as head. */
        t->prev = s->prev;
        t->next = s->next;
        if (t->prev != NULL)
            t->prev->next = t;
        else
            root->heads = t;
        if (t->next != NULL)
            t->next->prev = t;
        t->waittail = t->waitlink != NULL ? s->waittail : NULL;
    } else {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            root->heads = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
    }
    s->next = NULL;
    s->prev = NULL;
    s->waitlink = NULL;
    s->waittail = NULL;
    return s;
}

static bool sema_park_unlock(struct g *gp, void *arg)
{
    (void)gp;
    rtlock_unlock(arg);
    return true;
}

/* Under the bucket lock: take s out of addr's queue if it is still there
 * (no releaser has dequeued it). The mirror of sema_dequeue for a waiter in
 * any position. */
static bool sema_withdraw(struct sema_root *root, uintptr_t addr, struct sudog *s)
{
    struct sudog *head = root->heads;
    while (head != NULL && head->addr != addr)
        head = head->next;
    if (head == NULL)
        return false;
    if (head == s) {
        sema_dequeue(root, addr); /* s is first: the ordinary dequeue */
        return true;
    }
    for (struct sudog *prev = head; prev->waitlink != NULL; prev = prev->waitlink) {
        if (prev->waitlink != s)
            continue;
        prev->waitlink = s->waitlink;
        if (head->waittail == s)
            head->waittail = prev == head ? NULL : prev;
        s->waitlink = NULL;
        return true;
    }
    return false;
}

enum sema_result sema_acquire(_Atomic uint32_t *addr, bool lifo, enum wait_reason reason,
                              bool intr)
{
    if (sema_tryacquire(addr))
        return SEMA_ACQUIRED;

    struct sudog s;
    memset(&s, 0, sizeof s);
    struct g *gp = getg();
    s.g = gp;
    /* false for goroutines: only a plain thread that asked for it */
    intr = intr && thread_is_interruptible();
    bool interrupted = false;
    struct sema_root *root = root_for(addr);
    for (;;) {
        rtlock_lock(&root->lock);
        /* Count ourselves in before the last look at the count: any release
         * after this look sees nwait > 0 and comes for us (see the top). */
        atomic_fetch_add(&root->nwait, 1);
        if (sema_tryacquire(addr)) {
            atomic_fetch_sub(&root->nwait, 1);
            rtlock_unlock(&root->lock);
            return interrupted ? SEMA_ACQUIRED_INTERRUPTED : SEMA_ACQUIRED;
        }
        s.ticket = 0;
        sema_queue(root, (uintptr_t)addr, &s, lifo);
        gp->thread_interruptible = intr;
        go_park(sema_park_unlock, &root->lock, reason);
        if (unlikely(intr)) {
            gp->thread_interruptible = false;
            if (gp->thread_interrupted) {
                /* Whether we were released is decided under the bucket
                 * lock: a releaser dequeues us under it before it touches
                 * our sudog. */
                rtlock_lock(&root->lock);
                bool withdrawn = sema_withdraw(root, (uintptr_t)addr, &s);
                if (withdrawn)
                    atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
                rtlock_unlock(&root->lock);
                if (withdrawn)
                    return SEMA_WITHDRAWN;
                go_park_commit_wait(gp);
                interrupted = true;
                intr = false; /* no second interruption: finish quickly */
            }
        }
        /* The releaser dequeued us and decremented nwait. ticket != 0: it
         * handed its count to us. Otherwise the count is in *addr, unless a
         * barger took it first; then we queue again, at the front (an
         * interrupted thread gives up instead: it holds nothing). */
        if (s.ticket != 0 || sema_tryacquire(addr))
            return interrupted ? SEMA_ACQUIRED_INTERRUPTED : SEMA_ACQUIRED;
        if (interrupted)
            return SEMA_WITHDRAWN;
        lifo = true;
    }
}

void semacquire1(_Atomic uint32_t *addr, bool lifo, enum wait_reason reason)
{
    (void)sema_acquire(addr, lifo, reason, false);
}

void semrelease1(_Atomic uint32_t *addr, bool handoff)
{
    struct sema_root *root = root_for(addr);
    atomic_fetch_add(addr, 1); /* seq_cst: see the nwait pattern above */

    /* Easy case: nobody waiting in this bucket. Must come after the xadd,
     * or a waiter that has just counted itself in would be missed. */
    if (atomic_load(&root->nwait) == 0)
        return;

    rtlock_lock(&root->lock);
    if (atomic_load_explicit(&root->nwait, memory_order_relaxed) == 0) {
        /* Somebody already took the count; nobody to wake. */
        rtlock_unlock(&root->lock);
        return;
    }
    struct sudog *s = sema_dequeue(root, (uintptr_t)addr);
    if (s != NULL)
        atomic_fetch_sub_explicit(&root->nwait, 1, memory_order_relaxed);
    rtlock_unlock(&root->lock);
    if (s == NULL)
        return;

    /* s is ours until go_ready: its G stays parked until then. */
    struct g *gp = s->g;
    if (s->ticket != 0)
        rt_throw("semrelease: corrupted semaphore ticket");
    bool handed = false;
    if (handoff && sema_tryacquire(addr)) {
        s->ticket = 1;
        handed = true;
    }
    go_ready(gp); /* publishes s->ticket (release) */
    if (handed && in_goroutine()) {
        /* Direct handoff: gp sits in our runnext; let it run now, so a
         * contended lock does not bounce between Ps while its owner waits.
         * Only with handoff: without it another waiter may take the count
         * while we yield, and the yield is wasted. */
        go_sched();
    }
}

int sema_nwaiters(_Atomic uint32_t *addr)
{
    struct sema_root *root = root_for(addr);
    int n = 0;
    rtlock_lock(&root->lock);
    for (struct sudog *t = root->heads; t != NULL; t = t->next) {
        if (t->addr != (uintptr_t)addr)
            continue;
        for (struct sudog *w = t; w != NULL; w = w->waitlink)
            n++;
        break;
    }
    rtlock_unlock(&root->lock);
    return n;
}

void goro_semacquire(_Atomic uint32_t *addr)
{
    semacquire1(addr, false, WAIT_SEMACQUIRE);
}

void goro_semrelease(_Atomic uint32_t *addr, bool handoff)
{
    semrelease1(addr, handoff);
}

/* ------------------------------------------------------------------------ */
/* Notify list (Go's notifyList), the wait queue behind Cond.
 *
 * notify_list_add takes a ticket (l->wait++) while the Cond's lock is still
 * held; the waiter then unlocks the Cond's lock and parks with that ticket.
 * l->notify is the next ticket to be notified: tickets below it have been
 * notified. Signal notifies ticket l->notify (and wakes its owner if it is
 * already parked; if not, the owner will see its ticket notified and not
 * park). Broadcast notifies every ticket handed out so far. A ticket taken
 * after a notification is not covered by it, which is Go's guarantee:
 * Signal wakes a goroutine that was waiting when it was called.
 *
 * wait and notify wrap around; comparisons are done on the difference,
 * correct while fewer than 2^31 waiters are outstanding.
 *
 * Giving a ticket up. An interrupted waiter (notify_list_wait_ex) unlinks
 * its sudog but keeps its ticket: to a notifier it looks like a waiter that
 * has not parked yet, so a notification meant for it marks it notified and
 * is seen on the next wait. A waiter that leaves for good (Ctrl-C, or a
 * Cond whose unlock failed) calls notify_list_abandon: a ticket already
 * notified passes its notification on (notify_one), a pending one is
 * recorded as abandoned, and notify_one, reaching an abandoned ticket,
 * notifies the next one instead. Without that, a Signal could be spent on
 * a waiter that is gone while a real one sleeps on.
 */

static inline bool ticket_less(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

uint32_t notify_list_add(struct notify_list *l)
{
    /* May run concurrently with other adders (a Cond over a lock held in
     * shared mode) and with notifiers' lock-free reads: an atomic RMW.
     * seq_cst pairs with the notifiers' fast-path loads; the Cond's lock
     * (held here, taken by a correct notifier) already orders them, this
     * only keeps a notifier that does not hold the lock from reading an
     * arbitrarily stale count. */
    return atomic_fetch_add(&l->wait, 1);
}

struct notify_abandoned {
    uint32_t ticket;
    struct notify_abandoned *next;
};

/* Lock held: record ticket t as abandoned, in node n. */
static void abandon_locked(struct notify_list *l, uint32_t t, struct notify_abandoned *n)
{
    n->ticket = t;
    n->next = l->abandoned;
    l->abandoned = n;
    l->nabandoned++;
}

/* Lock held: if ticket t was abandoned, forget it and return its node. */
static struct notify_abandoned *take_abandoned(struct notify_list *l, uint32_t t)
{
    for (struct notify_abandoned **pp = &l->abandoned; *pp != NULL; pp = &(*pp)->next) {
        struct notify_abandoned *n = *pp;
        if (n->ticket != t)
            continue;
        *pp = n->next;
        l->nabandoned--;
        return n;
    }
    return NULL;
}

bool notify_list_wait_ex(struct notify_list *l, uint32_t t, enum wait_reason reason, bool intr)
{
    struct g *gp = getg();
    rtlock_lock(&l->lock);
    /* Already notified: between our add and now, a Signal or Broadcast
     * covered our ticket. notify is only written under the lock. */
    if (ticket_less(t, atomic_load_explicit(&l->notify, memory_order_relaxed))) {
        rtlock_unlock(&l->lock);
        return true;
    }
    struct sudog s;
    memset(&s, 0, sizeof s);
    s.g = gp;
    s.ticket = t;
    if (l->tail == NULL)
        l->head = &s;
    else
        l->tail->next = &s;
    l->tail = &s;
    intr = intr && thread_is_interruptible();
    gp->thread_interruptible = intr;
    go_park(sema_park_unlock, &l->lock, reason);
    /* Woken: a notifier unlinked s and readied us. */
    if (likely(!intr))
        return true;
    gp->thread_interruptible = false;
    if (!gp->thread_interrupted)
        return true;
    /* Interrupted. Still linked means not notified (notifiers unlink the
     * sudog of the ticket they notify, under the lock): unlink it. The
     * ticket stays ours, like one taken and not yet waited for: a notifier
     * reaching it meanwhile marks it notified, and the caller's next wait
     * on it (or notify_list_abandon) sees that. */
    rtlock_lock(&l->lock);
    struct sudog *p = NULL, *q = l->head;
    while (q != NULL && q != &s) {
        p = q;
        q = q->next;
    }
    if (q != NULL) {
        if (p != NULL)
            p->next = s.next;
        else
            l->head = s.next;
        if (l->tail == &s)
            l->tail = p;
        rtlock_unlock(&l->lock);
        return false;
    }
    rtlock_unlock(&l->lock);
    go_park_commit_wait(gp); /* notified: the go_ready is on its way */
    return true;
}

void notify_list_wait(struct notify_list *l, uint32_t t, enum wait_reason reason)
{
    (void)notify_list_wait_ex(l, t, reason, false);
}

void notify_list_abandon(struct notify_list *l, uint32_t t)
{
    /* Allocated before the lock; malloc may take its own locks. */
    struct notify_abandoned *node = malloc(sizeof *node);
    if (node == NULL)
        rt_throw("out of memory abandoning a Cond ticket");
    rtlock_lock(&l->lock);
    if (ticket_less(t, atomic_load_explicit(&l->notify, memory_order_relaxed))) {
        /* Notified: pass the notification on (spurious wakeups are allowed
         * by Cond's contract; a lost one would hang a waiter). */
        rtlock_unlock(&l->lock);
        free(node);
        notify_list_notify_one(l);
        return;
    }
    abandon_locked(l, t, node);
    rtlock_unlock(&l->lock);
}

void notify_list_destroy(struct notify_list *l)
{
    struct notify_abandoned *n = l->abandoned;
    l->abandoned = NULL;
    l->nabandoned = 0;
    while (n != NULL) {
        struct notify_abandoned *next = n->next;
        free(n);
        n = next;
    }
}

void notify_list_notify_one(struct notify_list *l)
{
    /* Fast path: no ticket taken since the last notification. Racy, and
     * fine: a ticket taken after these loads was taken after this Signal
     * began, so it need not be covered by it. */
    if (atomic_load(&l->wait) == atomic_load(&l->notify))
        return;

    rtlock_lock(&l->lock);
    for (;;) {
        uint32_t t = atomic_load_explicit(&l->notify, memory_order_relaxed);
        if (t == atomic_load(&l->wait)) {
            rtlock_unlock(&l->lock);
            return;
        }
        atomic_store(&l->notify, t + 1);
        /* Find ticket t's owner if it has parked already. Waiters take
         * tickets in order but may park out of order, so search. If it has
         * not parked yet, it will find its ticket notified in
         * notify_list_wait. */
        struct sudog *p = NULL;
        for (struct sudog *s = l->head; s != NULL; p = s, s = s->next) {
            if (s->ticket != t)
                continue;
            struct sudog *n = s->next;
            if (p != NULL)
                p->next = n;
            else
                l->head = n;
            if (n == NULL)
                l->tail = p;
            s->next = NULL;
            struct g *gp = s->g;
            rtlock_unlock(&l->lock);
            go_ready(gp);
            return;
        }
        struct notify_abandoned *gone = l->nabandoned ? take_abandoned(l, t) : NULL;
        if (gone == NULL) {
            rtlock_unlock(&l->lock);
            return;
        }
        /* Its waiter gave up: notify the next ticket instead. free() under
         * an rtlock is fine (no Python, no runtime lock inside). */
        free(gone);
    }
}

void notify_list_notify_all(struct notify_list *l)
{
    if (atomic_load(&l->wait) == atomic_load(&l->notify))
        return;

    /* Take the whole list under the lock, wake outside it: go_ready does
     * not block, but a long list should not hold up new waiters. Every
     * abandoned ticket is covered too: forget them. */
    rtlock_lock(&l->lock);
    struct sudog *s = l->head;
    l->head = NULL;
    l->tail = NULL;
    atomic_store(&l->notify, atomic_load(&l->wait));
    struct notify_abandoned *gone = l->abandoned;
    l->abandoned = NULL;
    l->nabandoned = 0;
    rtlock_unlock(&l->lock);

    while (s != NULL) {
        /* Read everything we need from s first: after go_ready its owner
         * may run, return, and reuse the stack s lives on. */
        struct sudog *next = s->next;
        struct g *gp = s->g;
        s->next = NULL;
        go_ready(gp);
        s = next;
    }
    while (gone != NULL) {
        struct notify_abandoned *next = gone->next;
        free(gone);
        gone = next;
    }
}

uint32_t notify_list_pending(struct notify_list *l)
{
    rtlock_lock(&l->lock);
    uint32_t n = atomic_load(&l->wait) - atomic_load(&l->notify) - l->nabandoned;
    rtlock_unlock(&l->lock);
    return n;
}
