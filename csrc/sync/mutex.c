/* Mutex (Go's sync.Mutex, internal/sync/mutex.go).
 *
 * State. One 32-bit word:
 *
 *     bit 0  MUTEX_LOCKED    somebody holds the lock
 *     bit 1  MUTEX_WOKEN     a waiter has been woken (or is spinning) and is
 *                            about to compete: Unlock need not wake another
 *     bit 2  MUTEX_STARVING  starvation mode, below
 *     3..31  waiters         Gs counted as blocked (queued on m->sema, or on
 *                            their way there)
 *
 * plus m->sema, the runtime semaphore (sema.c) the waiters park on.
 * Zero is an unlocked Mutex with no waiters. Lock's fast path is one CAS
 * that sets LOCKED; Unlock's is one CAS that clears it. Both guess the rest
 * of the word: see "The state guess" below.
 *
 * Normal mode. Waiters queue FIFO, but a woken waiter does not own the
 * lock: it competes for it with the goroutines arriving right now, which
 * have the advantage of already running on a CPU (and there may be many).
 * A woken waiter that loses goes back to the front of the queue (lifo).
 * Arrivals may also spin a little (sync_runtime_can_spin: only on a
 * multi-core machine with other Ps busy, and with Gs queued locally only
 * for 50 us of the spinner's turn), since
 * the holder will likely unlock within a few hundred nanoseconds. Barging
 * like this gives much better throughput: a lock handed from CPU to CPU
 * through the scheduler costs microseconds, a lock re-taken by the running
 * goroutine costs nanoseconds.
 *
 * Starvation mode. A waiter that fails to get the lock for more than
 * MUTEX_STARVATION_NS (1 ms) sets STARVING on its next attempt. Then Unlock
 * hands the lock straight to the waiter at the head of the queue
 * (semrelease with handoff): LOCKED stays clear and the woken waiter sets
 * it itself, and arrivals neither take the lock nor spin: they queue at the
 * tail. The waiter that gets the lock leaves starvation mode when it is the
 * last waiter or it waited less than 1 ms: at that point the queue is
 * short enough for normal mode again. Starvation mode bounds tail latency;
 * normal mode is far faster, so it is the default.
 *
 * Misuse. Unlock of an unlocked Mutex returns GORO_EMISUSE and leaves the
 * word alone: it is cleared with a CAS loop that checks LOCKED, instead of
 * Go's blind atomic add, which would corrupt the state before the check
 * (Go can afford that: it throws). Note that in starvation mode, between an
 * Unlock's handoff and the new owner setting LOCKED, the Mutex is owned
 * with LOCKED clear; a stray second Unlock in that window gets
 * GORO_EMISUSE too, which is right: its caller does not hold the lock.
 *
 * The state guess. A CAS needs the whole word it expects. Expecting 0 (Lock)
 * or LOCKED (Unlock), as Go's fast paths do, fails whenever waiters are
 * counted, and under contention they are counted nearly all the time: the
 * failed CAS is followed by a second one with the word it returned, four
 * locked instructions per Lock+Unlock where two would do. (Go's Unlock is one
 * atomic add whatever the word holds; ours cannot be, see Misuse.) Between
 * two operations of one thread the word rarely changes (a stretch of
 * Lock/Unlock by one goroutine while six others sleep counted leaves it at
 * "6 waiters, WOKEN"), so each thread remembers the word it last left in
 * the last Mutex it used (last_seen, thread-local: no sharing, no
 * ordering) and expects that. A wrong guess costs a failed CAS, which
 * returns the real word for the slow path to go on from: under contention
 * that is what the old fast path's failure cost; once contention ends, a
 * stale guess fails where 0 or LOCKED would have succeeded, once, since the
 * slow path records the real word. A right guess is only ever a word the slow path
 * would act on the same way: Lock uses a guess only when it has neither
 * LOCKED nor STARVING (then LOCKED is all the slow path would add: a
 * barging acquisition), Unlock only with LOCKED set (then clearing it is
 * what the slow path's loop would do). 8 C goroutines at gomaxprocs 2:
 * 59-76 ns per Lock+Unlock before, 33-42 after; uncontended unchanged
 * (20-21 ns).
 *
 * Memory order. Taking the lock is a CAS (or, for the starvation handoff,
 * the add that sets LOCKED) with acquire; releasing it is a CAS with
 * release. The handoff's happens-before edge goes Unlock's release CAS ->
 * semrelease -> go_ready (release) -> the woken waiter (acquire), in
 * addition to the state word.
 */
#include "sema.h"

#define MUTEX_WAITER ((int32_t)1 << MUTEX_WAITER_SHIFT)

static inline int32_t waiters_of(int32_t s)
{
    return (int32_t)((uint32_t)s >> MUTEX_WAITER_SHIFT);
}

