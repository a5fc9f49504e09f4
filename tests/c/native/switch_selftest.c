/* The context switch of csrc/arch on its own: no scheduler, no Python. Checks
 * the contract of arch/context.h on whichever implementation it is linked
 * with (x86-64 or aarch64 assembly, or ucontext), then times the switch.
 *
 *   entry       a fresh context runs entry(arg) on the given stack with the
 *               ABI's stack alignment, whatever the alignment of stack_lo and
 *               size, and with all 64 bits of arg; unwinding from entry ends
 *               cleanly at the trampoline; an entry that returns dies loudly
 *   registers   an assembly probe fills every callee-saved register with a
 *               pattern, switches through other contexts that do the same,
 *               and checks its pattern came back; many live C values at -O2
 *   fp control  each context keeps its own rounding mode and flush-to-zero
 *               bit (MXCSR and x87 control word; FPCR); a new context starts
 *               with the mode its creator had at ctx_make
 *   ping-pong   a random walk over several contexts; stacks suspended deep in
 *               a recursion while others recurse
 *   timing      ns per switch (one direction), best of five runs
 *
 *   switch_selftest [ROUND_TRIPS]   timed round trips, in five runs (default 1000000)
 *
 * Prints a line per check and "switch_selftest: all passed"; exits 1 with
 * "FAIL file:line" on the first failure. Built natively by
 * tests/c/test_switch.py and for aarch64 by tests/c/native/run_aarch64.sh:
 *
 *   cc -std=c11 -O2 -Wall -Wextra -Werror -Icsrc tests/c/native/switch_selftest.c \
 *      csrc/arch/\*.c csrc/arch/\*.S [-DPYGORO_CONTEXT_UCONTEXT]
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <unwind.h>

#include "arch/context.h"

#if defined(PYGORO_CONTEXT_UCONTEXT)
#define IMPL "ucontext"
#elif defined(__x86_64__)
#define IMPL "x86-64 asm"
#elif defined(__aarch64__)
#define IMPL "aarch64 asm"
#endif

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                           \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            exit(1);                                                                       \
        }                                                                                  \
    } while (0)

#define STACK_SIZE (256 * 1024)

static void *stack_alloc(size_t size)
{
    void *p = aligned_alloc(64, size);
    CHECK(p != NULL, "out of memory");
    return p;
}

/* Hides a value from the optimizer, so alignment it could infer is tested. */
static uintptr_t opaque(uintptr_t x)
{
    __asm__ volatile("" : "+r"(x));
    return x;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

/* ------------------------------------------------------------------------ */
/* Assembly probes, per CPU (the ABI's rules, not a compiler's choices):
 *
 *   entry_probe(arg)   a context entry: records sp as the entry saw it in
 *                      probe_sp, then tail-calls probe_entry(arg).
 *   regcheck(from, to, seed) -> mask
 *                      puts seed+1, seed+2, ... into every callee-saved
 *                      register, calls ctx_switch(from, to), and returns a
 *                      bit mask of the registers that did not come back.
 * `hint #34` is `bti c`, a no-op where BTI is off. */

#if defined(__x86_64__) || defined(__aarch64__)
#define HAVE_PROBES 1
__attribute__((used)) uintptr_t probe_sp; /* used: only the assembly touches it */
void entry_probe(void *arg);
unsigned regcheck(struct goro_context *from, struct goro_context *to, uint64_t seed);
#else
#define HAVE_PROBES 0
#endif

#if defined(__x86_64__)
#define STACK_ALIGN_AT_ENTRY 8 /* the call pushed a return address onto a 16-aligned rsp */
#define REGCHECK_NAMES "rbx rbp r12 r13 r14 r15"
__asm__(".text\n"
        ".globl entry_probe\n.hidden entry_probe\n.type entry_probe, @function\n"
        "entry_probe:\n"
        "    movq %rsp, probe_sp(%rip)\n"
        "    jmp probe_entry\n"
        ".size entry_probe, .-entry_probe\n"

        ".globl regcheck\n.hidden regcheck\n.type regcheck, @function\n"
        "regcheck:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n"
        "    pushq %r15\n"
        "    pushq %rdx\n" /* the seed; 7 pushes: rsp is 16-aligned for the call */
        "    leaq 1(%rdx), %rbx\n    leaq 2(%rdx), %rbp\n    leaq 3(%rdx), %r12\n"
        "    leaq 4(%rdx), %r13\n    leaq 5(%rdx), %r14\n    leaq 6(%rdx), %r15\n"
        "    call ctx_switch\n"
        "    popq %rdx\n"
        "    xorl %eax, %eax\n"
#define X86_CMP(n, reg, bit)                                                               \
    "    leaq " #n "(%rdx), %rcx\n    cmpq %rcx, " reg "\n    je 1f\n    orl $" #bit ", %eax\n" \
    "1:\n"
        X86_CMP(1, "%rbx", 1) X86_CMP(2, "%rbp", 2) X86_CMP(3, "%r12", 4) X86_CMP(4, "%r13", 8)
        X86_CMP(5, "%r14", 16) X86_CMP(6, "%r15", 32)
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n"
        "    popq %rbp\n"
        "    ret\n"
        ".size regcheck, .-regcheck\n");

#elif defined(__aarch64__)
#define STACK_ALIGN_AT_ENTRY 0 /* sp is 16-aligned at all times */
#define REGCHECK_NAMES "x19-x28 x29 d8-d15"
__asm__(".text\n"
        ".globl entry_probe\n.hidden entry_probe\n.type entry_probe, %function\n"
        "entry_probe:\n"
        "    hint #34\n"
        "    mov x9, sp\n"
        "    adrp x10, probe_sp\n"
        "    str x9, [x10, :lo12:probe_sp]\n"
        "    b probe_entry\n"
        ".size entry_probe, .-entry_probe\n"

        ".globl regcheck\n.hidden regcheck\n.type regcheck, %function\n"
        "regcheck:\n"
        "    hint #34\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    stp x19, x20, [sp, #16]\n    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n    str x2, [sp, #160]\n"
        "    add x19, x2, #1\n    add x20, x2, #2\n    add x21, x2, #3\n"
        "    add x22, x2, #4\n    add x23, x2, #5\n    add x24, x2, #6\n"
        "    add x25, x2, #7\n    add x26, x2, #8\n    add x27, x2, #9\n"
        "    add x28, x2, #10\n    add x29, x2, #11\n"
        "    add x9, x2, #12\n    fmov d8, x9\n    add x9, x2, #13\n    fmov d9, x9\n"
        "    add x9, x2, #14\n    fmov d10, x9\n    add x9, x2, #15\n    fmov d11, x9\n"
        "    add x9, x2, #16\n    fmov d12, x9\n    add x9, x2, #17\n    fmov d13, x9\n"
        "    add x9, x2, #18\n    fmov d14, x9\n    add x9, x2, #19\n    fmov d15, x9\n"
        "    bl ctx_switch\n"
        "    ldr x2, [sp, #160]\n"
        "    mov w0, #0\n"
#define A64_CMP(n, reg, bit)                                                               \
    "    add x9, x2, #" #n "\n    cmp " reg ", x9\n    b.eq 1f\n    orr w0, w0, #" #bit "\n" \
    "1:\n"
#define A64_FCMP(n, reg, bit)                                                              \
    "    fmov x10, " reg "\n" A64_CMP(n, "x10", bit)
        A64_CMP(1, "x19", 0x1) A64_CMP(2, "x20", 0x2) A64_CMP(3, "x21", 0x4)
        A64_CMP(4, "x22", 0x8) A64_CMP(5, "x23", 0x10) A64_CMP(6, "x24", 0x20)
        A64_CMP(7, "x25", 0x40) A64_CMP(8, "x26", 0x80) A64_CMP(9, "x27", 0x100)
        A64_CMP(10, "x28", 0x200) A64_CMP(11, "x29", 0x400)
        A64_FCMP(12, "d8", 0x800) A64_FCMP(13, "d9", 0x1000) A64_FCMP(14, "d10", 0x2000)
        A64_FCMP(15, "d11", 0x4000) A64_FCMP(16, "d12", 0x8000) A64_FCMP(17, "d13", 0x10000)
        A64_FCMP(18, "d14", 0x20000) A64_FCMP(19, "d15", 0x40000)
        "    ldp x19, x20, [sp, #16]\n    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size regcheck, .-regcheck\n");
#endif

/* The floating-point control state as raw bits (status flags masked out),
 * and the flush-to-zero bit, which fesetround does not reach. */
#if defined(__x86_64__)
static uint64_t fpctl_get(void)
{
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return (mxcsr & ~(uint32_t)0x3f) | ((uint64_t)cw << 32);
}
static void fpctl_set_ftz(int on)
{
    uint32_t mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr = on ? mxcsr | 0x8000 : mxcsr & ~(uint32_t)0x8000;
    __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
}
#elif defined(__aarch64__)
static uint64_t fpctl_get(void)
{
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
}
static void fpctl_set_ftz(int on)
{
    uint64_t fpcr = fpctl_get();
    fpcr = on ? fpcr | (1u << 24) : fpcr & ~(uint64_t)(1u << 24);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}
#else
static uint64_t fpctl_get(void)
{
    return (uint64_t)fegetround();
}
static void fpctl_set_ftz(int on)
{
    (void)on;
}
#endif

/* ------------------------------------------------------------------------ */
/* entry: alignment, arg, stack bounds, unwinding, reuse of a stack */

static struct goro_context entry_main, entry_ctx;
static void *entry_arg_seen;
static uintptr_t entry_local_addr, entry_frame_addr;
static int entry_unwind_rc, entry_unwind_depth;
static uintptr_t entry_unwind_last;

static _Unwind_Reason_Code unwind_cb(struct _Unwind_Context *uc, void *arg)
{
    (void)arg;
    uintptr_t ip = (uintptr_t)_Unwind_GetIP(uc);
    if (ip == 0) /* libgcc reports the end of the stack as one more frame with no ip */
        return _URC_NO_REASON;
    entry_unwind_depth++;
    entry_unwind_last = ip;
    return entry_unwind_depth > 64 ? _URC_NORMAL_STOP : _URC_NO_REASON;
}

/* Not static, and `used`: only entry_probe refers to it. */
void probe_entry(void *arg);
__attribute__((used)) void probe_entry(void *arg)
{
    _Alignas(16) volatile char local[16];
    local[0] = 1;
    entry_arg_seen = arg;
    entry_local_addr = opaque((uintptr_t)local);
    entry_frame_addr = opaque((uintptr_t)__builtin_frame_address(0));
    entry_unwind_depth = 0;
    entry_unwind_rc = _Unwind_Backtrace(unwind_cb, NULL);
    ctx_switch(&entry_ctx, &entry_main); /* never resumed */
    abort();
}

static void test_entry(void)
{
    static const size_t offsets[] = {0, 1, 3, 8, 15, 16, 40};
    static const size_t trims[] = {0, 1, 7, 8, 9, 24, 4096 + 5};
    /* all 64 bits of arg must arrive, including the high half */
    uintptr_t args[] = {0, 1, (uintptr_t)&entry_main, (uintptr_t)UINT64_C(0xfedcba9876543210),
                        (uintptr_t)UINT64_C(0x80000000ffffffff), (uintptr_t)-1};
    size_t size = STACK_SIZE;
    char *mem = stack_alloc(size + 64);
    int runs = 0;
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        for (size_t j = 0; j < sizeof trims / sizeof *trims; j++) {
            char *lo = mem + offsets[i];
            size_t sz = size - trims[j];
            uintptr_t hi = (uintptr_t)lo + sz;
            void *arg = (void *)args[runs % (sizeof args / sizeof *args)];
            memset(mem, 0xa5, size + 64); /* a reused stack holds garbage */
#if HAVE_PROBES
            probe_sp = 0;
            ctx_make(&entry_ctx, lo, sz, entry_probe, arg);
#else
            ctx_make(&entry_ctx, lo, sz, probe_entry, arg);
#endif
            ctx_switch(&entry_main, &entry_ctx);
            CHECK(entry_arg_seen == arg, "arg %p arrived as %p", arg, entry_arg_seen);
#if HAVE_PROBES
            CHECK(probe_sp % 16 == STACK_ALIGN_AT_ENTRY,
                  "sp at entry is %#lx: %lu mod 16, the ABI wants %d (stack_lo+%zu, size-%zu)",
                  (unsigned long)probe_sp, (unsigned long)(probe_sp % 16), STACK_ALIGN_AT_ENTRY,
                  offsets[i], trims[j]);
            CHECK(probe_sp > (uintptr_t)lo && probe_sp <= hi, "entry not on the given stack");
            CHECK(hi - probe_sp < 4096, "entry starts %lu bytes below the stack top",
                  (unsigned long)(hi - probe_sp));
#endif
            CHECK(entry_local_addr % 16 == 0, "a 16-aligned local at %#lx",
                  (unsigned long)entry_local_addr);
            CHECK(entry_local_addr > (uintptr_t)lo && entry_local_addr < hi,
                  "entry's locals not on the given stack");
            CHECK(entry_frame_addr % 16 == 0, "frame address %#lx not 16-aligned",
                  (unsigned long)entry_frame_addr);
            CHECK(entry_unwind_rc == _URC_END_OF_STACK,
                  "unwinding from entry ended with %d after %d frames, not at the trampoline",
                  entry_unwind_rc, entry_unwind_depth);
            CHECK(entry_unwind_depth <= 4, "unwound %d frames from entry", entry_unwind_depth);
#if !defined(PYGORO_CONTEXT_UCONTEXT)
            {
                extern void ctx_trampoline(void);
                uintptr_t t = (uintptr_t)ctx_trampoline;
                CHECK(entry_unwind_last > t && entry_unwind_last < t + 64,
                      "the outermost frame is not ctx_trampoline");
            }
#endif
            runs++;
        }
    }
    free(mem);
    printf("entry: %d stack shapes, sp %% 16 == %d at entry, arg intact, unwinding stops "
           "at the trampoline after %d frames\n",
           runs, HAVE_PROBES ? STACK_ALIGN_AT_ENTRY : -1, entry_unwind_depth);
}

