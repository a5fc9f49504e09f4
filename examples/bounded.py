"""Bounded parallelism with errgroup: at most N workers at a time, and the
first error cancels the rest.

digest_all() computes the SHA-256 of every "file" with at most 3 goroutines
running at once (Group.set_limit(3)): go() blocks while 3 are in flight.
Each worker records how many are in flight; the maximum never exceeds the
limit.

With errgroup.with_context, the first worker that raises cancels the
group's context: workers still waiting for their turn see it and give up,
and wait() raises that first exception.
"""

import hashlib
import threading

from pygoro import context, errgroup, select
from pygoro import time as gotime

LIMIT = 3


class InFlight:
    """Counts workers running right now and remembers the maximum."""

    def __init__(self):
        self._mu = threading.Lock()  # held for two assignments: never across a park
        self.now = 0
        self.max = 0

    def __enter__(self):
        with self._mu:
            self.now += 1
            self.max = max(self.max, self.now)

    def __exit__(self, *exc):
        with self._mu:
            self.now -= 1


def read_file(ctx, name, files):
    """Simulated I/O: 5 ms per file, abandoned if ctx is done."""
    i, _, _ = select(gotime.after(0.005).recv_case(), ctx.done_case())
    if i == 1:
        raise ctx.err()
    data = files[name]
    if data is None:
        raise OSError(f"{name}: unreadable")
    return data


def digest_all(parent, files):
    """{name: sha256 hex} of every file, with at most LIMIT reads at once."""
    g, ctx = errgroup.with_context(parent)
    g.set_limit(LIMIT)
    sums = {}
    inflight = InFlight()

    def digest(name):
        with inflight:
            data = read_file(ctx, name, files)
            sums[name] = hashlib.sha256(data).hexdigest()

    for name in files:
        g.go(digest, name)  # blocks while LIMIT digests are running
    try:
        g.wait()
    finally:
        print(f"  never more than {LIMIT} in flight:", 1 <= inflight.max <= LIMIT)
    return sums


def main():
    files = {f"file{i:02}.txt": f"contents of file {i}".encode() for i in range(20)}
    print("20 good files:")
    sums = digest_all(context.background(), files)
    combined = hashlib.sha256("".join(sums[n] for n in sorted(sums)).encode()).hexdigest()
    print(f"  {len(sums)} digests, combined {combined[:16]}")

    files["file07.txt"] = None
    print("file07.txt is unreadable:")
    try:
        digest_all(context.background(), files)
    except OSError as e:
        print("  wait() raised the first error:", repr(e))


if __name__ == "__main__":
    main()
