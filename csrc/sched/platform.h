/* The operating system's small services, behind one interface so that no
 * other file needs an #ifdef for them: the clocks (here, inline: nanotime
 * and go_park read them on every timer check and park) and two cold queries
 * (platform.c). The futex wrappers have a file per system (futex_linux.c,
 * futex_darwin.c); platform.c lists everything the macOS port changed. */
#ifndef PYGORO_SCHED_PLATFORM_H
#define PYGORO_SCHED_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* OS_CLOCK is nanotime's clock, the one Python's time.monotonic() reads
 * (pygoro.time sends nanotime values as time.monotonic() floats): on macOS
 * that is mach_absolute_time, which CLOCK_UPTIME_RAW returns in ns, not
 * CLOCK_MONOTONIC (which there also counts time asleep).
 * OS_CLOCK_COARSE is the same clock read cheaply at a lower resolution, for
 * wait_since (read by humans in a dump, subtracted from nanotime): the vDSO
 * coarse clock on Linux (~4 ms resolution, a few ns instead of ~20), the
 * value cached at the last context switch on macOS. */
#if defined(__linux__)
#define OS_CLOCK CLOCK_MONOTONIC
#define OS_CLOCK_COARSE CLOCK_MONOTONIC_COARSE
#elif defined(__APPLE__)
#define OS_CLOCK CLOCK_UPTIME_RAW
#define OS_CLOCK_COARSE CLOCK_UPTIME_RAW_APPROX
#endif

static inline int64_t os_clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The calling thread's own stack, [*lo, *hi); false if the system does not
 * say. */
bool os_thread_stack(uintptr_t *lo, uintptr_t *hi);

#endif
