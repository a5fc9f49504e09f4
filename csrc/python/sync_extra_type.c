/* pygoro.sync's Pool and Semaphore, and pygoro.sync.atomic's Int64 and
 * Value: extension types over csrc/sync/pool.c, semaphore.c and the
 * atomics of pygoro.h.
 *
 * Pool holds PyObject* in a goro_pool_t: put hands the pool a strong
 * reference and get hands it to the caller, so no incref or decref happens
 * inside the pool. Clearing or freeing the pool collects the objects first
 * and decrefs them with no runtime lock held (a destructor may run any
 * Python code, even put into this pool).
 *
 * Semaphore's uncontended acquire is a try_acquire with the GIL held. A
 * blocking acquire parks a goroutine or puts a plain thread to sleep (the
 * runtime's hooks release the GIL). With a context, or on the main thread
 * (which must stay interruptible by Ctrl-C), it waits in select mode on
 * the context's done channel; an interrupted wait has been withdrawn when
 * it returns, and is retried after the signal handlers ran, in its old
 * place in the queue.
 *
 * Int64 is a goro_atomic_int64_t. Value guards its PyObject* with a tiny
 * spinlock: see value_lock.
 */
#include "bridge.h"
#include "../sync/pool.h"
#include "../sync/semaphore.h"

#include <sched.h>

/* ======================================================================== */
/* Pool                                                                      */

typedef struct {
    PyObject_HEAD
    goro_pool_t *pool;
    PyObject *new;
    PyObject *weakreflist;
} PoolObject;

static void release_ref(void *x, void *arg)
{
    (void)arg;
    Py_DECREF((PyObject *)x);
}

static PyObject *Pool_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"new", NULL};
    PyObject *new = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Pool", kwlist, &new))
        return NULL;
    if (new != Py_None && !PyCallable_Check(new)) {
        PyErr_Format(PyExc_TypeError, "Pool(new=...) must be callable or None, not %.100s",
                     Py_TYPE(new)->tp_name);
        return NULL;
    }
    PoolObject *self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->pool = goro_pool_new(NULL, NULL); /* new() is called here, with the GIL */
    if (self->pool == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
#ifdef Py_GIL_DISABLED
    /* No GIL keeps clear() apart from get()/put() on other Ps. */
    pool_no_private_slots(self->pool);
#endif
    self->new = new == Py_None ? NULL : Py_NewRef(new);
    return (PyObject *)self;
}

static int Pool_clear_refs(PoolObject *self)
{
    Py_CLEAR(self->new);
    if (self->pool != NULL)
        pool_clear(self->pool, release_ref, NULL);
    return 0;
}

struct pool_visit_arg {
    visitproc visit;
    void *arg;
};

static int pool_visit_one(void *x, void *arg)
{
    struct pool_visit_arg *a = arg;
    return a->visit((PyObject *)x, a->arg);
}

static int Pool_traverse(PoolObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->new);
    if (self->pool == NULL)
        return 0;
    struct pool_visit_arg a = {visit, arg};
    return pool_visit(self->pool, pool_visit_one, &a);
}

static void Pool_dealloc(PoolObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->new);
    if (self->pool != NULL)
        goro_pool_free(self->pool, release_ref, NULL);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Pool_get(PoolObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *x = goro_pool_get(self->pool);
    if (x != NULL)
        return x; /* the pool's reference, handed over */
    if (self->new == NULL)
        Py_RETURN_NONE;
    return PyObject_CallNoArgs(self->new);
}

static PyObject *Pool_put(PoolObject *self, PyObject *x)
{
    if (x == Py_None) /* Go's Put(nil) is a no-op */
        Py_RETURN_NONE;
    Py_INCREF(x); /* the pool's reference */
    if (goro_pool_put(self->pool, x) != GORO_OK) {
        Py_DECREF(x);
        return PyErr_NoMemory();
    }
    Py_RETURN_NONE;
}

static PyObject *Pool_clear(PoolObject *self, PyObject *unused)
{
    (void)unused;
    /* Python code only reaches the pool through these methods. With a GIL
     * they exclude each other, as pool_clear requires; a free-threaded
     * build keeps no object in a private slot (Pool_new), and the shared
     * stacks are locked. */
    return PyLong_FromSize_t(pool_clear(self->pool, release_ref, NULL));
}

static PyObject *Pool_get_new(PoolObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->new ? self->new : Py_None);
}

