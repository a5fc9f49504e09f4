/* RWMutex (Go's sync/rwmutex.go): many readers or one writer,
 * writer-preferring.
 *
 * Writers serialise on the inner Mutex rw->w. The reader side is Go's
 * readerCount/readerWait pair, kept in one 64-bit word rw->readers:
 *
 *     count (high 32, signed)  readers holding or waiting for the lock,
 *                              minus RW_MAX_READERS while a writer is
 *                              pending or holds the lock
 *     wait  (low 32)           readers the pending writer still waits for
 *
 * RLock adds one to count. A non-negative result means no writer: the read
 * lock is held, in one atomic add. A negative one means a writer is
 * pending or active: the reader parks on reader_sem, still counted, so the
 * writer's Unlock knows how many to release.
 *
 * Lock takes w, then in one CAS subtracts RW_MAX_READERS from count
 * (turning new readers away) and sets wait to the number of readers that
 * hold the lock right now. If that is not zero it parks on writer_sem; the
 * last of those readers to leave (wait 1 -> 0) wakes it. This is what makes
 * the lock writer-preferring: from the writer's CAS on, readers queue
 * behind it, and a stream of readers cannot starve it.
 *
 * Unlock adds RW_MAX_READERS back, which makes count the number of readers
 * that queued meanwhile, releases that many from reader_sem, and unlocks
 * w. Readers are admitted before the next writer can take w and close the
 * door again, so writers cannot starve readers either.
 *
 * Why one word, where Go has two: with count and wait separate, Go's
 * departing reader first decrements count and then wait, and a pending
 * writer sets wait after its count update, so wait goes transiently
 * negative, and a misplaced RUnlock (one no reader holds) cannot be told
 * from a real one while a writer is pending: Go checks what it can and
 * throws. Here both halves change in one CAS, so wait is exact and every
 * RUnlock/Unlock is checked before it changes anything:
 *   - RUnlock is valid if count > 0 (no writer; some reader holds it), or
 *     if count < 0 and wait > 0 (a reader the pending writer waits for).
 *     count == 0, or count < 0 with wait == 0 (the writer holds the lock;
 *     the readers counted are only queued), is GORO_EMISUSE.
 *   - Unlock is valid if count < 0 and wait == 0 (a writer holds the
 *     lock); otherwise GORO_EMISUSE.
 * The price: RUnlock and Lock are CAS loops rather than single adds; RLock
 * keeps Go's single add.
 *
 * Memory order. RLock's add and TryRLock's CAS acquire (they may read the
 * last writer's Unlock, a release). RUnlock's CAS is acq_rel: release for
 * its own reads, acquire so the last departing reader passes on, through
 * writer_sem, the releases of the readers that left before it. Lock's CAS
 * is acq_rel for the same reason (when no reader is left it takes the lock
 * right there); Unlock's CAS releases. Blocked readers and writers are
 * ordered through the semaphore's go_ready (release/acquire).
 */
#include "sema.h"

#define RW_MAX_READERS ((int32_t)1 << 30)
#define RW_READER ((uint64_t)1 << 32) /* one reader, in count's position */

static inline int32_t count_of(uint64_t s)
{
    return (int32_t)(uint32_t)(s >> 32);
}

static inline uint32_t wait_of(uint64_t s)
{
    return (uint32_t)s;
}

static inline uint64_t make_readers(int32_t count, uint32_t wait)
{
    return ((uint64_t)(uint32_t)count << 32) | wait;
}

void goro_rwmutex_rlock(goro_rwmutex_t *rw)
{
    uint64_t s = atomic_fetch_add_explicit(&rw->readers, RW_READER, memory_order_acquire) + RW_READER;
    if (unlikely(count_of(s) < 0)) {
        /* A writer is pending or active; it releases us when it unlocks. */
        semacquire1(&rw->reader_sem, false, WAIT_RWMUTEX_RLOCK);
    }
}

bool goro_rwmutex_tryrlock(goro_rwmutex_t *rw)
{
    uint64_t old = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    for (;;) {
        if (count_of(old) < 0)
            return false;
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &old, old + RW_READER,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

int goro_rwmutex_runlock(goro_rwmutex_t *rw)
{
    uint64_t old = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    for (;;) {
        int32_t count = count_of(old);
        uint32_t wait = wait_of(old);
        uint64_t new;
        if (count > 0)
            new = old - RW_READER;
        else if (count < 0 && wait > 0)
            new = old - RW_READER - 1; /* one fewer reader for the writer to wait for */
        else
            return GORO_EMISUSE;
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &old, new, memory_order_acq_rel,
                                                  memory_order_relaxed)) {
            if (count < 0 && wait == 1)
                semrelease1(&rw->writer_sem, false); /* the last one: writer's turn */
            return GORO_OK;
        }
    }
}

