/* Context switch for aarch64 (AAPCS64). See context.h.
 *
 * Saved frame, 176 bytes from the saved sp upwards:
 *   [sp+0]   x19 x20   [sp+16]  x21 x22   [sp+32]  x23 x24
 *   [sp+48]  x25 x26   [sp+64]  x27 x28   [sp+80]  x29 (fp) x30 (lr)
 *   [sp+96]  d8  d9    [sp+112] d10 d11   [sp+128] d12 d13   [sp+144] d14 d15
 *   [sp+160] FPCR      [sp+168] pad (sp stays 16-byte aligned)
 * Only the low 64 bits of v8-v15 are callee-saved, hence d8-d15. FPCR holds
 * the rounding mode and trap enables, which belong to the goroutine.
 * ctx_make (switch_aarch64_make.c) builds the same frame for a new stack.
 */
#if defined(__aarch64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
    .text
    .globl  ctx_switch
    .hidden ctx_switch
    .type   ctx_switch, %function
    .p2align 4
ctx_switch:                     /* x0 = from, x1 = to */
    .cfi_startproc
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    mov     sp, x9
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #176
    ret                         /* to x30: the resumed context's caller */
    .cfi_endproc
    .size   ctx_switch, .-ctx_switch

/* First code on a fresh stack: ctx_make leaves entry in x19, arg in x20. */
    .globl  ctx_trampoline
    .hidden ctx_trampoline
    .type   ctx_trampoline, %function
    .p2align 4
ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30          /* end of the unwinder's walk */
    mov     x29, #0
    mov     x0, x20
    blr     x19
    brk     #0                  /* entry must not return */
    .cfi_endproc
    .size   ctx_trampoline, .-ctx_trampoline
#endif

    .section .note.GNU-stack,"",%progbits
