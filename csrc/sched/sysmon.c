/* sysmon: the monitor thread (Go's sysmon), without a P.
 *
 * Why. A goroutine that blocks its worker thread - time.sleep, socket.recv,
 * a C extension computing with the GIL released - keeps its P, and the
 * goroutines queued on that P wait behind it. Go avoids this with syscall
 * hooks: an M entering a syscall lets go of its P and sysmon hands the P to
 * another M. pygoro cannot hook arbitrary blocking calls made by Python code,
 * and a P cannot change owner under a running goroutine that may still push
 * onto its run queue (the ring has a single producer). So sysmon does what
 * is safe from outside:
 *
 *   - A P whose schedule tick has not moved for STUCK_NS while it is running
 *     is "stuck in one goroutine". If it has queued work, sysmon steals the
 *     whole queue with the thieves' protocol (safe against the owner) into
 *     the global queue.
 *   - If no P is idle to run that work, sysmon lends an extra P beyond
 *     gomaxprocs (at most max_extra), and wakes an M for it. This matches
 *     Go's accounting, where an M blocked in a syscall does not count against
 *     GOMAXPROCS.
 *   - When a stuck P moves again, one lent P is taken back (it retires at
 *     its M's next schedule()).
 *
 * sysmon also runs timers that are overdue because every M is busy in a
 * long-running goroutine (timers need no P).
 *
 * It sleeps SYSMON_BUSY_NS between checks while any P runs and
 * SYSMON_IDLE_NS when none does, pending timers or not, so an idle program
 * costs a few wakeups a second.
 */
#define _GNU_SOURCE
#include <stdlib.h>

#include "sched.h"

#define SYSMON_BUSY_NS (1000 * 1000)       /* 1 ms */
#define SYSMON_IDLE_NS (20 * 1000 * 1000)  /* 20 ms */
#define STUCK_NS (2 * 1000 * 1000)         /* a P on one goroutine this long */
#define TIMER_OVERDUE_NS (1000 * 1000)
#define MAX_EXTRA_DEFAULT 128

static struct {
    uint32_t tick[MAX_PROCS];
    int64_t since[MAX_PROCS]; /* when tick last changed (or P started running) */
    bool stuck[MAX_PROCS];    /* we lent a P on its behalf */
    int max_extra;
    struct note wake;
} mon;

/* Move every G queued on pp (ring and runnext) to the global queue. */
static int drain_to_global(struct p *pp)
{
    int moved = 0;
    struct g *gp;
    /* runq_steal puts all but one G into the thief's queue; we have no P,
     * so grab into a scratch P that is never scheduled. */
    static struct p scratch;
    while ((gp = runq_steal(&scratch, pp, true)) != NULL) {
        rtlock_lock(&sched.lock);
        globrunq_put(gp);
        moved++;
        struct g *g1;
        while ((g1 = runq_get(&scratch, NULL)) != NULL) {
            globrunq_put(g1);
            moved++;
        }
        rtlock_unlock(&sched.lock);
    }
    return moved;
}

static void lend_p(void)
{
    rtlock_lock(&sched.lock);
    int32_t gomax = atomic_load(&sched.gomaxprocs);
    bool lent = false;
    if (sched.extra_procs < mon.max_extra && gomax + sched.extra_procs < MAX_PROCS &&
        sched.mcount < sched.maxmcount) {
        sched.extra_procs++;
        procresize_locked(gomax + sched.extra_procs);
        lent = true;
    }
    rtlock_unlock(&sched.lock);
    (void)lent;
}

static void take_back_p(void)
{
    rtlock_lock(&sched.lock);
    if (sched.extra_procs > 0) {
        sched.extra_procs--;
        procresize_locked(atomic_load(&sched.gomaxprocs) + sched.extra_procs);
    }
    rtlock_unlock(&sched.lock);
}

static void sysmon_check(int64_t now)
{
    /* Every P that may be running, retiring ones (id >= nprocs) included: a
     * lent P taken back, or a P above a lowered gomaxprocs, keeps running its
     * goroutine until that goroutine returns to schedule(), and what it
     * readied meanwhile must not wait for that. */
    int32_t n = atomic_load_explicit(&sched.maxprocs_seen, memory_order_relaxed);
    for (int32_t i = 0; i < MAX_PROCS; i++) {
        struct p *pp = &allp[i];
        uint32_t st = atomic_load_explicit(&pp->status, memory_order_relaxed);
        uint32_t t = atomic_load_explicit(&pp->schedtick, memory_order_relaxed);
        bool running = i < n && st == P_RUNNING;
        /* An M waiting for the GIL is not stuck: whoever holds the GIL runs
         * (the wait is CPython's to bound), and an M lent for its queue
         * would wait for the GIL as well; lending one each STUCK_NS made a
         * burst of 100,000 short Python goroutines at gomaxprocs 2 start 30
         * threads. Relaxed: a stale read costs one check's delay. */
        bool gil_wait = atomic_load_explicit(&pp->gil_wait, memory_order_relaxed);
        if (!running || t != mon.tick[i] || gil_wait) {
            mon.tick[i] = t;
            mon.since[i] = now;
            if (mon.stuck[i]) {
                mon.stuck[i] = false;
                take_back_p();
            }
            continue;
        }
        if (now - mon.since[i] < STUCK_NS)
            continue;
        bool global_waiting = atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0 &&
                              atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0;
        if (runq_empty(pp) && !global_waiting)
            continue;
        drain_to_global(pp);
        if (!mon.stuck[i] && atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0) {
            mon.stuck[i] = true;
            lend_p();
        }
        wakep();
    }
    int64_t next = timers_next();
    if (next != 0 && now - next > TIMER_OVERDUE_NS)
        timers_run(now);
}

static void *sysmon_main(void *arg)
{
    (void)arg;
    for (;;) {
        if (atomic_load_explicit(&sched.stopping, memory_order_relaxed))
            return NULL;
        int64_t now = nanotime();
        sysmon_check(now);
        /* Not goro_runtime_idle(): a pending timer (a Timer(3600) held by
         * the program) would keep us at the busy rate, ~1000 wakeups a
         * second with nothing running. Timers have their own sleeper;
         * sysmon only runs the overdue ones while every M is busy. */
        int64_t sleep_ns = sched_idle_but_timers() ? SYSMON_IDLE_NS : SYSMON_BUSY_NS;
        note_timedsleep(&mon.wake, sleep_ns, false, NULL);
        note_clear(&mon.wake);
    }
}

void sysmon_start(void)
{
    if (sched.sysmon_started)
        return;
    sched.sysmon_started = true;
    const char *env = getenv("PYGORO_MAX_EXTRA_PROCS");
    mon.max_extra = env && *env ? atoi(env) : MAX_EXTRA_DEFAULT;
    if (mon.max_extra < 0)
        mon.max_extra = 0;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 128 * 1024);
    note_clear(&mon.wake);
    sigset_t old;
    signal_block_async(&old);
    pthread_t th;
    if (pthread_create(&th, &attr, sysmon_main, NULL) != 0)
        sched.sysmon_started = false;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}
