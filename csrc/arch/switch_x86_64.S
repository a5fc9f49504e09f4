/* Context switch for x86-64, System V ABI. See context.h.
 *
 * Saved frame, from the saved sp upwards:
 *   [sp+0]  MXCSR (4 bytes) | x87 control word (2 bytes) | pad
 *   [sp+8]  r15  [sp+16] r14  [sp+24] r13  [sp+32] r12  [sp+40] rbx  [sp+48] rbp
 *   [sp+56] return address
 * ctx_make (switch_x86_64_make.c) builds the same frame by hand for a new stack.
 *
 * CFI: both stacks hold a frame of the same shape, so one description (CFA =
 * rsp + 64 once the frame is built, each register in its slot) is right on
 * either side of the rsp swap. A debugger or profiler stopping inside
 * ctx_switch sees the suspending context's caller before the swap and the
 * resuming context's caller after it.
 *
 * Object formats: the same source assembles to ELF (Linux) and Mach-O
 * (macOS) through the macros below (this file goes through the C
 * preprocessor). Mach-O names C symbols with a leading underscore, spells
 * .hidden as .private_extern, and has no .type, .size or .note.GNU-stack.
 */
#if defined(__APPLE__)
#define SYM(name) _##name
#define HIDDEN(name) .private_extern _##name
#define FUNC_TYPE(name)
#define FUNC_SIZE(name)
#else
#define SYM(name) name
#define HIDDEN(name) .hidden name
#define FUNC_TYPE(name) .type name, @function
#define FUNC_SIZE(name) .size name, .-name
#endif

#if defined(__x86_64__) && !defined(PYGORO_CONTEXT_UCONTEXT)
    .text
    .globl  SYM(ctx_switch)
    HIDDEN(ctx_switch)
    FUNC_TYPE(ctx_switch)
    .p2align 4
SYM(ctx_switch):                /* rdi = from, rsi = to */
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    (%rsi), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore rbp
    ret
    .cfi_endproc
    FUNC_SIZE(ctx_switch)

/* First code run on a fresh stack: ctx_make leaves entry in r12 and its
 * argument in r13. rsp is 16-byte aligned here, as a call requires.
 * The FDE starts one byte before ctx_trampoline: ctx_make plants
 * ctx_trampoline as a return address, and unwinders look up return address
 * minus one to find the frame description, so that byte must be covered. */
    .p2align 4
#if defined(__APPLE__)
/* Mach-O: no symbol may sit inside a CFI frame, and its linkers tie an FDE
 * to the symbol it starts at, so here the symbol is on the nop and ctx_make
 * plants ctx_trampoline + 1 byte (switch_x86_64_make.c) as the return address. */
    .globl  SYM(ctx_trampoline)
    HIDDEN(ctx_trampoline)
SYM(ctx_trampoline):
#endif
    .cfi_startproc
    .cfi_undefined rip          /* end of the unwinder's walk */
    nop
#if !defined(__APPLE__)
    .globl  ctx_trampoline
    .hidden ctx_trampoline
    .type   ctx_trampoline, @function
ctx_trampoline:
#endif
    xorl    %ebp, %ebp
    movq    %r13, %rdi
    callq   *%r12
    ud2                         /* entry must not return */
    .cfi_endproc
    FUNC_SIZE(ctx_trampoline)
#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT) && defined(__ELF__)
/* This file is assembled (empty) on aarch64 too, and an object without the
 * BTI property note drops BTI from the whole output: see switch_aarch64.S. */
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long   4, 16, 5                    /* name size, desc size, NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000, 4, 1, 0         /* AARCH64_FEATURE_1_AND: BTI */
    .popsection
#endif

#if defined(__ELF__)
    .section .note.GNU-stack,"",@progbits
#endif
