/* Cond (Go's sync/cond.go): a condition variable over a Mutex, on the
 * ticket-based notify list of sema.c.
 *
 * Wait takes a ticket while it still holds L, then unlocks L and parks
 * until its ticket is notified, then locks L again. Taking the ticket
 * before unlocking is what makes a Signal sent after that unlock (by a
 * goroutine that took L after us) reach us even if we have not parked yet:
 * the notifier marks our ticket, and notify_list_wait then returns at once.
 *
 * Signal wakes the waiter holding the oldest un-notified ticket (FIFO, in
 * the order waiters took tickets); Broadcast wakes every waiter that had a
 * ticket when it was called. Neither needs L held.
 *
 * Misuse: Wait with L unlocked is GORO_EMISUSE. We check L's LOCKED bit
 * before taking a ticket, so in the ordinary mistake nothing happens. A
 * caller that passes the check but whose unlock then fails (somebody else
 * unlocked L in between: L was not its to unlock) already holds a ticket; a
 * ticket never waited for would swallow a later Signal meant for a real
 * waiter, so it waits for its ticket anyway and then returns GORO_EMISUSE
 * without locking L.
 */
#include <stdlib.h>

#include "sema.h"

struct goro_cond {
    goro_mutex_t *L;
    struct notify_list notify;
};

goro_cond_t *goro_cond_new(goro_mutex_t *l)
{
    if (l == NULL)
        return NULL;
    goro_cond_t *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->L = l;
    return c;
}

void goro_cond_free(goro_cond_t *c)
{
    if (c == NULL)
        return;
    /* A waiter still holding a ticket would touch freed memory later. The
     * check cannot see a waiter whose ticket is notified but which has not
     * yet come back from notify_list_wait: not freeing a Cond while a Wait
     * may be in progress is the caller's job. */
    rtlock_lock(&c->notify.lock);
    bool waiters = c->notify.head != NULL;
    rtlock_unlock(&c->notify.lock);
    if (waiters || notify_list_pending(&c->notify) != 0)
        rt_throw("goro_cond_free of a Cond with waiters");
    notify_list_destroy(&c->notify);
    free(c);
}

int goro_cond_wait(goro_cond_t *c)
{
    if ((atomic_load_explicit(&c->L->state, memory_order_relaxed) & MUTEX_LOCKED) == 0)
        return GORO_EMISUSE;
    uint32_t t = notify_list_add(&c->notify);
    if (goro_mutex_unlock(c->L) != GORO_OK) {
        notify_list_wait(&c->notify, t, WAIT_COND);
        return GORO_EMISUSE;
    }
    notify_list_wait(&c->notify, t, WAIT_COND);
    goro_mutex_lock(c->L);
    return GORO_OK;
}

uint32_t cond_waiters(goro_cond_t *c)
{
    return notify_list_pending(&c->notify);
}

void goro_cond_signal(goro_cond_t *c)
{
    notify_list_notify_one(&c->notify);
}

void goro_cond_broadcast(goro_cond_t *c)
{
    notify_list_notify_all(&c->notify);
}