static PyMethodDef Pool_methods[] = {
    {"get", (PyCFunction)Pool_get, METH_NOARGS,
     "get() -> object\n\nRemove and return an object from the pool; if it is empty, return new() "
     "(None when the pool has no new). Prefers an object put by the same goroutine's processor."},
    {"put", (PyCFunction)Pool_put, METH_O,
     "put(x) -> None\n\nAdd x to the pool for reuse; put(None) does nothing (Go's Put(nil))."},
    {"clear", (PyCFunction)Pool_clear, METH_NOARGS,
     "clear() -> int\n\nDrop every pooled object and return how many (what Go's garbage collector "
     "does to pools; here the program decides when)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Pool_getset[] = {
    {"new", (getter)Pool_get_new, NULL, "The function get() calls when the pool is empty, or None.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Pool_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.Pool",
    .tp_basicsize = sizeof(PoolObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Pool(new=None)\n--\n\n"
              "A set of temporary objects that may be reused (Go's sync.Pool): get() returns a "
              "pooled object, or new() when the pool is empty; put(x) gives one back.\n\n"
              "Each processor (P) keeps its own objects, so goroutines rarely contend; a "
              "goroutine whose P has none steals from another P. Unlike Go's, nothing is dropped "
              "behind your back: the pool owns the objects put into it until get() returns them, "
              "clear() drops them, or the pool is freed.",
    .tp_new = Pool_new,
    .tp_dealloc = (destructor)Pool_dealloc,
    .tp_traverse = (traverseproc)Pool_traverse,
    .tp_clear = (inquiry)Pool_clear_refs,
    .tp_weaklistoffset = offsetof(PoolObject, weakreflist),
    .tp_methods = Pool_methods,
    .tp_getset = Pool_getset,
};

/* ======================================================================== */
/* Semaphore                                                                 */

typedef struct {
    PyObject_HEAD
    goro_semaphore_t *sem;
    int64_t size;
    PyObject *weakreflist;
} SemaphoreObject;

static PyObject *Semaphore_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", NULL};
    long long n;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "L:Semaphore", kwlist, &n))
        return NULL;
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "Semaphore(n) needs n >= 1, not %lld", n);
        return NULL;
    }
    SemaphoreObject *self = (SemaphoreObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->size = n;
    self->sem = goro_semaphore_new(n);
    if (self->sem == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void Semaphore_dealloc(SemaphoreObject *self)
{
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    /* A waiter holds a reference to us for its whole wait: none is left. */
    goro_semaphore_free(self->sem);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Vectorcall arguments into out[0..nnames) by position or keyword; an
 * absent one stays NULL. PyArg_ParseTupleAndKeywords would build an args
 * tuple per call, which costs more than the semaphore operation itself. */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames, const char *const *names, int nnames, PyObject **out)
{
    if (nargs > nnames) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, nnames,
                     nargs);
        return -1;
    }
    for (int i = 0; i < nnames; i++)
        out[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int j = 0;
        while (j < nnames && PyUnicode_CompareWithASCIIString(key, names[j]) != 0)
            j++;
        if (j == nnames) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, key);
            return -1;
        }
        if (out[j] != NULL) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'", fname,
                         names[j]);
            return -1;
        }
        out[j] = args[nargs + k];
    }
    return 0;
}

static const char *const kw_n[] = {"n"};

/* The weight argument: 1 if absent; ValueError unless 1 <= n <= size. */
static int sem_weight(SemaphoreObject *self, PyObject *o, const char *what, int64_t *n)
{
    if (o == NULL) {
        *n = 1;
        return 0;
    }
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        PyErr_Clear();
        v = v < 0 ? LLONG_MIN : LLONG_MAX;
    }
    if (v < 1 || v > self->size) {
        PyErr_Format(PyExc_ValueError, "Semaphore.%s: n must be in 1..%lld (the size), not %R",
                     what, (long long)self->size, o);
        return -1;
    }
    *n = v;
    return 0;
}

/* Raise ctx.err() (the context's Canceled or DeadlineExceeded). */
static void raise_ctx_err(PyObject *ctx)
{
    PyObject *err = PyObject_CallMethod(ctx, "err", NULL);
    if (err == NULL)
        return;
    if (PyExceptionInstance_Check(err))
        PyErr_SetObject((PyObject *)Py_TYPE(err), err);
    else
        PyErr_Format(PyExc_RuntimeError,
                     "Semaphore.acquire: ctx.done() was ready but ctx.err() returned %R", err);
    Py_DECREF(err);
}

