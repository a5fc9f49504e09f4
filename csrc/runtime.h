/* The runtime's core structures and the interfaces between its parts
 * (pygoro's runtime2.go). Internal: never included by users; the public
 * surface is include/pygoro.h.
 *
 * Vocabulary, as in Go:
 *   G      a goroutine: a stack, saved registers, a status, a wait reason.
 *          A plain OS thread that blocks in the runtime (the main thread, a
 *          threading.Thread) gets a "thread G": a G without a stack of its
 *          own whose park sleeps on a futex instead of switching away.
 *   M      an OS worker thread. Runs its scheduler loop on its own stack (g0)
 *          and switches to goroutines' stacks to run them.
 *   P      a logical processor: the right to run goroutines, and a local run
 *          queue. gomaxprocs Ps; an M needs a P to run Go code.
 *   sudog  a G waiting in some wait queue (a channel's recvq, a semaphore).
 *          Lives on the waiter's own stack: our stacks never move.
 *
 * The contract every blocking primitive (chan, select, sema, timers) follows:
 *
 *   lock(&obj->lock);
 *   ... fast path ...
 *   enqueue a sudog for getg();
 *   go_park(unlock_fn, &obj->lock, WAIT_CHAN_RECEIVE);
 *   // resumed: whoever woke us has already filled in the sudog
 *
 * go_park runs unlock_fn only once the parking G's stack is no longer in use
 * (on g0 for a goroutine), so a waker that takes obj->lock and calls
 * go_ready(g) can never resume a G that is still running. go_ready may be
 * called with any runtime lock held: it never calls into Python and never
 * blocks.
 *
 * Naming: public API goro_*, internal functions keep Go's names in C style
 * (runq_put, go_park, find_runnable). Internal symbols are hidden from the
 * shared object's dynamic symbol table by -fvisibility=hidden.
 */
#ifndef PYGORO_RUNTIME_H
#define PYGORO_RUNTIME_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/context.h"
#include "include/pygoro.h"

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* ------------------------------------------------------------------------ */
/* Low-level locks and sleeping: sched/lock.c, sched/note.c, sched/futex_*.c */

/* A runtime lock: a futex word with a short spin (Go's runtime.mutex). Held
 * only for short critical sections; never held across a park except by the
 * park's own unlock function. */
struct rtlock {
    _Atomic uint32_t key; /* 0 unlocked, 1 locked, 2 locked with sleepers */
};
#define RTLOCK_INIT {0}
void rtlock_lock(struct rtlock *l);
void rtlock_unlock(struct rtlock *l);
bool rtlock_trylock(struct rtlock *l);

/* A one-shot sleep/wakeup (Go's note): one sleeper, one waker.
 * note_sleep returns once note_wakeup has been called (possibly before the
 * sleep started). note_clear re-arms it. */
struct note {
    _Atomic uint32_t key;
};
void note_clear(struct note *n);
void note_wakeup(struct note *n);
void note_sleep(struct note *n);
/* Returns true if woken, false on timeout (ns <= 0 means poll).
 * With `interruptible`, also returns false when a signal interrupts the sleep
 * (EINTR); *interrupted is then set. */
bool note_timedsleep(struct note *n, int64_t ns, bool interruptible, bool *interrupted);

int64_t nanotime(void); /* ns, time.monotonic()'s clock (sched/platform.h) */
uint32_t cheaprand(void); /* per-M (or per-thread) xorshift; not for crypto */
uint32_t cheaprandn(uint32_t n); /* uniform-ish in [0, n) */

/* futex wrappers: sched/futex_linux.c (futex(2)), sched/futex_darwin.c
 * (__ulock_wait/__ulock_wake); the contract is at the top of either. */
void futex_wait(_Atomic uint32_t *addr, uint32_t val);
/* 0 woken or value changed, -1 timeout, -2 EINTR */
int futex_timedwait(_Atomic uint32_t *addr, uint32_t val, int64_t ns);
void futex_wake(_Atomic uint32_t *addr, int n);

/* ------------------------------------------------------------------------ */
/* Goroutines                                                                 */

