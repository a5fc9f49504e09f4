"""First(): ask every replica, keep the first answer - without leaking.

Rob Pike's First() sends the query to all replicas and returns whichever
answer comes first. With an unbuffered result channel, only the winner's
send completes; every other replica's goroutine blocks in its send forever.
Three leak-free versions from the lecture notes:

* a result channel with room for every replica's answer;
* capacity 1 and a send that gives up when the slot is taken (select with
  default);
* an unbuffered channel plus a done channel closed when First() returns.

The replicas here are identical copies of one index, so the answer is the
same whichever replica wins; they answer after 10-50 ms.
"""

import time

from pygoro import chan, go, runtime, select
from pygoro import time as gotime


def replica(delay):
    """A search replica that answers after `delay` seconds."""

    def search(query):
        gotime.sleep(delay)
        return f"{len(query)} results for {query!r}"

    return search


REPLICAS = [replica(0.01), replica(0.03), replica(0.05)]


def first_leaky(query, *replicas):
    c = chan()
    for search in replicas:
        go(lambda search=search: c.send(search(query)))
    return c.recv()


def first_buffered(query, *replicas):
    c = chan(len(replicas))  # every send completes at once
    for search in replicas:
        go(lambda search=search: c.send(search(query)))
    return c.recv()


def first_drop(query, *replicas):
    c = chan(1)

    def search_replica(search):
        select(c.send_case(search(query)), default=True)  # slot taken: drop

    for search in replicas:
        go(search_replica, search)
    return c.recv()


def first_done(query, *replicas):
    c = chan()
    done = chan()

    def search_replica(search):
        select(c.send_case(search(query)), done.recv_case())

    for search in replicas:
        go(search_replica, search)
    try:
        return c.recv()
    finally:
        done.close()  # Go's defer close(done): the losers stop waiting


def goroutines_after(start, wait=1.0):
    """num_goroutine() once goroutines started since `start` have had `wait`
    seconds to finish (the slowest replica needs 50 ms)."""
    deadline = time.monotonic() + wait
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    return runtime.num_goroutine()


def main():
    for first in (first_leaky, first_buffered, first_drop, first_done):
        before = runtime.num_goroutine()
        result = first("golang", *REPLICAS)
        leaked = goroutines_after(before) - before
        print(f"{first.__name__:15} {result}; goroutines leaked: {leaked}")


if __name__ == "__main__":
    main()
