/* Python goroutines: go(fn, *args, **kwargs) and the runtime hooks that move
 * a goroutine's PyThreadState between worker threads.
 *
 * Life of a Python goroutine:
 *   spawn (caller holds the GIL): capture fn, args, kwargs and a copy of the
 *     caller's contextvars; go_spawn_sized() with a Python-sized stack.
 *   start (on some M, no GIL): take a thread state from the pool (or create
 *     one), attach it (GIL), enter the context, call fn.
 *   park: the runtime switches to g0, releases the waited-on lock, and only
 *     then calls g_detach: this M's hold on the interpreter is dropped with
 *     no runtime lock held (DESIGN.md rule 12). Whoever resumes the G calls
 *     g_attach on the G's own stack, on whatever M that is.
 *   exit: report an escaping exception, reset the tstate and return it to
 *     the pool (or delete it), detached; the scheduler then recycles the
 *     stack. So a finished goroutine leaves nothing CPython could free under
 *     us, and a pooled tstate carries no data of its previous owner.
 *
 * Plain threads that block in the runtime (the main thread, threading
 * threads) release the GIL around the futex sleep through the
 * thread_block_begin/end hooks; the non-blocking fast paths never do.
 */
#include "bridge.h"
#include "compat.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* Python code needs far more stack than C goroutines (the eval loop, C
 * recursion through repr/json/...): 512 KiB of address space, of which
 * only touched pages cost memory. See compat.c for the recursion budget. */
#define PY_STACK_DEFAULT (512 * 1024)

static PyObject *bridge_exception_handler;
/* Guards bridge_exception_handler's load+incref against a concurrent
 * replacement: free-threaded builds have no GIL to do it. */
static struct rtlock handler_lock = RTLOCK_INIT;
int bridge_finalizing;

static PyInterpreterState *interp;
static unsigned long main_thread_ident;
static _Atomic size_t py_stack_size = PY_STACK_DEFAULT;

/* Idle goroutine thread states, detached and unbound.
 *
 * GIL builds: one pool for the process; a tstate runs on any M.
 * Free-threaded builds: a tstate belongs to the OS thread that created it
 * (its allocator heaps and biased refcounts, see sched/pin.c), and its
 * goroutine is pinned to that M; so each M keeps its own pool in
 * thread-local storage, which needs no lock: only that M's goroutines,
 * one at a time, touch it. */
#ifdef Py_GIL_DISABLED
#define TSTATE_POOL_MAX 128
static _Thread_local struct {
    PyThreadState *items[TSTATE_POOL_MAX];
    int n;
} pool;
#define POOL_LOCK() ((void)0)
#define POOL_UNLOCK() ((void)0)
#define POOL_RESET() (pool.n = 0)
#else
#define TSTATE_POOL_MAX 1024
static struct {
    struct rtlock lock;
    PyThreadState *items[TSTATE_POOL_MAX];
    int n;
} pool = {.lock = RTLOCK_INIT};
#define POOL_LOCK() rtlock_lock(&pool.lock)
#define POOL_UNLOCK() rtlock_unlock(&pool.lock)
#define POOL_RESET() (pool.lock = (struct rtlock)RTLOCK_INIT, pool.n = 0)
#endif

static PyThreadState *pool_get(void)
{
    PyThreadState *ts = NULL;
    POOL_LOCK();
    if (pool.n > 0)
        ts = pool.items[--pool.n];
    POOL_UNLOCK();
    return ts;
}

static bool pool_put(PyThreadState *ts)
{
    bool ok = false;
    POOL_LOCK();
    if (pool.n < TSTATE_POOL_MAX) {
        pool.items[pool.n++] = ts;
        ok = true;
    }
    POOL_UNLOCK();
    return ok;
}

PyObject *bridge_get_exception_handler(void)
{
    rtlock_lock(&handler_lock);
    PyObject *h = Py_XNewRef(bridge_exception_handler); /* an incref runs no code */
    rtlock_unlock(&handler_lock);
    return h;
}

void bridge_set_exception_handler(PyObject *fn)
{
    Py_XINCREF(fn);
    rtlock_lock(&handler_lock);
    PyObject *old = bridge_exception_handler;
    bridge_exception_handler = fn;
    rtlock_unlock(&handler_lock);
    Py_XDECREF(old); /* may run a destructor: outside the lock */
}

size_t bridge_stack_size(size_t set)
{
    size_t old = atomic_load(&py_stack_size);
    if (set)
        atomic_store(&py_stack_size, set);
    return old;
}

