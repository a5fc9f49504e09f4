/* ctx_make for aarch64: lay out the frame ctx_switch pops (switch_aarch64.S). */
#if defined(__aarch64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
#include <stdint.h>
#include <string.h>

#include "context.h"

void ctx_trampoline(void);

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size,
              void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - 176); /* sp after the pop is `top`: aligned */
    memset(sp, 0, 176);
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    sp[0] = (uint64_t)(uintptr_t)entry;  /* x19 */
    sp[1] = (uint64_t)(uintptr_t)arg;    /* x20 */
    sp[10] = 0;                          /* x29: no caller frame */
    sp[11] = (uint64_t)(uintptr_t)ctx_trampoline; /* x30 */
    sp[20] = fpcr;
    ctx->sp = sp;
}
#else
typedef int pygoro_switch_aarch64_make_unused;
#endif
