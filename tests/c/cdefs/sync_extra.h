/* cffi declarations: Pool, the weighted Semaphore and the atomics of
 * pygoro.h, and their test helpers (tests/c/helpers/sync_extra.c).
 * goro_atomic_int64_t is declared with "...;" (an _Atomic field cdef cannot
 * spell); its operations are static inline in pygoro.h, which cffi wraps. */

/* cdef-only */
typedef struct goro_pool goro_pool_t;
goro_pool_t *goro_pool_new(void *(*new_fn)(void *arg), void *arg);
void *goro_pool_get(goro_pool_t *p);
int goro_pool_put(goro_pool_t *p, void *x);
size_t goro_pool_drain(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg);
void goro_pool_free(goro_pool_t *p, void (*release)(void *x, void *arg), void *arg);

typedef struct goro_semaphore goro_semaphore_t;
goro_semaphore_t *goro_semaphore_new(int64_t size);
void goro_semaphore_free(goro_semaphore_t *s);
int goro_semaphore_acquire(goro_semaphore_t *s, int64_t n);
int goro_semaphore_try_acquire(goro_semaphore_t *s, int64_t n);
int goro_semaphore_acquire_select(goro_semaphore_t *s, int64_t n, goro_chan_t *cancel,
                                  void *cancel_elem, int64_t timeout_ns);
int goro_semaphore_release(goro_semaphore_t *s, int64_t n);
int64_t goro_semaphore_size(goro_semaphore_t *s);
int64_t goro_semaphore_held(goro_semaphore_t *s);
int64_t goro_semaphore_waiters(goro_semaphore_t *s);

typedef struct goro_atomic_int64 { ...; } goro_atomic_int64_t;
int64_t goro_atomic_int64_load(goro_atomic_int64_t *a);
void goro_atomic_int64_store(goro_atomic_int64_t *a, int64_t v);
int64_t goro_atomic_int64_add(goro_atomic_int64_t *a, int64_t delta);
int64_t goro_atomic_int64_swap(goro_atomic_int64_t *a, int64_t v);
bool goro_atomic_int64_cas(goro_atomic_int64_t *a, int64_t old, int64_t v);
/* end cdef-only */

/* helpers/sync_extra.c */
int64_t sx_pool_conservation(int ngor, int nthreads, int iters, int drain, int64_t *created,
                             int64_t *drained);
int64_t sx_pool_reuse(int kind);
int64_t sx_pool_steal(int n, int *got);
int64_t sx_pool_getput_ns(int64_t iters, int kind);
int64_t sx_sem_fifo(int nsmall, int kind, int mode_big, int mode_small);
int64_t sx_sem_stress(int ngor, int nthreads, int64_t size, int iters, int big,
                      int64_t *max_inside, int64_t *counts);
int64_t sx_sem_cancel(int kind, int64_t timeout_ms);
int64_t sx_sem_keep_place(int kind);
int64_t sx_sem_uncontended_ns(int64_t iters);
int64_t sx_atomic_contention(int ngor, int nthreads, int64_t iters);
int64_t sx_atomic_add_ns(int64_t iters);
