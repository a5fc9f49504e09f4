/* C-side drivers for the interruptible sync waits (tests/c/test_sync_intr.py):
 * mutex_lock_ex, rwmutex_lock_ex, waitgroup_wait_ex and notify_list_wait_ex
 * on interruptible pthreads (what Python's main thread is), hammered with
 * SIGUSR1 while goroutines use the same primitive normally. Every withdrawal
 * must leave the state as if the thread had never waited: exclusion holds,
 * nothing is left counted or queued, no wakeup is lost (a lost one hangs a
 * worker, which the deadline turns into an abort with a message).
 * Each driver returns the number of violations (0 = pass). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/sema.h"

#define SEC 1000000000LL
#define DEADLINE (60 * SEC)

static _Atomic int64_t nerr;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond) && atomic_fetch_add(&nerr, 1) < 10) {        \
            fprintf(stderr, "sync intr test: " __VA_ARGS__);     \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

/* A deadline passed: show every goroutine's state before dying. */
static _Noreturn void stuck_abort(void)
{
    goro_dump(stderr);
    fflush(stderr);
    abort();
}

static void on_sigusr1(int sig)
{
    (void)sig;
}

/* SIGUSR1 with a handler that does nothing and no SA_RESTART: a futex wait
 * it hits returns EINTR, as Ctrl-C does to Python's main thread. */
static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
}

static void spin_for(int64_t ns)
{
    int64_t end = goro_nanotime() + ns;
    while (goro_nanotime() < end)
        ;
}

/* ---- keeping the runtime busy ----
 * An interruptible thread parked while the runtime is idle wakes every
 * 100 ms for the deadlock check and withdraws (thread_park). The
 * deterministic drivers below, which run no goroutines, need their waiters
 * to stay queued until signalled, however slow the machine: a goroutine
 * sleeping 1 ms at a time keeps a timer pending, so the runtime is never
 * idle. (Under load a setup took over 100 ms and waiters left early.) */

struct busy {
    _Atomic int stop, stopped;
};

static void busy_goroutine(void *p)
{
    struct busy *b = p;
    while (!atomic_load(&b->stop))
        goro_sleep(1000000);
    atomic_store(&b->stopped, 1);
}

static void busy_start(struct busy *b)
{
    atomic_store(&b->stop, 0);
    atomic_store(&b->stopped, 0);
    if (goro_go(busy_goroutine, b) != GORO_OK)
        abort();
}

static void busy_stop(struct busy *b)
{
    atomic_store(&b->stop, 1);
    while (!atomic_load(&b->stopped))
        sched_yield();
}

/* ---- the signaller: pthread_kill every target until told to stop ---- */

struct signaller {
    pthread_mutex_t lock; /* targets may not exit while being signalled */
    pthread_t targets[64];
    int ntargets;
    _Atomic int stop;
    int64_t period_ns;
    pthread_t thread;
};

