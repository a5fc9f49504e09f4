/* pygoro.h: the public C API of the pygoro runtime.
 *
 * Go's concurrency model for C: goroutines scheduled M:N onto worker threads,
 * typed channels and select, timers, and the sync primitives. Every blocking
 * call works from a goroutine (it parks the goroutine) and from a plain OS
 * thread (it sleeps on a futex).
 *
 * Prefix: goro_ for functions, goro_..._t for types. Durations are int64
 * nanoseconds here (the Python layer speaks float seconds).
 *
 * Python extensions reach the same functions through the PyCapsule
 * "pygoro._core._C_API" (a struct goro_capi, see the end of this file).
 */
#ifndef PYGORO_H
#define PYGORO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GORO_EXTERN __attribute__((visibility("default")))
#else
#define GORO_EXTERN
#endif

/* Results of blocking and fallible operations. */
enum goro_status {
    GORO_OK = 0,
    GORO_CLOSED = 1,      /* send on / close of a closed channel (Go panics) */
    GORO_WOULDBLOCK = 2,  /* a try_ operation found nothing ready */
    GORO_TIMEOUT = 3,
    GORO_INTERRUPTED = 4, /* a signal cut a plain thread's wait short; the
                             operation did not happen and may be retried */
    GORO_EINVAL = 5,
    GORO_ENOMEM = 6,
    GORO_EMISUSE = 7,     /* unlock of an unlocked mutex, negative WaitGroup
                             counter, WaitGroup reused before Wait returned */
    GORO_CANCELED = 8,    /* a wait's cancel channel became ready first; the
                             operation did not happen */
};

#define GORO_FOREVER ((int64_t)-1) /* timeout: block until done */

typedef void (*goro_fn)(void *arg);

/* ---- runtime ----------------------------------------------------------- */

/* Start the scheduler (idempotent; goro_go starts it on first use).
 * gomaxprocs <= 0 means the number of CPUs (or $PYGORO_MAXPROCS). */
GORO_EXTERN int goro_runtime_start(int gomaxprocs);
/* Stop the worker threads. Goroutines still parked or runnable are abandoned
 * (their stacks are not freed), as when a Go program's main returns.
 * After this, goro_go fails with GORO_EINVAL until goro_runtime_start. */
GORO_EXTERN void goro_runtime_stop(void);
/* fork(2) support: call before fork in the forking thread, then the parent
 * or child variant after it (pthread_atfork order). The child gets a fresh
 * scheduler; only the forking goroutine (if any) survives into it. */
GORO_EXTERN void goro_runtime_before_fork(void);
GORO_EXTERN void goro_runtime_after_fork_parent(void);
GORO_EXTERN void goro_runtime_after_fork_child(void);
/* Start a goroutine running fn(arg). */
GORO_EXTERN int goro_go(goro_fn fn, void *arg);
/* Same, with a label shown in stack dumps (a static string). */
GORO_EXTERN int goro_go_named(goro_fn fn, void *arg, const char *label);
/* Yield the processor (runtime.Gosched). On a plain thread: sched_yield. */
GORO_EXTERN void goro_gosched(void);
/* Set GOMAXPROCS when n > 0; return the previous value. */
GORO_EXTERN int goro_gomaxprocs(int n);
GORO_EXTERN int goro_num_cpu(void);
/* Live goroutines (created and not yet exited). */
GORO_EXTERN int64_t goro_num_goroutine(void);
/* The current goroutine's id, or 0 on a plain thread. */
GORO_EXTERN uint64_t goro_goid(void);
/* Stack size for goroutines created from now on (bytes, rounded up to pages;
 * min 16 KiB). Returns the previous size. 0 only queries. */
GORO_EXTERN size_t goro_set_stack_size(size_t bytes);
/* Sleep ns nanoseconds (parks a goroutine; a plain thread sleeps).
 * GORO_INTERRUPTED if a signal interrupted the main thread's sleep. */
GORO_EXTERN int goro_sleep(int64_t ns);
/* Mark the calling plain thread as interruptible by signals (Python's main
 * thread): its channel, select and sleep waits then return GORO_INTERRUPTED
 * when a signal arrives, having withdrawn cleanly. */
GORO_EXTERN void goro_thread_set_interruptible(bool on);

