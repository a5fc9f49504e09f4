/* The walk of pygoro.context's cancel (context.py, _CancelCtx._cancel): the
 * one loop of that package a wide fan-out runs once per child.
 *
 * Cancelling a parent with 1000 children is, per child: take its lock, set
 * its error and cause, detach its children, take its done channel (or mark
 * done() as closed for a context nobody asked yet), release the lock. In
 * Python that was about a third of a 1000-child cancel from a thread, all of
 * it on the canceller's thread with the GIL held while the woken goroutines
 * waited for the GIL; here the same steps are C calls on the same objects.
 *
 * It works on _CancelCtx's own attributes: __slots__, whose member
 * descriptors _cancel_walk_init resolves once, read and written with
 * PyMember_GetOne/SetOne (the same code as attribute access from Python,
 * atomic where the free-threaded build needs it). Under a context's lock
 * only slots change, and only from None (checked) or to None (the children
 * dict, whose reference we take): no object dies there, so no destructor
 * runs with the lock held. Lists grow after the unlock.
 *
 * Same order and semantics as the Python loop it replaces: an explicit
 * stack, one lock at a time; a leaf's done channel is taken under the lock
 * that sets its error; a context with children goes to `canceled`, whose
 * done channels the caller takes afterwards, descendants first. An
 * interrupted lock (Ctrl-C on the main thread) raises out of the walk with
 * what was canceled so far left canceled, as the Python loop did. */
#include "bridge.h"

#include <structmember.h>

static PyTypeObject *cancel_type; /* _CancelCtx */
static PyTypeObject *recv_type;   /* RecvChan */
static PyMemberDef *slot_mu, *slot_err, *slot_cause, *slot_children, *slot_done, *slot_chan;

static PyMemberDef *member_of(PyTypeObject *type, const char *name)
{
    PyObject *d = PyObject_GetAttrString((PyObject *)type, name);
    if (d == NULL)
        return NULL;
    PyMemberDef *m = NULL;
    if (Py_IS_TYPE(d, &PyMemberDescr_Type))
        m = ((PyMemberDescrObject *)d)->d_member;
    Py_DECREF(d); /* the type, which we keep, keeps its descriptor */
    if (m == NULL || m->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "_cancel_walk_init: %.100s.%s is not an object slot",
                     type->tp_name, name);
        return NULL;
    }
    return m;
}

/* _cancel_walk_init(cancel_type, recv_type): context.py at import. */
static PyObject *core_cancel_walk_init(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyType_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_cancel_walk_init(cancel_type, recv_type)");
        return NULL;
    }
    PyTypeObject *ct = (PyTypeObject *)args[0], *rt = (PyTypeObject *)args[1];
    PyMemberDef *mu = member_of(ct, "_mu"), *err = mu ? member_of(ct, "_err") : NULL,
                *cause = err ? member_of(ct, "_cause") : NULL,
                *children = cause ? member_of(ct, "_children") : NULL,
                *done = children ? member_of(ct, "_done") : NULL,
                *chan = done ? member_of(rt, "_chan") : NULL;
    if (chan == NULL)
        return NULL;
    Py_INCREF(ct);
    Py_INCREF(rt);
    Py_XSETREF(cancel_type, ct);
    Py_XSETREF(recv_type, rt);
    slot_mu = mu;
    slot_err = err;
    slot_cause = cause;
    slot_children = children;
    slot_done = done;
    slot_chan = chan;
    Py_RETURN_NONE;
}

static int set_slot(PyObject *o, PyMemberDef *m, PyObject *v)
{
    return PyMember_SetOne((char *)o, m, v);
}

/* Under c's lock: cancel c itself. *children gets its children (a new
 * reference: None or a dict); *done, for a leaf whose done() channel
 * exists, that RecvChan (a new reference). 2: canceled now, with children;
 * 1: canceled now, a leaf; 0: it was already; -1: error. */
static int cancel_one_locked(PyObject *c, PyObject *err, PyObject *cause, PyObject *closed,
                             PyObject **children, PyObject **done)
{
    PyObject *old = PyMember_GetOne((const char *)c, slot_err);
    if (old == NULL)
        return -1;
    bool canceled = old != Py_None;
    Py_DECREF(old);
    if (canceled)
        return 0;
    if (set_slot(c, slot_err, err) < 0 || set_slot(c, slot_cause, cause) < 0)
        return -1;
    PyObject *ch = PyMember_GetOne((const char *)c, slot_children);
    if (ch == NULL)
        return -1;
    if (set_slot(c, slot_children, Py_None) < 0) {
        Py_DECREF(ch);
        return -1;
    }
    *children = ch;
    bool leaf = ch == Py_None || (PyDict_CheckExact(ch) && PyDict_GET_SIZE(ch) == 0);
    if (!leaf)
        return 2;
    /* A leaf has no descendant to cancel first: take its done channel
     * under this same lock. */
    PyObject *d = PyMember_GetOne((const char *)c, slot_done);
    if (d == NULL)
        return -1;
    if (d == Py_None) {
        Py_DECREF(d);
        return set_slot(c, slot_done, closed) < 0 ? -1 : 1;
    }
    *done = d;
    return 1;
}