enum gstatus {
    G_IDLE = 0,     /* just allocated, not yet initialised */
    G_RUNNABLE,     /* on a run queue, not running */
    G_RUNNING,      /* running on an M */
    G_WAITING,      /* parked (go_park); wait_reason says why */
    G_DEAD,         /* finished; on a free list, stack possibly reused */
};

/* Why a G is parked; shown by goro_stack_dump / pygoro.runtime.stack(). */
enum wait_reason {
    WAIT_NONE = 0,
    WAIT_CHAN_RECEIVE,
    WAIT_CHAN_SEND,
    WAIT_CHAN_RECEIVE_NIL, /* receive on a nil channel: forever */
    WAIT_CHAN_SEND_NIL,
    WAIT_SELECT,
    WAIT_SELECT_NO_CASES, /* select {} */
    WAIT_SLEEP,
    WAIT_MUTEX,
    WAIT_RWMUTEX_RLOCK,
    WAIT_RWMUTEX_LOCK,
    WAIT_WAITGROUP,
    WAIT_COND,
    WAIT_ONCE,
    WAIT_SEMACQUIRE,
    WAIT_JOIN, /* goro_join */
    WAIT_PREEMPTED,
    WAIT_REASON_COUNT,
};
extern const char *const wait_reason_strings[WAIT_REASON_COUNT];

struct g;
struct m;
struct p;
struct sudog;
struct hchan;

/* A goroutine stack: [lo, hi). Allocated by sched/stack.c. */
struct stack {
    uintptr_t lo;
    uintptr_t hi;
};

typedef bool (*park_unlock_fn)(struct g *gp, void *arg);

struct g {
    /* First cache line (a goroutine's G sits 64-byte aligned at the top of
     * its stack, sched/stack.c): everything a waker (go_ready, a channel
     * close) and the scheduler touch to wake and resume it. Waking 1000
     * goroutines at once (a context cancel) misses in cache on each G;
     * spread over three lines, that was three misses each. */
    _Atomic uint32_t status; /* enum gstatus */
    bool is_thread;          /* thread G: a plain OS thread blocked in the runtime */
    /* Free-threaded CPython ties a thread state to the OS thread that created
     * it: a pinned G only ever runs on pinned_m (DESIGN.md rule 11). */
    bool pinned;
    /* the bridge's detach hook ran when this G last switched out, so its
     * attach hook must run when it is switched back in */
    bool detached;
    uint8_t wait_reason;     /* enum wait_reason */
    _Atomic uint32_t select_done; /* select: 0 -> 1 by the one waker that wins */
    struct g *schedlink;     /* global run queue, free lists */
    void *param;             /* set by the waker, e.g. the winning sudog of a select */
    struct m *m;             /* M running this G, or NULL */
    /* Set by the Python bridge: a G that runs Python carries its interpreter
     * state here. The runtime never looks inside; it calls hooks (below). */
    void *py;
    struct m *pinned_m;
    /* saved registers while not running: the stack pointer, with the
     * hand-written switches (a ucontext_t runs on past this line) */
    struct goro_context ctx;

    _Atomic uint32_t thread_wake; /* thread G's futex word: 0 parked, 1 readied */
    struct sudog *waiting;   /* select: the sudogs of this G, linked by waitlink */
    struct stack stack;      /* usable [lo, hi); zero for a thread G */
    size_t stack_size;       /* the whole allocation, struct g included */
    bool stack_guarded;      /* a PROT_NONE page lies below stack.lo */
    const uint64_t *stack_canary; /* unguarded stacks: see sched/stack.c */
    uint64_t goid;

    /* entry of a goroutine created by go_spawn */
    goro_fn entry;
    void *arg;

    /* parking; see go_park */
    park_unlock_fn park_unlock;
    void *park_arg;
    int64_t wait_since;      /* nanotime() when parked, for stack dumps */

    /* thread G */
    bool thread_interruptible;    /* park may return early on a signal (main thread) */
    bool thread_interrupted;      /* set by go_park when a signal cut the sleep */

    /* where it came from, for stack dumps */
    const char *label;       /* optional name (goro_go_named, "time.AfterFunc"); Python
                                goroutines have none: dumps show their function */
    uint64_t parent_goid;    /* the goroutine that spawned it; 0: a plain thread */

