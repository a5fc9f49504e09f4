"""pygoro.context: cancellation, deadlines and request-scoped values (Go's
package context).

A Context is passed down a call chain and into the goroutines a request
starts; whoever holds the cancel function can call the whole tree off::

    from pygoro import context, go, select

    def worker(ctx, jobs):
        while True:
            i, job, ok = select(ctx.done_case(), jobs.recv_case())
            if i == 0:
                return ctx.err()          # Canceled or DeadlineExceeded
            handle(job)

    with context.with_timeout(context.background(), 0.5) as (ctx, cancel):
        go(worker, ctx, jobs)
        ...                               # cancel() runs when the block ends

API (Go's names in snake_case):

    background(); todo()
    ctx, cancel = with_cancel(parent)
    ctx, cancel = with_timeout(parent, d)            d: float seconds
    ctx, cancel = with_deadline(parent, deadline)    deadline: time.monotonic() value
    ctx = with_value(parent, key, value)
    ctx, cancel = with_cancel_cause(parent); cancel(cause); cause(ctx)
    stop = after_func(ctx, fn)
    ctx = without_cancel(parent)

    ctx.done() -> RecvChan | None    closed when ctx is canceled; None for a
                                     context that never is (background, todo,
                                     without_cancel), which select() treats as
                                     a disabled case, like Go's nil channel
    ctx.err() -> None | Canceled | DeadlineExceeded
    ctx.deadline() -> float | None   the earliest deadline up the chain
    ctx.value(key)                   nearest with_value up the chain, else None

``ctx.done_case()`` is ``ctx.done().recv_case()``, or None (a disabled case)
when done() is None: Go's ``case <-ctx.Done():`` for any context.

Rules, as in Go: cancelling a context cancels all its descendants; calling a
cancel function detaches that context from its parent, so creating and
cancelling contexts under a long-lived parent does not accumulate anything;
cancel functions are idempotent and may be called from any goroutine or
thread; contexts are immutable and safe to share. Always call cancel (or use
``with``): until then the parent keeps a reference to the child.

Canceled and DeadlineExceeded are exception classes (DeadlineExceeded is also
a TimeoutError). err() returns a new instance on every call, so raising it
never piles tracebacks onto a shared object; test with isinstance().
Deadlines run on the runtime's timers (pygoro.time.after_func): no thread and
no goroutine waits for them.
"""

from __future__ import annotations

import time as _time
from typing import Any, Callable, NamedTuple

from . import _core
from . import time as _gotime
from ._chan import RecvChan
from ._core import Case

__all__ = [
    "Context",
    "Canceled",
    "DeadlineExceeded",
    "CancelPair",
    "CancelCausePair",
    "background",
    "todo",
    "with_cancel",
    "with_cancel_cause",
    "with_deadline",
    "with_deadline_cause",
    "with_timeout",
    "with_timeout_cause",
    "with_value",
    "without_cancel",
    "after_func",
    "cause",
]


class Canceled(Exception):
    """The context was canceled (Go's context.Canceled): its cancel function
    was called, or its parent's was."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("context canceled",)))


class DeadlineExceeded(TimeoutError):
    """The context's deadline passed (Go's context.DeadlineExceeded). A
    TimeoutError, so ``except TimeoutError`` catches it too."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(args or ("context deadline exceeded",)))


class Context:
    """The interface every context implements (Go's context.Context).

    The base methods describe a context that is never canceled and carries
    nothing. You may subclass it to wrap a context; the functions of this
    module accept any object with these four methods as a parent.
    """

    __slots__ = ()

    def deadline(self) -> float | None:
        """When this context will be canceled by a deadline (a
        time.monotonic() value), or None if no deadline is set."""
        return None

    def done(self) -> RecvChan | None:
        """A channel that is closed when this context is canceled; None if
        it can never be canceled. Successive calls return the same channel."""
        return None

    def err(self) -> BaseException | None:
        """None while done() is not closed; afterwards a Canceled or a
        DeadlineExceeded instance saying why."""
        return None

    def done_case(self) -> Case | None:
        """A select() case receiving from done(), or None (a case select
        ignores) for a context that is never canceled: Go's
        ``case <-ctx.Done():``."""
        d = self.done()
        return None if d is None else d.recv_case()

    def value(self, key: Any) -> Any:
        """The value stored for key by the nearest with_value up the chain,
        or None."""
        return None


CancelFunc = Callable[[], None]
CancelCauseFunc = Callable[..., None]


