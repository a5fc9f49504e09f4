"""pygoro.context: cancellation trees, deadlines, values, causes, after_func."""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
import weakref

import pytest

from pygoro import chan, context, go, select
from pygoro.context import (
    Canceled,
    Context,
    DeadlineExceeded,
    after_func,
    background,
    cause,
    todo,
    with_cancel,
    with_cancel_cause,
    with_deadline,
    with_timeout,
    with_timeout_cause,
    with_value,
    without_cancel,
)

SLACK = 1.0


def is_done(ctx: Context) -> bool:
    d = ctx.done()
    return d is not None and select(d.recv_case(), default=True)[0] == 0


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_background_and_todo_are_never_canceled():
    for ctx in (background(), todo()):
        assert ctx.done() is None and ctx.done_case() is None
        assert ctx.err() is None and ctx.deadline() is None
        assert ctx.value("k") is None and cause(ctx) is None
        assert isinstance(ctx, Context)
    assert background() is background() and background() is not todo()
    assert repr(background()) == "context.background()"
    # select treats the missing done channel as a disabled case
    assert select(background().done_case(), default=True)[0] == -1


def test_with_cancel_closes_done_and_sets_err():
    ctx, cancel = with_cancel(background())
    d = ctx.done()
    assert d is ctx.done()  # the same channel every time
    assert ctx.err() is None and not is_done(ctx)
    cancel()
    assert is_done(ctx)
    assert d.recv_ok() == (None, False)
    err = ctx.err()
    assert isinstance(err, Canceled) and str(err) == "context canceled"
    assert ctx.err() is not err  # a fresh instance: safe to raise
    cancel()  # idempotent
    assert isinstance(ctx.err(), Canceled)
    # done() asked for only after the cancel is closed too
    ctx2, cancel2 = with_cancel(background())
    cancel2()
    assert is_done(ctx2)