    /* all-G list, for dumps and counting (guarded by sched.allglock) */
    struct g *alllink_next;
    struct g *alllink_prev;
    bool on_allg;            /* linked (alive, or dead and cached for reuse) */

    /* sanitizer fiber handle (TSAN), opaque */
    void *tsan_fiber;
};
#if !defined(PYGORO_CONTEXT_UCONTEXT)
_Static_assert(offsetof(struct g, ctx) + sizeof(struct goro_context) <= 64,
               "struct g: the wake-path fields must fit in its first cache line");
#endif

/* A goroutine can resume on another thread after any park, so code must not
 * keep a TLS address across one. Functions that touch thread-local state for
 * code that may have parked are NOT_CACHEABLE: opaque to the optimiser (no
 * inlining, no inter-procedural "pure" inference), so every call re-reads the
 * current thread's TLS. */
#if defined(__clang__)
#define NOT_CACHEABLE __attribute__((noinline, optnone))
#else
#define NOT_CACHEABLE __attribute__((noinline, noipa))
#endif

/* Current G: the running goroutine, or this plain thread's thread G (created on
 * first use). Never NULL. Not cacheable across a park: the goroutine may be on
 * another thread afterwards, so getg() reads thread-local state through a
 * noinline accessor every time. */
struct g *getg(void);
/* The M this code runs on, or NULL on a plain thread. */
struct m *getm(void);
/* True if the caller is a goroutine (not a plain thread). */
bool in_goroutine(void);
/* No goroutine running or runnable: every one is parked (on a channel, a
 * lock, a timer...). Timers may be pending (sched/proc.c). */
bool sched_idle_but_timers(void);
/* Has the calling M goroutines queued to run next (its P's queue, or the
 * global queue)? A hint for the Python bridge (proc.c). */
bool m_has_queued_work(void);
/* The calling M starts / stops waiting for the GIL with a Python goroutine
 * switched in (the bridge's attach): sysmon then does not count its P as
 * stuck and lends no P for its queue, whose M would wait for the GIL too. */
void m_waiting_for_gil(bool waiting);

/* Park the current G. unlockf(gp, arg) runs once gp's stack is no longer in
 * use (goroutine) or right before the thread sleeps (thread G); if it returns
 * false the park is cancelled and go_park returns at once. Otherwise go_park
 * returns after somebody calls go_ready(gp).
 * A thread G that is interruptible (main thread) may return early, with
 * gp->thread_interrupted set: the caller must then withdraw its wait under its
 * own lock, and if it cannot (a waker already committed to it), wait again with
 * go_park_commit_wait(). */
void go_park(park_unlock_fn unlockf, void *arg, enum wait_reason reason);
/* For an interrupted thread G that lost the race to withdraw: sleep,
 * uninterruptibly, until the waker's go_ready arrives. */
void go_park_commit_wait(struct g *gp);
/* Make gp runnable. From a goroutine: into the current P's runnext (the
 * previous runnext is kicked to the tail of the local queue). From a plain
 * thread: into the global queue, waking an idle M. For a thread G: wake the
 * thread. Never blocks, never calls Python; may be called with locks held. */
void go_ready(struct g *gp);
/* go_ready every G of glist (linked by schedlink, NULL-terminated), as one
 * batch: from a plain thread, one lock of the global queue and one wakep
 * for all of them instead of one each. */
void go_ready_list(struct g *glist);
/* Put the current goroutine at the back of the global run queue and run
 * something else. No-op on a plain thread. */
void go_sched(void);

/* Create a goroutine running fn(arg). label: optional static string for dumps.
 * Returns the G (for joins; do not touch it after it may have exited unless a
 * join holds it). py_hook_state: optional bridge state stored in g->py. */
struct g *go_spawn(goro_fn fn, void *arg, const char *label, void *py);
/* Same with an explicit stack size in bytes (0: the default). */
struct g *go_spawn_sized(goro_fn fn, void *arg, const char *label, void *py, size_t stack_size);
uint64_t goid_of(struct g *gp);
/* Pin the calling goroutine to its current M for the rest of its life
 * (sched/pin.c); no-op on a plain thread. The Python bridge calls it on
 * free-threaded builds before a goroutine first runs Python. */