/* An interrupted pending writer gives up: it holds w and has announced
 * itself (count lowered by RW_MAX_READERS, wait = readers still inside),
 * and is off writer_sem's queue. If wait is already 0 the last reader has
 * released writer_sem for us: take that count (due at once), and we hold
 * the write lock, so unlock it normally. Otherwise undo the announcement
 * in one CAS (the readers still inside stay counted and leave as if no
 * writer had come), admit the readers that queued behind us, and unlock w:
 * Unlock's steps, minus waiting for the active readers. */
static void rwmutex_writer_withdraw(goro_rwmutex_t *rw)
{
    uint64_t old = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    int32_t queued;
    for (;;) {
        if (wait_of(old) == 0) {
            semacquire1(&rw->writer_sem, false, WAIT_RWMUTEX_LOCK);
            goro_rwmutex_unlock(rw);
            return;
        }
        int32_t count = count_of(old) + RW_MAX_READERS;
        queued = count - (int32_t)wait_of(old);
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &old, make_readers(count, 0),
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
    for (int32_t i = 0; i < queued; i++)
        semrelease1(&rw->reader_sem, false);
    if (goro_mutex_unlock(&rw->w) != GORO_OK)
        rt_throw("sync: RWMutex writer lock not held by a pending writer");
}

int rwmutex_lock_ex(goro_rwmutex_t *rw, bool spin, bool intr)
{
    /* First resolve competition with other writers. */
    if (mutex_lock_ex(&rw->w, WAIT_RWMUTEX_LOCK, spin, intr) != GORO_OK)
        return GORO_INTERRUPTED;
    /* Announce the pending writer and count the active readers. */
    uint64_t old = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    int32_t active;
    for (;;) {
        active = count_of(old);
        if (active < 0 || wait_of(old) != 0)
            rt_throw("sync: inconsistent RWMutex state %#llx", (unsigned long long)old);
        uint64_t new = make_readers(active - RW_MAX_READERS, (uint32_t)active);
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &old, new, memory_order_acq_rel,
                                                  memory_order_relaxed))
            break;
    }
    /* Wait for the active readers to leave. */
    if (active == 0)
        return GORO_OK;
    switch (sema_acquire(&rw->writer_sem, false, WAIT_RWMUTEX_LOCK, intr)) {
    case SEMA_ACQUIRED:
        return GORO_OK;
    case SEMA_ACQUIRED_INTERRUPTED:
        goro_rwmutex_unlock(rw); /* got it just as the signal came: give it back */
        return GORO_INTERRUPTED;
    case SEMA_WITHDRAWN:
        break;
    }
    rwmutex_writer_withdraw(rw);
    return GORO_INTERRUPTED;
}

void goro_rwmutex_lock(goro_rwmutex_t *rw)
{
    (void)rwmutex_lock_ex(rw, true, false);
}

bool goro_rwmutex_trylock(goro_rwmutex_t *rw)
{
    if (!goro_mutex_trylock(&rw->w))
        return false;
    uint64_t unlocked = 0;
    if (!atomic_compare_exchange_strong_explicit(&rw->readers, &unlocked,
                                                 make_readers(-RW_MAX_READERS, 0),
                                                 memory_order_acquire, memory_order_relaxed)) {
        goro_mutex_unlock(&rw->w);
        return false;
    }
    return true;
}

int goro_rwmutex_unlock(goro_rwmutex_t *rw)
{
    uint64_t old = atomic_load_explicit(&rw->readers, memory_order_relaxed);
    int32_t queued;
    for (;;) {
        int32_t count = count_of(old);
        if (count >= 0 || wait_of(old) != 0)
            return GORO_EMISUSE; /* no writer, or one still waiting for readers */
        queued = count + RW_MAX_READERS;
        if (atomic_compare_exchange_weak_explicit(&rw->readers, &old, make_readers(queued, 0),
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
    /* Admit the readers that queued behind us, then let the next writer in. */
    for (int32_t i = 0; i < queued; i++)
        semrelease1(&rw->reader_sem, false);
    if (goro_mutex_unlock(&rw->w) != GORO_OK)
        rt_throw("sync: RWMutex writer lock not held by a write-locked RWMutex");
    return GORO_OK;
}