/* After interpreter shutdown has begun no M may take the GIL again: the
 * tstates may be freed, and taking the GIL then exits or hangs the thread
 * from inside a goroutine. Such an M just stops here; the process is about
 * to end. */
static _Noreturn void hang_forever(void)
{
    for (;;)
        pause();
}

/* Goroutines between their bridge_finalizing check and the end of their
 * attach (or, at start, of creating their thread state). Once atexit has
 * run, CPython's finalization removes every other thread state
 * (_PyThreadState_RemoveExcept) and clears the interpreter: a goroutine that
 * saw bridge_finalizing clear and was still inside PyThreadState_New then
 * crashed on 3.13t (tstate->interp == NULL in _Py_brc_init_thread, 3 of
 * 40 runs of test_exit_with_goroutines_in_every_state's sys.exit case).
 * bridge_shutdown sets the flag, then waits for this count to drain: a
 * store-buffer pair with the increment before the check (seq_cst on both
 * sides), so either the goroutine sees the flag and hangs, or shutdown sees
 * it counted and waits until it has attached; from then on CPython treats
 * it as it treats a daemon thread. */
static _Atomic int attaching;

bool bridge_attach_begin(void)
{
    atomic_fetch_add(&attaching, 1);
    if (__atomic_load_n(&bridge_finalizing, __ATOMIC_SEQ_CST)) {
        atomic_fetch_sub(&attaching, 1);
        return false;
    }
    return true;
}

void bridge_attach_end(void)
{
    atomic_fetch_sub(&attaching, 1);
}

/* ---- runtime hooks ---- */

/* One M at a time runs Python goroutines (GIL builds).
 *
 * Python goroutines run one at a time whatever gomaxprocs says: they need
 * the GIL. With two Ms both holding runnable Python goroutines (a cancel
 * waking 1000 of them puts a batch on each P), both queue on the GIL, and
 * CPython's GIL then makes them pay for it on every goroutine: the holder
 * drops the GIL between two goroutines and signals the condition variable
 * the other M sleeps on (a futex wake), that M wakes, finds the GIL taken
 * again by the holder's next goroutine and sleeps again. Measured on the
 * 1000-child cancel at gomaxprocs 2: a fifth of the CPU in the kernel's
 * futex paths and 4.2-5.2 us per child against 2.5-3 at gomaxprocs 1.
 *
 * So the M that attaches a goroutine's thread state notes itself as the
 * GIL's runner, and keeps the note when it detaches with more goroutines
 * queued (it will attach the next one in a moment). Another M about to
 * attach a goroutine while the runner is running Python, or is between two
 * goroutines, waits here on its own futex instead of in CPython's GIL,
 * where it would be signalled at every switch:
 *   - It goes ahead at once when the runner is attached but the GIL is free:
 *     the runner's goroutine sits in a call that released the GIL
 *     (time.sleep, socket.recv, a C extension computing).
 *   - The runner drops the note, and wakes it, when it detaches with
 *     nothing queued (the other side of a ping-pong across Ms waits for
 *     nothing) or runs out of work (m_idle, at stopm).
 *   - Otherwise it goes ahead after GIL_WAIT_MAX_NS, CPython's default
 *     switch interval, the wait a thread may face for the GIL anyway; from
 *     there CPython's fairness applies as before.
 * Every decision reads racy hints; a wrong one costs latency bounded by
 * GIL_WAIT_MAX_NS or one convoy, never a lost wakeup: the wait always ends.
 * gil_runner: the runner's id (the address of a thread-local), with bit 0
 * set while one of its goroutines is attached. */
#ifndef Py_GIL_DISABLED
static _Thread_local int m_tag;
static _Atomic uintptr_t gil_runner;
static _Atomic uint32_t gil_runner_gone; /* futex word: bumped when it idles */
static _Atomic int gil_waiters;
static _Atomic uint64_t gil_waits; /* statistics: _stats()["gil_waits"] */

#define GIL_WAIT_MAX_NS (5 * 1000 * 1000)
#define GIL_WAIT_POLL_NS (100 * 1000)

static inline uintptr_t m_self(void)
{
    return (uintptr_t)&m_tag;
}

/* Should this M stay off the GIL for now? r: gil_runner as read. */
static bool gil_runner_busy(uintptr_t r)
{
    if (r == 0 || (r & ~(uintptr_t)1) == m_self())
        return false;
    /* attached but the GIL is free: the runner's goroutine released it */
    return (r & 1) == 0 || compat_gil_locked(interp);
}

