/* cffi declarations: the channel section of pygoro.h and the channel test
 * helpers (tests/c/helpers/chan.c). */

/* cdef-only */
typedef struct hchan goro_chan_t;
goro_chan_t *goro_chan_new(size_t elemsize, size_t cap);
void goro_chan_free(goro_chan_t *c);
int goro_chan_send(goro_chan_t *c, const void *elem);
int goro_chan_recv(goro_chan_t *c, void *elem, bool *ok);
int goro_chan_try_send(goro_chan_t *c, const void *elem);
int goro_chan_try_recv(goro_chan_t *c, void *elem, bool *ok);
int goro_chan_close(goro_chan_t *c);
size_t goro_chan_len(goro_chan_t *c);
size_t goro_chan_cap(goro_chan_t *c);
size_t goro_chan_elemsize(goro_chan_t *c);
bool goro_chan_closed(goro_chan_t *c);
typedef struct goro_select_case {
    goro_chan_t *c;
    int dir;
    void *elem;
    bool recv_ok;
} goro_select_case;
int goro_select(goro_select_case *cases, int ncases, int64_t timeout_ns);
/* end cdef-only */

/* helpers/chan.c */
int64_t chan_sieve(int n, int64_t *out, int in_goroutine);
int64_t chan_mpmc(int nsend, int nrecv, int64_t per, int cap, int kinds, int64_t *count, int64_t *sum);
int64_t chan_fifo(int64_t n, int cap);
int64_t chan_full_handoff(int cap, int nwaiters);
int64_t chan_select_mpmc(int nchans, const int *caps, int nsend, int nrecv, int64_t per, int dup, int kinds, int64_t *chosen_out);
int64_t chan_select_same_chan(int64_t rounds, int64_t *sends);
int64_t chan_select_fairness(int iters, int nready, int64_t *counts);
int64_t chan_select_fairness_mixed(int iters, int64_t *counts);
int64_t chan_close_wakes(int nrecv, int nsend, int nsel, int kinds);
int64_t chan_close_drains(int cap);
int chan_select_timeout(int64_t ns, int nchans, int64_t *elapsed);
int64_t chan_select_buffers(void);
int chan_select_timeout_in_goroutine(int64_t ns, int nchans, int64_t *elapsed);
int64_t chan_select_timeout_race(int nsend, int nrecv, int64_t per, int64_t timeout_ns, int64_t *timeouts);
int64_t chan_elems(void);
int64_t chan_free_elems_check(int cap, int nput, int ntake, int64_t *released);
int64_t chan_interrupt(int mode, int64_t n, int cap, int64_t *interrupted, int64_t *commits);
int chan_interrupt_lone(int mode, int *queued_after);
int64_t chan_pingpong(int64_t iters, int64_t *errs);
int64_t chan_try_empty_cost(int64_t iters);
