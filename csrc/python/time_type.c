/* Sleep and timers for pygoro.time: Go's time.Sleep, Timer, Ticker and
 * AfterFunc over the runtime's goro_sleep / goro_timer_* (sched/).
 *
 * sleep(d) parks a goroutine on a runtime timer. A plain thread sleeps on a
 * futex with the GIL released; the main thread's sleep is cut short by a
 * signal so that Python can run its handlers (Ctrl-C), then goes on sleeping
 * for what is left.
 *
 * A TimerHandle owns one goro_timer_t. The Python classes in pygoro/time.py
 * wrap it; this file only knows two kinds:
 *
 *   Timer/Ticker (_timer): the runtime timer sends its fire time, an int64
 *     nanotime, into a one-slot C channel. Python reaches
 *     that channel through a Chan made by bridge_chan_wrap (chan_type.c):
 *     receiving from it, directly or in select(), yields float seconds on
 *     time.monotonic()'s clock. The Chan holds the handle and the handle
 *     frees the timer (and with it the channel), so a timer lives exactly as
 *     long as something can still receive from it: after(d) returns only the
 *     channel, and a pending Timer that nobody can observe any more is
 *     stopped and freed by refcounting, as Go 1.23's garbage collector does.
 *     Handle -> nothing; Chan -> handle; the Python Timer -> both: no cycle.
 *
 *   after_func (_after_func): the runtime timer's expiry starts a C
 *     goroutine (a timer function runs without the GIL and must not touch
 *     Python). That goroutine cannot run Python itself - a G without a
 *     thread state of its own would park holding the GIL - so it starts a
 *     goroutine with a Python-sized stack which takes the GIL through
 *     PyGILState_Ensure (a fresh thread state, deleted again at Release;
 *     the M's gilstate slot is empty while no goroutine is attached, see
 *     compat.c) and starts the user's function as an ordinary Python
 *     goroutine with bridge_go. The hop to a big stack is because taking the
 *     GIL and allocating can run arbitrary Python (cyclic GC finalizers on
 *     3.11, a __del__ on the last reference) which a 64 KiB C goroutine
 *     stack would not hold. The function runs in a copy of the contextvars
 *     of the after_func() caller, as go() does.
 *
 *     Nobody needs to keep the Timer of after_func(d, fn) to have fn run,
 *     so each arming holds a reference to the handle (its "pending"
 *     reference). goro_timer_stop/reset tell exactly whether they prevented
 *     an arming from firing (they wait for a running timer function), so
 *     the accounting is exact: an arming that fires drops its reference in
 *     the goroutine it starts; one that stop() or reset() prevented is
 *     dropped by that call. reset() takes the new arming's reference before
 *     arming it, so even without a GIL (free-threaded builds) a fast fire
 *     can never drop a reference not yet taken.
 *
 * No Python API is ever called with a runtime lock held: goro_timer_* take
 * their locks inside and return before we touch an object.
 */
#include "bridge.h"
#include "compat.h"

#include <math.h>

typedef struct {
    PyObject_HEAD
    goro_timer_t *t;
    bool is_func; /* after_func: the fields below are set */
    PyObject *fn;
    PyObject *args;    /* tuple */
    PyObject *kwargs;  /* dict or NULL */
    PyObject *context; /* contextvars of the after_func() caller */
} TimerHandle;

static PyTypeObject TimerHandle_Type;

/* Float seconds (or anything float() takes) to nanoseconds. Rounded up, so
 * that a timer never fires before the duration asked for; <= 0 stays <= 0
 * (fire now); huge values saturate (Go's maximum Duration is ~292 years). */
static int duration_ns(PyObject *o, int64_t *out)
{
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    if (isnan(d)) {
        PyErr_SetString(PyExc_ValueError, "duration must be a number of seconds, not NaN");
        return -1;
    }
    double ns = ceil(d * 1e9);
    if (ns <= 0.0)
        *out = 0;
    else if (ns >= 9.2e18)
        *out = INT64_MAX;
    else
        *out = (int64_t)ns;
    return 0;
}

/* ---- sleep ---- */

