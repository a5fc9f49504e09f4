/* Channels of Python objects and select, for pygoro.chan / pygoro.select.
 *
 * A Chan wraps a C channel whose elements are PyObject*. A send hands the
 * channel a strong reference, and the receiver takes that same reference
 * over: no incref or decref ever happens under the channel's lock (which
 * would run arbitrary Python in a destructor while holding a runtime lock).
 * References still buffered when the Chan is freed are released after the C
 * channel has let go of them.
 *
 * Every operation first tries the non-blocking path with the GIL held; only
 * when it would block does it call the blocking C function, which parks a
 * goroutine (the runtime's hooks detach its thread state) or puts a plain
 * thread to sleep (the hooks release the GIL around the futex wait). The
 * main thread's waits are interruptible: when one returns GORO_INTERRUPTED
 * the operation has been withdrawn cleanly, and we either raise
 * DeadlockError (the runtime is idle and no other Python thread exists that
 * could ever complete the operation), run the signal handlers (Ctrl-C raises
 * KeyboardInterrupt), or try again.
 *
 * A Case (ch.recv_case(), ch.send_case(v)) is a small immutable object that
 * select() reads; None in place of a case disables it (Go's nil channel).
 */
#include "bridge.h"
#include "../chan/chan.h"
#include "compat.h"

#include <math.h>

PyObject *bridge_closed_channel_error;
PyObject *bridge_deadlock_error;

typedef struct {
    PyObject_HEAD
    goro_chan_t *c;
    PyObject *weakreflist;
    int kind;        /* enum bridge_chan_kind: what c's elements are */
    PyObject *owner; /* bridge_chan_wrap: keeps c alive; NULL if c is ours */
} ChanObject;

enum { CASE_RECV = GORO_SELECT_RECV, CASE_SEND = GORO_SELECT_SEND };

typedef struct {
    PyObject_HEAD
    ChanObject *chan;
    int dir;
    PyObject *value; /* send cases */
} CaseObject;

static PyTypeObject Chan_Type;
static PyTypeObject Case_Type;

/* Largest buffer a chan() may ask for: one pointer per slot, allocated up
 * front, so absurd capacities fail with a clear error instead of malloc. */
#define CHAN_CAP_MAX ((size_t)1 << 28)

/* ---- blocking support ---- */

static PyObject *threading_active_count;
static PyObject *send_view_type, *recv_view_type; /* pygoro._chan.SendChan/RecvChan */

int bridge_after_interrupt(const char *what)
{
    /* Signal handlers first: Ctrl-C pressed at a deadlock is a
     * KeyboardInterrupt, and a handler may itself start what wakes us
     * (a goroutine, a thread), which the deadlock check below must see.
     * It also turns the 100 ms idle tick into a second chance for a signal
     * that arrived just before the wait began (no EINTR then). */
    bool handlers_ran = compat_signal_tripped() != 0;
    if (bridge_handle_interrupt() < 0)
        return -1;
    /* No verdict right after a handler ran: what it started may need us
     * back in the wait queue (a free-threaded build runs a goroutine it
     * spawned at once, which then parks sending to us, and the runtime
     * looks idle while we are out of the queue). The caller waits again;
     * the next idle tick, taken while queued, decides. */
    if (handlers_ran)
        return 0;
    if (goro_runtime_idle() && !in_goroutine()) {
        PyObject *n = PyObject_CallNoArgs(threading_active_count);
        if (n == NULL)
            return -1;
        long count = PyLong_AsLong(n);
        Py_DECREF(n);
        if (count == -1 && PyErr_Occurred())
            return -1;
        if (count <= 1 && goro_runtime_idle()) {
            bridge_raise_deadlock(
                "all goroutines are asleep - deadlock! (the main thread is blocked "
                "on %s, and no goroutine, timer or other thread can wake it)",
                what);
            return -1;
        }
    }
    return 0;
}

static void release_elem(void *elem, void *ctx)
{
    (void)ctx;
    Py_XDECREF(*(PyObject **)elem);
}

/* Room for one element of any kind of channel we receive from. */
union chan_slot {
    PyObject *obj;
    int64_t ns; /* BRIDGE_CHAN_NANOTIME */
};

