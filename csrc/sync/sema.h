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
/* semacquire1 for callers that can give up (the Python bridge). With intr,
 * on an interruptible plain thread (goro_thread_set_interruptible), a signal
 * ends the wait early: SEMA_WITHDRAWN, the count untouched and the caller no
 * longer queued; or, if a release had already been committed to the caller,
 * SEMA_ACQUIRED_INTERRUPTED: it holds the count and must give it up in
 * whatever way the count's meaning requires. Without intr, or on a
 * goroutine, always SEMA_ACQUIRED. */
enum sema_result { SEMA_ACQUIRED, SEMA_ACQUIRED_INTERRUPTED, SEMA_WITHDRAWN };
enum sema_result sema_acquire(_Atomic uint32_t *addr, bool lifo, enum wait_reason reason,
                              bool intr);
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
    /* Tickets given up un-notified (an interrupted waiter, or one that never
     * waited): a notification reaching one passes on to the next ticket.
     * Under lock; malloc'd nodes. */
    struct notify_abandoned *abandoned;
    uint32_t nabandoned;
};
uint32_t notify_list_add(struct notify_list *l);
/* Park until ticket t has been notified (returns at once if it has). */
void notify_list_wait(struct notify_list *l, uint32_t t, enum wait_reason reason);
/* notify_list_wait that an interruptible thread may leave early (intr):
 * false if a signal came first. The ticket is still the caller's, unparked:
 * it must wait on it again or give it up with notify_list_abandon (so that
 * a notification reaching it is not lost). true once notified. */
bool notify_list_wait_ex(struct notify_list *l, uint32_t t, enum wait_reason reason, bool intr);
/* Give up ticket t (an interrupted waiter, or the Cond's unlock failed). If t was
 * already notified, the notification passes on to the next waiter. */
void notify_list_abandon(struct notify_list *l, uint32_t t);
/* Free the abandoned-ticket records (the list's owner is being freed). */
void notify_list_destroy(struct notify_list *l);
void notify_list_notify_one(struct notify_list *l);
void notify_list_notify_all(struct notify_list *l);
/* Tickets handed out and not yet notified or abandoned (for tests and
 * Cond free). Takes the lock. */
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

/* The Mutex lock for the Python bridge. spin=false: never spin (a caller
 * holding the GIL would only delay the holder, who needs the GIL to
 * unlock). intr: on an interruptible thread a signal ends the wait with
 * GORO_INTERRUPTED, the lock not held and the caller no longer counted as a
 * waiter (sema.c, mutex.c's mutex_withdraw); a lock that was already on its
 * way to the caller is taken and released again. Otherwise GORO_OK. */
int mutex_lock_ex(goro_mutex_t *m, enum wait_reason reason, bool spin, bool intr);
/* mutex_lock_ex's fast path alone (one CAS, mutex.c's state guess): true if
 * it took the lock. For the bridge, which tries it with the GIL held before
 * it prepares to block. */
bool mutex_trylock_fast(goro_mutex_t *m);

/* RWMutex Lock for the bridge; spin and intr as for mutex_lock_ex (an
 * interrupted pending writer withdraws, see rwmutex.c). GORO_OK or
 * GORO_INTERRUPTED (not locked). A reader's wait has no such withdrawal:
 * the bridge polls with try_rlock on an interruptible thread. */
int rwmutex_lock_ex(goro_rwmutex_t *rw, bool spin, bool intr);

/* WaitGroup Wait for the bridge: with intr, GORO_INTERRUPTED on an
 * interruptible thread when a signal came first (no longer counted as a
 * waiter); otherwise as goro_waitgroup_wait. */
int waitgroup_wait_ex(goro_waitgroup_t *wg, bool intr);

/* ---- Cond internals (cond.c) ------------------------------------------ */

/* Waiters that have taken a ticket and not been notified (for tests). */
uint32_t cond_waiters(goro_cond_t *c);

#endif
