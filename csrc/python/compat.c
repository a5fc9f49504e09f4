/* CPython-version-specific interpreter state, all in one place.
 *
 * A Python goroutine owns a PyThreadState that travels with it from one OS
 * thread (M) to another. The eval loop, frames, the data stack, exception
 * state, contextvars, threading.local data and the recursion counters all
 * hang off the tstate, so switching tstates is enough for the interpreter -
 * except for the few places where CPython ties state to the OS thread, which
 * this file handles:
 *
 *  - The PyGILState slot (a TSS key per runtime: `gilstate.autoTSSkey` in
 *    3.11, `autoTSSkey` in 3.12+). PyGILState_Ensure, used by countless C
 *    extensions, looks the tstate up there. If it points at another (or a
 *    freed) goroutine's tstate, 3.11 deadlocks and 3.13 aborts with
 *    "non-NULL old thread state". So we bind it on attach and clear it on
 *    detach. Since 3.12 a tstate also carries `_status.bound_gilstate`, and
 *    attaching a tstate whose bit is clear rebinds the slot, first clearing
 *    the bit of whatever tstate the slot held - a write into a stale tstate
 *    unless the slot is empty. Keeping every M's slot empty while no
 *    goroutine is attached, and the bit clear on every detached tstate, makes
 *    CPython's own bind on attach correct; on 3.11 we set the slot ourselves.
 *
 *  - thread_id / native_thread_id: set at creation to the creating thread.
 *    faulthandler and debuggers print them; we update them on each attach.
 *
 *  - C recursion depth: 3.12 and 3.13 count C recursion separately
 *    (c_recursion_remaining) against a limit sized for an 8 MiB main-thread
 *    stack (1,500 on 3.12, 10,000 on 3.13). Measured here: one level of
 *    repr()/json.dumps() recursion costs ~150-165 bytes of C stack, so 3.13
 *    overflows a 256 KiB stack near 1,700 levels. We give each goroutine a
 *    budget of (stack - reserve) / C_LEVEL_BYTES. 3.11 has one counter for
 *    Python and C recursion (recursion_remaining); we cap it the same way,
 *    which only matters if the program raised sys.setrecursionlimit.
 *    3.14 has no counter: it compares the stack pointer with bounds kept in
 *    the tstate (DESIGN.md rule 6), which we point at the goroutine's own
 *    stack at every goroutine start (compat_set_recursion_budget).
 *
 * What 3.14 (GIL build) leaves as 3.12/3.13 had it: the autoTSSkey and the
 * bound_gilstate bit (rule 3), PyEval_RestoreThread/SaveThread (rule 2),
 * the signal flag. Its finalization hangs, rather than exits, a thread that
 * takes the GIL too late (rule 8); goroutine.c's bridge_finalizing keeps
 * every M from trying, whatever the version does.
 */
#define Py_BUILD_CORE 1
#include <Python.h>
#include "internal/pycore_runtime.h"

#include "compat.h"

/* Bytes of C stack assumed per level of C recursion: the measured 165 plus
 * headroom for fatter paths (extensions, __repr__ through several layers). */
#define C_LEVEL_BYTES 256
/* Stack kept for the goroutine's own base frames and the last call that
 * trips the limit. */
#define STACK_RESERVE (32 * 1024)

#if PY_VERSION_HEX >= 0x030C0000
#define AUTO_TSS_KEY (&_PyRuntime.autoTSSkey)
#else
#define AUTO_TSS_KEY (&_PyRuntime.gilstate.autoTSSkey)
#endif

static void gilstate_unbind(PyThreadState *tstate)
{
    Py_tss_t *key = AUTO_TSS_KEY;
    if (PyThread_tss_is_created(key) && PyThread_tss_get(key) == (void *)tstate)
        PyThread_tss_set(key, NULL);
#if PY_VERSION_HEX >= 0x030C0000
    tstate->_status.bound_gilstate = 0;
#endif
}

PyThreadState *compat_current_tstate(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyThreadState_GetUnchecked();
#else
    return _PyThreadState_UncheckedGet();
#endif
}

/* ---- where a goroutine was created (pygoro.runtime.stack) ----
 * go() records its caller's code object and instruction offset, read off
 * the interpreter's own frame chain: a frame object (PyEval_GetFrame) would
 * have to be allocated on every spawn, this costs two loads and an incref.
 * The line number is computed only when a dump prints it. */
#if PY_VERSION_HEX >= 0x030E0000
/* 3.14 moved _PyInterpreterFrame and its accessors out of pycore_frame.h;
 * f_executable is now a tagged _PyStackRef, which _PyFrame_GetCode untags.
 * Some of the inline helpers these headers pull in leave a parameter unused
 * in GIL builds, which PYGORO_STRICT's -Wextra -Werror would reject. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "internal/pycore_interpframe.h"
#include "internal/pycore_tstate.h"    /* _PyThreadStateImpl: the C stack bounds */
#include "internal/pycore_pythonrun.h" /* _PyOS_STACK_MARGIN_BYTES */
#pragma GCC diagnostic pop
#else
#include "internal/pycore_frame.h"
#endif

