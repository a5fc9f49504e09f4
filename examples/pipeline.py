"""Pipelines, fan-out/fan-in, cancellation, and the drop pattern.

A pipeline is a chain of stages connected by channels; each stage is a
group of goroutines that receive from upstream, work, and send downstream.
The stage that sends on a channel is the one that closes it.

* gen -> sq -> sum: one goroutine per stage.
* fan-out: two sq workers read the same input channel; fan-in: merge()
  forwards both outputs into one channel and closes it once both are
  drained (a WaitGroup counts the forwarders).
* cancellation: the consumer stops after one value and closes `done`; every
  stage selects on done while sending, so all of them return.
* drop: a producer that must never block sends with select/default into a
  buffered channel and counts what it had to drop.
"""

import time

from pygoro import chan, go, runtime, select
from pygoro.sync import WaitGroup


def send(done, out, v):
    """Send v on out unless done is closed first; False means: stop."""
    i, _, _ = select(out.send_case(v), done.recv_case())
    return i == 0


def stage(done, inp, fn):
    """A goroutine sending fn(v) for every v of inp; it closes its output
    channel when inp is exhausted or done is closed."""
    out = chan()

    def run():
        try:
            for v in inp:
                if not send(done, out, fn(v)):
                    return
        finally:
            out.close()  # the sender closes

    go(run)
    return out.recv_only()


def gen(done, *nums):
    return stage(done, nums, lambda n: n)


def sq(done, inp):
    return stage(done, inp, lambda n: n * n)


def merge(done, *inputs):
    """Fan-in: every value of every input on one channel, closed after the
    last input is drained."""
    out = chan()
    wg = WaitGroup()

    def forward(inp):
        try:
            for v in inp:
                if not send(done, out, v):
                    return
        finally:
            wg.done()

    wg.add(len(inputs))
    for inp in inputs:
        go(forward, inp)

    def close_when_done():
        wg.wait()
        out.close()

    go(close_when_done)
    return out.recv_only()


def drop_producer(ch, items):
    """Send without ever blocking: drop what does not fit."""
    sent = dropped = 0
    for item in items:
        i, _, _ = select(ch.send_case(item), default=True)
        if i == 0:
            sent += 1
        else:
            dropped += 1
    return sent, dropped


def goroutines_after(start, wait=1.0):
    """num_goroutine() once goroutines started since `start` have had `wait`
    seconds to finish."""
    deadline = time.monotonic() + wait
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    return runtime.num_goroutine()


def main():
    start = runtime.num_goroutine()
    done = chan()  # closed by nobody: these two pipelines run to the end

    total = sum(sq(done, gen(done, *range(1, 11))))
    print("pipeline gen(1..10) -> sq -> sum:", total)

    src = gen(done, *range(1, 11))
    squares = sorted(merge(done, sq(done, src), sq(done, src)))
    print("fan-out to 2 sq workers, fan-in:", squares)

    stop = chan()
    out = merge(stop, sq(stop, gen(stop, *range(1, 1001))), sq(stop, gen(stop, *range(1, 1001))))
    first = out.recv()
    stop.close()  # every stage returns; nobody reads `out` any more
    print("cancellation: took", first, "of 2000 squares, then closed stop")
    print("goroutines left after the three pipelines:", goroutines_after(start) - start)

    ch = chan(5)  # the consumer is stuck: nothing drains ch meanwhile
    sent, dropped = drop_producer(ch, range(20))
    ch.close()
    print(f"drop: sent {sent}, dropped {dropped}; the consumer later gets {list(ch)}")


if __name__ == "__main__":
    main()