static PyObject *Semaphore_acquire(SemaphoreObject *self, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"ctx", "n"};
    PyObject *a[2];
    int64_t n;
    if (parse_args("acquire", args, nargs, kwnames, names, 2, a) < 0 ||
        sem_weight(self, a[1], "acquire", &n) < 0)
        return NULL;
    PyObject *ctx = a[0] != NULL ? a[0] : Py_None;
    PyObject *done = NULL; /* holds the done channel alive while we wait on it */
    goro_chan_t *cancel = NULL;
    int kind = BRIDGE_CHAN_OBJECT;
    if (PyLong_Check(ctx)) { /* sem.acquire(3): a weight where the context goes */
        PyErr_SetString(PyExc_TypeError, "Semaphore.acquire(ctx=None, n=1): the first argument "
                                         "is a context; pass the weight as n=...");
        return NULL;
    }
    if (ctx != Py_None) {
        /* A context is anything with done() and err(), as in Go's interface;
         * say so rather than leak an AttributeError about 'done'. */
        PyObject *done_method = PyObject_GetAttrString(ctx, "done");
        if (done_method == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return NULL;
            PyErr_Clear();
        }
        if (done_method == NULL || !PyCallable_Check(done_method)) {
            Py_XDECREF(done_method);
            PyErr_Format(PyExc_TypeError,
                         "Semaphore.acquire: ctx must be a context (with done() and err()) "
                         "or None, not %.100s",
                         Py_TYPE(ctx)->tp_name);
            return NULL;
        }
        done = PyObject_CallNoArgs(done_method);
        Py_DECREF(done_method);
        if (done == NULL)
            return NULL;
        if (done == Py_None) /* background(): never done */
            Py_CLEAR(done);
        else if ((cancel = bridge_chan_get(done, &kind)) == NULL) {
            Py_DECREF(done);
            return NULL;
        }
    }
    int r;
    if (cancel == NULL && goro_semaphore_try_acquire(self->sem, n) == GORO_OK)
        Py_RETURN_NONE; /* no GIL release on the fast path */
    uint64_t seq = 0; /* our place in the queue, kept across interrupted waits */
    for (;;) {
        bridge_prepare_block();
        union {
            PyObject *obj;
            int64_t ns;
        } elem = {NULL};
        if (cancel == NULL && (in_goroutine() || !thread_is_interruptible()))
            r = goro_semaphore_acquire(self->sem, n);
        else
            r = semaphore_acquire_select_seq(self->sem, n, cancel, &elem, GORO_FOREVER, &seq);
        if (r == GORO_CANCELED && kind == BRIDGE_CHAN_OBJECT)
            Py_XDECREF(elem.obj); /* a value sent on a done channel: not ours to keep */
        if (r != GORO_INTERRUPTED)
            break;
        if (bridge_after_interrupt("a Semaphore") < 0) {
            Py_XDECREF(done);
            return NULL;
        }
    }
    Py_XDECREF(done);
    switch (r) {
    case GORO_OK:
        Py_RETURN_NONE;
    case GORO_CANCELED:
        raise_ctx_err(ctx);
        return NULL;
    case GORO_ENOMEM:
        return PyErr_NoMemory();
    default:
        PyErr_Format(PyExc_SystemError, "Semaphore.acquire: unexpected status %d", r);
        return NULL;
    }
}

static PyObject *Semaphore_try_acquire(SemaphoreObject *self, PyObject *const *args,
                                       Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *nobj;
    int64_t n;
    if (parse_args("try_acquire", args, nargs, kwnames, kw_n, 1, &nobj) < 0 ||
        sem_weight(self, nobj, "try_acquire", &n) < 0)
        return NULL;
    return PyBool_FromLong(goro_semaphore_try_acquire(self->sem, n) == GORO_OK);
}

