/* Pinned goroutines: Gs that may only ever run on one M.
 *
 * Why. On a free-threaded CPython (3.13t and later) a PyThreadState is bound
 * to the OS thread that created it: its mimalloc heaps take their owner from
 * the creating thread, and biased reference counting registers the tstate as
 * the owner of objects whose ob_tid is that thread, merging their counts in
 * its eval breaker. A tstate that ran on another thread would allocate from
 * heaps another thread owns and merge refcounts another thread updates
 * without atomics. So the bridge pins a Python goroutine to the M on which it
 * first runs Python (go_pin_current), and the scheduler must never let any
 * other M run it (DESIGN.md rule 11). Goroutines that have not run Python
 * yet are unpinned and stolen normally; that is how load spreads. GIL builds
 * never pin: their goroutines keep migrating.
 *
 * How. A pinned G never enters a P's run queue or the global queue (both
 * can move to another M: stealing, sysmon draining, retire_p). When one
 * becomes runnable it goes to its M's own FIFO, m->pinq (go_ready, gosched),
 * and its M is made to look there:
 *   - if that M is running it reaches schedule() or find_runnable() soon
 *     and takes from its queue, alternating with the P's queue for fairness;
 *   - if it is idle (stopm) it is woken with an idle P, or, when every P is
 *     busy, marked as a pin waiter (sched.npinwait): the next M that gives up
 *     a P hands it over (find_runnable), a running M hands over its P at its
 *     next schedule() (Go's handoff to a locked M, startlockedm), and startm
 *     prefers waiters when a P frees up. An M hands over a P only after it
 *     has run at least one G on it (m->pin_fresh): two Ms that both wait
 *     would otherwise pass one P back and forth without running anything.
 *
 * Lost wakeups. The readier pushes, then reads m->pin_idle; the M sets
 * pin_idle before it re-checks its queue under sched.lock on the way to
 * sleep (stopm) . Both pairs are seq_cst (a Dekker handshake): either the M
 * sees the G, or the readier sees pin_idle and wakes it under sched.lock,
 * where stopm's check and mput are one critical section.
 *
 * Cost. A pinned G readied by another M costs a lock and, if its M is
 * asleep, a futex wake (~5-9 us here) where an unpinned one would have run
 * on the waker's P. When more Ms have pinned work than there are Ps, Ps are
 * handed between Ms at schedule points (a futex wake each). A pinned G whose
 * M is stuck in a blocking call (time.sleep, a C extension working outside
 * the interpreter) waits for that call: sysmon can move unpinned work only.
 */
#include <stdio.h>

#include "sched.h"

void go_pin_current(void)
{
    struct m *mp = getm();
    if (mp == NULL || mp->curg == NULL)
        return; /* a plain thread never migrates */
    struct g *gp = mp->curg;
    gp->pinned_m = mp;
    gp->pinned = true;
}

bool go_is_pinned(void)
{
    struct m *mp = getm();
    return mp != NULL && mp->curg != NULL && mp->curg->pinned;
}

/* Append gp to mp's pinned queue. seq_cst increment: the Dekker half of
 * pin_ready (see the file comment). */
static void pinq_push(struct m *mp, struct g *gp)
{
    gp->schedlink = NULL;
    rtlock_lock(&mp->pinlock);
    if (mp->pintail)
        mp->pintail->schedlink = gp;
    else
        mp->pinhead = gp;
    mp->pintail = gp;
    atomic_fetch_add_explicit(&mp->npinq, 1, memory_order_seq_cst);
    rtlock_unlock(&mp->pinlock);
}

struct g *pin_get(struct m *mp)
{
    /* relaxed: a stale 0 is caught by stopm's locked re-check; GIL builds
     * pay this one load per schedule() */
    if (atomic_load_explicit(&mp->npinq, memory_order_relaxed) == 0)
        return NULL;
    rtlock_lock(&mp->pinlock);
    struct g *gp = mp->pinhead;
    if (gp) {
        mp->pinhead = gp->schedlink;
        if (mp->pinhead == NULL)
            mp->pintail = NULL;
        gp->schedlink = NULL;
        atomic_fetch_sub_explicit(&mp->npinq, 1, memory_order_relaxed);
    }
    rtlock_unlock(&mp->pinlock);
    return gp;
}