void go_pin_current(void);
/* Is the calling goroutine pinned? */
bool go_is_pinned(void);

/* ------------------------------------------------------------------------ */
/* Wait queues (Go's sudog/waitq): chan/, sync/sema.c                         */

struct sudog {
    /* What a channel operation's waker reads and writes comes first, in one
     * cache line when the sudog is 64-byte aligned (the channel paths'
     * on-stack sudogs are). */
    struct g *g;
    struct sudog *next;
    struct sudog *prev;
    void *elem;          /* data element; points into the waiter's stack */
    struct hchan *c;     /* channel */
    uint32_t ticket;     /* sema: handoff; select: case index */
    bool is_select;      /* g participates in a select: CAS g->select_done */
    bool success;        /* chan: true if woken by a value, false by close */
    struct sudog *waitlink;  /* g->waiting list, or sema wait list */
    int64_t acquiretime;
    int64_t releasetime;
    struct sudog *parent;    /* sema tree */
    struct sudog *waittail;  /* sema wait list tail */
    uintptr_t addr;      /* sema: the address waited on */
};

struct waitq {
    struct sudog *first;
    struct sudog *last;
};
void waitq_enqueue(struct waitq *q, struct sudog *sg);
/* Dequeue the first sudog that can be woken: skips select sudogs whose G has
 * already been claimed by another case (select_done CAS fails). */
struct sudog *waitq_dequeue(struct waitq *q);
void waitq_remove(struct waitq *q, struct sudog *sg);

/* ------------------------------------------------------------------------ */
/* Hooks the embedding layer (the Python bridge) installs. All optional.      */

struct rt_hooks {
    /* A G with g->py set is about to stop running on this M (park, gosched,
     * exit); called on the G's stack with no runtime lock held. The bridge
     * detaches the Python thread state (releases the GIL). */
    void (*g_detach)(struct g *gp);
    /* A G with g->py set has just been switched in; on the G's stack, no
     * runtime lock held. The bridge re-attaches its thread state. */
    void (*g_attach)(struct g *gp);
    /* A thread G is about to sleep in go_park / has woken up. The bridge
     * releases / re-takes the GIL if this thread holds it. */
    void (*thread_block_begin)(struct g *gp);
    void (*thread_block_end)(struct g *gp);
    /* A goroutine with g->py set finished: free what py points to. Called on
     * the G's stack while attached, before the final switch. */
    void (*g_exit)(struct g *gp);
    /* This M has no work and is about to sleep (stopm), on g0 with no
     * runtime lock held. The bridge lets Ms that wait for it to leave the
     * GIL (goroutine.c's gil_wait_for_runner) go ahead. */
    void (*m_idle)(void);
    /* An M thread starts / stops (e.g. to block signals, name the thread). */
    void (*m_start)(struct m *mp);
    /* An interruptible thread's wait woke for its periodic check: has a
     * signal arrived whose handler has not run yet? A signal that lands while
     * the thread is between two futex waits interrupts no system call, so
     * EINTR alone would miss it. No GIL, no runtime lock held. */
    bool (*signal_pending)(void);
};
extern struct rt_hooks rt_hooks;

/* ------------------------------------------------------------------------ */
/* Timers: sched/timer.c (heap), sched/sleep.c, sched/time_public.c         */

/* A runtime timer. At `when` (nanotime), f(arg, seq, delay) runs on some M's
 * g0 or on sysmon with no runtime lock held; delay is how late it runs, seq
 * the number timer_reset gave this arming. f must not block, must not call
 * Python, and must not stop or reset its own timer; typically it readies a
 * G or does a non-blocking channel send. period > 0 makes it repeat. */
struct timer {
    int64_t when;
    int64_t period;
    void (*f)(void *arg, uintptr_t seq, int64_t delay);
    void *arg;
    uintptr_t seq;
    int32_t heap_index; /* -1 when not in a heap; owned by timer.c */
    _Atomic uint32_t state; /* owned by timer.c */
};
void timer_init(struct timer *t, void (*f)(void *, uintptr_t, int64_t), void *arg);
/* Start (or restart) t to fire at `when`, repeating every period ns if > 0.
 * Returns true if it was pending before. */
