/* The goroutine scheduler (pygoro's proc.go).
 *
 * Gs run on Ms, an M needs a P to run Gs, and there are gomaxprocs Ps.
 *
 * Each M runs schedule() on its own thread stack (g0) and switches to a G's
 * stack to run it. A G gives the CPU back by switching to its M's g0 with a
 * request in m->mcall (park, yield, exit); g0 carries the request out once
 * the G's stack is no longer in use. That ordering is what makes parking
 * safe: a G is never made visible to wakers (its park unlock function runs)
 * until its registers are saved, so no other M can resume a G whose stack is
 * still live.
 *
 * Finding work (find_runnable): local runnext and ring, the global queue,
 * then stealing half of a random victim's ring (4 rounds over all Ps; the
 * last round may take a victim's runnext), then give up the P and sleep.
 *
 * Spinning Ms. An M that found no local work "spins" - steals - before it
 * sleeps. At most about half the busy Ps' worth of Ms spin at once
 * (2*nmspinning < gomaxprocs - npidle). Whoever makes a G runnable calls
 * wakep(), which starts or wakes an M only if there is an idle P and no M is
 * spinning: a spinning M will find the new G anyway, and starting another
 * would be a futex wake (4-9 us here) on the hot path. The invariant that
 * prevents lost wakeups, as in Go: if there is runnable work and an idle P,
 * some M is spinning or will be woken. The ready side publishes the G then
 * checks nmspinning; the spinning side decrements nmspinning then re-checks
 * every queue. Both pairs need StoreLoad order, hence the seq_cst fence in
 * wakep and the seq_cst decrement in find_runnable.
 *
 * Timers do not need a P: timers_run may be called by any M. The one idle M
 * that sleeps with a timeout (sched.timer_sleeper) wakes for the earliest
 * timer; timer.c calls sched_timers_changed when an earlier timer arrives.
 *
 * gomaxprocs changes without stopping the world: Ps are never freed; a P
 * whose id is >= gomaxprocs is retired by its M at the next schedule() (its
 * queue goes to the global queue), and idle ones are retired at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"
#include "sched.h"

#if defined(__SANITIZE_ADDRESS__)
#define GORO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GORO_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define GORO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GORO_TSAN 1
#endif
#endif

#ifdef GORO_ASAN
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom, size_t size);
void __sanitizer_finish_switch_fiber(void *fake_stack_save, const void **bottom_old,
                                     size_t *size_old);
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif
#ifdef GORO_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

/* How often a parked main thread checks for a deadlock. */
#define DEAD_CHECK_NS (100 * 1000 * 1000)

struct schedt sched = {
    .lock = RTLOCK_INIT,
    .gflock = RTLOCK_INIT,
    .allglock = RTLOCK_INIT,
    .maxmcount = 10000,
};
struct p allp[MAX_PROCS];
struct rt_hooks rt_hooks;

const char *const wait_reason_strings[WAIT_REASON_COUNT] = {
    [WAIT_NONE] = "",
    [WAIT_CHAN_RECEIVE] = "chan receive",
    [WAIT_CHAN_SEND] = "chan send",
    [WAIT_CHAN_RECEIVE_NIL] = "chan receive (nil chan)",
    [WAIT_CHAN_SEND_NIL] = "chan send (nil chan)",
    [WAIT_SELECT] = "select",
    [WAIT_SELECT_NO_CASES] = "select (no cases)",
    [WAIT_SLEEP] = "sleep",
    [WAIT_MUTEX] = "sync.Mutex.Lock",
    [WAIT_RWMUTEX_RLOCK] = "sync.RWMutex.RLock",
    [WAIT_RWMUTEX_LOCK] = "sync.RWMutex.Lock",
    [WAIT_WAITGROUP] = "sync.WaitGroup.Wait",
    [WAIT_COND] = "sync.Cond.Wait",
    [WAIT_ONCE] = "sync.Once.Do",
    [WAIT_SEMACQUIRE] = "semacquire",
    [WAIT_JOIN] = "join",
    [WAIT_PREEMPTED] = "preempted",
};

/* ------------------------------------------------------------------------ */
/* Thread-local state                                                         */

/* initial-exec: a couple of words of static TLS, read with one %fs-relative
 * load instead of a __tls_get_addr call. */
static _Thread_local struct m *tls_m __attribute__((tls_model("initial-exec")));
static _Thread_local struct g *tls_thread_g __attribute__((tls_model("initial-exec")));
static _Thread_local bool tls_interruptible __attribute__((tls_model("initial-exec")));

static pthread_key_t thread_g_key;
static pthread_once_t thread_g_key_once = PTHREAD_ONCE_INIT;

/* NOT_CACHEABLE (runtime.h): every call re-reads the current thread's TLS. */
NOT_CACHEABLE struct m *getm(void)
{
    return tls_m;
}

/* Thread Gs are recycled, never freed: go_ready stores the wake flag and
 * then calls futex_wake on it, and in between the woken thread may exit. A
 * late wake then lands on a recycled G, where it is a spurious wakeup that
 * every waiter tolerates, instead of on freed memory. */
static struct rtlock thread_g_free_lock = RTLOCK_INIT;
static struct g *thread_g_free;

static void thread_g_destroy(void *arg)
{
    struct g *gp = arg;
    if (gp) {
        rtlock_lock(&thread_g_free_lock);
        gp->schedlink = thread_g_free;
        thread_g_free = gp;
        rtlock_unlock(&thread_g_free_lock);
    }
}

static void thread_g_key_init(void)
{
    pthread_key_create(&thread_g_key, thread_g_destroy);
}

static struct g *thread_g_get(void)
{
    struct g *gp = tls_thread_g;
    if (likely(gp != NULL))
        return gp;
    rtlock_lock(&thread_g_free_lock);
    gp = thread_g_free;
    if (gp)
        thread_g_free = gp->schedlink;
    rtlock_unlock(&thread_g_free_lock);
    if (gp) {
        uint32_t wake = atomic_load(&gp->thread_wake);
        memset(gp, 0, sizeof *gp);
        atomic_store(&gp->thread_wake, wake);
    } else {
        gp = calloc(1, sizeof *gp);
        if (!gp)
            rt_throw("out of memory allocating a thread G");
    }
    gp->is_thread = true;
    atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
    gp->label = "thread";
    tls_thread_g = gp;
    pthread_once(&thread_g_key_once, thread_g_key_init);
    pthread_setspecific(thread_g_key, gp);
    return gp;
}

NOT_CACHEABLE struct g *getg(void)
{
    struct m *mp = tls_m;
    if (mp != NULL)
        return mp->curg ? mp->curg : &mp->g0;
    return thread_g_get();
}

NOT_CACHEABLE bool in_goroutine(void)
{
    struct m *mp = tls_m;
    return mp != NULL && mp->curg != NULL;
}

bool thread_is_interruptible(void)
{
    return tls_m == NULL && tls_interruptible;
}

void goro_thread_set_interruptible(bool on)
{
    tls_interruptible = on;
}

/* ------------------------------------------------------------------------ */
/* Switching stacks, with the sanitizers told about it                        */

