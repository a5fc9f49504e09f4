"""Incomplete work: track fire-and-forget goroutines, bound the shutdown.

A request handler records an analytics event without making the client wait
for it: Tracker.event() runs the write in a goroutine. "Fire and hope" -
a bare go() - loses events when the program exits with writes in flight, so
the Tracker counts them with a WaitGroup, and shutdown(ctx) waits until
they are all done, or until ctx expires, whichever comes first: waiting
forever for a hung event store is not an option either.

shutdown() waits for the WaitGroup in a helper goroutine that closes a
channel, because select() can wait on a channel and a context at once but
not on wg.wait().
"""

from pygoro import chan, context, go, select
from pygoro import time as gotime
from pygoro.sync import Mutex, WaitGroup


class Store:
    """Where events end up; write() takes 1 ms, or hangs while the store
    is down."""

    def __init__(self, up=True):
        self._up = chan()
        if up:
            self._up.close()
        self._mu = Mutex()
        self.events = []

    def write(self, data):
        self._up.recv()  # returns at once while the store is up
        gotime.sleep(0.001)  # network write latency
        with self._mu:
            self.events.append(data)

    def recover(self):
        self._up.close()


class Tracker:
    def __init__(self, store):
        self._store = store
        self._wg = WaitGroup()

    def event(self, data):
        """Record data in the background; returns at once."""
        self._wg.add(1)  # before go(): shutdown() must see it

        def write():
            try:
                self._store.write(data)
            finally:
                self._wg.done()

        go(write)

    def shutdown(self, ctx):
        """Wait for every event to be recorded; raise ctx.err() if ctx ends
        first (the events still in flight are then abandoned)."""
        finished = chan()

        def wait():
            self._wg.wait()
            finished.close()

        go(wait)
        i, _, _ = select(finished.recv_case(), ctx.done_case())
        if i == 1:
            raise ctx.err()


def handle_requests(tracker, n):
    for i in range(n):
        # ... serve request i, answer the client ...
        tracker.event(f"request {i}")


def main():
    bg = context.background()

    store = Store()
    tracker = Tracker(store)
    handle_requests(tracker, 10)
    with context.with_timeout(bg, 5) as (ctx, _):
        tracker.shutdown(ctx)
    print(f"shutdown: all finished, {len(store.events)} of 10 events recorded")

    store = Store(up=False)
    tracker = Tracker(store)
    handle_requests(tracker, 10)
    with context.with_timeout(bg, 0.1) as (ctx, _):
        try:
            tracker.shutdown(ctx)
        except context.DeadlineExceeded as e:
            print(f"shutdown: timed out ({e}), {len(store.events)} of 10 events recorded")

    store.recover()  # for the demo: the writes were only delayed
    with context.with_timeout(bg, 5) as (ctx, _):
        tracker.shutdown(ctx)
    print(f"after the store recovered: {len(store.events)} of 10 events recorded")


if __name__ == "__main__":
    main()