static PyObject *time_sleep(PyObject *module, PyObject *arg)
{
    (void)module;
    int64_t ns;
    if (duration_ns(arg, &ns) < 0)
        return NULL;
    if (ns <= 0)
        Py_RETURN_NONE;
    if (in_goroutine()) {
        goro_sleep(ns); /* parks; the runtime's hooks release the GIL */
        Py_RETURN_NONE;
    }
    int64_t deadline;
    if (__builtin_add_overflow(goro_nanotime(), ns, &deadline))
        deadline = INT64_MAX;
    for (;;) {
        bridge_prepare_block();
        if (goro_sleep(ns) == GORO_OK)
            break;
        /* a signal reached the main thread: run its handlers (Ctrl-C
         * raises here), then sleep for what is left */
        if (bridge_handle_interrupt() < 0)
            return NULL;
        ns = deadline - goro_nanotime();
        if (ns <= 0)
            break;
    }
    Py_RETURN_NONE;
}

/* ---- TimerHandle ---- */

static TimerHandle *handle_new(void)
{
    TimerHandle *h = PyObject_GC_New(TimerHandle, &TimerHandle_Type);
    if (h == NULL)
        return NULL;
    h->t = NULL;
    h->is_func = false;
    h->fn = h->args = h->kwargs = h->context = NULL;
    PyObject_GC_Track(h);
    return h;
}

static int TimerHandle_traverse(TimerHandle *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->args);
    Py_VISIT(self->kwargs);
    Py_VISIT(self->context);
    return 0;
}

/* Only a handle no arming holds can be garbage (the pending reference is
 * not visible to the collector), so clearing never races a fire. */
static int TimerHandle_clear(TimerHandle *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs);
    Py_CLEAR(self->context);
    return 0;
}

static void TimerHandle_dealloc(TimerHandle *self)
{
    PyObject_GC_UnTrack(self);
    /* Stops the timer (waiting for a timer function still running: it
     * neither blocks nor needs the GIL) and frees it with its channel. */
    if (self->t != NULL)
        goro_timer_free(self->t);
    TimerHandle_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *TimerHandle_stop(TimerHandle *self, PyObject *unused)
{
    (void)unused;
    bool was = goro_timer_stop(self->t);
    if (was && self->is_func)
        Py_DECREF(self); /* the reference of the arming just prevented */
    return PyBool_FromLong(was);
}

static PyObject *TimerHandle_reset(TimerHandle *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "reset(d, period=0.0) takes one or two arguments");
        return NULL;
    }
    int64_t ns, period = 0;
    if (duration_ns(args[0], &ns) < 0 || (nargs == 2 && duration_ns(args[1], &period) < 0))
        return NULL;
    if (self->is_func)
        Py_INCREF(self); /* the new arming's reference, before it can fire */
    bool was = goro_timer_reset(self->t, ns, period);
    if (was && self->is_func)
        Py_DECREF(self); /* the prevented arming's reference */
    return PyBool_FromLong(was);
}