class CancelPair(NamedTuple):
    """What with_cancel/with_timeout/with_deadline return: ``(ctx, cancel)``.

    Unpack it like Go's two results, or use it in a ``with`` statement that
    calls cancel() on exit, Python's ``defer cancel()``::

        with with_timeout(parent, 0.5) as (ctx, cancel):
            ...
    """

    ctx: Context
    cancel: CancelFunc

    def __enter__(self) -> CancelPair:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.cancel()


class CancelCausePair(NamedTuple):
    """What with_cancel_cause returns: ``(ctx, cancel)`` where
    ``cancel(cause=None)`` records why. As a ``with`` statement it calls
    ``cancel(e)`` on exit with the exception e that ended the block, or
    ``cancel()`` when the block completed."""

    ctx: Context
    cancel: CancelCauseFunc

    def __enter__(self) -> CancelCausePair:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.cancel(exc)


# ---- the never-canceled roots -------------------------------------------------


class _EmptyCtx(Context):
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


_background = _EmptyCtx("context.background()")
_todo = _EmptyCtx("context.todo()")


def background() -> Context:
    """The root of every context tree: never canceled, no deadline, no
    values (Go's context.Background). Use it in main, tests and at the top
    of a request."""
    return _background


def todo() -> Context:
    """Like background(), marking a place where the right context is not
    yet known (Go's context.TODO)."""
    return _todo


# ---- cancelable contexts -----------------------------------------------------------

# A channel closed once and shared by every context canceled before anybody
# asked for its done() channel (Go's closedchan).
_closed_chan = _core.Chan()
_closed_chan.close()
_closed = RecvChan(_closed_chan)
_close_many = _core._close_many
_cancel_walk = _core._cancel_walk
_Mutex = _core.Mutex

# value(_CANCEL_KEY) finds the nearest cancelable context up the chain (Go's
# &cancelCtxKey); without_cancel hides it.
_CANCEL_KEY = object()


class _CancelCtx(Context):
    """Go's cancelCtx. _mu guards _err, _cause, _children and the creation
    of _done; it is only ever held for a few attribute updates, never
    across a blocking call. It is a pygoro.sync.Mutex: uncontended, lock()
    and unlock() are one atomic each with no argument parsing, half the
    cost of a threading.Lock (whose acquire on 3.11 also reads the clock),
    which made the per-child walk of a wide cancel twice as fast; contended,
    a goroutine parks instead of blocking its M. Lock order: parent before
    child is never needed - cancel() takes one context's lock at a time."""

    __slots__ = ("_parent", "_mu", "_done", "_err", "_cause", "_children", "__weakref__")

    def __init__(self, parent: Any) -> None:
        self._parent = parent
        self._mu = _Mutex()
        self._done: RecvChan | None = None
        self._err: type[BaseException] | None = None  # Canceled or DeadlineExceeded
        self._cause: BaseException | None = None  # None: the same as err
        self._children: dict[_CancelCtx, None] | None = None

    def deadline(self) -> float | None:
        return self._parent.deadline()

    def done(self) -> RecvChan:
        d = self._done
        if d is not None:
            return d
        with self._mu:
            if self._done is None:
                # Even if _err is set: _cancel may still be canceling the
                # subtree, and closes this channel (or sets _closed) after.
                self._done = RecvChan(_core.Chan())
            return self._done

    def err(self) -> BaseException | None:
        e = self._err
        return None if e is None else e()

    def value(self, key: Any) -> Any:
        if key is _CANCEL_KEY:
            return self
        return _value(self._parent, key)

    def _cancel(
        self, remove_from_parent: bool, err: type[BaseException], cause: BaseException | None
    ) -> None:
        """Cancel self and every descendant (Go's cancelCtx.cancel). The
        tree is walked with an explicit stack, one lock at a time: a deep
        chain of contexts cannot exhaust the recursion limit.

        Every context of the subtree gets its error first; the done channels
        are then closed descendants first. So whoever sees a context done
        (on a free-threaded build, possibly while this is still running on
        another core) finds its whole subtree canceled already. A leaf (no
        children) has no subtree, so its done channel is taken in the same
        critical section that sets its error."""
        todo: list[_CancelCtx] = [self]
        canceled: list[_CancelCtx] = []  # with children: their done() later
        chans: list[_core.Chan] = []
        hooked: list[_CancelCtx] = []  # canceled, with a _canceled hook to call
        # The walk, in C (csrc/python/context_walk.c; a third of a
        # 1000-child cancel in Python): pop a context, and under its lock,
        # if it is not canceled yet, set err and cause and take its
        # children; a leaf (no children) also gives up its done channel
        # there (to chans, or done() is marked closed). One lock at a time;
        # an explicit stack, so a deep chain cannot exhaust the recursion
        # limit. Contexts with children go to canceled, their children
        # onto todo.
        _cancel_walk(todo, err, cause, _closed, chans, canceled, hooked)
        # A context with children: once the whole subtree has its error,
        # under its lock take the done channel to close (or mark done() as
        # closed for a context nobody asked yet); the leaves' channels are
        # already in chans, ahead of every ancestor's. All are closed after,
        # in one call that readies every waiting goroutine as one batch. A
        # done() call in between gets the channel about to be closed, and
        # err() is already set: the same as while the walk runs.
        push = chans.append
        for c in reversed(canceled):  # descendants before their parents
            mu = c._mu
            mu.lock()
            try:
                d = c._done
                if d is None:
                    c._done = _closed
                else:
                    push(d._chan)
            finally:
                mu.unlock()
            if type(c) is not _CancelCtx:
                hooked.append(c)
        _close_many(chans)  # never blocks: it only readies waiters
        for c in hooked:
            c._canceled()
        if remove_from_parent:
            _remove_child(self._parent, self)

    def _canceled(self) -> None:
        """Called once, after the context was canceled (no lock held)."""

    def _name(self) -> str:
        return "with_cancel()"

    def __repr__(self) -> str:
        return f"{self._parent!r}.{self._name()}"


