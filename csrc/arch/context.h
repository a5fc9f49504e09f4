/* Execution contexts: the only place that knows how registers are saved.
 *
 * A context is a suspended stack. ctx_switch(from, to) saves the callee-saved
 * registers and the floating-point control state of the caller into `from` and
 * resumes `to`; it returns when somebody later switches back to `from`.
 * Caller-saved registers need no saving: ctx_switch is an ordinary call as far
 * as the compiler is concerned.
 *
 * Three implementations, chosen at build time:
 *   switch_x86_64.S   System V x86-64: rbx rbp r12-r15, MXCSR, x87 control word
 *   switch_aarch64.S  AAPCS64: x19-x30, sp, d8-d15, FPCR
 *   switch_ucontext.c glibc makecontext/swapcontext, the portable fallback
 *                     (define PYGORO_CONTEXT_UCONTEXT). It costs a
 *                     sigprocmask syscall per switch (~350 ns here).
 *
 * ctx_make prepares a fresh context that, when first switched to, calls
 * entry(arg) on the given stack. entry must never return: a goroutine ends by
 * switching away for the last time (see goexit in sched/proc.c).
 */
#ifndef PYGORO_ARCH_CONTEXT_H
#define PYGORO_ARCH_CONTEXT_H

#include <stddef.h>

#if defined(PYGORO_CONTEXT_UCONTEXT) && defined(__APPLE__)
/* macOS deprecates the ucontext calls (<ucontext.h> refuses to compile
 * without _XOPEN_SOURCE) and its swapcontext makes a sigprocmask syscall per
 * switch: macOS uses the assembly switch (see sched/platform.c). */
#error "PYGORO_CONTEXT_UCONTEXT is not supported on macOS: build without it (the assembly switch)"
#elif defined(PYGORO_CONTEXT_UCONTEXT)
#include <ucontext.h>
struct goro_context {
    ucontext_t uc;
};
#elif defined(__x86_64__) || defined(__aarch64__)
struct goro_context {
    void *sp; /* everything else lives on the suspended stack */
};
#else
#error "no hand-written context switch for this CPU: build with PYGORO_CONTEXT_UCONTEXT"
#endif

/* Start loading the registers a switch to ctx will restore (a hint: it
 * neither reads the context nor faults). The scheduler calls it as a G is
 * queued to run soon, so that a burst of wakes of long-parked goroutines
 * does not miss on every switch one after the other. */
#define CTX_PREFETCH_LINES 16 /* 1 KiB of stack above the saved registers */
static inline void ctx_prefetch(const struct goro_context *ctx)
{
#if defined(PYGORO_CONTEXT_UCONTEXT)
    (void)ctx; /* swapcontext's syscall dwarfs a miss */
#else
    const char *sp = ctx->sp;
    __builtin_prefetch(sp);
    __builtin_prefetch(sp + 64);
#if defined(__aarch64__)
    __builtin_prefetch(sp + 128); /* x19-x30, d8-d15, FPCR: 3 lines */
#endif
    /* The frames the G returns through once resumed (go_park, the channel
     * operation with its sudog, the bridge, the eval loop): to L2 only, as
     * a batch of Gs is prefetched at once. */
    for (int i = 2; i < CTX_PREFETCH_LINES; i++)
        __builtin_prefetch(sp + 64 * i, 0, 2);
#endif
}

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size,
              void (*entry)(void *), void *arg);
void ctx_switch(struct goro_context *from, struct goro_context *to);

#endif
