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
 * (CLOCK_MONOTONIC ns, int64) at which it fired; a Ticker whose receiver is
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
/* CLOCK_MONOTONIC in ns. */
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

#ifdef __cplusplus
}
#endif
#endif