_core._cancel_walk_init(_CancelCtx, RecvChan)


class _TimerCtx(_CancelCtx):
    """Go's timerCtx: a _CancelCtx with a deadline and the runtime timer
    that cancels it then."""

    __slots__ = ("_deadline", "_timer")

    def __init__(self, parent: Any, deadline: float) -> None:
        super().__init__(parent)
        self._deadline = deadline
        self._timer: _gotime.Timer | None = None

    def deadline(self) -> float | None:
        return self._deadline

    def _canceled(self) -> None:
        with self._mu:
            t, self._timer = self._timer, None
        if t is not None:
            t.stop()

    def _name(self) -> str:
        return f"with_deadline({self._deadline:.6f} [in {self._deadline - _time.monotonic():.6f}s])"


class _AfterFuncCtx(_CancelCtx):
    """Go's afterFuncCtx: a child that, once canceled, starts fn in its own
    goroutine - unless stop() claimed it first."""

    __slots__ = ("_fn", "_claimed")

    def __init__(self, parent: Any, fn: Callable[[], Any]) -> None:
        super().__init__(parent)
        self._fn = fn
        self._claimed = False

    def _claim(self) -> bool:
        with self._mu:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def _canceled(self) -> None:
        if self._claim():
            _core.go(self._fn)

    def _name(self) -> str:
        return f"after_func({self._fn!r})"


_CANCEL_TYPES = (_CancelCtx, _TimerCtx, _AfterFuncCtx)


class _ValueCtx(Context):
    __slots__ = ("_parent", "_key", "_val")

    def __init__(self, parent: Any, key: Any, val: Any) -> None:
        self._parent = parent
        self._key = key
        self._val = val

    def deadline(self) -> float | None:
        return self._parent.deadline()

    def done(self) -> RecvChan | None:
        return self._parent.done()

    def err(self) -> BaseException | None:
        return self._parent.err()

    def value(self, key: Any) -> Any:
        return _value(self, key)

    def __repr__(self) -> str:
        return f"{self._parent!r}.with_value({self._key!r}, {self._val!r})"


class _WithoutCancelCtx(Context):
    __slots__ = ("_parent",)

    def __init__(self, parent: Any) -> None:
        self._parent = parent

    def value(self, key: Any) -> Any:
        return _value(self, key)

    def __repr__(self) -> str:
        return f"{self._parent!r}.without_cancel()"


def _value(c: Any, key: Any) -> Any:
    """Walk up the chain (Go's value(), iterative like it)."""
    while True:
        t = type(c)
        if t is _ValueCtx:
            if c._key is key or c._key == key:
                return c._val
            c = c._parent
        elif t in _CANCEL_TYPES:
            if key is _CANCEL_KEY:
                return c
            c = c._parent
        elif t is _WithoutCancelCtx:
            if key is _CANCEL_KEY:
                return None
            c = c._parent
        elif t is _EmptyCtx:
            return None
        else:
            return c.value(key)  # somebody else's Context


