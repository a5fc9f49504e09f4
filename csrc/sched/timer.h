/* Timers, internal to the runtime: shared by sched/timer.c (the heap),
 * sched/sleep.c (goroutine and thread sleep) and sched/time_public.c (the
 * public Timer/Ticker/AfterFunc). The interface the rest of the runtime uses
 * (timer_reset, timer_stop, timers_run, timers_next) is in runtime.h. */
#ifndef PYGORO_TIMER_H
#define PYGORO_TIMER_H

#include "../runtime.h"

/* Go's when(d): the nanotime ns from now, saturating instead of wrapping
 * (an "infinite" duration must not land in the past). ns <= 0 is now. */
static inline int64_t timer_when(int64_t ns)
{
    int64_t now = nanotime();
    int64_t when;
    if (ns <= 0)
        return now;
    if (__builtin_add_overflow(now, ns, &when))
        return INT64_MAX;
    return when;
}

/* For tests: timers pending in the heap, and heap slots allocated. */
void timers_heap_stats(int64_t *len, int64_t *cap);
/* For tests: check the heap's order, slot indices and states (takes the
 * lock; O(pending)). */
bool timers_heap_verify(void);

#endif
