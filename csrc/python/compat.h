/* Everything that depends on the CPython version, behind one small interface.
 * The implementation (compat.c) is the only file of pygoro that includes
 * CPython's internal headers. See ../shared/DESIGN.md, "one PyThreadState per
 * goroutine", for why each of these exists. */
#ifndef PYGORO_PY_COMPAT_H
#define PYGORO_PY_COMPAT_H

#include <Python.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A new thread state for a goroutine, not bound to the calling OS thread's
 * PyGILState slot (CPython binds a new tstate to the creating thread when its
 * slot is empty; a goroutine's tstate must belong to no thread while detached).
 * Does not need the GIL. */
PyThreadState *compat_tstate_new(PyInterpreterState *interp);

/* One Python frame copied out of a thread state: its code object (a new
 * reference) and the current instruction's offset in bytes (what
 * PyCode_Addr2Line takes). */
struct compat_frame {
    PyObject *code;
    int offset;
};

/* Copy tstate's innermost Python frames, innermost first, into out[0..cap)
 * and return how many were copied; with out == NULL, return how many frames
 * there are (cap is ignored). Reads
 * the interpreter's own frame chain: allocates nothing and runs no Python
 * code, so it may run inside compat_stop_the_world. tstate must not run
 * Python meanwhile: it is the caller's, or the world is stopped. */
size_t compat_frames(PyThreadState *tstate, struct compat_frame *out, size_t cap);

/* The code object (new reference) of the innermost Python frame running in
 * the calling thread and its current instruction's offset in bytes, or NULL
 * (no exception set) when none is. Cheap: no frame object is created. */
PyObject *compat_caller_code(int *offset);

/* Call fn(arg) while no other thread state of the interpreter can run
 * Python: every one is detached and cannot attach before fn returns, so its
 * frames and whatever it frees only while attached stay as they are. The
 * caller must be attached. Free-threaded builds stop the world (CPython's
 * stop-the-world pause); on GIL builds the caller's GIL already does it, as
 * long as fn does not release it. fn must therefore not run Python code,
 * allocate or free Python memory (not even a Py_DECREF), create or delete
 * thread states, or wait for anything a thread that runs Python may hold:
 * increfs, libc malloc and runtime locks are fine. 0, or -1 with an
 * exception set if fn could not be run. */
int compat_stop_the_world(void (*fn)(void *), void *arg);

/* Attach tstate to this OS thread and take the GIL; point this thread's
 * PyGILState slot at it (so PyGILState_Ensure in C extensions finds it) and
 * update thread_id / native_thread_id for faulthandler and debuggers. */
void compat_attach(PyThreadState *tstate);

/* In a forked child, on the one thread that survived: forget what
 * compat_attach cached about the thread (its native id changed). */
void compat_after_fork_child(void);

#ifndef Py_GIL_DISABLED
/* Is interp's GIL held by some thread right now? One relaxed load of the
 * GIL's own flag, made without the GIL: a hint, stale as soon as read. */
bool compat_gil_locked(PyInterpreterState *interp);
#endif

/* Release the GIL and detach the calling thread's current tstate, clearing
 * this thread's PyGILState slot and the tstate's bound bit so that no OS
 * thread keeps a pointer to a tstate that may move or be freed. */
void compat_detach(void);

/* Limit CPython's C recursion to what the goroutine's stack [stack_lo,
 * stack_lo + stack_bytes) can hold so that deep recursion raises
 * RecursionError instead of overflowing it. Call attached, at goroutine
 * start (3.11-3.13: counters at their maximum; 3.14: every goroutine start,
 * since a pooled tstate has the bounds of its previous goroutine's stack),
 * and for any other tstate that runs Python on a goroutine stack (one that
 * PyGILState_Ensure made there), whose bounds are the OS thread's.
 * 0, or -1 with an exception set (3.14: a stack too small for the
 * interpreter's safety margins). */
int compat_set_recursion_budget(PyThreadState *tstate, uintptr_t stack_lo, size_t stack_bytes);

/* Reset per-goroutine state of a finished goroutine's tstate so that the
 * next goroutine reusing it starts clean (threading.local data, tracing).
 * Called attached, with the GIL. */
void compat_tstate_reset(PyThreadState *tstate);

/* Take the raised exception (normalized, traceback attached); NULL if none. */
PyObject *compat_fetch_exception(void);
/* Raise exc again (a reference from compat_fetch_exception; stolen). */
void compat_restore_exception(PyObject *exc);

/* The calling thread's attached tstate, or NULL; never fails. */
PyThreadState *compat_current_tstate(void);

/* Nonzero while a signal has been received whose Python handler has not run
 * yet (CPython's "tripped" flag). One atomic load; no GIL needed. */
int compat_signal_tripped(void);

#endif
