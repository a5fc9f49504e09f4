/* cffi declarations: the benchmark loops (tests/c/helpers/bench.c), used by
 * benchmarks/. Each returns elapsed ns for the whole run, or -1. */
int64_t bench_spawn_join(int n);
int64_t bench_pingpong(int64_t iters);
int64_t bench_buffered(int64_t n, int cap);
int64_t bench_select2(int64_t iters);
int64_t bench_select_default(int64_t iters);
int64_t bench_timer_stop(int64_t iters);
int64_t bench_sleepers(int n, int64_t ns);
int64_t bench_mutex(int n, int64_t iters);
int64_t bench_mutex_bystander(int n, int64_t iters, int64_t sleep_ns, int64_t *late, int max,
                              int *nlate);
int64_t bench_close_fanout(int n);
int64_t bench_rss_parked(int n);