/* An entry that returns must crash at once, not run off the top of its stack. */
static struct goro_context ret_main, ret_ctx;

static void returning_entry(void *arg)
{
    (void)arg;
}

static void test_entry_return_traps(void)
{
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        void *stack = stack_alloc(STACK_SIZE);
        ctx_make(&ret_ctx, stack, STACK_SIZE, returning_entry, NULL);
        ctx_switch(&ret_main, &ret_ctx);
        _exit(0); /* only if the returning context somehow came back here */
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(status), "an entry that returned did not trap (status %#x)", status);
    int sig = WTERMSIG(status);
    CHECK(sig == SIGILL || sig == SIGTRAP || sig == SIGABRT, "entry return: signal %d", sig);
    /* (qemu-user reports the child's signal on stderr: that is this.) */
    printf("entry return: a child whose entry returned died of %s, as it must\n",
           strsignal(sig));
}

/* ------------------------------------------------------------------------ */
/* registers: three contexts in a ring, each running the assembly probe and a
 * C function with many live values, so that every switch goes from one
 * register pattern to another. */

#define RING 3
static struct goro_context ring_ctx[RING]; /* [0] is main */
static unsigned ring_fail_mask[RING];
static long ring_fail_count, ring_live_fail;

struct live_in {
    volatile uint64_t i[16];
    volatile double d[10];
};
static struct live_in live_in[RING];

