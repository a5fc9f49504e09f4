/* cffi declarations: the sync section of pygoro.h (csrc/sync/) and the sync
 * test helpers (tests/c/helpers/sync.c). The structs are declared with
 * "...;": cffi takes their size from the compiler (their fields are atomics,
 * which cdef cannot spell; the helpers read them). goro_semacquire and
 * goro_semrelease take an _Atomic word and are driven from the helpers. */

/* cdef-only */
typedef struct goro_mutex { ...; } goro_mutex_t;
void goro_mutex_lock(goro_mutex_t *m);
bool goro_mutex_trylock(goro_mutex_t *m);
int goro_mutex_unlock(goro_mutex_t *m);

typedef struct goro_rwmutex { ...; } goro_rwmutex_t;
void goro_rwmutex_rlock(goro_rwmutex_t *rw);
bool goro_rwmutex_tryrlock(goro_rwmutex_t *rw);
int goro_rwmutex_runlock(goro_rwmutex_t *rw);
void goro_rwmutex_lock(goro_rwmutex_t *rw);
bool goro_rwmutex_trylock(goro_rwmutex_t *rw);
int goro_rwmutex_unlock(goro_rwmutex_t *rw);

typedef struct goro_waitgroup { ...; } goro_waitgroup_t;
int goro_waitgroup_add(goro_waitgroup_t *wg, int64_t delta);
int goro_waitgroup_done(goro_waitgroup_t *wg);
int goro_waitgroup_wait(goro_waitgroup_t *wg);

typedef struct goro_once { ...; } goro_once_t;
void goro_once_do(goro_once_t *o, void (*fn)(void *), void *arg);

typedef struct goro_cond goro_cond_t;
goro_cond_t *goro_cond_new(goro_mutex_t *l);
void goro_cond_free(goro_cond_t *c);
int goro_cond_wait(goro_cond_t *c);
void goro_cond_signal(goro_cond_t *c);
void goro_cond_broadcast(goro_cond_t *c);
/* end cdef-only */

/* helpers/sync.c */
int64_t sync_sema_fifo(int n, int mixed);
int64_t sync_sema_requeue_front(int rounds);
int64_t sync_sema_handoff(int rounds, int handoff, int driver_kind, int procs, int64_t *waiter_first, int64_t *barged);
int64_t sync_sema_stress(int ngor, int nthreads, uint32_t k, int64_t iters, int *max_inside);
int32_t sync_mutex_state(goro_mutex_t *m);
uint32_t sync_mutex_sema(goro_mutex_t *m);
void sync_mutex_set(goro_mutex_t *m, int32_t state, uint32_t sema);
int sync_mutex_waiters(goro_mutex_t *m);
int64_t sync_mutex_exclusion(int ngor, int nthreads, int64_t iters, int use_trylock, int64_t *counter, int64_t *starving_seen);
int64_t sync_mutex_starvation(int hog_kind, int waiter_kind, int64_t hold_ns, int yield_every, int nsamples, int64_t *waits_out, int64_t *hog_rounds, int64_t *starving_seen);
int64_t sync_mutex_barging(int rounds, int pairs, int holder_kind, int64_t *barged, int64_t *tries);
int64_t sync_mutex_starving_handoff(int rounds, int holder_kind, int64_t *tested);
int64_t sync_mutex_uncontended_ns(int64_t iters);
int64_t sync_mutex_contended_ns(int n, int kind, int64_t iters);
int64_t sync_rw_uncontended_read_ns(int64_t iters);
uint64_t sync_rw_state(goro_rwmutex_t *rw);
int64_t sync_rw_readers_writers(int nreaders, int nwriters, int reader_threads, int iters, int64_t read_hold_ns, int *max_readers, int64_t *writes);
int64_t sync_rw_writer_blocks_readers(int reader_kind);
uint64_t sync_wg_state(goro_waitgroup_t *wg);
int64_t sync_wg_rounds(int rounds, int nworkers, int nwaiters);
int64_t sync_wg_reuse_misuse(int *waiter_result);
int64_t sync_once(int ncallers, int nthreads, int64_t fn_ns, int *runs);
int64_t sync_once_done_ps(int64_t iters);
int64_t sync_cond_signal_order(int n, int mixed);
int64_t sync_cond_broadcast(int n, int nthreads);
int64_t sync_cond_queue(int nprod, int ncons, int64_t per, int cap, int nthreads, int64_t *received);
uint32_t sync_cond_pending(goro_cond_t *c);