static void g_switch(struct g *from, struct g *to, bool from_dying)
{
#ifdef GORO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
#ifdef GORO_ASAN
    void *fake = NULL;
    uintptr_t lo = to->stack.lo, hi = to->stack.hi;
    __sanitizer_start_switch_fiber(from_dying ? NULL : &fake, (void *)lo, hi - lo);
#else
    (void)from_dying;
#endif
    ctx_switch(&from->ctx, &to->ctx);
#ifdef GORO_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* ------------------------------------------------------------------------ */
/* P and M lists (sched.lock held)                                            */

static void pidleput(struct p *pp)
{
    pp->status = P_IDLE;
    pp->m = NULL;
    pp->link = sched.pidle;
    sched.pidle = pp;
    atomic_fetch_add_explicit(&sched.npidle, 1, memory_order_seq_cst);
}

struct p *pidleget(void)
{
    struct p *pp = sched.pidle;
    if (pp) {
        sched.pidle = pp->link;
        pp->link = NULL;
        atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
    }
    return pp;
}

static void pidleremove(struct p *pp)
{
    struct p **pl = &sched.pidle;
    while (*pl && *pl != pp)
        pl = &(*pl)->link;
    if (*pl) {
        *pl = pp->link;
        pp->link = NULL;
        atomic_fetch_sub_explicit(&sched.npidle, 1, memory_order_seq_cst);
    }
}

void mput(struct m *mp)
{
    mp->schedlink = sched.midle;
    sched.midle = mp;
    sched.nmidle++;
}

static struct m *mget(void)
{
    struct m *mp = sched.midle;
    if (mp) {
        sched.midle = mp->schedlink;
        mp->schedlink = NULL;
        sched.nmidle--;
        pin_unmark_locked(mp);
    }
    return mp;
}

bool mremove(struct m *mp)
{
    struct m **pl = &sched.midle;
    while (*pl && *pl != mp)
        pl = &(*pl)->schedlink;
    if (!*pl)
        return false;
    *pl = mp->schedlink;
    mp->schedlink = NULL;
    sched.nmidle--;
    pin_unmark_locked(mp);
    return true;
}

static void acquirep(struct m *mp, struct p *pp)
{
    mp->pin_fresh = true;
    mp->p = pp;
    pp->m = mp;
    pp->status = P_RUNNING;
}

/* ------------------------------------------------------------------------ */
/* Starting and waking Ms                                                     */

static void *mstart(void *arg);

static bool newm(struct p *pp, bool spinning)
{
    struct m *mp = calloc(1, sizeof *mp);
    if (!mp)
        return false;
    mp->nextp = pp;
    mp->spinning = spinning;
    mp->g0.label = "g0";
    rtlock_lock(&sched.lock);
    if (sched.mcount >= sched.maxmcount) {
        rtlock_unlock(&sched.lock);
        free(mp);
        return false;
    }
    mp->id = sched.mcount++;
    mp->alllink = sched.allm;
    sched.allm = mp;
    rtlock_unlock(&sched.lock);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* g0 runs the scheduler, timers and the bridge's hooks: 256 KiB is ample */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* Worker threads must never run Python signal handlers' C part (it would
     * interrupt a goroutine at an arbitrary point): block async signals so
     * the kernel delivers process signals to the main thread or to a Python
     * thread instead. Synchronous faults (SIGSEGV...) cannot be blocked. */
    sigset_t old;
    signal_block_async(&old);
    int err = pthread_create(&mp->thread, &attr, mstart, mp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        rtlock_lock(&sched.lock);
        sched.mcount--; /* the M stays on allm, inert */
        rtlock_unlock(&sched.lock);
        return false;
    }
    return true;
}

/* Run some M on pp (or on an idle P if pp is NULL). */
static void startm(struct p *pp, bool spinning)
{
    rtlock_lock(&sched.lock);
    if (pp == NULL) {
        pp = pidleget();
        if (pp == NULL) {
            rtlock_unlock(&sched.lock);
            if (spinning)
                atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
            return;
        }
    }
    struct m *mp = pin_mget_locked(); /* an M with pinned work first */
    if (mp == NULL)
        mp = mget();
    if (mp && mp == sched.timer_sleeper)
        sched.timer_sleeper = NULL;
    if (mp == NULL) {
        /* pp is ours now; newm hands it to the new thread */
        pp->status = P_RUNNING;
        rtlock_unlock(&sched.lock);
        if (!newm(pp, spinning)) {
            rtlock_lock(&sched.lock);
            pidleput(pp);
            rtlock_unlock(&sched.lock);
            if (spinning)
                atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
        }
        return;
    }
    pp->status = P_RUNNING;
    rtlock_unlock(&sched.lock);
    mp->spinning = spinning;
    mp->nextp = pp;
    note_wakeup(&mp->park);
}

/* A G became runnable: make sure some M will run it (see the file comment). */
void wakep(void)
{
    if (unlikely(!atomic_load_explicit(&sched.running, memory_order_acquire)))
        return;
    /* StoreLoad: the G we just queued must be visible before we read
     * nmspinning, pairing with the spinning M's decrement-then-recheck. */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&sched.npidle, memory_order_relaxed) == 0)
        return;
    int32_t zero = 0;
    if (atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) != 0 ||
        !atomic_compare_exchange_strong_explicit(&sched.nmspinning, &zero, 1,
                                                 memory_order_seq_cst, memory_order_relaxed))
        return;
    startm(NULL, true);
}

/* An M that was spinning found work: if it was the last spinner, start
 * another so that remaining work is not left waiting (Go's resetspinning). */
static void reset_spinning(struct m *mp)
{
    mp->spinning = false;
    int32_t n = atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst) - 1;
    if (n < 0)
        rt_throw("reset_spinning: negative nmspinning");
    wakep();
}

static bool timers_without_p(struct m *mp);

/* Park this M until somebody hands it a P (startm) or, for the timer
 * sleeper, until the next timer is due. Returns with mp->p set, or with
 * none when woken for timers without a P, the due ones run and no P idle
 * (timers_without_p). */
static void stopm(struct m *mp)
{
    if (rt_hooks.m_idle)
        rt_hooks.m_idle();
    /* seq_cst: Dekker with pin_ready's push (pin.c) */
    atomic_store_explicit(&mp->pin_idle, 1, memory_order_seq_cst);
    rtlock_lock(&sched.lock);
    if (atomic_load_explicit(&sched.stopping, memory_order_relaxed)) {
        rtlock_unlock(&sched.lock);
        pthread_exit(NULL);
    }
    note_clear(&mp->park);
    mp->nextp = NULL;
    if (pin_stopm_locked(mp)) {
        /* a G pinned to this M became runnable: run it on an idle P */
        rtlock_unlock(&sched.lock);
        atomic_store_explicit(&mp->pin_idle, 0, memory_order_relaxed);
        acquirep(mp, mp->nextp);
        mp->nextp = NULL;
        return;
    }
    mput(mp);
    int64_t until = 0;
    if (sched.timer_sleeper == NULL) {
        until = timers_next();
        if (until != 0) {
            sched.timer_sleeper = mp;
            sched.timer_sleep_until = until;
        }
    }
    rtlock_unlock(&sched.lock);
    atomic_fetch_add_explicit(&sched.mparks, 1, memory_order_relaxed);

    if (until == 0) {
        note_sleep(&mp->park);
    } else if (!note_timedsleep(&mp->park, until - nanotime(), false, NULL)) {
        /* Timed out. If nobody took us off the idle list meanwhile, leave it
         * ourselves; otherwise a wakeup with a P is on its way: wait for it. */
        rtlock_lock(&sched.lock);
        if (sched.timer_sleeper == mp)
            sched.timer_sleeper = NULL;
        bool removed = mremove(mp);
        rtlock_unlock(&sched.lock);
        if (!removed)
            note_sleep(&mp->park);
    }
    rtlock_lock(&sched.lock);
    if (sched.timer_sleeper == mp)
        sched.timer_sleeper = NULL;
    rtlock_unlock(&sched.lock);
    if (atomic_load_explicit(&sched.stopping, memory_order_relaxed))
        pthread_exit(NULL);
    atomic_store_explicit(&mp->pin_idle, 0, memory_order_relaxed);
    struct p *pp = mp->nextp;
    mp->nextp = NULL;
    if (pp)
        acquirep(mp, pp);
    else
        timers_without_p(mp);
}