/* Sixteen integers and ten doubles, read through volatile so they cannot be
 * recomputed after the switch: the compiler must keep them in callee-saved
 * registers or in its frame across ctx_switch. */
__attribute__((noinline)) static void live_values(int self, int next)
{
    struct live_in *in = &live_in[self];
    uint64_t a0 = in->i[0], a1 = in->i[1], a2 = in->i[2], a3 = in->i[3], a4 = in->i[4],
             a5 = in->i[5], a6 = in->i[6], a7 = in->i[7], a8 = in->i[8], a9 = in->i[9],
             a10 = in->i[10], a11 = in->i[11], a12 = in->i[12], a13 = in->i[13],
             a14 = in->i[14], a15 = in->i[15];
    double d0 = in->d[0], d1 = in->d[1], d2 = in->d[2], d3 = in->d[3], d4 = in->d[4],
           d5 = in->d[5], d6 = in->d[6], d7 = in->d[7], d8 = in->d[8], d9 = in->d[9];
    ctx_switch(&ring_ctx[self], &ring_ctx[next]);
    int bad = (a0 != in->i[0]) + (a1 != in->i[1]) + (a2 != in->i[2]) + (a3 != in->i[3]) +
              (a4 != in->i[4]) + (a5 != in->i[5]) + (a6 != in->i[6]) + (a7 != in->i[7]) +
              (a8 != in->i[8]) + (a9 != in->i[9]) + (a10 != in->i[10]) +
              (a11 != in->i[11]) + (a12 != in->i[12]) + (a13 != in->i[13]) +
              (a14 != in->i[14]) + (a15 != in->i[15]) + (d0 != in->d[0]) +
              (d1 != in->d[1]) + (d2 != in->d[2]) + (d3 != in->d[3]) + (d4 != in->d[4]) +
              (d5 != in->d[5]) + (d6 != in->d[6]) + (d7 != in->d[7]) + (d8 != in->d[8]) +
              (d9 != in->d[9]);
    ring_live_fail += bad;
}

