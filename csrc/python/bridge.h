/* Shared declarations of the CPython bridge (the pygoro._core extension). */
#ifndef PYGORO_PY_BRIDGE_H
#define PYGORO_PY_BRIDGE_H

#include <Python.h>

#include "../runtime.h"

/* A Python goroutine: what go(fn, *args, **kwargs) captured, and the
 * interpreter state it runs with. g->py points here while the goroutine
 * holds a thread state. */
struct pyg {
    PyObject *fn;
    PyObject *args;    /* tuple */
    PyObject *kwargs;  /* dict or NULL */
    PyObject *context; /* copy of the spawner's contextvars */
    PyThreadState *tstate;
    size_t stack_size;
    /* where go() was called, for dumps (python/dump.c): the caller's code
     * object (or NULL), instruction offset in bytes, and OS thread */
    PyObject *spawn_code;
    int spawn_offset;
    const char *spawn_label; /* no Python caller: the spawning goroutine's label */
    unsigned long spawn_thread;
};

/* goroutine.c */
int bridge_goroutine_init(PyObject *module);
PyObject *bridge_go(PyObject *fn, PyObject *args, PyObject *kwargs);
/* Python's main thread may be interrupted by signals while blocked: call
 * before a blocking runtime call from a plain thread. */
void bridge_prepare_block(void);
/* Ctrl-C and friends: after a runtime call returned GORO_INTERRUPTED, run
 * the signal handlers. -1 with an exception set if one raised (the caller
 * returns NULL), 0 to retry the operation. */
int bridge_handle_interrupt(void);
void bridge_shutdown(void);
void bridge_after_fork_child(void);
size_t bridge_stack_size(size_t set);
/* How many times an M waited for the GIL's runner (goroutine.c). */
uint64_t bridge_gil_waits(void);
/* The Python goroutine state of a G from a dump snapshot, or NULL if the G
 * is not a Python goroutine or has finished with it. Only meaningful if the
 * snapshot was taken, and the state is read, inside compat_stop_the_world
 * (see python/dump.c). */
struct pyg *bridge_pyg_of(const struct g_info *gi);
/* dump.c: pygoro._core._goroutines(); and the dump text (new reference, or
 * NULL with an exception) that DeadlockError carries */
int bridge_dump_init(PyObject *module);
PyObject *bridge_dump_text(void);
/* Raise DeadlockError(message) carrying the goroutine dump: as its
 * `goroutines` attribute and as a note (add_note) that tracebacks print. The
 * message is formatted as by PyErr_Format / PyUnicode_FromFormat. */
void bridge_raise_deadlock(const char *fmt, ...);
/* A plain Python thread is about to block in the runtime (it still holds the
 * GIL) / has resumed (it holds the GIL again): dumps list it meanwhile. */
void bridge_dump_thread_blocking(struct g *gp);
void bridge_dump_thread_resumed(void);
void bridge_dump_after_fork_child(void);
/* chan_type.c: pygoro.Chan, select, ClosedChannelError, DeadlockError */
int bridge_chan_init(PyObject *module);
extern PyObject *bridge_closed_channel_error;
extern PyObject *bridge_deadlock_error;
/* After a wait returned GORO_INTERRUPTED: the signal handlers run (Ctrl-C
 * raises KeyboardInterrupt), then DeadlockError if the main thread waits on
 * `what` (e.g. "a Mutex") that nothing left can complete. -1 with an
 * exception set, or 0 to retry. */
int bridge_after_interrupt(const char *what);
/* What the C channel under a Chan carries, and what a receive returns. */
enum bridge_chan_kind {
    BRIDGE_CHAN_OBJECT = 0,   /* PyObject*, the reference handed over (chan()) */
    BRIDGE_CHAN_NANOTIME = 1, /* int64 nanotime ns (a timer's channel):
                                 received as float seconds, time.monotonic()'s clock */
};
/* A Chan over a C channel made elsewhere (a timer's), holding a reference to
 * owner, which keeps c alive and frees it: the Chan never does. Receive-only
 * from Python: send, send_case and close raise TypeError. */
PyObject *bridge_chan_wrap(goro_chan_t *c, int kind, PyObject *owner);
/* The C channel under a Chan or a SendChan/RecvChan view (borrowed: o keeps
 * it alive) and its enum bridge_chan_kind; NULL with TypeError otherwise. */
goro_chan_t *bridge_chan_get(PyObject *o, int *kind);
/* time_type.c: sleep and the timers behind pygoro.time */
int bridge_time_init(PyObject *module);
/* sync_type.c: Mutex, RWMutex, RLock, WaitGroup, Once, Cond (pygoro.sync) */
int bridge_sync_init(PyObject *module);
/* The goro_mutex_t of a pygoro.sync.Mutex, or NULL if o is not one; lock it
 * as Mutex.lock() does (0, or -1 with an exception: an interrupted plain
 * thread), unlock it as Mutex.unlock() does (-1: it was not locked). */
goro_mutex_t *bridge_mutex_of(PyObject *o);
int bridge_mutex_lock(goro_mutex_t *m);
int bridge_mutex_unlock(goro_mutex_t *m);
/* context_walk.c: the cancel walk of pygoro.context (_core._cancel_walk) */
int bridge_context_init(PyObject *module);
/* The exception-report callback (pygoro.runtime calls _set_exception_handler):
 * a new reference or NULL; set takes its own reference. Both are safe
 * without the GIL. */
PyObject *bridge_get_exception_handler(void);
void bridge_set_exception_handler(PyObject *fn);
extern int bridge_finalizing;
/* Around taking a thread state from a thread without one (a goroutine
 * attaching, PyGILState_Ensure on a goroutine stack): false if the
 * interpreter is finalizing (do not touch it), else attach and then call
 * bridge_attach_end. bridge_shutdown waits for the ones in between. */
bool bridge_attach_begin(void);
void bridge_attach_end(void);
/* sync_extra_type.c: Pool, Semaphore, atomic Int64 and Value */
int bridge_sync_extra_init(PyObject *module);

#endif