size_t compat_frames(PyThreadState *tstate, struct compat_frame *out, size_t cap)
{
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *f = tstate->current_frame;
#else
    _PyInterpreterFrame *f = tstate->cframe->current_frame;
#endif
    size_t n = 0;
    for (; f != NULL && (out == NULL || n < cap); f = f->previous) {
        /* Skip frames still being set up (and, on 3.13, the C stack's
         * shims), as PyFrame_GetBack does. */
        if (_PyFrame_IsIncomplete(f))
            continue;
        if (out != NULL) {
#if PY_VERSION_HEX >= 0x030D0000
            out[n].code = Py_NewRef((PyObject *)_PyFrame_GetCode(f));
#else
            out[n].code = Py_NewRef((PyObject *)f->f_code);
#endif
            out[n].offset = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
        }
        n++;
    }
    return n;
}

PyObject *compat_caller_code(int *offset)
{
    PyThreadState *tstate = compat_current_tstate();
    struct compat_frame f;
    if (tstate == NULL || compat_frames(tstate, &f, 1) == 0)
        return NULL;
    *offset = f.offset;
    return f.code;
}

/* ---- stopping the world (python/dump.c) ----
 * Free-threaded CPython stops every other thread state for its GC
 * (_PyEval_StopTheWorld: attached ones park at their next eval-breaker
 * check, detached ones are marked suspended and wait in their next attach)
 * but does not export that function. PyUnstable_GC_VisitObjects (3.12+)
 * runs its callback inside such a pause: in 3.13t (Python/gc_free_threading.c)
 * it stops the world, walks the mimalloc GC heaps with HEAD_LOCK held and
 * stops at the first callback that returns 0. So fn runs from the callback
 * at the first object, and the walk ends there. Hence fn's rules in
 * compat.h: no mimalloc memory may be allocated or freed during the walk,
 * and HEAD_LOCK (needed to create or delete a thread state) is held. */
#ifdef Py_GIL_DISABLED
struct stw_call {
    void (*fn)(void *);
    void *arg;
    bool ran;
};

static int stw_visit(PyObject *op, void *arg)
{
    (void)op;
    struct stw_call *c = arg;
    if (!c->ran) {
        c->ran = true;
        c->fn(c->arg);
    }
    return 0; /* stop the walk */
}
#endif

int compat_stop_the_world(void (*fn)(void *), void *arg)
{
#ifdef Py_GIL_DISABLED
    struct stw_call c = {fn, arg, false};
    PyUnstable_GC_VisitObjects(stw_visit, &c);
    if (!c.ran) {
        /* there was no tracked object to visit: cannot happen while a
         * module object is alive, but say so rather than read unstopped */
        PyErr_SetString(PyExc_RuntimeError, "pygoro: could not stop the world for a dump");
        return -1;
    }
#else
    fn(arg);
#endif
    return 0;
}

PyThreadState *compat_tstate_new(PyInterpreterState *interp)
{
    PyThreadState *tstate = PyThreadState_New(interp);
    if (tstate != NULL)
        gilstate_unbind(tstate);
    return tstate;
}

/* This OS thread's native id, looked up once: CPython's
 * PyThread_get_thread_native_id is a gettid system call, and compat_attach
 * runs on every resume of a Python goroutine (~0.15 us of a ~1 us wake in
 * benchmarks/test_context.py). 0: not looked up yet. The one thread that
 * survives a fork has a new id in the child: compat_after_fork_child. */
static _Thread_local unsigned long tls_native_id;

void compat_after_fork_child(void)
{
    tls_native_id = 0;
}

void compat_attach(PyThreadState *tstate)
{
    PyEval_RestoreThread(tstate);
#if PY_VERSION_HEX < 0x030C0000
    PyThread_tss_set(AUTO_TSS_KEY, tstate);
#else
    /* Attaching rebound the slot (bound_gilstate was clear); make sure. */
    if (!tstate->_status.bound_gilstate) {
        PyThread_tss_set(AUTO_TSS_KEY, tstate);
        tstate->_status.bound_gilstate = 1;
    }
#endif
    tstate->thread_id = PyThread_get_thread_ident();
    unsigned long nid = tls_native_id;
    if (nid == 0)
        tls_native_id = nid = PyThread_get_thread_native_id();
    tstate->native_thread_id = nid;
}

#ifndef Py_GIL_DISABLED
#if PY_VERSION_HEX >= 0x030C0000
#include "internal/pycore_interp.h"
#endif

bool compat_gil_locked(PyInterpreterState *interp)
{
    /* CPython's own flag, set while a thread holds the GIL
     * (Python/ceval_gil.c): _PyRuntime.ceval.gil in 3.11, the
     * interpreter's ceval.gil from 3.12. */
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&interp->ceval.gil->locked) != 0;
#elif PY_VERSION_HEX >= 0x030C0000
    return _Py_atomic_load_relaxed(&interp->ceval.gil->locked) != 0;