static void ring_step(int self)
{
    int next = (self + 1) % RING;
#if HAVE_PROBES
    unsigned m = regcheck(&ring_ctx[self], &ring_ctx[next], (uint64_t)(self + 1) << 40);
    if (m) {
        ring_fail_mask[self] |= m;
        ring_fail_count++;
    }
#endif
    live_values(self, next);
}

static void ring_entry(void *arg)
{
    int self = (int)(intptr_t)arg;
    for (;;)
        ring_step(self);
}

static void test_registers(void)
{
    void *stacks[RING];
    for (int c = 0; c < RING; c++) {
        for (int k = 0; k < 16; k++)
            live_in[c].i[k] = ((uint64_t)(c + 1) << 56) ^ (UINT64_C(0x9e3779b97f4a7c15) * (k + 1));
        for (int k = 0; k < 10; k++)
            live_in[c].d[k] = (c + 1) * 1000.0 + k / 7.0;
        if (c > 0) {
            stacks[c] = stack_alloc(STACK_SIZE);
            ctx_make(&ring_ctx[c], stacks[c], STACK_SIZE, ring_entry, (void *)(intptr_t)c);
        }
    }
    int rounds = 20000;
    for (int r = 0; r < rounds; r++)
        ring_step(0);
    for (int c = 0; c < RING; c++)
        CHECK(ring_fail_mask[c] == 0, "context %d: callee-saved registers lost, mask %#x of %s",
              c, ring_fail_mask[c], REGCHECK_NAMES);
    CHECK(ring_fail_count == 0, "registers lost");
    CHECK(ring_live_fail == 0, "%ld live C values lost across switches", ring_live_fail);
    for (int c = 1; c < RING; c++)
        free(stacks[c]); /* suspended for good */
    printf("registers: %s and 26 live C values intact over %d switches\n",
           HAVE_PROBES ? REGCHECK_NAMES : "(no probe for this CPU)", 2 * RING * rounds);
}