static void *signaller_main(void *p)
{
    struct signaller *s = p;
    unsigned seed = 12345;
    while (!atomic_load(&s->stop)) {
        pthread_mutex_lock(&s->lock);
        for (int i = 0; i < s->ntargets; i++)
            pthread_kill(s->targets[i], SIGUSR1);
        pthread_mutex_unlock(&s->lock);
        seed = seed * 1103515245 + 12345;
        struct timespec ts = {0, (long)(s->period_ns / 2 + (seed >> 8) % (uint64_t)s->period_ns)};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void signaller_start(struct signaller *s, int64_t period_ns)
{
    pthread_mutex_init(&s->lock, NULL);
    s->period_ns = period_ns;
    if (pthread_create(&s->thread, NULL, signaller_main, s) != 0)
        abort();
}

static void signaller_stop(struct signaller *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->lock);
}

/* The calling thread becomes interruptible and a target. */
static void target_enter(struct signaller *s)
{
    goro_thread_set_interruptible(true);
    pthread_mutex_lock(&s->lock);
    if (s->ntargets == 64)
        abort();
    s->targets[s->ntargets++] = pthread_self();
    pthread_mutex_unlock(&s->lock);
}

static void target_leave(struct signaller *s)
{
    goro_thread_set_interruptible(false);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->ntargets; i++) {
        if (pthread_equal(s->targets[i], pthread_self())) {
            s->targets[i] = s->targets[--s->ntargets];
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

/* ---- workers ---- */

struct stress {
    goro_mutex_t mu;
    goro_rwmutex_t rw;
    _Atomic int inside;  /* Mutex holders / RWMutex writers inside */
    _Atomic int readers; /* RWMutex readers inside */
    int64_t counter;     /* protected by the lock */
    int64_t iters;
    int64_t hold_ns;
    _Atomic int64_t interrupted, acquired;
    _Atomic int running;
    struct signaller sig;
};

static void critical(struct stress *st)
{
    CHECK(atomic_fetch_add(&st->inside, 1) == 0, "two holders inside");
    /* Starvation mode always has a waiter to hand the lock to: whoever sets
     * STARVING counts itself, and the last waiter to leave (a handoff taker,
     * a withdrawing thread) clears it in the same atomic step. Otherwise our
     * Unlock would hand the lock to nobody. (st->mu is unused, zero, in the
     * RWMutex stress.) */
    int32_t ms = atomic_load(&st->mu.state);
    CHECK((ms & MUTEX_STARVING) == 0 || (ms >> MUTEX_WAITER_SHIFT) > 0,
          "holder sees starvation mode with no waiter: state %#x", (unsigned)ms);
    CHECK(atomic_load(&st->readers) == 0, "a reader inside with a writer");
    st->counter++;
    if (st->hold_ns && (st->counter & 7) == 0)
        spin_for(st->hold_ns);
    atomic_fetch_sub(&st->inside, 1);
}

/* An interruptible thread runs its iters rounds, and then goes on (up to
 * 100 times as many) until some interruption has happened, so that the
 * withdrawal paths are exercised even on a slow (sanitized) run. */
static bool more_rounds(struct stress *st, int64_t i)
{
    return i < st->iters || (atomic_load(&st->interrupted) == 0 && i < 100 * st->iters);
}

static void mutex_goroutine(void *p)
{
    struct stress *st = p;
    for (int64_t i = 0; i < st->iters; i++) {
        goro_mutex_lock(&st->mu);
        critical(st);
        CHECK(goro_mutex_unlock(&st->mu) == GORO_OK, "unlock");
        if ((i & 15) == 0)
            goro_gosched();
    }
    atomic_fetch_sub(&st->running, 1);
}

static void *mutex_intr_thread(void *p)
{
    struct stress *st = p;
    target_enter(&st->sig);
    for (int64_t i = 0; more_rounds(st, i); i++) {
        if (mutex_lock_ex(&st->mu, WAIT_MUTEX, false, true) != GORO_OK) {
            atomic_fetch_add(&st->interrupted, 1);
            continue;
        }
        atomic_fetch_add(&st->acquired, 1);
        critical(st);
        CHECK(goro_mutex_unlock(&st->mu) == GORO_OK, "unlock");
    }
    target_leave(&st->sig);
    atomic_fetch_sub(&st->running, 1);
    return NULL;
}

static void rw_reader_goroutine(void *p)
{
    struct stress *st = p;
    for (int64_t i = 0; i < st->iters; i++) {
        goro_rwmutex_rlock(&st->rw);
        atomic_fetch_add(&st->readers, 1);
        CHECK(atomic_load(&st->inside) == 0, "a writer inside with a reader");
        if ((i & 3) == 0)
            spin_for(st->hold_ns);
        atomic_fetch_sub(&st->readers, 1);
        CHECK(goro_rwmutex_runlock(&st->rw) == GORO_OK, "runlock");
        if ((i & 15) == 0)
            goro_gosched();
    }
    atomic_fetch_sub(&st->running, 1);
}

static void rw_writer_goroutine(void *p)
{
    struct stress *st = p;
    for (int64_t i = 0; i < st->iters; i++) {
        goro_rwmutex_lock(&st->rw);
        critical(st);
        CHECK(goro_rwmutex_unlock(&st->rw) == GORO_OK, "unlock");
        goro_gosched();
    }
    atomic_fetch_sub(&st->running, 1);
}

static void *rw_intr_writer_thread(void *p)
{
    struct stress *st = p;
    target_enter(&st->sig);
    for (int64_t i = 0; more_rounds(st, i); i++) {
        if (rwmutex_lock_ex(&st->rw, false, true) != GORO_OK) {
            atomic_fetch_add(&st->interrupted, 1);
            continue;
        }
        atomic_fetch_add(&st->acquired, 1);
        critical(st);
        CHECK(goro_rwmutex_unlock(&st->rw) == GORO_OK, "unlock");
    }
    target_leave(&st->sig);
    atomic_fetch_sub(&st->running, 1);
    return NULL;
}

static void wait_running(struct stress *st)
{
    int64_t deadline = goro_nanotime() + DEADLINE;
    while (atomic_load(&st->running) > 0) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: stuck (lost wakeup?)\n");
            stuck_abort();
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void start_threads(void *st, int n, void *(*fn)(void *))
{
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, fn, st) != 0)
            abort();
        pthread_detach(t);
    }
}

/* Mutex: ngor goroutines lock normally, nthreads interruptible threads lock
 * with mutex_lock_ex while being signalled every ~period_ns. */
int64_t intr_mutex_stress(int ngor, int nthreads, int64_t iters, int64_t hold_ns, int64_t period_ns,
                          int64_t *interrupted, int64_t *acquired)
{
    install_handler();
    atomic_store(&nerr, 0);
    struct stress *st = calloc(1, sizeof *st);
    st->iters = iters;
    st->hold_ns = hold_ns;
    atomic_store(&st->running, ngor + nthreads);
    signaller_start(&st->sig, period_ns);
    for (int i = 0; i < ngor; i++)
        goro_go(mutex_goroutine, st);
    start_threads(st, nthreads, mutex_intr_thread);
    wait_running(st);
    signaller_stop(&st->sig);
    *interrupted = atomic_load(&st->interrupted);
    *acquired = atomic_load(&st->acquired);
    CHECK(st->counter == ngor * iters + *acquired, "counter %lld, want %lld",
          (long long)st->counter, (long long)(ngor * iters + *acquired));
    CHECK(atomic_load(&st->mu.state) == 0, "state left %#x", (unsigned)atomic_load(&st->mu.state));
    CHECK(atomic_load(&st->mu.sema) == 0, "sema count left %u", atomic_load(&st->mu.sema));
    CHECK(sema_nwaiters(&st->mu.sema) == 0, "waiters left queued");
    free(st);
    return atomic_load(&nerr);
}

/* RWMutex: reader and writer goroutines, interruptible writer threads. */
int64_t intr_rw_stress(int nreaders, int nwriters, int nthreads, int64_t iters, int64_t hold_ns,
                       int64_t period_ns, int64_t *interrupted, int64_t *acquired)
{
    install_handler();
    atomic_store(&nerr, 0);
    struct stress *st = calloc(1, sizeof *st);
    st->iters = iters;
    st->hold_ns = hold_ns;
    atomic_store(&st->running, nreaders + nwriters + nthreads);
    signaller_start(&st->sig, period_ns);
    for (int i = 0; i < nreaders; i++)
        goro_go(rw_reader_goroutine, st);
    for (int i = 0; i < nwriters; i++)
        goro_go(rw_writer_goroutine, st);
    start_threads(st, nthreads, rw_intr_writer_thread);
    wait_running(st);
    signaller_stop(&st->sig);
    *interrupted = atomic_load(&st->interrupted);
    *acquired = atomic_load(&st->acquired);
    CHECK(st->counter == nwriters * iters + *acquired, "counter %lld", (long long)st->counter);
    CHECK(atomic_load(&st->rw.readers) == 0, "readers word left %#llx",
          (unsigned long long)atomic_load(&st->rw.readers));
    CHECK(atomic_load(&st->rw.w.state) == 0, "w state left %#x", (unsigned)atomic_load(&st->rw.w.state));
    CHECK(atomic_load(&st->rw.reader_sem) == 0 && atomic_load(&st->rw.writer_sem) == 0,
          "sema counts left %u %u", atomic_load(&st->rw.reader_sem), atomic_load(&st->rw.writer_sem));
    free(st);
    return atomic_load(&nerr);
}

/* ---- WaitGroup: rounds of nworkers goroutines, waited for by interruptible
 * threads that re-wait after each interruption ---- */

struct wg_stress {
    goro_waitgroup_t wg;
    goro_waitgroup_t round_done; /* the waiter threads' own completion */
    int64_t work_ns;
    _Atomic int64_t interrupted;
    struct signaller sig;
    _Atomic int started;
};

static void wg_worker(void *p)
{
    struct wg_stress *s = p;
    spin_for(s->work_ns);
    CHECK(goro_waitgroup_done(&s->wg) == GORO_OK, "done");
}

static void *wg_intr_waiter(void *p)
{
    struct wg_stress *s = p;
    target_enter(&s->sig);
    atomic_fetch_add(&s->started, 1);
    int r;
    while ((r = waitgroup_wait_ex(&s->wg, true)) == GORO_INTERRUPTED)
        atomic_fetch_add(&s->interrupted, 1);
    CHECK(r == GORO_OK, "wait returned %d", r);
    target_leave(&s->sig);
    goro_waitgroup_done(&s->round_done);
    return NULL;
}

int64_t intr_wg_stress(int rounds, int nworkers, int nwaiters, int64_t work_ns, int64_t period_ns,
                       int64_t *interrupted)
{
    install_handler();
    atomic_store(&nerr, 0);
    struct wg_stress *s = calloc(1, sizeof *s);
    s->work_ns = work_ns;
    signaller_start(&s->sig, period_ns);
    for (int r = 0; r < rounds; r++) {
        atomic_store(&s->started, 0);
        goro_waitgroup_add(&s->round_done, nwaiters);
        goro_waitgroup_add(&s->wg, nworkers);
        start_threads(s, nwaiters, wg_intr_waiter);
        while (atomic_load(&s->started) < nwaiters)
            sched_yield();
        for (int i = 0; i < nworkers; i++)
            goro_go(wg_worker, s);
        goro_waitgroup_wait(&s->round_done);
        CHECK(atomic_load(&s->wg.state) == 0, "round %d: state left %#llx", r,
              (unsigned long long)atomic_load(&s->wg.state));
    }
    signaller_stop(&s->sig);
    CHECK(atomic_load(&s->wg.sema) == 0, "sema count left %u", atomic_load(&s->wg.sema));
    *interrupted = atomic_load(&s->interrupted);
    free(s);
    return atomic_load(&nerr);
}

/* ---- notify list: a Cond-guarded queue; consumer threads interruptible,
 * consumer goroutines not; one Signal per item. A notification lost to an
 * abandoned ticket leaves an item with every consumer asleep: a hang. ---- */

struct cond_stress {
    goro_mutex_t mu;
    struct notify_list nl;
    int64_t queued;       /* items in the queue, under mu */
    int64_t consumed;     /* under mu */
    int64_t total;
    _Atomic int64_t interrupted;
    _Atomic int running;
    _Atomic int started;
    struct signaller sig;
};

/* Cond.Wait: ticket under mu, unlock, wait, relock. false if interrupted
 * (mu relocked either way, as Python's Cond.wait does). An interrupted wait
 * alternately goes back to waiting on its ticket and abandons it: both must
 * keep every notification. */
static bool cond_wait(struct cond_stress *s, bool intr)
{
    uint32_t t = notify_list_add(&s->nl);
    goro_mutex_unlock(&s->mu);
    bool ok = true;
    while (!notify_list_wait_ex(&s->nl, t, WAIT_COND, intr)) {
        ok = false;
        if (atomic_fetch_add(&s->interrupted, 1) & 1) {
            notify_list_abandon(&s->nl, t);
            break;
        }
    }
    goro_mutex_lock(&s->mu);
    return ok;
}

static bool consume_one(struct cond_stress *s, bool intr)
{
    goro_mutex_lock(&s->mu);
    while (s->queued == 0 && s->consumed < s->total) {
        (void)cond_wait(s, intr);
    }
    bool more = s->consumed < s->total;
    if (more) {
        s->queued--;
        s->consumed++;
        if (s->consumed == s->total)
            notify_list_notify_all(&s->nl); /* let the other consumers out */
    }
    goro_mutex_unlock(&s->mu);
    return more;
}

static void cond_consumer_goroutine(void *p)
{
    struct cond_stress *s = p;
    while (consume_one(s, false))
        ;
    atomic_fetch_sub(&s->running, 1);
}

static void *cond_consumer_thread(void *p)
{
    struct cond_stress *s = p;
    target_enter(&s->sig);
    while (consume_one(s, true))
        ;
    target_leave(&s->sig);
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

int64_t intr_cond_stress(int ngor, int nthreads, int64_t total, int64_t period_ns,
                         int64_t *interrupted)
{
    install_handler();
    atomic_store(&nerr, 0);
    struct cond_stress *s = calloc(1, sizeof *s);
    s->total = total;
    atomic_store(&s->running, ngor + nthreads);
    signaller_start(&s->sig, period_ns);
    for (int i = 0; i < ngor; i++)
        goro_go(cond_consumer_goroutine, s);
    start_threads(s, nthreads, cond_consumer_thread);
    for (int64_t i = 0; i < total; i++) {
        goro_mutex_lock(&s->mu);
        s->queued++;
        goro_mutex_unlock(&s->mu);
        notify_list_notify_one(&s->nl);
        if ((i & 3) == 0)
            spin_for(2000);
    }
    int64_t deadline = goro_nanotime() + DEADLINE;
    while (atomic_load(&s->running) > 0) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: cond consumers stuck (lost notification?) "
                            "consumed %lld/%lld\n", (long long)s->consumed, (long long)total);
            stuck_abort();
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    signaller_stop(&s->sig);
    *interrupted = atomic_load(&s->interrupted);
    CHECK(s->consumed == total, "consumed %lld", (long long)s->consumed);
    CHECK(notify_list_pending(&s->nl) == 0, "tickets pending %u", notify_list_pending(&s->nl));
    CHECK(s->nl.head == NULL, "waiters left parked");
    notify_list_destroy(&s->nl);
    free(s);
    return atomic_load(&nerr);
}

/* ---- sema_acquire withdrawal from each queue position, deterministic ----
 * n interruptible threads queue on one semaphore in order; the one at
 * position `victim` is signalled and must withdraw (SEMA_WITHDRAWN); the
 * others, and a newcomer queued after the withdrawal, then get through,
 * one per release, in FIFO order. */

struct sema_q {
    _Atomic uint32_t sema;
    _Atomic int order[9];
    _Atomic int next;
    _Atomic int result[9]; /* -1 running, else enum sema_result */
    pthread_t threads[9];
};

struct sema_q_arg {
    struct sema_q *q;
    int id;
};

static void *sema_q_thread(void *p)
{
    struct sema_q_arg *a = p;
    goro_thread_set_interruptible(true);
    enum sema_result r = sema_acquire(&a->q->sema, false, WAIT_SEMACQUIRE, true);
    goro_thread_set_interruptible(false);
    if (r == SEMA_ACQUIRED)
        a->q->order[atomic_fetch_add(&a->q->next, 1)] = a->id;
    atomic_store(&a->q->result[a->id], (int)r);
    return NULL;
}

static void wait_for(bool (*pred)(struct sema_q *, int), struct sema_q *q, int k)
{
    int64_t deadline = goro_nanotime() + DEADLINE;
    while (!pred(q, k)) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: sema_q stuck\n");
            stuck_abort();
        }
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
}