def _parent_cancel_ctx(parent: Any) -> tuple[_CancelCtx | None, bool]:
    """The _CancelCtx whose cancellation parent's cancellation is, or None;
    and whether parent can be canceled at all (Go's parentCancelCtx).

    Chains of this module's contexts are walked without asking for any
    done() channel (Go creates one per parent here; a channel per parent
    is memory the common case does not need)."""
    c = parent
    while True:
        t = type(c)
        if t is _ValueCtx:
            c = c._parent
        elif t in _CANCEL_TYPES:
            return c, True
        elif t is _EmptyCtx or t is _WithoutCancelCtx:
            return None, False
        else:
            break
    # Somebody else's Context: like Go, trust the _CancelCtx it reports only
    # if it hands out that context's own done channel.
    done = parent.done()
    if done is None:
        return None, False
    p = parent.value(_CANCEL_KEY)
    if type(p) in _CANCEL_TYPES and p.done() is done:
        return p, True
    return None, True


def _propagate_cancel(parent: Any, child: _CancelCtx) -> None:
    """Arrange for child to be canceled when parent is (Go's
    propagateCancel)."""
    p, cancelable = _parent_cancel_ctx(parent)
    if not cancelable:
        return
    if p is not None:
        with p._mu:
            err, why = p._err, p._cause
            if err is None:
                if p._children is None:
                    p._children = {}
                p._children[child] = None
                return
        child._cancel(False, err, why)  # parent already canceled
        return
    # A foreign parent: a goroutine waits for either side to finish.
    done = parent.done()

    def watch() -> None:
        i, _, _ = _core.select(done.recv_case(), child.done().recv_case())
        if i == 0:
            child._cancel(False, _err_type(parent), _foreign_cause(parent))

    if _core.select(done.recv_case(), default=True)[0] == 0:
        child._cancel(False, _err_type(parent), _foreign_cause(parent))
    else:
        _core.go(watch)


def _err_type(ctx: Any) -> type[BaseException]:
    e = ctx.err()
    return type(e) if isinstance(e, (Canceled, DeadlineExceeded)) else Canceled


def _foreign_cause(ctx: Any) -> BaseException | None:
    c = cause(ctx)
    return None if isinstance(c, (Canceled, DeadlineExceeded)) else c


def _remove_child(parent: Any, child: _CancelCtx) -> None:
    """Forget child in its parent's children (Go's removeChild)."""
    p, _ = _parent_cancel_ctx(parent)
    if p is None:
        return
    with p._mu:
        if p._children is not None:
            p._children.pop(child, None)


_CONTEXT_METHODS = ("deadline", "done", "err", "value")


def _check_parent(parent: Any, what: str = "parent") -> None:
    if parent is None:
        raise TypeError(f"cannot create context from None {what} (use background())")
    if not isinstance(parent, Context) and not all(
        callable(getattr(parent, m, None)) for m in _CONTEXT_METHODS
    ):
        raise TypeError(
            f"{what} must be a Context (an object with deadline, done, err and value "
            f"methods), not {type(parent).__name__}"
        )


def _check_seconds(x: Any, what: str) -> None:
    """Refuse what the arithmetic on deadlines would choke on, before any
    context is made or linked into its parent."""
    if isinstance(x, (str, bytes)) or not (
        hasattr(type(x), "__float__") or hasattr(type(x), "__index__")
    ):
        raise TypeError(f"{what} must be a number of seconds, not {type(x).__name__}")
    if x != x:
        raise ValueError(f"{what} must be a number of seconds, not NaN")


def _check_cause(why: Any) -> None:
    if why is not None and not isinstance(why, BaseException):
        raise TypeError(f"a cancel cause must be an exception or None, not {type(why).__name__}")


# ---- constructors ------------------------------------------------------------


def with_cancel(parent: Context) -> CancelPair:
    """A copy of parent with its own done channel, closed when cancel() is
    called or when parent's is, whichever happens first (Go's
    context.WithCancel). Call cancel as soon as the work is done: it frees
    the child's place in its parent."""
    _check_parent(parent)
    c = _CancelCtx(parent)
    _propagate_cancel(parent, c)

    def cancel() -> None:
        c._cancel(True, Canceled, None)

    return CancelPair(c, cancel)