static void gil_wait_for_runner(void)
{
    if (!gil_runner_busy(atomic_load_explicit(&gil_runner, memory_order_relaxed)))
        return;
    atomic_fetch_add_explicit(&gil_waits, 1, memory_order_relaxed);
    int64_t deadline = nanotime() + GIL_WAIT_MAX_NS;
    /* seq_cst, with hook_m_idle's: either it sees us counted, or we see its
     * clear of gil_runner (Dekker). */
    atomic_fetch_add(&gil_waiters, 1);
    for (;;) {
        uint32_t seq = atomic_load(&gil_runner_gone);
        if (!gil_runner_busy(atomic_load(&gil_runner)))
            break;
        int64_t left = deadline - nanotime();
        if (left <= 0)
            break;
        futex_timedwait(&gil_runner_gone, seq, left < GIL_WAIT_POLL_NS ? left : GIL_WAIT_POLL_NS);
    }
    atomic_fetch_sub_explicit(&gil_waiters, 1, memory_order_relaxed);
}

/* After the attach: we hold the GIL. Written only when it changes, so the
 * runner's own goroutines do not dirty a line other Ms poll. */
static void gil_runner_attached(void)
{
    uintptr_t want = m_self() | 1;
    if (atomic_load_explicit(&gil_runner, memory_order_relaxed) != want)
        atomic_store_explicit(&gil_runner, want, memory_order_relaxed);
}

/* This M leaves the runner's place; wake one waiter to take it. */
static void gil_runner_leave(uintptr_t r)
{
    if (!atomic_compare_exchange_strong(&gil_runner, &r, 0))
        return; /* another M took over meanwhile */
    atomic_fetch_add(&gil_runner_gone, 1);
    if (atomic_load(&gil_waiters) > 0)
        futex_wake(&gil_runner_gone, 1);
}

/* Before the detach, while we still hold the GIL (so a waiter that sees
 * the GIL free afterwards does not take it for a call that released it):
 * stay the runner if we have goroutines queued, else leave. */
static void gil_runner_detaching(void)
{
    uintptr_t r = m_self() | 1;
    if (atomic_load_explicit(&gil_runner, memory_order_relaxed) != r)
        return;
    if (m_has_queued_work())
        atomic_store_explicit(&gil_runner, m_self(), memory_order_relaxed);
    else
        gil_runner_leave(r);
}

static void gil_runner_reset(void)
{
    atomic_store(&gil_runner, 0);
    atomic_store(&gil_waiters, 0);
}

static void hook_m_idle(void)
{
    uintptr_t r = atomic_load_explicit(&gil_runner, memory_order_relaxed);
    if ((r & ~(uintptr_t)1) == m_self())
        gil_runner_leave(r);
}

uint64_t bridge_gil_waits(void)
{
    return atomic_load_explicit(&gil_waits, memory_order_relaxed);
}

static inline void m_waiting_for_gil_if_any(bool waiting)
{
    m_waiting_for_gil(waiting);
}
#else
static inline void m_waiting_for_gil_if_any(bool waiting)
{
    (void)waiting;
}
static inline void gil_wait_for_runner(void) {}
static inline void gil_runner_attached(void) {}
static inline void gil_runner_detaching(void) {}
static inline void gil_runner_reset(void) {}
uint64_t bridge_gil_waits(void)
{
    return 0;
}
#endif

/* Take the GIL for a goroutine's tstate: wait for the runner (above), then
 * CPython's own wait; sysmon knows this M waits for the GIL meanwhile. */
static void attach_goroutine_tstate(PyThreadState *ts)
{
    m_waiting_for_gil_if_any(true);
    gil_wait_for_runner();
    if (!bridge_attach_begin())
        hang_forever();
    compat_attach(ts);
    bridge_attach_end();
    m_waiting_for_gil_if_any(false);
    gil_runner_attached();
}

static void hook_g_attach(struct g *gp)
{
    struct pyg *p = gp->py;
    attach_goroutine_tstate(p->tstate);
}

static void hook_g_detach(struct g *gp)
{
    (void)gp; /* may already run elsewhere: only thread-local state here */
    gil_runner_detaching();
    compat_detach();
}

static _Thread_local PyThreadState *thread_saved_tstate;

static void hook_thread_block_begin(struct g *gp)
{
    /* Only a thread that holds the GIL releases it: C code may call the
     * runtime from a thread that never touched Python. */
    if (compat_current_tstate() != NULL) {
        bridge_dump_thread_blocking(gp); /* listed by dumps until it resumes */
        thread_saved_tstate = PyEval_SaveThread();
    }
}

static void hook_thread_block_end(struct g *gp)
{
    (void)gp;
    PyThreadState *ts = thread_saved_tstate;
    if (ts != NULL) {
        thread_saved_tstate = NULL;
        PyEval_RestoreThread(ts);
        bridge_dump_thread_resumed();
    }
}

