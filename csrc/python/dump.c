/* pygoro._core._goroutines(): the runtime's goroutine snapshot
 * (sched/dump.c) plus, for each Python goroutine, its frames and where go()
 * was called. pygoro.runtime.goroutines() / stack() format it.
 *
 * Reading another goroutine's frames. A Python goroutine's frame chain hangs
 * off its PyThreadState and changes only while that tstate executes Python,
 * which on a GIL build requires holding the GIL. We hold the GIL from before
 * the snapshot until every frame has been read, so during the walk each
 * Python goroutine is, wherever it is,
 *   - parked or runnable: detached; resuming it means g_attach ->
 *     PyEval_RestoreThread, which waits for the GIL we hold;
 *   - running in a call that released the GIL (time.sleep, socket.recv):
 *     it must re-take the GIL before it returns into Python;
 *   - finishing: py_goroutine_main clears gp->arg and frees its state in one
 *     GIL-holding stretch, so a snapshot taken under the GIL either sees the
 *     state alive (and it stays alive until we let go of the GIL) or sees
 *     arg == NULL and leaves it alone.
 * That is the whole locking argument, and it holds only while we keep the
 * GIL: nothing between the snapshot and the end of the walk may run Python
 * code (which can drop the GIL at the eval loop's switch interval). So the
 * walk only allocates - frame objects, tuples, ints, strings - with the
 * cyclic GC disabled (a collection could run __del__ methods), and never
 * drops a last reference to an object it did not create. Formatting (which
 * runs linecache, __qualname__ lookups, ...) happens afterwards, in Python,
 * on the frame objects and code objects collected here: those stay valid
 * whatever the goroutines do next.
 *
 * Free-threaded builds have no GIL to stop a goroutine from resuming mid-walk:
 * there only the calling goroutine's own frames are collected.
 */
#include "bridge.h"
#include "compat.h"

#include <stdarg.h>
#include <stdlib.h>

