/* Run queues: the per-P lock-free ring and the global queue.
 *
 * The local queue is Go's: a ring of RUNQ_SIZE slots where only the owning P
 * writes slots and advances tail, while the owner and thieves take from head
 * with a CAS. A consumer reads the slots first and then CASes head past them:
 * if the CAS fails somebody else took them and the copy is discarded, so a
 * slot read "too late" (after the owner reused it) never counts.
 *
 * Memory orders:
 *  - the owner stores slots (relaxed) and then tail with release; a consumer
 *    loads tail with acquire, so the slots it then reads are the published Gs;
 *  - consumers load head with acquire and CAS it with release: the owner's
 *    load-acquire of head (in runq_put) then knows those slots were read and
 *    may be overwritten;
 *  - runnext is an atomic exchanged by the owner and CASed by thieves.
 *
 * When the ring is full, runq_put moves half of it plus the new G to the
 * global queue in one lock acquisition (runq_put_slow), as Go does, so a
 * burst of spawns spreads to idle Ps through the global queue.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <time.h>

#include "sched.h"

static inline struct g *slot_load(struct p *pp, uint32_t i)
{
    return atomic_load_explicit(&pp->runq[i % RUNQ_SIZE], memory_order_relaxed);
}

static inline void slot_store(struct p *pp, uint32_t i, struct g *gp)
{
    atomic_store_explicit(&pp->runq[i % RUNQ_SIZE], gp, memory_order_relaxed);
}

uint32_t runq_len(struct p *pp)
{
    uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_acquire);
    return t - h;
}

bool runq_empty(struct p *pp)
{
    /* Go's runqempty: a G may move from runnext to the ring (runq_put kicking
     * the old runnext out) between our loads; re-read tail until stable so we
     * never report empty while a G is in flight between the two. */
    for (;;) {
        uint32_t head = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t tail = atomic_load_explicit(&pp->runqtail, memory_order_acquire);
        struct g *next = atomic_load_explicit(&pp->runnext, memory_order_acquire);
        if (atomic_load_explicit(&pp->runqtail, memory_order_acquire) == tail)
            return head == tail && next == NULL;
    }
}

/* Move half the local queue plus gp to the global queue. Owner only. */
static bool runq_put_slow(struct p *pp, struct g *gp, uint32_t head, uint32_t tail)
{
    enum { N = RUNQ_SIZE / 2 };
    struct g *batch[N + 1];
    uint32_t n = (tail - head) / 2;
    if (n != N)
        rt_throw("runq_put_slow: queue is not full");
    for (uint32_t i = 0; i < n; i++)
        batch[i] = slot_load(pp, head + i);
    if (!atomic_compare_exchange_strong_explicit(&pp->runqhead, &head, head + n,
                                                 memory_order_release, memory_order_relaxed))
        return false; /* a thief took some; the caller retries the fast path */
    batch[n] = gp;
    for (uint32_t i = 0; i < n; i++)
        batch[i]->schedlink = batch[i + 1];
    gp->schedlink = NULL;
    rtlock_lock(&sched.lock);
    globrunq_put_batch(batch[0], (int32_t)n + 1);
    rtlock_unlock(&sched.lock);
    return true;
}

void runq_put(struct p *pp, struct g *gp, bool next)
{
    if (next) {
        struct g *old = atomic_exchange_explicit(&pp->runnext, gp, memory_order_acq_rel);
        if (old == NULL)
            return;
        gp = old; /* kick the previous runnext to the tail */
    }
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (t - h < RUNQ_SIZE) {
            slot_store(pp, t, gp);
            /* release: the slot store above becomes visible with the new tail */
            atomic_store_explicit(&pp->runqtail, t + 1, memory_order_release);
            return;
        }
        if (runq_put_slow(pp, gp, h, t))
            return;
    }
}

/* The head of the ring, not runnext. Owner only. */
static struct g *runq_get_ring(struct p *pp)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&pp->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        if (t == h)
            return NULL;
        struct g *gp = slot_load(pp, h);
        if (atomic_compare_exchange_weak_explicit(&pp->runqhead, &h, h + 1, memory_order_release,
                                                  memory_order_relaxed))
            return gp;
    }
}

