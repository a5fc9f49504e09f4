"""pygoro.testing: catching goroutine leaks in tests (Go's goleak).

    with no_leaks(timeout=1.0):
        run_the_code_under_test()

fails with LeakError (an AssertionError) listing the stacks of goroutines
started inside the block that are still alive when it ends. The pytest plugin
(pygoro.pytest_plugin) does the same per test: ``@pytest.mark.no_leaks`` or
the ``no_goroutine_leaks`` fixture.
"""

from __future__ import annotations

import time as _time
from contextlib import contextmanager
from typing import Iterator

from . import runtime
from . import time as _gotime

__all__ = ["LeakError", "no_leaks", "leaked_goroutines"]

# How often the exit check looks again while goroutines wind down.
_POLL = 0.005


class LeakError(AssertionError):
    """Goroutines started inside a no_leaks block outlived it.

    ``goroutines`` holds their runtime.Goroutine records; the message lists
    their stacks (the same text as runtime.stack()).
    """

    def __init__(self, goroutines: list[runtime.Goroutine]) -> None:
        self.goroutines = goroutines
        n = len(goroutines)
        dump = "\n".join(g.format() for g in goroutines)
        super().__init__(f"{n} goroutine{'s' if n != 1 else ''} leaked:\n\n{dump}")


def leaked_goroutines(before: set[int], timeout: float = 1.0) -> list[runtime.Goroutine]:
    """Wait up to timeout seconds for every goroutine not in `before` (a set
    of ids) to finish, the caller excepted; return those still alive, with
    their stacks (an empty list when none leaked)."""
    deadline = _time.monotonic() + timeout
    while True:
        alive = runtime._other_ids() - before
        if not alive:
            return []
        if _time.monotonic() >= deadline:
            # read again, with frames: some may have finished meanwhile
            return [g for g in runtime.goroutines() if g.id in alive]
        # parks a goroutine, sleeps a thread: either way the others run
        _gotime.sleep(_POLL)


@contextmanager
def no_leaks(timeout: float = 1.0) -> Iterator[None]:
    """Fail if goroutines started inside the block are still alive at its end.

    Goroutines alive at entry are ignored (by id; ids are never reused). At
    exit, the goroutines started inside get up to `timeout` seconds to finish;
    those still alive then raise LeakError with their stacks. If the block
    itself raised, that exception propagates and no leak check is made (the
    leak is most likely a consequence of the failure).
    """
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"no_leaks(timeout=...) needs a number of seconds, not "
                        f"{type(timeout).__name__}")
    if not timeout >= 0:  # also rejects NaN
        raise ValueError(f"no_leaks(timeout=...) must be >= 0, not {timeout!r}")
    before = runtime._other_ids()
    yield
    leaked = leaked_goroutines(before, timeout)
    if leaked:
        raise LeakError(leaked)
