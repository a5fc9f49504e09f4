/* WaitGroup (Go's sync/waitgroup.go): wait for a collection of goroutines
 * to finish.
 *
 * State. One 64-bit word: the counter in the high 32 bits (never negative)
 * and the number of parked waiters in the low 32; plus wg->sema, where the
 * waiters park.
 *
 * Invariant: waiters > 0 only while counter > 0. Wait counts itself in only
 * with a CAS that sees counter > 0, and the Add that brings the counter to
 * zero resets the waiters to zero in the same CAS, then releases each of
 * them once. (Go takes two steps, an add that makes the counter zero and a
 * store that clears the waiters, and has to police Adds that fall between;
 * one CAS leaves no such window.)
 *
 * Misuse, reported as GORO_EMISUSE:
 *   - Add making the counter negative (Done once too often). Checked in
 *     the CAS loop before anything is written, so the state is left as it
 *     was (Go's blind add would already have broken the counter). An Add
 *     past INT32_MAX is refused the same way, with GORO_EINVAL.
 *   - Reuse before Wait returned: an Add for a new round (counter 0 -> n)
 *     that comes before every waiter of the last round has returned. A
 *     woken waiter finds the word non-zero and its Wait returns
 *     GORO_EMISUSE (Go panics there); the Add itself has happened. Such an
 *     Add can also let a waiter of the new round take, in semacquire's fast
 *     path, a wakeup meant for the old one; it then finds the counter
 *     non-zero and reports the misuse, and the old waiter sleeps on until
 *     the new round's last Done. What the program meant is unknowable, so,
 *     like Go, we detect rather than repair.
 * Add racing Wait (a positive Add from zero concurrent with a Wait) is the
 * second case seen from the other side: it is reported when the Add lands
 * while a woken waiter has yet to return; a Wait that sees the counter
 * wholly before or after the Add has nothing to detect (nor has Go).
 *
 * Memory order. Add's CAS is acq_rel: release so that a goroutine's work
 * before Done happens-before Wait's return; acquire so that the Add that
 * hits zero carries every earlier Done's release on to the waiters it
 * wakes (through sema's go_ready). Wait's load is acquire: a Wait that finds
 * the counter zero reads the value the last Done wrote, and every RMW on
 * the word belongs to the release sequences of the Dones before it.
 */
#include "sema.h"

static inline int32_t counter_of(uint64_t s)
{
    return (int32_t)(uint32_t)(s >> 32);
}

int goro_waitgroup_add(goro_waitgroup_t *wg, int64_t delta)
{
    if (delta > INT32_MAX)
        return GORO_EINVAL;
    if (delta < -(int64_t)INT32_MAX - 1)
        return GORO_EMISUSE; /* would be negative whatever the counter */
    uint64_t old = atomic_load_explicit(&wg->state, memory_order_relaxed);
    for (;;) {
        int64_t v = (int64_t)counter_of(old) + delta;
        uint32_t waiters = (uint32_t)old;
        if (v < 0)
            return GORO_EMISUSE;
        if (v > INT32_MAX)
            return GORO_EINVAL;
        uint64_t new = v == 0 ? 0 : ((uint64_t)v << 32) | waiters;
        if (!atomic_compare_exchange_weak_explicit(&wg->state, &old, new, memory_order_acq_rel,
                                                   memory_order_relaxed))
            continue;
        if (v == 0) {
            /* We cleared the waiters; each is owed one wakeup. */
            for (; waiters != 0; waiters--)
                semrelease1(&wg->sema, false);
        }
        return GORO_OK;
    }
}

int goro_waitgroup_done(goro_waitgroup_t *wg)
{
    return goro_waitgroup_add(wg, -1);
}

int waitgroup_wait_ex(goro_waitgroup_t *wg, bool intr)
{
    uint64_t old = atomic_load_explicit(&wg->state, memory_order_acquire);
    for (;;) {
        if (counter_of(old) == 0)
            return GORO_OK;
        if ((uint32_t)old == UINT32_MAX)
            rt_throw("sync: too many WaitGroup waiters");
        /* Count ourselves in; only while the counter is non-zero, so the
         * Add that zeroes it sees us (see the invariant above). */
        if (atomic_compare_exchange_weak_explicit(&wg->state, &old, old + 1, memory_order_acquire,
                                                  memory_order_acquire))
            break;
    }
    if (unlikely(sema_acquire(&wg->sema, false, WAIT_WAITGROUP, intr) == SEMA_WITHDRAWN)) {
        /* Interrupted and off the queue: uncount ourselves, unless the Add
         * that zeroed the counter already did (it cleared the waiters and
         * owes each one wakeup): then take ours, due at once, and return as
         * a completed Wait. (A new round begun before we got here, misuse,
         * is indistinguishable from the old one: we uncount from it.) */
        old = atomic_load_explicit(&wg->state, memory_order_relaxed);
        for (;;) {
            if (counter_of(old) == 0 || (uint32_t)old == 0) {
                semacquire1(&wg->sema, false, WAIT_WAITGROUP);
                break;
            }
            if (atomic_compare_exchange_weak_explicit(&wg->state, &old, old - 1,
                                                      memory_order_relaxed, memory_order_relaxed))
                return GORO_INTERRUPTED;
        }
    }
    /* The zeroing Add released us after clearing the word; until every
     * waiter has returned nothing may touch it again. */
    if (atomic_load_explicit(&wg->state, memory_order_acquire) != 0)
        return GORO_EMISUSE;
    return GORO_OK;
}

int goro_waitgroup_wait(goro_waitgroup_t *wg)
{
    return waitgroup_wait_ex(wg, false);
}