void sched_timers_changed(int64_t when)
{
    if (!atomic_load_explicit(&sched.running, memory_order_acquire))
        return;
    rtlock_lock(&sched.lock);
    struct m *mp = sched.timer_sleeper;
    if (mp != NULL && when < sched.timer_sleep_until && mremove(mp)) {
        sched.timer_sleeper = NULL;
        rtlock_unlock(&sched.lock);
        mp->nextp = NULL; /* woken without a P: runs timers, then looks for one */
        note_wakeup(&mp->park);
        return;
    }
    bool start = mp == NULL && atomic_load_explicit(&sched.npidle, memory_order_relaxed) > 0;
    rtlock_unlock(&sched.lock);
    /* No M sleeps for timers, and an idle P exists (Go's wakeNetPoller).
     * Busy Ms check timers only in schedule(), which a goroutine that runs
     * long never reaches; sysmon would fire the timer a millisecond or two
     * late. Start one M: it finds nothing to run and becomes the timer
     * sleeper. This costs one wakeup per timer added while no M sleeps for
     * timers; later timers ride on the sleeper. */
    if (start)
        startm(NULL, false);
}

/* ------------------------------------------------------------------------ */
/* Finding work                                                               */

static inline void run_timers_if_due(void)
{
    int64_t next = timers_next();
    if (next != 0) {
        int64_t now = nanotime();
        if (next <= now)
            timers_run(now);
    }
}

/* How many Ps a scan for queued work must look at: see maxprocs_seen. */
static inline int32_t procs_scan_bound(void)
{
    return atomic_load_explicit(&sched.maxprocs_seen, memory_order_relaxed);
}

/* Whether a G readied or spawned on pp may stay in pp's local queue: not if
 * pp is retiring (id >= nprocs). Its M is running a goroutine that may not
 * reach schedule() for a long time, and no new M will ever be handed pp, so
 * the G would rely on a thief or sysmon to find it. The global queue plus
 * wakep gets it running at once. */
static inline bool p_accepts_local(struct p *pp)
{
    return pp->id < atomic_load_explicit(&sched.nprocs, memory_order_relaxed);
}

static struct g *steal_work(struct m *mp)
{
    struct p *pp = mp->p;
    const int steal_tries = 4;
    for (int i = 0; i < steal_tries; i++) {
        bool steal_runnext = i == steal_tries - 1;
        /* Retiring Ps too: runq_steal is safe against any owner. */
        uint32_t n = (uint32_t)procs_scan_bound();
        uint32_t start = cheaprandn(n);
        /* Visit every P once, starting at a random one: a coprime stride would
         * randomise the order further; a random start is enough to keep two
         * thieves off the same victim. */
        for (uint32_t k = 0; k < n; k++) {
            struct p *victim = &allp[(start + k) % n];
            if (victim == pp)
                continue;
            struct g *gp = runq_steal(pp, victim, steal_runnext);
            if (gp)
                return gp;
        }
    }
    return NULL;
}

static bool any_work_queued(void)
{
    if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0)
        return true;
    int32_t procs = procs_scan_bound();
    for (int32_t i = 0; i < procs; i++)
        if (!runq_empty(&allp[i]))
            return true;
    return false;
}

/* stopm's end for an M woken without a P (its timed sleep for timers ran
 * out, or sched_timers_changed woke it early): fire the due timers, then
 * take an idle P for the goroutines they readied. True with mp->p set; false
 * when no P is idle (another M runs what they readied), and the caller's
 * next stopm sleeps until the next timer. Both of stopm's callers used to
 * get this only in find_runnable: schedule() went straight back into stopm,
 * which found the earliest timer still due (no M with a P had reached a
 * schedule point yet) and returned at once, over and over: 500,000 empty
 * parks a round in a benchmark of 10,000 sleepers. */
static bool timers_without_p(struct m *mp)
{
    run_timers_if_due();
    rtlock_lock(&sched.lock);
    struct p *pp = pidleget();
    if (pp)
        pp->status = P_RUNNING;
    rtlock_unlock(&sched.lock);
    if (pp == NULL)
        return false;
    acquirep(mp, pp);
    return true;
}

/* Block until there is a G to run; returns it with mp->p set. */
static struct g *find_runnable(struct m *mp)
{
    for (;;) {
        struct p *pp = mp->p;
        if (pp == NULL) {
            stopm(mp); /* back with a P, or without one after the timers ran */
            continue;
        }
        if (unlikely(pp->id >= atomic_load_explicit(&sched.nprocs, memory_order_relaxed)))
            return NULL; /* schedule() retires the P */

        run_timers_if_due();
        struct g *gp = pin_get(mp);
        if (gp == NULL)
            gp = runq_get(pp, NULL);
        if (gp)
            return gp;
        if (atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
            rtlock_lock(&sched.lock);
            gp = globrunq_get(pp, 0);
            rtlock_unlock(&sched.lock);
            if (gp)
                return gp;
        }

        int32_t procs = atomic_load_explicit(&sched.nprocs, memory_order_relaxed);
        int32_t busy = procs - atomic_load_explicit(&sched.npidle, memory_order_relaxed);
        if (mp->spinning || 2 * atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) < busy) {
            if (!mp->spinning) {
                mp->spinning = true;
                atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
            }
            gp = steal_work(mp);
            if (gp)
                return gp;
        }

        /* Nothing. Give up the P and sleep. */
        rtlock_lock(&sched.lock);
        if (sched.runqtail != sched.runqhead) {
            gp = globrunq_get(pp, 0);
            rtlock_unlock(&sched.lock);
            return gp;
        }
        /* keep the P's free Gs: they stay with it for when it is used again;
         * an idle M with pinned work gets the P rather than the idle list */
        if (!pin_give_p_locked(pp))
            pidleput(pp);
        mp->p = NULL;
        rtlock_unlock(&sched.lock);

        if (mp->spinning) {
            mp->spinning = false;
            /* seq_cst: the decrement must be visible before we re-read the
             * queues (see the file comment). */
            atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
            if (any_work_queued()) {
                rtlock_lock(&sched.lock);
                pp = pidleget();
                if (pp)
                    pp->status = P_RUNNING;
                rtlock_unlock(&sched.lock);
                if (pp) {
                    acquirep(mp, pp);
                    mp->spinning = true;
                    atomic_fetch_add_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
                    continue;
                }
            }
        }
        stopm(mp);
    }
}

/* ------------------------------------------------------------------------ */
/* Running Gs                                                                 */

