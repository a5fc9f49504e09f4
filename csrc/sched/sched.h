/* Scheduler-private structures: M, P and the global scheduler state.
 * Shared by proc.c (the scheduler), runq.c (run queues), stack.c and
 * sysmon.c; nothing outside csrc/sched/ includes this. */
#ifndef PYGORO_SCHED_H
#define PYGORO_SCHED_H

#include <pthread.h>
#include <signal.h>

#include "../runtime.h"

/* Ps are allocated once, up to MAX_PROCS; gomaxprocs selects how many are
 * live. Changing gomaxprocs never frees a P, so a pointer to one stays valid
 * (see procresize in proc.c). */
#define MAX_PROCS 256
#define RUNQ_SIZE 256 /* per-P ring; a power of two */
/* Go checks the global queue every 61 schedule ticks so that goroutines there
 * are not starved by two goroutines handing work to each other locally. */
#define GLOBAL_RUNQ_TICK 61
/* How many times in a row schedule() may run the G in runnext while others
 * wait in the P's ring (runq_get_fair). */
#define RUNNEXT_STREAK_MAX 61
/* Dead Gs (with their stacks) kept per P before spilling to the global list. */
#define P_GFREE_MAX 64
#define GFREE_GLOBAL_MAX 16384

enum pstatus {
    P_IDLE = 0, /* on sched.pidle, no M */
    P_RUNNING,  /* owned by an M */
    P_DEAD,     /* id >= gomaxprocs and released */
};

struct p {
    int id;
    /* enum pstatus. Atomic: the owner sets P_RUNNING in acquirep without
     * sched.lock, gomaxprocs reads it under the lock, and thieves read it
     * with no lock at all (runq_grab). Transitions are rare: seq_cst. */
    _Atomic uint32_t status;
    struct m *m;         /* owner while P_RUNNING */
    struct p *link;      /* sched.pidle list */
    /* incremented each schedule(); read by sysmon to spot a P stuck in one
     * goroutine. Owner-only writes: a relaxed load+store, no RMW needed. */
    _Atomic uint32_t schedtick;
    /* Its M waits for the GIL to resume a Python goroutine (set by the
     * bridge through m_waiting_for_gil): not stuck in the sense sysmon
     * looks for, since another M for its queue would wait for the GIL too. */
    _Atomic bool gil_wait;

    /* Local run queue: the owner pushes at tail and pops at head; thieves
     * CAS head forward. Slots are atomics so that a thief reading a slot the
     * owner is overwriting is not a data race in C11's sense; the CAS on
     * head decides whether the thief's copy counts. */
    _Atomic uint32_t runqhead;
    _Atomic uint32_t runqtail;
    _Atomic(struct g *) runq[RUNQ_SIZE];
    /* A G readied by the running G, run next in place of the queue head:
     * ping-pong pairs stay on one P and share a warm cache. */
    _Atomic(struct g *) runnext;
    /* schedule()s in a row that ran runnext (owner-only; runq_get_fair) */
    uint32_t runnext_streak;
    /* sync_runtime_can_spin's budget for spinning while Gs wait in this
     * queue: the schedtick of the turn it belongs to and when that turn
     * first spun with work queued (0: never). Owner-only. */
    uint32_t spin_budget_tick;
    int64_t spin_budget_start;

    /* free Gs with stacks, owner-only */
    struct g *gfree;
    int ngfree;

    /* counters (owner writes, anyone reads) */
    _Atomic uint64_t steals;      /* Gs this P stole from others */
    _Atomic uint64_t global_gets; /* Gs this P took from the global queue */

    char pad[64];
};

struct m {
    struct g g0;          /* this thread's scheduler context (its own stack) */
    struct g *curg;       /* the goroutine running on this M, NULL on g0 */
    struct p *p;          /* attached P, NULL when idle */
    struct p *nextp;      /* P handed over by startm */
    struct m *schedlink;  /* sched.midle */
    struct m *alllink;    /* sched.allm */
    struct note park;     /* idle Ms sleep here */
    bool spinning;        /* looking for work (counted in sched.nmspinning) */
    bool timer_sleeper;   /* the one idle M that sleeps until the next timer */
    int id;
    uint32_t fastrand[2];
    pthread_t thread;
    uintptr_t g0_stack_lo, g0_stack_hi; /* for sanitizers and dumps */

    /* What g0 must do with the G that just switched to it (Go's mcall). */
    enum { MCALL_NONE, MCALL_PARK, MCALL_GOSCHED, MCALL_EXIT } mcall;

    /* Runnable Gs pinned to this M (free-threaded CPython; pin.c). */
    struct rtlock pinlock;
    struct g *pinhead, *pintail;  /* under pinlock */
    _Atomic int32_t npinq;        /* queue length, read without the lock */
    _Atomic uint32_t pin_idle;    /* set in stopm: a readier must wake us */
    bool pin_waiting;             /* idle with pinned work, no P (sched.lock) */
    bool pin_fresh;               /* no G run since the P was acquired: keep it */
};

/* Fields are grouped by who writes them, one cache line per group: a
 * thread that readies Gs into the global queue (under lock) must not keep
 * stealing the line of the M that is retiring the Gs it ran (allglock,
 * gflock, the counters). Measured on the 1000-child cancel fan-out
 * (benchmarks/test_context.py), where both run at once. */
#define SCHED_CACHE_LINE 64

struct schedt {
    /* idle Ms and Ps, the global run queue: under lock */
    _Alignas(SCHED_CACHE_LINE) struct rtlock lock;

    /* idle Ms */
    struct m *midle;
    int nmidle;
    int mcount;           /* Ms created */
    int maxmcount;
    struct m *allm;

    /* idle Ps */
    struct p *pidle;
    int32_t extra_procs;
    bool sysmon_started;

