/* cffi declarations: timers and sleep (csrc/sched/timer.c), timer helpers. */

/* cdef-only */
typedef struct goro_timer goro_timer_t;
int goro_sleep(int64_t ns);
goro_timer_t *goro_timer_new(int64_t ns, int64_t period_ns);
bool goro_timer_stop(goro_timer_t *t);
bool goro_timer_reset(goro_timer_t *t, int64_t ns, int64_t period_ns);
void goro_timer_free(goro_timer_t *t);
/* end cdef-only */

/* helpers/timer.c */
int64_t timer_sleepers(int n, int64_t ns);
int timer_fires_once(int64_t ns);
int timer_stop_prevents(int64_t ns);
int timer_no_stale_after_stop(int64_t ns);
int timer_ticker_ticks(int64_t period_ns, int ticks);
int timer_after_func_runs(int64_t ns);
int64_t timer_many_pending(int n);