static void gfput(struct p *pp, struct g *gp);

static void execute(struct m *mp, struct g *gp)
{
    if (unlikely(gp->pinned && gp->pinned_m != mp))
        rt_throw("goroutine %llu is pinned to another M", (unsigned long long)gp->goid);
    mp->curg = gp;
    gp->m = mp;
    atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
    g_switch(&mp->g0, gp, false);
    /* Back on g0: gp switched out with a request in mp->mcall. */
    mp->curg = NULL;
    gp->m = NULL;
}

static void allg_remove(struct g *gp);
static void allg_add(struct g *gp);

static void park_m(struct m *mp, struct g *gp)
{
    park_unlock_fn unlockf = gp->park_unlock;
    void *arg = gp->park_arg;
    bool py = gp->py != NULL;
    gp->park_unlock = NULL;
    gp->detached = py;
    atomic_store_explicit(&gp->status, G_WAITING, memory_order_relaxed);
    if (unlockf != NULL && !unlockf(gp, arg)) {
        /* Cancelled: nobody else saw the G; run it again at once. */
        gp->detached = false;
        execute(mp, gp);
        return;
    }
    /* From here on gp may already be running on another M: do not touch it.
     * The hook only releases this thread's hold on the interpreter; gp's
     * new M waits in its attach hook until we have. */
    if (py && rt_hooks.g_detach)
        rt_hooks.g_detach(NULL);
}

static void gosched_m(struct m *mp, struct g *gp)
{
    bool py = gp->py != NULL;
    gp->detached = py;
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    if (gp->pinned) {
        pin_requeue(mp, gp); /* only this M may run it */
    } else {
        rtlock_lock(&sched.lock);
        globrunq_put(gp);
        rtlock_unlock(&sched.lock);
        /* Unlike Go's goschedImpl we wake an idle P: the yielded G is
         * runnable work, and an idle M should not leave it to this M alone. */
        wakep();
    }
    if (py && rt_hooks.g_detach)
        rt_hooks.g_detach(NULL);
}

static void goexit_m(struct m *mp, struct g *gp)
{
    /* The dead G stays on allg for now: unlinking it here would touch its
     * two neighbours (cold lines of other goroutines' stacks) and the
     * allglock line on every exit. The next dump, which walks the list
     * anyway, unlinks it (dump.c), or its stack is freed first (g_release),
     * or it is reused while still linked, and its next life rewrites under
     * allglock what a dump reads (go_spawn_sized). */
    atomic_store_explicit(&gp->status, G_DEAD, memory_order_relaxed);
    atomic_fetch_sub_explicit(&sched.ngoroutines, 1, memory_order_relaxed);
    /* relaxed atomic store: a dump reads py with a relaxed load */
    __atomic_store_n(&gp->py, NULL, __ATOMIC_RELAXED);
#ifdef GORO_TSAN
    if (gp->tsan_fiber) {
        __tsan_destroy_fiber(gp->tsan_fiber);
        gp->tsan_fiber = NULL;
    }
#endif
    gfput(mp->p, gp);
}

static void retire_p(struct m *mp)
{
    struct p *pp = mp->p;
    /* Its free Gs go to the global list first: once the P is marked dead
     * below, procresize may hand it to another M at any moment. */
    rtlock_lock(&sched.gflock);
    while (pp->gfree) {
        struct g *g1 = pp->gfree;
        pp->gfree = g1->schedlink;
        g1->schedlink = sched.gfree;
        sched.gfree = g1;
        sched.ngfree++;
    }
    pp->ngfree = 0;
    rtlock_unlock(&sched.gflock);
    /* Its queued Gs move to the global queue: another P will run them. */
    struct g *gp;
    rtlock_lock(&sched.lock);
    while ((gp = runq_get(pp, NULL)) != NULL)
        globrunq_put(gp);
    pp->status = P_DEAD;
    pp->m = NULL;
    mp->p = NULL;
    rtlock_unlock(&sched.lock);
    wakep();
}

/* The scheduler loop on g0. Never returns. */
static _Noreturn void schedule(struct m *mp)
{
    for (;;) {
        if (unlikely(atomic_load_explicit(&sched.stopping, memory_order_relaxed)))
            pthread_exit(NULL);
        struct p *pp = mp->p;
        if (pp == NULL || pp->id >= atomic_load_explicit(&sched.nprocs, memory_order_relaxed)) {
            /* A spinning M must give its count back before it sleeps, or
             * wakep would wait forever for a spinner that no longer exists. */
            if (mp->spinning) {
                mp->spinning = false;
                atomic_fetch_sub_explicit(&sched.nmspinning, 1, memory_order_seq_cst);
            }
            if (pp)
                retire_p(mp);
            stopm(mp);
            continue;
        }
        /* An idle M has pinned work and no P to run it: hand it ours. */
        if (unlikely(atomic_load_explicit(&sched.npinwait, memory_order_relaxed) > 0) &&
            !mp->pin_fresh && pin_handoff(mp))
            continue;
        struct g *gp = NULL;
        run_timers_if_due();
        /* Fairness: now and then take from the global queue even when the
         * local one has work, or two Gs handing work to each other locally
         * could starve it forever. */
        uint32_t tick = atomic_load_explicit(&pp->schedtick, memory_order_relaxed) + 1;
        atomic_store_explicit(&pp->schedtick, tick, memory_order_relaxed);
        if (unlikely(tick % GLOBAL_RUNQ_TICK == 0) &&
            atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0) {
            rtlock_lock(&sched.lock);
            gp = globrunq_get(pp, 1);
            rtlock_unlock(&sched.lock);
        }
        /* pinned Gs alternate with the P's queue, so neither starves */
        if (gp == NULL && (tick & 1))
            gp = pin_get(mp);
        if (gp == NULL)
            gp = runq_get_fair(pp);
        if (gp == NULL)
            gp = pin_get(mp);
        if (gp == NULL) {
            gp = find_runnable(mp);
            if (gp == NULL)
                continue; /* our P was retired meanwhile */
        }
        if (mp->spinning)
            reset_spinning(mp);

        execute(mp, gp);
        mp->pin_fresh = false;
        switch (mp->mcall) {
        case MCALL_PARK:
            park_m(mp, gp);
            break;
        case MCALL_GOSCHED:
            gosched_m(mp, gp);
            break;
        case MCALL_EXIT:
            goexit_m(mp, gp);
            break;
        default:
            rt_throw("goroutine %llu switched to g0 without a request",
                     (unsigned long long)gp->goid);
        }
        mp->mcall = MCALL_NONE;
    }
}

static void *mstart(void *arg)
{
    struct m *mp = arg;
    tls_m = mp;
    mp->g0.m = mp;
    atomic_store_explicit(&mp->g0.status, G_RUNNING, memory_order_relaxed);
    os_thread_stack(&mp->g0.stack.lo, &mp->g0.stack.hi);
#ifdef GORO_TSAN
    mp->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
    signal_m_altstack(mp);
    if (rt_hooks.m_start)
        rt_hooks.m_start(mp);
    struct p *pp = mp->nextp;
    mp->nextp = NULL;
    if (pp)
        acquirep(mp, pp);
    schedule(mp);
}

/* ------------------------------------------------------------------------ */
/* Goroutine creation and exit                                                */