bool timer_reset(struct timer *t, int64_t when, int64_t period);
/* Stop t. Returns true if it was pending (so it will not fire). After it
 * returns, t's function is not running and will not run until reset.
 * Both wait for a running f to return: never call them on a timer that may
 * be running while holding a lock its f takes. */
bool timer_stop(struct timer *t);
/* Run due timers; returns the time of the next pending timer, or 0 if none. */
int64_t timers_run(int64_t now);
/* Earliest pending `when`, 0 if none (one atomic load). */
int64_t timers_next(void);
/* No timer pending and none being run right now (its effect still to
 * come): what a deadlock check needs. */
bool timers_quiet(void);
/* fork: the timer heap's lock is held across fork (before / parent), and
 * the child starts with no timers (their owners did not survive). */
void timers_before_fork(void);
void timers_after_fork_parent(void);
void timers_after_fork_child(void);
/* Called by timer.c when the earliest pending timer moved earlier: the
 * scheduler wakes an idle M sleeping past `when` (sched/proc.c). */
void sched_timers_changed(int64_t when);
/* Park the current G (or thread) for ns nanoseconds. A thread G on the main
 * thread may return early on a signal; returns false then. */
bool go_sleep(int64_t ns);

/* ------------------------------------------------------------------------ */
/* Scheduler services for sync/ (sched/proc.c)                                */

/* Go's sync_runtime_canSpin: may a Mutex waiter spin for iteration i? Only when
 * spinning can help: a multi-core machine, more than one P, at least one other
 * P running, and the local run queue empty; at most 4 iterations. */
bool sync_runtime_can_spin(int i);
/* Spin ~30 pause instructions (Go's procyield(active_spin_cnt)). */
void sync_runtime_do_spin(void);
/* Number of Ps (gomaxprocs) right now. */
int sched_gomaxprocs(void);
/* The id of the P the calling goroutine runs on, in [0, sched_max_procs()),
 * or -1 on a plain thread (sched/procid.c). pygoro has no preemption, so
 * the answer stays true until the goroutine parks or yields: per-P caches
 * (sync/pool.c) use it the way Go's sync.Pool uses procPin. */
int sched_current_pid(void);
/* Upper bound on P ids for the life of the process. */
int sched_max_procs(void);

/* ------------------------------------------------------------------------ */
/* Misc                                                                       */

/* Is the calling plain thread interruptible by signals (goro_thread_set_
 * interruptible)? Primitives that can withdraw a wait copy this into
 * gp->thread_interruptible before go_park; the rest leave it false. */
bool thread_is_interruptible(void);

/* ------------------------------------------------------------------------ */
/* Goroutine dumps: sched/dump.c                                              */

/* What a dump shows of one goroutine, copied under sched.allglock. */
struct g_info {
    uint64_t goid;
    uint64_t parent_goid;
    uint32_t status;        /* enum gstatus */
    uint8_t wait_reason;    /* enum wait_reason, while G_WAITING */
    int64_t waited_ns;      /* how long it has been parked; -1 if not parked */
    const char *label;
    goro_fn entry;
    void *arg;              /* entry's argument (the bridge's per-goroutine state) */
    void *py;               /* g->py at the time of the copy */
    bool current;           /* the goroutine that took the snapshot */
};
/* Every live goroutine, current first, then by goid: a malloc'd array of *n
 * entries (free it), or NULL when out of memory. Takes sched.allglock: call
 * with no runtime lock held. */
struct g_info *dump_snapshot(size_t *n);
/* "running", "runnable", or the wait reason of a parked goroutine. */
const char *dump_state_string(const struct g_info *gi);
/* Name a code address for humans: "symbol" or "symbol+0xoff" if the dynamic
 * linker knows the symbol, else "object.so+0xoff", else "0xaddr". Returns buf. */
char *dump_symbolize(const void *pc, char *buf, size_t size);

/* Report an unrecoverable runtime error and abort. */
_Noreturn void rt_throw(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
