"""pygoro.errgroup: a group of goroutines working on one task, with the
first error (Go's golang.org/x/sync/errgroup).

    g, ctx = errgroup.with_context(parent)
    for url in urls:
        g.go(fetch, ctx, url)      # the first exception cancels ctx
    g.wait()                       # waits for all; raises that exception

    g = Group(); g.go(fn, *args); g.try_go(fn, *args) -> bool; g.set_limit(n)

An exception raised by a group goroutine belongs to the group: it never
reaches pygoro.runtime.excepthook. wait() re-raises the first one (with its
traceback, where it was raised in the goroutine); the others are kept in
errors(), where Go would drop them. Any BaseException counts, so a
KeyboardInterrupt or SystemExit raised in a goroutine comes out of wait() too.

``with Group() as g:`` (or ``with with_context(p)[0] as g``) waits on exit,
like asyncio.TaskGroup: it raises the first exception of the group, or, if
the block itself raised, cancels the group's context with that exception as
the cause, waits, and lets it propagate.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, Callable

from . import _core
from .context import CancelCauseFunc, Context, with_cancel_cause

__all__ = ["Group", "with_context"]


# The limit is a channel's capacity: pygoro.chan's largest.
_LIMIT_MAX = 1 << 28


def _check_callable(fn: Any) -> None:
    # refused before a slot of the limit is taken or anything is started
    if not callable(fn):
        raise TypeError(f"errgroup: go() needs a callable, not {type(fn).__name__}")


class Group:
    """A collection of goroutines working on subtasks of one task (Go's
    errgroup.Group). The zero value is ready to use: ``Group()`` has no
    limit and no context; see with_context for one that cancels on error.
    Safe to use from any goroutine or thread."""

    __slots__ = ("_mu", "_n", "_idle", "_sem", "_err", "_tb", "_errors", "_cancel")

    def __init__(self) -> None:
        # _mu guards _n, _idle, _err, _tb and _errors: held for a few
        # attribute updates and a non-blocking close, never across a wait.
        self._mu = threading.Lock()
        self._n = 0  # goroutines started and not yet finished
        self._idle: _core.Chan | None = None  # closed when _n drops to 0
        self._sem: _core.Chan | None = None  # one token per running goroutine
        self._err: BaseException | None = None
        self._tb: TracebackType | None = None
        self._errors: list[BaseException] = []
        self._cancel: CancelCauseFunc | None = None

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run fn(*args, **kwargs) in a new goroutine of the group.

        With a limit set, blocks until fewer than that many of the group's
        goroutines are running. The first exception fn raises in any
        goroutine of the group is what wait() raises, and cancels the
        context of with_context."""
        _check_callable(fn)
        sem = self._sem
        if sem is not None:
            sem.send(None)
        self._start(sem, fn, args, kwargs)

    def try_go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bool:
        """Like go(), but instead of blocking when the limit is reached,
        start nothing and return False (Go's TryGo)."""
        _check_callable(fn)
        sem = self._sem
        if sem is not None and _core.select(sem.send_case(None), default=True)[0] != 0:
            return False
        self._start(sem, fn, args, kwargs)
        return True

    def set_limit(self, n: int) -> None:
        """Let at most n goroutines of the group run at once; a negative n
        means no limit (the default). n == 0 lets none start: go() blocks
        and try_go() returns False. Changing the limit while goroutines of
        the group are running raises RuntimeError (Go panics)."""
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"errgroup limit must be an int, not {type(n).__name__}")
        if n > _LIMIT_MAX:
            raise ValueError(f"errgroup limit must be at most {_LIMIT_MAX} (negative: none), not {n}")
        if n < 0:
            self._sem = None
            return
        sem = self._sem
        if sem is not None and len(sem) != 0:
            raise RuntimeError(
                f"errgroup: modify limit while {len(sem)} goroutines in the group are still active"
            )
        self._sem = _core.Chan(n)

    def wait(self) -> None:
        """Block until every goroutine started by go()/try_go() has returned,
        then raise the first exception any of them raised (None raised:
        return). With with_context, the group's context is canceled when
        wait() returns, as in Go."""
        while True:
            with self._mu:
                if self._n == 0:
                    break
                if self._idle is None:
                    self._idle = _core.Chan()
                idle = self._idle
            idle.recv()  # returns when closed
        if self._cancel is not None:
            self._cancel(self._err)
        err = self._err
        if err is not None:
            raise err.with_traceback(self._tb)

    def errors(self) -> list[BaseException]:
        """Every exception the group's goroutines raised so far, first
        first (the first is the one wait() raises)."""
        with self._mu:
            return list(self._errors)

    def __enter__(self) -> Group:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.wait()
            return
        if self._cancel is not None:
            self._cancel(exc)
        try:
            self.wait()
        except BaseException:
            pass  # the block's own exception propagates; see errors()

    # ---- internals ----

    def _start(
        self, sem: _core.Chan | None, fn: Callable[..., Any], args: tuple, kwargs: dict
    ) -> None:
        with self._mu:
            self._n += 1
        try:
            _core.go(self._run, sem, fn, args, kwargs)
        except BaseException:
            if sem is not None:
                sem.recv()
            self._done()
            raise

    def _run(
        self, sem: _core.Chan | None, fn: Callable[..., Any], args: tuple, kwargs: dict
    ) -> None:
        try:
            fn(*args, **kwargs)
        except BaseException as e:  # the group owns it, not excepthook
            self._fail(e)
        finally:
            if sem is not None:
                sem.recv()
            self._done()

    def _fail(self, e: BaseException) -> None:
        with self._mu:
            first = self._err is None
            if first:
                self._err = e
                self._tb = e.__traceback__
            self._errors.append(e)
        if first and self._cancel is not None:
            self._cancel(e)

    def _done(self) -> None:
        with self._mu:
            self._n -= 1
            if self._n == 0 and self._idle is not None:
                self._idle.close()  # never blocks; wakes every wait()
                self._idle = None


def with_context(parent: Context) -> tuple[Group, Context]:
    """A new Group and a context derived from parent (Go's
    errgroup.WithContext). The context is canceled the first time a
    goroutine of the group raises, with that exception as its cause
    (context.cause(ctx)), or when wait() returns, whichever comes first."""
    ctx, cancel = with_cancel_cause(parent)
    g = Group()
    g._cancel = cancel
    return g, ctx
