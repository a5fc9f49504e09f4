"""A goroutine leak, and its fix.

leak() starts a goroutine that receives from a channel nobody ever sends to
and nobody ever closes: that goroutine is blocked forever. It costs its
stack and everything its frame references until the process exits, and no
error tells you. Before starting a goroutine, know when it will stop and
what could keep it from stopping.

The fix: whoever owns the channel closes it when there is nothing more to
send; the receiver's ``for v in ch`` (Go's ``range ch``) then ends.
pygoro.runtime.num_goroutine() shows the difference.
"""

import time

from pygoro import chan, go, runtime


def leak():
    """Buggy: the goroutine waits in ch.recv() forever."""
    ch = chan()

    def receiver():
        val = ch.recv()
        print("We received a value:", val)

    go(receiver)


def no_leak(values):
    """Fixed: the sender closes the channel when done, ending the loop."""
    ch = chan()

    def receiver():
        for val in ch:  # ends once ch is closed and drained
            print("We received a value:", val)

    go(receiver)
    for v in values:
        ch.send(v)  # unbuffered: returns once the receiver has it
    ch.close()


def goroutines_after(start, wait=1.0):
    """num_goroutine() once the goroutines started since `start` have had
    `wait` seconds to finish (returns early if all have)."""
    deadline = time.monotonic() + wait
    while runtime.num_goroutine() > start and time.monotonic() < deadline:
        time.sleep(0.01)
    return runtime.num_goroutine()


def report(name, fn, *args):
    before = runtime.num_goroutine()
    fn(*args)
    after = goroutines_after(before)
    print(f"{name}: goroutines before {before}, after {after}, leaked {after - before}")


def main():
    report("leak()", leak)
    report("no_leak()", no_leak, [1, 2])


if __name__ == "__main__":
    main()
