/* futex(2): the one sleep/wake primitive under notes, runtime locks and
 * thread parks (declared in runtime.h). The macOS counterpart, with the same
 * contract, is futex_darwin.c; csrc/sched/platform.c says which file serves
 * which system.
 *
 * Contract (every caller re-checks its condition after a return):
 *   futex_wait       sleep while *addr == val; returns on a wake, a signal,
 *                    a spurious wakeup, or at once if *addr != val
 *   futex_timedwait  the same for at most ns nanoseconds (ns < 0: no limit);
 *                    0 woken or value changed, -1 timed out, -2 interrupted
 *                    by a signal (EINTR: how Ctrl-C reaches a Python main
 *                    thread parked in thread_park or note_timedsleep)
 *   futex_wake       wake up to n sleepers on addr
 */
#if defined(__linux__)
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../runtime.h"

void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    /* Private futex: the word is never shared across processes. EINTR and
     * spurious wakeups are fine, every caller re-checks its condition. */
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

int futex_timedwait(_Atomic uint32_t *addr, uint32_t val, int64_t ns)
{
    struct timespec ts, *tsp = NULL;
    if (ns >= 0) {
        ts.tv_sec = ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, tsp, NULL, 0);
    if (r == 0)
        return 0;
    /* Read errno right away: the caller may be a goroutine that migrates at
     * its next park, and glibc's __errno_location is declared const, so a
     * compiler may reuse an errno address across a context switch. */
    int e = errno;
    if (e == ETIMEDOUT)
        return -1;
    if (e == EINTR)
        return -2;
    return 0; /* EAGAIN: the value had already changed */
}

void futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
#else
/* ISO C forbids an empty translation unit. */
typedef int pygoro_futex_linux_unused;
#endif