struct g *runq_get(struct p *pp, bool *inherit_time)
{
    /* runnext first: it inherits the time slice of the G that readied it */
    struct g *next = atomic_load_explicit(&pp->runnext, memory_order_relaxed);
    if (next != NULL &&
        atomic_compare_exchange_strong_explicit(&pp->runnext, &next, NULL, memory_order_acquire,
                                                memory_order_relaxed)) {
        if (inherit_time)
            *inherit_time = true;
        return next;
    }
    if (inherit_time)
        *inherit_time = false;
    return runq_get_ring(pp);
}

/* runq_get for schedule(): after RUNNEXT_STREAK_MAX runs of runnext in a
 * row, the ring's head goes first. Go lets runnext starve the ring and
 * relies on preemption: the Gs a chain of runnext handoffs runs share one
 * time slice (inheritTime), and sysmon preempts it after 10 ms. We do not
 * preempt, and our sysmon sees the schedule tick move, so such a chain
 * could keep the ring waiting for good: two goroutines handing each other
 * work, or one sleeping a few microseconds in a loop on a slow machine,
 * whose timer is already due whenever its M next schedules and so readies
 * it into runnext every time (at gomaxprocs 1 under TSAN a waiter sat
 * runnable behind such a loop for a minute). */
struct g *runq_get_fair(struct p *pp)
{
    if (unlikely(pp->runnext_streak >= RUNNEXT_STREAK_MAX)) {
        pp->runnext_streak = 0;
        struct g *gp = runq_get_ring(pp);
        if (gp != NULL)
            return gp;
    }
    bool inherit;
    struct g *gp = runq_get(pp, &inherit);
    pp->runnext_streak = inherit ? pp->runnext_streak + 1 : 0;
    return gp;
}

static void runq_steal_backoff(void)
{
    struct timespec ts = {0, 3000};
    nanosleep(&ts, NULL); /* EINTR: a shorter back-off is fine */
}

/* Grab half of victim's queue into batch; returns the count. */
static uint32_t runq_grab(struct p *victim, struct g **batch, bool steal_runnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->runqhead, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&victim->runqtail, memory_order_acquire);
        uint32_t n = t - h;
        n = n - n / 2;
        if (n == 0) {
            if (steal_runnext) {
                struct g *next = atomic_load_explicit(&victim->runnext, memory_order_acquire);
                if (next != NULL) {
                    /* A G in runnext was usually readied a moment ago by the
                     * victim's running G, which is about to park and run it:
                     * taking it would turn a cheap local handoff into a
                     * cross-CPU one. Back off first, as Go does (usleep(3)).
                     * The 3 us sleep lasts ~60 us here (the kernel's timer
                     * slack), and that is what makes it pay: all that time
                     * we stay counted as spinning, so the victim's next
                     * go_ready finds a spinner and wakes no M (wakep), and
                     * we leave the victim's queue lines alone. Spinning for
                     * 3 us instead, polling runnext, gave up so soon that
                     * in a two-goroutine ping-pong the idle M went back to
                     * sleep and was woken again all the time (45,000 futex
                     * calls per million round trips, against 5,500 futex
                     * calls and 2,700 sleeps with the back-off; the wake
                     * is a syscall on the busy M), and the polling pulled
                     * runnext's line away from its owner: 420-540 ns per
                     * round trip against 310-420 ns with the back-off. */
                    if (victim->status == P_RUNNING)
                        runq_steal_backoff();
                    if (atomic_compare_exchange_strong_explicit(&victim->runnext, &next, NULL,
                                                                memory_order_acq_rel,
                                                                memory_order_relaxed)) {
                        batch[0] = next;
                        return 1;
                    }
                }
            }
            return 0;
        }
        if (n > RUNQ_SIZE / 2)
            continue; /* inconsistent h and t: the owner moved on, retry */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = slot_load(victim, h + i);
        if (atomic_compare_exchange_weak_explicit(&victim->runqhead, &h, h + n,
                                                  memory_order_release, memory_order_relaxed))
            return n;
    }
}

