"""pygoro.sync's Pool and Semaphore and pygoro.sync.atomic from Python:
goroutines, plain threads and the main thread."""

from __future__ import annotations

import gc
import random
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
import weakref

import pytest

import pygoro
from pygoro import chan, context, go
from pygoro.sync import Pool
from pygoro.sync import Semaphore
from pygoro.sync.atomic import Int64, Value
from pygoro.testing import no_leaks

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def run_in_goroutine(fn, *args):
    out = chan(1)

    def wrapper():
        try:
            out.send((True, fn(*args)))
        except BaseException as e:  # returned to the test, not to excepthook
            out.send((False, e))

    go(wrapper)
    ok, v = out.recv()
    if not ok:
        raise v
    return v


def run_to_the_end(fn, *args):
    """run_in_goroutine, then wait for the goroutine to be gone: until it
    returns it still holds fn and args (as a thread holds its target), and a
    free-threaded build runs it on in parallel after it sent the result, so
    a test counting references must wait for it."""
    with no_leaks(timeout=30.0):
        return run_in_goroutine(fn, *args)


class Workers:
    """Start fns as goroutines or threads; join() re-raises the first error."""

    def __init__(self) -> None:
        self.done = chan(1024)
        self.n = 0
        self.threads: list[threading.Thread] = []

    def _run(self, fn, args):
        try:
            fn(*args)
            self.done.send(None)
        except BaseException as e:
            self.done.send(e)

    def go(self, fn, *args):
        self.n += 1
        go(self._run, fn, args)

    def thread(self, fn, *args):
        self.n += 1
        t = threading.Thread(target=self._run, args=(fn, args))
        t.start()
        self.threads.append(t)

    def join(self):
        errors = [self.done.recv() for _ in range(self.n)]
        for t in self.threads:
            t.join()
        for e in errors:
            if e is not None:
                raise e


def run_mixed(fn, ngor: int, nthreads: int) -> None:
    """fn(i) in ngor goroutines (i < ngor) and nthreads threads; wait for all."""
    w = Workers()
    for i in range(ngor):
        w.go(fn, i)
    for i in range(ngor, ngor + nthreads):
        w.thread(fn, i)
    w.join()


def wait_until(cond, what, timeout=30.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.001)


# ---- Pool ----


class Obj:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # taken by the holder: two holders would fail


def counting_new():
    made = []

    def new():
        o = Obj()
        made.append(o)
        return o

    return new, made


@pytest.mark.parametrize("where", ["goroutine", "main-thread"])
def test_pool_reuse_and_new_only_when_empty(where):
    new, made = counting_new()
    p = Pool(new=new)

    def body():
        x = p.get()
        assert len(made) == 1
        for _ in range(100):
            p.put(x)
            assert p.get() is x  # same P (or thread): its own object comes back
        assert len(made) == 1
        y = p.get()
        assert y is not x and len(made) == 2
        p.put(x)
        p.put(y)
        p.put(None)  # ignored, as Go's Put(nil)
        assert {id(p.get()), id(p.get())} == {id(x), id(y)}
        assert len(made) == 2
        assert p.get() is made[2]  # empty again: new() once more

    if where == "goroutine":
        run_in_goroutine(body)
    else:
        body()


def test_pool_without_new_and_bad_input():
    p = Pool()
    assert p.new is None
    assert p.get() is None
    p.put(None)
    assert p.get() is None
    p.put(0)
    assert p.get() == 0
    with pytest.raises(TypeError):
        Pool(new=5)
    with pytest.raises(TypeError):
        Pool(1, 2)
    assert Pool(new=list).new is list


def test_pool_new_exception_propagates():
    def boom():
        raise ValueError("no object today")

    with pytest.raises(ValueError, match="no object today"):
        Pool(new=boom).get()


def test_pool_owns_references():
    sentinel = object()
    base = sys.getrefcount(sentinel)
    p = Pool()
    for _ in range(10):
        p.put(sentinel)
    assert sys.getrefcount(sentinel) == base + 10
    assert p.get() is sentinel
    assert sys.getrefcount(sentinel) == base + 9
    assert p.clear() == 9
    assert sys.getrefcount(sentinel) == base
    for _ in range(5):
        run_to_the_end(p.put, sentinel)
    del p  # freeing the pool releases what it holds, private slots included
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        # free-threaded: the goroutines' references to p were dropped on
        # other threads, so its count is merged (and p freed) by this
        # thread a little later; a collection merges at once
        gc.collect()
    assert sys.getrefcount(sentinel) == base


