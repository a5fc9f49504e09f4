/* C-side driver for the dump test (tests/c/test_dump.py): C goroutines
 * parked in every kind of wait, so that goro_dump_buf can be checked for
 * each wait reason, entry function and creator.
 *
 * dump_park_all() starts a spawner goroutine that starts one goroutine per
 * wait below and records its own goid; dump_release_all() wakes them all
 * (except the sleeper, which ends by itself) and waits until they are gone.
 * The entry functions are exported (default visibility) so that dladdr can
 * name them. */
#include <stdio.h>
#include <string.h>

#include "pygoro.h"

#define EXPORT __attribute__((visibility("default")))
#define SEC 1000000000LL

static struct {
    goro_chan_t *recv_c;   /* nobody sends: the receiver waits */
    goro_chan_t *send_c;   /* nobody receives: the sender waits */
    goro_chan_t *sel_a, *sel_b;
    goro_chan_t *done;     /* each woken goroutine reports here */
    goro_mutex_t mu;       /* held by the driver */
    goro_waitgroup_t wg;   /* counter 1 until release */
    _Atomic uint64_t spawner_goid;
} d;

EXPORT void dump_entry_receiver(void *arg)
{
    (void)arg;
    int v;
    goro_chan_recv(d.recv_c, &v, NULL);
    goro_chan_send(d.done, &v);
}

EXPORT void dump_entry_sender(void *arg)
{
    (void)arg;
    int v = 1;
    goro_chan_send(d.send_c, &v);
    goro_chan_send(d.done, &v);
}

EXPORT void dump_entry_selector(void *arg)
{
    (void)arg;
    int a, b;
    goro_select_case cases[2] = {
        {d.sel_a, GORO_SELECT_RECV, &a, false},
        {d.sel_b, GORO_SELECT_RECV, &b, false},
    };
    goro_select(cases, 2, GORO_FOREVER);
    goro_chan_send(d.done, &a);
}

EXPORT void dump_entry_locker(void *arg)
{
    (void)arg;
    int v = 0;
    goro_mutex_lock(&d.mu);
    goro_mutex_unlock(&d.mu);
    goro_chan_send(d.done, &v);
}

EXPORT void dump_entry_waiter(void *arg)
{
    (void)arg;
    int v = 0;
    goro_waitgroup_wait(&d.wg);
    goro_chan_send(d.done, &v);
}

EXPORT void dump_entry_sleeper(void *arg)
{
    (void)arg;
    goro_sleep(2 * SEC);
}

EXPORT void dump_entry_spawner(void *arg)
{
    (void)arg;
    atomic_store(&d.spawner_goid, goro_goid());
    goro_go(dump_entry_receiver, NULL);
    goro_go(dump_entry_sender, NULL);
    goro_go(dump_entry_selector, NULL);
    goro_go(dump_entry_locker, NULL);
    goro_go(dump_entry_waiter, NULL);
    goro_go_named(dump_entry_sleeper, NULL, "dump test sleeper");
}

/* Returns the goid of the goroutine that started the others (after it ran),
 * or 0 on failure. */
uint64_t dump_park_all(void)
{
    memset(&d, 0, sizeof d);
    d.recv_c = goro_chan_new(sizeof(int), 0);
    d.send_c = goro_chan_new(sizeof(int), 0);
    d.sel_a = goro_chan_new(sizeof(int), 0);
    d.sel_b = goro_chan_new(sizeof(int), 0);
    d.done = goro_chan_new(sizeof(int), 8);
    goro_mutex_lock(&d.mu);
    goro_waitgroup_add(&d.wg, 1);
    if (goro_go(dump_entry_spawner, NULL) != GORO_OK)
        return 0;
    while (atomic_load(&d.spawner_goid) == 0)
        goro_sleep(1000000);
    return atomic_load(&d.spawner_goid);
}

/* Wake the five waiters and wait for their reports: 0 on success. */
int dump_release_all(void)
{
    int v = 0;
    goro_chan_send(d.recv_c, &v);
    goro_chan_recv(d.send_c, &v, NULL);
    goro_chan_send(d.sel_b, &v);
    goro_mutex_unlock(&d.mu);
    goro_waitgroup_done(&d.wg);
    for (int i = 0; i < 5; i++) {
        goro_select_case c = {d.done, GORO_SELECT_RECV, &v, false};
        if (goro_select(&c, 1, 30 * SEC) != 0)
            return -1;
    }
    return 0;
}
