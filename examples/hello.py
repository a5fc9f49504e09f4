"""Hello, goroutines: a few goroutines write greetings; a WaitGroup waits for them.

Each greeter writes its own slot of the list, so no two goroutines touch the
same data. wg.wait() returns once every greeter has called wg.done(), and
what a goroutine did before done() is visible after wait() (Go's
happens-before): main reads the list without a lock, and no goroutine is
left behind. (wg.go(fn, *args) does the add/go/done in one call.)
"""

from pygoro import go
from pygoro.sync import WaitGroup


def greet(wg, greetings, i, name):
    try:
        greetings[i] = f"hello, {name}"
    finally:
        wg.done()  # Go's defer wg.Done()


def main():
    names = ["gopher", "pythonista", "world"]
    greetings = [None] * len(names)
    wg = WaitGroup()
    for i, name in enumerate(names):
        wg.add(1)  # before go(), so wait() cannot miss it
        go(greet, wg, greetings, i, name)
    wg.wait()
    for msg in greetings:
        print(msg)


if __name__ == "__main__":
    main()