/* ------------------------------------------------------------------------ */
/* fp control: main and three contexts, each with its own rounding mode and
 * flush-to-zero bit, passed around a ring. */

#define FP_N 4
static const int fp_modes[FP_N] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};
static struct goro_context fp_ctx[FP_N];
static double fp_ref[FP_N][3]; /* 1/3, 1/10, -1/3 under each mode: all different */
static volatile double fp_one = 1.0, fp_ten = 10.0, fp_three = 3.0;
#if defined(__x86_64__)
static long double fp_ref_x87[FP_N];
static volatile long double fp_one_x87 = 1.0L, fp_three_x87 = 3.0L;
#endif
static int fp_rounds;

static void fp_quotients(double q[3])
{
    q[0] = fp_one / fp_three;
    q[1] = fp_one / fp_ten; /* the one that rounds up to nearest */
    q[2] = -fp_one / fp_three;
}

/* Checks the mode of context `self`, both as the library sees it and as the
 * arithmetic (SSE and x87 on x86-64) sees it. */
static void fp_check(int self, uint64_t want_ctl)
{
    double q[3];
    fp_quotients(q);
    CHECK(fegetround() == fp_modes[self], "context %d: rounding mode %#x, want %#x", self,
          fegetround(), fp_modes[self]);
    CHECK(memcmp(q, fp_ref[self], sizeof q) == 0, "context %d: arithmetic rounds wrongly",
          self);
#if defined(__x86_64__)
    CHECK(fp_one_x87 / fp_three_x87 == fp_ref_x87[self], "context %d: x87 rounds wrongly",
          self);
#endif
    CHECK(fpctl_get() == want_ctl, "context %d: fp control %#llx, want %#llx", self,
          (unsigned long long)fpctl_get(), (unsigned long long)want_ctl);
}

