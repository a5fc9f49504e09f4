/* Context switch for aarch64, AAPCS64. See context.h.
 *
 * A switch keeps exactly what a called function must keep for its caller
 * (AAPCS64 6.1.1 and 6.1.2), because to the compiler ctx_switch is a call:
 *   x19-x28   callee-saved general registers
 *   x29 (fp)  the frame pointer: the caller's frame-record chain
 *   x30 (lr)  where the suspended ctx_switch call returns to
 *   sp        kept in struct goro_context; everything else lives on the stack
 *   d8-d15    only the low 64 bits of v8-v15 are callee-saved; the upper
 *             halves and v0-v7, v16-v31 are not
 *   FPCR      rounding mode, flush-to-zero, default-NaN, trap enables: the
 *             floating-point mode a goroutine set with fesetround/fesetenv
 *             and expects to keep when it resumes on another thread. FPSR
 *             (sticky exception flags) is not kept across calls: not saved.
 * x18 is the platform register, an ordinary temporary on Linux and reserved
 * for the OS on macOS (code must not touch it): not saved, and never written.
 *
 * Saved frame, 176 bytes from the saved sp upwards (sp stays 16-aligned):
 *   [sp+0]   x19 x20   [sp+16]  x21 x22   [sp+32]  x23 x24
 *   [sp+48]  x25 x26   [sp+64]  x27 x28   [sp+80]  x29 x30
 *   [sp+96]  d8  d9    [sp+112] d10 d11   [sp+128] d12 d13   [sp+144] d14 d15
 *   [sp+160] FPCR      [sp+168] unused
 * ctx_make (switch_aarch64_make.c) builds the same frame on a fresh stack with
 * x19 = entry, x20 = arg, x29 = 0 and x30 = ctx_trampoline.
 *
 * CFI: both stacks hold a frame of the same shape, so one description (CFA =
 * sp + 176, each register in its slot) is right on either side of the sp
 * swap. A debugger or profiler stopping inside ctx_switch sees the suspending
 * context's caller before the swap and the resuming context's caller after.
 *
 * Object formats: ELF (Linux) and Mach-O (macOS) through the macros below,
 * as in switch_x86_64.S: Mach-O names C symbols with a leading underscore,
 * spells .hidden as .private_extern, and has no .type, .size, GNU property
 * note or .note.GNU-stack. Apple's arm64 ABI keeps the same callee-saved set
 * (x19-x28, fp, lr, d8-d15) and a 16-byte aligned sp, so the frame is the
 * same on both.
 */
#if defined(__APPLE__)
#define SYM(name) _##name
#define HIDDEN(name) .private_extern _##name
#define FUNC_TYPE(name)
#define FUNC_SIZE(name)
#else
#define SYM(name) name
#define HIDDEN(name) .hidden name
#define FUNC_TYPE(name) .type name, %function
#define FUNC_SIZE(name) .size name, .-name
#endif

#if defined(__aarch64__) && !defined(PYGORO_CONTEXT_UCONTEXT)

/* With -mbranch-protection (BTI), indirect calls must land on `bti c`. It is
 * a hint: a no-op on CPUs without BTI. */
#if defined(__ARM_FEATURE_BTI_DEFAULT)
#define BTI_C hint #34
#else
#define BTI_C
#endif

    .text
    .globl  SYM(ctx_switch)
    HIDDEN(ctx_switch)
    FUNC_TYPE(ctx_switch)
    .p2align 4
SYM(ctx_switch):                        /* x0 = from, x1 = to */
    .cfi_startproc
    BTI_C
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]
    .cfi_rel_offset x19, 0
    .cfi_rel_offset x20, 8
    stp     x21, x22, [sp, #16]
    .cfi_rel_offset x21, 16
    .cfi_rel_offset x22, 24
    stp     x23, x24, [sp, #32]
    .cfi_rel_offset x23, 32
    .cfi_rel_offset x24, 40
    stp     x25, x26, [sp, #48]
    .cfi_rel_offset x25, 48
    .cfi_rel_offset x26, 56
    stp     x27, x28, [sp, #64]
    .cfi_rel_offset x27, 64
    .cfi_rel_offset x28, 72
    stp     x29, x30, [sp, #80]
    .cfi_rel_offset x29, 80
    .cfi_rel_offset x30, 88
    stp     d8, d9, [sp, #96]
    .cfi_rel_offset d8, 96
    .cfi_rel_offset d9, 104
    stp     d10, d11, [sp, #112]
    .cfi_rel_offset d10, 112
    .cfi_rel_offset d11, 120
    stp     d12, d13, [sp, #128]
    .cfi_rel_offset d12, 128
    .cfi_rel_offset d13, 136
    stp     d14, d15, [sp, #144]
    .cfi_rel_offset d14, 144
    .cfi_rel_offset d15, 152
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x10, sp
    str     x10, [x0]                   /* from->sp: `from` is now suspended */
    ldr     x10, [x1]
    mov     sp, x10                     /* on `to`'s stack from here on */
    ldr     x10, [sp, #160]
    cmp     x9, x10
    b.eq    1f                          /* an FPCR write can cost more than the */
    msr     fpcr, x10                   /* rest of the switch: skip it if equal */
1:  ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    ret                                 /* to x30: the resumed context's caller */
    .cfi_endproc
    FUNC_SIZE(ctx_switch)

/* First code on a fresh stack. ctx_switch's `ret` lands here with sp at the
 * 16-byte aligned stack top (AAPCS64 wants sp 16-aligned at all times) and
 * entry in x19, arg in x20.
 *
 * The FDE starts one instruction before ctx_trampoline: ctx_make plants
 * ctx_trampoline as a return address, and unwinders look up return address
 * minus one to find the frame description, so that byte must be covered.
 * x30 undefined marks the outermost frame: debuggers and _Unwind_Backtrace
 * stop here instead of walking into the stack's unused top. */
    .p2align 4
#if defined(__APPLE__)
/* Mach-O: no symbol may sit inside a CFI frame, and its linkers tie an FDE
 * to the symbol it starts at, so here the symbol is on the nop and ctx_make
 * plants ctx_trampoline + 4 bytes (switch_aarch64_make.c) as the return address. */
    .globl  SYM(ctx_trampoline)
    HIDDEN(ctx_trampoline)
SYM(ctx_trampoline):
#endif
    .cfi_startproc
    .cfi_undefined x30
    nop
#if !defined(__APPLE__)
    .globl  ctx_trampoline
    .hidden ctx_trampoline
    .type   ctx_trampoline, %function
ctx_trampoline:
#endif
    mov     x29, xzr                    /* end of the frame-pointer chain */
    mov     x0, x20
    blr     x19
    brk     #0x3e8                      /* entry returned: SIGTRAP, as __builtin_trap */
    .cfi_endproc
    FUNC_SIZE(ctx_trampoline)

#endif

#if defined(__aarch64__) && defined(__ARM_FEATURE_BTI_DEFAULT) && defined(__ELF__)
/* Tell the linker this object is BTI-compatible (GNU property note), or it
 * drops the BTI marking of the whole output. Outside the guard above: every
 * .S is assembled for every target, and one object without the note, even
 * an empty one (the ucontext build), unmarks the output. Not PAC: ctx_switch
 * does not sign its return address. */
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long   4                           /* name size */
    .long   16                          /* descriptor size */
    .long   5                           /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000                  /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long   4
    .long   1                           /* GNU_PROPERTY_AARCH64_FEATURE_1_BTI */
    .long   0
    .popsection
#endif

#if defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