def test_cancel_wakes_every_waiter_goroutines_and_threads():
    ctx, cancel = with_cancel(background())
    woke = chan(20)
    for _ in range(10):
        go(lambda: (ctx.done().recv(), woke.send(type(ctx.err()))))
    threads = [
        threading.Thread(target=lambda: (ctx.done().recv(), woke.send(type(ctx.err()))))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    time.sleep(0.05)
    cancel()
    assert [woke.recv() for _ in range(13)] == [Canceled] * 13
    for t in threads:
        t.join()


def test_three_level_tree_cancellation():
    root, cancel_root = with_cancel(background())
    a, cancel_a = with_cancel(root)
    b, cancel_b = with_cancel(root)
    a1, cancel_a1 = with_cancel(a)
    a2 = with_value(a, "k", "v")  # a value context between levels
    a2x, cancel_a2x = with_cancel(a2)
    b1, cancel_b1 = with_timeout(b, 100)

    cancel_a1()  # a leaf: nothing else moves
    assert is_done(a1) and not any(map(is_done, (root, a, b, a2x, b1)))

    cancel_a()  # a subtree
    assert is_done(a) and is_done(a2) and is_done(a2x)
    assert not any(map(is_done, (root, b, b1)))

    cancel_root()  # everything left
    assert all(map(is_done, (root, a, b, a1, a2, a2x, b1)))
    assert isinstance(b1.err(), Canceled)  # canceled, not timed out
    for c in (cancel_b, cancel_b1, cancel_a2x, cancel_root):
        c()  # all idempotent


def test_parent_already_canceled_cancels_new_child_at_once():
    parent, cancel = with_cancel_cause(background())
    why = ValueError("gone")
    cancel(why)
    child, cancel_child = with_cancel(parent)
    assert is_done(child) and isinstance(child.err(), Canceled)
    assert cause(child) is why
    cancel_child()


def test_canceled_child_is_detached_from_its_parent():
    parent, cancel_parent = with_cancel(background())
    child, cancel_child = with_cancel(parent)
    ref = weakref.ref(child)
    cancel_child()
    del child, cancel_child
    gc.collect()
    assert ref() is None  # the parent no longer holds it
    cancel_parent()


def test_deep_chain_cancels_without_recursion():
    root, cancel = with_cancel(background())
    ctx = root
    for i in range(20_000):
        ctx, _ = with_cancel(ctx)
    ctx = with_value(ctx, "deep", 1)
    assert ctx.value("deep") == 1 and ctx.value("absent") is None
    cancel()
    assert is_done(ctx)


def test_with_timeout_expires_with_deadline_exceeded():
    t0 = time.monotonic()
    ctx, cancel = with_timeout(background(), 0.05)
    assert t0 + 0.05 <= ctx.deadline() <= time.monotonic() + 0.05
    ctx.done().recv()
    assert time.monotonic() - t0 >= 0.05 - 1e-3
    err = ctx.err()
    assert isinstance(err, DeadlineExceeded) and isinstance(err, TimeoutError)
    assert not isinstance(err, Canceled)
    assert str(err) == "context deadline exceeded"
    assert isinstance(cause(ctx), DeadlineExceeded)
    cancel()  # after expiry: no change
    assert isinstance(ctx.err(), DeadlineExceeded)


def test_with_deadline_in_the_past_is_done_at_once():
    ctx, cancel = with_deadline(background(), time.monotonic() - 1)
    assert is_done(ctx) and isinstance(ctx.err(), DeadlineExceeded)
    cancel()


def test_deadline_inheritance():
    now = time.monotonic()
    parent, cancel_parent = with_deadline(background(), now + 0.6)
    later, cancel_later = with_deadline(parent, now + 100)
    assert later.deadline() == parent.deadline() == now + 0.6  # earlier wins
    sooner, cancel_sooner = with_timeout(parent, 0.05)
    assert sooner.deadline() < parent.deadline()
    inner, cancel_inner = with_cancel(with_value(sooner, "k", 1))
    assert inner.deadline() == sooner.deadline()
    sooner.done().recv()
    assert isinstance(inner.err(), DeadlineExceeded) and not is_done(parent)
    later.done().recv()  # canceled by the parent's deadline
    assert isinstance(later.err(), DeadlineExceeded) and is_done(parent)
    assert time.monotonic() - now >= 0.6 - 1e-3
    for c in (cancel_parent, cancel_later, cancel_sooner, cancel_inner):
        c()


def test_cancel_before_deadline_stops_the_timer():
    ctx, cancel = with_timeout(background(), 3600)
    ref = weakref.ref(ctx)
    cancel()
    assert isinstance(ctx.err(), Canceled)
    del ctx, cancel
    gc.collect()
    assert ref() is None  # no pending timer holds it any more


def test_value_lookup_walks_up():
    class Key:  # Go's unexported key type idiom
        pass

    k = Key()
    root = with_value(background(), "user", "ann")
    ctx, cancel = with_cancel(root)
    ctx = with_value(ctx, k, 42)
    ctx = with_value(ctx, "user", "bob")  # shadows
    assert ctx.value("user") == "bob"
    assert ctx.value(k) == 42 and ctx.value(Key()) is None
    assert root.value("user") == "ann" and root.value(k) is None
    assert ctx.value(("a", 1)) is None
    assert with_value(ctx, ("a", 1), "t").value(("a", 1)) == "t"  # keys compare with ==
    with pytest.raises(TypeError):
        with_value(ctx, None, 1)
    with pytest.raises(TypeError):
        with_cancel(None)  # type: ignore[arg-type]
    cancel()
    assert ctx.value("user") == "bob"  # values survive cancellation
    assert isinstance(ctx.err(), Canceled) and is_done(ctx)


def test_contexts_are_immutable():
    ctx, cancel = with_cancel(background())
    for c in (ctx, with_value(ctx, "k", 1), background()):
        with pytest.raises(AttributeError):
            c.anything = 1  # type: ignore[attr-defined]
    cancel()


def test_cancel_cause():
    parent, cancel = with_cancel_cause(background())
    child, cancel_child = with_cancel(parent)
    assert cause(parent) is None and cause(child) is None
    why = ConnectionError("backend went away")
    cancel(why)
    assert isinstance(parent.err(), Canceled)  # err stays Canceled
    assert cause(parent) is why and cause(child) is why
    cancel(ValueError("later"))  # the first cause stays
    assert cause(parent) is why
    cancel_child()

    ctx, cancel2 = with_cancel_cause(background())
    cancel2()
    assert isinstance(cause(ctx), Canceled)
    with pytest.raises(TypeError):
        with_cancel_cause(background())[1]("not an exception")  # type: ignore[arg-type]


def test_timeout_cause():
    why = TimeoutError("the backend took too long")
    ctx, cancel = with_timeout_cause(background(), 0.02, why)
    ctx.done().recv()
    assert isinstance(ctx.err(), DeadlineExceeded) and cause(ctx) is why
    cancel()
    ctx, cancel = with_timeout_cause(background(), 10, why)
    cancel()
    assert isinstance(cause(ctx), Canceled)  # canceled before: no timeout cause


def test_after_func():
    ctx, cancel = with_cancel(background())
    ran = chan(10)
    stop = after_func(ctx, lambda: ran.send("ran"))
    stop2 = after_func(ctx, lambda: ran.send("stopped one"))
    assert stop2() is True and stop2() is False
    assert select(ran.recv_case(), timeout=0.05)[0] == -1
    cancel()
    assert ran.recv() == "ran"
    assert stop() is False  # already started
    assert select(ran.recv_case(), timeout=0.1)[0] == -1  # stop2's never runs

    # on a context that is already done: runs at once
    after_func(ctx, lambda: ran.send("at once"))
    assert ran.recv() == "at once"
    # on one that is never done: never runs, stop() still works
    stop3 = after_func(background(), lambda: ran.send("never"))
    assert stop3() is True
    # runs on deadline expiry too, in a goroutine
    from pygoro.runtime import goid

    tctx, tcancel = with_timeout(background(), 0.02)
    after_func(tctx, lambda: ran.send(goid()))
    assert ran.recv() is not None
    tcancel()


def test_after_func_stop_detaches():
    ctx, cancel = with_cancel(background())

    def fn():
        pass

    ref = weakref.ref(fn)
    stop = after_func(ctx, fn)
    del fn
    assert stop() is True
    del stop
    gc.collect()
    assert ref() is None  # ctx no longer holds the after_func context
    cancel()


def test_without_cancel():
    parent, cancel = with_cancel(with_value(background(), "k", "v"))
    parent2, _ = with_timeout(parent, 100)
    ctx = without_cancel(parent2)
    assert ctx.done() is None and ctx.err() is None and ctx.deadline() is None
    assert ctx.value("k") == "v"
    child, cancel_child = with_cancel(ctx)
    cancel()
    assert is_done(parent2) and not is_done(child)
    assert cause(ctx) is None and cause(child) is None
    cancel_child()
    assert isinstance(cause(child), Canceled)


def test_with_statement_form():
    parent, cancel_parent = with_cancel(background())
    with with_timeout(parent, 0.5) as (ctx, cancel):
        assert not is_done(ctx) and callable(cancel)
    assert isinstance(ctx.err(), Canceled)
    with with_cancel(parent) as pair:
        assert pair.ctx.err() is None and pair == (pair.ctx, pair.cancel)
    assert is_done(pair.ctx)
    with pytest.raises(KeyError):
        with with_cancel_cause(parent) as (ctx, cancel):
            raise KeyError("boom")
    assert isinstance(ctx.err(), Canceled) and isinstance(cause(ctx), KeyError)
    with with_cancel_cause(parent) as (ctx, cancel):
        pass
    assert isinstance(cause(ctx), Canceled)
    assert not is_done(parent)
    cancel_parent()


def test_foreign_parent_context():
    class MyCtx(Context):
        """Somebody else's cancelable context: not built on this module."""

        def __init__(self):
            self.c = chan()

        def done(self):
            return self.c.recv_only()

        def err(self):
            return Canceled("mine") if self.c.closed else None

    mine = MyCtx()
    child, cancel = with_cancel(mine)
    grandchild = with_value(child, "k", 1)
    assert not is_done(child)
    mine.c.close()
    grandchild.done().recv()
    assert isinstance(child.err(), Canceled)
    cancel()
    # an already-done foreign parent cancels at once
    child2, cancel2 = with_cancel(mine)
    assert is_done(child2)
    cancel2()


def test_concurrent_cancels_and_children_from_goroutines_and_threads():
    for _ in range(20):
        root, cancel_root = with_cancel(background())
        children = chan(1000)
        started = chan(100)

        def spawner():
            started.send(None)
            for _ in range(25):
                c, cancel = with_cancel(root)
                children.send((c, cancel))

        for _ in range(4):
            go(spawner)
        threads = [threading.Thread(target=spawner) for _ in range(2)]
        for t in threads:
            t.start()
        for _ in range(6):
            started.recv()
        cancellers = [threading.Thread(target=cancel_root) for _ in range(2)]
        for t in cancellers:
            t.start()
        go(cancel_root)
        for t in threads + cancellers:
            t.join()
        got = [children.recv() for _ in range(150)]
        # every child, made before or after the cancel, ends up canceled
        for c, cancel in got:
            c.done().recv()
            assert isinstance(c.err(), Canceled)


def test_million_cancel_cycles_do_not_grow_memory():
    # 1,000,000 with_cancel/cancel cycles under one long-lived parent: each
    # cancel must detach the child. ~4 s on a loaded 2-CPU machine.
    parent, cancel_parent = with_cancel(background())
    for _ in range(10_000):
        ctx, cancel = with_cancel(parent)
        cancel()
    gc.collect()
    base = rss()
    for i in range(1_000_000):
        ctx, cancel = with_cancel(parent)
        cancel()
    gc.collect()
    grown = rss() - base
    assert grown < 8 << 20, f"RSS grew {grown >> 20} MiB"
    assert parent._children == {}
    cancel_parent()


def test_cancel_cycles_with_done_channels_and_timers_leak_nothing():
    # the exact count, with tracemalloc: done() channels, deadline timers,
    # values and after_func contexts are all released
    parent, cancel_parent = with_cancel(background())

    def noop():
        pass

    def cycle():
        ctx, cancel = with_timeout(with_value(parent, "k", 1), 100)
        ctx.done()
        stop = after_func(ctx, noop)
        assert stop() is True
        cancel()

    for _ in range(2_000):
        cycle()
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(1_000):
            cycle()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(20_000):
            cycle()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 << 10, f"{grown} bytes over 20,000 cycles"
    before_rss = rss()
    for _ in range(50_000):
        cycle()
    gc.collect()
    assert rss() - before_rss < 8 << 20  # C side: timers and channels freed
    cancel_parent()


def test_module_exports():
    for name in (
        "background",
        "todo",
        "with_cancel",
        "with_timeout",
        "with_deadline",
        "with_value",
        "with_cancel_cause",
        "cause",
        "after_func",
        "without_cancel",
        "Canceled",
        "DeadlineExceeded",
    ):
        assert name in context.__all__ and hasattr(context, name)
    assert issubclass(Canceled, Exception) and issubclass(DeadlineExceeded, Exception)


def test_cancel_walk_rejects_what_is_not_a_cancelable_context():
    """The C walk behind cancel (_core._cancel_walk) raises on bad input
    instead of reading foreign objects as contexts, and a failed
    _cancel_walk_init leaves the working setup in place."""
    from pygoro import _core
    from pygoro.context import _closed

    with pytest.raises(TypeError, match="not a cancelable context"):
        _core._cancel_walk([object()], context.Canceled, None, _closed, [], [], [])
    with pytest.raises(TypeError):
        _core._cancel_walk([], context.Canceled, None, _closed, [], [])
    with pytest.raises(TypeError, match="lists"):
        _core._cancel_walk((), context.Canceled, None, _closed, [], [], [])
    with pytest.raises(AttributeError):
        _core._cancel_walk_init(int, int)
    ctx, cancel = context.with_cancel(context.background())
    done = ctx.done()
    cancel()
    assert done.recv_ok() == (None, False)
    assert isinstance(ctx.err(), context.Canceled)
