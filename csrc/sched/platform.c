/* The operating systems the runtime runs on, and the small queries that
 * differ between them (interface: platform.h).
 *
 * Linux (glibc or musl) and macOS, each on x86-64 and aarch64/arm64. Any
 * other system stops the build here with one message, instead of a
 * screenful of unrelated errors from the files below.
 *
 * What each system provides, file by file:
 *
 *                     Linux                        macOS
 *   sched/futex_*.c   futex(2), private            __ulock_wait/__ulock_wake
 *                                                  (libSystem, 10.12+)
 *   platform.h        CLOCK_MONOTONIC (nanotime),  CLOCK_UPTIME_RAW, i.e.
 *                     CLOCK_MONOTONIC_COARSE       mach_absolute_time as in
 *                                                  time.monotonic(), and its
 *                                                  _APPROX (cached) form
 *   platform.c        sched_getaffinity (CPUs),    online CPUs (sysconf),
 *                     pthread_getattr_np (an M's   pthread_get_stackaddr_np
 *                     own stack bounds)            (the TOP) and _stacksize_np
 *   sched/stack.c     MAP_STACK, MAP_NORESERVE,    MAP_NORESERVE only;
 *                     MADV_DONTNEED on free        MADV_FREE on free
 *   sched/signal.c    mcontext gregs[REG_RSP]/.sp  uc_mcontext->__ss
 *                                                  (__rsp, or arm64's sp)
 *   arch/switch_*.S   ELF                          Mach-O (macros at the top
 *                                                  of each file)
 *
 * The context switch on macOS is the hand-written assembly, not the ucontext
 * fallback: macOS deprecates makecontext/swapcontext, and swapcontext makes
 * a sigprocmask system call on every switch (~350 ns against ~13 ns here).
 * A ucontext build (PYGORO_CONTEXT=ucontext) is refused on macOS
 * (arch/context.h).
 *
 * What has been checked for macOS, and what has not: every runtime file
 * (csrc/ minus csrc/python) compiles with -Wall -Wextra -Werror for
 * x86_64-macos and aarch64-macos, and links with a C driver into Mach-O
 * executables, by cross-compiling with zig's clang
 * (tests/c/native/cross_macos.sh, CI step macos-cross). Nothing has RUN on
 * macOS: not the switch, not the ulock wrappers (in particular whether
 * __ulock_wait returns EINTR on a signal, which Ctrl-C on a parked Python
 * main thread relies on: see futex_darwin.c), not the stack-bounds query,
 * not the overflow handler.
 */
#if defined(__linux__)
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#elif defined(__APPLE__)
#include <pthread.h>
#include <unistd.h>
#else
#error "pygoro runs on Linux and macOS only; a port replaces what csrc/sched/platform.c lists: the futex wrappers (sched/futex_*.c), the clocks (sched/platform.h), the CPU count and thread stack query (here), mmap flags (sched/stack.c), the signal context's stack pointer (sched/signal.c) and the object format of arch/switch_*.S"
#endif

#include "../runtime.h"
#include "platform.h"

int goro_num_cpu(void)
{
#if defined(__linux__)
    /* The affinity mask, not the machine: taskset and cgroup cpusets shrink
     * it, and Ps beyond it would only take turns on the same CPUs. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
#endif
    /* macOS has no affinity masks: every online CPU is usable. */
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

bool os_thread_stack(uintptr_t *lo, uintptr_t *hi)
{
#if defined(__linux__)
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return false;
    void *addr;
    size_t size;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return true;
#else
    /* pthread_get_stackaddr_np returns the high end, where the stack starts
     * growing down from. */
    pthread_t self = pthread_self();
    uintptr_t top = (uintptr_t)pthread_get_stackaddr_np(self);
    size_t size = pthread_get_stacksize_np(self);
    if (top == 0 || size == 0)
        return false;
    *lo = top - size;
    *hi = top;
    return true;
#endif
}