/* Push every child (the keys of a dict) onto todo. */
static int push_children(PyObject *todo, PyObject *children)
{
    if (PyDict_CheckExact(children)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(children, &pos, &k, &v))
            if (PyList_Append(todo, k) < 0)
                return -1;
        return 0;
    }
    PyObject *it = PyObject_GetIter(children), *k;
    if (it == NULL)
        return -1;
    while ((k = PyIter_Next(it)) != NULL) {
        int r = PyList_Append(todo, k);
        Py_DECREF(k);
        if (r < 0)
            break;
    }
    Py_DECREF(it);
    return PyErr_Occurred() ? -1 : 0;
}

/* _cancel_walk(todo, err, cause, closed, chans, canceled, hooked): pop
 * contexts off todo until it is empty, canceling each not yet canceled:
 * a leaf's done channel (the Chan inside its RecvChan) goes to chans; a
 * context with children goes to canceled and its children onto todo; a
 * canceled context of a subclass (with a _canceled hook) goes to hooked. */
static PyObject *core_cancel_walk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "_cancel_walk(todo, err, cause, closed, chans, canceled, hooked)");
        return NULL;
    }
    PyObject *todo = args[0], *err = args[1], *cause = args[2], *closed = args[3];
    PyObject *chans = args[4], *canceled = args[5], *hooked = args[6];
    if (!PyList_CheckExact(todo) || !PyList_CheckExact(chans) || !PyList_CheckExact(canceled) ||
        !PyList_CheckExact(hooked)) {
        PyErr_SetString(PyExc_TypeError, "_cancel_walk: todo, chans, canceled, hooked are lists");
        return NULL;
    }
    if (cancel_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_cancel_walk before _cancel_walk_init");
        return NULL;
    }
    while (PyList_GET_SIZE(todo) > 0) {
        Py_ssize_t n = PyList_GET_SIZE(todo);
        PyObject *c = Py_NewRef(PyList_GET_ITEM(todo, n - 1));
        if (PyList_SetSlice(todo, n - 1, n, NULL) < 0) {
            Py_DECREF(c);
            return NULL;
        }
        if (!PyObject_TypeCheck(c, cancel_type)) {
            PyErr_Format(PyExc_TypeError, "_cancel_walk: %.100s is not a cancelable context",
                         Py_TYPE(c)->tp_name);
            Py_DECREF(c);
            return NULL;
        }
        PyObject *mu_obj = PyMember_GetOne((const char *)c, slot_mu);
        goro_mutex_t *mu = mu_obj != NULL ? bridge_mutex_of(mu_obj) : NULL;
        if (mu == NULL) {
            if (mu_obj != NULL)
                PyErr_SetString(PyExc_TypeError, "_cancel_walk: a context's _mu is not a Mutex");
            Py_XDECREF(mu_obj);
            Py_DECREF(c);
            return NULL;
        }
        if (bridge_mutex_lock(mu) < 0) {
            Py_DECREF(mu_obj);
            Py_DECREF(c);
            return NULL;
        }
        PyObject *children = NULL, *done = NULL;
        int r = cancel_one_locked(c, err, cause, closed, &children, &done);
        (void)bridge_mutex_unlock(mu); /* ours: cannot fail */
        Py_DECREF(mu_obj);
        if (r == 2) {
            if (PyList_Append(canceled, c) < 0 || push_children(todo, children) < 0)
                r = -1;
        } else if (r == 1) {
            if (done != NULL) {
                PyObject *chan = PyObject_TypeCheck(done, recv_type)
                                     ? PyMember_GetOne((const char *)done, slot_chan)
                                     : NULL;
                if (chan == NULL && !PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError,
                                    "_cancel_walk: a context's _done is not a RecvChan");
                if (chan == NULL || PyList_Append(chans, chan) < 0)
                    r = -1;
                Py_XDECREF(chan);
            }
            if (r > 0 && Py_TYPE(c) != cancel_type && PyList_Append(hooked, c) < 0)
                r = -1;
        }
        Py_XDECREF(children);
        Py_XDECREF(done);
        Py_DECREF(c);
        if (r < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef context_methods[] = {
    {"_cancel_walk_init", (PyCFunction)(void (*)(void))core_cancel_walk_init, METH_FASTCALL,
     NULL},
    {"_cancel_walk", (PyCFunction)(void (*)(void))core_cancel_walk, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

int bridge_context_init(PyObject *module)
{
    return PyModule_AddFunctions(module, context_methods);
}
