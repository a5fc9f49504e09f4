/* Pool internals for the Python bridge's garbage-collector support
 * (csrc/python/sync_extra_type.c); the public surface is pygoro.h. */
#ifndef PYGORO_SYNC_POOL_H
#define PYGORO_SYNC_POOL_H

#include "../runtime.h"

/* Call visit(x, arg) on every pooled object, private slots included; stop
 * at and return the first nonzero result. The caller guarantees that no
 * get or put runs meanwhile (Python's GC runs with the GIL held, or with
 * the world stopped in a free-threaded build, and a Python Pool is only
 * used by Python code). visit must not use the pool. */
int pool_visit(goro_pool_t *p, int (*visit)(void *x, void *arg), void *arg);
/* Keep every object of p in the locked shared stacks, never in a P's
 * private slot (read and cleared without a lock by its owner). For a pool
 * whose users are not kept apart from pool_clear, as Python code on a
 * free-threaded build is not: there a clear() beside another P's get() could
 * take the object get() returns. Call before the pool is used. */
void pool_no_private_slots(goro_pool_t *p);
/* Empty the pool, private slots included, calling release(x, arg) on each
 * object with no lock held (release may use the pool). Same exclusion as
 * pool_visit for the private slots. Returns how many. */
size_t pool_clear(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg);

#endif
