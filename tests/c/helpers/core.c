/* C-side drivers for the scheduler tests (tests/c/test_sched.py).
 * They run C goroutines at full parallelism and report what happened; the
 * Python side only asserts. A small latch built directly on go_park/go_ready
 * doubles as a test of the parking contract. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"
#include "sched/sched.h"

/* ---- latch: wait until count reaches zero ---- */

struct latch {
    struct rtlock lock;
    _Atomic int64_t count;
    struct g *waiter;
};

static bool latch_unlock(struct g *gp, void *arg)
{
    (void)gp;
    rtlock_unlock(&((struct latch *)arg)->lock);
    return true;
}

static void latch_init(struct latch *l, int64_t n)
{
    memset(l, 0, sizeof *l);
    atomic_store(&l->count, n);
}

static void latch_wait(struct latch *l)
{
    rtlock_lock(&l->lock);
    if (atomic_load(&l->count) == 0) {
        rtlock_unlock(&l->lock);
        return;
    }
    l->waiter = getg();
    go_park(latch_unlock, l, WAIT_JOIN);
}

static void latch_done(struct latch *l)
{
    rtlock_lock(&l->lock);
    struct g *w = NULL;
    if (atomic_fetch_sub(&l->count, 1) == 1) {
        w = l->waiter;
        l->waiter = NULL;
    }
    rtlock_unlock(&l->lock);
    if (w)
        go_ready(w);
}