def test_pool_cycle_through_pooled_object_is_collected():
    class Node:
        pass

    p = Pool()
    n = Node()
    n.pool = p  # pool -> n -> pool
    p.put(n)
    run_to_the_end(p.put, Node())
    w = weakref.ref(n)
    wp = weakref.ref(p)
    del n, p
    gc.collect()
    assert w() is None and wp() is None


def test_pool_destructor_may_use_the_pool():
    p = Pool()

    class Back:
        def __del__(self):
            p.put("reborn")

    p.put(Back())
    assert p.clear() == 1
    assert p.get() == "reborn"


def test_pool_concurrent_goroutines_and_threads_never_share_an_object():
    new, made = counting_new()
    p = Pool(new=new)
    uses = Int64()

    def worker(seed):
        rnd = random.Random(seed)
        for _ in range(2000):
            held = [p.get() for _ in range(rnd.randint(1, 3))]
            for o in held:
                if not o.lock.acquire(blocking=False):
                    raise AssertionError("object handed to two holders")
            uses.add(len(held))
            if rnd.random() < 0.2:
                pygoro.runtime.gosched()
            for o in held:
                o.lock.release()
                p.put(o)

    run_mixed(worker, 8, 3)
    assert uses.load() >= 11 * 2000
    assert len(made) <= 11 * 3  # reuse: never more than could be held at once
    # Every object made is back in the pool, once: clear() finds them all,
    # the ones in the Ps' private slots included.
    assert p.clear() == len(made)
    n = len(made)
    assert p.get() is made[-1] and len(made) == n + 1  # empty again: new() runs


def test_pool_clear_beside_get_and_put_takes_no_object_twice():
    # clear() running while goroutines and threads get and put: every
    # object put is then got once, cleared once or still pooled, never two
    # of these (a clear that emptied another P's private slot while its
    # owner read it, possible without a GIL, counted one twice in about
    # half the rounds on 3.13t before Pools there stopped using the slots).
    for _ in range(3):
        p = Pool()
        puts, gets, cleared = Int64(), Int64(), Int64()
        stop = threading.Event()

        def worker(seed):
            # put then get: the object goes through the P's private slot
            for i in range(60000):
                p.put(seed)
                puts.add(1)
                if p.get() is not None:
                    gets.add(1)

        def clearer():
            while not stop.is_set():
                cleared.add(p.clear())

        t = threading.Thread(target=clearer)
        t.start()
        try:
            run_mixed(worker, 2, 1)
        finally:
            stop.set()
            t.join()
        assert puts.load() == 3 * 60000
        assert gets.load() + cleared.load() + p.clear() == puts.load()


# ---- Semaphore ----


def test_semaphore_weights_and_try_acquire():
    s = Semaphore(5)
    assert s.size == 5 and s.held == 0
    s.acquire(n=3)
    assert not s.try_acquire(3)
    assert s.try_acquire(2)
    assert s.held == 5
    assert not s.try_acquire()
    s.release(4)
    assert s.held == 1
    with pytest.raises(RuntimeError, match="released more than held"):
        s.release(2)
    assert s.held == 1  # unchanged
    s.release()
    with s:
        assert s.held == 1
    assert s.held == 0
    assert "size=5" in repr(s)