/* sched.lock held. */
static void mark_waiting_locked(struct m *mp)
{
    if (!mp->pin_waiting) {
        mp->pin_waiting = true;
        atomic_fetch_add_explicit(&sched.npinwait, 1, memory_order_relaxed);
    }
}

void pin_unmark_locked(struct m *mp)
{
    if (mp->pin_waiting) {
        mp->pin_waiting = false;
        atomic_fetch_sub_explicit(&sched.npinwait, 1, memory_order_relaxed);
    }
}

/* sched.lock held: hand pp (owned by the caller, not on the idle list) to mp,
 * an idle M, and wake it. */
static void handoff_locked(struct m *mp, struct p *pp)
{
    pin_unmark_locked(mp);
    if (sched.timer_sleeper == mp)
        sched.timer_sleeper = NULL;
    pp->status = P_RUNNING;
    mp->spinning = false;
    mp->nextp = pp;
    note_wakeup(&mp->park);
}

/* sched.lock held: mp has pinned work. If it sleeps in stopm, wake it with an
 * idle P, or record that it waits for one. A running mp finds the work by
 * itself. */
static void wake_locked(struct m *mp)
{
    if (!mremove(mp))
        return;
    struct p *pp = pidleget();
    if (pp == NULL) {
        mput(mp);
        mark_waiting_locked(mp);
        return;
    }
    handoff_locked(mp, pp);
}

void pin_ready(struct g *gp)
{
    struct m *mp = gp->pinned_m;
    pinq_push(mp, gp);
    if (mp == getm())
        return; /* our own M: schedule() or find_runnable() takes it */
    if (atomic_load_explicit(&mp->pin_idle, memory_order_seq_cst)) {
        rtlock_lock(&sched.lock);
        wake_locked(mp);
        rtlock_unlock(&sched.lock);
    }
}

void pin_requeue(struct m *mp, struct g *gp)
{
    pinq_push(mp, gp);
}

bool pin_stopm_locked(struct m *mp)
{
    if (atomic_load_explicit(&mp->npinq, memory_order_seq_cst) == 0)
        return false;
    struct p *pp = pidleget();
    if (pp == NULL) {
        mark_waiting_locked(mp); /* the caller mputs us and sleeps */
        return false;
    }
    pp->status = P_RUNNING;
    mp->nextp = pp;
    return true;
}

/* sched.lock held: the first idle M that waits for a P, or NULL. */
static struct m *find_waiter_locked(void)
{
    for (struct m *mp = sched.midle; mp; mp = mp->schedlink)
        if (mp->pin_waiting)
            return mp;
    return NULL;
}

bool pin_give_p_locked(struct p *pp)
{
    if (atomic_load_explicit(&sched.npinwait, memory_order_relaxed) == 0)
        return false;
    struct m *mp = find_waiter_locked();
    if (mp == NULL || !mremove(mp))
        return false;
    handoff_locked(mp, pp);
    return true;
}

struct m *pin_mget_locked(void)
{
    if (atomic_load_explicit(&sched.npinwait, memory_order_relaxed) == 0)
        return NULL;
    struct m *mp = find_waiter_locked();
    if (mp != NULL && !mremove(mp))
        mp = NULL;
    return mp;
}

bool pin_handoff(struct m *mp)
{
    rtlock_lock(&sched.lock);
    struct p *pp = mp->p;
    bool given = pp != NULL && pin_give_p_locked(pp);
    if (given)
        mp->p = NULL;
    rtlock_unlock(&sched.lock);
    return given;
}

bool pin_any_queued(void)
{
    bool any = false;
    rtlock_lock(&sched.lock);
    for (struct m *mp = sched.allm; mp && !any; mp = mp->alllink)
        any = atomic_load_explicit(&mp->npinq, memory_order_relaxed) != 0;
    rtlock_unlock(&sched.lock);
    return any;
}

void pin_after_fork_child(struct m *self)
{
    /* Gs queued here were other goroutines: abandoned like every queued G. */
    atomic_store(&sched.npinwait, 0);
    if (self) {
        self->pinlock = (struct rtlock)RTLOCK_INIT;
        self->pinhead = self->pintail = NULL;
        atomic_store(&self->npinq, 0);
        atomic_store(&self->pin_idle, 0);
        self->pin_waiting = false;
    }
}
