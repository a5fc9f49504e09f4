/* pygoro._core: the extension module. Runtime-level functions live here;
 * goroutines in goroutine.c, channels/select in chan_type.c, timers in
 * time_type.c, sync primitives in sync_type.c. The Python package (pygoro/)
 * wraps these with docstrings and Go's package layout. */
#include "bridge.h"
#include "compat.h"

#include <sched.h>

static PyObject *core_go(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                         PyObject *kwnames)
{
    (void)self;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "go() missing the function to run");
        return NULL;
    }
    PyObject *rest = PyTuple_New(nargs - 1);
    if (rest == NULL)
        return NULL;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(rest, i - 1, args[i]);
    }
    PyObject *kwargs = NULL;
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            Py_DECREF(rest);
            return NULL;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0) {
                Py_DECREF(rest);
                Py_DECREF(kwargs);
                return NULL;
            }
        }
    }
    PyObject *r = bridge_go(args[0], rest, kwargs);
    Py_DECREF(rest);
    Py_XDECREF(kwargs);
    return r;
}

static PyObject *core_gosched(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (in_goroutine()) {
        go_sched();
    } else {
        Py_BEGIN_ALLOW_THREADS
        sched_yield();
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

/* The optional int argument of gomaxprocs()/stack_size(): 0 in *out when
 * absent or None; -1 with an exception for a wrong type or a value outside
 * [lo, hi]. */
static int optional_int_arg(PyObject *const *args, Py_ssize_t nargs, const char *what,
                            long long lo, long long hi, long long *out)
{
    *out = 0;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most one argument", what);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    if (!PyLong_Check(args[0]) || PyBool_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() needs an int or None, not %.100s", what,
                     Py_TYPE(args[0])->tp_name);
        return -1;
    }
    long long v = PyLong_AsLongLong(args[0]);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < lo || v > hi) {
        PyErr_Format(PyExc_ValueError, "%s() must be between %lld and %lld, not %lld", what, lo,
                     hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *core_gomaxprocs(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long n;
    if (optional_int_arg(args, nargs, "gomaxprocs", 1, 256, &n) < 0)
        return NULL;
    int old;
    Py_BEGIN_ALLOW_THREADS
    old = goro_gomaxprocs((int)n);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(old);
}

static PyObject *core_num_goroutine(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLongLong(goro_num_goroutine());
}

static PyObject *core_num_cpu(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyLong_FromLong(goro_num_cpu());
}

static PyObject *core_goid(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    uint64_t id = goro_goid();
    if (id == 0)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLongLong(id);
}

static PyObject *core_stack_size(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    long long set;
    if (optional_int_arg(args, nargs, "stack_size", 64 * 1024, 1LL << 30, &set) < 0)
        return NULL;
    return PyLong_FromSize_t(bridge_stack_size((size_t)set));
}

static PyObject *core_set_exception_handler(PyObject *self, PyObject *fn)
{
    (void)self;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "exception handler must be callable or None");
        return NULL;
    }
    bridge_set_exception_handler(fn == Py_None ? NULL : fn);
    Py_RETURN_NONE;
}

static PyObject *core_shutdown(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    Py_BEGIN_ALLOW_THREADS
    bridge_shutdown();
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *core_after_fork_child(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    bridge_after_fork_child();
    Py_RETURN_NONE;
}

static PyObject *core_stats(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    goro_stats_t s;
    goro_get_stats(&s);
    return Py_BuildValue("{s:i,s:i,s:L,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "gomaxprocs", s.gomaxprocs,
                         "num_m", s.num_m, "num_goroutine", (long long)s.num_goroutine, "steals",
                         (unsigned long long)s.steals, "global_gets",
                         (unsigned long long)s.global_gets, "spawns",
                         (unsigned long long)s.spawns, "m_parks", (unsigned long long)s.parks,
                         "stacks_mapped", (unsigned long long)s.stacks_mapped, "stacks_guarded",
                         (unsigned long long)s.stacks_guarded, "gil_waits",
                         (unsigned long long)bridge_gil_waits());
}

/* For benchmarks and tests: is every goroutine parked, none running or
 * runnable (pending timers allowed: a goroutine asleep in time.sleep is
 * parked too)? A harness polls it to start measuring once the goroutines
 * it set up are all blocked, instead of sleeping "long enough" (which also
 * lets the CPU go idle and its caches go cold, see
 * benchmarks/test_context.py). */
static PyObject *core_all_parked(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyBool_FromLong(sched_idle_but_timers());
}

/* For tests: what a C extension does when it calls back into Python from
 * arbitrary context - PyGILState_Ensure / Release around a call. Inside a
 * goroutine this must find the goroutine's own thread state. */
static PyObject *core_gilstate_call(PyObject *self, PyObject *fn)
{
    (void)self;
    PyThreadState *before = compat_current_tstate();
    PyGILState_STATE st = PyGILState_Ensure();
    PyThreadState *inside = PyGILState_GetThisThreadState();
    PyObject *r = PyObject_CallNoArgs(fn);
    PyGILState_Release(st);
    if (r == NULL)
        return NULL;
    if (inside != before) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_AssertionError,
                        "PyGILState_GetThisThreadState() is not the running thread state");
        return NULL;
    }
    return r;
}

static PyMethodDef core_methods[] = {
    {"go", (PyCFunction)(void (*)(void))core_go, METH_FASTCALL | METH_KEYWORDS,
     "go(fn, /, *args, **kwargs): run fn(*args, **kwargs) in a new goroutine."},
    {"gosched", core_gosched, METH_NOARGS, "Yield the processor to other goroutines."},
    {"gomaxprocs", (PyCFunction)(void (*)(void))core_gomaxprocs, METH_FASTCALL,
     "gomaxprocs(n=None) -> int: previous value; n sets it."},
    {"num_goroutine", core_num_goroutine, METH_NOARGS, "Number of live goroutines."},
    {"num_cpu", core_num_cpu, METH_NOARGS, "Number of usable CPUs."},
    {"goid", core_goid, METH_NOARGS, "Current goroutine id, or None on a plain thread."},
    {"stack_size", (PyCFunction)(void (*)(void))core_stack_size, METH_FASTCALL,
     "stack_size(n=None) -> int: previous Python goroutine stack size; n sets it."},
    {"_set_exception_handler", core_set_exception_handler, METH_O, NULL},
    {"_shutdown", core_shutdown, METH_NOARGS, NULL},
    {"_after_fork_child", core_after_fork_child, METH_NOARGS, NULL},
    {"_stats", core_stats, METH_NOARGS, NULL},
    {"_all_parked", core_all_parked, METH_NOARGS, NULL},
    {"_gilstate_call", core_gilstate_call, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pygoro._core",
    .m_doc = "pygoro's runtime: goroutines, channels, select, timers and sync in C.",
    .m_size = -1,
    .m_methods = core_methods,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
#ifdef Py_GIL_DISABLED
    PyUnstable_Module_SetGIL(m, Py_MOD_GIL_NOT_USED);
#endif
    if (bridge_goroutine_init(m) < 0 || bridge_chan_init(m) < 0 || bridge_time_init(m) < 0 ||
        bridge_sync_init(m) < 0 || bridge_sync_extra_init(m) < 0 || bridge_context_init(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (bridge_dump_init(m) < 0) { /* after chan: it decorates DeadlockError */
        Py_DECREF(m);
        return NULL;
    }
    goro_runtime_start(0);
    return m;
}