/* The all-G list holds every live G, and dead ones that exited since the
 * last dump (see goexit_m). allglock held. */
static void allg_link_locked(struct g *gp)
{
    gp->alllink_prev = NULL;
    gp->alllink_next = sched.allg;
    if (sched.allg)
        sched.allg->alllink_prev = gp;
    sched.allg = gp;
    gp->on_allg = true;
}

static void allg_add(struct g *gp)
{
    rtlock_lock(&sched.allglock);
    allg_link_locked(gp);
    rtlock_unlock(&sched.allglock);
}

void allg_unlink_locked(struct g *gp)
{
    if (gp->alllink_prev)
        gp->alllink_prev->alllink_next = gp->alllink_next;
    else
        sched.allg = gp->alllink_next;
    if (gp->alllink_next)
        gp->alllink_next->alllink_prev = gp->alllink_prev;
    gp->alllink_next = gp->alllink_prev = NULL;
    gp->on_allg = false;
}

static void allg_remove(struct g *gp)
{
    rtlock_lock(&sched.allglock);
    if (gp->on_allg) /* a dump may have unlinked it already */
        allg_unlink_locked(gp);
    rtlock_unlock(&sched.allglock);
}

/* Free a dead G and its stack for good. */
static void g_release(struct g *gp)
{
    allg_remove(gp);
#ifdef GORO_TSAN
    if (gp->tsan_fiber)
        __tsan_destroy_fiber(gp->tsan_fiber);
#endif
    stack_free_g(gp);
}

/* Put dead Gs (linked by schedlink) on the global free list, keeping up
 * to GFREE_GLOBAL_MAX with their stacks: releasing a stack costs an madvise
 * (~1-2 us), which a burst of spawns would pay on every exit. The cap
 * bounds what an idle program keeps resident after a burst (a few KiB
 * each); the rest are released outside the lock. */
static void gfput_global(struct g *list)
{
    rtlock_lock(&sched.gflock);
    while (list != NULL && sched.ngfree < GFREE_GLOBAL_MAX) {
        struct g *g1 = list;
        list = g1->schedlink;
        g1->schedlink = sched.gfree;
        sched.gfree = g1;
        sched.ngfree++;
    }
    rtlock_unlock(&sched.gflock);
    while (list != NULL) {
        struct g *g1 = list;
        list = g1->schedlink;
        g_release(g1);
    }
}

static void gfput(struct p *pp, struct g *gp)
{
    if (pp == NULL) {
        gp->schedlink = NULL;
        gfput_global(gp);
        return;
    }
    gp->schedlink = pp->gfree;
    pp->gfree = gp;
    if (++pp->ngfree < P_GFREE_MAX)
        return;
    /* Full: move half to the global list under one lock, as Go's gfput
     * does, instead of one lock per exit from then on (a wide cancel
     * retires 1000 goroutines in a row on one P). */
    struct g *batch = NULL;
    while (pp->ngfree > P_GFREE_MAX / 2) {
        struct g *g1 = pp->gfree;
        pp->gfree = g1->schedlink;
        pp->ngfree--;
        g1->schedlink = batch;
        batch = g1;
    }
    gfput_global(batch);
}

static struct g *gfget(struct p *pp, size_t size)
{
    struct g *gp = NULL;
    if (pp && pp->gfree == NULL && atomic_load_explicit(&sched.running, memory_order_relaxed)) {
        /* refill from the global list in a batch, one lock for many spawns */
        rtlock_lock(&sched.gflock);
        while (pp->ngfree < P_GFREE_MAX / 2 && sched.gfree) {
            struct g *g1 = sched.gfree;
            sched.gfree = g1->schedlink;
            sched.ngfree--;
            g1->schedlink = pp->gfree;
            pp->gfree = g1;
            pp->ngfree++;
        }
        rtlock_unlock(&sched.gflock);
    }
    if (pp && pp->gfree) {
        gp = pp->gfree;
        pp->gfree = gp->schedlink;
        pp->ngfree--;
    } else if (!pp) {
        rtlock_lock(&sched.gflock);
        gp = sched.gfree;
        if (gp) {
            sched.gfree = gp->schedlink;
            sched.ngfree--;
        }
        rtlock_unlock(&sched.gflock);
    }
    if (gp && stack_size_of(gp) != size) {
        g_release(gp);
        gp = NULL;
    }
    return gp;
}

/* First code on a new goroutine's stack. */
static void goroutine_main(void *arg)
{
    struct g *gp = arg;
#ifdef GORO_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    gp->entry(gp->arg);
    /* The entry returned: exit. The bridge's entry has already dropped its
     * Python state, so nothing here touches the interpreter. */
    struct m *mp = getm();
    stack_check(gp);
    mp->mcall = MCALL_EXIT;
    g_switch(gp, &mp->g0, true);
    rt_throw("dead goroutine %llu resumed", (unsigned long long)gp->goid);
}

static void runtime_autostart(void);

struct g *go_spawn_sized(goro_fn fn, void *arg, const char *label, void *py, size_t stack_size)
{
    runtime_autostart();
    if (unlikely(atomic_load_explicit(&sched.stopping, memory_order_relaxed)))
        return NULL;
    if (stack_size == 0)
        stack_size = stack_default_size();
    struct m *mp = getm();
    struct p *pp = mp ? mp->p : NULL;
    struct g *gp = gfget(pp, stack_size);
    if (gp == NULL) {
        gp = stack_alloc_g(stack_size);
        if (gp == NULL)
            return NULL;
    }
#ifdef GORO_TSAN
    if (gp->tsan_fiber == NULL)
        gp->tsan_fiber = __tsan_create_fiber(0);
#endif
    uint64_t goid = atomic_fetch_add_explicit(&sched.goidgen, 1, memory_order_relaxed) + 1;
    uint64_t parent_goid = mp && mp->curg ? mp->curg->goid : 0;
    gp->detached = false;
    gp->pinned = false;
    gp->pinned_m = NULL;
    gp->wait_reason = WAIT_NONE;
    gp->park_unlock = NULL;
    gp->param = NULL;
    atomic_store_explicit(&gp->select_done, 0, memory_order_relaxed);
    gp->waiting = NULL;
#ifdef GORO_ASAN
    /* A reused stack still carries ASAN's markings from its last goroutine's
     * frames (goroutine_main never returns). */
    __asan_unpoison_memory_region((void *)gp->stack.lo, gp->stack.hi - gp->stack.lo);
#endif
    ctx_make(&gp->ctx, (void *)gp->stack.lo, gp->stack.hi - gp->stack.lo, goroutine_main, gp);
    /* What a dump reads of a live G is written under allglock, status
     * included: a reused G may still be on allg (dead, skipped by dumps),
     * a dump holding the lock must not see these half-written, and one
     * that sees it dead may unlink it (dump.c) - so it must not turn live
     * outside the lock, after we decided it was linked. */
    rtlock_lock(&sched.allglock);
    gp->goid = goid;
    gp->parent_goid = parent_goid;
    gp->entry = fn;
    gp->label = label;
    __atomic_store_n(&gp->arg, arg, __ATOMIC_RELAXED);
    __atomic_store_n(&gp->py, py, __ATOMIC_RELAXED);
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    if (!gp->on_allg)
        allg_link_locked(gp);
    rtlock_unlock(&sched.allglock);
    atomic_fetch_add_explicit(&sched.ngoroutines, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&sched.spawns, 1, memory_order_relaxed);
    if (pp && p_accepts_local(pp)) {
        /* Like Go's newproc: the new G goes to runnext, so a spawn-then-wait
         * pattern runs the child next on this P. */
        runq_put(pp, gp, true);
    } else {
        rtlock_lock(&sched.lock);
        globrunq_put(gp);
        rtlock_unlock(&sched.lock);
    }
    wakep();
    return gp;
}

