/* pygoro.sync's extension types: Mutex, RWMutex (and its RLocker), RLock,
 * WaitGroup, Once and Cond, over the C primitives of csrc/sync/.
 *
 * Fast paths run with the GIL held and cost one atomic operation (a CAS to
 * lock, a CAS to unlock, a load for a done Once). Only when a caller must
 * wait does it enter the runtime, which parks a goroutine (the runtime's
 * hooks detach its thread state, so the GIL is free while it is parked and
 * it may resume on another M) or puts a plain thread to sleep with the GIL
 * released.
 *
 * No spinning: a Python caller that finds a Mutex locked goes straight to
 * the semaphore (mutex_lock_ex with spin=false). Go spins because the holder
 * is probably running on another CPU and about to unlock; a Python holder
 * needs the GIL to get to its unlock, and a spinner holding the GIL only
 * delays it.
 *
 * The main thread. Its waits are interruptible (bridge_prepare_block): a
 * signal ends the wait with GORO_INTERRUPTED, the caller withdrawn cleanly
 * (not holding the lock, no longer counted as a waiter, no wakeup lost; see
 * csrc/sync/sema.c and mutex.c), and bridge_after_interrupt runs the signal
 * handlers (Ctrl-C raises KeyboardInterrupt) or raises DeadlockError when
 * nothing left could ever wake it; otherwise the wait starts again. Read
 * locks of an RWMutex are the exception: a queued reader cannot withdraw
 * exactly (rwmutex.c), so the main thread polls with try_rlock and an
 * interruptible sleep that backs off to RLOCK_POLL_MAX_NS, checking for
 * deadlock at that rate.
 *
 * Ownership. Go's Mutex, RWMutex and WaitGroup are not owned: any goroutine
 * may unlock. RLock is: its owner is the current goroutine's id, or the OS
 * thread on a plain thread (owner_key), which, unlike threading.RLock's
 * thread id, stays the same when a goroutine parks and resumes on another M.
 *
 * Misuse raises RuntimeError with the state left intact (the C functions
 * check before they change anything): Go's fatal errors.
 */
#include "bridge.h"
#include "compat.h"
#include "../sync/sema.h"

/* How long the main thread sleeps between try_rlock attempts, at most. */
#define RLOCK_POLL_MAX_NS (2 * 1000 * 1000)
#define RLOCK_POLL_MIN_NS (20 * 1000)

/* ---- blocking helpers ---- */

/* Lock m from any caller, the GIL held. 0, or -1 with an exception. */
static int lock_mutex(goro_mutex_t *m, enum wait_reason reason, const char *what)
{
    if (likely(mutex_trylock_fast(m)))
        return 0;
    for (;;) {
        bridge_prepare_block();
        if (mutex_lock_ex(m, reason, false, true) == GORO_OK)
            return 0;
        if (bridge_after_interrupt(what) < 0)
            return -1;
    }
}

static int unlock_mutex(goro_mutex_t *m, const char *msg)
{
    if (goro_mutex_unlock(m) == GORO_OK)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, msg);
    return -1;
}

static int lock_rw_write(goro_rwmutex_t *rw)
{
    if (goro_rwmutex_trylock(rw))
        return 0;
    for (;;) {
        bridge_prepare_block();
        if (rwmutex_lock_ex(rw, false, true) == GORO_OK)
            return 0;
        if (bridge_after_interrupt("an RWMutex") < 0)
            return -1;
    }
}

static int lock_rw_read(goro_rwmutex_t *rw)
{
    if (goro_rwmutex_tryrlock(rw))
        return 0;
    bridge_prepare_block();
    if (in_goroutine() || !thread_is_interruptible()) {
        goro_rwmutex_rlock(rw); /* parks or sleeps with the GIL released */
        return 0;
    }
    /* The main thread: poll, see the top. Writer preference still holds:
     * try_rlock fails while a writer waits. */
    int64_t ns = RLOCK_POLL_MIN_NS;
    while (!goro_rwmutex_tryrlock(rw)) {
        bridge_prepare_block();
        (void)goro_sleep(ns);
        /* Whether or not the sleep was cut short: a signal that arrived
         * while we were awake between sleeps is only seen here. */
        if (bridge_handle_interrupt() < 0)
            return -1;
        if (ns < RLOCK_POLL_MAX_NS) {
            ns *= 2;
            continue;
        }
        /* Polling at the slowest rate: also check for deadlock, as a
         * blocked wait does at its idle ticks (the writer is parked for
         * good and no other thread exists). */
        if (goro_runtime_idle() && bridge_after_interrupt("an RWMutex") < 0)
            return -1;
    }
    return 0;
}

static int unlock_rw_write(goro_rwmutex_t *rw)
{
    if (goro_rwmutex_unlock(rw) == GORO_OK)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "unlock of unlocked RWMutex");
    return -1;
}