static void fp_enter_mode(int self)
{
    fesetround(fp_modes[self]);
    fpctl_set_ftz(self & 1);
}

static void fp_entry(void *arg)
{
    int self = (int)(intptr_t)arg;
    fp_enter_mode(self);
    uint64_t ctl = fpctl_get();
    for (;;) {
        ctx_switch(&fp_ctx[self], &fp_ctx[(self + 1) % FP_N]);
        fp_check(self, ctl);
    }
}

static uint64_t inherit_ctl_seen;
static int inherit_round_seen;
static struct goro_context inherit_ctx;

static void inherit_entry(void *arg)
{
    (void)arg;
    inherit_ctl_seen = fpctl_get();
    inherit_round_seen = fegetround();
    ctx_switch(&inherit_ctx, &fp_ctx[0]);
    abort();
}

static void test_fp_control(void)
{
    for (int m = 0; m < FP_N; m++) {
        fesetround(fp_modes[m]);
        fp_quotients(fp_ref[m]);
#if defined(__x86_64__)
        fp_ref_x87[m] = fp_one_x87 / fp_three_x87;
#endif
    }
    fesetround(FE_TONEAREST);
    for (int a = 0; a < FP_N; a++)
        for (int b = 0; b < a; b++)
            CHECK(memcmp(fp_ref[a], fp_ref[b], sizeof fp_ref[a]) != 0,
                  "modes %d and %d round alike: the check would be blind", a, b);

    /* a new context starts with its creator's mode at ctx_make */
    void *istack = stack_alloc(STACK_SIZE);
    fesetround(FE_TOWARDZERO);
    fpctl_set_ftz(1);
    uint64_t creator_ctl = fpctl_get();
    ctx_make(&inherit_ctx, istack, STACK_SIZE, inherit_entry, NULL);
    fesetround(FE_TONEAREST);
    fpctl_set_ftz(0);
    uint64_t main_ctl = fpctl_get();
    ctx_switch(&fp_ctx[0], &inherit_ctx);
    CHECK(inherit_round_seen == FE_TOWARDZERO && inherit_ctl_seen == creator_ctl,
          "a new context did not start with its creator's fp mode (%#llx, want %#llx)",
          (unsigned long long)inherit_ctl_seen, (unsigned long long)creator_ctl);
    CHECK(fpctl_get() == main_ctl, "main lost its fp mode to a new context");
    free(istack);

    void *stacks[FP_N];
    for (int c = 1; c < FP_N; c++) {
        stacks[c] = stack_alloc(STACK_SIZE);
        ctx_make(&fp_ctx[c], stacks[c], STACK_SIZE, fp_entry, (void *)(intptr_t)c);
    }
    fp_enter_mode(0);
    main_ctl = fpctl_get();
    fp_rounds = 20000;
    for (int r = 0; r < fp_rounds; r++) {
        ctx_switch(&fp_ctx[0], &fp_ctx[1]);
        fp_check(0, main_ctl);
    }
    for (int c = 1; c < FP_N; c++)
        free(stacks[c]);
    printf("fp control: 4 contexts kept their own rounding mode and flush-to-zero over %d "
           "switches; a new context inherits its creator's\n",
           FP_N * fp_rounds);
}