struct g *go_spawn(goro_fn fn, void *arg, const char *label, void *py)
{
    return go_spawn_sized(fn, arg, label, py, 0);
}

uint64_t goid_of(struct g *gp)
{
    return gp->goid;
}

/* ------------------------------------------------------------------------ */
/* Parking and readying                                                       */

static void thread_park(struct g *gp, park_unlock_fn unlockf, void *arg, enum wait_reason reason)
{
    gp->wait_reason = (uint8_t)reason;
    gp->thread_interrupted = false;
    /* Reset the wake word before unlockf: once unlockf releases the lock a
     * waker may set it at any moment. */
    atomic_store_explicit(&gp->thread_wake, 0, memory_order_relaxed);
    atomic_store_explicit(&gp->status, G_WAITING, memory_order_relaxed);
    if (unlockf != NULL && !unlockf(gp, arg)) {
        atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
        return;
    }
    if (rt_hooks.thread_block_begin)
        rt_hooks.thread_block_begin(gp);
    /* acquire: pairs with go_ready's release, so what the waker wrote into
     * our sudog is visible once we see the flag.
     * An interruptible thread (Python's main thread) also wakes every
     * DEAD_CHECK_NS to see whether the runtime has gone idle for good: then
     * nobody but another OS thread can wake it, and the bridge decides
     * whether that is a deadlock (Go's checkdead; see goro_runtime_idle). */
    int64_t tick = gp->thread_interruptible ? DEAD_CHECK_NS : -1;
    while (atomic_load_explicit(&gp->thread_wake, memory_order_acquire) == 0) {
        int r = futex_timedwait(&gp->thread_wake, 0, tick);
        if (!gp->thread_interruptible ||
            atomic_load_explicit(&gp->thread_wake, memory_order_acquire) != 0)
            continue;
        if (r == -2 ||
            (r == -1 && ((rt_hooks.signal_pending && rt_hooks.signal_pending()) ||
                         goro_runtime_idle()))) {
            gp->thread_interrupted = true;
            break;
        }
    }
    if (rt_hooks.thread_block_end)
        rt_hooks.thread_block_end(gp);
    atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
}

/* Every P idle and no M spinning (a retiring P still running its last
 * goroutine counts as busy: that goroutine can ready others). */
static bool procs_idle(void)
{
    int32_t procs = atomic_load(&sched.nprocs);
    if (atomic_load(&sched.npidle) != procs || atomic_load(&sched.nmspinning) != 0)
        return false;
    int32_t seen = procs_scan_bound();
    for (int32_t i = procs; i < seen; i++)
        if (atomic_load(&allp[i].status) == P_RUNNING)
            return false;
    return true;
}

static bool nothing_queued(void)
{
    return !any_work_queued() && !pin_any_queued();
}

bool sched_idle_but_timers(void)
{
    return procs_idle() && nothing_queued();
}

bool goro_runtime_idle(void)
{
    if (!atomic_load_explicit(&sched.running, memory_order_acquire))
        return true;
    /* Timers before the queues: a timer being run may ready a goroutine;
     * once it has, the queues show it. */
    return procs_idle() && timers_quiet() && nothing_queued();
}

void go_park_commit_wait(struct g *gp)
{
    if (rt_hooks.thread_block_begin)
        rt_hooks.thread_block_begin(gp);
    while (atomic_load_explicit(&gp->thread_wake, memory_order_acquire) == 0)
        futex_wait(&gp->thread_wake, 0);
    if (rt_hooks.thread_block_end)
        rt_hooks.thread_block_end(gp);
    gp->thread_interrupted = false;
    atomic_store_explicit(&gp->status, G_RUNNING, memory_order_relaxed);
}

static inline int64_t coarse_now(void)
{
    /* wait_since is for humans reading a dump: see OS_CLOCK_COARSE */
    return os_clock_ns(OS_CLOCK_COARSE);
}

void go_park(park_unlock_fn unlockf, void *arg, enum wait_reason reason)
{
    struct g *gp = getg();
    /* relaxed atomic stores: a dump (sched/dump.c) reads both from another
     * thread; they are for humans and need no ordering */
    __atomic_store_n(&gp->wait_since, coarse_now(), __ATOMIC_RELAXED);
    if (gp->is_thread) {
        thread_park(gp, unlockf, arg, reason);
        return;
    }
    struct m *mp = getm();
    if (unlikely(mp->curg != gp))
        rt_throw("go_park called on g0");
    gp->park_unlock = unlockf;
    gp->park_arg = arg;
    __atomic_store_n(&gp->wait_reason, (uint8_t)reason, __ATOMIC_RELAXED);
    stack_check(gp);
    mp->mcall = MCALL_PARK;
    g_switch(gp, &mp->g0, false);
    /* Resumed, possibly on another M. */
    __atomic_store_n(&gp->wait_reason, WAIT_NONE, __ATOMIC_RELAXED);
    if (gp->detached) {
        gp->detached = false;
        if (rt_hooks.g_attach)
            rt_hooks.g_attach(gp);
    }
}

void go_ready(struct g *gp)
{
    if (gp->is_thread) {
        atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
        /* release: publishes what we wrote for the waiter (its sudog) */
        atomic_store_explicit(&gp->thread_wake, 1, memory_order_release);
        futex_wake(&gp->thread_wake, 1);
        return;
    }
    uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
    if (unlikely(st != G_WAITING))
        rt_throw("go_ready of goroutine %llu in status %u", (unsigned long long)gp->goid, st);
    atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
    if (gp->pinned) {
        pin_ready(gp);
        return;
    }
    struct m *mp = getm();
    if (mp != NULL && mp->p != NULL && p_accepts_local(mp->p)) {
        runq_put(mp->p, gp, true);
    } else {
        rtlock_lock(&sched.lock);
        globrunq_put(gp);
        rtlock_unlock(&sched.lock);
    }
    wakep();
}

void go_ready_list(struct g *glist)
{
    struct m *mp = getm();
    struct p *pp = mp != NULL ? mp->p : NULL;
    bool local = pp != NULL && p_accepts_local(pp);
    struct g *head = NULL, *tail = NULL;
    int32_t n = 0;
    bool queued = false;
    while (glist != NULL) {
        struct g *gp = glist;
        /* read before the G can run: it reuses schedlink */
        glist = gp->schedlink;
        gp->schedlink = NULL;
        if (gp->is_thread || gp->pinned) {
            go_ready(gp); /* wakes its own thread or M */
            continue;
        }
        uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
        if (unlikely(st != G_WAITING))
            rt_throw("go_ready of goroutine %llu in status %u", (unsigned long long)gp->goid, st);
        atomic_store_explicit(&gp->status, G_RUNNABLE, memory_order_relaxed);
        queued = true;
        if (local) {
            runq_put(pp, gp, true);
            continue;
        }
        if (tail != NULL)
            tail->schedlink = gp;
        else
            head = gp;
        tail = gp;
        n++;
    }
    if (head != NULL) {
        rtlock_lock(&sched.lock);
        globrunq_put_batch(head, n);
        rtlock_unlock(&sched.lock);
    }
    if (queued)
        wakep();
}

