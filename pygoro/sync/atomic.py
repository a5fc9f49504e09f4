"""pygoro.sync.atomic: Go's sync/atomic types for values shared between
goroutines and threads without a lock.

    hits = Int64()                # starts at 0
    hits.add(1)                   # -> the new value
    hits.compare_and_swap(5, 0)   # -> True if it was 5

    config = Value()              # starts as None
    config.store(load_config())   # readers call config.load(): copy-on-write

Int64 wraps around at +-2**63 like Go's int64 (add(1) to the largest value
gives the smallest); values outside that range raise OverflowError.
Value.compare_and_swap compares by identity (`is`). Unlike Go's Value,
None may be stored and the type may change between stores. Every operation
is sequentially consistent, as in Go.
"""

from __future__ import annotations

from .. import _core

__all__ = ["Int64", "Value"]

#: Int64(v=0): load, store, add, swap, compare_and_swap
Int64 = _core.AtomicInt64
#: Value(v=None): load, store, swap, compare_and_swap
Value = _core.AtomicValue
