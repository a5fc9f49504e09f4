"""Hello, goroutines: a few goroutines send greetings over a channel.

Each greeter sends one message on an unbuffered channel, so its send waits
until main receives it; main knows how many to expect, so every goroutine
has finished by the time main prints - none is left behind.
"""

from pygoro import chan, go


def greet(name, out):
    out.send(f"hello, {name}")  # unbuffered: waits until main receives


def main():
    names = ["gopher", "pythonista", "world"]
    out = chan()
    for name in names:
        go(greet, name, out)
    for msg in sorted(out.recv() for _ in names):
        print(msg)


if __name__ == "__main__":
    main()