    /* global run queue (under lock): a ring of G pointers, grown by
     * doubling and never shrunk (runq.c) */
    struct g **runq;
    uint32_t runqcap; /* a power of two, or 0 before the first put */
    uint32_t runqhead, runqtail; /* free-running; tail - head Gs queued */
    _Atomic int32_t runqsize; /* read without the lock as a hint */

    /* timers: the idle M that sleeps until the next timer, if any */
    struct m *timer_sleeper;
    int64_t timer_sleep_until;

    /* Read by every wakep (npidle, nmspinning) and every schedule(); written
     * when Ps go idle or Ms start or stop spinning. */
    _Alignas(SCHED_CACHE_LINE) _Atomic int32_t npidle;
    _Atomic int32_t nmspinning;
    _Atomic int32_t gomaxprocs;
    /* Live Ps: gomaxprocs plus the extra Ps sysmon lent while some Ps are
     * stuck in one goroutine (sysmon.c). Everything that iterates over Ps
     * uses nprocs. extra_procs is guarded by sched.lock. */
    _Atomic int32_t nprocs;
    /* High-water mark of nprocs. A P at or above nprocs may still be running
     * (it retires only at its M's next schedule(), which a goroutine stuck
     * in a blocking call may not reach for a long time) and may hold Gs that
     * goroutine readied. Every scan for work - stealing, the spinning M's
     * re-check, sysmon, the idle check - covers [0, maxprocs_seen), so such a
     * G is never invisible. Only grows (written under sched.lock). */
    _Atomic int32_t maxprocs_seen;
    /* idle Ms with pinned work waiting for a P (pin.c; under lock) */
    _Atomic int32_t npinwait;
    _Atomic int32_t running; /* runtime started and not stopped */
    _Atomic int32_t stopping;

    /* global free Gs (under gflock) */
    _Alignas(SCHED_CACHE_LINE) struct rtlock gflock;
    struct g *gfree;
    int ngfree;

    /* all goroutines, for dumps (under allglock); see allg_add */
    _Alignas(SCHED_CACHE_LINE) struct rtlock allglock;
    struct g *allg;

    /* counters, written by every spawn and exit */
    _Alignas(SCHED_CACHE_LINE) _Atomic uint64_t goidgen;
    _Atomic int64_t ngoroutines;
    _Atomic uint64_t spawns;
    _Atomic uint64_t mparks;
};

extern struct schedt sched;
extern struct p allp[MAX_PROCS];

/* runq.c */
bool runq_empty(struct p *pp);
void runq_put(struct p *pp, struct g *gp, bool next);
struct g *runq_get(struct p *pp, bool *inherit_time);
struct g *runq_get_fair(struct p *pp);
struct g *runq_steal(struct p *pp, struct p *victim, bool steal_runnext);
uint32_t runq_len(struct p *pp);
/* global queue; sched.lock held */
void globrunq_put(struct g *gp);
void globrunq_put_batch(struct g *head, int32_t n);
struct g *globrunq_get(struct p *pp, int32_t max);

/* stack.c */
/* Allocate a goroutine: stack of `size` bytes with the struct g at its top. */
struct g *stack_alloc_g(size_t size);
void stack_free_g(struct g *gp);
size_t stack_default_size(void);
size_t stack_set_default_size(size_t size);
/* Abort with a clear message if gp overflowed its stack (canary check). */
void stack_check(struct g *gp);
void stack_stats(uint64_t *mapped, uint64_t *guarded);
size_t stack_size_of(struct g *gp);
uintptr_t stack_guard_page(struct g *gp);

/* proc.c, for dump.c: take a dead G off sched.allg; allglock held */
void allg_unlink_locked(struct g *gp);

/* proc.c, for sysmon.c */
void wakep(void);
void procresize_locked(int32_t n);
/* proc.c, for pin.c: idle P and M lists, sched.lock held */
struct p *pidleget(void);
void mput(struct m *mp);
bool mremove(struct m *mp);

/* pin.c: Gs pinned to one M (free-threaded CPython, DESIGN.md rule 11) */
/* Queue the runnable pinned gp on its M and make sure that M runs it. */
void pin_ready(struct g *gp);
/* gosched of a pinned G: back onto its own M's queue. */
void pin_requeue(struct m *mp, struct g *gp);
/* Next pinned G of mp (the caller is mp), or NULL. */
struct g *pin_get(struct m *mp);
/* stopm, sched.lock held, before mput: true if mp has pinned work and got
 * an idle P in mp->nextp (do not sleep); else it may be marked a waiter. */
bool pin_stopm_locked(struct m *mp);
/* sched.lock held: give pp, which the caller owns, to an idle M waiting
 * with pinned work; false if there is none. */
bool pin_give_p_locked(struct p *pp);
/* sched.lock held: take an idle M that waits with pinned work off the idle
 * list, or NULL. */
struct m *pin_mget_locked(void);
/* A running M hands its P to a waiting M; true if it did (mp->p is NULL). */
bool pin_handoff(struct m *mp);
/* sched.lock held: mp leaves the idle list. */
void pin_unmark_locked(struct m *mp);
/* Is a pinned G queued anywhere? Takes sched.lock. */
bool pin_any_queued(void);
/* goro_runtime_idle without the timers: nothing runs, spins or is queued.
 * Pending timers have their own sleeping M (sched_timers_changed). */
bool sched_idle_but_timers(void);
void pin_after_fork_child(struct m *self);

/* sysmon.c */
void sysmon_start(void);

/* signal.c */
/* Block asynchronous signals in the calling thread (before pthread_create, so
 * runtime threads never run Python's signal handlers); faults stay open. */
void signal_block_async(sigset_t *old);
void signal_install_overflow_handler(void);
void signal_m_altstack(struct m *mp);

#endif
