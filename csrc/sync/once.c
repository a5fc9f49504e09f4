/* Once (Go's sync/once.go): run a function exactly once.
 *
 * o->done is set to 1 after fn has returned, with release; the fast path is
 * one acquire load of it, so a caller that sees 1 also sees everything fn
 * did. The slow path serialises the first callers on the Mutex o->m: the
 * one that gets it first runs fn, and the others, parked on the Mutex,
 * return only once it has finished (Once's guarantee: no caller returns
 * before fn has). Setting done on the fast path's CAS instead, without the
 * Mutex, would let a second caller return while fn still ran.
 *
 * done is written while o->m is held and read under it with relaxed order
 * (the Mutex orders it); only the lock-free fast path needs the acquire.
 *
 * If fn "fails", the Once is still done: in C fn just returns; the Python
 * layer catches an exception inside fn and returns normally, as Go's
 * deferred done.Store(1) marks a panicking fn's Once done. fn must not call
 * goro_once_do on the same Once (it would wait for itself, as in Go).
 */
#include "sema.h"

static void once_do_slow(goro_once_t *o, goro_fn fn, void *arg)
{
    mutex_lock_reason(&o->m, WAIT_ONCE);
    if (atomic_load_explicit(&o->done, memory_order_relaxed) == 0) {
        fn(arg);
        atomic_store_explicit(&o->done, 1, memory_order_release);
    }
    goro_mutex_unlock(&o->m);
}

void goro_once_do(goro_once_t *o, goro_fn fn, void *arg)
{
    if (likely(atomic_load_explicit(&o->done, memory_order_acquire) != 0))
        return;
    once_do_slow(o, fn, arg);
}
