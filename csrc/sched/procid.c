/* The current P's id, for per-P caches outside the scheduler (sync.Pool).
 *
 * Go's sync.Pool pins the goroutine to its P (procPin disables preemption)
 * while it touches the P's slot. pygoro has no preemption: a goroutine keeps
 * its P until it parks, yields or exits, and mp->p only changes on the M's
 * own g0 between goroutines. So reading the id is the whole pin; the caller
 * must not park before it is done with the P's slot.
 */
#include "sched.h"

int sched_current_pid(void)
{
    struct m *mp = getm();
    if (mp == NULL || mp->p == NULL)
        return -1;
    return mp->p->id;
}

int sched_max_procs(void)
{
    return MAX_PROCS;
}
