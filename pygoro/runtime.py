"""pygoro.runtime: the scheduler's knobs and introspection (Go's package runtime).

    gomaxprocs(n=None) -> int   previous value; n sets how many goroutines run
                                Python or C in parallel (worker threads with a P)
    num_goroutine() -> int      live goroutines
    num_cpu() -> int            usable CPUs
    gosched()                   yield to other goroutines (runtime.Gosched)
    goid() -> int | None        current goroutine's id; None on a plain thread
    set_stack_size(n) -> int    stack size of Python goroutines started from now on
    excepthook                  called with the exception escaping a goroutine
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from . import _core

__all__ = [
    "gomaxprocs",
    "num_goroutine",
    "num_cpu",
    "gosched",
    "goid",
    "set_stack_size",
    "stack_size",
    "excepthook",
    "ExceptHookArgs",
]

gosched = _core.gosched
num_goroutine = _core.num_goroutine
num_cpu = _core.num_cpu
goid = _core.goid


def gomaxprocs(n: int | None = None) -> int:
    """Return the previous GOMAXPROCS; set it when n is given (1..256).

    Like Go's runtime.GOMAXPROCS: the number of worker threads that may run
    goroutines at the same time. It defaults to the number of CPUs.
    """
    return _core.gomaxprocs(n)


def stack_size() -> int:
    """Stack size in bytes given to Python goroutines started from now on."""
    return _core.stack_size(None)


def set_stack_size(n: int) -> int:
    """Set the stack size (bytes, 64 KiB..1 GiB) of Python goroutines started
    from now on; returns the previous size. Deep recursion inside a goroutine
    raises RecursionError before the stack runs out: the budget scales with
    this size. Also settable with the environment variable PYGORO_PY_STACK_SIZE.
    """
    return _core.stack_size(n)


@dataclass(frozen=True)
class ExceptHookArgs:
    """What excepthook receives, like threading.ExceptHookArgs."""

    exc_type: type[BaseException]
    exc_value: BaseException
    exc_traceback: Any
    goid: int
    fn: Callable[..., Any] | None


def _default_excepthook(args: ExceptHookArgs) -> None:
    name = getattr(args.fn, "__qualname__", None) or repr(args.fn)
    print(f"Exception in goroutine {args.goid} ({name}):", file=sys.stderr)
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=sys.stderr)


#: Called with an ExceptHookArgs for every exception that escapes a goroutine
#: (SystemExit excepted, as with threads). The default prints the traceback to
#: stderr naming the goroutine; the program continues. Replace it to log or
#: collect such errors: ``pygoro.runtime.excepthook = my_hook``.
excepthook: Callable[[ExceptHookArgs], Any] = _default_excepthook


def _dispatch_exception(exc: BaseException, goid: int, fn: Any) -> None:
    hook = excepthook
    hook(ExceptHookArgs(type(exc), exc, exc.__traceback__, goid, fn))


_core._set_exception_handler(_dispatch_exception)
