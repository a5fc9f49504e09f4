/* ctx_make for aarch64: lay out the frame ctx_switch pops (switch_aarch64.S). */
#if defined(__aarch64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
#include <stdint.h>
#include <string.h>

#include "context.h"

void ctx_trampoline(void);

/* Where ctx_switch's `ret` enters the trampoline. The unwind description
 * must cover the return address minus one, so it starts one instruction (a
 * nop) before the entry: on ELF the symbol is past the nop, on Mach-O
 * (where no symbol may sit inside the description) on it. See
 * switch_aarch64.S. */
#if defined(__APPLE__)
#define TRAMPOLINE_ENTRY ((uintptr_t)ctx_trampoline + 4)
#else
#define TRAMPOLINE_ENTRY ((uintptr_t)ctx_trampoline)
#endif

/* Slots of the saved frame, in 8-byte words; keep in step with the .S. */
enum {
    SLOT_X19 = 0,     /* entry, for the trampoline */
    SLOT_X20 = 1,     /* arg */
    SLOT_X29 = 10,    /* 0: no caller frame record */
    SLOT_X30 = 11,    /* ctx_switch returns into the trampoline */
    SLOT_FPCR = 20,
    FRAME_WORDS = 22, /* 176 bytes */
};

void ctx_make(struct goro_context *ctx, void *stack_lo, size_t size,
              void (*entry)(void *), void *arg)
{
    /* After ctx_switch pops the frame, sp is `top`: 16-byte aligned, as
     * AAPCS64 requires of sp at all times. */
    uintptr_t top = ((uintptr_t)stack_lo + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)(top - FRAME_WORDS * 8);
    uint64_t fpcr;
    /* A new context starts with its creator's floating-point mode, as with
     * the x86-64 switch and getcontext. */
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    memset(sp, 0, FRAME_WORDS * 8); /* other registers and d8-d15 start as 0 */
    sp[SLOT_X19] = (uint64_t)(uintptr_t)entry;
    sp[SLOT_X20] = (uint64_t)(uintptr_t)arg;
    sp[SLOT_X29] = 0;
    sp[SLOT_X30] = (uint64_t)TRAMPOLINE_ENTRY;
    sp[SLOT_FPCR] = fpcr;
    ctx->sp = sp;
}
#else
/* ISO C forbids an empty translation unit. */
typedef int pygoro_switch_aarch64_make_unused;
#endif
