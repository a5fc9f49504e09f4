"""pygoro.time: sleeping and timers (Go's package time).

    sleep(d)                        pause the goroutine (or thread) for d seconds
    after(d) -> RecvChan            a channel that receives once, after d
    tick(d) -> RecvChan             a channel that receives every d seconds
    Timer(d): .c, .stop(), .reset(d)
    Ticker(d): .c, .stop(), .reset(d)
    after_func(d, fn, *args) -> Timer   run fn(*args) in its own goroutine after d

Durations are float seconds. A timer channel delivers the time it fired as a
float on the clock of time.monotonic(), like the time.Time Go sends:

    import time
    from pygoro import select
    from pygoro.time import after, Ticker

    i, fired_at, _ = select(results.recv_case(), after(0.5).recv_case())
    if i == 1:
        print("timed out", time.monotonic() - fired_at, "s ago")

Timers are the runtime's (a heap served by the scheduler's threads): a
pending Timer, Ticker or after_func costs a few dozen bytes, never a thread,
and one that nobody can receive from any more is freed, as in Go 1.23.

Go 1.23 semantics: once Timer.stop(), Timer.reset(), Ticker.stop() or
Ticker.reset() has returned, no value from before the call is received.
Stop and reset are safe to call from any goroutine or thread at any time.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

from . import _core
from ._chan import RecvChan

__all__ = ["sleep", "after", "tick", "Timer", "Ticker", "after_func"]


def sleep(d: float) -> None:
    """Pause the calling goroutine for at least d seconds (Go's time.Sleep).

    d <= 0 returns at once. A goroutine parks, so its worker thread runs
    other goroutines meanwhile; a plain thread sleeps with the GIL released.
    On the main thread Ctrl-C interrupts the sleep with KeyboardInterrupt
    (other signal handlers run and the sleep goes on), as time.sleep does.
    """
    _core.sleep(d)


class Timer:
    """A single event after d seconds (Go's time.Timer, from time.NewTimer).

    Unless made by after_func, the timer sends the time it fired (a
    time.monotonic() float) on ``c``, a receive-only channel with room for
    that one value::

        t = Timer(1.0)
        i, v, _ = select(work.recv_case(), t.c.recv_case())
        if i == 0:
            t.stop()

    ``with Timer(d) as t:`` stops it on exit (Go's ``defer t.Stop()``).
    """

    __slots__ = ("_h", "c", "__weakref__")

    #: The channel the fire time is sent on; None for a Timer from after_func.
    c: RecvChan | None

    def __init__(self, d: float) -> None:
        self._h, chan = _core._timer(d, 0.0)
        self.c = RecvChan(chan)

    def stop(self) -> bool:
        """Stop the timer. True if this call stopped it, False if it had
        already fired (and its value was received) or been stopped.

        As in Go 1.23, a value that fired but was never received counts as
        pending: stop() discards it and returns True, and no value from
        before the call can be received afterwards. For an after_func timer,
        False means fn has already been started in its goroutine (stop does
        not wait for it)."""
        return self._h.stop()

    def reset(self, d: float) -> bool:
        """Re-arm the timer to fire after d seconds; True if it had been
        pending (as for stop). Any value from before the call is discarded,
        so the next value received is from the new arming (Go 1.23). Works
        on a fired or stopped Timer too; for after_func, fn runs again."""
        return self._h.reset(d)

    def __enter__(self) -> Timer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        kind = "after_func" if self.c is None else "channel"
        return f"<pygoro.time.Timer ({kind}) at {id(self):#x}>"


class Ticker:
    """Ticks every d seconds on ``c`` (Go's time.Ticker, from time.NewTicker).

    ``c`` holds at most one tick: a receiver that falls behind misses ticks
    rather than getting a backlog, as in Go. Call stop() when done, or use
    ``with Ticker(d) as t:``.

    Iterating over the Ticker itself receives ticks until it is stopped
    (from any goroutine), which ends the loop::

        with Ticker(0.1) as t:
            for now in t:
                if poll():
                    break

    Reuse of a stopped Ticker: reset(d) restarts it, as in Go. Receiving from
    a stopped Ticker's ``c`` blocks until somebody resets it, as in Go (on
    the main thread with nothing else alive that could, DeadlockError). But
    starting to iterate over a stopped Ticker, which could never yield
    anything, raises RuntimeError: that is almost always a Ticker used after
    ``with`` or stop() by mistake.
    """

    __slots__ = ("_h", "c", "_mu", "_stopped", "_stopc", "__weakref__")

    #: The channel the tick times (time.monotonic() floats) are sent on.
    c: RecvChan

    def __init__(self, d: float) -> None:
        _check_interval(d)
        self._h, chan = _core._timer(d, d)
        self.c = RecvChan(chan)
        self._mu = threading.Lock()  # never held across a blocking call
        self._stopped = False
        self._stopc = _core.Chan()  # closed by stop(): ends iterations

    def stop(self) -> None:
        """Turn the ticker off: no more ticks, and none from before the call
        is received afterwards (Go 1.23). Ends any iteration over it. Does
        not close ``c``: a receive on it blocks, as in Go."""
        with self._mu:
            self._h.stop()
            if not self._stopped:
                self._stopped = True
                self._stopc.close()

    def reset(self, d: float) -> None:
        """Stop the ticker and restart it with period d (> 0): the next tick
        comes d seconds from now. Allowed on a stopped Ticker."""
        _check_interval(d)
        with self._mu:
            self._h.reset(d, d)
            if self._stopped:
                self._stopped = False
                self._stopc = _core.Chan()

    def __iter__(self) -> Iterator[float]:
        with self._mu:
            if self._stopped:
                raise RuntimeError(
                    "iteration over a stopped Ticker would never yield a tick; "
                    "call reset(d) first (was it used after stop() or its with block?)"
                )
        return self._ticks()

    def _ticks(self) -> Iterator[float]:
        recv = self.c.recv_case()
        while True:
            with self._mu:
                if self._stopped:
                    return
                stopc = self._stopc
            i, v, _ = _core.select(recv, stopc.recv_case())
            if i == 1:
                return
            yield v

    def __enter__(self) -> Ticker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"<pygoro.time.Ticker {state} at {id(self):#x}>"


def _check_interval(d: float) -> None:
    # what the C layer's float conversion accepts: __float__ or __index__
    if not (hasattr(type(d), "__float__") or hasattr(type(d), "__index__")):
        raise TypeError(f"Ticker interval must be a number of seconds, not {type(d).__name__}")
    if not d > 0:  # also refuses NaN
        raise ValueError(f"non-positive interval for Ticker: {d!r}")


def after(d: float) -> RecvChan:
    """A channel that receives the time (a time.monotonic() float) once, d
    seconds from now (Go's time.After). Same as Timer(d).c; the timer is
    freed once the channel is no longer referenced, fired or not."""
    return Timer(d).c  # type: ignore[return-value]


def tick(d: float) -> RecvChan:
    """A channel that receives the time every d seconds (Go's time.Tick),
    for a ticker that is never stopped: it ticks as long as the channel is
    referenced. d must be > 0 (Go returns a nil channel; here ValueError)."""
    return Ticker(d).c


def after_func(d: float, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Timer:
    """Run fn(*args, **kwargs) in its own goroutine after d seconds (Go's
    time.AfterFunc). Returns a Timer whose stop() cancels the call if it has
    not started (True) and whose reset(d) schedules it again; its ``c`` is
    None. fn runs in a copy of the caller's contextvars, like go(). An
    exception from fn goes to pygoro.runtime.excepthook. The call happens
    whether or not the returned Timer is kept."""
    t = Timer.__new__(Timer)
    t._h = _core._after_func(d, fn, args, kwargs or None)
    t.c = None
    return t