static bool queued_is(struct sema_q *q, int k)
{
    return sema_nwaiters(&q->sema) == k;
}

static bool result_set(struct sema_q *q, int id)
{
    return atomic_load(&q->result[id]) != -1;
}

int64_t intr_sema_withdraw(int n, int victim)
{
    install_handler();
    atomic_store(&nerr, 0);
    if (n > 8 || victim >= n)
        return -1;
    struct sema_q *q = calloc(1, sizeof *q);
    struct sema_q_arg args[9];
    struct busy busy;
    busy_start(&busy);
    for (int i = 0; i < n; i++) {
        atomic_store(&q->result[i], -1);
        args[i] = (struct sema_q_arg){q, i};
        if (pthread_create(&q->threads[i], NULL, sema_q_thread, &args[i]) != 0)
            abort();
        wait_for(queued_is, q, i + 1); /* queued in creation order */
    }
    /* A signal that lands just before the thread enters its futex wait is
     * not noticed (thread_park only reacts to EINTR): resend until the
     * victim has withdrawn. */
    while (!result_set(q, victim)) {
        pthread_kill(q->threads[victim], SIGUSR1);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK(atomic_load(&q->result[victim]) == SEMA_WITHDRAWN, "victim result %d",
          atomic_load(&q->result[victim]));
    CHECK(sema_nwaiters(&q->sema) == n - 1, "queued after withdrawal: %d",
          sema_nwaiters(&q->sema));
    /* A newcomer queues at the tail of what is left (a stale tail pointer
     * left by the withdrawal would lose it). */
    atomic_store(&q->result[n], -1);
    args[n] = (struct sema_q_arg){q, n};
    if (pthread_create(&q->threads[n], NULL, sema_q_thread, &args[n]) != 0)
        abort();
    wait_for(queued_is, q, n);
    for (int i = 0; i < n; i++) {
        goro_semrelease(&q->sema, false);
        int64_t deadline = goro_nanotime() + DEADLINE;
        while (atomic_load(&q->next) < i + 1) {
            if (goro_nanotime() > deadline) {
                fprintf(stderr, "sync intr test: release %d lost\n", i);
                stuck_abort();
            }
            sched_yield();
        }
    }
    /* Joined before reading order[]: a thread bumps next before it stores
     * its slot (TSAN runs saw the empty slot of the last one). */
    for (int i = 0; i <= n; i++)
        pthread_join(q->threads[i], NULL);
    int want = 0;
    for (int i = 0; i < n; i++, want++) {
        if (want == victim)
            want++;
        CHECK(q->order[i] == want, "position %d: thread %d, want %d", i, q->order[i], want);
    }
    CHECK(atomic_load(&q->sema) == 0 && sema_nwaiters(&q->sema) == 0, "sema left %u/%d",
          atomic_load(&q->sema), sema_nwaiters(&q->sema));
    busy_stop(&busy);
    free(q);
    return atomic_load(&nerr);
}

/* ---- A Mutex wakeup owed to a withdrawn waiter, taken by an arrival ----
 * Deterministic. An interruptible thread T waits for a Mutex; an Unlock
 * picks it (T uncounted, WOKEN set, or in starvation mode a handoff) and,
 * before the Unlock's semrelease puts the count in the semaphore, a signal
 * makes T withdraw. The wakeup is owed to T, so T queues for it again. The
 * count then lands in the semaphore just as a counted arrival looks there:
 * the arrival takes it in semacquire's fast path and acts as the woken
 * waiter (here it ends up holding the lock), and T's place is covered by
 * the arrival's count: T now waits for whatever Unlock comes next. That
 * wait must still end on a signal (Ctrl-C, the deadlock check), or T hangs
 * for as long as the lock is held, here until T returns.
 *
 * The driver (a plain thread) plays the Unlock, the barger and the arrival
 * by doing their atomic steps on the state word and the semaphore itself,
 * in the order above. The releaser's semrelease is its add to the count;
 * the rest of it would dequeue T, who would find no count and queue again
 * at the front: the same queue, so it is left out.
 *   variant 0  normal mode: the arrival takes the lock as the woken waiter
 *   variant 1  starvation mode: the arrival takes the handoff and, not
 *              starving itself, leaves starvation mode
 *   variant 2  as 1, but the arrival is starving: the mode stays */

#define OWED_STUCK_NS (10 * SEC) /* a hang detector: a correct T is out after a signal or two */

struct owed {
    goro_mutex_t mu;
    _Atomic int result; /* -1 while T is inside mutex_lock_ex */
};

/* On an interruptible thread: one mutex_lock_ex (unlocking again if it got
 * the lock); its result goes to *result. */
static void intr_lock_once(goro_mutex_t *m, _Atomic int *result)
{
    goro_thread_set_interruptible(true);
    int r = mutex_lock_ex(m, WAIT_MUTEX, false, true);
    goro_thread_set_interruptible(false);
    if (r == GORO_OK)
        goro_mutex_unlock(m);
    atomic_store(result, r);
}

static void *owed_thread(void *p)
{
    struct owed *o = p;
    intr_lock_once(&o->mu, &o->result);
    return NULL;
}

static bool owed_step(struct owed *o, int32_t from, int32_t to, const char *what)
{
    int32_t old = from;
    if (atomic_compare_exchange_strong(&o->mu.state, &old, to))
        return true;
    CHECK(false, "owed: %s: state %#x, want %#x", what, (unsigned)old, (unsigned)from);
    return false;
}

/* One step of a waiter's algorithm, as a CAS loop on the state now: a late
 * signal may make T decide again meanwhile (and uncount itself, once the
 * arrival's count covers it), which is just another interleaving. */
static bool owed_apply(struct owed *o, int32_t (*step)(int32_t), const char *what)
{
    int32_t old = atomic_load(&o->mu.state);
    for (;;) {
        int32_t new = step(old);
        if (new == -1) {
            CHECK(false, "owed: %s: state %#x", what, (unsigned)old);
            return false;
        }
        if (atomic_compare_exchange_weak(&o->mu.state, &old, new))
            return true;
    }
}

#define OWED_W ((int32_t)1 << MUTEX_WAITER_SHIFT)

/* An arrival finding the lock held (or the Mutex starving) counts itself. */
static int32_t owed_arrive(int32_t old)
{
    return (old & (MUTEX_LOCKED | MUTEX_STARVING)) != 0 ? old + OWED_W : -1;
}

/* mutex_lock_slow, woken in normal mode, finding the lock free: take it,
 * clear WOKEN. */
static int32_t owed_woken_takes(int32_t old)
{
    if ((old & (MUTEX_WOKEN | MUTEX_LOCKED | MUTEX_STARVING)) != MUTEX_WOKEN)
        return -1;
    return (old | MUTEX_LOCKED) & ~MUTEX_WOKEN;
}

/* mutex_take_handoff(starving = false / true). */
static int32_t owed_handoff(int32_t old, bool starving)
{
    if ((old & (MUTEX_LOCKED | MUTEX_WOKEN)) != 0 || (old & MUTEX_STARVING) == 0 ||
        (old >> MUTEX_WAITER_SHIFT) == 0)
        return -1;
    int32_t new = old + MUTEX_LOCKED - OWED_W;
    if (!starving || (old >> MUTEX_WAITER_SHIFT) == 1)
        new &= ~MUTEX_STARVING;
    return new;
}

static int32_t owed_handoff_calm(int32_t old)
{
    return owed_handoff(old, false);
}

static int32_t owed_handoff_starving(int32_t old)
{
    return owed_handoff(old, true);
}

/* Signal t a few times, 1 ms apart: one of them lands in its futex wait. */
static void owed_kick(pthread_t t)
{
    for (int i = 0; i < 5; i++) {
        pthread_kill(t, SIGUSR1);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void owed_round(int variant)
{
    const int32_t W = OWED_W;
    struct owed *o = calloc(1, sizeof *o);
    atomic_store(&o->result, -1);
    goro_mutex_lock(&o->mu);
    pthread_t t;
    if (pthread_create(&t, NULL, owed_thread, o) != 0)
        abort();
    int64_t deadline = goro_nanotime() + DEADLINE;
    while (sema_nwaiters(&o->mu.sema) != 1) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: owed: T never queued\n");
            stuck_abort();
        }
        sched_yield();
    }
    bool ok;
    int32_t picked; /* the state once the Unlock has picked T */
    if (variant == 0) {
        /* Unlock: LOCKED off, then (unlock_slow) T uncounted and WOKEN. */
        picked = MUTEX_WOKEN;
        ok = owed_step(o, MUTEX_LOCKED | W, picked, "unlock");
    } else {
        /* Starvation mode with T the only waiter, LOCKED held: reached when
         * a starving waiter set STARVING and then withdrew itself (an
         * interrupted thread uncounts and keeps the mode while others are
         * counted). Unlock clears LOCKED and hands off to the queue. */
        picked = MUTEX_STARVING | W;
        ok = owed_step(o, MUTEX_LOCKED | W, picked, "starving unlock");
    }
    /* T withdraws and, the wakeup being owed to it, queues for it again
     * (and again after each later kick, if that wait is interruptible:
     * wait until it is back in the queue, or the steps below would meet it
     * outside and be no theft from a queued waiter). */
    owed_kick(t);
    deadline = goro_nanotime() + DEADLINE;
    while (sema_nwaiters(&o->mu.sema) != 1 && atomic_load(&o->result) == -1) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: owed: T never queued again\n");
            stuck_abort();
        }
        sched_yield();
    }
    CHECK(atomic_load(&o->result) == -1, "owed: T returned %d before its wakeup came",
          atomic_load(&o->result));
    CHECK(atomic_load(&o->mu.state) == picked, "owed: state %#x after T's withdrawal",
          (unsigned)atomic_load(&o->mu.state));
    if (ok && variant == 0) {
        /* A barger takes the free lock; an arrival counts itself; the
         * barger unlocks (WOKEN set: it wakes nobody). */
        CHECK(goro_mutex_trylock(&o->mu), "owed: barger");
        ok = owed_apply(o, owed_arrive, "arrival");
        CHECK(goro_mutex_unlock(&o->mu) == GORO_OK, "owed: barger unlock");
    } else if (ok) {
        /* An arrival in starvation mode counts itself and queues. */
        ok = owed_apply(o, owed_arrive, "starving arrival");
    }
    /* The Unlock's semrelease adds its count; the arrival, in its
     * semacquire, takes it through the fast path. */
    atomic_fetch_add(&o->mu.sema, 1);
    CHECK(sema_tryacquire(&o->mu.sema), "owed: arrival's fast path");
    /* Woken (as it thinks), it finds the lock free and takes it; or, handed
     * the lock (as it thinks), it takes the handoff. */
    if (ok)
        ok = owed_apply(o, variant == 0   ? owed_woken_takes
                           : variant == 1 ? owed_handoff_calm
                                          : owed_handoff_starving,
                        "woken arrival");
    /* The arrival holds the lock and keeps it until T is out. */
    deadline = goro_nanotime() + OWED_STUCK_NS;
    while (ok && atomic_load(&o->result) == -1 && goro_nanotime() < deadline) {
        pthread_kill(t, SIGUSR1);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    int r = atomic_load(&o->result);
    CHECK(r == GORO_INTERRUPTED, "owed variant %d: T %s (state %#x, %d queued)", variant,
          r == -1 ? "still waiting while the lock is held: its wait no longer ends on a signal"
                  : "returned a lock it cannot have got",
          (unsigned)atomic_load(&o->mu.state), sema_nwaiters(&o->mu.sema));
    CHECK(goro_mutex_unlock(&o->mu) == GORO_OK, "owed: arrival unlock");
    pthread_join(t, NULL); /* a T still waiting gets this Unlock's wakeup */
    CHECK(atomic_load(&o->mu.state) == 0, "owed: state left %#x", (unsigned)atomic_load(&o->mu.state));
    CHECK(atomic_load(&o->mu.sema) == 0 && sema_nwaiters(&o->mu.sema) == 0, "owed: sema left %u/%d",
          atomic_load(&o->mu.sema), sema_nwaiters(&o->mu.sema));
    free(o);
}

