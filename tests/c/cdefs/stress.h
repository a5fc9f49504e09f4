/* cffi declarations: the randomized stress driver (tests/c/helpers/stress.c).
 * out[16]: ops, sent OK, sends failed (closed), received (incl. drained),
 * selects, selects ending by default/timeout, timer-case fires, closes,
 * goroutines started, pthreads started, gomaxprocs changes, rounds,
 * mutex-guarded increments, values drained from buffers at round ends,
 * goroutines left over, elapsed ns. */
int64_t stress_run(uint64_t seed, int64_t duration_ns, int64_t max_round_ns, int max_workers,
                   int max_threads, int max_procs, int64_t *out);