static PyObject *sem_release(SemaphoreObject *self, int64_t n)
{
    if (goro_semaphore_release(self->sem, n) == GORO_EMISUSE) {
        PyErr_Format(PyExc_RuntimeError,
                     "Semaphore.release(%lld): released more than held (%lld held)", (long long)n,
                     (long long)goro_semaphore_held(self->sem));
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *Semaphore_release(SemaphoreObject *self, PyObject *const *args,
                                   Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *nobj;
    int64_t n;
    if (parse_args("release", args, nargs, kwnames, kw_n, 1, &nobj) < 0 ||
        sem_weight(self, nobj, "release", &n) < 0)
        return NULL;
    return sem_release(self, n);
}

static PyObject *Semaphore_enter(SemaphoreObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *r = Semaphore_acquire(self, NULL, 0, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    return Py_NewRef(self);
}

static PyObject *Semaphore_exit(SemaphoreObject *self, PyObject *args)
{
    (void)args;
    return sem_release(self, 1);
}

static PyObject *Semaphore_get_size(SemaphoreObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(self->size);
}

static PyObject *Semaphore_get_held(SemaphoreObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(goro_semaphore_held(self->sem));
}

static PyObject *Semaphore_get_waiters(SemaphoreObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLongLong(goro_semaphore_waiters(self->sem));
}

static PyObject *Semaphore_repr(SemaphoreObject *self)
{
    return PyUnicode_FromFormat("<pygoro.sync.Semaphore size=%lld held=%lld waiters=%lld>",
                                (long long)self->size, (long long)goro_semaphore_held(self->sem),
                                (long long)goro_semaphore_waiters(self->sem));
}

static PyMethodDef Semaphore_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Semaphore_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(ctx=None, n=1) -> None\n\nBlock until n units are acquired. Waiters are served in "
     "arrival order, so a large request is not starved by small ones. With a context, raise "
     "ctx.err() (Canceled or DeadlineExceeded) if it is done first - including before the call - "
     "holding nothing. ValueError unless 1 <= n <= size."},
    {"try_acquire", (PyCFunction)(void (*)(void))Semaphore_try_acquire,
     METH_FASTCALL | METH_KEYWORDS,
     "try_acquire(n=1) -> bool\n\nAcquire n units if they are free and nobody is waiting; never "
     "blocks."},
    {"release", (PyCFunction)(void (*)(void))Semaphore_release, METH_FASTCALL | METH_KEYWORDS,
     "release(n=1) -> None\n\nGive back n units, serving waiters that now fit. RuntimeError if "
     "fewer than n are held (nothing changes)."},
    {"__enter__", (PyCFunction)Semaphore_enter, METH_NOARGS, "acquire(n=1)"},
    {"__exit__", (PyCFunction)Semaphore_exit, METH_VARARGS, "release(n=1)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Semaphore_getset[] = {
    {"size", (getter)Semaphore_get_size, NULL, "The number of units.", NULL},
    {"held", (getter)Semaphore_get_held, NULL, "Units held right now (a snapshot).", NULL},
    {"waiters", (getter)Semaphore_get_waiters, NULL, "Acquirers waiting right now (a snapshot).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Semaphore_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.Semaphore",
    .tp_basicsize = sizeof(SemaphoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Semaphore(n)\n--\n\n"
              "A weighted semaphore of n units (golang.org/x/sync/semaphore.Weighted): "
              "acquire(ctx=None, n=1), try_acquire(n=1), release(n=1); `with sem:` takes one "
              "unit. Works from goroutines and threads; the main thread's wait is interruptible "
              "by Ctrl-C.",
    .tp_new = Semaphore_new,
    .tp_dealloc = (destructor)Semaphore_dealloc,
    .tp_repr = (reprfunc)Semaphore_repr,
    .tp_weaklistoffset = offsetof(SemaphoreObject, weakreflist),
    .tp_methods = Semaphore_methods,
    .tp_getset = Semaphore_getset,
};

/* ======================================================================== */
/* atomic.Int64                                                              */

typedef struct {
    PyObject_HEAD
    goro_atomic_int64_t v;
} Int64Object;

/* A Python int as int64: TypeError for non-integers, OverflowError outside
 * [-2**63, 2**63). */
static int as_int64(PyObject *o, int64_t *out)
{
    long long v = PyLong_AsLongLong(o);
    if (v == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_OverflowError, "%R does not fit in an Int64", o);
        }
        return -1;
    }
    *out = v;
    return 0;
}

static PyObject *Int64_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"v", NULL};
    PyObject *o = NULL;
    int64_t v = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Int64", kwlist, &o) ||
        (o != NULL && as_int64(o, &v) < 0))
        return NULL;
    Int64Object *self = (Int64Object *)type->tp_alloc(type, 0);
    if (self != NULL)
        goro_atomic_int64_store(&self->v, v);
    return (PyObject *)self;
}