/* True if nothing in the runtime can make progress on its own: every P idle,
 * no queued goroutine, no pending timer. A thread blocked in the runtime can
 * then only be woken by another OS thread (Go's checkdead; the Python layer
 * raises DeadlockError when no other Python thread is alive either).
 * An interruptible thread's wait returns GORO_INTERRUPTED, withdrawn, when it
 * sees this state during its wait (checked every 100 ms). */
GORO_EXTERN bool goro_runtime_idle(void);

/* Scheduler counters, for tests and benchmarks. */
typedef struct goro_stats {
    int gomaxprocs;
    int num_m;            /* worker threads created */
    int64_t num_goroutine;
    uint64_t steals;      /* goroutines taken by work stealing */
    uint64_t global_gets; /* goroutines taken from the global queue */
    uint64_t spawns;
    uint64_t parks;       /* futex sleeps of idle Ms */
    uint64_t stacks_mapped;   /* stacks ever mmap'd */
    uint64_t stacks_guarded;  /* of which with a guard page */
    int npidle;           /* idle Ps now */
    int nmspinning;       /* spinning Ms now */
    int nmidle;           /* parked Ms now */
} goro_stats_t;
GORO_EXTERN void goro_get_stats(goro_stats_t *out);
/* Per-P count of goroutines that P ran which were stolen from another P. */
GORO_EXTERN uint64_t goro_p_steals(int p);

/* Goroutine dump (Go's SIGQUIT traceback): one block per live goroutine,
 * the caller's first, then by id:
 *     goroutine 7 [chan receive, 2.0 seconds]:
 *         worker(0x55d0c0a0)            entry function (symbol if exported) and arg
 *         label: ...                    if it was started with goro_go_named
 *     created in goroutine 1            or "created by a thread"
 * States: running, runnable, or the wait reason of a parked goroutine
 * ("chan receive", "select", "sleep", "sync.Mutex.Lock", ...). A snapshot
 * taken without stopping anything: each goroutine's line is one it really
 * had, not necessarily all at the same instant. Python goroutines show as
 * such; pygoro.runtime.stack() adds their Python frames. Safe to call from
 * any goroutine or thread, not from a signal handler. */
GORO_EXTERN void goro_dump(FILE *f);
/* The same text into buf (always NUL-terminated when size > 0, truncated to
 * fit); returns the dump's full length, as snprintf does. */
GORO_EXTERN size_t goro_dump_buf(char *buf, size_t size);

/* ---- channels ---------------------------------------------------------- */

typedef struct hchan goro_chan_t;

/* A channel of elements of elemsize bytes (0 allowed: chan struct{}),
 * buffered with capacity cap (0: unbuffered). NULL on bad size / no memory. */
GORO_EXTERN goro_chan_t *goro_chan_new(size_t elemsize, size_t cap);
/* Free a channel nobody uses any more (no waiters). */
GORO_EXTERN void goro_chan_free(goro_chan_t *c);
/* GORO_OK, GORO_CLOSED, or GORO_INTERRUPTED (interruptible thread only). */
GORO_EXTERN int goro_chan_send(goro_chan_t *c, const void *elem);
/* GORO_OK with *ok true and elem filled, or *ok false once the channel is
 * closed and drained (elem zeroed); or GORO_INTERRUPTED. ok may be NULL. */
GORO_EXTERN int goro_chan_recv(goro_chan_t *c, void *elem, bool *ok);
/* Non-blocking: GORO_OK, GORO_WOULDBLOCK, GORO_CLOSED (send). */
GORO_EXTERN int goro_chan_try_send(goro_chan_t *c, const void *elem);
GORO_EXTERN int goro_chan_try_recv(goro_chan_t *c, void *elem, bool *ok);
/* GORO_OK or GORO_CLOSED (already closed). */
GORO_EXTERN int goro_chan_close(goro_chan_t *c);
GORO_EXTERN size_t goro_chan_len(goro_chan_t *c);
GORO_EXTERN size_t goro_chan_cap(goro_chan_t *c);
GORO_EXTERN size_t goro_chan_elemsize(goro_chan_t *c);
GORO_EXTERN bool goro_chan_closed(goro_chan_t *c);

