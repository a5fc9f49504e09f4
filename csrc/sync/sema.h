/* Internals shared by csrc/sync/: the runtime semaphore (sema.c), the
 * notify list behind Cond (sema.c), and the Mutex entry points that let a
 * caller name its wait reason (mutex.c). Nothing outside csrc/sync/ and the
 * C tests includes this; the public surface is include/pygoro.h. */
#ifndef PYGORO_SYNC_SEMA_H
#define PYGORO_SYNC_SEMA_H

#include "../runtime.h"

/* ---- semaphore (Go's runtime/sema.go) ---------------------------------- */

/* Wait until *addr > 0, then decrement it. lifo queues the caller at the head
 * of addr's waiters instead of the tail (a Mutex waiter that was woken and
 * then beaten to the lock goes back to the front). reason is shown in dumps. */
void semacquire1(_Atomic uint32_t *addr, bool lifo, enum wait_reason reason);
/* Increment *addr and wake the first waiter, if any. With handoff the count
 * goes straight to that waiter (nobody can barge in) and a releasing
 * goroutine yields so the waiter runs at once. */
void semrelease1(_Atomic uint32_t *addr, bool handoff);
/* Decrement *addr if it is > 0; never blocks (Go's cansemacquire). */
bool sema_tryacquire(_Atomic uint32_t *addr);
/* Waiters parked on addr right now (takes the bucket lock; for tests). */
int sema_nwaiters(_Atomic uint32_t *addr);

/* ---- notify list (Go's notifyList): the wait queue of a Cond ----------- */

/* Ticket based: notify_list_add hands out tickets in order; a notification
 * covers the oldest ticket not yet notified (one) or every ticket handed out
 * so far (all). A waiter whose ticket was notified before it parked does not
 * park at all, so nothing is lost between add and wait.
 * Zero-initialised = empty. */
struct notify_list {
    /* next ticket to hand out; incremented without the lock */
    _Atomic uint32_t wait;
    /* next ticket to notify; read without the lock, written under it */
    _Atomic uint32_t notify;
    struct rtlock lock;
    struct sudog *head; /* parked waiters, linked by next; any ticket order */
    struct sudog *tail;
};
uint32_t notify_list_add(struct notify_list *l);
/* Park until ticket t has been notified (returns at once if it has). */
void notify_list_wait(struct notify_list *l, uint32_t t, enum wait_reason reason);
void notify_list_notify_one(struct notify_list *l);
void notify_list_notify_all(struct notify_list *l);
/* Tickets handed out and not yet notified (for tests and Cond free). */
uint32_t notify_list_pending(struct notify_list *l);

/* ---- Mutex internals (mutex.c) ----------------------------------------- */

#define MUTEX_LOCKED 1
#define MUTEX_WOKEN 2
#define MUTEX_STARVING 4
#define MUTEX_WAITER_SHIFT 3
/* A waiter that waited longer than this switches the Mutex to starvation
 * mode (Go's starvationThresholdNs). */
#define MUTEX_STARVATION_NS 1000000

/* goro_mutex_lock, with the wait reason a parked locker shows: Once and
 * RWMutex lock their inner Mutex as WAIT_ONCE / WAIT_RWMUTEX_LOCK. */
void mutex_lock_reason(goro_mutex_t *m, enum wait_reason reason);

/* ---- Cond internals (cond.c) ------------------------------------------ */

/* Waiters that have taken a ticket and not been notified (for tests). */
uint32_t cond_waiters(goro_cond_t *c);

#endif
