/* Goroutine stacks.
 *
 * A goroutine is one allocation: its stack, with its struct g at the top
 * (highest addresses), so a new goroutine touches a single page for both its
 * descriptor and its first frames. Stacks never move or grow; the size is
 * fixed per goroutine (goro_set_stack_size, $PYGORO_STACK_SIZE).
 *
 * Guard pages vs. the mapping limit. Linux allows vm.max_map_count (65530 by
 * default) mappings per process, and a stack with a PROT_NONE guard page
 * below it costs two (the guard splits the area), so guarding every stack
 * caps a process near 32k goroutines. We therefore guard only the first
 * guard_budget stacks (default 4096, $PYGORO_GUARDED_STACKS) - enough for
 * typical programs, where every stack then faults cleanly on overflow - and
 * carve the rest out of big slabs with no guard page:
 *
 *     slab: | hdr | gap | stack 0 | gap | stack 1 | ... |      (one mapping)
 *                 ^c0               ^c1
 *
 * Each slab stack is preceded by an untouched gap (STACK_GAP) that costs no
 * memory (MAP_NORESERVE, never written): an overflow of up to 64 KiB lands
 * there and corrupts nothing. Below each gap sits that stack's canary (c0,
 * c1...), in the top page of the stack beneath it (or the slab's header page
 * for stack 0) - a page that is resident anyway because the neighbour's
 * struct g lives there, so the canary costs no memory. An overflow that
 * escapes the gap smashes the canary first; stack_check, run every time a
 * goroutine switches out, then ends the process with a message naming the
 * goroutine instead of letting corruption spread silently. (A canary at the
 * bottom of the stack itself would touch one more page per goroutine: 4 KiB
 * of RSS on a parked C goroutine that otherwise needs about 4 KiB.)
 * Python code never gets that far: the bridge scales CPython's C-recursion
 * budget to the stack so deep recursion raises RecursionError.
 *
 * Freed stacks are reused: the scheduler keeps dead Gs with their stacks on
 * per-P and global free lists (proc.c). Only the overflow of those lists
 * reaches stack_free_g, which returns memory to the OS (munmap for guarded
 * stacks, MADV_DONTNEED (MADV_FREE on macOS) and a free list for slab
 * stacks).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sched.h"

/* macOS has no MAP_STACK (a hint on Linux) and keeps MAP_NORESERVE for
 * compatibility only: its anonymous memory is committed lazily anyway. Its
 * MADV_DONTNEED only lowers the pages' priority and keeps them resident;
 * MADV_FREE lets the kernel take them back (nothing reads a freed stack's
 * old contents: g_at_top rewrites the struct g, the canary lives in the
 * page kept below). */
#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif
#if defined(__APPLE__)
#define STACK_RELEASE_ADVICE MADV_FREE
#else
#define STACK_RELEASE_ADVICE MADV_DONTNEED
#endif

#define STACK_MIN (16 * 1024)
#define STACK_DEFAULT (64 * 1024)
#define STACK_GAP (64 * 1024)
#define SLAB_STACKS 64
#define GUARD_BUDGET_DEFAULT 4096
#define CANARY_WORDS 4
#define CANARY_BYTES (CANARY_WORDS * 8)
static const uint64_t STACK_CANARY = 0x676f726f53544b21ull; /* "goroSTK!" */

/* Size classes: in practice two (C goroutines and Python goroutines). */
#define MAX_CLASSES 8
struct stack_class {
    size_t size;
    uintptr_t *free; /* lo addresses of free slab stacks */
    size_t nfree, cap;
    uintptr_t slab_next, slab_end; /* bump allocation in the current slab */
};

static struct {
    struct rtlock lock;
    size_t page;
    _Atomic size_t default_size;
    long guard_budget;
    struct stack_class classes[MAX_CLASSES];
    int nclasses;
    _Atomic uint64_t mapped;
    _Atomic uint64_t guarded; /* currently allocated guarded stacks */
} stk = {.lock = RTLOCK_INIT};

static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

static size_t env_size(const char *name, size_t dflt)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return dflt;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == 'k' || *end == 'K')
        v *= 1024;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024;
    return (size_t)v;
}