enum goro_select_dir { GORO_SELECT_RECV = 1, GORO_SELECT_SEND = 2 };
typedef struct goro_select_case {
    goro_chan_t *c;   /* NULL: the case is disabled (never chosen) */
    int dir;          /* enum goro_select_dir */
    void *elem;       /* send: value to send; recv: where to store (may be NULL) */
    bool recv_ok;     /* out: for the chosen recv case, false if closed */
} goro_select_case;
#define GORO_SELECT_NONE (-1)        /* default taken, or timeout expired */
#define GORO_SELECT_INTERRUPTED (-2) /* signal on an interruptible thread */
#define GORO_SELECT_CLOSED_BASE (-1000) /* -1000 - i: case i sent on a closed channel */
/* Wait for one case to proceed; cases chosen uniformly at random among ready
 * ones. timeout_ns 0: non-blocking (Go's default:); GORO_FOREVER: block.
 * Returns the chosen index, GORO_SELECT_NONE, GORO_SELECT_INTERRUPTED, or
 * GORO_SELECT_CLOSED_BASE - i when case i is a send on a closed channel. */
GORO_EXTERN int goro_select(goro_select_case *cases, int ncases, int64_t timeout_ns);

/* ---- timers ------------------------------------------------------------ */

/* A Timer (period 0) or Ticker (period > 0; NULL if negative): fires after
 * ns, then every period_ns. Its channel (capacity 1) delivers the nanotime
 * (goro_nanotime, int64) at which it fired; a Ticker whose receiver is
 * behind drops ticks. Go 1.23 semantics: after stop or reset returns, no
 * value from before is received. Stop, reset and free may be called from
 * any goroutine or thread, concurrently. */
typedef struct goro_timer goro_timer_t;
GORO_EXTERN goro_timer_t *goro_timer_new(int64_t ns, int64_t period_ns);
/* Timer whose expiry runs fn(arg) in a new goroutine instead of sending. */
GORO_EXTERN goro_timer_t *goro_after_func(int64_t ns, goro_fn fn, void *arg);
GORO_EXTERN goro_chan_t *goro_timer_chan(goro_timer_t *t); /* NULL for after_func */
/* true if the call stopped a pending timer (for a Timer, a value that fired
 * but was never received counts as pending: it is discarded) */
GORO_EXTERN bool goro_timer_stop(goro_timer_t *t);
/* Restart to fire after ns, then every period_ns (0: once; ignored for
 * after_func). true if it had been pending, as for stop. */
GORO_EXTERN bool goro_timer_reset(goro_timer_t *t, int64_t ns, int64_t period_ns);
/* Stop and free, with the channel: nobody may still be using either. */
GORO_EXTERN void goro_timer_free(goro_timer_t *t);
/* The monotonic clock in ns: CLOCK_MONOTONIC on Linux, CLOCK_UPTIME_RAW
 * (mach_absolute_time) on macOS; in both, the clock of Python's
 * time.monotonic(). */
GORO_EXTERN int64_t goro_nanotime(void);

/* ---- sync -------------------------------------------------------------- */

/* Go's sync.Mutex: normal mode with barging and bounded spinning, starvation
 * mode after a waiter waited more than 1 ms. Zero-initialised = unlocked. */
typedef struct goro_mutex {
    _Atomic int32_t state;
    _Atomic uint32_t sema;
} goro_mutex_t;
#define GORO_MUTEX_INIT {0, 0}
GORO_EXTERN void goro_mutex_lock(goro_mutex_t *m);
GORO_EXTERN bool goro_mutex_trylock(goro_mutex_t *m);
/* GORO_OK, or GORO_EMISUSE if it was not locked (state unchanged). */
GORO_EXTERN int goro_mutex_unlock(goro_mutex_t *m);

/* Go's sync.RWMutex, writer-preferring: once a writer waits, new readers
 * wait behind it. Zero-initialised = unlocked. */
typedef struct goro_rwmutex {
    goro_mutex_t w;              /* held by the writer (and pending writers) */
    _Atomic uint32_t writer_sem; /* a writer waits here for departing readers */
    _Atomic uint32_t reader_sem; /* readers wait here for the writer */
    /* High 32 bits: Go's readerCount (signed; negative while a writer is
     * pending or holds the lock). Low 32 bits: Go's readerWait, the readers
     * a pending writer still waits for. One word, so that a misplaced
     * runlock is refused exactly, with the state intact. */
    _Atomic uint64_t readers;
} goro_rwmutex_t;
GORO_EXTERN void goro_rwmutex_rlock(goro_rwmutex_t *rw);
GORO_EXTERN bool goro_rwmutex_tryrlock(goro_rwmutex_t *rw);
/* GORO_OK, or GORO_EMISUSE if no read lock was held (state unchanged). */
GORO_EXTERN int goro_rwmutex_runlock(goro_rwmutex_t *rw);
GORO_EXTERN void goro_rwmutex_lock(goro_rwmutex_t *rw);
GORO_EXTERN bool goro_rwmutex_trylock(goro_rwmutex_t *rw);
/* GORO_OK, or GORO_EMISUSE if it was not write-locked (state unchanged). */
GORO_EXTERN int goro_rwmutex_unlock(goro_rwmutex_t *rw);

