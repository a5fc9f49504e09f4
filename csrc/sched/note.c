/* Notes (one-shot sleep/wakeup), the clock and cheap randomness.
 *
 * A note is Go's: one sleeper, one waker, key 0 = not yet woken, 1 = woken.
 * note_wakeup stores 1 before waking, so a wakeup that lands before the sleep
 * starts is not lost: the futex wait compares the key to 0 atomically with
 * going to sleep (futex_linux.c, futex_darwin.c).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../runtime.h"
#include "platform.h"

void note_clear(struct note *n)
{
    atomic_store_explicit(&n->key, 0, memory_order_relaxed);
}

void note_wakeup(struct note *n)
{
    /* release: whatever the waker did before waking is visible to the sleeper */
    uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
    if (old != 0)
        rt_throw("note_wakeup: double wakeup");
    futex_wake(&n->key, 1);
}

void note_sleep(struct note *n)
{
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
        futex_wait(&n->key, 0);
}

bool note_timedsleep(struct note *n, int64_t ns, bool interruptible, bool *interrupted)
{
    if (interrupted)
        *interrupted = false;
    if (atomic_load_explicit(&n->key, memory_order_acquire) != 0)
        return true;
    if (ns <= 0)
        return false;
    int64_t deadline = nanotime() + ns;
    for (;;) {
        int r = futex_timedwait(&n->key, 0, ns);
        if (atomic_load_explicit(&n->key, memory_order_acquire) != 0)
            return true;
        if (r == -2 && interruptible) {
            if (interrupted)
                *interrupted = true;
            return false;
        }
        ns = deadline - nanotime();
        if (ns <= 0)
            return false;
    }
}

int64_t nanotime(void)
{
    return os_clock_ns(OS_CLOCK);
}

int64_t goro_nanotime(void)
{
    return nanotime();
}

/* Per-thread xorshift64*: seeded from the clock and the thread's address so
 * that Ms do not pick the same victims in lockstep. */
static _Thread_local uint64_t rand_state;

uint32_t cheaprand(void)
{
    uint64_t x = rand_state;
    if (unlikely(x == 0))
        x = (uint64_t)nanotime() ^ (uint64_t)(uintptr_t)&rand_state ^ 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rand_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

uint32_t cheaprandn(uint32_t n)
{
    /* Lemire's multiply-shift: uniform enough, no division */
    return (uint32_t)(((uint64_t)cheaprand() * n) >> 32);
}

_Noreturn void rt_throw(const char *fmt, ...)
{
    va_list ap;
    char buf[512];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* one write(2): the message survives whatever state stdio is in */
    char out[600];
    int n = snprintf(out, sizeof out, "fatal error: pygoro: %s\n", buf);
    if (n > 0) {
        ssize_t w = write(2, out, (size_t)n < sizeof out ? (size_t)n : sizeof out - 1);
        (void)w;
    }
    abort();
}