/* ------------------------------------------------------------------------ */
/* ping-pong: a random walk over main and WALK contexts. Whoever holds the
 * token checks it was meant for it and that its own count of resumptions
 * (a local, on its own stack) matches the walk's. */

#define WALK 6
static struct goro_context walk_ctx[WALK + 1]; /* [0] is main */
static volatile int walk_cur;
static long walk_resumes[WALK + 1];
static long walk_left;

static void walk_pass(int self)
{
    int next = 0;
    if (--walk_left > 0) {
        next = (int)(rng() % WALK);
        if (next >= self)
            next++; /* any context but self */
    }
    walk_resumes[next]++;
    walk_cur = next;
    if (next != self) /* only main, at the end of the walk */
        ctx_switch(&walk_ctx[self], &walk_ctx[next]);
    CHECK(walk_cur == self, "context %d resumed while the token was %d's", self, walk_cur);
}

static void walk_entry(void *arg)
{
    int self = (int)(intptr_t)arg;
    long mine = 0;
    for (;;) {
        mine++;
        CHECK(walk_cur == self && mine == walk_resumes[self],
              "context %d: token %d, resumed %ld times by its count, %ld by the walk's", self,
              walk_cur, mine, walk_resumes[self]);
        walk_pass(self);
    }
}

static void test_ping_pong(void)
{
    void *stacks[WALK + 1];
    for (int c = 1; c <= WALK; c++) {
        stacks[c] = stack_alloc(STACK_SIZE);
        ctx_make(&walk_ctx[c], stacks[c], STACK_SIZE, walk_entry, (void *)(intptr_t)c);
    }
    long steps = 200000;
    walk_left = steps;
    walk_cur = 0;
    while (walk_left > 0)
        walk_pass(0);
    long total = 0;
    for (int c = 0; c <= WALK; c++)
        total += walk_resumes[c];
    CHECK(total == steps, "%ld resumptions for %ld passes", total, steps);
    for (int c = 1; c <= WALK; c++) {
        CHECK(walk_resumes[c] > steps / (4 * WALK), "context %d hardly ran", c);
        free(stacks[c]);
    }
    printf("ping-pong: random walk of %ld switches over %d contexts\n", steps, WALK + 1);
}

/* deep stacks: two contexts suspended at the bottom of a recursion that fills
 * most of their stacks, while main recurses on its own stack in between. */