static PyObject *Int64_load(Int64Object *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLongLong(goro_atomic_int64_load(&self->v));
}

static PyObject *Int64_store(Int64Object *self, PyObject *o)
{
    int64_t v;
    if (as_int64(o, &v) < 0)
        return NULL;
    goro_atomic_int64_store(&self->v, v);
    Py_RETURN_NONE;
}

static PyObject *Int64_add(Int64Object *self, PyObject *o)
{
    int64_t d;
    if (as_int64(o, &d) < 0)
        return NULL;
    return PyLong_FromLongLong(goro_atomic_int64_add(&self->v, d));
}

static PyObject *Int64_swap(Int64Object *self, PyObject *o)
{
    int64_t v;
    if (as_int64(o, &v) < 0)
        return NULL;
    return PyLong_FromLongLong(goro_atomic_int64_swap(&self->v, v));
}

static PyObject *Int64_compare_and_swap(Int64Object *self, PyObject *const *args, Py_ssize_t nargs)
{
    int64_t old, v;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "compare_and_swap(old, new) takes 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (as_int64(args[0], &old) < 0 || as_int64(args[1], &v) < 0)
        return NULL;
    return PyBool_FromLong(goro_atomic_int64_cas(&self->v, old, v));
}

static PyObject *Int64_repr(Int64Object *self)
{
    return PyUnicode_FromFormat("Int64(%lld)", (long long)goro_atomic_int64_load(&self->v));
}

static PyMethodDef Int64_methods[] = {
    {"load", (PyCFunction)Int64_load, METH_NOARGS, "load() -> int\n\nThe current value."},
    {"store", (PyCFunction)Int64_store, METH_O, "store(v) -> None\n\nSet the value to v."},
    {"add", (PyCFunction)Int64_add, METH_O,
     "add(delta) -> int\n\nAdd delta and return the new value (wraps around like Go's int64)."},
    {"swap", (PyCFunction)Int64_swap, METH_O, "swap(new) -> int\n\nSet new, return the old value."},
    {"compare_and_swap", (PyCFunction)(void (*)(void))Int64_compare_and_swap, METH_FASTCALL,
     "compare_and_swap(old, new) -> bool\n\nIf the value is old, set it to new and return True."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Int64_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.atomic.Int64",
    .tp_basicsize = sizeof(Int64Object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Int64(v=0)\n--\n\n"
              "An atomic 64-bit signed integer (Go's sync/atomic.Int64): load, store, add, swap, "
              "compare_and_swap. Every operation is sequentially consistent, as in Go. Arithmetic "
              "wraps around at +-2**63 like Go's int64; an argument outside that range raises "
              "OverflowError.",
    .tp_new = Int64_new,
    .tp_repr = (reprfunc)Int64_repr,
    .tp_methods = Int64_methods,
};

/* ======================================================================== */
/* atomic.Value                                                              */

/* A Python object reference that any goroutine or thread may load or
 * replace. The hazard is a free-threaded build (no GIL): a load that reads
 * the pointer and then increfs it could race with a store that swapped the
 * pointer out and dropped the last reference, and incref freed memory. So
 * "read the pointer + incref" and "swap the pointer" happen under a
 * spinlock held for those few instructions; the old object's decref always
 * happens after unlocking (it may run a destructor). Py_INCREF under the
 * lock runs no Python code. With the GIL the lock is never contended and
 * costs one atomic exchange and one store. (A seqlock would not do: its
 * reader could still incref an object freed after its pointer was read.) */
typedef struct {
    PyObject_HEAD
    _Atomic uint32_t lock;
    PyObject *v; /* never NULL: None for "nothing stored" */
    PyObject *weakreflist;
} ValueObject;

/* Critical sections are a few instructions: spin, yielding the CPU only
 * if the holder was descheduled in the middle of one. */
#define VALUE_SPINS_BEFORE_YIELD 64

static void value_lock(ValueObject *self)
{
    int spins = 0;
    /* acquire: the holder's pointer update is visible once we own it */
    while (atomic_exchange_explicit(&self->lock, 1, memory_order_acquire) != 0) {
        while (atomic_load_explicit(&self->lock, memory_order_relaxed) != 0) {
            if (++spins >= VALUE_SPINS_BEFORE_YIELD) {
                sched_yield();
                spins = 0;
            }
        }
    }
}

static void value_unlock(ValueObject *self)
{
    atomic_store_explicit(&self->lock, 0, memory_order_release);
}

/* Install v (a new reference, consumed); return the old one (a new
 * reference the caller must drop, outside the lock). */
static PyObject *value_exchange(ValueObject *self, PyObject *v)
{
    value_lock(self);
    PyObject *old = self->v;
    self->v = v;
    value_unlock(self);
    return old;
}

static PyObject *Value_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"v", NULL};
    PyObject *v = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Value", kwlist, &v))
        return NULL;
    ValueObject *self = (ValueObject *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->v = Py_NewRef(v);
    return (PyObject *)self;
}

static int Value_traverse(ValueObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->v);
    return 0;
}

