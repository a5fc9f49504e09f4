/* Stack overflow reporting.
 *
 * A goroutine that runs off its stack faults on the guard page (guarded
 * stacks) or, for slab stacks, eventually past its gap (see stack.c). The
 * fault is delivered on the faulting thread, whose stack is the exhausted
 * one, so every M runs with an alternate signal stack (sigaltstack) and the
 * handler runs there. If the interrupted stack pointer is below the running
 * goroutine's stack, or the fault address lies just beneath it, we print
 * which goroutine overflowed and abort. Every other fault goes to whatever
 * handler was installed before ours (Python's faulthandler, a debugger's,
 * or the default action).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#if defined(__APPLE__)
#include <sys/ucontext.h> /* <ucontext.h> wants _XOPEN_SOURCE: deprecated API */
#else
#include <ucontext.h>
#endif

#include "sched.h"

#define ALTSTACK_SIZE (64 * 1024)
#define NEAR_BELOW (1024 * 1024) /* a fault this far under lo is an overflow */

static struct sigaction old_segv, old_bus;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

static uintptr_t interrupted_sp(void *uctx)
{
    ucontext_t *uc = uctx;
#if defined(__APPLE__) && defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext->__ss.__rsp;
#elif defined(__APPLE__) && defined(__aarch64__)
    /* the accessor, not __ss.__sp: the field is opaque where pointer
     * authentication signs it (arm64e) */
    return (uintptr_t)__darwin_arm_thread_state64_get_sp(uc->uc_mcontext->__ss);
#elif defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

static void chain(int sig, siginfo_t *si, void *uctx)
{
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: reinstall it and return; the fault repeats and kills
     * the process the normal way (core dump included). */
    signal(sig, SIG_DFL);
}

static void fault_handler(int sig, siginfo_t *si, void *uctx)
{
    struct m *mp = getm();
    struct g *gp = mp ? mp->curg : NULL;
    if (gp != NULL && !gp->is_thread && gp->stack.lo != 0) {
        uintptr_t addr = (uintptr_t)si->si_addr;
        uintptr_t sp = interrupted_sp(uctx);
        uintptr_t lo = gp->stack.lo;
        bool sp_below = sp != 0 && sp < lo + 128;
        bool addr_below = addr < lo && addr + NEAR_BELOW >= lo;
        if (sp_below || addr_below)
            rt_throw("stack overflow in goroutine %llu (%s): stack of %zu bytes exhausted; "
                     "raise it with PYGORO_STACK_SIZE or pygoro.runtime.set_stack_size()",
                     (unsigned long long)gp->goid, gp->label ? gp->label : "?", gp->stack_size);
    }
    chain(sig, si, uctx);
}

static void install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fault_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

void signal_install_overflow_handler(void)
{
    pthread_once(&install_once, install);
}

void signal_m_altstack(struct m *mp)
{
    (void)mp;
    stack_t ss;
    ss.ss_sp = malloc(ALTSTACK_SIZE);
    if (ss.ss_sp == NULL)
        return;
    ss.ss_size = ALTSTACK_SIZE;
    ss.ss_flags = 0;
    sigaltstack(&ss, NULL);
}

void signal_block_async(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    /* a blocked fault signal kills the process without running a handler */
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGTRAP);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, old);
}