void bridge_prepare_block(void)
{
    if (!in_goroutine())
        goro_thread_set_interruptible(PyThread_get_thread_ident() == main_thread_ident);
}

int bridge_handle_interrupt(void)
{
    return PyErr_CheckSignals() < 0 ? -1 : 0;
}

/* ---- goroutine body ---- */

static void report_exception(struct pyg *p, uint64_t goid)
{
    PyObject *exc = compat_fetch_exception();
    if (exc == NULL)
        return;
    /* Like threading: SystemExit ends the goroutine quietly. */
    if (PyErr_GivenExceptionMatches(exc, PyExc_SystemExit)) {
        Py_DECREF(exc);
        return;
    }
    PyObject *handler = bridge_get_exception_handler();
    if (handler != NULL) {
        PyObject *r = PyObject_CallFunction(handler, "OKO", exc, (unsigned long long)goid,
                                            p->fn ? p->fn : Py_None);
        if (r == NULL)
            PyErr_WriteUnraisable(handler);
        else
            Py_DECREF(r);
        Py_DECREF(handler);
    } else {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        exc = NULL;
        PyErr_Print();
    }
    Py_XDECREF(exc);
}

static void py_goroutine_main(void *arg)
{
    struct pyg *p = arg;
    struct g *gp = getg();
    uint64_t goid = gp->goid;

#ifdef Py_GIL_DISABLED
    /* From its first Python instruction this goroutine stays on this M: the
     * tstate we are about to take was made here (DESIGN.md rule 11). */
    go_pin_current();
#endif
    if (!bridge_attach_begin())
        hang_forever();
    PyThreadState *ts = pool_get();
    if (ts == NULL) {
        ts = compat_tstate_new(interp);
        if (ts == NULL)
            rt_throw("cannot create a thread state for goroutine %llu", (unsigned long long)goid);
    }
    bridge_attach_end();
    p->tstate = ts;
    attach_goroutine_tstate(ts);
    gp->py = p;
    if (compat_set_recursion_budget(ts, gp->stack.lo, gp->stack.hi - gp->stack.lo) < 0) {
        report_exception(p, goid);
    } else if (PyContext_Enter(p->context) == 0) {
        PyObject *r = PyObject_Call(p->fn, p->args, p->kwargs);
        if (r == NULL)
            report_exception(p, goid);
        else
            Py_DECREF(r);
        PyContext_Exit(p->context);
    } else {
        report_exception(p, goid);
    }
    Py_CLEAR(p->fn);
    Py_CLEAR(p->args);
    Py_CLEAR(p->kwargs);
    Py_CLEAR(p->context);
    Py_CLEAR(p->spawn_code);
    compat_tstate_reset(ts);
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(NULL);
    gp->py = NULL;
    /* p is about to be freed: a dump must not find it through gp->arg any
     * more. Both happen attached, so a dump, which reads pygs with the world
     * stopped, sees either both or neither (python/dump.c). */
    __atomic_store_n(&gp->arg, NULL, __ATOMIC_RELAXED);
    PyMem_Free(p);

    gil_runner_detaching();
    if (pool_put(ts)) {
        compat_detach();
    } else {
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent(); /* releases the GIL */
    }
}

PyObject *bridge_go(PyObject *fn, PyObject *args, PyObject *kwargs)
{
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "go() needs a callable, not %.100s", Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (__atomic_load_n(&bridge_finalizing, __ATOMIC_ACQUIRE)) {
        PyErr_SetString(PyExc_RuntimeError, "go(): the interpreter is shutting down");
        return NULL;
    }
    /* PyMem, not malloc: allocated and freed with the GIL held (or, free-
     * threaded, by mimalloc, which takes frees from other threads), and
     * freed on another thread than the spawner's; glibc then frees into the
     * spawner's arena under its lock, a tenth of the exit of a goroutine
     * woken in a 1000-way cancel (benchmarks/test_context.py). */
    struct pyg *p = PyMem_Calloc(1, sizeof *p);
    if (p == NULL)
        return PyErr_NoMemory();
    p->context = PyContext_CopyCurrent();
    if (p->context == NULL) {
        PyMem_Free(p);
        return NULL;
    }
    Py_INCREF(fn);
    p->fn = fn;
    Py_INCREF(args);
    p->args = args;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0) {
        Py_INCREF(kwargs);
        p->kwargs = kwargs;
    }
    p->stack_size = atomic_load_explicit(&py_stack_size, memory_order_relaxed);
    p->spawn_code = compat_caller_code(&p->spawn_offset);
    p->spawn_thread = PyThread_get_thread_ident();
    if (p->spawn_code == NULL && in_goroutine())
        p->spawn_label = getg()->label; /* e.g. "time.AfterFunc" */
    /* The label is for dumps only: the qualified name, resolved lazily by
     * whoever prints it (a getattr per spawn would cost ~50 ns). */
    struct g *gp = go_spawn_sized(py_goroutine_main, p, NULL, NULL, p->stack_size);
    if (gp == NULL) {
        Py_DECREF(p->fn);
        Py_DECREF(p->args);
        Py_XDECREF(p->kwargs);
        Py_DECREF(p->context);
        Py_XDECREF(p->spawn_code);
        PyMem_Free(p);
        PyErr_SetString(PyExc_MemoryError, "go(): cannot allocate a goroutine stack");
        return NULL;
    }
    Py_RETURN_NONE;
}