int64_t intr_mutex_owed_stolen(int variant, int rounds)
{
    install_handler();
    atomic_store(&nerr, 0);
    struct busy busy;
    busy_start(&busy);
    for (int i = 0; i < rounds && atomic_load(&nerr) == 0; i++)
        owed_round(variant);
    busy_stop(&busy);
    return atomic_load(&nerr);
}

/* ---- A starvation handoff taken while another waiter withdraws ----
 * Two waiters in starvation mode: R (starving: it has waited over 1 ms) at
 * the head, interruptible T behind it. The driver signals T and unlocks at
 * (about) the same instant, with a delay swept over the rounds: the Unlock
 * hands the lock to R, whose mutex_take_handoff sees two waiters and, being
 * starving, keeps starvation mode, while T, seeing two waiters and LOCKED
 * clear, uncounts itself (another waiter gets the handoff). If T's uncount
 * lands between R's look at the waiter count and its update, R must still
 * see that it was the last waiter and leave starvation mode: a starving
 * Mutex with no waiter would hand R's Unlock to nobody (STARVING and a stray
 * sema count left, try_lock failing until some lock() takes the count).
 * Returns violations; *hit counts the rounds in which T withdrew. */

struct handoff_race {
    goro_mutex_t mu;
    _Atomic int t_result;
};