struct g *runq_steal(struct p *pp, struct p *victim, bool steal_runnext)
{
    struct g *batch[RUNQ_SIZE / 2];
    uint32_t n = runq_grab(victim, batch, steal_runnext);
    if (n == 0)
        return NULL;
    struct g *gp = batch[--n];
    if (n > 0) {
        /* our own queue is empty (we are stealing), so this cannot overflow */
        uint32_t t = atomic_load_explicit(&pp->runqtail, memory_order_relaxed);
        for (uint32_t i = 0; i < n; i++)
            slot_store(pp, t + i, batch[i]);
        atomic_store_explicit(&pp->runqtail, t + n, memory_order_release);
    }
    atomic_fetch_add_explicit(&pp->steals, n + 1, memory_order_relaxed);
    return gp;
}

/* ---- global queue: sched.lock held ----
 *
 * A ring of G pointers rather than Go's list linked through the Gs: taking
 * a batch from a list is a chain of dependent loads, one G after the other,
 * each a cache miss when somebody else readied them (a thread closing 1000
 * channels, on another CPU: 9 % of a 1000-child cancel was that chase). From
 * the ring the batch is a run of pointers, and the Gs' lines can all be
 * requested at once. The ring doubles when full (under sched.lock: the
 * copy is rare and short next to what filled it) and is never shrunk. */

static void globrunq_reserve(uint32_t more)
{
    uint32_t size = sched.runqtail - sched.runqhead;
    if (size + more <= sched.runqcap)
        return;
    uint32_t cap = sched.runqcap ? sched.runqcap : 256;
    while (cap < size + more) {
        if (cap > UINT32_MAX / 2)
            rt_throw("global run queue overflow (%u goroutines)", size);
        cap *= 2;
    }
    struct g **ring = malloc(cap * sizeof *ring);
    if (ring == NULL)
        rt_throw("out of memory growing the global run queue to %u goroutines", cap);
    for (uint32_t i = 0; i < size; i++)
        ring[i] = sched.runq[(sched.runqhead + i) & (sched.runqcap - 1)];
    free(sched.runq);
    sched.runq = ring;
    sched.runqcap = cap;
    sched.runqhead = 0;
    sched.runqtail = size;
}

void globrunq_put(struct g *gp)
{
    globrunq_put_batch(gp, 1);
}

/* n Gs linked by schedlink from head (the last one's link is not read). */
void globrunq_put_batch(struct g *head, int32_t n)
{
    globrunq_reserve((uint32_t)n);
    struct g *gp = head;
    for (int32_t i = 0; i < n; i++) {
        struct g *next = gp->schedlink;
        gp->schedlink = NULL;
        sched.runq[sched.runqtail++ & (sched.runqcap - 1)] = gp;
        gp = next;
    }
    atomic_fetch_add_explicit(&sched.runqsize, n, memory_order_relaxed);
}

/* Take up to max Gs (0: a fair share) from the global queue; return one and
 * put the rest on pp's local queue. */
struct g *globrunq_get(struct p *pp, int32_t max)
{
    int32_t size = atomic_load_explicit(&sched.runqsize, memory_order_relaxed);
    if (size == 0)
        return NULL;
    int32_t procs = atomic_load_explicit(&sched.nprocs, memory_order_relaxed);
    int32_t n = size / procs + 1;
    if (n > size)
        n = size;
    if (max > 0 && n > max)
        n = max;
    if (n > RUNQ_SIZE / 2)
        n = RUNQ_SIZE / 2;
    atomic_fetch_sub_explicit(&sched.runqsize, n, memory_order_relaxed);
    uint32_t mask = sched.runqcap - 1;
    uint32_t h = sched.runqhead;
    sched.runqhead = h + (uint32_t)n;
    /* Start loading every G of the batch before reading any (their misses
     * overlap), then, from the saved stack pointers, the registers and
     * frames the switch-ins will pop. */
    for (int32_t i = 0; i < n; i++)
        __builtin_prefetch(&sched.runq[(h + (uint32_t)i) & mask]->ctx);
    for (int32_t i = 0; i < n; i++)
        ctx_prefetch(&sched.runq[(h + (uint32_t)i) & mask]->ctx);
    struct g *gp = sched.runq[h & mask];
    for (int32_t i = 1; i < n; i++)
        runq_put(pp, sched.runq[(h + (uint32_t)i) & mask], false);
    atomic_fetch_add_explicit(&pp->global_gets, 1, memory_order_relaxed);
    return gp;
}
