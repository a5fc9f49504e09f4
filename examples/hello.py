"""Hello, goroutines: a few goroutines send greetings over a channel.

A WaitGroup counts the senders; one more goroutine closes the channel once
they are all done, which ends the main thread's loop over it.
"""

from pygoro import chan, go
from pygoro.sync import WaitGroup


def greet(name, out, wg):
    try:
        out.send(f"hello, {name}")  # unbuffered: waits until main receives
    finally:
        wg.done()  # Go: defer wg.Done()


def close_when_done(wg, ch):
    wg.wait()
    ch.close()


def main():
    out = chan()
    wg = WaitGroup()
    for name in ["gopher", "pythonista", "world"]:
        wg.add(1)
        go(greet, name, out, wg)
    go(close_when_done, wg, out)
    for msg in sorted(out):  # iterating a channel ends once it is closed and drained
        print(msg)


if __name__ == "__main__":
    main()
