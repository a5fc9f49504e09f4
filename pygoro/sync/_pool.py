"""pygoro.sync.Pool: Go's sync.Pool, a cache of reusable objects.

    pool = Pool(new=bytearray)
    buf = pool.get()      # a pooled object, or new() when the pool is empty
    ...
    pool.put(buf)         # hand it back for reuse; put(None) does nothing

Each processor (P) keeps its own objects (a private slot and a stack), so
goroutines on different Ps rarely touch the same memory; a goroutine whose
P has nothing steals from another P, and plain threads share one stack.
Go's garbage collector empties pools from time to time; here the pool owns
what was put into it until get() returns it, clear() drops it, or the pool
itself is freed. Re-exported as pygoro.sync.Pool.
"""

from __future__ import annotations

from .. import _core

__all__ = ["Pool"]

#: Pool(new=None): get() -> object, put(x), clear() -> int, .new
Pool = _core.Pool
