/* Sleep (Go's time.Sleep) for a goroutine and for a plain thread.
 *
 * A goroutine parks with a runtime timer whose function readies it. The
 * timer lives on the goroutine's own stack and is armed in the park's
 * unlock function, on g0, once the G is off its stack: armed earlier, it
 * could fire and go_ready a G that is still running (runtime.h's parking
 * contract). After waking, the goroutine stops the timer before its frame
 * dies: the M that ran the timer's go_ready may not have finished with the
 * timer yet, and timer_stop waits for it (usually it has, and timer_stop
 * returns on its lock-free fast path).
 *
 * A plain thread (the main thread, a threading.Thread) is no goroutine and
 * has nothing to park: it sleeps on a futex word of its own that nobody
 * else knows, so nothing but the timeout or a signal ends the sleep (a late
 * go_ready from some earlier wait cannot cut it short or make it spin). On
 * an interruptible thread (Python's main thread) a signal ends it early so
 * Python can run its handlers (Ctrl-C); the caller gets GORO_INTERRUPTED.
 *
 * Sleep(0) and negative durations return at once, as in Go.
 */
#include "timer.h"

static void sleep_fire(void *arg, uintptr_t seq, int64_t delay)
{
    (void)seq;
    (void)delay;
    go_ready(arg);
}

/* How often an interruptible thread's sleep looks for a signal that hit it
 * outside a system call; as thread_park's DEAD_CHECK_NS. */
#define SIGNAL_CHECK_NS (100 * 1000 * 1000)

struct sleep_arm_arg {
    struct timer *t;
    int64_t when;
};

static bool sleep_arm(struct g *gp, void *arg)
{
    (void)gp;
    /* On g0 with gp's registers saved: the timer may fire at once. */
    struct sleep_arm_arg *a = arg;
    timer_reset(a->t, a->when, 0);
    return true;
}

static bool thread_sleep(struct g *gp, int64_t when)
{
    bool interruptible = thread_is_interruptible();
    bool interrupted = false;
    gp->wait_reason = WAIT_SLEEP;
    gp->wait_since = nanotime();
    if (rt_hooks.thread_block_begin)
        rt_hooks.thread_block_begin(gp);
    struct note n = {0}; /* never woken: the sleep ends by timeout or signal */
    int64_t left;
    while (!interrupted && (left = when - nanotime()) > 0) {
        /* An interruptible sleep wakes every SIGNAL_CHECK_NS: a signal that
         * arrived between two waits interrupted no system call (see
         * rt_hooks.signal_pending). */
        if (interruptible && left > SIGNAL_CHECK_NS)
            left = SIGNAL_CHECK_NS;
        note_timedsleep(&n, left, interruptible, &interrupted);
        if (!interrupted && interruptible && rt_hooks.signal_pending && rt_hooks.signal_pending())
            interrupted = true;
    }
    if (rt_hooks.thread_block_end)
        rt_hooks.thread_block_end(gp);
    gp->wait_reason = WAIT_NONE;
    return !interrupted;
}

bool go_sleep(int64_t ns)
{
    if (ns <= 0)
        return true;
    int64_t when = timer_when(ns);
    struct g *gp = getg();
    if (gp->is_thread)
        return thread_sleep(gp, when);
    struct timer t;
    timer_init(&t, sleep_fire, gp);
    struct sleep_arm_arg a = {&t, when};
    go_park(sleep_arm, &a, WAIT_SLEEP);
    timer_stop(&t);
    return true;
}

int goro_sleep(int64_t ns)
{
    return go_sleep(ns) ? GORO_OK : GORO_INTERRUPTED;
}
