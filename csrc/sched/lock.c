/* Runtime locks (Go's lock_futex.go): a three-state futex word.
 *
 *   0  unlocked
 *   1  locked, nobody sleeping
 *   2  locked, maybe sleepers: unlock must futex_wake
 *
 * Critical sections guarded by rtlocks are a few dozen instructions (a
 * channel's queues, the global run queue), so a contended locker first spins
 * briefly: on two cores the holder is usually running and done within the
 * spin, and a futex sleep/wake round trip costs ~4-9 us here.
 */
#include <sched.h>

#include "../runtime.h"

#define ACTIVE_SPIN 4
#define ACTIVE_SPIN_CNT 30
#define PASSIVE_SPIN 1

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield" ::: "memory");
#endif
}

bool rtlock_trylock(struct rtlock *l)
{
    uint32_t zero = 0;
    /* acquire: the critical section must not float above the lock */
    return atomic_compare_exchange_strong_explicit(&l->key, &zero, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

/* Take the lock if it is free, leaving `wait` (1, or 2 if sleepers may
 * remain) in the word. */
static inline bool grab_if_free(struct rtlock *l, uint32_t wait)
{
    while (atomic_load_explicit(&l->key, memory_order_relaxed) == 0) {
        uint32_t z = 0;
        if (atomic_compare_exchange_weak_explicit(&l->key, &z, wait, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    }
    return false;
}

void rtlock_lock(struct rtlock *l)
{
    uint32_t v = atomic_exchange_explicit(&l->key, 1, memory_order_acquire);
    if (likely(v == 0))
        return;
    /* v is 1 or 2. If it was 2 we must leave 2 behind when we take it, since
     * other sleepers may remain: `wait` remembers that. */
    uint32_t wait = v;
    for (;;) {
        for (int i = 0; i < ACTIVE_SPIN; i++) {
            if (grab_if_free(l, wait))
                return;
            for (int j = 0; j < ACTIVE_SPIN_CNT; j++)
                cpu_relax();
        }
        for (int i = 0; i < PASSIVE_SPIN; i++) {
            if (grab_if_free(l, wait))
                return;
            sched_yield();
        }
        /* Sleep, announcing a sleeper with state 2. */
        v = atomic_exchange_explicit(&l->key, 2, memory_order_acquire);
        if (v == 0)
            return;
        wait = 2;
        futex_wait(&l->key, 2);
    }
}

void rtlock_unlock(struct rtlock *l)
{
    /* release: publishes the critical section to the next locker */
    uint32_t v = atomic_exchange_explicit(&l->key, 0, memory_order_release);
    if (unlikely(v == 0))
        rt_throw("rtlock_unlock of unlocked lock");
    if (v == 2)
        futex_wake(&l->key, 1);
}