static void stack_init(void)
{
    stk.page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sz = env_size("PYGORO_STACK_SIZE", STACK_DEFAULT);
    if (sz < STACK_MIN)
        sz = STACK_MIN;
    sz = (sz + stk.page - 1) & ~(stk.page - 1);
    atomic_store(&stk.default_size, sz);
    stk.guard_budget = (long)env_size("PYGORO_GUARDED_STACKS", GUARD_BUDGET_DEFAULT);
}

size_t stack_default_size(void)
{
    pthread_once(&stack_once, stack_init);
    return atomic_load_explicit(&stk.default_size, memory_order_relaxed);
}

size_t stack_set_default_size(size_t size)
{
    pthread_once(&stack_once, stack_init);
    size_t old = atomic_load(&stk.default_size);
    if (size == 0)
        return old;
    if (size < STACK_MIN)
        size = STACK_MIN;
    size = (size + stk.page - 1) & ~(stk.page - 1);
    atomic_store(&stk.default_size, size);
    return old;
}

size_t goro_set_stack_size(size_t bytes)
{
    return stack_set_default_size(bytes);
}

static struct stack_class *class_for(size_t size)
{
    for (int i = 0; i < stk.nclasses; i++)
        if (stk.classes[i].size == size)
            return &stk.classes[i];
    if (stk.nclasses == MAX_CLASSES)
        return NULL; /* unusual sizes get guarded one-off mappings */
    struct stack_class *c = &stk.classes[stk.nclasses++];
    memset(c, 0, sizeof *c);
    c->size = size;
    return c;
}

/* Cache colouring. Stacks are page-aligned and of one size, so without it
 * every struct g, and every goroutine's first frames, sits at the same
 * offset in its page, and those lines fall into a few sets of each cache:
 * L1 indexes by the offset in the page alone, and this machine's L2
 * (2 MiB, 16 ways, a 128 KiB period) into 32 sets of 16 lines for stacks
 * 516 KiB apart. A pass over 1000 woken Gs (a cancel readying 1000
 * goroutines from a thread, go_ready_list then globrunq_put_batch) missed
 * on every G the second time round. Each new stack therefore shifts its G
 * and its frames down by one of STACK_COLORS cache lines in turn: at most
 * 960 bytes, which keeps a parked goroutine's G and frames in its top page
 * (a parked Python goroutine uses about 1.1 KiB below its G). */
#define STACK_COLORS 16
static _Atomic uint32_t next_color;

/* Place the struct g at the top of [lo, lo+size), below the CANARY_BYTES
 * reserved there for the canary of the slab stack above (see the top) and
 * this stack's colour. */
static struct g *g_at_top(uintptr_t lo, size_t size, bool guarded)
{
    uint32_t color =
        atomic_fetch_add_explicit(&next_color, 1, memory_order_relaxed) % STACK_COLORS;
    uintptr_t top = lo + size - CANARY_BYTES - (uintptr_t)color * 64;
    uintptr_t gaddr = (top - sizeof(struct g)) & ~(uintptr_t)63;
    struct g *gp = (struct g *)gaddr;
    memset(gp, 0, sizeof *gp);
    gp->stack.lo = lo;
    gp->stack.hi = gaddr;
    gp->stack_guarded = guarded;
    gp->stack_size = size;
    if (!guarded) {
        uint64_t *canary = (uint64_t *)(lo - STACK_GAP - CANARY_BYTES);
        for (int i = 0; i < CANARY_WORDS; i++)
            canary[i] = STACK_CANARY;
        gp->stack_canary = canary;
    }
    return gp;
}

static struct g *alloc_guarded(size_t size)
{
    size_t total = size + stk.page;
    void *p = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (mprotect(p, stk.page, PROT_NONE) != 0) {
        munmap(p, total);
        return NULL;
    }
    atomic_fetch_add_explicit(&stk.mapped, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stk.guarded, 1, memory_order_relaxed);
    return g_at_top((uintptr_t)p + stk.page, size, true);
}

