/* pygoro._core._goroutines(): the runtime's goroutine snapshot
 * (sched/dump.c) plus, for each Python goroutine, its frames and where go()
 * was called. pygoro.runtime.goroutines() / stack() format it.
 *
 * Reading another goroutine's frames. A Python goroutine's frame chain and
 * its struct pyg change only while its PyThreadState is attached (it runs
 * Python, or frees its pyg at exit, see py_goroutine_main), so a dump reads
 * them in two phases:
 *
 *  1. copy, inside compat_stop_the_world: no other thread state can be
 *     attached, and none can attach before the copy ends. Each Python
 *     goroutine is, wherever it is, parked or runnable (detached: resuming
 *     means attaching in g_attach, which waits), running Python on another M
 *     (stopped at its next eval-breaker check, like Go's stop-the-world for
 *     a traceback), running a call that detached (time.sleep, socket.recv:
 *     it must attach again to return into Python), or finishing - it clears
 *     gp->arg and frees its pyg while attached, so the snapshot, taken with
 *     the world stopped, either finds the pyg alive (and it stays alive
 *     until the copy ends) or finds arg == NULL. The copy takes references
 *     to the code objects of the frames, the goroutine's function and
 *     creation site (increfs: no allocation, no code runs) and instruction
 *     offsets into malloc'd records.
 *  2. build, with the world running again: line numbers and the tuples
 *     pygoro.runtime reads; then the references are dropped. These objects
 *     stay valid whatever the goroutines do next.
 *
 * On free-threaded builds the world is really stopped (the GIL used to give
 * this for free, and a dump that read other goroutines' pygs without it
 * crashed in test_dump_while_goroutines_churn); on GIL builds the caller's
 * GIL does the job, as the copy never releases it.
 */
#include "bridge.h"
#include "compat.h"

#include <stdarg.h>
#include <stdlib.h>

/* ---- phase 1: copying, with the world stopped (compat.h's rules) ---- */

/* A thread state's frames, innermost first (malloc'd), n of them. */
struct frames_copy {
    struct compat_frame *f;
    size_t n;
};

static bool copy_frames(PyThreadState *ts, struct frames_copy *out)
{
    size_t n = compat_frames(ts, NULL, 0);
    out->f = NULL;
    out->n = 0;
    if (n == 0)
        return true;
    out->f = malloc(n * sizeof *out->f);
    if (out->f == NULL)
        return false;
    out->n = compat_frames(ts, out->f, n); /* ts cannot run: the same frames */
    return true;
}

static void frames_release(struct frames_copy *fc)
{
    for (size_t i = 0; i < fc->n; i++)
        Py_DECREF(fc->f[i].code);
    free(fc->f);
    fc->f = NULL;
    fc->n = 0;
}

/* What a dump keeps of a Python goroutine's struct pyg. */
struct pyg_copy {
    bool alive;  /* a Python goroutine whose pyg was still there */
    bool framed; /* frames were read: asked for, and started (g->py set) */
    PyObject *fn; /* new references or NULL */
    PyObject *spawn_code;
    int spawn_offset;
    const char *spawn_label;
    unsigned long spawn_thread;
    struct frames_copy frames;
};

struct goroutines_copy {
    int with_frames;
    struct g_info *gs; /* dump_snapshot's */
    size_t n;
    struct pyg_copy *py; /* n entries, parallel to gs */
    bool nomem;
};

static void copy_goroutines(void *arg)
{
    struct goroutines_copy *c = arg;
    c->gs = dump_snapshot(&c->n);
    if (c->gs == NULL || (c->py = calloc(c->n ? c->n : 1, sizeof *c->py)) == NULL) {
        c->nomem = true;
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        struct pyg *p = bridge_pyg_of(&c->gs[i]);
        if (p == NULL)
            continue;
        struct pyg_copy *pc = &c->py[i];
        pc->alive = true;
        pc->fn = Py_XNewRef(p->fn);
        pc->spawn_code = Py_XNewRef(p->spawn_code);
        pc->spawn_offset = p->spawn_offset;
        pc->spawn_label = p->spawn_label;
        pc->spawn_thread = p->spawn_thread;
        /* g->py is set right after its tstate first attached; before that
         * the starting M may be writing p->tstate, so do not read it */
        if (c->with_frames && c->gs[i].py != NULL) {
            pc->framed = true;
            if (!copy_frames(p->tstate, &pc->frames))
                c->nomem = true;
        }
    }
}

static void goroutines_release(struct goroutines_copy *c)
{
    if (c->py != NULL) {
        for (size_t i = 0; i < c->n; i++) {
            Py_XDECREF(c->py[i].fn);
            Py_XDECREF(c->py[i].spawn_code);
            frames_release(&c->py[i].frames);
        }
    }
    free(c->py);
    free(c->gs);
}

/* ---- phase 2: building, with the world running ---- */

/* [(code, lineno), ...] outermost first. */
static PyObject *frames_list(const struct frames_copy *fc)
{
    PyObject *out = PyList_New((Py_ssize_t)fc->n);
    for (size_t i = 0; out != NULL && i < fc->n; i++) {
        const struct compat_frame *f = &fc->f[fc->n - 1 - i];
        PyObject *item = Py_BuildValue("(Oi)", f->code,
                                       PyCode_Addr2Line((PyCodeObject *)f->code, f->offset));
        if (item == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, item);
    }
    return out;
}

/* One goroutine as a tuple (see pygoro/runtime.py, _from_core):
 * (goid, parent_goid, state, waited seconds | None, is_python, current,
 *  fn | None, label | None, entry | None, frames | None,
 *  (spawn code, spawn line) | spawner's label | None,
 *  spawn thread ident | None) */