void go_sched(void)
{
    struct m *mp = getm();
    if (mp == NULL || mp->curg == NULL) {
        sched_yield();
        return;
    }
    struct g *gp = mp->curg;
    stack_check(gp);
    mp->mcall = MCALL_GOSCHED;
    g_switch(gp, &mp->g0, false);
    if (gp->detached) {
        gp->detached = false;
        if (rt_hooks.g_attach)
            rt_hooks.g_attach(gp);
    }
}

bool m_has_queued_work(void)
{
    struct m *mp = getm();
    if (mp == NULL || mp->p == NULL)
        return false;
    return !runq_empty(mp->p) || atomic_load_explicit(&sched.runqsize, memory_order_relaxed) > 0;
}

void m_waiting_for_gil(bool waiting)
{
    struct m *mp = getm();
    if (mp != NULL && mp->p != NULL)
        atomic_store_explicit(&mp->p->gil_wait, waiting, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Mutex spinning support                                                     */

/* How long one turn of a G on a P (one schedule()) may spin on Mutexes while
 * other Gs wait in the P's queue, counted from the turn's first such spin.
 * See sync_runtime_can_spin. */
#define SPIN_WITH_QUEUED_NS (50 * 1000)

/* The first call in a turn starts the turn's budget; later ones spend it. */
static bool spin_budget_left(struct p *pp)
{
    uint32_t tick = atomic_load_explicit(&pp->schedtick, memory_order_relaxed);
    int64_t now = nanotime();
    if (pp->spin_budget_tick != tick || pp->spin_budget_start == 0) {
        pp->spin_budget_tick = tick;
        pp->spin_budget_start = now;
    }
    return now - pp->spin_budget_start < SPIN_WITH_QUEUED_NS;
}

bool sync_runtime_can_spin(int i)
{
    /* Spinning only pays if the lock holder is running on another CPU. */
    /* Lazily read; racing first callers store the same value. Relaxed
     * atomics make that benign race a defined one. */
    static _Atomic int ncpu_cache;
    int ncpu = atomic_load_explicit(&ncpu_cache, memory_order_relaxed);
    if (ncpu == 0) {
        ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
        atomic_store_explicit(&ncpu_cache, ncpu, memory_order_relaxed);
    }
    if (i >= 4 || ncpu <= 1)
        return false;
    int32_t procs = atomic_load_explicit(&sched.nprocs, memory_order_relaxed);
    if (procs <= atomic_load_explicit(&sched.npidle, memory_order_relaxed) +
                     atomic_load_explicit(&sched.nmspinning, memory_order_relaxed) + 1)
        return false;
    struct m *mp = getm();
    if (mp == NULL || mp->p == NULL || runq_empty(mp->p))
        return true;
    /* Gs are queued here, and spinning delays them. Go never spins then.
     * We do, for SPIN_WITH_QUEUED_NS from the turn's first spin with work
     * queued (the turn: one schedule() of this P), because under
     * contention the queued Gs are mostly the lock's own waiters: Unlock
     * readies the one it wakes into its P's runnext, where it waits until
     * the running G parks (a median 65 us in a trace of the 8-goroutine
     * benchmark below). Refusing to spin for that waiter sent the running
     * G to the semaphore on nearly every contended Lock, kept most Gs
     * runnable instead of parked, and left both CPUs taking turns on the
     * lock's cache line at every operation.
     *
     * Measured with tests/c bench_mutex (8 goroutines, gomaxprocs 2, ns
     * per Lock+Unlock, per round) and a goroutine sleeping 200 us in a
     * loop beside them (how late it woke: p50 / p90):
     *     never spin with work queued (Go's rule)  55-137, bimodal   4 / 20 us
     *     always spin                              49-65         500 us / 2.5 ms
     *     spin for 50 us of the turn               55-64          20 / 50 us
     *     Go 1.27, same program                    75-94          30-85 / 100-350 us
     * So a queued G still runs within about 50 us plus one spin, and the
     * lock keeps the throughput of spinning. Since mutex.c's state guess,
     * the same runs give 45-60 with Go's rule and 32-35 with the budget
     * (the sleeper: 6 / 25 us and 25 / 55 us; Go: 75-78, 45 / 170-220 us). */
    return spin_budget_left(mp->p);
}

void sync_runtime_do_spin(void)
{
    for (int i = 0; i < 30; i++) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield" ::: "memory");
#endif
    }
}

int sched_gomaxprocs(void)
{
    return atomic_load_explicit(&sched.gomaxprocs, memory_order_relaxed);
}

/* ------------------------------------------------------------------------ */
/* Runtime start, stop, gomaxprocs                                            */

static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;

static int clamp_procs(int n)
{
    if (n < 1)
        n = 1;
    if (n > MAX_PROCS)
        n = MAX_PROCS;
    return n;
}

int goro_runtime_start(int gomaxprocs)
{
    pthread_mutex_lock(&start_mu);
    if (atomic_load(&sched.running)) {
        pthread_mutex_unlock(&start_mu);
        return GORO_OK;
    }
    if (gomaxprocs <= 0) {
        const char *env = getenv("PYGORO_MAXPROCS");
        gomaxprocs = env && *env ? atoi(env) : 0;
        if (gomaxprocs <= 0)
            gomaxprocs = goro_num_cpu();
    }
    gomaxprocs = clamp_procs(gomaxprocs);
    rtlock_lock(&sched.lock);
    atomic_store(&sched.stopping, 0);
    sched.pidle = NULL;
    atomic_store(&sched.npidle, 0);
    for (int i = MAX_PROCS - 1; i >= 0; i--) {
        struct p *pp = &allp[i];
        if (pp->status == P_RUNNING && pp->m)
            continue; /* cannot happen on a fresh start */
        pp->id = i;
        if (i < gomaxprocs)
            pidleput(pp);
        else
            pp->status = P_DEAD;
    }
    atomic_store(&sched.gomaxprocs, gomaxprocs);
    atomic_store(&sched.nprocs, gomaxprocs);
    atomic_store(&sched.maxprocs_seen, gomaxprocs);
    sched.extra_procs = 0;
    rtlock_unlock(&sched.lock);
#if !defined(GORO_ASAN) && !defined(GORO_TSAN)
    /* the sanitizers report overflows themselves */
    signal_install_overflow_handler();
#endif
    atomic_store_explicit(&sched.running, 1, memory_order_release);
    sysmon_start();
    pthread_mutex_unlock(&start_mu);
    return GORO_OK;
}

static void runtime_autostart(void)
{
    if (unlikely(!atomic_load_explicit(&sched.running, memory_order_acquire)))
        goro_runtime_start(0);
}

void goro_runtime_stop(void)
{
    pthread_mutex_lock(&start_mu);
    if (!atomic_load(&sched.running)) {
        pthread_mutex_unlock(&start_mu);
        return;
    }
    atomic_store(&sched.stopping, 1);
    sched.sysmon_started = false; /* it exits at its next check */
    /* Wake every idle M so it sees `stopping` and exits. Ms running a
     * goroutine exit the next time they schedule; goroutines that never
     * give up their M are abandoned with it, as at the end of a Go program. */
    rtlock_lock(&sched.lock);
    struct m *mp;
    while ((mp = mget()) != NULL) {
        mp->nextp = NULL;
        note_wakeup(&mp->park);
    }
    sched.timer_sleeper = NULL;
    rtlock_unlock(&sched.lock);
    atomic_store(&sched.running, 0);
    pthread_mutex_unlock(&start_mu);
}

/* Make Ps [0, n) live: sched.lock held. Raising n puts dead Ps on the idle
 * list; lowering it kills idle Ps at once, while running ones retire at their
 * M's next schedule() (their queued Gs move to the global queue). */
void procresize_locked(int32_t n)
{
    int32_t old = atomic_load(&sched.nprocs);
    for (int32_t i = old; i < n; i++) {
        struct p *pp = &allp[i];
        if (pp->status == P_DEAD)
            pidleput(pp);
    }
    for (int32_t i = n; i < old; i++) {
        struct p *pp = &allp[i];
        if (pp->status == P_IDLE) {
            pidleremove(pp);
            pp->status = P_DEAD;
        }
    }
    atomic_store(&sched.nprocs, n);
    if (n > atomic_load(&sched.maxprocs_seen))
        atomic_store(&sched.maxprocs_seen, n);
}

int goro_gomaxprocs(int n)
{
    runtime_autostart();
    pthread_mutex_lock(&start_mu);
    int old = atomic_load(&sched.gomaxprocs);
    if (n <= 0 || n == old) {
        pthread_mutex_unlock(&start_mu);
        return old;
    }
    n = clamp_procs(n);
    rtlock_lock(&sched.lock);
    if (n + sched.extra_procs > MAX_PROCS)
        sched.extra_procs = MAX_PROCS - n;
    atomic_store(&sched.gomaxprocs, n);
    procresize_locked(n + sched.extra_procs);
    rtlock_unlock(&sched.lock);
    pthread_mutex_unlock(&start_mu);
    if (n > old)
        wakep();
    return old;
}

/* ------------------------------------------------------------------------ */
/* fork                                                                       */

/* Take the runtime's global locks so that no other thread holds one at the
 * moment of fork: the child inherits them locked otherwise, forever. Channel
 * and other object locks are the program's: as in any threaded program, a
 * child should not touch objects other threads were using at fork time. */
void goro_runtime_before_fork(void)
{
    pthread_mutex_lock(&start_mu);
    rtlock_lock(&sched.lock);
    rtlock_lock(&sched.gflock);
    rtlock_lock(&sched.allglock);
    timers_before_fork();
}

void goro_runtime_after_fork_parent(void)
{
    timers_after_fork_parent();
    rtlock_unlock(&sched.allglock);
    rtlock_unlock(&sched.gflock);
    rtlock_unlock(&sched.lock);
    pthread_mutex_unlock(&start_mu);
}

/* In the child only the forking thread exists. Rebuild the scheduler from
 * scratch: every other M is gone and the goroutines they ran or that were
 * queued are abandoned (their memory is simply never reused). If the fork
 * came from a goroutine, that goroutine and its M carry on as the only ones,
 * holding P 0. */
void goro_runtime_after_fork_child(void)
{
    struct m *self = tls_m;
    struct g *cur = self ? self->curg : NULL;
    sched.lock = (struct rtlock)RTLOCK_INIT;
    sched.gflock = (struct rtlock)RTLOCK_INIT;
    sched.allglock = (struct rtlock)RTLOCK_INIT;
    pthread_mutex_init(&start_mu, NULL);
    sched.midle = NULL;
    sched.nmidle = 0;
    sched.allm = self;
    sched.mcount = self ? 1 : 0;
    if (self) {
        self->alllink = NULL;
        self->schedlink = NULL;
        self->spinning = false;
        self->nextp = NULL;
        self->thread = pthread_self();
    }
    sched.runqhead = sched.runqtail = 0; /* the ring's memory is ours still */
    atomic_store(&sched.runqsize, 0);
    sched.gfree = NULL;
    sched.ngfree = 0;
    sched.allg = NULL;
    sched.timer_sleeper = NULL;
    atomic_store(&sched.nmspinning, 0);
    atomic_store(&sched.ngoroutines, 0);
    int32_t procs = atomic_load(&sched.gomaxprocs);
    atomic_store(&sched.nprocs, procs);
    atomic_store(&sched.maxprocs_seen, procs);
    sched.extra_procs = 0;
    sched.sysmon_started = false;
    sched.pidle = NULL;
    atomic_store(&sched.npidle, 0);
    for (int i = MAX_PROCS - 1; i >= 0; i--) {
        struct p *pp = &allp[i];
        atomic_store(&pp->runqhead, 0);
        atomic_store(&pp->runqtail, 0);
        atomic_store(&pp->runnext, NULL);
        pp->gfree = NULL;
        pp->ngfree = 0;
        pp->m = NULL;
        pp->link = NULL;
        if (i >= procs)
            pp->status = P_DEAD;
        else if (self && i == 0)
            acquirep(self, pp);
        else
            pidleput(pp);
    }
    if (cur) {
        allg_add(cur);
        atomic_store(&sched.ngoroutines, 1);
    }
    pin_after_fork_child(self);
    timers_after_fork_child();
    sysmon_start();
}

/* ------------------------------------------------------------------------ */
/* Public wrappers                                                            */

int goro_go(goro_fn fn, void *arg)
{
    return goro_go_named(fn, arg, NULL);
}

int goro_go_named(goro_fn fn, void *arg, const char *label)
{
    if (fn == NULL)
        return GORO_EINVAL;
    if (atomic_load_explicit(&sched.stopping, memory_order_relaxed))
        return GORO_EINVAL;
    return go_spawn(fn, arg, label, NULL) ? GORO_OK : GORO_ENOMEM;
}

void goro_gosched(void)
{
    go_sched();
}

int64_t goro_num_goroutine(void)
{
    return atomic_load_explicit(&sched.ngoroutines, memory_order_relaxed);
}

uint64_t goro_goid(void)
{
    struct m *mp = getm();
    return mp && mp->curg ? mp->curg->goid : 0;
}

void goro_get_stats(goro_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->gomaxprocs = atomic_load(&sched.gomaxprocs);
    rtlock_lock(&sched.lock);
    out->num_m = sched.mcount;
    out->nmidle = sched.nmidle;
    rtlock_unlock(&sched.lock);
    out->npidle = atomic_load(&sched.npidle);
    out->nmspinning = atomic_load(&sched.nmspinning);
    out->num_goroutine = atomic_load(&sched.ngoroutines);
    for (int i = 0; i < MAX_PROCS; i++) {
        out->steals += atomic_load_explicit(&allp[i].steals, memory_order_relaxed);
        out->global_gets += atomic_load_explicit(&allp[i].global_gets, memory_order_relaxed);
    }
    out->spawns = atomic_load(&sched.spawns);
    out->parks = atomic_load(&sched.mparks);
    stack_stats(&out->stacks_mapped, &out->stacks_guarded);
}

uint64_t goro_p_steals(int p)
{
    if (p < 0 || p >= MAX_PROCS)
        return 0;
    return atomic_load_explicit(&allp[p].steals, memory_order_relaxed);
}
