/* Context switch through glibc's makecontext/swapcontext: the portable
 * fallback (build with -DPYGORO_CONTEXT_UCONTEXT, or PYGORO_CONTEXT=ucontext).
 * It exists for CPUs without a hand-written switch and so that CI checks the
 * rest of the runtime against an independent implementation. See context.h.
 *
 * How it differs from the assembly switches, all of it glibc's doing:
 *   - swapcontext saves and restores the signal mask with a rt_sigprocmask
 *     syscall per switch (175 ns here against 11-12 ns for the assembly
 *     switch; tests/c/native/switch_selftest.c measures both).
 *   - The signal mask therefore travels with the context: a goroutine keeps
 *     the mask of the thread that ran ctx_make (getcontext below), on every
 *     M it runs on, and pthread_sigmask inside a goroutine does not stay
 *     with the M. The assembly switches leave the mask to the thread.
 *   - It saves all registers, not only the callee-saved ones, and the whole
 *     floating-point environment (x86-64: x87 environment and MXCSR;
 *     aarch64: FPSR and FPCR), so it keeps at least what the assembly
 *     switches keep. A new context starts with the floating-point mode of
 *     the thread that ran ctx_make, as with the assembly switches.
 *   - makecontext aligns the stack for the ABI itself; entry is called
 *     through a trampoline because makecontext passes int arguments only.
 */
#if defined(PYGORO_CONTEXT_UCONTEXT)
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "context.h"

/* makecontext passes `int` arguments only: each pointer travels as two
 * 32-bit halves (high first), rebuilt here. uint64_t, not uintptr_t, so the
 * shifts stay defined where pointers are 32 bits wide. */
static void ucontext_trampoline(unsigned int fn_hi, unsigned int fn_lo, unsigned int arg_hi,
                                unsigned int arg_lo)
{
    void (*entry)(void *) =
        (void (*)(void *))(uintptr_t)(((uint64_t)fn_hi << 32) | (uint64_t)fn_lo);
    void *arg = (void *)(uintptr_t)(((uint64_t)arg_hi << 32) | (uint64_t)arg_lo);
    entry(arg);
    abort(); /* entry must not return; uc_link = NULL would exit the thread */
}

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size, void (*entry)(void *),
              void *arg)
{
    if (getcontext(&ctx->uc) != 0)
        abort();
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uint64_t f = (uint64_t)(uintptr_t)entry, a = (uint64_t)(uintptr_t)arg;
    makecontext(&ctx->uc, (void (*)(void))ucontext_trampoline, 4, (unsigned int)(f >> 32),
                (unsigned int)f, (unsigned int)(a >> 32), (unsigned int)a);
}

void ctx_switch(struct goro_context *from, struct goro_context *to)
{
    if (swapcontext(&from->uc, &to->uc) != 0)
        abort();
}
#else
/* ISO C forbids an empty translation unit. */
typedef int pygoro_switch_ucontext_unused;
#endif
