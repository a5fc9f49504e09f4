"""Bad input and misuse of the public API: a clear exception, and the object
left as it was (each test uses the object again after the rejected call).

Then property-based tests (hypothesis): random operation sequences on a
channel compared with a pure-Python model of Go's channel semantics, and
durations, timeouts, capacities and gomaxprocs values drawn from the whole
range of floats and ints (NaN, infinities, negatives, huge values)."""

from __future__ import annotations

import collections
import math
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pygoro
from pygoro import ClosedChannelError, chan, context, errgroup, runtime, select
from pygoro import time as gotime

NOT_INTS = [1.5, "2", b"2", None, [], 2.0, math.nan, True]
NOT_DURATIONS = ["1", None, [], b"1", object()]
BAD_FLOATS = [math.nan, -math.nan]
HUGE_INT = 10**400  # beyond a float

bounded = settings(max_examples=60, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


def run_in_goroutine(fn, *args):
    """fn(*args) in a goroutine; returns its result or raises its exception."""
    out = chan(1)

    def body():
        try:
            out.send((True, fn(*args)))
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            out.send((False, e))

    pygoro.go(body)
    ok, v = out.recv()
    if not ok:
        raise v
    return v


# ---- chan ---------------------------------------------------------------------


@pytest.mark.parametrize("cap", [-1, -(1 << 70), 1 << 40, (1 << 28) + 1])
def test_chan_capacity_out_of_range(cap):
    with pytest.raises((ValueError, OverflowError), match="capacity|too large"):
        chan(cap)


@pytest.mark.parametrize("cap", NOT_INTS)
def test_chan_capacity_not_an_int(cap):
    with pytest.raises(TypeError, match="capacity must be an int"):
        chan(cap)


def test_chan_constructor_arity_and_keywords():
    with pytest.raises(TypeError):
        pygoro.Chan(1, 2)
    with pytest.raises(TypeError):
        pygoro.Chan(size=1)
    assert pygoro.Chan(cap=3).cap == 3


def test_chan_method_arity():
    c = chan(1)
    with pytest.raises(TypeError):
        c.send()
    with pytest.raises(TypeError):
        c.send(1, 2)
    with pytest.raises(TypeError):
        c.recv(1)
    with pytest.raises(TypeError):
        c.recv_case(1)
    with pytest.raises(TypeError):
        c.send_case()
    with pytest.raises(TypeError):
        c.close(True)
    with pytest.raises(AttributeError):
        c.cap = 5
    assert len(c) == 0 and c.cap == 1 and not c.closed
    c.send("still works")
    assert c.recv() == "still works"


def test_close_twice_and_send_after_close_leave_the_buffer_intact():
    c = chan(3)
    c.send(1)
    c.send(2)
    c.close()
    for _ in range(3):
        with pytest.raises(ClosedChannelError, match="close of closed channel"):
            c.close()
        with pytest.raises(ClosedChannelError, match="send on closed channel"):
            c.send(3)
        with pytest.raises(ClosedChannelError):
            select(c.send_case(4), default=True)
    assert len(c) == 2 and c.closed
    assert list(c) == [1, 2]
    assert c.recv_ok() == (None, False)


def test_send_case_value_not_consumed_by_a_failed_select():
    """A select refused for a bad argument sends nothing, and a send case's
    value is not lost: the same case still works afterwards."""
    c = chan(1)
    case = c.send_case("v")
    for bad in (1, "x", c, c.recv_only(), [case]):
        with pytest.raises(TypeError, match="must be ch.recv_case"):
            select(case, bad)
        assert len(c) == 0
    with pytest.raises(ValueError):
        select(case, timeout=-1)
    assert len(c) == 0
    assert select(case) == (0, None, True)
    assert c.recv() == "v"


def test_directional_views_refuse_the_wrong_direction():
    c = chan(2)
    s, r = c.send_only(), c.recv_only()
    for op in (r.close, lambda: r.send(1), lambda: r.send_case(1)):
        with pytest.raises(TypeError, match="receive-only"):
            op()
    for op in (s.recv, s.recv_ok, s.recv_case, lambda: iter(s)):
        with pytest.raises(TypeError, match="send-only"):
            op()
    assert not c.closed and len(c) == 0
    s.send(1)
    assert r.recv() == 1 and len(s) == 0 and s.cap == r.cap == 2
    with pytest.raises(TypeError, match="needs a Chan"):
        pygoro.SendChan(r)
    with pytest.raises(TypeError, match="needs a Chan"):
        pygoro.RecvChan(1)


def test_timer_channel_is_receive_only():
    t = gotime.Timer(3600)
    raw = t.c._chan  # the Chan under the RecvChan view
    with pytest.raises(TypeError, match="timer channel"):
        raw.send(1)
    with pytest.raises(TypeError, match="timer channel"):
        raw.close()
    with pytest.raises(TypeError, match="timer channel"):
        raw.send_case(1)
    assert t.stop() is True


# ---- select -------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [-1, -1e-9, -math.inf, math.inf, math.nan])
def test_select_refuses_bad_timeouts(timeout):
    c = chan(1)
    c.send(1)
    with pytest.raises(ValueError, match="timeout"):
        select(c.recv_case(), timeout=timeout)
    assert len(c) == 1  # nothing received


@pytest.mark.parametrize("timeout", [d for d in NOT_DURATIONS if d is not None] + [HUGE_INT])
def test_select_refuses_non_numeric_timeouts(timeout):
    c = chan(1)
    c.send(1)
    with pytest.raises((TypeError, OverflowError)):
        select(c.recv_case(), timeout=timeout)
    assert c.recv() == 1


def test_select_unknown_keyword():
    with pytest.raises(TypeError, match="unexpected keyword"):
        select(chan(1).recv_case(), defualt=True)


def test_select_timeout_beyond_int64_nanoseconds_waits_without_limit():
    """1e300 s used to be converted to int64 nanoseconds (undefined in C);
    it means "no limit": the select waits for the value sent after 50 ms,
    from a goroutine and from a thread."""
    for where in ("goroutine", "thread"):
        c = chan()
        threading.Timer(0.05, c.send, ("late",)).start()
        if where == "goroutine":
            got = run_in_goroutine(lambda: select(c.recv_case(), timeout=1e300))
        else:
            got = select(c.recv_case(), timeout=1e300)
        assert got == (0, "late", True)


def test_select_with_only_disabled_cases_and_a_timeout_returns():
    assert select(None, None, timeout=0.01) == (-1, None, False)
    assert select(default=True) == (-1, None, False)


# ---- go and runtime ------------------------------------------------------------


@pytest.mark.parametrize("fn", [1, "f", None, [print]])
def test_go_refuses_non_callables(fn):
    n = runtime.num_goroutine()
    with pytest.raises(TypeError, match="callable"):
        pygoro.go(fn)
    assert runtime.num_goroutine() == n


@pytest.mark.parametrize("n", [0, -1, 257, 1 << 31, 1 << 64])
def test_gomaxprocs_out_of_range_leaves_it_unchanged(n):
    before = runtime.gomaxprocs()
    with pytest.raises((ValueError, OverflowError)):
        runtime.gomaxprocs(n)
    assert runtime.gomaxprocs() == before


@pytest.mark.parametrize("n", NOT_INTS[:-1] + [True, False])
def test_gomaxprocs_not_an_int(n):
    before = runtime.gomaxprocs()
    if n is None:
        assert runtime.gomaxprocs(n) == before  # None only queries
        return
    with pytest.raises(TypeError):
        runtime.gomaxprocs(n)
    assert runtime.gomaxprocs() == before


@pytest.mark.parametrize("n", [0, -1, 1024, (1 << 16) - 1, (1 << 30) + 1, 1 << 40, 1 << 70])
def test_set_stack_size_absurd_leaves_it_unchanged(n):
    before = runtime.stack_size()
    with pytest.raises((ValueError, OverflowError)):
        runtime.set_stack_size(n)
    assert runtime.stack_size() == before
    assert run_in_goroutine(lambda: 42) == 42


@pytest.mark.parametrize("n", [1.5, "1", b"1", math.nan, True])
def test_set_stack_size_not_an_int(n):
    before = runtime.stack_size()
    with pytest.raises(TypeError):
        runtime.set_stack_size(n)
    assert runtime.stack_size() == before


def test_runtime_functions_take_no_arguments():
    for fn in (runtime.num_goroutine, runtime.num_cpu, runtime.gosched, runtime.goid):
        with pytest.raises(TypeError):
            fn(1)


@pytest.mark.parametrize("hook", ["raises", "not callable"])
def test_broken_excepthook_is_reported_and_the_runtime_goes_on(monkeypatch, hook):
    """An excepthook that raises, or is not callable, is reported through
    sys.unraisablehook (as threading does), and goroutines keep running."""
    reported = chan(1)
    monkeypatch.setattr(sys, "unraisablehook", lambda u: reported.send(u.exc_type))

    def bad_hook(args):
        raise ValueError("hook broke")

    monkeypatch.setattr(runtime, "excepthook", bad_hook if hook == "raises" else 42)
    pygoro.go(lambda: 1 / 0)
    assert reported.recv() is (ValueError if hook == "raises" else TypeError)
    assert run_in_goroutine(lambda: "alive") == "alive"


# ---- pygoro.time ----------------------------------------------------------------


@pytest.mark.parametrize("make", [gotime.sleep, gotime.after, gotime.Timer,
                                  lambda d: gotime.after_func(d, print)])
def test_durations_refuse_nan_and_non_numbers(make):
    for d in BAD_FLOATS:
        with pytest.raises(ValueError, match="NaN"):
            make(d)
    for d in NOT_DURATIONS:
        with pytest.raises(TypeError):
            make(d)
    with pytest.raises(OverflowError):
        make(HUGE_INT)


@pytest.mark.parametrize("d", [0, -1, -math.inf, math.nan])
def test_ticker_refuses_non_positive_intervals(d):
    with pytest.raises(ValueError, match="non-positive interval"):
        gotime.Ticker(d)
    with pytest.raises(ValueError, match="non-positive interval"):
        gotime.tick(d)


@pytest.mark.parametrize("d", NOT_DURATIONS)
def test_ticker_refuses_non_numbers_clearly(d):
    with pytest.raises(TypeError, match="interval must be a number"):
        gotime.Ticker(d)


def test_rejected_timer_reset_leaves_the_timer_pending():
    t = gotime.Timer(3600)
    for d in (math.nan, "1", None):
        with pytest.raises((ValueError, TypeError)):
            t.reset(d)
    assert t.stop() is True  # still pending until now
    assert t.stop() is False


def test_rejected_ticker_reset_leaves_it_ticking():
    t = gotime.Ticker(0.005)
    try:
        for d in (0, -1, math.nan, "1", None):
            with pytest.raises((ValueError, TypeError)):
                t.reset(d)
        assert isinstance(t.c.recv(), float)
    finally:
        t.stop()


def test_stopped_ticker_reuse():
    """Iterating a stopped Ticker raises (it could never yield); stop is
    idempotent; reset(d) brings it back to life, as in Go."""
    t = gotime.Ticker(0.005)
    t.stop()
    t.stop()
    with pytest.raises(RuntimeError, match="stopped Ticker"):
        iter(t)
    assert select(t.c.recv_case(), timeout=0.03) == (-1, None, False)
    t.reset(0.005)
    for n, _ in enumerate(t):
        if n == 2:
            t.stop()
    with pytest.raises(RuntimeError):
        iter(t)


def test_after_func_refuses_non_callables():
    for fn in (1, None, "f"):
        with pytest.raises(TypeError, match="callable"):
            gotime.after_func(0.01, fn)


# ---- pygoro.context -----------------------------------------------------------------


@pytest.mark.parametrize("parent", [None, 1, "ctx", object()])
def test_context_constructors_refuse_non_contexts(parent):
    for make in (context.with_cancel, context.with_cancel_cause, context.without_cancel,
                 lambda p: context.with_timeout(p, 1), lambda p: context.with_deadline(p, 1),
                 lambda p: context.with_value(p, "k", 1),
                 lambda p: context.after_func(p, print), errgroup.with_context):
        with pytest.raises(TypeError, match="(?i)context|parent"):
            make(parent)


@pytest.mark.parametrize("d", NOT_DURATIONS)
def test_context_timeouts_refuse_non_numbers_clearly(d):
    bg = context.background()
    with pytest.raises(TypeError, match="must be a number"):
        context.with_timeout(bg, d)
    with pytest.raises(TypeError, match="must be a number"):
        context.with_deadline(bg, d)


def test_context_timeouts_refuse_nan():
    bg = context.background()
    for make in (context.with_timeout, context.with_deadline):
        with pytest.raises(ValueError, match="NaN"):
            make(bg, math.nan)


def test_context_value_key_none_and_cause_type():
    bg = context.background()
    with pytest.raises(TypeError, match="key"):
        context.with_value(bg, None, 1)
    ctx, cancel = context.with_cancel_cause(bg)
    with pytest.raises(TypeError, match="cause"):
        cancel(1)
    assert ctx.err() is None  # the refused call canceled nothing
    cancel(KeyError("k"))
    assert isinstance(context.cause(ctx), KeyError)
    with pytest.raises(TypeError):
        context.cause(None)


def test_context_after_func_refuses_non_callables():
    ctx, cancel = context.with_cancel(context.background())
    with pytest.raises(TypeError, match="callable"):
        context.after_func(ctx, 1)
    cancel()


# ---- pygoro.errgroup ------------------------------------------------------------------


def test_errgroup_go_refuses_non_callables_up_front():
    g = errgroup.Group()
    g.set_limit(1)
    for fn in (1, None, "f"):
        with pytest.raises(TypeError, match="callable"):
            g.go(fn)
        with pytest.raises(TypeError, match="callable"):
            g.try_go(fn)
    # no slot of the limit was taken, nothing was started, nothing failed
    assert g.try_go(lambda: None) is True
    g.wait()
    assert g.errors() == []


@pytest.mark.parametrize("n", [1.5, "2", None, math.nan, True, 1 << 70])
def test_errgroup_set_limit_refuses_non_ints_and_keeps_the_limit(n):
    g = errgroup.Group()
    g.set_limit(1)
    with pytest.raises((TypeError, ValueError, OverflowError), match="limit"):
        g.set_limit(n)
    gate = chan()
    assert g.try_go(gate.recv) is True
    assert g.try_go(gate.recv) is False  # the limit of 1 still holds
    gate.close()
    g.wait()


# ---- property-based -----------------------------------------------------------------

OPS = st.sampled_from(["send", "try_send", "recv", "recv_ok", "try_recv", "select_both",
                       "select_timeout0", "close", "drain"])


class ChanModel:
    """Go's channel semantics for one goroutine acting alone."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.buf: collections.deque = collections.deque()
        self.closed = False

    def can_send(self) -> bool:
        return not self.closed and len(self.buf) < self.cap

    def can_recv(self) -> bool:
        return bool(self.buf) or self.closed

    def recv(self):
        return (self.buf.popleft(), True) if self.buf else (None, False)


def apply_ops(cap: int, ops: list[str]) -> None:
    """Run ops on a real channel and on the model; assert they agree."""
    c, m = chan(cap), ChanModel(cap)
    n = 0
    for op in ops:
        n += 1
        if op == "send" and (m.closed or m.can_send()):
            if m.closed:
                with pytest.raises(ClosedChannelError):
                    c.send(n)
            else:
                c.send(n)
                m.buf.append(n)
        elif op in ("send", "try_send"):
            if m.closed:
                with pytest.raises(ClosedChannelError):
                    select(c.send_case(n), default=True)
            elif m.can_send():
                assert select(c.send_case(n), default=True) == (0, None, True)
                m.buf.append(n)
            else:
                assert select(c.send_case(n), default=True) == (-1, None, False)
        elif op in ("recv", "recv_ok") and m.can_recv():
            want = m.recv()
            assert (c.recv_ok() if op == "recv_ok" else (c.recv(), want[1])) == want
        elif op in ("recv", "recv_ok", "try_recv", "select_timeout0"):
            kw = {"timeout": 0} if op == "select_timeout0" else {"default": True}
            if m.can_recv():
                v, ok = m.recv()
                assert select(c.recv_case(), **kw) == (0, v, ok)
            else:
                assert select(c.recv_case(), **kw) == (-1, None, False)
        elif op == "select_both":
            ready = [i for i, r in ((0, m.can_send() or m.closed), (1, m.can_recv())) if r]
            if m.closed:
                # a send case on a closed channel panics when chosen
                try:
                    i, v, ok = select(c.send_case(n), c.recv_case(), default=True)
                except ClosedChannelError:
                    continue
                assert i == 1 and (v, ok) == m.recv()
                continue
            i, v, ok = select(c.send_case(n), c.recv_case(), default=True)
            if not ready:
                assert i == -1
            elif i == 0:
                assert 0 in ready and (v, ok) == (None, True)
                m.buf.append(n)
            else:
                assert i == 1 and 1 in ready and (v, ok) == m.recv()
        elif op == "close":
            if m.closed:
                with pytest.raises(ClosedChannelError):
                    c.close()
            else:
                c.close()
                m.closed = True
        elif op == "drain" and m.closed:
            assert list(c) == list(m.buf)
            m.buf.clear()
        assert len(c) == len(m.buf) and c.cap == cap and c.closed == m.closed


@bounded
@given(cap=st.integers(0, 4), ops=st.lists(OPS, max_size=40))
def test_channel_ops_match_the_go_model_on_the_main_thread(cap, ops):
    apply_ops(cap, ops)


@bounded
@given(cap=st.integers(0, 4), ops=st.lists(OPS, max_size=40))
def test_channel_ops_match_the_go_model_in_a_goroutine(cap, ops):
    run_in_goroutine(apply_ops, cap, ops)


@bounded
@given(cap=st.one_of(st.integers(), st.floats(allow_nan=True), st.none(), st.text(max_size=2)))
def test_any_capacity_is_accepted_or_refused_cleanly(cap):
    ok = isinstance(cap, int) and 0 <= cap <= 4096
    if isinstance(cap, int) and 4096 < cap <= 1 << 28:
        return  # valid but would allocate a big buffer
    if ok:
        c = chan(cap)
        assert c.cap == cap
        c.close()
    else:
        with pytest.raises((TypeError, ValueError, OverflowError)):
            chan(cap)


@bounded
@given(d=st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_timeout_for_select(d):
    c = chan(1)
    c.send("x")
    if math.isnan(d) or d < 0 or math.isinf(d):
        with pytest.raises(ValueError):
            select(c.recv_case(), timeout=d)
        assert len(c) == 1
    else:  # the ready case wins whatever the timeout
        assert select(c.recv_case(), timeout=d) == (0, "x", True)


@bounded
@given(d=st.floats(allow_nan=True, allow_infinity=True))
def test_any_float_duration_for_timers(d):
    if math.isnan(d):
        with pytest.raises(ValueError):
            gotime.Timer(d)
        with pytest.raises(ValueError):
            gotime.Ticker(d)
        return
    t = gotime.Timer(d)
    if d <= 1e-3:  # due now: fires (or has fired) promptly
        assert isinstance(t.c.recv(), float)
        assert t.stop() is False
    elif d >= 3600:
        assert t.stop() is True
    t.stop()
    if d > 0:
        tk = gotime.Ticker(d)
        tk.stop()
    else:
        with pytest.raises(ValueError):
            gotime.Ticker(d)


@bounded
@given(d=st.one_of(st.just(math.nan), st.floats(max_value=1e-3, allow_infinity=True)))
def test_any_short_or_negative_float_for_sleep(d):
    if math.isnan(d):
        with pytest.raises(ValueError):
            gotime.sleep(d)
    else:
        gotime.sleep(d)  # <= 1 ms, or at once for <= 0


@bounded
@given(n=st.one_of(st.integers(), st.floats(), st.booleans()))
def test_any_gomaxprocs_value(n):
    before = runtime.gomaxprocs()
    if isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 256:
        try:
            assert runtime.gomaxprocs(n) == before
            assert runtime.gomaxprocs() == n
        finally:
            runtime.gomaxprocs(before)
    else:
        with pytest.raises((TypeError, ValueError, OverflowError)):
            runtime.gomaxprocs(n)
        assert runtime.gomaxprocs() == before


@bounded
@given(d=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers()))
def test_any_context_timeout(d):
    bg = context.background()
    if isinstance(d, float) and math.isnan(d):
        with pytest.raises(ValueError):
            context.with_timeout(bg, d)
        return
    try:
        ctx, cancel = context.with_timeout(bg, d)
    except OverflowError:
        assert abs(d) > 1e300  # an int too large for a float
        return
    if d <= 0:
        assert isinstance(ctx.err(), context.DeadlineExceeded)
    elif d > 3600:
        assert ctx.err() is None
    cancel()
    assert ctx.err() is not None


# ---- pygoro.sync ---------------------------------------------------------------------

from pygoro import sync as gosync  # noqa: E402


def test_mutex_misuse_leaves_it_usable():
    m = gosync.Mutex()
    with pytest.raises(TypeError):
        gosync.Mutex(1)
    with pytest.raises(RuntimeError, match="unlock of unlocked"):
        m.unlock()
    with pytest.raises(TypeError):
        m.lock(1)
    assert not m.locked()
    with pytest.raises(KeyError):
        with m:
            raise KeyError  # the with block unlocks on the way out
    assert m.try_lock() is True and m.try_lock() is False
    m.unlock()
    with pytest.raises(RuntimeError):
        m.unlock()
    assert run_in_goroutine(lambda: (m.lock(), m.unlock(), "ok")[-1]) == "ok"


def test_rwmutex_misuse_leaves_its_state():
    rw = gosync.RWMutex()
    for op in (rw.runlock, rw.unlock, rw.rlocker().unlock):
        with pytest.raises(RuntimeError):
            op()
    rw.rlock()
    with pytest.raises(RuntimeError):
        rw.unlock()  # read-locked, not write-locked
    assert rw.try_lock() is False and rw.try_rlock() is True
    rw.runlock()
    rw.runlock()
    with pytest.raises(RuntimeError):
        rw.runlock()
    rw.lock()
    with pytest.raises(RuntimeError):
        rw.runlock()
    assert rw.try_rlock() is False
    rw.unlock()
    assert rw.try_lock() is True
    rw.unlock()


def test_rlock_unlock_by_a_non_owner():
    rl = gosync.RLock()
    with pytest.raises(RuntimeError, match="un-acquired"):
        rl.unlock()
    rl.lock()
    rl.lock()
    with pytest.raises(RuntimeError, match="un-acquired"):
        run_in_goroutine(rl.unlock)
    rl.unlock()
    assert rl.is_owned()
    rl.unlock()
    assert not rl.is_owned()
    assert run_in_goroutine(rl.try_lock) is True  # now owned by that goroutine
    assert rl.try_lock() is False


@pytest.mark.parametrize("delta", ["1", 1.5, None, math.nan, True, b"1"])
def test_waitgroup_add_not_an_int(delta):
    wg = gosync.WaitGroup()
    with pytest.raises(TypeError, match="delta must be an int"):
        wg.add(delta)
    wg.wait()  # counter still 0


def test_waitgroup_negative_and_overflowing_counter_leave_it_unchanged():
    wg = gosync.WaitGroup()
    wg.add(2)
    for bad in (-3, -(1 << 40)):
        with pytest.raises(RuntimeError, match="negative WaitGroup counter"):
            wg.add(bad)
    for bad in ((1 << 31) - 2, 1 << 31, 1 << 70):
        with pytest.raises(OverflowError, match="overflows"):
            wg.add(bad)
    assert wg._state()["counter"] == 2
    wg.done()
    wg.done()
    with pytest.raises(RuntimeError, match="negative"):
        wg.done()
    wg.wait()
    with pytest.raises(TypeError, match="callable"):
        wg.go(1)
    assert wg._state()["counter"] == 0
    wg.go(lambda: None)
    wg.wait()


def test_once_refuses_non_callables_without_being_used_up():
    o = gosync.Once()
    with pytest.raises(TypeError, match="callable"):
        o.do(1)
    assert not o.done()
    with pytest.raises(ZeroDivisionError):
        o.do(lambda: 1 / 0)
    assert o.done()  # as in Go: a function that panicked still counts as done
    ran = []
    o.do(lambda: ran.append(1))
    assert ran == []


@pytest.mark.parametrize("lock", [None, 1, object(), threading.Lock()])
def test_cond_needs_a_locker(lock):
    with pytest.raises(TypeError, match="Locker"):
        gosync.Cond(lock)


def test_cond_wait_without_its_lock_held():
    m = gosync.Mutex()
    c = gosync.Cond(m)
    with pytest.raises(RuntimeError, match="unlocked"):
        c.wait()
    assert not m.locked()
    c.signal()
    c.broadcast()
    # still works: a waiter is woken by a signal
    woke = chan(1)

    def waiter():
        with m:
            woke.send("waiting")
            c.wait()
        woke.send("woken")

    pygoro.go(waiter)
    assert woke.recv() == "waiting"
    with m:
        c.signal()
    assert woke.recv() == "woken"


@bounded
@given(ops=st.lists(st.one_of(st.integers(-3, 3).map(lambda n: ("add", n)),
                              st.sampled_from([("done",), ("wait",)])), max_size=40))
def test_waitgroup_ops_match_a_counter_model(ops):
    wg, counter = gosync.WaitGroup(), 0
    for op in ops:
        if op[0] == "add":
            if counter + op[1] < 0:
                with pytest.raises(RuntimeError):
                    wg.add(op[1])
            else:
                wg.add(op[1])
                counter += op[1]
        elif op[0] == "done":
            if counter == 0:
                with pytest.raises(RuntimeError):
                    wg.done()
            else:
                wg.done()
                counter -= 1
        elif counter == 0:
            wg.wait()  # would block forever otherwise
        assert wg._state()["counter"] == counter


@bounded
@given(ops=st.lists(st.sampled_from(["lock", "try_lock", "unlock", "rlock", "try_rlock",
                                     "runlock"]), max_size=40))
def test_rwmutex_ops_match_a_model(ops):
    rw, writer, readers = gosync.RWMutex(), False, 0
    for op in ops:
        if op == "lock" and not writer and readers == 0:
            rw.lock()
            writer = True
        elif op in ("lock", "try_lock"):
            ok = not writer and readers == 0
            assert rw.try_lock() is ok
            writer = writer or ok
        elif op == "rlock" and not writer:
            rw.rlock()
            readers += 1
        elif op in ("rlock", "try_rlock"):
            ok = not writer
            assert rw.try_rlock() is ok
            readers += ok
        elif op == "unlock":
            if writer:
                rw.unlock()
                writer = False
            else:
                with pytest.raises(RuntimeError):
                    rw.unlock()
        elif op == "runlock":
            if readers:
                rw.runlock()
                readers -= 1
            else:
                with pytest.raises(RuntimeError):
                    rw.runlock()


@pytest.mark.parametrize("n", [0, -1, 1.5, "2", None, math.nan, 1 << 64])
def test_semaphore_size_out_of_range_or_not_an_int(n):
    with pytest.raises((ValueError, TypeError, OverflowError)):
        gosync.Semaphore(n)


def test_semaphore_bad_weights_change_nothing():
    s = gosync.Semaphore(3)
    assert s.try_acquire(2)
    for n in (0, -1, 4, 1 << 70):
        for op in (s.try_acquire, s.release, lambda n: s.acquire(None, n)):
            with pytest.raises(ValueError, match="1..3"):
                op(n)
    for n in (1.5, "1", None):
        with pytest.raises(TypeError):
            s.try_acquire(n)
        with pytest.raises(TypeError):
            s.release(n)
    with pytest.raises(TypeError, match="context"):
        s.acquire(1)  # the weight passed where the context goes
    for bad in ("ctx", object(), [1]):
        with pytest.raises(TypeError, match="context"):
            s.acquire(bad)  # not a context: no done()
    assert (s.held, s.size, s.waiters) == (2, 3, 0)
    with pytest.raises(RuntimeError):
        s.release(3)  # more than is held
    assert s.held == 2
    ctx, cancel = context.with_cancel(context.background())
    cancel()
    with pytest.raises(context.Canceled):
        s.acquire(ctx, 2)  # does not fit, and ctx is done: holds nothing
    assert s.held == 2
    s.release(2)
    assert s.try_acquire(3)
    s.release(3)


def test_pool_new_must_be_callable_and_errors_of_new_propagate():
    for bad in (1, "x", []):
        with pytest.raises(TypeError, match="callable"):
            gosync.Pool(new=bad)
    p = gosync.Pool(new=lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        p.get()
    p.put("kept")
    assert p.get() == "kept"  # the pool still works after new() raised
    with pytest.raises(AttributeError):
        p.new = list
    with pytest.raises(TypeError):
        p.put()


@pytest.mark.parametrize("v", [1.5, "1", None, b"1", math.nan])
def test_atomic_int64_refuses_non_ints_and_keeps_its_value(v):
    from pygoro.sync import atomic

    i = atomic.Int64(5)
    for op in (i.store, i.add, i.swap, lambda x: i.compare_and_swap(5, x),
               lambda x: i.compare_and_swap(x, 6)):
        with pytest.raises(TypeError):
            op(v)
    assert i.load() == 5


@pytest.mark.parametrize("v", [1 << 63, -(1 << 63) - 1, 1 << 200])
def test_atomic_int64_refuses_values_beyond_int64(v):
    from pygoro.sync import atomic

    with pytest.raises(OverflowError, match="Int64"):
        atomic.Int64(v)
    i = atomic.Int64(7)
    for op in (i.store, i.add, i.swap):
        with pytest.raises(OverflowError):
            op(v)
    assert i.load() == 7


@bounded
@given(start=st.integers(-(1 << 63), (1 << 63) - 1),
       ops=st.lists(st.tuples(st.sampled_from(["store", "add", "swap", "cas"]),
                              st.integers(-(1 << 63), (1 << 63) - 1)), max_size=30))
def test_atomic_int64_matches_a_wrapping_int64_model(start, ops):
    from pygoro.sync import atomic

    def wrap(x: int) -> int:
        return (x + (1 << 63)) % (1 << 64) - (1 << 63)

    i, m = atomic.Int64(start), start
    for op, x in ops:
        if op == "store":
            i.store(x)
            m = x
        elif op == "add":
            m = wrap(m + x)
            assert i.add(x) == m
        elif op == "swap":
            assert i.swap(x) == m
            m = x
        else:
            assert i.compare_and_swap(m, x) is True
            assert i.compare_and_swap(wrap(x + 1), m) is False
            m = x
        assert i.load() == m