/* A received element as a new reference: the object itself for our own
 * channels (the sender's reference, handed over), a float of seconds for a
 * timer channel's int64 nanotime. NULL with an exception on failure. */
static PyObject *elem_to_object(int kind, const union chan_slot *elem)
{
    if (kind == BRIDGE_CHAN_NANOTIME)
        return PyFloat_FromDouble((double)elem->ns / 1e9);
    return elem->obj;
}

/* Send and close belong to whoever made a wrapped channel (a timer). */
static int check_sendable(ChanObject *self, const char *what)
{
    if (self->kind == BRIDGE_CHAN_OBJECT)
        return 0;
    PyErr_Format(PyExc_TypeError, "%s timer channel (it is receive-only)", what);
    return -1;
}

/* ---- Chan ---- */

static PyObject *chan_new_object(Py_ssize_t cap)
{
    ChanObject *self = PyObject_New(ChanObject, &Chan_Type);
    if (self == NULL)
        return NULL;
    self->weakreflist = NULL;
    self->kind = BRIDGE_CHAN_OBJECT;
    self->owner = NULL;
    self->c = goro_chan_new(sizeof(PyObject *), (size_t)cap);
    if (self->c == NULL) {
        self->c = NULL;
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static PyObject *Chan_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    static char *kwlist[] = {"cap", NULL};
    PyObject *capobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:chan", kwlist, &capobj))
        return NULL;
    Py_ssize_t cap = 0;
    if (capobj != NULL) {
        if (!PyLong_Check(capobj) || PyBool_Check(capobj)) {
            PyErr_Format(PyExc_TypeError, "chan capacity must be an int, not %.100s",
                         Py_TYPE(capobj)->tp_name);
            return NULL;
        }
        cap = PyLong_AsSsize_t(capobj);
        if (cap == -1 && PyErr_Occurred())
            return NULL;
        if (cap < 0 || (size_t)cap > CHAN_CAP_MAX) {
            PyErr_Format(PyExc_ValueError, "chan capacity must be between 0 and %zu, not %zd",
                         CHAN_CAP_MAX, cap);
            return NULL;
        }
    }
    return chan_new_object(cap);
}

static void Chan_dealloc(ChanObject *self)
{
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    PyObject *owner = self->owner;
    if (self->c != NULL && owner == NULL) {
        /* nobody can be blocked on it: blocked callers hold a reference */
        chan_free_elems(self->c, release_elem, NULL);
        goro_chan_free(self->c);
    }
    PyObject_Free(self);
    Py_XDECREF(owner); /* a wrapped channel's owner frees it */
}

PyObject *bridge_chan_wrap(goro_chan_t *c, int kind, PyObject *owner)
{
    if (c == NULL || owner == NULL || kind != BRIDGE_CHAN_NANOTIME ||
        goro_chan_elemsize(c) != sizeof(int64_t)) {
        PyErr_SetString(PyExc_SystemError, "bridge_chan_wrap: bad channel, kind or owner");
        return NULL;
    }
    ChanObject *self = PyObject_New(ChanObject, &Chan_Type);
    if (self == NULL)
        return NULL;
    self->weakreflist = NULL;
    self->kind = kind;
    self->owner = Py_NewRef(owner);
    self->c = c;
    return (PyObject *)self;
}

static PyObject *Chan_send(ChanObject *self, PyObject *v)
{
    if (check_sendable(self, "send on") < 0)
        return NULL;
    Py_INCREF(v); /* the reference the receiver will own */
    PyObject *elem = v;
    int r = goro_chan_try_send(self->c, &elem);
    while (r == GORO_WOULDBLOCK || r == GORO_INTERRUPTED) {
        if (r == GORO_INTERRUPTED && bridge_after_interrupt("a channel") < 0) {
            Py_DECREF(v);
            return NULL;
        }
        bridge_prepare_block();
        r = goro_chan_send(self->c, &elem);
    }
    if (r == GORO_CLOSED) {
        Py_DECREF(v);
        PyErr_SetString(bridge_closed_channel_error, "send on closed channel");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Receive into *out (a new reference, or NULL when closed); -1 on error. */
static int chan_do_recv(ChanObject *self, PyObject **out, bool *ok)
{
    union chan_slot elem = {NULL};
    int r = goro_chan_try_recv(self->c, &elem, ok);
    while (r == GORO_WOULDBLOCK || r == GORO_INTERRUPTED) {
        if (r == GORO_INTERRUPTED && bridge_after_interrupt("a channel") < 0)
            return -1;
        bridge_prepare_block();
        r = goro_chan_recv(self->c, &elem, ok);
    }
    *out = NULL;
    if (*ok && (*out = elem_to_object(self->kind, &elem)) == NULL)
        return -1;
    return 0;
}

static PyObject *Chan_recv(ChanObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *v;
    bool ok;
    if (chan_do_recv(self, &v, &ok) < 0)
        return NULL;
    if (v == NULL)
        Py_RETURN_NONE;
    return v;
}

static PyObject *Chan_recv_ok(ChanObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *v;
    bool ok;
    if (chan_do_recv(self, &v, &ok) < 0)
        return NULL;
    PyObject *t = Py_BuildValue("(OO)", v ? v : Py_None, ok ? Py_True : Py_False);
    Py_XDECREF(v);
    return t;
}

static PyObject *Chan_iternext(ChanObject *self)
{
    PyObject *v;
    bool ok;
    if (chan_do_recv(self, &v, &ok) < 0)
        return NULL;
    if (!ok)
        return NULL; /* StopIteration: closed and drained */
    return v;
}

static PyObject *Chan_close(ChanObject *self, PyObject *unused)
{
    (void)unused;
    if (check_sendable(self, "close of") < 0)
        return NULL;
    if (goro_chan_close(self->c) == GORO_CLOSED) {
        PyErr_SetString(bridge_closed_channel_error, "close of closed channel");
        return NULL;
    }
    Py_RETURN_NONE;
}

static Py_ssize_t Chan_len(ChanObject *self)
{
    return (Py_ssize_t)goro_chan_len(self->c);
}

static PyObject *Chan_get_cap(ChanObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(goro_chan_cap(self->c));
}

static PyObject *Chan_get_closed(ChanObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(goro_chan_closed(self->c));
}

static PyObject *make_case(ChanObject *chan, int dir, PyObject *value)
{
    CaseObject *c = PyObject_New(CaseObject, &Case_Type);
    if (c == NULL)
        return NULL;
    c->chan = (ChanObject *)Py_NewRef(chan);
    c->dir = dir;
    c->value = Py_XNewRef(value);
    return (PyObject *)c;
}

static PyObject *Chan_recv_case(ChanObject *self, PyObject *unused)
{
    (void)unused;
    return make_case(self, CASE_RECV, NULL);
}

static PyObject *Chan_send_case(ChanObject *self, PyObject *v)
{
    if (check_sendable(self, "send case on") < 0)
        return NULL;
    return make_case(self, CASE_SEND, v);
}

static PyObject *make_view(PyObject *view_type, ChanObject *self)
{
    if (view_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "pygoro channel views are not initialised");
        return NULL;
    }
    return PyObject_CallOneArg(view_type, (PyObject *)self);
}

static PyObject *Chan_send_only(ChanObject *self, PyObject *unused)
{
    (void)unused;
    return make_view(send_view_type, self);
}

static PyObject *Chan_recv_only(ChanObject *self, PyObject *unused)
{
    (void)unused;
    return make_view(recv_view_type, self);
}

static PyObject *Chan_repr(ChanObject *self)
{
    return PyUnicode_FromFormat("<pygoro.Chan len=%zu cap=%zu%s at %p>", goro_chan_len(self->c),
                                goro_chan_cap(self->c),
                                goro_chan_closed(self->c) ? " closed" : "", (void *)self);
}

static PyMethodDef Chan_methods[] = {
    {"send", (PyCFunction)Chan_send, METH_O,
     "send(v): send v; blocks until a receiver takes it or the buffer has room.\n"
     "Raises ClosedChannelError if the channel is closed (Go panics)."},
    {"recv", (PyCFunction)Chan_recv, METH_NOARGS,
     "recv() -> value: blocks until a value arrives; None once closed and drained."},
    {"recv_ok", (PyCFunction)Chan_recv_ok, METH_NOARGS,
     "recv_ok() -> (value, ok): ok is False once closed and drained (Go's v, ok := <-ch)."},
    {"close", (PyCFunction)Chan_close, METH_NOARGS,
     "close(): no more sends; receivers drain the buffer, then get (None, False).\n"
     "Blocked senders fail with ClosedChannelError. Closing twice raises it too."},
    {"recv_case", (PyCFunction)Chan_recv_case, METH_NOARGS, "A receive case for select()."},
    {"send_only", (PyCFunction)Chan_send_only, METH_NOARGS,
     "A send-only view (Go's chan<- T): receiving from it raises TypeError."},
    {"recv_only", (PyCFunction)Chan_recv_only, METH_NOARGS,
     "A receive-only view (Go's <-chan T): sending on or closing it raises TypeError."},
    {"send_case", (PyCFunction)Chan_send_case, METH_O, "A send case for select()."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Chan_getset[] = {
    {"cap", (getter)Chan_get_cap, NULL, "capacity of the buffer (0: unbuffered)", NULL},
    {"closed", (getter)Chan_get_closed, NULL, "True once close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Chan_as_sequence = {
    .sq_length = (lenfunc)Chan_len,
};

static PyTypeObject Chan_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.Chan",
    .tp_basicsize = sizeof(ChanObject),
    .tp_dealloc = (destructor)Chan_dealloc,
    .tp_repr = (reprfunc)Chan_repr,
    .tp_as_sequence = &Chan_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "chan(cap=0): a Go channel of Python objects.\n\n"
              "Unbuffered when cap is 0: a send waits for a receiver. `for v in ch` receives\n"
              "until the channel is closed and drained. Safe to share between goroutines and\n"
              "threads.",
    .tp_weaklistoffset = offsetof(ChanObject, weakreflist),
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Chan_iternext,
    .tp_methods = Chan_methods,
    .tp_getset = Chan_getset,
    .tp_new = Chan_new,
};

/* ---- Case ---- */

static void Case_dealloc(CaseObject *self)
{
    Py_XDECREF(self->chan);
    Py_XDECREF(self->value);
    PyObject_Free(self);
}

static PyObject *Case_repr(CaseObject *self)
{
    return PyUnicode_FromFormat("<pygoro select case: %s %R>",
                                self->dir == CASE_RECV ? "recv from" : "send to",
                                (PyObject *)self->chan);
}

static PyTypeObject Case_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.Case",
    .tp_basicsize = sizeof(CaseObject),
    .tp_dealloc = (destructor)Case_dealloc,
    .tp_repr = (reprfunc)Case_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A select case: made by Chan.recv_case() / Chan.send_case(v).",
};

/* ---- select ---- */

#define SELECT_STACK_CASES 8
/* A timeout this long (2^62 ns, 146 years) or longer waits without limit:
 * converting more to int64 nanoseconds would overflow (undefined in C), and
 * below it now + timeout cannot overflow. */
#define SELECT_TIMEOUT_LIMIT_NS 4611686018427387904.0

/* select()'s keyword names, interned: keyword names reach us interned, so
 * an identity test settles the common case without a string compare. */
static PyObject *str_default, *str_timeout;
/* (-1, None, False): the result of a select whose default (or timeout) was
 * taken, made once - a tuple is immutable. */
static PyObject *select_none_result;

static bool kw_is(PyObject *name, PyObject *interned, const char *ascii)
{
    return name == interned || PyUnicode_CompareWithASCIIString(name, ascii) == 0;
}

/* (index, value, ok) for the chosen case, built directly: Py_BuildValue
 * parsed its format string on every call, a third of a non-blocking
 * select's cost. value is borrowed. */
static PyObject *select_result(int index, PyObject *value, bool ok)
{
    PyObject *i = PyLong_FromLong(index);
    if (i == NULL)
        return NULL;
    PyObject *t = PyTuple_New(3);
    if (t == NULL) {
        Py_DECREF(i);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, i);
    PyTuple_SET_ITEM(t, 1, Py_NewRef(value));
    PyTuple_SET_ITEM(t, 2, Py_NewRef(ok ? Py_True : Py_False));
    return t;
}

static PyObject *core_select(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames)
{
    (void)module;
    int block_default = 0;
    double timeout = -1.0;
    if (kwnames != NULL) {
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(kwnames); k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            PyObject *val = args[nargs + k];
            if (kw_is(name, str_default, "default")) {
                block_default = PyObject_IsTrue(val);
                if (block_default < 0)
                    return NULL;
            } else if (kw_is(name, str_timeout, "timeout")) {
                if (val != Py_None) {
                    timeout = PyFloat_AsDouble(val);
                    if (timeout == -1.0 && PyErr_Occurred())
                        return NULL;
                    if (!(timeout >= 0.0) || isinf(timeout)) {
                        PyErr_SetString(PyExc_ValueError,
                                        "select timeout must be a finite number >= 0 or None");
                        return NULL;
                    }
                }
            } else {
                PyErr_Format(PyExc_TypeError, "select() got an unexpected keyword argument %R",
                             name);
                return NULL;
            }
        }
    }
    if (nargs > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "select: too many cases");
        return NULL;
    }
    if (nargs == 1 && !block_default && timeout < 0.0 && PyObject_TypeCheck(args[0], &Case_Type) &&
        ((CaseObject *)args[0])->dir == CASE_RECV) {
        /* One receive case, no default, no timeout: a plain receive, as Go
         * compiles it (select { case v, ok := <-c: }). A select parks
         * with a sudog per case and, woken, locks and dequeues from every
         * case's channel; `select(ctx.done_case())` in a goroutine is the
         * common form of this (a 1000-child cancel: 0.3-0.5 us per child
         * more than done().recv() before). */
        PyObject *v;
        bool ok;
        if (chan_do_recv(((CaseObject *)args[0])->chan, &v, &ok) < 0)
            return NULL;
        PyObject *r = select_result(0, v ? v : Py_None, ok);
        Py_XDECREF(v);
        return r;
    }
    goro_select_case stack_cases[SELECT_STACK_CASES];
    union chan_slot stack_slots[SELECT_STACK_CASES];
    goro_select_case *cases = stack_cases;
    union chan_slot *slots = stack_slots;
    if (nargs > SELECT_STACK_CASES) {
        cases = PyMem_Calloc((size_t)nargs, sizeof *cases);
        slots = PyMem_Calloc((size_t)nargs, sizeof *slots);
        if (cases == NULL || slots == NULL) {
            PyMem_Free(cases);
            PyMem_Free(slots);
            return PyErr_NoMemory();
        }
    }
    PyObject *result = NULL;
    Py_ssize_t i;
    for (i = 0; i < nargs; i++) {
        PyObject *a = args[i];
        slots[i].obj = NULL;
        memset(&cases[i], 0, sizeof cases[i]);
        if (a == Py_None) {
            cases[i].c = NULL; /* disabled */
            cases[i].dir = CASE_RECV;
            continue;
        }
        if (!PyObject_TypeCheck(a, &Case_Type)) {
            PyErr_Format(PyExc_TypeError,
                         "select() case %zd must be ch.recv_case(), ch.send_case(v) or None, "
                         "not %.100s",
                         i, Py_TYPE(a)->tp_name);
            goto done;
        }
        CaseObject *co = (CaseObject *)a;
        cases[i].c = co->chan->c;
        cases[i].dir = co->dir;
        if (co->dir == CASE_SEND)
            slots[i].obj = Py_NewRef(co->value); /* handed over if this case wins */
        cases[i].elem = &slots[i];
    }

    int64_t timeout_ns = block_default ? 0 : GORO_FOREVER;
    int64_t deadline = 0;
    if (!block_default && timeout >= 0.0 && timeout * 1e9 < SELECT_TIMEOUT_LIMIT_NS) {
        /* rounded up, as timers are: never give up before the time asked */
        timeout_ns = (int64_t)ceil(timeout * 1e9);
        deadline = goro_nanotime() + timeout_ns;
    }
    int r;
    for (;;) {
        /* one non-blocking pass first: no GIL release if something is ready */
        r = goro_select(cases, (int)nargs, 0);
        if (r != GORO_SELECT_NONE || timeout_ns == 0)
            break;
        if (deadline) {
            timeout_ns = deadline - goro_nanotime();
            if (timeout_ns <= 0)
                break;
        }
        bridge_prepare_block();
        r = goro_select(cases, (int)nargs, timeout_ns);
        if (r != GORO_SELECT_INTERRUPTED)
            break;
        if (bridge_after_interrupt("a channel") < 0)
            goto done;
    }
    if (r <= GORO_SELECT_CLOSED_BASE) {
        PyErr_SetString(bridge_closed_channel_error, "send on closed channel");
        goto done;
    }
    if (r == GORO_SELECT_NONE) {
        result = Py_NewRef(select_none_result);
        goto done;
    }
    if (cases[r].dir == CASE_SEND) {
        slots[r].obj = NULL; /* the receiver owns it now */
        result = select_result(r, Py_None, true);
    } else {
        PyObject *v = NULL;
        if (cases[r].recv_ok) {
            v = elem_to_object(((CaseObject *)args[r])->chan->kind, &slots[r]);
            if (v == NULL) {
                slots[r].obj = NULL;
                goto done;
            }
        }
        slots[r].obj = NULL;
        result = select_result(r, v ? v : Py_None, cases[r].recv_ok);
        Py_XDECREF(v);
    }
done:
    for (Py_ssize_t k = 0; k < i && k < nargs; k++)
        if (cases[k].dir == CASE_SEND)
            Py_XDECREF(slots[k].obj);
    if (cases != stack_cases) {
        PyMem_Free(cases);
        PyMem_Free(slots);
    }
    return result;
}

static PyObject *core_set_view_types(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *s, *r;
    if (!PyArg_ParseTuple(args, "OO", &s, &r))
        return NULL;
    Py_XSETREF(send_view_type, Py_NewRef(s));
    Py_XSETREF(recv_view_type, Py_NewRef(r));
    Py_RETURN_NONE;
}

/* _close_many(chans): close every Chan of the list or tuple, in order, and
 * ready all their waiters as one batch (pygoro.context's cancel of a wide
 * tree: one global-queue lock and one wakep for all the woken goroutines
 * instead of one each). Stops at the first item that is not an open Chan of
 * objects, raising, after readying the waiters of those it did close. */
/* Prefetch distances of _close_many's pipeline, in channels: a close of a
 * cold channel takes ~150 ns, a miss ~100-200 ns here, so each stage runs
 * two closes ahead of the next. */
#define CLOSE_AHEAD_OBJ 6
#define CLOSE_AHEAD_CHAN 4
#define CLOSE_AHEAD_WAITER 2

static PyObject *core_close_many(PyObject *module, PyObject *arg)
{
    (void)module;
    PyObject *seq = PySequence_Fast(arg, "_close_many() needs a list or tuple of channels");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    struct g *glist = NULL;
    PyObject *result = Py_None;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* A software pipeline over the cold objects of the closes to come
         * (see chan_prefetch): the Chan object, then its channel, then the
         * sudog of its waiter, so that their misses overlap. */
        if (i + CLOSE_AHEAD_OBJ < n)
            __builtin_prefetch(items[i + CLOSE_AHEAD_OBJ]);
        if (i + CLOSE_AHEAD_CHAN < n && PyObject_TypeCheck(items[i + CLOSE_AHEAD_CHAN], &Chan_Type))
            chan_prefetch(((ChanObject *)items[i + CLOSE_AHEAD_CHAN])->c);
        if (i + CLOSE_AHEAD_WAITER < n &&
            PyObject_TypeCheck(items[i + CLOSE_AHEAD_WAITER], &Chan_Type))
            chan_prefetch_waiter(((ChanObject *)items[i + CLOSE_AHEAD_WAITER])->c);
        PyObject *o = items[i];
        if (!PyObject_TypeCheck(o, &Chan_Type)) {
            PyErr_Format(PyExc_TypeError, "_close_many() item %zd: expected a Chan, not %.100s",
                         i, Py_TYPE(o)->tp_name);
            result = NULL;
            break;
        }
        if (check_sendable((ChanObject *)o, "close of") < 0) {
            result = NULL;
            break;
        }
        if (chan_close_collect(((ChanObject *)o)->c, &glist) == GORO_CLOSED) {
            PyErr_SetString(bridge_closed_channel_error, "close of closed channel");
            result = NULL;
            break;
        }
    }
    go_ready_list(glist);
    Py_DECREF(seq);
    return Py_XNewRef(result);
}