#define DEEP_FRAME 1024
#define DEEP_DEPTH 160 /* ~180 KiB of a 256 KiB stack */
static struct goro_context deep_main, deep_ctx[2];
static char *deep_lo[2];
static int deep_ok[2];

static int deep(int who, int depth, uintptr_t lo, uintptr_t hi)
{
    volatile unsigned char buf[DEEP_FRAME];
    unsigned char tag = (unsigned char)(depth * 7 + who * 101);
    for (int i = 0; i < DEEP_FRAME; i++)
        buf[i] = (unsigned char)(tag + i);
    uintptr_t here = (uintptr_t)buf;
    int ok = lo == 0 || (here > lo && here < hi);
    if (depth > 0)
        ok &= deep(who, depth - 1, lo, hi);
    else if (who >= 0)
        ctx_switch(&deep_ctx[who], &deep_main);
    for (int i = 0; i < DEEP_FRAME; i++)
        ok &= buf[i] == (unsigned char)(tag + i);
    return ok;
}

static void deep_entry(void *arg)
{
    int who = (int)(intptr_t)arg;
    uintptr_t lo = (uintptr_t)deep_lo[who];
    deep_ok[who] = deep(who, DEEP_DEPTH, lo, lo + STACK_SIZE);
    ctx_switch(&deep_ctx[who], &deep_main);
    abort();
}

static void test_deep_stacks(void)
{
    for (int w = 0; w < 2; w++) {
        deep_lo[w] = stack_alloc(STACK_SIZE);
        ctx_make(&deep_ctx[w], deep_lo[w], STACK_SIZE, deep_entry, (void *)(intptr_t)w);
    }
    ctx_switch(&deep_main, &deep_ctx[0]); /* 0 descends and suspends */
    CHECK(deep(-1, DEEP_DEPTH / 2, 0, 0), "main's own stack");
    ctx_switch(&deep_main, &deep_ctx[1]); /* 1 descends and suspends */
    CHECK(deep(-1, DEEP_DEPTH / 2, 0, 0), "main's own stack");
    ctx_switch(&deep_main, &deep_ctx[0]); /* 0 climbs back, checking */
    ctx_switch(&deep_main, &deep_ctx[1]);
    CHECK(deep_ok[0] && deep_ok[1], "a suspended stack changed or was not the given one");
    for (int w = 0; w < 2; w++)
        free(deep_lo[w]);
    printf("deep stacks: 2 contexts suspended %d frames deep, intact\n", DEEP_DEPTH);
}

/* ------------------------------------------------------------------------ */
/* timing */

static struct goro_context time_main, time_ctx;

static void time_entry(void *arg)
{
    (void)arg;
    for (;;)
        ctx_switch(&time_ctx, &time_main);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_timing(long iters)
{
    void *stack = stack_alloc(64 * 1024);
    ctx_make(&time_ctx, stack, 64 * 1024, time_entry, NULL);
    long per_run = iters / 5 > 0 ? iters / 5 : 1;
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        int64_t t0 = now_ns();
        for (long i = 0; i < per_run; i++)
            ctx_switch(&time_main, &time_ctx); /* two switches per iteration */
        double ns = (double)(now_ns() - t0) / (2.0 * (double)per_run);
        if (ns < best)
            best = ns;
    }
    free(stack);
    printf("timing: %.1f ns per switch (%s, best of 5 runs of %ld round trips)\n", best, IMPL,
           per_run);
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 1000000;
    CHECK(iters > 0, "usage: switch_selftest [ROUND_TRIPS]");
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("switch_selftest: %s\n", IMPL);
    test_entry();
    test_entry_return_traps();
    test_registers();
    test_fp_control();
    test_ping_pong();
    test_deep_stacks();
    test_timing(iters);
    printf("switch_selftest: all passed\n");
    return 0;
}