struct pyg *bridge_pyg_of(const struct g_info *gi)
{
    return gi->entry == py_goroutine_main ? gi->arg : NULL;
}

/* ---- shutdown and fork ---- */

void bridge_shutdown(void)
{
    __atomic_store_n(&bridge_finalizing, 1, __ATOMIC_SEQ_CST);
    /* The caller has detached (no GIL held): a counted goroutine can
     * finish creating its tstate and attaching. */
    while (atomic_load(&attaching) != 0)
        sched_yield();
    goro_runtime_stop();
}

/* The runtime's global locks are taken right before fork() and released
 * in the parent right after, from pthread_atfork handlers: inside fork(),
 * after CPython's PyOS_BeforeFork. Not from an os.register_at_fork `before`
 * hook, which runs before PyOS_BeforeFork: on free-threaded builds that
 * then stops the world, waiting for every attached thread to reach a safe
 * point, while a goroutine running Python on another M may be waiting for
 * the sched.lock the hook holds (seen: os.fork hung in stop_the_world, a
 * goroutine in pin_ready and sysmon blocked on sched.lock,
 * test_fork_repeatedly_while_goroutines_run). Inside fork() the world is
 * already stopped (or the GIL held), so every lock holder is runtime code
 * that finishes its few instructions and lets go.
 *
 * Forks that bypass os.fork (a subprocess without preexec_fn that cannot
 * use vfork) run the handlers too: the parent side releases what it took,
 * and the child, which only execs, never touches the runtime. The child of
 * os.fork rebuilds the runtime from the `after_in_child` hook
 * (bridge_after_fork_child), once CPython itself is ready again. */
static void fork_prepare(void)
{
    goro_runtime_before_fork();
}

static void fork_parent(void)
{
    goro_runtime_after_fork_parent();
}

void bridge_after_fork_child(void)
{
    /* CPython has already deleted every thread state but the forking one:
     * forget the pooled ones without touching them. */
    POOL_RESET(); /* free-threaded: the forking thread's own pool */
    gil_runner_reset(); /* the runner was one of the parent's Ms */
    thread_saved_tstate = NULL;
    compat_after_fork_child();
    main_thread_ident = PyThread_get_thread_ident();
    bridge_dump_after_fork_child();
    goro_runtime_after_fork_child();
}

static bool hook_signal_pending(void)
{
    return compat_signal_tripped() != 0;
}

int bridge_goroutine_init(PyObject *module)
{
    (void)module;
    interp = PyInterpreterState_Get();
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    PyObject *mt = PyObject_CallMethod(threading, "main_thread", NULL);
    Py_DECREF(threading);
    if (mt == NULL)
        return -1;
    PyObject *ident = PyObject_GetAttrString(mt, "ident");
    Py_DECREF(mt);
    if (ident == NULL)
        return -1;
    main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    if (PyErr_Occurred())
        return -1;

    const char *env = getenv("PYGORO_PY_STACK_SIZE");
    if (env && *env) {
        long long v = atoll(env);
        if (v >= 64 * 1024)
            atomic_store(&py_stack_size, (size_t)v);
    }

    /* Once per process: single-phase init runs this once. */
    int err = pthread_atfork(fork_prepare, fork_parent, NULL);
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }

    rt_hooks.g_attach = hook_g_attach;
    rt_hooks.g_detach = hook_g_detach;
#ifndef Py_GIL_DISABLED
    rt_hooks.m_idle = hook_m_idle;
#endif
    rt_hooks.thread_block_begin = hook_thread_block_begin;
    rt_hooks.thread_block_end = hook_thread_block_end;
    rt_hooks.signal_pending = hook_signal_pending;
    return 0;
}