static int Value_clear(ValueObject *self)
{
    PyObject *old = value_exchange(self, Py_NewRef(Py_None));
    Py_DECREF(old);
    return 0;
}

static void Value_dealloc(ValueObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    Py_CLEAR(self->v);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Value_load(ValueObject *self, PyObject *unused)
{
    (void)unused;
    value_lock(self);
    PyObject *v = Py_NewRef(self->v);
    value_unlock(self);
    return v;
}

static PyObject *Value_store(ValueObject *self, PyObject *v)
{
    PyObject *old = value_exchange(self, Py_NewRef(v));
    Py_DECREF(old);
    Py_RETURN_NONE;
}

static PyObject *Value_swap(ValueObject *self, PyObject *v)
{
    return value_exchange(self, Py_NewRef(v)); /* the old reference, handed over */
}

static PyObject *Value_compare_and_swap(ValueObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "compare_and_swap(old, new) takes 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *old = args[0], *v = Py_NewRef(args[1]);
    value_lock(self);
    bool swapped = self->v == old;
    if (swapped)
        self->v = v;
    value_unlock(self);
    /* swapped: drop the reference the Value held to old; else ours to v */
    Py_DECREF(swapped ? old : v);
    return PyBool_FromLong(swapped);
}

static PyObject *Value_repr(ValueObject *self)
{
    PyObject *v = Value_load(self, NULL);
    PyObject *r = PyUnicode_FromFormat("Value(%R)", v);
    Py_DECREF(v);
    return r;
}

static PyMethodDef Value_methods[] = {
    {"load", (PyCFunction)Value_load, METH_NOARGS,
     "load() -> object\n\nThe object stored last (None before any store)."},
    {"store", (PyCFunction)Value_store, METH_O, "store(v) -> None\n\nStore v (None allowed)."},
    {"swap", (PyCFunction)Value_swap, METH_O,
     "swap(new) -> object\n\nStore new and return the previous object."},
    {"compare_and_swap", (PyCFunction)(void (*)(void))Value_compare_and_swap, METH_FASTCALL,
     "compare_and_swap(old, new) -> bool\n\nIf the stored object is old (identity, `is`), store "
     "new and return True."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Value_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.atomic.Value",
    .tp_basicsize = sizeof(ValueObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Value(v=None)\n--\n\n"
              "An object reference loaded and replaced atomically (Go's sync/atomic.Value): "
              "load, store, swap, compare_and_swap (by identity). Unlike Go's, it starts as None, "
              "None may be stored, and the type may change between stores: Python values carry "
              "their type, so Go's consistent-type rule protects nothing here.",
    .tp_new = Value_new,
    .tp_dealloc = (destructor)Value_dealloc,
    .tp_traverse = (traverseproc)Value_traverse,
    .tp_clear = (inquiry)Value_clear,
    .tp_repr = (reprfunc)Value_repr,
    .tp_weaklistoffset = offsetof(ValueObject, weakreflist),
    .tp_methods = Value_methods,
};

/* ======================================================================== */

int bridge_sync_extra_init(PyObject *m)
{
    if (PyType_Ready(&Pool_Type) < 0 || PyType_Ready(&Semaphore_Type) < 0 ||
        PyType_Ready(&Int64_Type) < 0 || PyType_Ready(&Value_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Pool", (PyObject *)&Pool_Type) < 0 ||
        PyModule_AddObjectRef(m, "Semaphore", (PyObject *)&Semaphore_Type) < 0 ||
        PyModule_AddObjectRef(m, "AtomicInt64", (PyObject *)&Int64_Type) < 0 ||
        PyModule_AddObjectRef(m, "AtomicValue", (PyObject *)&Value_Type) < 0)
        return -1;
    return 0;
}
