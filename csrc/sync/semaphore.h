/* Semaphore internals for the Python bridge (csrc/python/sync_extra_type.c);
 * the public surface is pygoro.h. */
#ifndef PYGORO_SYNC_SEMAPHORE_H
#define PYGORO_SYNC_SEMAPHORE_H

#include "../runtime.h"

/* goro_semaphore_acquire_select that keeps the caller's place in the queue
 * across retries: *seq is 0 on the first call; it receives the waiter's
 * arrival number, and a retry after GORO_INTERRUPTED passes it back so the
 * waiter queues again in front of everyone who arrived after it. */
int semaphore_acquire_select_seq(goro_semaphore_t *s, int64_t n, goro_chan_t *cancel,
                                 void *cancel_elem, int64_t timeout_ns, uint64_t *seq);

#endif