#else
    (void)interp;
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.gil.locked) != 0;
#endif
}
#endif

void compat_detach(void)
{
    PyThreadState *tstate = compat_current_tstate();
    if (tstate != NULL)
        gilstate_unbind(tstate);
    PyEval_SaveThread();
}

#if PY_VERSION_HEX >= 0x030E0000 && defined(__ELF__)
/* Added in 3.14.1 (gh-139653). Referenced weakly so that a module built
 * against newer 3.14 headers still loads into 3.14.0, where the symbol is
 * missing (CPython dlopens extensions with RTLD_NOW) and we fall back to
 * writing the same three fields ourselves. */
PyAPI_FUNC(int) PyUnstable_ThreadState_SetStackProtection(PyThreadState *, void *, size_t);
#pragma weak PyUnstable_ThreadState_SetStackProtection
#endif

int compat_set_recursion_budget(PyThreadState *tstate, uintptr_t stack_lo, size_t stack_bytes)
{
#if PY_VERSION_HEX >= 0x030E0000
    /* 3.14 dropped the C recursion counter: every recursion check compares
     * the machine stack pointer with limits stored in the tstate, a soft one
     * (RecursionError) two margins above the stack's base and a hard one
     * (fatal error) one margin above it. The first attach fills them from
     * the OS thread's stack (pthread_getattr_np), not the goroutine's, and
     * never again, so they are wrong for a goroutine on its mmap'd stack and
     * stale for a pooled tstate that moves to another one: set them at each
     * goroutine start. With limits that do not match the stack in use,
     * 3.14.1+ disables the recursion check entirely (3.14.0 raises
     * RecursionError at once or never), and _Py_Dealloc, which asks how
     * many margins are left (_Py_RecursionLimit_GetMargin, no such guard),
     * may find none and defer every GC object's deallocation to the
     * tstate's delete_later list, which nothing empties: a leak (seen with
     * after_func's PyGILState tstate, time_type.c). Nothing else resets the
     * bounds while the goroutine migrates between Ms: the stack goes with
     * it. */
    if (stack_bytes < 3 * _PyOS_STACK_MARGIN_BYTES) {
        PyErr_Format(PyExc_ValueError,
                     "pygoro: a %zu-byte goroutine stack is too small for this Python "
                     "(at least %zu bytes: see pygoro.runtime.stack_size)",
                     stack_bytes, (size_t)(3 * _PyOS_STACK_MARGIN_BYTES));
        return -1;
    }
#if defined(__ELF__)
    if (PyUnstable_ThreadState_SetStackProtection == NULL) {
        /* 3.14.0: what the function does in a release build. These three
         * fields sit at the same offsets in every 3.14 release. */
        _PyThreadStateImpl *ts = (_PyThreadStateImpl *)tstate;
        ts->c_stack_top = stack_lo + stack_bytes;
        ts->c_stack_hard_limit = stack_lo + _PyOS_STACK_MARGIN_BYTES;
        ts->c_stack_soft_limit = stack_lo + 2 * _PyOS_STACK_MARGIN_BYTES;
        return 0;
    }
#endif
    return PyUnstable_ThreadState_SetStackProtection(tstate, (void *)stack_lo, stack_bytes);
#else
    (void)stack_lo;
    int budget = stack_bytes > STACK_RESERVE ? (int)((stack_bytes - STACK_RESERVE) / C_LEVEL_BYTES)
                                             : 50;
#if PY_VERSION_HEX >= 0x030C0000
    if (tstate->c_recursion_remaining > budget)
        tstate->c_recursion_remaining = budget;
#else
    if (tstate->recursion_remaining > budget)
        tstate->recursion_remaining = budget;
#endif
    return 0;
#endif
}

void compat_tstate_reset(PyThreadState *tstate)
{
    /* threading.local() data of the previous goroutine */
    Py_CLEAR(tstate->dict);
    if (tstate->c_tracefunc != NULL)
        PyEval_SetTrace(NULL, NULL);
    if (tstate->c_profilefunc != NULL)
        PyEval_SetProfile(NULL, NULL);
    Py_CLEAR(tstate->async_exc);
}

PyObject *compat_fetch_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

void compat_restore_exception(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyObject *tb = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, tb);
#endif
}

/* The flag CPython's C signal handler sets and PyErr_CheckSignals clears.
 * 3.12+: _PyRuntime.signals.is_tripped. 3.11 keeps is_tripped static in
 * signalmodule.c; its runtime-wide ceval.signals_pending is set by the same
 * handler but cleared only by the eval loop, so on 3.11 a signal whose
 * handler ran in a pygoro wait without raising reads as pending until the
 * thread runs Python again: one extra check per tick, not a lost signal. */
int compat_signal_tripped(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _Py_atomic_load_int_relaxed(&_PyRuntime.signals.is_tripped);
#elif PY_VERSION_HEX >= 0x030C0000
    return _Py_atomic_load_relaxed(&_PyRuntime.signals.is_tripped);
#else
    return _Py_atomic_load_relaxed(&_PyRuntime.ceval.signals_pending);
#endif
}