/* Go's sync.WaitGroup. Zero-initialised = counter 0. */
typedef struct goro_waitgroup {
    _Atomic uint64_t state; /* high 32 bits: counter, low 32: waiters */
    _Atomic uint32_t sema;
} goro_waitgroup_t;
/* GORO_OK; GORO_EMISUSE if the counter would go negative, GORO_EINVAL if it
 * would pass INT32_MAX; either way the state is left intact. */
GORO_EXTERN int goro_waitgroup_add(goro_waitgroup_t *wg, int64_t delta);
GORO_EXTERN int goro_waitgroup_done(goro_waitgroup_t *wg);
/* GORO_OK once the counter is zero, or GORO_EMISUSE if the WaitGroup was
 * reused (an Add, e.g. racing this Wait) before this Wait returned. */
GORO_EXTERN int goro_waitgroup_wait(goro_waitgroup_t *wg);

/* Go's sync.Once. */
typedef struct goro_once {
    _Atomic uint32_t done;
    goro_mutex_t m;
} goro_once_t;
/* Runs fn(arg) once; every caller returns after it has finished. */
GORO_EXTERN void goro_once_do(goro_once_t *o, goro_fn fn, void *arg);

/* Go's sync.Cond over a goro_mutex_t. new: NULL if l is NULL or no memory.
 * free: nobody may be waiting (aborts if it can see a waiter). */
typedef struct goro_cond goro_cond_t;
GORO_EXTERN goro_cond_t *goro_cond_new(goro_mutex_t *l);
GORO_EXTERN void goro_cond_free(goro_cond_t *c);
/* Unlock l, wait for a signal, lock l again: GORO_OK. GORO_EMISUSE if l was
 * not locked (then nothing happened, and l stays unlocked). */
GORO_EXTERN int goro_cond_wait(goro_cond_t *c);
GORO_EXTERN void goro_cond_signal(goro_cond_t *c);
GORO_EXTERN void goro_cond_broadcast(goro_cond_t *c);

/* Go's runtime semaphore (semacquire/semrelease) over any 32-bit word. */
GORO_EXTERN void goro_semacquire(_Atomic uint32_t *addr);
/* handoff: pass the count directly to the first waiter (starvation mode). */
GORO_EXTERN void goro_semrelease(_Atomic uint32_t *addr, bool handoff);

/* ---- sync: Pool, weighted Semaphore, atomics --------------------------- */

/* Go's sync.Pool of void* objects: a cache of free objects that goroutines
 * share with little contention. Each P has a private slot and a shared
 * stack; get looks at its own P first, then steals from other Ps, then
 * calls new_fn (if any). A plain thread (no P) uses one shared fallback
 * stack. Nothing is ever dropped: an object put stays pooled until a get
 * returns it, goro_pool_drain releases it, or goro_pool_free does. (Go's
 * garbage collector empties pools; here the program decides when, so a
 * pool holds at most the objects put into it and not taken out.)
 * Any goroutine or thread may call get, put and drain concurrently. */
typedef struct goro_pool goro_pool_t;
/* new_fn(arg) makes an object when the pool is empty (NULL: get returns
 * NULL then). Returns NULL if out of memory. */
GORO_EXTERN goro_pool_t *goro_pool_new(void *(*new_fn)(void *arg), void *arg);
/* A pooled object (the caller now owns it), else new_fn's result, else NULL. */
GORO_EXTERN void *goro_pool_get(goro_pool_t *p);
/* Hand x to the pool: GORO_OK. NULL is ignored (GORO_OK, as Go's Put(nil)).
 * GORO_ENOMEM if the pool's storage could not grow: x was not taken and
 * still belongs to the caller. */
GORO_EXTERN int goro_pool_put(goro_pool_t *p, void *x);
/* Remove every object from the shared stacks (not the at most one per P
 * that sits in a P's private slot) and call release(x, arg) on each, with
 * no lock held (release may use the pool). Returns how many. Safe to call
 * while other goroutines use the pool. */
GORO_EXTERN size_t goro_pool_drain(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg);
/* Release every pooled object (release may be NULL) and free the pool.
 * Nobody may be using the pool. */