static PyMethodDef chan_module_methods[] = {
    {"_set_view_types", core_set_view_types, METH_VARARGS, NULL},
    {"_close_many", core_close_many, METH_O, NULL},
    {"select", (PyCFunction)(void (*)(void))core_select, METH_FASTCALL | METH_KEYWORDS,
     "select(*cases, default=False, timeout=None) -> (index, value, ok)"},
    {NULL, NULL, 0, NULL},
};

int bridge_chan_init(PyObject *m)
{
    if (PyType_Ready(&Chan_Type) < 0 || PyType_Ready(&Case_Type) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Chan", (PyObject *)&Chan_Type) < 0 ||
        PyModule_AddObjectRef(m, "Case", (PyObject *)&Case_Type) < 0)
        return -1;
    bridge_closed_channel_error = PyErr_NewExceptionWithDoc(
        "pygoro.ClosedChannelError",
        "Send on a closed channel, or close of a closed channel (Go panics on both).",
        PyExc_RuntimeError, NULL);
    bridge_deadlock_error = PyErr_NewExceptionWithDoc(
        "pygoro.DeadlockError",
        "The caller would block forever: every goroutine is asleep and no timer or other "
        "thread can wake it (Go's 'all goroutines are asleep - deadlock!').",
        PyExc_RuntimeError, NULL);
    if (bridge_closed_channel_error == NULL || bridge_deadlock_error == NULL)
        return -1;
    if (PyModule_AddObjectRef(m, "ClosedChannelError", bridge_closed_channel_error) < 0 ||
        PyModule_AddObjectRef(m, "DeadlockError", bridge_deadlock_error) < 0)
        return -1;
    str_default = PyUnicode_InternFromString("default");
    str_timeout = PyUnicode_InternFromString("timeout");
    select_none_result = Py_BuildValue("(iOO)", GORO_SELECT_NONE, Py_None, Py_False);
    if (str_default == NULL || str_timeout == NULL || select_none_result == NULL)
        return -1;
    PyObject *threading = PyImport_ImportModule("threading");
    if (threading == NULL)
        return -1;
    threading_active_count = PyObject_GetAttrString(threading, "active_count");
    Py_DECREF(threading);
    if (threading_active_count == NULL)
        return -1;
    return PyModule_AddFunctions(m, chan_module_methods);
}