/* [(code, lineno), ...] outermost first; NULL with an exception set. */
static PyObject *frames_of(PyThreadState *ts)
{
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    PyFrameObject *f = PyThreadState_GetFrame(ts);
    while (f != NULL) {
        PyCodeObject *code = PyFrame_GetCode(f);
        PyObject *item = Py_BuildValue("(Ni)", (PyObject *)code, PyFrame_GetLineNumber(f));
        if (item == NULL || PyList_Append(out, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(f); /* still referenced by its running frame: not the last */
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(item);
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    if (PyList_Reverse(out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

/* One goroutine as a tuple (see pygoro/runtime.py, _from_core):
 * (goid, parent_goid, state, waited seconds | None, is_python, current,
 *  fn | None, label | None, entry | None, frames | None,
 *  (spawn code, spawn line) | spawner's label | None,
 *  spawn thread ident | None) */
static PyObject *info_tuple(const struct g_info *gi, bool with_frames)
{
    struct pyg *p = bridge_pyg_of(gi);
    bool is_python = p != NULL;
#ifdef Py_GIL_DISABLED
    /* Without a GIL another goroutine may finish, and free its pyg, while we
     * read it: only the caller's own goroutine is read. The others show as
     * Python goroutines with their C-level state only (no fn, frames or
     * creation site). */
    if (!gi->current)
        p = NULL;
#endif
    PyObject *waited = gi->waited_ns >= 0 ? PyFloat_FromDouble((double)gi->waited_ns / 1e9)
                                          : Py_NewRef(Py_None);
    PyObject *fn = Py_None, *entry = NULL, *frames = NULL, *spawn = NULL, *thread = NULL;
    if (waited == NULL)
        return NULL;
    if (p != NULL) {
        if (p->fn != NULL)
            fn = p->fn;
        entry = Py_NewRef(Py_None);
        if (p->spawn_code != NULL)
            spawn = Py_BuildValue(
                "(Oi)", p->spawn_code,
                PyCode_Addr2Line((PyCodeObject *)p->spawn_code, p->spawn_offset));
        else if (p->spawn_label != NULL)
            spawn = PyUnicode_FromString(p->spawn_label);
        else
            spawn = Py_NewRef(Py_None);
        thread = gi->parent_goid == 0 ? PyLong_FromUnsignedLong(p->spawn_thread)
                                      : Py_NewRef(Py_None);
        bool readable = with_frames && gi->py != NULL;
#ifdef Py_GIL_DISABLED
        readable = readable && gi->current;
#endif
        /* started: its tstate is set and attached at least once */
        frames = readable && p->tstate != NULL ? frames_of(p->tstate) : Py_NewRef(Py_None);
    } else if (is_python) {
        entry = Py_NewRef(Py_None);
        frames = Py_NewRef(Py_None);
        spawn = Py_NewRef(Py_None);
        thread = Py_NewRef(Py_None);
    } else {
        char sym[256];
        entry = gi->entry != NULL
                    ? PyUnicode_FromString(dump_symbolize((const void *)gi->entry, sym, sizeof sym))
                    : Py_NewRef(Py_None);
        frames = Py_NewRef(Py_None);
        spawn = Py_NewRef(Py_None);
        thread = Py_NewRef(Py_None);
    }
    PyObject *label = gi->label != NULL ? PyUnicode_FromString(gi->label) : Py_NewRef(Py_None);
    PyObject *r = NULL;
    if (entry != NULL && frames != NULL && spawn != NULL && thread != NULL && label != NULL)
        r = Py_BuildValue("(KKsOOOOOOOOO)", (unsigned long long)gi->goid,
                          (unsigned long long)gi->parent_goid, dump_state_string(gi), waited,
                          is_python ? Py_True : Py_False, gi->current ? Py_True : Py_False, fn,
                          label, entry, frames, spawn, thread);
    /* all of these are ours (new objects or extra references): none is a
     * last reference to something a destructor could run Python for */
    Py_DECREF(waited);
    Py_XDECREF(entry);
    Py_XDECREF(frames);
    Py_XDECREF(spawn);
    Py_XDECREF(thread);
    Py_XDECREF(label);
    return r;
}

/* The optional `frames` flag of _goroutines/_blocked_threads: 1 or 0, or -1
 * with an exception. */
static int frames_flag(PyObject *const *args, Py_ssize_t nargs, const char *what)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s(frames=True) takes at most one argument", what);
        return -1;
    }
    return nargs == 0 ? 1 : PyObject_IsTrue(args[0]);
}

/* [item(items, i, with_frames) for i in range(n)], built under the rules at
 * the top of the file: the cyclic GC off, so that allocating runs no Python. */
static PyObject *build_list(size_t n, PyObject *(*item)(const void *, size_t, int),
                            const void *items, int with_frames)
{
    int gc_was_enabled = PyGC_Disable();
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = item(items, i, with_frames);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    if (gc_was_enabled)
        PyGC_Enable();
    return out;
}

static PyObject *goroutine_item(const void *items, size_t i, int with_frames)
{
    return info_tuple(&((const struct g_info *)items)[i], with_frames);
}

static PyObject *core_goroutines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int with_frames = frames_flag(args, nargs, "_goroutines");
    if (with_frames < 0)
        return NULL;
    size_t n = 0;
    /* With the GIL held (see the top of the file) */
    struct g_info *gs = dump_snapshot(&n);
    if (gs == NULL)
        return PyErr_NoMemory();
    PyObject *out = build_list(n, goroutine_item, gs, with_frames);
    free(gs);
    return out;
}

/* ---- plain threads blocked in the runtime ----
 * Go has no such thing; pygoro's main thread and threading threads block in
 * channels and locks too, and a dump that leaves them out hides half of a
 * deadlock. A Python thread registers itself while it still holds the GIL
 * (thread_block_begin) and unregisters right after taking it back
 * (thread_block_end), so a dump holding the GIL that finds it registered
 * knows it cannot run Python - or touch its frames - until the dump is done:
 * the same argument as for goroutines. Plain C threads (no tstate) are not
 * listed. */

struct blocked_thread {
    struct g *gp;
    PyThreadState *tstate;
    unsigned long ident; /* threading.get_ident() */
    struct blocked_thread *prev, *next;
};

static struct rtlock blocked_lock = RTLOCK_INIT;
static struct blocked_thread *blocked_head;
static _Thread_local struct blocked_thread blocked_self;

void bridge_dump_thread_blocking(struct g *gp)
{
    struct blocked_thread *b = &blocked_self;
    b->gp = gp;
    b->tstate = compat_current_tstate();
    b->ident = PyThread_get_thread_ident();
    b->prev = NULL;
    rtlock_lock(&blocked_lock);
    b->next = blocked_head;
    if (blocked_head != NULL)
        blocked_head->prev = b;
    blocked_head = b;
    rtlock_unlock(&blocked_lock);
}

void bridge_dump_thread_resumed(void)
{
    struct blocked_thread *b = &blocked_self;
    rtlock_lock(&blocked_lock);
    if (b->prev != NULL)
        b->prev->next = b->next;
    else if (blocked_head == b)
        blocked_head = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    b->prev = b->next = NULL;
    rtlock_unlock(&blocked_lock);
}

void bridge_dump_after_fork_child(void)
{
    /* only the forking thread survives, and it is not blocked */
    blocked_lock = (struct rtlock)RTLOCK_INIT;
    blocked_head = NULL;
}

struct thread_info {
    PyThreadState *tstate;
    unsigned long ident;
    uint8_t wait_reason;
    int64_t wait_since;
};

static PyObject *thread_item(const void *items, size_t i, int with_frames)
{
    const struct thread_info *ti = &((const struct thread_info *)items)[i];
    struct g_info gi = {.status = G_WAITING, .wait_reason = ti->wait_reason};
#ifdef Py_GIL_DISABLED
    with_frames = 0; /* nothing stops the thread from resuming: see the top */
#endif
    PyObject *frames = with_frames ? frames_of(ti->tstate) : Py_NewRef(Py_None);
    if (frames == NULL)
        return NULL;
    return Py_BuildValue("(ksdN)", ti->ident, dump_state_string(&gi),
                         (double)ti->wait_since / 1e9, frames);
}

/* _blocked_threads(frames=True) -> [(thread ident, state, waited, frames | None)] */
static PyObject *core_blocked_threads(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    int with_frames = frames_flag(args, nargs, "_blocked_threads");
    if (with_frames < 0)
        return NULL;
    size_t n = 0, cap = 16;
    struct thread_info *ts = NULL;
    for (;;) {
        ts = malloc(cap * sizeof *ts);
        if (ts == NULL)
            return PyErr_NoMemory();
        n = 0;
        rtlock_lock(&blocked_lock);
        for (struct blocked_thread *b = blocked_head; b != NULL; b = b->next, n++) {
            if (n < cap)
                ts[n] = (struct thread_info){b->tstate, b->ident, b->gp->wait_reason,
                                             b->gp->wait_since};
        }
        rtlock_unlock(&blocked_lock);
        if (n <= cap)
            break;
        free(ts);
        cap = n + 16;
    }
    int64_t now = goro_nanotime();
    for (size_t i = 0; i < n; i++) /* now the waited time, for thread_item */
        ts[i].wait_since = now > ts[i].wait_since ? now - ts[i].wait_since : 0;
    PyObject *out = build_list(n, thread_item, ts, with_frames);
    free(ts);
    return out;
}

PyObject *bridge_dump_text(void)
{
    PyObject *mod = PyImport_ImportModule("pygoro.runtime");
    if (mod == NULL)
        return NULL;
    PyObject *r = PyObject_CallMethod(mod, "stack", NULL);
    Py_DECREF(mod);
    return r;
}

void bridge_raise_deadlock(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    PyObject *msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (msg == NULL)
        return;
    PyObject *exc = PyObject_CallOneArg(bridge_deadlock_error, msg);
    Py_DECREF(msg);
    if (exc == NULL)
        return;
    /* The dump is a debugging aid: if it fails, raise the error without it. */
    PyObject *dump = bridge_dump_text();
    if (dump != NULL && PyUnicode_Check(dump)) {
        PyObject *note = PyUnicode_FromFormat("goroutines at the deadlock:\n%U", dump);
        if (note == NULL || PyObject_SetAttrString(exc, "goroutines", dump) < 0) {
            PyErr_Clear();
        } else {
            PyObject *r = PyObject_CallMethod(exc, "add_note", "O", note);
            if (r == NULL)
                PyErr_Clear();
            Py_XDECREF(r);
        }
        Py_XDECREF(note);
    } else {
        PyErr_Clear();
    }
    Py_XDECREF(dump);
    PyErr_SetObject(bridge_deadlock_error, exc);
    Py_DECREF(exc);
}

static PyMethodDef dump_methods[] = {
    {"_goroutines", (PyCFunction)(void (*)(void))core_goroutines, METH_FASTCALL,
     "_goroutines(frames=True) -> list of tuples: every live goroutine "
     "(pygoro.runtime.goroutines); frames=False skips reading Python frames."},
    {"_blocked_threads", (PyCFunction)(void (*)(void))core_blocked_threads, METH_FASTCALL,
     "_blocked_threads(frames=True) -> [(thread ident, state, waited, frames)]: Python "
     "threads blocked in the runtime."},
    {NULL, NULL, 0, NULL},
};

int bridge_dump_init(PyObject *module)
{
    /* DeadlockError().goroutines: None unless raised by the runtime */
    if (PyObject_SetAttrString(bridge_deadlock_error, "goroutines", Py_None) < 0)
        return -1;
    return PyModule_AddFunctions(module, dump_methods);
}
