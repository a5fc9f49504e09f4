/* cffi declarations: helpers/sync_intr.c (interruptible sync waits). */
int64_t intr_mutex_stress(int ngor, int nthreads, int64_t iters, int64_t hold_ns, int64_t period_ns, int64_t *interrupted, int64_t *acquired);
int64_t intr_rw_stress(int nreaders, int nwriters, int nthreads, int64_t iters, int64_t hold_ns, int64_t period_ns, int64_t *interrupted, int64_t *acquired);
int64_t intr_wg_stress(int rounds, int nworkers, int nwaiters, int64_t work_ns, int64_t period_ns, int64_t *interrupted);
int64_t intr_cond_stress(int ngor, int nthreads, int64_t total, int64_t period_ns, int64_t *interrupted);
int64_t intr_sema_withdraw(int n, int victim);
int64_t intr_mutex_owed_stolen(int variant, int rounds);
int64_t intr_mutex_handoff_race(int rounds, int64_t *hit);