/* ---- for the other blocking types of the bridge (sync_extra_type.c) ---- */

goro_chan_t *bridge_chan_get(PyObject *o, int *kind)
{
    PyObject *view = NULL;
    if (!PyObject_TypeCheck(o, &Chan_Type)) {
        /* a SendChan/RecvChan view (pygoro._chan) wraps its Chan in _chan */
        int is_view = 0;
        if (recv_view_type != NULL && (is_view = PyObject_IsInstance(o, recv_view_type)) < 0)
            return NULL;
        if (!is_view && send_view_type != NULL &&
            (is_view = PyObject_IsInstance(o, send_view_type)) < 0)
            return NULL;
        if (!is_view) {
            PyErr_Format(PyExc_TypeError, "expected a channel, not %.100s", Py_TYPE(o)->tp_name);
            return NULL;
        }
        view = PyObject_GetAttrString(o, "_chan");
        if (view == NULL)
            return NULL;
        if (!PyObject_TypeCheck(view, &Chan_Type)) {
            Py_DECREF(view);
            PyErr_SetString(PyExc_TypeError, "channel view does not wrap a Chan");
            return NULL;
        }
        o = view;
    }
    ChanObject *ch = (ChanObject *)o;
    goro_chan_t *c = ch->c;
    *kind = ch->kind;
    Py_XDECREF(view); /* the view, which the caller holds, keeps the Chan alive */
    return c;
}
