/* The futex wrappers of futex_linux.c for macOS, with the same contract (see
 * there), on __ulock_wait/__ulock_wake: the private compare-and-wait on a
 * 32-bit word that libc++'s std::atomic::wait and libdispatch use. They are
 * in libSystem on every macOS since 10.12 but in no SDK header, so they are
 * declared here. os_sync_wait_on_address (the public form) needs macOS 14.4.
 *
 * Differences from futex(2), and how the contract is kept:
 *   - The timeout is a uint32 count of microseconds, 0 meaning forever. A
 *     positive ns rounds UP to at least 1 us (rounding down could turn a
 *     short wait into an endless one), and a longer timeout than ~71 minutes
 *     is cut to the maximum: the call then reports a timeout early, which
 *     every caller already handles (note_timedsleep recomputes what is left
 *     of its deadline; thread_park only waits for DEAD_CHECK_NS or forever).
 *   - A wake wakes one waiter or all of them (ULF_WAKE_ALL), never n: n > 1
 *     wakes all, a superset, and every caller re-checks its condition. (All
 *     callers pass 1 today.)
 *   - ULF_NO_ERRNO makes the calls return -errno instead of setting errno,
 *     so no errno is read across a possible goroutine migration (see
 *     futex_linux.c) and nothing touches thread-local storage.
 *   - A value that has already changed returns at once, as futex's EAGAIN.
 *
 * NOT VERIFIED (no macOS machine here; the port is compile- and link-checked
 * by cross-compiling, tests/c/native/cross_macos.sh, never run): whether
 * __ulock_wait returns EINTR when a signal handler runs during the wait.
 * Reading XNU's bsd/kern/sys_ulock.c says it does: the wait is
 * THREAD_ABORTSAFE, THREAD_INTERRUPTED becomes EINTR, and with ULF_NO_ERRNO
 * that comes back as -EINTR. If it did not, Ctrl-C would reach a Python main
 * thread parked on a channel only at its next DEAD_CHECK_NS tick (thread_park
 * polls signal_pending on a timeout) instead of at once, and an
 * interruptible note_timedsleep would run to its deadline.
 */
#if defined(__APPLE__)
#include <errno.h>
#include <stdint.h>

#include "../runtime.h"

/* xnu bsd/sys/ulock.h */
#define UL_COMPARE_AND_WAIT 1
#define ULF_WAKE_ALL 0x00000100
#define ULF_NO_ERRNO 0x01000000

extern int __ulock_wait(uint32_t operation, void *addr, uint64_t value, uint32_t timeout_us);
extern int __ulock_wake(uint32_t operation, void *addr, uint64_t wake_value);

void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    __ulock_wait(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, (void *)addr, val, 0);
}

int futex_timedwait(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    uint32_t us = 0; /* forever */
    if (ns == 0) {
        /* futex(2) with a zero timeout: EAGAIN if changed, else timed out */
        return atomic_load_explicit(addr, memory_order_relaxed) != val ? 0 : -1;
    }
    if (ns > 0) {
        int64_t u = ns / 1000 + (ns % 1000 != 0); /* no overflow near INT64_MAX */
        us = u > UINT32_MAX ? UINT32_MAX : (uint32_t)u;
    }
    int r = __ulock_wait(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, (void *)addr, val, us);
    if (r >= 0)
        return 0; /* woken, or the value had already changed */
    if (r == -ETIMEDOUT)
        return -1;
    if (r == -EINTR)
        return -2;
    return 0; /* EFAULT and the like: the caller re-checks and waits again */
}

void futex_wake(_Atomic uint32_t *addr, int n)
{
    uint32_t op = UL_COMPARE_AND_WAIT | ULF_NO_ERRNO;
    if (n > 1)
        op |= ULF_WAKE_ALL;
    /* -ENOENT (nobody waiting) is the common case and not an error */
    __ulock_wake(op, (void *)addr, 0);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int pygoro_futex_darwin_unused;
#endif
