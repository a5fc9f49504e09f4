"""pygoro.sync.Semaphore: a weighted semaphore (golang.org/x/sync/semaphore).

    sem = Semaphore(10)               # 10 units
    sem.acquire(ctx, n=3)             # block until 3 units are free, or
                                      # raise ctx.err() once ctx is done
    sem.release(3)
    if sem.try_acquire(): ...         # never blocks
    with sem: ...                     # one unit

Waiters are served in arrival order: a waiter that does not fit yet holds up
everyone behind it, so a request for many units is never starved by a stream
of small ones (try_acquire does not jump the queue either). An acquire whose
context ends while it waits holds nothing afterwards, and waiters behind it
that now fit are served at once. Errors: n outside 1..size raises
ValueError (such a request could never be served), releasing more than is
held raises RuntimeError and changes nothing. Re-exported as
pygoro.sync.Semaphore.
"""

from __future__ import annotations

from .. import _core

__all__ = ["Semaphore"]

#: Semaphore(n): acquire(ctx=None, n=1), try_acquire(n=1) -> bool,
#: release(n=1), with-statement, .size, .held, .waiters
Semaphore = _core.Semaphore
