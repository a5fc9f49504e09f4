/* Context switch through glibc's makecontext/swapcontext: the portable
 * fallback (build with -DPYGORO_CONTEXT_UCONTEXT, or PYGORO_CONTEXT=ucontext).
 * swapcontext saves and restores the signal mask with a syscall each time
 * (~350 ns here against ~12 ns for the assembly switch), so it is for CPUs
 * without a hand-written switch and for checking the rest of the runtime
 * against an independent implementation in CI. */
#if defined(PYGORO_CONTEXT_UCONTEXT)
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

#include "context.h"

/* makecontext passes int arguments only: split the two pointers. */
static void ucontext_trampoline(unsigned int fn_hi, unsigned int fn_lo, unsigned int arg_hi,
                                unsigned int arg_lo)
{
    void (*entry)(void *) =
        (void (*)(void *))(((uintptr_t)fn_hi << 32) | (uintptr_t)fn_lo);
    void *arg = (void *)(((uintptr_t)arg_hi << 32) | (uintptr_t)arg_lo);
    entry(arg);
    abort(); /* entry must not return */
}

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size, void (*entry)(void *),
              void *arg)
{
    if (getcontext(&ctx->uc) != 0)
        abort();
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    uintptr_t f = (uintptr_t)entry, a = (uintptr_t)arg;
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
