"""pygoro.errgroup: first error, cancellation, limits, ownership of errors."""

from __future__ import annotations

import threading
import time
import traceback

import pytest

import pygoro
from pygoro import chan, context, go, select
from pygoro.errgroup import Group, with_context
from pygoro.time import sleep


@pytest.fixture
def no_excepthook(monkeypatch):
    """Fail the test if any exception reaches pygoro.runtime.excepthook."""
    seen: list[BaseException] = []
    monkeypatch.setattr(pygoro.runtime, "excepthook", lambda args: seen.append(args.exc_value))
    yield seen
    assert seen == [], f"exceptions reached excepthook: {seen!r}"


def test_wait_returns_after_all_finish(no_excepthook):
    g = Group()
    done = []
    mu = threading.Lock()

    def work(i):
        sleep(0.01 * (i % 5))
        with mu:
            done.append(i)

    for i in range(200):
        g.go(work, i)
    g.wait()
    assert sorted(done) == list(range(200))
    g.wait()  # nothing running: returns at once
    Group().wait()


def test_first_exception_is_raised_with_its_traceback(no_excepthook):
    g = Group()

    def failing_worker(n):
        sleep(0.05 * n)
        raise ValueError(f"worker {n}")

    for n in (1, 3, 2):
        g.go(failing_worker, n)
    with pytest.raises(ValueError, match="worker 1") as info:
        g.wait()
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "failing_worker" in frames  # where it was raised, in the goroutine
    assert [str(e) for e in g.errors()] == ["worker 1", "worker 2", "worker 3"]
    with pytest.raises(ValueError, match="worker 1") as again:  # Go: Wait returns g.err again
        g.wait()
    assert len(traceback.extract_tb(again.value.__traceback__)) == len(frames)


def test_with_context_first_failure_cancels_the_others(no_excepthook):
    g, ctx = with_context(context.background())
    stopped = chan(10)

    def patient(i):
        i_, _, _ = select(ctx.done_case(), pygoro.time.after(10).recv_case())
        stopped.send((i, i_ == 0, type(ctx.err())))
        raise ctx.err()

    def failing():
        sleep(0.05)
        raise KeyError("first")

    t0 = time.monotonic()
    for i in range(3):
        g.go(patient, i)
    g.go(failing)
    with pytest.raises(KeyError, match="first"):
        g.wait()
    assert time.monotonic() - t0 < 5  # nobody waited the 10 s out
    assert sorted(stopped.recv() for _ in range(3)) == [
        (i, True, context.Canceled) for i in range(3)
    ]
    assert isinstance(ctx.err(), context.Canceled)
    err = context.cause(ctx)
    assert isinstance(err, KeyError) and err.args == ("first",)
    errors = g.errors()
    assert errors[0] is err and all(isinstance(e, context.Canceled) for e in errors[1:])


def test_with_context_is_canceled_when_wait_returns(no_excepthook):
    parent, cancel_parent = context.with_cancel(context.background())
    g, ctx = with_context(parent)
    g.go(lambda: None)
    assert ctx.err() is None
    g.wait()
    assert isinstance(ctx.err(), context.Canceled)
    assert isinstance(context.cause(ctx), context.Canceled)
    assert parent.err() is None
    cancel_parent()


def test_parent_cancellation_reaches_the_group_context(no_excepthook):
    parent, cancel = context.with_cancel(context.background())
    g, ctx = with_context(parent)
    g.go(lambda: ctx.done().recv())
    cancel()
    g.wait()  # the goroutine returned normally: no error


def test_set_limit_bounds_concurrency_and_go_blocks(no_excepthook):
    g = Group()
    g.set_limit(3)
    mu = threading.Lock()
    running = [0, 0]  # now, max

    def work():
        with mu:
            running[0] += 1
            running[1] = max(running[1], running[0])
        sleep(0.02)
        with mu:
            running[0] -= 1

    t0 = time.monotonic()
    for _ in range(15):
        g.go(work)  # blocks while 3 are running
    assert time.monotonic() - t0 >= 0.02 * (15 // 3 - 1) - 0.005
    g.wait()
    assert running[1] == 3


def test_try_go(no_excepthook):
    g = Group()
    g.set_limit(2)
    release = chan()
    assert g.try_go(release.recv) is True
    assert g.try_go(release.recv) is True
    assert g.try_go(release.recv) is False  # full: nothing started
    release.send(None)
    for _ in range(100):  # the finished goroutine gives its slot back
        if g.try_go(release.recv):
            break
        sleep(0.005)
    else:
        pytest.fail("try_go never found a free slot")
    release.send(None)
    release.send(None)
    g.wait()


def test_set_limit_rules(no_excepthook):
    g = Group()
    g.set_limit(1)
    release = chan()
    g.go(release.recv)
    with pytest.raises(RuntimeError, match="modify limit while 1 goroutines"):
        g.set_limit(5)
    release.send(None)
    g.wait()
    g.set_limit(5)  # allowed once idle
    g.set_limit(-1)  # negative: no limit
    for _ in range(50):
        assert g.try_go(sleep, 0.01) is True
    g.wait()
    g.set_limit(0)  # nothing may start
    assert g.try_go(lambda: None) is False


def test_exceptions_never_reach_excepthook_even_base_exceptions(no_excepthook):
    g = Group()

    def interrupt():
        raise KeyboardInterrupt("in a goroutine")

    def exit_():
        sleep(0.05)
        raise SystemExit(3)

    g.go(interrupt)
    g.go(exit_)
    with pytest.raises(KeyboardInterrupt):
        g.wait()
    assert [type(e) for e in g.errors()] == [KeyboardInterrupt, SystemExit]


def test_wait_from_threads_and_goroutines(no_excepthook):
    g = Group()
    release = chan()
    for _ in range(4):
        g.go(release.recv)
    results = chan(10)

    def waiter():
        try:
            g.wait()
            results.send("ok")
        except BaseException as e:
            results.send(e)

    go(waiter)
    go(waiter)
    th = threading.Thread(target=waiter)
    th.start()
    sleep(0.05)
    assert select(results.recv_case(), default=True)[0] == -1  # still waiting
    for _ in range(4):
        release.send(None)
    assert [results.recv() for _ in range(3)] == ["ok"] * 3
    th.join()


def test_group_as_context_manager(no_excepthook):
    out = chan(10)
    with Group() as g:
        for i in range(5):
            g.go(out.send, i)
    assert sorted(out.recv() for _ in range(5)) == list(range(5))

    with pytest.raises(ZeroDivisionError):
        with Group() as g:
            g.go(lambda: 1 / 0)

    # the block raising cancels the group's context, with it as the cause
    g, ctx = with_context(context.background())
    with pytest.raises(LookupError):
        with g:
            g.go(lambda: ctx.done().recv())
            raise LookupError("block failed")
    assert isinstance(context.cause(ctx), LookupError)


def test_many_goroutines_one_failure(no_excepthook):
    g, ctx = with_context(context.background())
    n = 1000

    def work(i):
        if i == 500:
            raise RuntimeError("one of a thousand")
        ctx.done().recv()

    for i in range(n):
        g.go(work, i)
    with pytest.raises(RuntimeError, match="one of a thousand"):
        g.wait()
    assert len(g.errors()) == 1