static inline bool cas_state(goro_mutex_t *m, int32_t *old, int32_t new, memory_order success)
{
    return atomic_compare_exchange_weak_explicit(&m->state, old, new, success,
                                                 memory_order_relaxed);
}

static void mutex_unlock_slow(goro_mutex_t *m, int32_t new);

/* The word this thread last left in last_seen.m (see "The state guess"). */
static _Thread_local struct {
    const goro_mutex_t *m;
    int32_t state;
} last_seen __attribute__((tls_model("initial-exec")));

static inline void remember_state(const goro_mutex_t *m, int32_t state)
{
    last_seen.m = m;
    last_seen.state = state;
}

/* The same, for code that may have parked since it last touched TLS (and
 * so may run on another thread now): see NOT_CACHEABLE in runtime.h. */
static NOT_CACHEABLE void remember_state_after_park(const goro_mutex_t *m, int32_t state)
{
    remember_state(m, state);
}

/* Normal mode: we were woken (our wakeup consumed: we are "awoke", and WOKEN
 * is ours to clear) but give up instead of competing, an interrupted
 * thread. Clear WOKEN and, as the Unlock that woke us would have done had we
 * never been counted, wake the next waiter if the lock is free. */
static void mutex_pass_wakeup(goro_mutex_t *m)
{
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        if ((old & MUTEX_WOKEN) == 0)
            rt_throw("sync: inconsistent mutex state %#x", (unsigned)old);
        if (cas_state(m, &old, old & ~MUTEX_WOKEN, memory_order_relaxed))
            break;
    }
    /* While a wakeup is in flight the mode stays normal: only the woken
     * waiter itself may set STARVING. */
    old &= ~MUTEX_WOKEN;
    if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == 0 && old != 0)
        mutex_unlock_slow(m, old);
}

/* Starvation mode: the lock was handed to us (sema count acquired, STARVING
 * seen). We are still counted as a waiter and LOCKED is clear: set LOCKED,
 * uncount ourselves, and leave starvation mode if we did not starve or are
 * the last waiter; do it now, or two goroutines alternating on the lock
 * could keep it in starvation mode (slow) forever.
 * A CAS, where Go adds: in Go nobody else lowers the waiter count while a
 * handoff is in flight, so "last waiter" cannot change between the load and
 * the add. Here a withdrawing thread may uncount itself just then
 * (mutex_withdraw: starvation mode, LOCKED clear, another waiter counted),
 * and an add decided on the old count would keep starvation mode with no
 * waiter left: our Unlock would hand the lock to nobody. */
static void mutex_take_handoff(goro_mutex_t *m, bool starving)
{
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) != 0 || waiters_of(old) == 0)
            rt_throw("sync: inconsistent mutex state %#x", (unsigned)old);
        int32_t new = old + MUTEX_LOCKED - MUTEX_WAITER;
        if (!starving || waiters_of(old) == 1)
            new &= ~MUTEX_STARVING;
        if (cas_state(m, &old, new, memory_order_acquire)) {
            remember_state_after_park(m, new);
            return;
        }
    }
}

/* A wakeup or a handoff is owed to a waiter counted as us, and we are no
 * longer queued for it. Queue again (at the front: it is close) and act on
 * the count we get as a woken waiter would: true. It need not be the count
 * we expected: a counted arrival may take a count released to an empty
 * queue through semacquire's fast path and act as the woken one; then our
 * place is covered by its count, and what we wait for now is some later
 * Unlock, possibly after the mode changed. Hence no inference from the
 * state we saw before queueing, only from the state after the wakeup, as
 * in mutex_lock_slow. And hence the wait stays interruptible: that later
 * Unlock may never come (its holder may be waiting for us), and a thread
 * stuck here would be deaf to Ctrl-C and to the deadlock check. A signal
 * that comes first leaves us counted with no count and not queued, exactly
 * as before (false): the caller decides again, from the state now. */
static bool mutex_take_owed_wakeup(goro_mutex_t *m, enum wait_reason reason)
{
    if (sema_acquire(&m->sema, true, reason, true) == SEMA_WITHDRAWN)
        return false;
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    if ((old & MUTEX_STARVING) != 0) {
        mutex_take_handoff(m, false);
        goro_mutex_unlock(m); /* hand it on */
    } else {
        mutex_pass_wakeup(m);
    }
    return true;
}