static PyMethodDef TimerHandle_methods[] = {
    {"stop", (PyCFunction)TimerHandle_stop, METH_NOARGS,
     "stop() -> bool: True if this stopped a pending timer (Go's Timer.Stop)."},
    {"reset", (PyCFunction)(void (*)(void))TimerHandle_reset, METH_FASTCALL,
     "reset(d, period=0.0) -> bool: re-arm; True if it had been pending."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TimerHandle_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro._core.TimerHandle",
    .tp_basicsize = sizeof(TimerHandle),
    .tp_dealloc = (destructor)TimerHandle_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A runtime timer; pygoro.time.Timer and Ticker wrap it.",
    .tp_traverse = (traverseproc)TimerHandle_traverse,
    .tp_clear = (inquiry)TimerHandle_clear,
    .tp_methods = TimerHandle_methods,
};

/* _timer(d, period) -> (handle, chan): a Timer (period 0) or Ticker. */
static PyObject *time_timer(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_timer(d, period) takes two arguments");
        return NULL;
    }
    int64_t ns, period;
    if (duration_ns(args[0], &ns) < 0 || duration_ns(args[1], &period) < 0)
        return NULL;
    TimerHandle *h = handle_new();
    if (h == NULL)
        return NULL;
    h->t = goro_timer_new(ns, period);
    if (h->t == NULL) {
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    PyObject *c = bridge_chan_wrap(goro_timer_chan(h->t), BRIDGE_CHAN_NANOTIME, (PyObject *)h);
    if (c == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    PyObject *r = PyTuple_Pack(2, (PyObject *)h, c);
    Py_DECREF(h);
    Py_DECREF(c);
    return r;
}

/* ---- after_func ---- */

/* Second hop of a fire (see the top of the file): a goroutine with a
 * Python-sized stack and no thread state of its own. */
static void after_func_fire_py(void *arg)
{
    TimerHandle *h = arg;
    if (!bridge_attach_begin())
        return; /* the interpreter is going away: the reference leaks */
    PyGILState_STATE st = PyGILState_Ensure();
    bridge_attach_end();
    /* The fresh thread state took its C stack bounds (3.14) or recursion
     * budget (3.12/3.13) from the OS thread's stack, not this goroutine's:
     * on 3.14 every deallocation of a GC object would then be deferred to a
     * list that is never emptied (its _Py_Dealloc sees no stack margin left)
     * and fn, args and the handle would leak. */
    struct g *gp = getg();
    PyObject *ctx = NULL;
    if (compat_set_recursion_budget(PyThreadState_Get(), gp->stack.lo,
                                    gp->stack.hi - gp->stack.lo) < 0)
        goto out;
    /* Start fn in a copy of the caller's contextvars: bridge_go copies the
     * current context, so enter one first (a copy, as the same context
     * cannot be entered twice and the timer may fire again meanwhile). */
    ctx = PyContext_Copy(h->context);
    if (ctx != NULL && PyContext_Enter(ctx) == 0) {
        PyObject *r = bridge_go(h->fn, h->args, h->kwargs);
        Py_XDECREF(r);
        PyContext_Exit(ctx);
    }
    Py_XDECREF(ctx);
out:
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(h->fn); /* out of memory, or a stack too small for this
                                        * Python: say so, nowhere to raise */
    Py_DECREF(h); /* this arming's reference */
    PyGILState_Release(st);
}

/* The timer's expiry: a C goroutine with a small stack, no GIL. */
static void after_func_fire(void *arg)
{
    if (go_spawn_sized(after_func_fire_py, arg, "time.AfterFunc", NULL, bridge_stack_size(0)) ==
        NULL)
        rt_throw("time.AfterFunc: cannot start a goroutine (out of memory)");
}

/* _after_func(d, fn, args, kwargs) -> handle */
static PyObject *time_after_func(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "_after_func(d, fn, args, kwargs) takes four arguments");
        return NULL;
    }
    int64_t ns;
    if (duration_ns(args[0], &ns) < 0)
        return NULL;
    if (!PyCallable_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "after_func() needs a callable, not %.100s",
                     Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    if (!PyTuple_Check(args[2]) || (args[3] != Py_None && !PyDict_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError, "_after_func: args must be a tuple, kwargs a dict or None");
        return NULL;
    }
    TimerHandle *h = handle_new();
    if (h == NULL)
        return NULL;
    h->is_func = true;
    h->fn = Py_NewRef(args[1]);
    h->args = Py_NewRef(args[2]);
    h->kwargs = args[3] == Py_None ? NULL : Py_NewRef(args[3]);
    h->context = PyContext_CopyCurrent();
    if (h->context == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    Py_INCREF(h); /* the first arming's reference */
    h->t = goro_after_func(ns, after_func_fire, h);
    if (h->t == NULL) {
        Py_DECREF(h);
        Py_DECREF(h);
        return PyErr_NoMemory();
    }
    return (PyObject *)h;
}

static PyMethodDef time_module_methods[] = {
    {"sleep", time_sleep, METH_O,
     "sleep(d): pause the current goroutine (or thread) for d seconds."},
    {"_timer", (PyCFunction)(void (*)(void))time_timer, METH_FASTCALL, NULL},
    {"_after_func", (PyCFunction)(void (*)(void))time_after_func, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

int bridge_time_init(PyObject *m)
{
    if (PyType_Ready(&TimerHandle_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "TimerHandle", (PyObject *)&TimerHandle_Type) < 0)
        return -1;
    return PyModule_AddFunctions(m, time_module_methods);
}
