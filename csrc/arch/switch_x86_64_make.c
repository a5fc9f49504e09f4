/* ctx_make for x86-64: lay out the frame ctx_switch pops (see switch_x86_64.S). */
#if defined(__x86_64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
#include <stdint.h>
#include <string.h>

#include "context.h"

void ctx_trampoline(void);

/* Where ctx_switch's `ret` enters the trampoline. The unwind description
 * must cover the return address minus one, so it starts one byte (a nop)
 * before the entry: on ELF the symbol is past the nop, on Mach-O (where no
 * symbol may sit inside the description) on it. See switch_x86_64.S. */
#if defined(__APPLE__)
#define TRAMPOLINE_ENTRY ((uintptr_t)ctx_trampoline + 1)
#else
#define TRAMPOLINE_ENTRY ((uintptr_t)ctx_trampoline)
#endif

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size,
              void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    /* After ctx_switch's `ret` pops the trampoline address, rsp must be 16-byte
     * aligned for the trampoline's call: the return slot sits at top-24, so rsp
     * becomes top-16 after the ret. */
    uint64_t *sp = (uint64_t *)(top - 24 - 7 * 8);
    uint32_t mxcsr;
    uint16_t fpucw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fpucw));
    sp[0] = (uint64_t)mxcsr | ((uint64_t)fpucw << 32);
    sp[1] = 0;                          /* r15 */
    sp[2] = 0;                          /* r14 */
    sp[3] = (uint64_t)(uintptr_t)arg;   /* r13 */
    sp[4] = (uint64_t)(uintptr_t)entry; /* r12 */
    sp[5] = 0;                          /* rbx */
    sp[6] = 0;                          /* rbp */
    sp[7] = (uint64_t)TRAMPOLINE_ENTRY;
    ctx->sp = sp;
}
#else
typedef int pygoro_switch_x86_64_make_unused;
#endif