/* An interrupted thread that is counted as a waiter but holds no sema count
 * stops waiting. Either it is uncounted, or a count is owed to it and it
 * must take that count and give it up (mutex_take_owed_wakeup):
 *   - Normal mode, waiters > 0: just uncount. The invariant "waiters counted
 *     + wakeups in flight = goroutines between their counting CAS and their
 *     semacquire" holds with one fewer on each side; a wakeup in flight goes
 *     to one of the others.
 *   - Normal mode, waiters == 0: we are counted in-flight, so a wakeup is in
 *     flight (WOKEN, at most one at a time) and nobody else counted can be
 *     waiting for it: it is owed to us.
 *   - Starvation mode, LOCKED clear: an Unlock is handing the lock to the
 *     queue. If we are the only waiter it is owed to us (uncounting would
 *     leave the handed-off count to a later arrival that then finds no
 *     WOKEN). Otherwise uncount; another waiter gets the handoff.
 *   - Starvation mode, LOCKED set: uncount; if we were the last waiter also
 *     leave starvation mode, or the holder's Unlock would hand the lock to
 *     nobody and leave it unusable by try_lock until the next lock().
 * The owed cases decide from a plain load: staying counted is always safe,
 * only uncounting needs the CAS. An owed wait cut short by another signal
 * starts over: the precondition above holds again, and if an arrival took
 * the count meanwhile we are now covered by the waiter count and uncount
 * (normal mode: waiters > 0; starvation mode: LOCKED set, or another
 * counted waiter), so the loop ends once the state has moved on.
 */
static void mutex_withdraw(goro_mutex_t *m, enum wait_reason reason)
{
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        int32_t w = waiters_of(old);
        int32_t new = old - MUTEX_WAITER;
        bool owed = false;
        if ((old & MUTEX_STARVING) != 0) {
            if ((old & MUTEX_LOCKED) == 0 && w == 1)
                owed = true;
            else if (w == 1)
                new &= ~MUTEX_STARVING;
        } else if (w == 0) {
            owed = true;
        }
        if (owed) {
            if (mutex_take_owed_wakeup(m, reason))
                return;
            old = atomic_load_explicit(&m->state, memory_order_relaxed);
            continue;
        }
        if (cas_state(m, &old, new, memory_order_relaxed))
            return;
    }
}

/* spin: may spin while the holder runs (not for a Python caller holding
 * the GIL: the holder needs the GIL to unlock). intr: see mutex_lock_ex. */
static int mutex_lock_slow(goro_mutex_t *m, int32_t old, enum wait_reason reason, bool spin,
                           bool intr)
{
    int64_t wait_start = 0;
    bool starving = false;
    bool awoke = false;
    int iter = 0;
    for (;;) {
        /* Spin while the lock is held in normal mode and spinning can pay.
         * In starvation mode the lock goes to the queue's head: spinning
         * could not get it. */
        if (spin && (old & (MUTEX_LOCKED | MUTEX_STARVING)) == MUTEX_LOCKED &&
            sync_runtime_can_spin(iter)) {
            /* Set WOKEN so Unlock wakes nobody else while we are about to
             * take the lock anyway. */
            if (!awoke && (old & MUTEX_WOKEN) == 0 && waiters_of(old) != 0 &&
                cas_state(m, &old, old | MUTEX_WOKEN, memory_order_relaxed))
                awoke = true;
            sync_runtime_do_spin();
            iter++;
            old = atomic_load_explicit(&m->state, memory_order_relaxed);
            continue;
        }
        int32_t new = old;
        /* Take the lock only in normal mode; starving arrivals queue. */
        if ((old & MUTEX_STARVING) == 0)
            new |= MUTEX_LOCKED;
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
            new += MUTEX_WAITER;
        /* Switch to starvation mode, unless the lock was just released
         * (then we take it below, and Unlock expects waiters when it sees
         * STARVING). */
        if (starving && (old & MUTEX_LOCKED) != 0)
            new |= MUTEX_STARVING;
        if (awoke) {
            /* We were woken (or claimed WOKEN while spinning): whatever
             * happens next, clear it so Unlock can wake again. */
            if ((new & MUTEX_WOKEN) == 0)
                rt_throw("sync: inconsistent mutex state %#x", (unsigned)old);
            new &= ~MUTEX_WOKEN;
        }
        if (!cas_state(m, &old, new, memory_order_acquire))
            continue; /* old reloaded by the CAS */
        if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) == 0) {
            remember_state_after_park(m, new); /* locked it with the CAS */
            return GORO_OK;
        }

        /* Queued (counted as a waiter). A waiter that was woken and lost
         * goes back to the front. */
        bool lifo = wait_start != 0;
        if (wait_start == 0)
            wait_start = nanotime();
        enum sema_result r = sema_acquire(&m->sema, lifo, reason, intr);
        if (unlikely(r == SEMA_WITHDRAWN)) {
            mutex_withdraw(m, reason);
            return GORO_INTERRUPTED;
        }
        starving = starving || nanotime() - wait_start > MUTEX_STARVATION_NS;
        old = atomic_load_explicit(&m->state, memory_order_relaxed);
        if ((old & MUTEX_STARVING) != 0) {
            /* Starvation mode: Unlock handed the lock to us. */
            mutex_take_handoff(m, starving);
            if (unlikely(r == SEMA_ACQUIRED_INTERRUPTED)) {
                goro_mutex_unlock(m); /* hand it on */
                return GORO_INTERRUPTED;
            }
            return GORO_OK;
        }
        if (unlikely(r == SEMA_ACQUIRED_INTERRUPTED)) {
            mutex_pass_wakeup(m);
            return GORO_INTERRUPTED;
        }
        awoke = true;
        iter = 0;
    }
}

