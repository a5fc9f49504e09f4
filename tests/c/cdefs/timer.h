/* cffi declarations: the timer section of pygoro.h (csrc/sched/sleep.c,
 * csrc/sched/time_public.c) and the timer test helpers
 * (tests/c/helpers/timer.c). goro_nanotime is in core.h. */

/* cdef-only */
typedef struct goro_timer goro_timer_t;
int goro_sleep(int64_t ns);
goro_timer_t *goro_timer_new(int64_t ns, int64_t period_ns);
goro_timer_t *goro_after_func(int64_t ns, void (*fn)(void *), void *arg);
goro_chan_t *goro_timer_chan(goro_timer_t *t);
bool goro_timer_stop(goro_timer_t *t);
bool goro_timer_reset(goro_timer_t *t, int64_t ns, int64_t period_ns);
void goro_timer_free(goro_timer_t *t);
/* end cdef-only */

/* helpers/timer.c */
int64_t timer_sleepers(int n, int64_t ns);
int64_t timer_sleep_once(int64_t ns, int in_goroutine);
int64_t timer_sleep_nonpositive(void);
int timer_sleep_signalled(int64_t ns, int64_t signal_after_ns, int interruptible, int64_t *elapsed);
int timer_fires_once(int64_t ns);
int timer_stop_prevents(int64_t ns);
int timer_reset_results(int64_t ns);
int timer_no_stale_after_stop(int64_t ns);
int timer_no_stale_after_reset(int64_t ns, int ticker);
int timer_ticker_ticks(int64_t period_ns, int ticks);
int timer_ticker_reset_count(int64_t period_ns, int64_t window_ns);
int timer_ticker_drops(int64_t period_ns);
int timer_after_func_runs(int64_t ns, int stop_first);
int timer_stop_waits_for_running(int64_t spin_ns, int periodic);
int timer_heap_random_ops(int n, int rounds);
int timer_due_in_order(int n, int64_t spread_ns, int stop_every, int64_t *max_late);
int timer_many_pending(int n, int64_t idle_ns, int64_t *out);
int64_t timer_bench_add_stop(int pending, int iters, int workers, int early);
int64_t timer_fires_while_idle(int64_t ns);
int64_t timer_stress(int workers, int iters, int64_t *received);
int timer_fork_child(void);
int64_t timer_fires_beside_hog(int64_t ns, int64_t hog_ns);
