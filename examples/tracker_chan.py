"""Incomplete work, channel edition: a Tracker with one worker goroutine.

Handlers call event(ctx, data), which queues the event on a buffered channel
and returns at once; run() - started by the caller, who thereby owns its
lifetime - records events one by one. shutdown(ctx) closes the queue, so
run()'s loop ends after the last queued event, and waits for run() to
finish or for ctx to expire, whichever comes first.

event() does not block forever either: when the queue is full it waits only
until its own ctx is done (backpressure with a deadline).

(The lecture's Go version never makes its stop channel, so run() would block
forever on a nil channel at the end; here it is made in __init__.)
"""

from pygoro import chan, context, go, select
from pygoro import time as gotime


def write(data):
    """Simulated network write of one event: 1 ms, then it is stored."""
    gotime.sleep(0.001)
    print("recorded", data)


class Tracker:
    def __init__(self, queue=10, write=write):
        self._ch = chan(queue)
        self._stop = chan()
        self._write = write

    def event(self, ctx, data):
        """Queue one event; raise ctx.err() if ctx ends first."""
        i, _, _ = select(self._ch.send_case(data), ctx.done_case())
        if i == 1:
            raise ctx.err()

    def run(self):
        """Record events until shutdown() closes the queue; run it with go()."""
        for data in self._ch:
            self._write(data)
        self._stop.close()

    def shutdown(self, ctx):
        """Stop accepting events and wait for the queued ones to be recorded;
        raise ctx.err() if ctx ends first."""
        self._ch.close()
        i, _, _ = select(self._stop.recv_case(), ctx.done_case())
        if i == 1:
            raise ctx.err()


def main():
    bg = context.background()

    print("== normal shutdown")
    tr = Tracker()
    go(tr.run)
    for i in range(3):
        tr.event(bg, f"event {i}")
    with context.with_timeout(bg, 5) as (ctx, _):
        tr.shutdown(ctx)
    print("shutdown: all events recorded")

    print("== a full queue and a caller's deadline")
    tr = Tracker(queue=2)  # run() not started yet: nothing drains the queue
    for i in range(3):
        with context.with_timeout(bg, 0.05) as (ctx, _):
            try:
                tr.event(ctx, f"event {i}")
                print(f"event {i}: queued")
            except context.DeadlineExceeded as e:
                print(f"event {i}: {e}")
    go(tr.run)
    with context.with_timeout(bg, 5) as (ctx, _):
        tr.shutdown(ctx)
    print("shutdown: all queued events recorded")

    print("== shutdown while the event store is down")
    store_up = chan()  # never closed: every write hangs

    def write_to_dead_store(data):
        store_up.recv()

    tr = Tracker(write=write_to_dead_store)
    for i in range(5):
        tr.event(bg, f"event {i}")
    go(tr.run)
    with context.with_timeout(bg, 0.1) as (ctx, _):
        try:
            tr.shutdown(ctx)
        except context.DeadlineExceeded as e:
            print("shutdown:", e)


if __name__ == "__main__":
    main()