/* Lock's fast path: one CAS expecting the guessed word. True: locked. False:
 * *old holds the word the CAS found. */
static inline bool mutex_lock_fast(goro_mutex_t *m, int32_t *old)
{
    *old = 0;
    if (last_seen.m == m && (last_seen.state & (MUTEX_LOCKED | MUTEX_STARVING)) == 0)
        *old = last_seen.state;
    int32_t new = *old | MUTEX_LOCKED;
    if (likely(atomic_compare_exchange_strong_explicit(&m->state, old, new, memory_order_acquire,
                                                       memory_order_relaxed))) {
        remember_state(m, new);
        return true;
    }
    return false;
}

bool mutex_trylock_fast(goro_mutex_t *m)
{
    int32_t old;
    return mutex_lock_fast(m, &old);
}

int mutex_lock_ex(goro_mutex_t *m, enum wait_reason reason, bool spin, bool intr)
{
    int32_t old;
    if (likely(mutex_lock_fast(m, &old)))
        return GORO_OK;
    /* The failed CAS loaded the state: start from it instead of reading
     * the contended line a second time. */
    return mutex_lock_slow(m, old, reason, spin, intr);
}

void mutex_lock_reason(goro_mutex_t *m, enum wait_reason reason)
{
    (void)mutex_lock_ex(m, reason, true, false);
}

void goro_mutex_lock(goro_mutex_t *m)
{
    mutex_lock_reason(m, WAIT_MUTEX);
}

bool goro_mutex_trylock(goro_mutex_t *m)
{
    int32_t old = atomic_load_explicit(&m->state, memory_order_relaxed);
    if ((old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0)
        return false;
    /* Strong: a spurious failure would report a free lock as taken. There
     * may be waiters (and WOKEN); taking the lock over them is the
     * barging normal mode allows. */
    return atomic_compare_exchange_strong_explicit(&m->state, &old, old | MUTEX_LOCKED,
                                                   memory_order_acquire, memory_order_relaxed);
}

static void mutex_unlock_slow(goro_mutex_t *m, int32_t new)
{
    if ((new & MUTEX_STARVING) != 0) {
        /* Starvation mode: hand the lock to the first waiter and yield our
         * time slice to it. LOCKED stays clear; the waiter sets it. New
         * arrivals see STARVING and queue, so nobody takes the lock in
         * between. */
        semrelease1(&m->sema, true);
        return;
    }
    int32_t old = new;
    for (;;) {
        /* Nothing to do if there are no waiters, or one is already woken,
         * or the lock was taken again (by a barger, who will wake a waiter
         * when it unlocks), or starvation began (the next unlock hands
         * off). */
        if (waiters_of(old) == 0 || (old & (MUTEX_LOCKED | MUTEX_WOKEN | MUTEX_STARVING)) != 0)
            return;
        /* Take one waiter off the count and mark it woken, then wake it. */
        new = (old - MUTEX_WAITER) | MUTEX_WOKEN;
        if (cas_state(m, &old, new, memory_order_relaxed)) {
            semrelease1(&m->sema, false);
            return;
        }
    }
}

int goro_mutex_unlock(goro_mutex_t *m)
{
    /* Fast path: the word as this thread last left it, or just LOCKED. On
     * failure the CAS loads the real state into old and the loop below
     * takes over. */
    int32_t old = last_seen.m == m ? last_seen.state | MUTEX_LOCKED : MUTEX_LOCKED;
    if (unlikely(!atomic_compare_exchange_strong_explicit(&m->state, &old, old - MUTEX_LOCKED,
                                                          memory_order_release,
                                                          memory_order_relaxed))) {
        for (;;) {
            if ((old & MUTEX_LOCKED) == 0)
                return GORO_EMISUSE; /* not locked: leave the state as it is */
            if (cas_state(m, &old, old - MUTEX_LOCKED, memory_order_release))
                break;
        }
    }
    int32_t new = old - MUTEX_LOCKED;
    remember_state(m, new);
    if (new != 0)
        mutex_unlock_slow(m, new);
    return GORO_OK;
}
