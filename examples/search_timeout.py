"""An asynchronous call with a timeout, and the leak it can hide.

process() starts search() in a goroutine and waits at most 100 ms for its
result (context.with_timeout). search() takes 200 ms, so process() gives up
first. With an unbuffered result channel the search goroutine then blocks
forever in its send: nobody will ever receive. Giving the channel capacity
1 lets that one send complete without a receiver, and the goroutine ends.
"""

import time
from typing import NamedTuple

from pygoro import chan, context, go, runtime, select
from pygoro import time as gotime


class Result(NamedTuple):
    """search()'s two results travelling over one channel."""

    record: str | None
    err: Exception | None


def search(term):
    """Simulates a database query or an RPC: 200 ms, then a record."""
    gotime.sleep(0.2)
    return f"some value for {term!r}"


def process(term, cap):
    """Find a record for term, or raise if that takes more than 100 ms."""
    with context.with_timeout(context.background(), 0.1) as (ctx, cancel):
        ch = chan(cap)

        def run():
            try:
                res = Result(search(term), None)
            except Exception as e:
                res = Result(None, e)
            ch.send(res)  # cap 0: blocks until someone receives - maybe never

        go(run)
        i, res, _ = select(ctx.done_case(), ch.recv_case())
        if i == 0:
            raise RuntimeError(f"search canceled: {ctx.err()}")
        if res.err is not None:
            raise res.err
        print("Received:", res.record)


def goroutines_after(start, wait=1.0):
    """num_goroutine() once goroutines started since `start` have had `wait`
    seconds to finish (the search's 200 ms included)."""
    deadline = time.monotonic() + wait
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    return runtime.num_goroutine()


def main():
    for cap in (0, 1):
        print(f"== result channel capacity {cap}")
        before = runtime.num_goroutine()
        try:
            process("gophers", cap)
        except RuntimeError as e:
            print("process:", e)
        after = goroutines_after(before)
        print("Number of goroutines before:", before)
        print("Number of goroutines after :", after)
        print("Number of goroutines leaked:", after - before)


if __name__ == "__main__":
    main()