static PyObject *info_tuple(const struct g_info *gi, const struct pyg_copy *pc)
{
    bool is_python = pc->alive;
    PyObject *waited = gi->waited_ns >= 0 ? PyFloat_FromDouble((double)gi->waited_ns / 1e9)
                                          : Py_NewRef(Py_None);
    PyObject *fn = Py_None, *entry = NULL, *frames = NULL, *spawn = NULL, *thread = NULL;
    if (waited == NULL)
        return NULL;
    if (pc->alive) {
        if (pc->fn != NULL)
            fn = pc->fn;
        entry = Py_NewRef(Py_None);
        if (pc->spawn_code != NULL)
            spawn = Py_BuildValue(
                "(Oi)", pc->spawn_code,
                PyCode_Addr2Line((PyCodeObject *)pc->spawn_code, pc->spawn_offset));
        else if (pc->spawn_label != NULL)
            spawn = PyUnicode_FromString(pc->spawn_label);
        else
            spawn = Py_NewRef(Py_None);
        thread = gi->parent_goid == 0 ? PyLong_FromUnsignedLong(pc->spawn_thread)
                                      : Py_NewRef(Py_None);
        frames = pc->framed ? frames_list(&pc->frames) : Py_NewRef(Py_None);
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

/* Run copy with the world stopped (compat_stop_the_world); 0, or -1 with
 * an exception if that failed or the copy ran out of memory (*nomem). */
static int copy_stopped(void (*copy)(void *), void *arg, const bool *nomem)
{
    if (compat_stop_the_world(copy, arg) < 0)
        return -1;
    if (*nomem) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* [item(ctx, 0), ..., item(ctx, n - 1)], built after the copy, with the
 * world running again; NULL with an exception if an item failed. */
static PyObject *list_of(size_t n, PyObject *(*item)(void *ctx, size_t i), void *ctx)
{
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = item(ctx, i);
        if (t == NULL)
            Py_CLEAR(out);
        else
            PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    return out;
}

static PyObject *goroutine_item(void *ctx, size_t i)
{
    struct goroutines_copy *c = ctx;
    return info_tuple(&c->gs[i], &c->py[i]);
}

static PyObject *core_goroutines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    struct goroutines_copy c = {0};
    c.with_frames = frames_flag(args, nargs, "_goroutines");
    if (c.with_frames < 0)
        return NULL;
    PyObject *out = NULL;
    if (copy_stopped(copy_goroutines, &c, &c.nomem) == 0)
        out = list_of(c.n, goroutine_item, &c);
    goroutines_release(&c);
    return out;
}

/* ---- plain threads blocked in the runtime ----
 * Go has no such thing; pygoro's main thread and threading threads block in
 * channels and locks too, and a dump that leaves them out hides half of a
 * deadlock. A Python thread registers itself while still attached
 * (thread_block_begin, before it releases the GIL) and unregisters right
 * after attaching again (thread_block_end), so a dump that finds it
 * registered with the world stopped knows it cannot run Python - or touch
 * its frames - until the copy is done: the same argument as for goroutines.
 * Plain C threads (no tstate) are not listed. */

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
    int64_t wait_since; /* then how long it has waited */
    struct frames_copy frames;
};

struct threads_copy {
    int with_frames;
    struct thread_info *ts;
    size_t n;
    bool nomem;
};

static void copy_threads(void *arg)
{
    struct threads_copy *c = arg;
    size_t n = 0, cap = 16;
    struct thread_info *ts = NULL;
    for (;;) {
        ts = calloc(cap, sizeof *ts);
        if (ts == NULL) {
            c->nomem = true;
            return;
        }
        n = 0;
        rtlock_lock(&blocked_lock);
        for (struct blocked_thread *b = blocked_head; b != NULL; b = b->next, n++) {
            if (n < cap)
                ts[n] = (struct thread_info){.tstate = b->tstate,
                                             .ident = b->ident,
                                             .wait_reason = b->gp->wait_reason,
                                             .wait_since = b->gp->wait_since};
        }
        rtlock_unlock(&blocked_lock);
        if (n <= cap)
            break;
        free(ts);
        cap = n + 16;
    }
    c->ts = ts;
    c->n = n;
    int64_t now = goro_nanotime();
    for (size_t i = 0; i < n; i++) {
        ts[i].wait_since = now > ts[i].wait_since ? now - ts[i].wait_since : 0;
        if (c->with_frames && !copy_frames(ts[i].tstate, &ts[i].frames))
            c->nomem = true;
    }
}

static PyObject *thread_tuple(const struct thread_info *ti, int with_frames)
{
    struct g_info gi = {.status = G_WAITING, .wait_reason = ti->wait_reason};
    PyObject *frames = with_frames ? frames_list(&ti->frames) : Py_NewRef(Py_None);
    if (frames == NULL)
        return NULL;
    return Py_BuildValue("(ksdN)", ti->ident, dump_state_string(&gi),
                         (double)ti->wait_since / 1e9, frames);
}

static PyObject *thread_item(void *ctx, size_t i)
{
    struct threads_copy *c = ctx;
    return thread_tuple(&c->ts[i], c->with_frames);
}

/* _blocked_threads(frames=True) -> [(thread ident, state, waited, frames | None)] */
static PyObject *core_blocked_threads(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    struct threads_copy c = {0};
    c.with_frames = frames_flag(args, nargs, "_blocked_threads");
    if (c.with_frames < 0)
        return NULL;
    PyObject *out = NULL;
    if (copy_stopped(copy_threads, &c, &c.nomem) == 0)
        out = list_of(c.n, thread_item, &c);
    if (c.ts != NULL) {
        for (size_t i = 0; i < c.n; i++)
            frames_release(&c.ts[i].frames);
    }
    free(c.ts);
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