static long gettid_(void)
{
    return syscall(SYS_gettid);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- spawn + join ---- */

struct spawn_ctx {
    struct latch done;
    int n;
};

static void spawn_child(void *arg)
{
    latch_done(&((struct spawn_ctx *)arg)->done);
}

static void spawn_parent(void *arg)
{
    struct spawn_ctx *c = arg;
    int n = c->n; /* c dies once the last child is done */
    for (int i = 0; i < n; i++)
        if (goro_go(spawn_child, c) != GORO_OK)
            abort();
}

int64_t core_spawn_join(int n, int from_goroutine)
{
    struct spawn_ctx c;
    latch_init(&c.done, n);
    c.n = n;
    int64_t t0 = nanotime();
    if (from_goroutine) {
        goro_go(spawn_parent, &c);
    } else {
        for (int i = 0; i < n; i++)
            goro_go(spawn_child, &c);
    }
    latch_wait(&c.done);
    return nanotime() - t0;
}

/* ---- nested spawn tree ---- */

struct tree_ctx {
    struct latch done;
    int fanout;
};
struct tree_node {
    struct tree_ctx *t;
    int depth;
};

static void tree_node_run(void *arg)
{
    struct tree_node *n = arg;
    if (n->depth > 0) {
        for (int i = 0; i < n->t->fanout; i++) {
            struct tree_node *c = malloc(sizeof *c);
            c->t = n->t;
            c->depth = n->depth - 1;
            goro_go(tree_node_run, c);
        }
    }
    struct tree_ctx *t = n->t;
    free(n);
    latch_done(&t->done);
}

int64_t core_spawn_nested(int depth, int fanout)
{
    int64_t total = 0, level = 1;
    for (int d = 0; d <= depth; d++) {
        total += level;
        level *= fanout;
    }
    struct tree_ctx t;
    latch_init(&t.done, total);
    t.fanout = fanout;
    struct tree_node *root = malloc(sizeof *root);
    root->t = &t;
    root->depth = depth;
    goro_go(tree_node_run, root);
    latch_wait(&t.done);
    return total;
}

/* ---- gosched ping-pong between two goroutines ---- */

struct yield_ctx {
    struct latch done;
    int iters;
    _Atomic int64_t changes;
};

static void yielder(void *arg)
{
    struct yield_ctx *c = arg;
    long tid = gettid_();
    int64_t changes = 0;
    for (int i = 0; i < c->iters; i++) {
        goro_gosched();
        long t = gettid_();
        if (t != tid) {
            changes++;
            tid = t;
        }
    }
    atomic_fetch_add(&c->changes, changes);
    latch_done(&c->done);
}

int64_t core_gosched_yielders(int n, int iters, int64_t *thread_changes)
{
    struct yield_ctx c;
    latch_init(&c.done, n);
    c.iters = iters;
    atomic_store(&c.changes, 0);
    int64_t t0 = nanotime();
    for (int i = 0; i < n; i++)
        goro_go(yielder, &c);
    latch_wait(&c.done);
    *thread_changes = atomic_load(&c.changes);
    return nanotime() - t0;
}

/* ---- many parked goroutines ---- */

struct park_ctx {
    struct rtlock lock;
    struct g **gs;
    int64_t nparked;
    struct latch done;
    _Atomic int64_t resumed;
};

static bool park_ctx_unlock(struct g *gp, void *arg)
{
    (void)gp;
    rtlock_unlock(&((struct park_ctx *)arg)->lock);
    return true;
}

static void parker(void *arg)
{
    struct park_ctx *c = arg;
    rtlock_lock(&c->lock);
    c->gs[c->nparked++] = getg();
    go_park(park_ctx_unlock, c, WAIT_CHAN_RECEIVE);
    atomic_fetch_add(&c->resumed, 1);
    latch_done(&c->done);
}

int64_t core_park_many(int n, int64_t *rss_delta_kb)
{
    struct park_ctx c;
    memset(&c, 0, sizeof c);
    c.gs = calloc((size_t)n, sizeof *c.gs);
    if (!c.gs)
        return -1;
    latch_init(&c.done, n);
    long before = rss_kb();
    for (int i = 0; i < n; i++)
        if (goro_go(parker, &c) != GORO_OK)
            return -2;
    for (;;) {
        rtlock_lock(&c.lock);
        int64_t k = c.nparked;
        rtlock_unlock(&c.lock);
        if (k == n)
            break;
        usleep(1000);
    }
    *rss_delta_kb = rss_kb() - before;
    int64_t live = goro_num_goroutine();
    for (int i = 0; i < n; i++)
        go_ready(c.gs[i]);
    latch_wait(&c.done);
    free(c.gs);
    if (atomic_load(&c.resumed) != n)
        return -3;
    return live;
}

/* ---- work stealing ---- */

struct steal_ctx {
    struct latch done;
    int n;
    int spin;
};

static void busy_child(void *arg)
{
    struct steal_ctx *c = arg;
    volatile uint64_t x = 0;
    for (int i = 0; i < c->spin; i++)
        x += (uint64_t)i;
    latch_done(&c->done);
}

static void busy_parent(void *arg)
{
    struct steal_ctx *c = arg;
    /* Read n once: once the last child has run, the waiter returns and c
     * (on its stack) is gone, which may be before our loop's last check
     * (a TSAN run saw that read race with cffi reusing the frame). */
    int n = c->n;
    for (int i = 0; i < n; i++)
        goro_go(busy_child, c);
}

int64_t core_steal_work(int n, int spin_iters, uint64_t *steals)
{
    goro_stats_t before, after;
    goro_get_stats(&before);
    struct steal_ctx c;
    latch_init(&c.done, n);
    c.n = n;
    c.spin = spin_iters;
    int64_t t0 = nanotime();
    goro_go(busy_parent, &c);
    latch_wait(&c.done);
    int64_t dt = nanotime() - t0;
    goro_get_stats(&after);
    *steals = after.steals - before.steals;
    return dt;
}

/* ---- gomaxprocs changes under load ---- */

struct churn_ctx {
    struct latch done;
    _Atomic int64_t yields;
};

static void churner(void *arg)
{
    struct churn_ctx *c = arg;
    for (int i = 0; i < 200; i++) {
        goro_gosched();
        atomic_fetch_add_explicit(&c->yields, 1, memory_order_relaxed);
    }
    latch_done(&c->done);
}

int64_t core_gomaxprocs_churn(int n, int rounds)
{
    struct churn_ctx c;
    latch_init(&c.done, n);
    atomic_store(&c.yields, 0);
    int orig = goro_gomaxprocs(0);
    for (int i = 0; i < n; i++)
        goro_go(churner, &c);
    for (int r = 0; r < rounds; r++) {
        goro_gomaxprocs(1 + (int)cheaprandn(4));
        usleep(200);
    }
    goro_gomaxprocs(orig);
    latch_wait(&c.done);
    return atomic_load(&c.yields);
}

/* ---- the register switch alone ---- */

static struct goro_context sw_main, sw_co;
static int64_t sw_iters;

static void switch_partner(void *arg)
{
    (void)arg;
    for (;;)
        ctx_switch(&sw_co, &sw_main);
}

int64_t core_switch_only(int iters)
{
    size_t size = 64 * 1024;
    void *stack = malloc(size);
    sw_iters = iters;
    ctx_make(&sw_co, stack, size, switch_partner, NULL);
    int64_t t0 = nanotime();
    for (int i = 0; i < iters; i++)
        ctx_switch(&sw_main, &sw_co); /* two switches per iteration */
    int64_t dt = nanotime() - t0;
    free(stack);
    return dt;
}

/* ---- stack overflow (run in a subprocess: it aborts) ---- */

static volatile int recurse_limit = 1 << 30; /* opaque to the compiler */

static int recurse(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    if (depth >= recurse_limit)
        return buf[0];
    return recurse(depth + 1) + buf[0];
}

static void overflow_main(void *arg)
{
    (void)arg;
    recurse(0);
}

int core_stack_overflow(void)
{
    struct latch l;
    latch_init(&l, 1);
    goro_go_named(overflow_main, NULL, "overflow_main");
    latch_wait(&l); /* never returns: the process dies */
    return 0;
}

/* ---- pinned goroutines (sched/pin.c) ---- */

#define PIN_MAX_PLAYERS 64

struct pin_ctx {
    struct latch started;
    struct latch done;
    goro_chan_t *go_on; /* closed by the driver: start playing */
    int iters;
    _Atomic long first_tid;
    _Atomic bool spread;
    _Atomic int64_t moves;
    _Atomic long tids[PIN_MAX_PLAYERS];
};

struct pin_player {
    struct pin_ctx *c;
    goro_chan_t *in, *out;
    int idx;
    bool serve; /* sends first */
};

/* Pairs of goroutines pin themselves to whatever M they start on, then
 * ping-pong over unbuffered channels: every round readies the partner,
 * often on another M, and parks; every 16th round yields, every 64th
 * sleeps on a timer (readied from g0 or sysmon). A pinned G must come back
 * on its own thread every time. */
static void pinned_player(void *arg)
{
    struct pin_player *a = arg;
    struct pin_ctx *c = a->c;
    /* Player 0 pins at once; the others stay unpinned and yield (yielded Gs
     * go to the global queue, where any M takes them) until one reaches a
     * thread other than player 0's and pins there. After that the rest pin
     * wherever they are. So the players span at least two Ms (unless 10 s
     * pass first, which the test would report; 2 s were once not enough
     * under TSAN, where every yield is slow). */
    if (a->idx == 0) {
        atomic_store(&c->first_tid, gettid_());
    } else {
        int64_t until = nanotime() + 10000LL * 1000 * 1000;
        while (nanotime() < until) {
            long first = atomic_load(&c->first_tid);
            if (first != 0 && gettid_() != first) {
                atomic_store(&c->spread, true);
                break;
            }
            if (atomic_load(&c->spread))
                break;
            goro_gosched();
        }
    }
    go_pin_current();
    long tid = gettid_();
    atomic_store(&c->tids[a->idx], tid);
    latch_done(&c->started);
    int v = 0;
    bool ok;
    goro_chan_recv(c->go_on, &v, &ok);
    int64_t moves = 0;
    for (int i = 0; i < c->iters; i++) {
        v = i;
        if (a->serve) {
            goro_chan_send(a->out, &v);
            goro_chan_recv(a->in, &v, &ok);
        } else {
            goro_chan_recv(a->in, &v, &ok);
            goro_chan_send(a->out, &v);
        }
        if (i % 16 == 0)
            goro_gosched();
        if (i % 64 == 0)
            goro_sleep(1000);
        if (gettid_() != tid || !go_is_pinned())
            moves++;
    }
    atomic_fetch_add(&c->moves, moves);
    latch_done(&c->done);
    free(a);
}

int64_t core_pinned_pingpong(int pairs, int iters, int procs_after, int64_t *moves,
                             int64_t *nthreads)
{
    if (pairs < 1 || 2 * pairs > PIN_MAX_PLAYERS)
        return -1;
    struct pin_ctx c;
    latch_init(&c.started, 2 * pairs);
    latch_init(&c.done, 2 * pairs);
    c.go_on = goro_chan_new(sizeof(int), 0);
    c.iters = iters;
    atomic_store(&c.first_tid, 0);
    atomic_store(&c.spread, false);
    atomic_store(&c.moves, 0);
    goro_chan_t *chans[2 * PIN_MAX_PLAYERS];
    for (int i = 0; i < 2 * pairs; i++)
        chans[i] = goro_chan_new(sizeof(int), 0);
    int64_t t0 = nanotime();
    for (int k = 0; k < pairs; k++) {
        for (int s = 0; s < 2; s++) {
            struct pin_player *a = malloc(sizeof *a);
            a->c = &c;
            a->idx = 2 * k + s;
            a->serve = s == 0;
            a->out = chans[2 * k + s];
            a->in = chans[2 * k + 1 - s];
            goro_go(pinned_player, a);
        }
    }
    latch_wait(&c.started);
    /* Fewer Ps than Ms holding pinned goroutines: Ps must be handed over. */
    if (procs_after > 0)
        goro_gomaxprocs(procs_after);
    goro_chan_close(c.go_on);
    latch_wait(&c.done);
    int64_t elapsed = nanotime() - t0;
    *moves = atomic_load(&c.moves);
    int64_t distinct = 0;
    for (int i = 0; i < 2 * pairs; i++) {
        bool seen = false;
        for (int j = 0; j < i; j++)
            seen = seen || atomic_load(&c.tids[j]) == atomic_load(&c.tids[i]);
        distinct += !seen;
    }
    *nthreads = distinct;
    for (int i = 0; i < 2 * pairs; i++)
        goro_chan_free(chans[i]);
    goro_chan_free(c.go_on);
    return elapsed;
}

/* ---- a chain of runnext handoffs does not starve the ring ---- */

struct relay {
    goro_chan_t *ping, *pong;
    _Atomic int64_t exchanges;
    _Atomic int64_t bystander_ran_at; /* exchanges when it ran; -1: not yet */
    int64_t limit;
    struct latch done;
};

static void relay_bystander(void *arg)
{
    struct relay *r = arg;
    atomic_store(&r->bystander_ran_at, atomic_load(&r->exchanges));
    latch_done(&r->done);
}

static void relay_echo(void *arg)
{
    struct relay *r = arg;
    int v;
    bool ok;
    while (goro_chan_recv(r->ping, &v, &ok) == GORO_OK && ok)
        goro_chan_send(r->pong, &v);
    latch_done(&r->done);
}

static void relay_driver(void *arg)
{
    struct relay *r = arg;
    /* Each spawn goes to runnext: the echo's kicks the bystander to the
     * ring, behind a pair that from now on only ever readies each other. */
    goro_go(relay_bystander, r);
    goro_go(relay_echo, r);
    int v = 0;
    bool ok;
    while (atomic_load(&r->bystander_ran_at) < 0 && atomic_load(&r->exchanges) < r->limit) {
        goro_chan_send(r->ping, &v);
        goro_chan_recv(r->pong, &v, &ok);
        atomic_fetch_add(&r->exchanges, 1);
    }
    goro_chan_close(r->ping);
    latch_done(&r->done);
}

/* At gomaxprocs 1, two goroutines hand work to each other through runnext
 * while a third waits in the ring. Returns the round trips done before the
 * third ran, or -1 if it only ran after limit of them (starved). */
int64_t core_runnext_chain_fairness(int64_t limit)
{
    int old = goro_gomaxprocs(1);
    struct relay r;
    memset(&r, 0, sizeof r);
    r.ping = goro_chan_new(sizeof(int), 0);
    r.pong = goro_chan_new(sizeof(int), 0);
    atomic_store(&r.bystander_ran_at, -1);
    r.limit = limit;
    latch_init(&r.done, 3);
    goro_go(relay_driver, &r);
    latch_wait(&r.done);
    goro_gomaxprocs(old);
    int64_t at = atomic_load(&r.bystander_ran_at);
    goro_chan_free(r.ping);
    goro_chan_free(r.pong);
    return at >= limit ? -1 : at;
}

/* ---- sync_runtime_can_spin's budget for spinning with work queued ---- */

struct spin_budget {
    _Atomic int busy_running, busy_stop;
    _Atomic int queued_ran;
    int64_t verdict[4];
    bool preconditions; /* the other P was running and work was queued here */
    struct latch done;
};

static void spin_budget_busy(void *arg)
{
    struct spin_budget *s = arg;
    atomic_store(&s->busy_running, 1);
    while (!atomic_load(&s->busy_stop))
        ;
    latch_done(&s->done);
}

static void spin_budget_queued(void *arg)
{
    struct spin_budget *s = arg;
    atomic_fetch_add(&s->queued_ran, 1);
    latch_done(&s->done);
}

/* can_spin's other conditions: another P running, none idle or spinning,
 * Gs queued on ours. */
static bool spin_budget_others_hold(void)
{
    return atomic_load(&sched.npidle) == 0 && atomic_load(&sched.nmspinning) == 0 &&
           !runq_empty(getm()->p);
}

/* can_spin(i) as a Mutex waiter would call it, noting whether the other
 * conditions held before and after, so the answer depends only on the
 * budget. */
static void spin_budget_ask(struct spin_budget *s, int i, int64_t *verdict)
{
    bool before = spin_budget_others_hold();
    *verdict = sync_runtime_can_spin(i);
    s->preconditions = s->preconditions && before && spin_budget_others_hold();
}

static void spin_budget_main(void *arg)
{
    struct spin_budget *s = arg;
    s->preconditions = true;
    goro_go(spin_budget_busy, s); /* taken by the other P */
    while (!atomic_load(&s->busy_running))
        ;
    goro_go(spin_budget_queued, s); /* waits in our runnext */
    spin_budget_ask(s, 0, &s->verdict[0]);
    int64_t t0 = nanotime();
    while (nanotime() - t0 < 80 * 1000) /* past the 50 us budget, no schedule */
        ;
    spin_budget_ask(s, 0, &s->verdict[1]);
    spin_budget_ask(s, 4, &s->verdict[2]); /* past the iteration bound */
    go_sched(); /* a new turn; the queued G runs first */
    goro_go(spin_budget_queued, s);
    spin_budget_ask(s, 0, &s->verdict[3]);
    atomic_store(&s->busy_stop, 1);
    latch_done(&s->done);
}

/* verdict: can_spin fresh in a turn, after 80 us of it, at iteration 4,
 * and fresh in the next turn, all with Gs queued on the caller's P.
 * Returns whether the other conditions held throughout (see above). */
int core_spin_budget(int64_t *verdict)
{
    int old = goro_gomaxprocs(2);
    struct spin_budget s;
    memset(&s, 0, sizeof s);
    latch_init(&s.done, 4);
    goro_go(spin_budget_main, &s);
    latch_wait(&s.done);
    goro_gomaxprocs(old);
    memcpy(verdict, s.verdict, sizeof s.verdict);
    return s.preconditions && atomic_load(&s.queued_ran) == 2;
}
