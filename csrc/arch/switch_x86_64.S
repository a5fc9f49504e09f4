/* Context switch for x86-64, System V ABI. See context.h.
 *
 * Saved frame, from the saved sp upwards:
 *   [sp+0]  MXCSR (4 bytes) | x87 control word (2 bytes) | pad
 *   [sp+8]  r15  [sp+16] r14  [sp+24] r13  [sp+32] r12  [sp+40] rbx  [sp+48] rbp
 *   [sp+56] return address
 * ctx_make (switch_x86_64_make.c) builds the same frame by hand for a new stack.
 */
#if defined(__x86_64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
    .text
    .globl  ctx_switch
    .hidden ctx_switch
    .type   ctx_switch, @function
    .p2align 4
ctx_switch:                     /* rdi = from, rsi = to */
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   ctx_switch, .-ctx_switch

/* First code run on a fresh stack: ctx_make leaves entry in r12 and its
 * argument in r13. rsp is 16-byte aligned here, as a call requires. */
    .globl  ctx_trampoline
    .hidden ctx_trampoline
    .type   ctx_trampoline, @function
    .p2align 4
ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip          /* end of the unwinder's walk */
    xorl    %ebp, %ebp
    movq    %r13, %rdi
    callq   *%r12
    ud2                         /* entry must not return */
    .cfi_endproc
    .size   ctx_trampoline, .-ctx_trampoline
#endif

    .section .note.GNU-stack,"",@progbits