static int unlock_rw_read(goro_rwmutex_t *rw)
{
    if (goro_rwmutex_runlock(rw) == GORO_OK)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "runlock of RWMutex not read-locked");
    return -1;
}

/* The constructors take no arguments. */
static int no_arguments(const char *name, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) == 0 && (kwds == NULL || PyDict_GET_SIZE(kwds) == 0))
        return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
    return -1;
}

/* tp_dealloc of Mutex, RWMutex, RLock, WaitGroup and Once: they hold no
 * references and their C state needs no teardown (nobody can be waiting:
 * a waiter holds a reference), so only the weakref list is left to clear.
 * (Unconditionally, as CPython's subtype_dealloc does: it returns at once
 * when there are none.) */
static void weakrefable_dealloc(PyObject *self)
{
    PyObject_ClearWeakRefs(self);
    Py_TYPE(self)->tp_free(self);
}

/* ======================================================================== */
/* Mutex                                                                     */

typedef struct {
    PyObject_HEAD
    goro_mutex_t mu;
    PyObject *weakreflist;
} MutexObject;

static PyTypeObject Mutex_Type;

static PyObject *Mutex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("Mutex", args, kwds) < 0)
        return NULL;
    MutexObject *self = (MutexObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    atomic_init(&self->mu.state, 0);
    atomic_init(&self->mu.sema, 0);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

goro_mutex_t *bridge_mutex_of(PyObject *o)
{
    return PyObject_TypeCheck(o, &Mutex_Type) ? &((MutexObject *)o)->mu : NULL;
}

int bridge_mutex_lock(goro_mutex_t *m)
{
    return lock_mutex(m, WAIT_MUTEX, "a Mutex");
}

int bridge_mutex_unlock(goro_mutex_t *m)
{
    return unlock_mutex(m, "unlock of unlocked Mutex");
}

static PyObject *Mutex_lock(MutexObject *self, PyObject *unused)
{
    (void)unused;
    if (lock_mutex(&self->mu, WAIT_MUTEX, "a Mutex") < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Mutex_unlock(MutexObject *self, PyObject *unused)
{
    (void)unused;
    if (unlock_mutex(&self->mu, "unlock of unlocked Mutex") < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Mutex_try_lock(MutexObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(goro_mutex_trylock(&self->mu));
}

static PyObject *Mutex_locked(MutexObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(atomic_load_explicit(&self->mu.state, memory_order_relaxed) &
                           MUTEX_LOCKED);
}

static PyObject *Mutex_exit(MutexObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return Mutex_unlock(self, NULL);
}

static PyObject *Mutex_state(MutexObject *self, PyObject *unused)
{
    (void)unused;
    int32_t s = atomic_load(&self->mu.state);
    return Py_BuildValue("{s:O,s:O,s:O,s:i,s:i}", "locked", (s & MUTEX_LOCKED) ? Py_True : Py_False,
                         "woken", (s & MUTEX_WOKEN) ? Py_True : Py_False, "starving",
                         (s & MUTEX_STARVING) ? Py_True : Py_False, "waiters",
                         (int)((uint32_t)s >> MUTEX_WAITER_SHIFT), "queued",
                         sema_nwaiters(&self->mu.sema));
}

static PyObject *Mutex_repr(MutexObject *self)
{
    int32_t s = atomic_load_explicit(&self->mu.state, memory_order_relaxed);
    return PyUnicode_FromFormat("<%s %s>", Py_TYPE(self)->tp_name,
                                (s & MUTEX_LOCKED) ? "locked" : "unlocked");
}

static PyMethodDef Mutex_methods[] = {
    {"lock", (PyCFunction)Mutex_lock, METH_NOARGS,
     "lock(): lock the Mutex, waiting while another holder has it."},
    {"unlock", (PyCFunction)Mutex_unlock, METH_NOARGS,
     "unlock(): unlock; RuntimeError if it is not locked. Any goroutine may unlock."},
    {"try_lock", (PyCFunction)Mutex_try_lock, METH_NOARGS,
     "try_lock() -> bool: lock if free, without waiting."},
    {"locked", (PyCFunction)Mutex_locked, METH_NOARGS, "locked() -> bool: is it locked now?"},
    {"__enter__", (PyCFunction)Mutex_lock, METH_NOARGS, "lock()"},
    {"__exit__", (PyCFunction)(void (*)(void))Mutex_exit, METH_FASTCALL, "unlock()"},
    {"_state", (PyCFunction)Mutex_state, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Mutex_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.Mutex",
    .tp_basicsize = sizeof(MutexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Mutex()\n--\n\nGo's sync.Mutex: a mutual exclusion lock, not owned by the "
              "goroutine that locked it.\nNormal mode lets a running locker barge ahead of "
              "woken waiters (throughput); a waiter\nthat waited over 1 ms switches it to "
              "starvation mode (FIFO handoff). Usable as a\nwith statement.",
    .tp_new = Mutex_new,
    .tp_dealloc = weakrefable_dealloc,
    .tp_repr = (reprfunc)Mutex_repr,
    .tp_methods = Mutex_methods,
    .tp_weaklistoffset = offsetof(MutexObject, weakreflist),
};

/* ======================================================================== */
/* RWMutex and its RLocker                                                   */

typedef struct {
    PyObject_HEAD
    goro_rwmutex_t rw;
    PyObject *weakreflist;
} RWMutexObject;

typedef struct {
    PyObject_HEAD
    RWMutexObject *rw;
} RLockerObject;

static PyTypeObject RWMutex_Type;
static PyTypeObject RLocker_Type;

static PyObject *RWMutex_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("RWMutex", args, kwds) < 0)
        return NULL;
    RWMutexObject *self = (RWMutexObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    memset(&self->rw, 0, sizeof self->rw);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static PyObject *RWMutex_lock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    if (lock_rw_write(&self->rw) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *RWMutex_unlock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    if (unlock_rw_write(&self->rw) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *RWMutex_exit(RWMutexObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return RWMutex_unlock(self, NULL);
}

static PyObject *RWMutex_rlock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    if (lock_rw_read(&self->rw) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *RWMutex_runlock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    if (unlock_rw_read(&self->rw) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *RWMutex_try_lock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(goro_rwmutex_trylock(&self->rw));
}

static PyObject *RWMutex_try_rlock(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(goro_rwmutex_tryrlock(&self->rw));
}

static PyObject *RWMutex_rlocker(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    RLockerObject *r = PyObject_New(RLockerObject, &RLocker_Type);
    if (r == NULL)
        return NULL;
    r->rw = (RWMutexObject *)Py_NewRef(self);
    return (PyObject *)r;
}

/* Readers counted (holding or queued), and the readers a pending writer
 * still waits for; readers < 0 while a writer is pending or active. */
static void rw_split(goro_rwmutex_t *rw, int32_t *count, uint32_t *wait)
{
    uint64_t s = atomic_load(&rw->readers);
    *count = (int32_t)(uint32_t)(s >> 32);
    *wait = (uint32_t)s;
}

static PyObject *RWMutex_state(RWMutexObject *self, PyObject *unused)
{
    (void)unused;
    int32_t count;
    uint32_t wait;
    rw_split(&self->rw, &count, &wait);
    int32_t w = atomic_load(&self->rw.w.state);
    return Py_BuildValue("{s:i,s:I,s:i,s:I,s:I}", "reader_count", count, "reader_wait", wait,
                         "w_state", w, "reader_sem", atomic_load(&self->rw.reader_sem),
                         "writer_sem", atomic_load(&self->rw.writer_sem));
}

static PyMethodDef RWMutex_methods[] = {
    {"lock", (PyCFunction)RWMutex_lock, METH_NOARGS,
     "lock(): lock for writing: wait until no reader or writer holds it. New readers wait "
     "behind a waiting writer."},
    {"unlock", (PyCFunction)RWMutex_unlock, METH_NOARGS,
     "unlock(): release the write lock; RuntimeError if not write-locked."},
    {"rlock", (PyCFunction)RWMutex_rlock, METH_NOARGS,
     "rlock(): lock for reading; readers share the lock."},
    {"runlock", (PyCFunction)RWMutex_runlock, METH_NOARGS,
     "runlock(): release one read lock; RuntimeError if not read-locked."},
    {"try_lock", (PyCFunction)RWMutex_try_lock, METH_NOARGS,
     "try_lock() -> bool: write-lock if free, without waiting."},
    {"try_rlock", (PyCFunction)RWMutex_try_rlock, METH_NOARGS,
     "try_rlock() -> bool: read-lock if no writer holds or waits for it."},
    {"rlocker", (PyCFunction)RWMutex_rlocker, METH_NOARGS,
     "rlocker() -> Locker whose lock/unlock are rlock/runlock (Go's RLocker)."},
    {"__enter__", (PyCFunction)RWMutex_lock, METH_NOARGS, "lock()"},
    {"__exit__", (PyCFunction)(void (*)(void))RWMutex_exit, METH_FASTCALL, "unlock()"},
    {"_state", (PyCFunction)RWMutex_state, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RWMutex_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.RWMutex",
    .tp_basicsize = sizeof(RWMutexObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RWMutex()\n--\n\nGo's sync.RWMutex: many readers or one writer, "
              "writer-preferring. A with statement\ntakes the write lock; "
              "with rw.rlocker(): takes a read lock.",
    .tp_new = RWMutex_new,
    .tp_dealloc = weakrefable_dealloc,
    .tp_methods = RWMutex_methods,
    .tp_weaklistoffset = offsetof(RWMutexObject, weakreflist),
};

static void RLocker_dealloc(RLockerObject *self)
{
    Py_DECREF(self->rw);
    PyObject_Free(self);
}

static PyObject *RLocker_lock(RLockerObject *self, PyObject *unused)
{
    return RWMutex_rlock(self->rw, unused);
}

static PyObject *RLocker_unlock(RLockerObject *self, PyObject *unused)
{
    return RWMutex_runlock(self->rw, unused);
}

static PyObject *RLocker_exit(RLockerObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return RWMutex_runlock(self->rw, NULL);
}

static PyMethodDef RLocker_methods[] = {
    {"lock", (PyCFunction)RLocker_lock, METH_NOARGS, "rlock() the RWMutex."},
    {"unlock", (PyCFunction)RLocker_unlock, METH_NOARGS, "runlock() the RWMutex."},
    {"__enter__", (PyCFunction)RLocker_lock, METH_NOARGS, "rlock()"},
    {"__exit__", (PyCFunction)(void (*)(void))RLocker_exit, METH_FASTCALL, "runlock()"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RLocker_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.RLocker",
    .tp_basicsize = sizeof(RLockerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The read side of an RWMutex as a Locker (RWMutex.rlocker()).",
    .tp_dealloc = (destructor)RLocker_dealloc,
    .tp_methods = RLocker_methods,
};

/* ======================================================================== */
/* RLock                                                                     */

typedef struct {
    PyObject_HEAD
    goro_mutex_t mu;
    /* owner_key() of the holder, 0 if none. Written only by the holder
     * (after locking mu, before unlocking it); read by anyone asking "is
     * it mine?", who can only see its own key there if it wrote it. */
    _Atomic uint64_t owner;
    uint64_t count; /* recursion depth; only the owner touches it */
    PyObject *weakreflist;
} RLockObject;

static PyTypeObject RLock_Type;

/* Who is calling: the goroutine (its id, which it keeps across parks and
 * Ms), or on a plain thread the OS thread (tagged with the top bit, which
 * goroutine ids never reach). */
static uint64_t owner_key(void)
{
    uint64_t id = goro_goid();
    if (id != 0)
        return id;
    return (uint64_t)PyThread_get_thread_ident() | ((uint64_t)1 << 63);
}

static PyObject *RLock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("RLock", args, kwds) < 0)
        return NULL;
    RLockObject *self = (RLockObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    atomic_init(&self->mu.state, 0);
    atomic_init(&self->mu.sema, 0);
    atomic_init(&self->owner, 0);
    self->count = 0;
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static inline bool rlock_is_mine(RLockObject *self, uint64_t me)
{
    return atomic_load_explicit(&self->owner, memory_order_relaxed) == me;
}

static PyObject *RLock_lock(RLockObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t me = owner_key();
    if (rlock_is_mine(self, me)) {
        self->count++;
        Py_RETURN_NONE;
    }
    if (lock_mutex(&self->mu, WAIT_MUTEX, "an RLock") < 0)
        return NULL;
    atomic_store_explicit(&self->owner, me, memory_order_relaxed);
    self->count = 1;
    Py_RETURN_NONE;
}

static PyObject *RLock_try_lock(RLockObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t me = owner_key();
    if (rlock_is_mine(self, me)) {
        self->count++;
        Py_RETURN_TRUE;
    }
    if (!goro_mutex_trylock(&self->mu))
        Py_RETURN_FALSE;
    atomic_store_explicit(&self->owner, me, memory_order_relaxed);
    self->count = 1;
    Py_RETURN_TRUE;
}

static PyObject *RLock_unlock(RLockObject *self, PyObject *unused)
{
    (void)unused;
    if (!rlock_is_mine(self, owner_key())) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot release un-acquired RLock (it is not held by this goroutine "
                        "or thread)");
        return NULL;
    }
    if (--self->count == 0) {
        atomic_store_explicit(&self->owner, 0, memory_order_relaxed);
        if (unlock_mutex(&self->mu, "RLock: inner Mutex not locked") < 0)
            return NULL;
    }
    Py_RETURN_NONE;
}

/* threading.RLock's spelling, for code written against it: acquire()
 * waits, acquire(False) is try_lock(). No timeout. */
static PyObject *RLock_acquire(RLockObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"blocking", NULL};
    int blocking = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|p:acquire", kwlist, &blocking))
        return NULL;
    if (!blocking)
        return RLock_try_lock(self, NULL);
    PyObject *r = RLock_lock(self, NULL);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

static PyObject *RLock_exit(RLockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    return RLock_unlock(self, NULL);
}

static PyObject *RLock_is_owned(RLockObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(rlock_is_mine(self, owner_key()));
}

static PyObject *RLock_repr(RLockObject *self)
{
    uint64_t owner = atomic_load_explicit(&self->owner, memory_order_relaxed);
    if (owner == 0)
        return PyUnicode_FromFormat("<%s unlocked>", Py_TYPE(self)->tp_name);
    if (owner >> 63)
        return PyUnicode_FromFormat("<%s locked by thread %lu, count %llu>",
                                    Py_TYPE(self)->tp_name,
                                    (unsigned long)(owner & ~((uint64_t)1 << 63)),
                                    (unsigned long long)self->count);
    return PyUnicode_FromFormat("<%s locked by goroutine %llu, count %llu>", Py_TYPE(self)->tp_name,
                                (unsigned long long)owner, (unsigned long long)self->count);
}

static PyMethodDef RLock_methods[] = {
    {"lock", (PyCFunction)RLock_lock, METH_NOARGS,
     "lock(): take the lock, or take it once more if the calling goroutine (or plain "
     "thread) holds it."},
    {"unlock", (PyCFunction)RLock_unlock, METH_NOARGS,
     "unlock(): undo one lock(); RuntimeError if the caller does not hold it."},
    {"try_lock", (PyCFunction)RLock_try_lock, METH_NOARGS,
     "try_lock() -> bool: lock() without waiting."},
    {"acquire", (PyCFunction)(void (*)(void))RLock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True) -> bool: threading.RLock's name for lock() (try_lock() when "
     "not blocking)."},
    {"release", (PyCFunction)RLock_unlock, METH_NOARGS,
     "release(): threading.RLock's name for unlock()."},
    {"is_owned", (PyCFunction)RLock_is_owned, METH_NOARGS,
     "is_owned() -> bool: does the calling goroutine (or plain thread) hold it?"},
    {"__enter__", (PyCFunction)RLock_lock, METH_NOARGS, "lock()"},
    {"__exit__", (PyCFunction)(void (*)(void))RLock_exit, METH_FASTCALL, "unlock()"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RLock_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.RLock",
    .tp_basicsize = sizeof(RLockObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "RLock()\n--\n\nA reentrant lock owned by a goroutine (on a plain thread: by "
              "the thread). Unlike\nthreading.RLock it stays owned when its goroutine parks and "
              "resumes on another OS\nthread. Go has no such lock; it is here for Python code "
              "written for threading.RLock.",
    .tp_new = RLock_new,
    .tp_dealloc = weakrefable_dealloc,
    .tp_repr = (reprfunc)RLock_repr,
    .tp_methods = RLock_methods,
    .tp_weaklistoffset = offsetof(RLockObject, weakreflist),
};

/* ======================================================================== */
/* WaitGroup                                                                 */

typedef struct {
    PyObject_HEAD
    goro_waitgroup_t wg;
    PyObject *weakreflist;
} WaitGroupObject;

static PyTypeObject WaitGroup_Type;

static PyObject *WaitGroup_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("WaitGroup", args, kwds) < 0)
        return NULL;
    WaitGroupObject *self = (WaitGroupObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    atomic_init(&self->wg.state, 0);
    atomic_init(&self->wg.sema, 0);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

static int wg_add(WaitGroupObject *self, int64_t delta)
{
    switch (goro_waitgroup_add(&self->wg, delta)) {
    case GORO_OK:
        return 0;
    case GORO_EMISUSE:
        PyErr_SetString(PyExc_RuntimeError, "sync: negative WaitGroup counter");
        return -1;
    default:
        PyErr_SetString(PyExc_OverflowError, "sync: WaitGroup counter overflows 2**31-1");
        return -1;
    }
}

static PyObject *WaitGroup_add(WaitGroupObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "add() takes at most 1 argument (%zd given)", nargs);
        return NULL;
    }
    int64_t delta = 1;
    if (nargs == 1) {
        if (!PyLong_Check(args[0]) || PyBool_Check(args[0])) {
            PyErr_Format(PyExc_TypeError, "WaitGroup.add() delta must be an int, not %.100s",
                         Py_TYPE(args[0])->tp_name);
            return NULL;
        }
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(args[0], &overflow);
        if (v == -1 && PyErr_Occurred())
            return NULL;
        if (overflow) /* beyond int64: as far out of range as any */
            v = overflow < 0 ? INT64_MIN : INT64_MAX;
        delta = v;
    }
    if (wg_add(self, delta) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *WaitGroup_done(WaitGroupObject *self, PyObject *unused)
{
    (void)unused;
    if (wg_add(self, -1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *WaitGroup_wait(WaitGroupObject *self, PyObject *unused)
{
    (void)unused;
    if ((atomic_load_explicit(&self->wg.state, memory_order_acquire) >> 32) == 0)
        Py_RETURN_NONE;
    int r;
    for (;;) {
        bridge_prepare_block();
        r = waitgroup_wait_ex(&self->wg, true);
        if (r != GORO_INTERRUPTED)
            break;
        if (bridge_after_interrupt("a WaitGroup") < 0)
            return NULL;
    }
    if (r == GORO_EMISUSE) {
        PyErr_SetString(PyExc_RuntimeError,
                        "sync: WaitGroup is reused before previous wait has returned");
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *WaitGroup_state(WaitGroupObject *self, PyObject *unused)
{
    (void)unused;
    uint64_t s = atomic_load(&self->wg.state);
    return Py_BuildValue("{s:i,s:I,s:i}", "counter", (int)(int32_t)(uint32_t)(s >> 32),
                         "waiters", (unsigned)(uint32_t)s, "queued",
                         sema_nwaiters(&self->wg.sema));
}

static PyMethodDef WaitGroup_methods[] = {
    {"add", (PyCFunction)(void (*)(void))WaitGroup_add, METH_FASTCALL,
     "add(delta=1): add delta (may be negative) to the counter; RuntimeError if it would "
     "go negative."},
    {"done", (PyCFunction)WaitGroup_done, METH_NOARGS, "done(): add(-1)."},
    {"wait", (PyCFunction)WaitGroup_wait, METH_NOARGS,
     "wait(): wait until the counter is zero. RuntimeError if the WaitGroup is reused (a "
     "new add() from zero) before this wait returned."},
    {"_state", (PyCFunction)WaitGroup_state, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject WaitGroup_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro._core.WaitGroup",
    .tp_basicsize = sizeof(WaitGroupObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Go's sync.WaitGroup: wait for a collection of goroutines to finish "
              "(pygoro.sync.WaitGroup adds go()).",
    .tp_new = WaitGroup_new,
    .tp_dealloc = weakrefable_dealloc,
    .tp_methods = WaitGroup_methods,
    .tp_weaklistoffset = offsetof(WaitGroupObject, weakreflist),
};

/* ======================================================================== */
/* Once                                                                      */

typedef struct {
    PyObject_HEAD
    goro_once_t o;
    PyObject *weakreflist;
} OnceObject;

static PyTypeObject Once_Type;

static PyObject *Once_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (no_arguments("Once", args, kwds) < 0)
        return NULL;
    OnceObject *self = (OnceObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    memset(&self->o, 0, sizeof self->o);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

/* goro_once_do's algorithm (once.c) with a Python fn: the fast path is one
 * acquire load; the first caller runs fn holding o.m, the others wait on
 * o.m and return after it has finished. An exception from fn propagates
 * to the caller that ran it, and the Once is done anyway (Go's deferred
 * done.Store(1)). */
static PyObject *Once_do(OnceObject *self, PyObject *fn)
{
    if (likely(atomic_load_explicit(&self->o.done, memory_order_acquire) != 0))
        Py_RETURN_NONE;
    if (!PyCallable_Check(fn)) {
        PyErr_Format(PyExc_TypeError, "Once.do() argument must be callable, not %.100s",
                     Py_TYPE(fn)->tp_name);
        return NULL;
    }
    if (lock_mutex(&self->o.m, WAIT_ONCE, "a Once") < 0)
        return NULL;
    PyObject *r = NULL;
    if (atomic_load_explicit(&self->o.done, memory_order_relaxed) == 0) {
        r = PyObject_CallNoArgs(fn);
        atomic_store_explicit(&self->o.done, 1, memory_order_release);
    } else {
        r = Py_NewRef(Py_None);
    }
    /* cannot fail: we hold o.m */
    (void)goro_mutex_unlock(&self->o.m);
    if (r == NULL)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_NONE;
}

static PyObject *Once_done(OnceObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(atomic_load_explicit(&self->o.done, memory_order_acquire) != 0);
}

static PyMethodDef Once_methods[] = {
    {"do", (PyCFunction)Once_do, METH_O,
     "do(fn): call fn() if no do() of this Once has; every caller returns after that one "
     "call has finished. If fn raises, the exception reaches its caller and the Once is "
     "still done."},
    {"done", (PyCFunction)Once_done, METH_NOARGS, "done() -> bool: has fn run?"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject Once_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.Once",
    .tp_basicsize = sizeof(OnceObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Once()\n--\n\nGo's sync.Once: perform one action exactly once.",
    .tp_new = Once_new,
    .tp_dealloc = weakrefable_dealloc,
    .tp_methods = Once_methods,
    .tp_weaklistoffset = offsetof(OnceObject, weakreflist),
};

/* ======================================================================== */
/* Cond                                                                      */

/* What Cond's L is: our own lock types are unlocked and relocked directly;
 * anything else with lock() and unlock() methods through those methods. */
enum cond_kind { COND_MUTEX, COND_RWMUTEX, COND_RLOCKER, COND_RLOCK, COND_GENERIC };

typedef struct {
    PyObject_HEAD
    PyObject *L;
    int kind;
    struct notify_list nl;
    PyObject *weakreflist;
} CondObject;

static PyTypeObject Cond_Type;

static PyObject *Cond_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"L", NULL};
    PyObject *l;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Cond", kwlist, &l))
        return NULL;
    int kind;
    if (PyObject_TypeCheck(l, &Mutex_Type))
        kind = COND_MUTEX;
    else if (PyObject_TypeCheck(l, &RWMutex_Type))
        kind = COND_RWMUTEX;
    else if (Py_IS_TYPE(l, &RLocker_Type))
        kind = COND_RLOCKER;
    else if (PyObject_TypeCheck(l, &RLock_Type))
        kind = COND_RLOCK;
    else {
        int ok = PyObject_HasAttrString(l, "lock") && PyObject_HasAttrString(l, "unlock");
        if (!ok) {
            PyErr_Format(PyExc_TypeError,
                         "Cond() needs a Locker (Mutex, RWMutex, RLock, rlocker(), or an object "
                         "with lock() and unlock()), not %.100s",
                         Py_TYPE(l)->tp_name);
            return NULL;
        }
        kind = COND_GENERIC;
    }
    CondObject *self = (CondObject *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->L = Py_NewRef(l);
    self->kind = kind;
    memset(&self->nl, 0, sizeof self->nl);
    self->weakreflist = NULL;
    return (PyObject *)self;
}

/* GC: a Locker of the user's own may refer back to its Cond. */
static int Cond_traverse(CondObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->L);
    return 0;
}

static int Cond_clear(CondObject *self)
{
    Py_CLEAR(self->L);
    return 0;
}

static void Cond_dealloc(CondObject *self)
{
    /* Nobody waits: a waiter holds a reference to us. */
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL)
        PyObject_ClearWeakRefs((PyObject *)self);
    notify_list_destroy(&self->nl);
    Py_CLEAR(self->L);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Cond_get_L(CondObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->L != NULL ? self->L : Py_None);
}

/* L is cleared only by the GC breaking a cycle; nothing can use the Cond
 * after that, but be safe. */
static int cond_check_L(CondObject *self)
{
    if (self->L != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Cond has no lock (cleared by the garbage collector)");
    return -1;
}

/* Release L for wait. RLock: all the way, whatever the depth, remembered in
 * *depth. -1 with an exception if the caller cannot have held it. */
static int cond_unlock_L(CondObject *self, uint64_t *depth)
{
    switch (self->kind) {
    case COND_MUTEX: {
        goro_mutex_t *m = &((MutexObject *)self->L)->mu;
        return unlock_mutex(m, "Cond.wait() with its Mutex unlocked");
    }
    case COND_RWMUTEX:
        return unlock_rw_write(&((RWMutexObject *)self->L)->rw);
    case COND_RLOCKER:
        return unlock_rw_read(&((RLockerObject *)self->L)->rw->rw);
    case COND_RLOCK: {
        RLockObject *rl = (RLockObject *)self->L;
        if (!rlock_is_mine(rl, owner_key())) {
            PyErr_SetString(PyExc_RuntimeError, "Cond.wait() with its RLock not held");
            return -1;
        }
        *depth = rl->count;
        rl->count = 0;
        atomic_store_explicit(&rl->owner, 0, memory_order_relaxed);
        return unlock_mutex(&rl->mu, "RLock: inner Mutex not locked");
    }
    default: {
        PyObject *r = PyObject_CallMethod(self->L, "unlock", NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        return 0;
    }
    }
}

/* Take L again after a wait. */
static int cond_relock_L(CondObject *self, uint64_t depth)
{
    switch (self->kind) {
    case COND_MUTEX:
        return lock_mutex(&((MutexObject *)self->L)->mu, WAIT_MUTEX, "a Mutex");
    case COND_RWMUTEX:
        return lock_rw_write(&((RWMutexObject *)self->L)->rw);
    case COND_RLOCKER:
        return lock_rw_read(&((RLockerObject *)self->L)->rw->rw);
    case COND_RLOCK: {
        RLockObject *rl = (RLockObject *)self->L;
        if (lock_mutex(&rl->mu, WAIT_MUTEX, "an RLock") < 0)
            return -1;
        atomic_store_explicit(&rl->owner, owner_key(), memory_order_relaxed);
        rl->count = depth;
        return 0;
    }
    default: {
        PyObject *r = PyObject_CallMethod(self->L, "lock", NULL);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
        return 0;
    }
    }
}

/* Relock L whatever happens: wait() must return (or raise) with L held, as
 * the with statement around it will unlock it. An exception raised while
 * relocking (Ctrl-C) is kept and the relock goes on; the first is
 * returned, set, as -1. */
static int cond_relock_always(CondObject *self, uint64_t depth)
{
    PyObject *exc = compat_fetch_exception(); /* from the wait, or NULL */
    for (;;) {
        if (cond_relock_L(self, depth) == 0)
            break;
        PyObject *e = compat_fetch_exception();
        if (exc == NULL)
            exc = e;
        else
            Py_XDECREF(e);
        if (self->kind == COND_GENERIC)
            break; /* its lock() raised: nothing we can retry meaningfully */
    }
    if (exc != NULL) {
        compat_restore_exception(exc);
        return -1;
    }
    return 0;
}

static PyObject *Cond_wait(CondObject *self, PyObject *unused)
{
    (void)unused;
    if (cond_check_L(self) < 0)
        return NULL;
    /* Take the ticket while L is held, then unlock: a Signal after the
     * unlock covers us even before we park (sema.c, notify list). */
    uint32_t t = notify_list_add(&self->nl);
    uint64_t depth = 0;
    if (cond_unlock_L(self, &depth) < 0) {
        /* L was not ours to unlock (RuntimeError): give the ticket up
         * without swallowing a notification. */
        notify_list_abandon(&self->nl, t);
        return NULL;
    }
    Py_INCREF(self); /* a waiter keeps the Cond (and its notify list) alive */
    int err = 0;
    for (;;) {
        bridge_prepare_block();
        if (notify_list_wait_ex(&self->nl, t, WAIT_COND, true))
            break;
        /* Interrupted: our ticket is unparked but still ours. */
        if (bridge_after_interrupt("a Cond") < 0) {
            notify_list_abandon(&self->nl, t);
            err = -1;
            break;
        }
    }
    if (cond_relock_always(self, depth) < 0)
        err = -1;
    Py_DECREF(self);
    if (err < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Cond_signal(CondObject *self, PyObject *unused)
{
    (void)unused;
    notify_list_notify_one(&self->nl);
    Py_RETURN_NONE;
}

static PyObject *Cond_broadcast(CondObject *self, PyObject *unused)
{
    (void)unused;
    notify_list_notify_all(&self->nl);
    Py_RETURN_NONE;
}

static PyObject *Cond_waiters(CondObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromUnsignedLong(notify_list_pending(&self->nl));
}

static PyMethodDef Cond_methods[] = {
    {"wait", (PyCFunction)Cond_wait, METH_NOARGS,
     "wait(): unlock L, wait for signal() or broadcast(), lock L again. L must be held "
     "(RuntimeError otherwise). Check your condition in a loop."},
    {"signal", (PyCFunction)Cond_signal, METH_NOARGS,
     "signal(): wake the goroutine that has waited longest, if any. L need not be held."},
    {"broadcast", (PyCFunction)Cond_broadcast, METH_NOARGS,
     "broadcast(): wake every waiting goroutine."},
    {"_waiters", (PyCFunction)Cond_waiters, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Cond_getset[] = {
    {"L", (getter)Cond_get_L, NULL, "The Locker held while observing or changing the condition.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject Cond_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "pygoro.sync.Cond",
    .tp_basicsize = sizeof(CondObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Cond(L)\n--\n\nGo's sync.Cond: a rendezvous point for goroutines waiting for "
              "an event, over a Locker L\n(Mutex, RWMutex (write side), RWMutex.rlocker(), "
              "RLock, or any object with lock()\nand unlock()).",
    .tp_new = Cond_new,
    .tp_dealloc = (destructor)Cond_dealloc,
    .tp_traverse = (traverseproc)Cond_traverse,
    .tp_clear = (inquiry)Cond_clear,
    .tp_methods = Cond_methods,
    .tp_getset = Cond_getset,
    .tp_weaklistoffset = offsetof(CondObject, weakreflist),
};

/* ======================================================================== */

int bridge_sync_init(PyObject *module)
{
    static struct {
        PyTypeObject *type;
        const char *name;
    } types[] = {
        {&Mutex_Type, "Mutex"},         {&RWMutex_Type, "RWMutex"}, {&RLocker_Type, "RLocker"},
        {&RLock_Type, "RLock"},         {&WaitGroup_Type, "WaitGroup"}, {&Once_Type, "Once"},
        {&Cond_Type, "Cond"},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (PyType_Ready(types[i].type) < 0 ||
            PyModule_AddObjectRef(module, types[i].name, (PyObject *)types[i].type) < 0)
            return -1;
    }
    return 0;
}