def test_semaphore_misuse():
    with pytest.raises(ValueError):
        Semaphore(0)
    with pytest.raises(ValueError):
        Semaphore(-1)
    with pytest.raises(TypeError):
        Semaphore(1.5)
    with pytest.raises(TypeError):
        Semaphore()
    s = Semaphore(3)
    for bad in (0, -1, 4, 2**80, -(2**80)):
        with pytest.raises(ValueError):
            s.acquire(n=bad)
        with pytest.raises(ValueError):
            s.try_acquire(bad)
        with pytest.raises(ValueError):
            s.release(bad)
    with pytest.raises(TypeError):
        s.acquire(n="1")
    with pytest.raises(TypeError, match="must be a context"):
        s.acquire(object())  # not a context
    with pytest.raises(TypeError, match="pass the weight as n="):
        s.acquire(2)
    with pytest.raises(TypeError, match="at most 2 arguments"):
        s.acquire(None, 1, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        s.acquire(x=1)
    with pytest.raises(TypeError, match="multiple values for argument 'n'"):
        s.release(1, n=1)
    with pytest.raises(RuntimeError):
        s.release()
    assert s.held == 0 and s.waiters == 0


def test_semaphore_fifo_large_waiter_not_starved():
    s = Semaphore(10)
    assert s.try_acquire(10)
    order = []
    gate = chan()
    w = Workers()

    def big():
        s.acquire(n=10)
        order.append("big")
        s.release(10)

    def small(i):
        s.acquire()
        order.append(i)
        gate.recv()
        s.release()

    w.go(big)
    wait_until(lambda: s.waiters == 1, "the big waiter to queue")
    for i in range(15):
        (w.go if i % 2 else w.thread)(small, i)
        wait_until(lambda: s.waiters == i + 2, "a small waiter to queue")
    for i in range(10):
        time.sleep(0.002)
        assert order == [], f"served with {10 - i} units still held"
        assert not s.try_acquire()  # no barging past the queue
        s.release()
    wait_until(lambda: len(order) == 11, "the big waiter and 10 small ones")
    assert order[0] == "big"
    assert sorted(order[1:]) == list(range(10))  # the first 10 small ones, no later one
    time.sleep(0.01)
    assert len(order) == 11
    for _ in range(15):
        gate.send(None)
    w.join()
    assert sorted(order[11:]) == list(range(10, 15))
    assert s.held == 0 and s.waiters == 0


@pytest.mark.parametrize("where", ["goroutine", "thread", "main-thread"])
def test_semaphore_ctx_cancel_takes_nothing(where):
    s = Semaphore(2)
    assert s.try_acquire(2)
    ctx, cancel = context.with_cancel(context.background())
    result = chan(1)

    def waiter():
        try:
            s.acquire(ctx)
            result.send("acquired")
        except context.Canceled as e:
            result.send(e)

    if where == "main-thread":
        threading.Timer(0.05, cancel).start()
        waiter()
    else:
        w = Workers()
        (w.go if where == "goroutine" else w.thread)(waiter)
        wait_until(lambda: s.waiters == 1, "the waiter to queue")
        cancel()
        w.join()
    assert isinstance(result.recv(), context.Canceled)
    assert s.held == 2 and s.waiters == 0
    s.release(2)
    assert s.try_acquire(2)


def test_semaphore_deadline_from_main_thread():
    s = Semaphore(1)
    s.acquire()
    t0 = time.monotonic()
    with context.with_timeout(context.background(), 0.05) as (ctx, _):
        with pytest.raises(context.DeadlineExceeded):
            s.acquire(ctx)
    assert time.monotonic() - t0 >= 0.04
    assert s.held == 1 and s.waiters == 0
    s.release()


def test_semaphore_done_ctx_fails_even_with_free_units():
    s = Semaphore(3)
    ctx, cancel = context.with_cancel(context.background())
    cancel()
    with pytest.raises(context.Canceled):
        s.acquire(ctx)
    assert s.held == 0
    s.acquire(context.background(), n=3)  # never done: a plain acquire
    assert s.held == 3
    s.release(3)


class ChanCtx:
    """A minimal context: any object with done() (a channel) and err()."""

    def __init__(self, done) -> None:
        self._done = done

    def done(self):
        return self._done

    def err(self):
        return context.Canceled("custom context done")


def test_semaphore_custom_ctx_and_bad_done():
    s = Semaphore(1)
    s.acquire()
    c = chan(1)
    token = object()
    base = sys.getrefcount(token)
    c.send(token)  # a value on the done channel ends the wait, and is consumed
    with pytest.raises(context.Canceled, match="custom context done"):
        s.acquire(ChanCtx(c))
    assert sys.getrefcount(token) == base and len(c) == 0
    threading.Timer(0.02, c.close).start()
    with pytest.raises(context.Canceled):
        s.acquire(ChanCtx(c.recv_only()))  # a RecvChan view, closed while we wait
    with pytest.raises(context.Canceled):
        s.acquire(ChanCtx(pygoro.time.after(0.02)))  # a timer's channel fires
    with pytest.raises(TypeError, match="expected a channel"):
        s.acquire(ChanCtx(5))
    assert s.held == 1 and s.waiters == 0
    s.release()


def test_semaphore_withdrawn_head_wakes_waiters_behind():
    """x/sync's fix: the big waiter at the head gives up, and the small one
    behind it, which fits, is served without another release."""
    s = Semaphore(10)
    assert s.try_acquire(5)
    ctx, cancel = context.with_cancel(context.background())
    out = chan(2)

    def big():
        try:
            s.acquire(ctx, n=10)
            out.send("big")
        except context.Canceled:
            out.send("big canceled")

    def small():
        s.acquire(n=1)
        out.send("small")

    go(big)
    wait_until(lambda: s.waiters == 1, "the big waiter")
    go(small)
    wait_until(lambda: s.waiters == 2, "the small waiter")
    assert s.held == 5
    cancel()
    assert {out.recv(), out.recv()} == {"big canceled", "small"}
    assert s.held == 6 and s.waiters == 0
    s.release(6)


def test_semaphore_stress_goroutines_threads_and_timeouts():
    size = 4
    s = Semaphore(size)
    inside = Int64()
    over = Int64()
    counts = {"ok": Int64(), "timeout": Int64(), "busy": Int64()}

    def worker(seed):
        rnd = random.Random(seed)
        for _ in range(300):
            n = rnd.randint(1, size)
            how = rnd.random()
            if how < 0.3:
                with context.with_timeout(context.background(), rnd.random() * 0.002) as (ctx, _):
                    try:
                        s.acquire(ctx, n)
                    except context.DeadlineExceeded:
                        counts["timeout"].add(1)
                        continue
            elif how < 0.5:
                if not s.try_acquire(n):
                    counts["busy"].add(1)
                    continue
            else:
                s.acquire(n=n)
            counts["ok"].add(1)
            if inside.add(n) > size:
                over.add(1)
            if rnd.random() < 0.3:
                pygoro.runtime.gosched()
            inside.add(-n)
            s.release(n)

    run_mixed(worker, 8, 2)
    assert over.load() == 0
    assert counts["ok"].load() > 0
    assert s.held == 0 and s.waiters == 0


def test_semaphore_blocks_threads_and_goroutines_until_released():
    s = Semaphore(1)
    s.acquire()
    got = Int64()

    def waiter():
        s.acquire()
        got.add(1)
        s.release()

    w = Workers()
    for _ in range(3):
        w.go(waiter)
        w.thread(waiter)
    wait_until(lambda: s.waiters == 6, "six waiters")
    assert got.load() == 0
    s.release()
    w.join()
    assert got.load() == 6 and s.held == 0


def run_script(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_semaphore_ctrl_c_on_main_thread_withdraws_the_wait():
    r = run_script(
        """
        import signal, threading, time
        import pygoro
        from pygoro import context
        from pygoro.sync import Semaphore
        s = Semaphore(2)
        s.acquire(n=2)
        main = threading.main_thread().ident
        def interrupt():
            while s.waiters == 0:
                time.sleep(0.001)
            signal.pthread_kill(main, signal.SIGINT)
        for how in ("plain", "ctx"):
            t = threading.Thread(target=interrupt)
            t.start()
            try:
                if how == "plain":
                    s.acquire()
                else:
                    s.acquire(context.with_cancel(context.background())[0])
                print("acquired?!")
            except KeyboardInterrupt:
                print("KeyboardInterrupt", how, s.held, s.waiters)
            t.join()
        s.release()
        s.acquire()
        print("held", s.held)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:3] == [
        "KeyboardInterrupt plain 2 0", "KeyboardInterrupt ctx 2 0", "held 2"], r.stdout


def test_semaphore_main_thread_keeps_its_place_across_handled_signals():
    """Signal handlers that return normally: the main thread's wait resumes
    in its old place, ahead of a thread that queued after it."""
    r = run_script(
        """
        import signal, threading, time
        from pygoro.sync._semaphore import Semaphore
        s = Semaphore(1)
        s.acquire()
        handled = [0]
        def on_sigint(signum, frame):
            handled[0] += 1
        signal.signal(signal.SIGINT, on_sigint)
        main = threading.main_thread().ident
        order = []
        def late():
            while s.waiters == 0:
                time.sleep(0.001)
            s.acquire()
            order.append("late")
            s.release()
        def interrupter():
            while s.waiters < 2:
                time.sleep(0.001)
            for _ in range(50):
                time.sleep(0.002)
                signal.pthread_kill(main, signal.SIGINT)
            while s.waiters < 2:   # main back in the queue after its handler
                time.sleep(0.001)
            s.release()
        threads = [threading.Thread(target=late), threading.Thread(target=interrupter)]
        for t in threads:
            t.start()
        s.acquire()
        order.append("main")
        s.release()
        for t in threads:
            t.join()
        print(order, handled[0] > 0, s.held, s.waiters)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "['main', 'late'] True 0 0", r.stdout


def test_semaphore_deadlock_error_on_main_thread():
    r = run_script(
        """
        import pygoro
        from pygoro.sync import Semaphore
        s = Semaphore(1)
        s.acquire()
        try:
            s.acquire()
        except pygoro.DeadlockError as e:
            print("DeadlockError", s.held, s.waiters)
        """
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "DeadlockError 1 0"


# ---- atomic.Int64 ----


def test_int64_operations_and_wraparound():
    a = Int64()
    assert a.load() == 0
    assert a.add(5) == 5
    assert a.add(-7) == -2
    assert a.swap(10) == -2
    assert not a.compare_and_swap(9, 1)
    assert a.compare_and_swap(10, 1)
    a.store(INT64_MAX)
    assert a.add(1) == INT64_MIN  # wraps like Go's int64
    assert a.add(-1) == INT64_MAX
    assert Int64(-3).load() == -3
    assert repr(Int64(7)) == "Int64(7)"


def test_int64_bad_input():
    a = Int64(1)
    for bad in (2**63, INT64_MIN - 1):
        with pytest.raises(OverflowError):
            Int64(bad)
        with pytest.raises(OverflowError):
            a.store(bad)
        with pytest.raises(OverflowError):
            a.add(bad)
        with pytest.raises(OverflowError):
            a.compare_and_swap(1, bad)
    for bad in (1.5, "1", None):
        with pytest.raises(TypeError):
            a.add(bad)
    with pytest.raises(TypeError):
        a.compare_and_swap(1)
    assert a.load() == 1  # nothing changed


def test_int64_contention_goroutines_and_threads():
    n = 5000
    added = Int64()
    cased = Int64()

    def worker(_id):
        for i in range(n):
            added.add(1)
            while True:  # a CAS loop, as Go code would write it
                v = cased.load()
                if cased.compare_and_swap(v, v + 3):
                    break
            if i % 256 == 0:
                pygoro.runtime.gosched()

    run_mixed(worker, 8, 3)
    assert added.load() == 11 * n
    assert cased.load() == 3 * 11 * n


# ---- atomic.Value ----


def test_value_operations():
    v = Value()
    assert v.load() is None
    a, b = object(), object()
    v.store(a)
    assert v.load() is a
    assert v.swap(b) is a
    assert not v.compare_and_swap(a, None)
    assert v.compare_and_swap(b, None)  # None may be stored
    assert v.load() is None
    v.store(1)
    v.store("a string")  # the type may change (Go forbids it; see the docs)
    assert v.load() == "a string"
    assert Value(5).load() == 5
    assert repr(Value([1])) == "Value([1])"
    with pytest.raises(TypeError):
        v.compare_and_swap(1)


def test_value_reference_counts():
    s = object()
    base = sys.getrefcount(s)
    v = Value()
    v.store(s)
    assert sys.getrefcount(s) == base + 1
    x = v.load()
    assert sys.getrefcount(s) == base + 2
    del x
    assert v.swap(None) is s
    assert sys.getrefcount(s) == base
    assert not v.compare_and_swap(s, s)
    assert v.compare_and_swap(None, s)
    assert sys.getrefcount(s) == base + 1
    del v
    assert sys.getrefcount(s) == base


def test_value_cycle_is_collected():
    v = Value()
    holder = [v]
    v.store(holder)
    w = weakref.ref(v)
    del v, holder
    gc.collect()
    assert w() is None


def test_value_copy_on_write_config_under_readers():
    """One writer replaces an immutable config while goroutines and threads
    read it: every read sees one whole config, never a mix, and versions
    only move forward for each reader."""
    config = Value({"version": 0, "a": 0, "b": 0})
    stop = Int64()
    reads = Int64()

    def reader():
        last = -1
        while not stop.load():
            c = config.load()
            assert c["a"] + c["b"] == 0, c
            assert c["version"] >= last
            last = c["version"]
            reads.add(1)
            if last % 16 == 0:
                pygoro.runtime.gosched()

    def writer():
        for i in range(1, 3001):
            config.store({"version": i, "a": i, "b": -i})
            if i % 64 == 0:
                pygoro.runtime.gosched()
        stop.store(1)

    w = Workers()
    for _ in range(6):
        w.go(reader)
    for _ in range(2):
        w.thread(reader)
    w.go(writer)
    w.join()
    assert config.load()["version"] == 3000
    assert reads.load() > 0


def test_value_swap_hands_every_object_out_once():
    token = Value(("start",))
    out = chan(64)

    def worker(k):
        got = [token.swap((k, i)) for i in range(1000)]
        out.send(got)

    run_mixed(worker, 6, 2)
    seen = [x for _ in range(8) for x in out.recv()] + [token.load()]
    assert len(seen) == len(set(seen)) == 8 * 1000 + 1
    assert ("start",) in seen
