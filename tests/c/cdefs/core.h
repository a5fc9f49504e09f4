/* cffi declarations: the runtime section of pygoro.h and the core helpers. */

/* cdef-only */
typedef struct goro_stats {
    int gomaxprocs;
    int num_m;
    int64_t num_goroutine;
    uint64_t steals;
    uint64_t global_gets;
    uint64_t spawns;
    uint64_t parks;
    uint64_t stacks_mapped;
    uint64_t stacks_guarded;
    int npidle;
    int nmspinning;
    int nmidle;
} goro_stats_t;
int goro_runtime_start(int gomaxprocs);
void goro_runtime_stop(void);
void goro_gosched(void);
int goro_gomaxprocs(int n);
int goro_num_cpu(void);
int64_t goro_num_goroutine(void);
uint64_t goro_goid(void);
size_t goro_set_stack_size(size_t bytes);
void goro_thread_set_interruptible(bool on);
void goro_get_stats(goro_stats_t *out);
uint64_t goro_p_steals(int p);
int64_t goro_nanotime(void);
/* end cdef-only */

/* helpers/core.c */
int64_t core_spawn_join(int n, int from_goroutine);
int64_t core_gosched_yielders(int n, int iters, int64_t *thread_changes);
int64_t core_park_many(int n, int64_t *rss_delta_kb);
int64_t core_steal_work(int n, int spin_iters, uint64_t *steals);
int64_t core_gomaxprocs_churn(int n, int rounds);
int64_t core_switch_only(int iters);
int64_t core_runnext_chain_fairness(int64_t limit);
int core_spin_budget(int64_t *verdict);
int64_t core_spawn_nested(int depth, int fanout);
int core_stack_overflow(void);
int64_t core_pinned_pingpong(int pairs, int iters, int procs_after, int64_t *moves,
                             int64_t *nthreads);