def with_cancel_cause(parent: Context) -> CancelCausePair:
    """Like with_cancel, but cancel(cause=None) records why; cause(ctx)
    returns it (Go's context.WithCancelCause). err() is Canceled either way.
    """
    _check_parent(parent)
    c = _CancelCtx(parent)
    _propagate_cancel(parent, c)

    def cancel(why: BaseException | None = None) -> None:
        _check_cause(why)
        c._cancel(True, Canceled, why)

    return CancelCausePair(c, cancel)


def with_deadline_cause(
    parent: Context, deadline: float, why: BaseException | None = None
) -> CancelPair:
    """with_deadline, with the cause(ctx) to report when the deadline passes
    (Go's context.WithDeadlineCause)."""
    _check_parent(parent)
    _check_cause(why)
    _check_seconds(deadline, "deadline")
    cur = parent.deadline()
    if cur is not None and cur < deadline:
        return with_cancel(parent)  # the parent's deadline comes first anyway
    c = _TimerCtx(parent, deadline)
    _propagate_cancel(parent, c)

    def cancel() -> None:
        c._cancel(True, Canceled, None)

    dur = deadline - _time.monotonic()
    if dur <= 0:
        c._cancel(True, DeadlineExceeded, why)  # already past
        return CancelPair(c, cancel)
    with c._mu:
        if c._err is None:
            c._timer = _gotime.after_func(dur, c._cancel, True, DeadlineExceeded, why)
    return CancelPair(c, cancel)


def with_deadline(parent: Context, deadline: float) -> CancelPair:
    """A copy of parent canceled with DeadlineExceeded at deadline (a
    time.monotonic() value), or earlier by cancel() or by parent (Go's
    context.WithDeadline). If parent's deadline is earlier, it is the one
    that counts: ctx.deadline() is always the earliest up the chain."""
    return with_deadline_cause(parent, deadline, None)


def with_timeout(parent: Context, d: float) -> CancelPair:
    """with_deadline(parent, time.monotonic() + d) (Go's context.WithTimeout)::

    with with_timeout(parent, 0.5) as (ctx, cancel):
        result = fetch(ctx)
    """
    _check_parent(parent)
    _check_seconds(d, "timeout")
    return with_deadline_cause(parent, _time.monotonic() + d, None)


def with_timeout_cause(parent: Context, d: float, why: BaseException | None = None) -> CancelPair:
    """with_timeout, with the cause(ctx) to report when it expires (Go's
    context.WithTimeoutCause)."""
    _check_parent(parent)
    _check_seconds(d, "timeout")
    return with_deadline_cause(parent, _time.monotonic() + d, why)


def with_value(parent: Context, key: Any, val: Any) -> Context:
    """A copy of parent in which value(key) is val (Go's context.WithValue).
    Keys compare with ==; use a private object or class as the key so that
    packages do not collide. Meant for request-scoped data, not optional
    parameters."""
    _check_parent(parent)
    if key is None:
        raise TypeError("context key must not be None")
    return _ValueCtx(parent, key, val)


def without_cancel(parent: Context) -> Context:
    """A copy of parent that is not canceled when parent is: no deadline,
    no done channel, err() None, but parent's values (Go's
    context.WithoutCancel)."""
    _check_parent(parent)
    return _WithoutCancelCtx(parent)


def cause(ctx: Context) -> BaseException | None:
    """Why ctx was canceled (Go's context.Cause): the cause given to the
    cancel function of with_cancel_cause (or with_*_cause) that canceled it
    or an ancestor, else the same as ctx.err(); None while not canceled."""
    _check_parent(ctx, "ctx")
    p = ctx.value(_CANCEL_KEY)
    if type(p) in _CANCEL_TYPES:
        with p._mu:
            err, why = p._err, p._cause
        if err is None:
            return None
        return why if why is not None else err()
    return ctx.err()


def after_func(ctx: Context, fn: Callable[[], Any]) -> Callable[[], bool]:
    """Run fn() in its own goroutine once ctx is done - at once if it already
    is (Go's context.AfterFunc). Returns stop(): True if it kept fn from
    being started, False if fn had already been started or stop() was
    called before. stop() does not wait for a running fn."""
    _check_parent(ctx, "ctx")
    if not callable(fn):
        raise TypeError(f"after_func() needs a callable, not {type(fn).__name__}")
    a = _AfterFuncCtx(ctx, fn)
    _propagate_cancel(ctx, a)

    def stop() -> bool:
        stopped = a._claim()
        if stopped:
            a._cancel(True, Canceled, None)
        return stopped

    return stop
