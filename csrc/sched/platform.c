/* The operating systems the runtime is written for, checked once.
 *
 * The runtime is Linux-only today (glibc or musl, x86-64 or aarch64). On any
 * other system this file stops the build with one message naming every
 * Linux interface the port must replace, instead of a screenful of unrelated
 * errors from the files that use them. The list is what a macOS port needs
 * (the plan, in pyproject.toml's [tool.cibuildwheel]):
 *
 *   sched/note.c   futex(2) under every note and runtime lock: macOS offers
 *                  os_sync_wait_on_address (14.4+) or __ulock_wait/wake
 *   sched/proc.c   sched_getaffinity/CPU_COUNT, CLOCK_MONOTONIC_COARSE, and
 *                  pthread_getattr_np for an M's own stack bounds (macOS:
 *                  pthread_get_stackaddr_np/pthread_get_stacksize_np)
 *   sched/stack.c  MAP_STACK
 *   sched/signal.c the interrupted stack pointer read from Linux's
 *                  mcontext layout (uc_mcontext.gregs[REG_RSP], .sp)
 *   arch/switch_x86_64.S, arch/switch_aarch64.S
 *                  ELF directives (.type, .size, .hidden, unprefixed
 *                  symbols): Mach-O wants a leading underscore,
 *                  .private_extern, and no .type/.size
 *
 * For the futex, a table of pthread mutexes and condition variables would be
 * portable but is not enough: a condition wait never returns EINTR, and an
 * interruptible thread (Python's main thread, Ctrl-C) relies on futex(2)
 * returning it (thread_park in proc.c, note_timedsleep). Whether
 * __ulock_wait reports EINTR is to be checked on macOS.
 *
 * The list comes from reading the sources for Linux-only calls; nothing has
 * been compiled on macOS, so a port may find more. Keep it in step with the
 * code.
 */
#if !defined(__linux__)
#error "pygoro runs on Linux only: a port must replace futex (sched/note.c), sched_getaffinity, CLOCK_MONOTONIC_COARSE and pthread_getattr_np (sched/proc.c), MAP_STACK (sched/stack.c), the mcontext stack pointer (sched/signal.c) and the ELF-only assembly of arch/switch_*.S (see csrc/sched/platform.c)"
#endif

/* ISO C forbids an empty translation unit. */
typedef int platform_linux_checked;
