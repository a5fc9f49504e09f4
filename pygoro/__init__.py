"""pygoro: Go's concurrency model for Python.

Goroutines scheduled M:N onto worker threads by a C runtime, channels and
select, timers, and Go's sync primitives - with no event loop and no
monkey-patching. Every blocking call works from a goroutine and from a plain
thread (the main thread included).

    from pygoro import go, chan, select
"""

from __future__ import annotations

import atexit
import os

from . import _core, runtime
from ._chan import RecvChan, SendChan
from . import time  # pygoro.time (Go's package time)
from . import context  # after time: deadlines use its timers
from . import errgroup  # after context
from . import sync  # pygoro.sync (Go's package sync)

__all__ = [
    "go",
    "chan",
    "select",
    "Chan",
    "SendChan",
    "RecvChan",
    "ClosedChannelError",
    "DeadlockError",
    "runtime",
    "time",
    "context",
    "errgroup",
    "sync",
]

__version__ = "0.1.0"

go = _core.go
Chan = _core.Chan
ClosedChannelError = _core.ClosedChannelError
DeadlockError = _core.DeadlockError
select = _core.select


def chan(cap: int = 0) -> Chan:
    """Make a channel of Python objects: unbuffered when cap is 0 (Go's
    make(chan T, cap)). See Chan for its methods."""
    return Chan(cap)


def _register_lifecycle() -> None:
    # Stop the scheduler from atexit: by the time C's Py_AtExit runs, CPython
    # is finalizing and a worker thread must no longer touch the interpreter.
    atexit.register(_core._shutdown)
    # The runtime's locks are taken and released around fork() by the
    # extension's pthread_atfork handlers (see csrc/python/goroutine.c);
    # the child rebuilds the runtime once CPython is ready again.
    os.register_at_fork(after_in_child=_core._after_fork_child)


_register_lifecycle()