static void *handoff_race_r(void *p)
{
    struct handoff_race *h = p;
    mutex_lock_ex(&h->mu, WAIT_MUTEX, false, false);
    int32_t s = atomic_load(&h->mu.state);
    CHECK((s & MUTEX_STARVING) == 0 || (s >> MUTEX_WAITER_SHIFT) > 0,
          "handoff race: the new owner sees starvation mode with no waiter: state %#x",
          (unsigned)s);
    goro_mutex_unlock(&h->mu);
    return NULL;
}

static void *handoff_race_t(void *p)
{
    struct handoff_race *h = p;
    intr_lock_once(&h->mu, &h->t_result);
    return NULL;
}

static void handoff_race_wait_queued(struct handoff_race *h, int n)
{
    int64_t deadline = goro_nanotime() + DEADLINE;
    while (sema_nwaiters(&h->mu.sema) != n) {
        if (goro_nanotime() > deadline) {
            fprintf(stderr, "sync intr test: handoff race: %d never queued\n", n);
            stuck_abort();
        }
        sched_yield();
    }
}

int64_t intr_mutex_handoff_race(int rounds, int64_t *hit)
{
    install_handler();
    atomic_store(&nerr, 0);
    *hit = 0;
    const int32_t W = (int32_t)1 << MUTEX_WAITER_SHIFT;
    struct busy busy;
    busy_start(&busy);
    for (int i = 0; i < rounds && atomic_load(&nerr) == 0; i++) {
        struct handoff_race *h = calloc(1, sizeof *h);
        atomic_store(&h->t_result, -1);
        goro_mutex_lock(&h->mu);
        pthread_t r, t;
        if (pthread_create(&r, NULL, handoff_race_r, h) != 0)
            abort();
        handoff_race_wait_queued(h, 1);
        if (pthread_create(&t, NULL, handoff_race_t, h) != 0)
            abort();
        handoff_race_wait_queued(h, 2);
        spin_for(MUTEX_STARVATION_NS + 200000); /* R is starving by now */
        /* Starvation mode, as a starving waiter that then withdrew would
         * have left it (see owed_round). */
        int32_t old = MUTEX_LOCKED | 2 * W;
        CHECK(atomic_compare_exchange_strong(&h->mu.state, &old, old | MUTEX_STARVING),
              "handoff race: state %#x", (unsigned)old);
        pthread_kill(t, SIGUSR1);
        spin_for((i * 7919) % 40000); /* 0..40 us: sweep the alignment */
        goro_mutex_unlock(&h->mu);
        pthread_join(r, NULL);
        /* T: withdrawn, or (its signal missed the wait) it gets the lock
         * after R: either way it comes back. */
        pthread_join(t, NULL);
        if (atomic_load(&h->t_result) == GORO_INTERRUPTED)
            (*hit)++;
        int32_t s = atomic_load(&h->mu.state);
        CHECK(s == 0 && atomic_load(&h->mu.sema) == 0 && sema_nwaiters(&h->mu.sema) == 0,
              "handoff race round %d: state %#x, sema count %u left", i, (unsigned)s,
              atomic_load(&h->mu.sema));
        free(h);
    }
    busy_stop(&busy);
    return atomic_load(&nerr);
}