struct g *stack_alloc_g(size_t size)
{
    pthread_once(&stack_once, stack_init);
    if (size == 0)
        size = atomic_load_explicit(&stk.default_size, memory_order_relaxed);
    size = (size + stk.page - 1) & ~(stk.page - 1);

    if ((long)atomic_load_explicit(&stk.guarded, memory_order_relaxed) < stk.guard_budget) {
        struct g *gp = alloc_guarded(size);
        if (gp)
            return gp;
    }

    rtlock_lock(&stk.lock);
    struct stack_class *c = class_for(size);
    if (!c) {
        rtlock_unlock(&stk.lock);
        return alloc_guarded(size);
    }
    uintptr_t lo = 0;
    if (c->nfree > 0) {
        lo = c->free[--c->nfree];
    } else {
        size_t slot = STACK_GAP + size;
        if (c->slab_next == c->slab_end) {
            /* one header page holds stack 0's canary */
            size_t bytes = stk.page + slot * SLAB_STACKS;
            void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
            if (p == MAP_FAILED) {
                rtlock_unlock(&stk.lock);
                return NULL;
            }
            c->slab_next = (uintptr_t)p + stk.page;
            c->slab_end = (uintptr_t)p + bytes;
        }
        lo = c->slab_next + STACK_GAP;
        c->slab_next += slot;
        atomic_fetch_add_explicit(&stk.mapped, 1, memory_order_relaxed);
    }
    rtlock_unlock(&stk.lock);
    return g_at_top(lo, size, false);
}

#if defined(__SANITIZE_ADDRESS__)
void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

void stack_free_g(struct g *gp)
{
    uintptr_t lo = gp->stack.lo;
    size_t size = gp->stack_size;
#if defined(__SANITIZE_ADDRESS__)
    /* ASAN's markings of the dead goroutine's frames must not outlive the
     * stack: an unmapped range can come back to anyone. */
    __asan_unpoison_memory_region((void *)lo, gp->stack.hi - lo);
#endif
    if (gp->stack_guarded) {
        atomic_fetch_sub_explicit(&stk.guarded, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&stk.mapped, 1, memory_order_relaxed);
        munmap((void *)(lo - stk.page), size + stk.page);
        return;
    }
    /* Give the pages back, except the top one: it holds the canary of the
     * stack above, which must survive. The range stays ours for reuse. */
    if (size > stk.page)
        madvise((void *)lo, size - stk.page, STACK_RELEASE_ADVICE);
    rtlock_lock(&stk.lock);
    struct stack_class *c = class_for(size);
    if (c) {
        if (c->nfree == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 256;
            uintptr_t *nf = realloc(c->free, ncap * sizeof *nf);
            if (nf) {
                c->free = nf;
                c->cap = ncap;
            }
        }
        if (c->nfree < c->cap)
            c->free[c->nfree++] = lo;
    }
    rtlock_unlock(&stk.lock);
}

size_t stack_size_of(struct g *gp)
{
    return gp->stack_size;
}

void stack_check(struct g *gp)
{
    if (gp->is_thread || gp->stack.lo == 0)
        return;
    const uint64_t *canary = gp->stack_canary;
    if (canary == NULL)
        return; /* guarded: the guard page faults instead */
    if (unlikely(canary[CANARY_WORDS - 1] != STACK_CANARY || canary[0] != STACK_CANARY))
        rt_throw("stack overflow in goroutine %llu (%s): stack of %zu bytes exhausted; "
                 "raise it with PYGORO_STACK_SIZE or pygoro.runtime.set_stack_size()",
                 (unsigned long long)gp->goid, gp->label ? gp->label : "?", gp->stack_size);
}

/* The guard page of gp's stack, for the SIGSEGV handler (0 if unguarded). */
uintptr_t stack_guard_page(struct g *gp)
{
    return gp->stack_guarded ? gp->stack.lo - stk.page : 0;
}

void stack_stats(uint64_t *mapped, uint64_t *guarded)
{
    *mapped = atomic_load_explicit(&stk.mapped, memory_order_relaxed);
    *guarded = atomic_load_explicit(&stk.guarded, memory_order_relaxed);
}