GORO_EXTERN void goro_pool_free(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg);

/* golang.org/x/sync/semaphore's Weighted: a semaphore of `size` units where
 * each acquire takes n of them. Waiters are served strictly in FIFO order:
 * a waiter that cannot be satisfied yet blocks everyone behind it, so a
 * large request is never starved by a stream of small ones. */
typedef struct goro_semaphore goro_semaphore_t;
/* NULL if size < 1 or out of memory. */
GORO_EXTERN goro_semaphore_t *goro_semaphore_new(int64_t size);
/* Nobody may be waiting (aborts if it can see a waiter). */
GORO_EXTERN void goro_semaphore_free(goro_semaphore_t *s);
/* Block until n units are acquired: GORO_OK. GORO_EINVAL at once if n < 1
 * or n > size (such a request could never be served). Not cancellable: a
 * plain thread sleeps until served, like Mutex.Lock. */
GORO_EXTERN int goro_semaphore_acquire(goro_semaphore_t *s, int64_t n);
/* Acquire n units without blocking: GORO_OK, GORO_WOULDBLOCK (also when
 * others are already waiting: no barging past the queue), GORO_EINVAL. */
GORO_EXTERN int goro_semaphore_try_acquire(goro_semaphore_t *s, int64_t n);
/* Acquire n units, or give up when a receive from `cancel` can proceed
 * (a closed channel, e.g. a context's done channel; a value received is
 * stored in cancel_elem, or discarded if cancel_elem is NULL), or after
 * timeout_ns (GORO_FOREVER: no timeout), or when a signal interrupts an
 * interruptible thread. cancel may be NULL. Returns GORO_OK (acquired),
 * GORO_CANCELED (cancel was ready first, including before the call),
 * GORO_TIMEOUT, GORO_INTERRUPTED, GORO_EINVAL (n < 1 or n > size) or
 * GORO_ENOMEM. Unless GORO_OK, no unit is held and the wait is withdrawn;
 * a withdrawn waiter at the head of the queue wakes the waiters behind it
 * that now fit (x/sync's fix for golang.org/issue/63615). */
GORO_EXTERN int goro_semaphore_acquire_select(goro_semaphore_t *s, int64_t n, goro_chan_t *cancel,
                                              void *cancel_elem, int64_t timeout_ns);
/* Give back n units: GORO_OK, and waiters that now fit are served in
 * order. GORO_EMISUSE if fewer than n units are held (x/sync panics:
 * "released more than held"), GORO_EINVAL if n < 1; state unchanged. */
GORO_EXTERN int goro_semaphore_release(goro_semaphore_t *s, int64_t n);
GORO_EXTERN int64_t goro_semaphore_size(goro_semaphore_t *s);
/* Units held now, and waiters queued now (a snapshot, for tests). */
GORO_EXTERN int64_t goro_semaphore_held(goro_semaphore_t *s);
GORO_EXTERN int64_t goro_semaphore_waiters(goro_semaphore_t *s);

/* Go's sync/atomic.Int64: every operation sequentially consistent, as
 * Go's are (all atomic operations of a program appear in one total order
 * that agrees with each goroutine's program order). Arithmetic wraps
 * around in two's complement (C11 defines this for atomic types).
 * Zero-initialised = 0. */
typedef struct goro_atomic_int64 {
    _Atomic int64_t v;
} goro_atomic_int64_t;
static inline int64_t goro_atomic_int64_load(goro_atomic_int64_t *a)
{
    return atomic_load(&a->v);
}
static inline void goro_atomic_int64_store(goro_atomic_int64_t *a, int64_t v)
{
    atomic_store(&a->v, v);
}
/* Returns the new value (Go's Add). */
static inline int64_t goro_atomic_int64_add(goro_atomic_int64_t *a, int64_t delta)
{
    return (int64_t)((uint64_t)atomic_fetch_add(&a->v, delta) + (uint64_t)delta);
}
/* Returns the old value. */
static inline int64_t goro_atomic_int64_swap(goro_atomic_int64_t *a, int64_t v)
{
    return atomic_exchange(&a->v, v);
}
/* If the value is old, set it to v and return true. */
static inline bool goro_atomic_int64_cas(goro_atomic_int64_t *a, int64_t old, int64_t v)
{
    return atomic_compare_exchange_strong(&a->v, &old, v);
}

#ifdef __cplusplus
}
#endif
#endif
