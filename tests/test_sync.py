"""pygoro.sync from Python: Mutex, RWMutex, RLock, WaitGroup, Once, Cond,
used by goroutines, plain threads and the main thread together.

Ctrl-C tests run in a subprocess (a KeyboardInterrupt escaping into pytest
would end the session); they send SIGINT to the main thread from a helper
thread while it is blocked, and check that the wait was withdrawn cleanly."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import textwrap
import threading
import time

import pytest

import pygoro
from pygoro import runtime, sync
from pygoro.sync import Cond, Locker, Mutex, Once, RLock, RWMutex, WaitGroup


def wait_until(pred, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


def run_script(code: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def procs2():
    old = runtime.gomaxprocs(2)
    yield
    runtime.gomaxprocs(old)


class Joiner:
    """Join goroutines and threads without the primitives under test."""

    def __init__(self):
        self.lock = threading.Lock()
        self.errors: list[BaseException] = []
        self.finished = 0
        self.started = 0

    def run(self, fn, *args):
        def body():
            try:
                fn(*args)
            except BaseException as e:  # reported by join(), not the excepthook
                with self.lock:
                    self.errors.append(e)
            finally:
                with self.lock:
                    self.finished += 1

        self.started += 1
        return body

    def go(self, fn, *args):
        pygoro.go(self.run(fn, *args))

    def thread(self, fn, *args):
        t = threading.Thread(target=self.run(fn, *args), daemon=True)
        t.start()

    def join(self, timeout=120.0):
        wait_until(lambda: self.finished == self.started, timeout, "workers")
        if self.errors:
            raise self.errors[0]


def yield_now():
    """Let others run: gosched in a goroutine, sleep(0) on a thread."""
    if runtime.goid() is not None:
        runtime.gosched()
    else:
        time.sleep(0)


# ---- Mutex -------------------------------------------------------------------


def test_mutex_basics_and_misuse():
    mu = Mutex()
    assert isinstance(mu, Locker)
    assert not mu.locked()
    mu.lock()
    assert mu.locked() and not mu.try_lock()
    mu.unlock()
    assert mu.try_lock()
    mu.unlock()
    with pytest.raises(RuntimeError, match="unlock of unlocked Mutex"):
        mu.unlock()
    assert mu._state() == {"locked": False, "woken": False, "starving": False, "waiters": 0,
                           "queued": 0}
    with mu:
        assert mu.locked()
    assert not mu.locked()
    with pytest.raises(TypeError):
        Mutex(1)


def test_mutex_not_owned_like_go():
    """Go's Mutex may be unlocked by another goroutine than the locker."""
    mu = Mutex()
    mu.lock()
    j = Joiner()
    j.go(mu.unlock)
    j.join()
    assert not mu.locked()


@pytest.mark.parametrize("n_gor,n_thr", [(8, 0), (8, 4)], ids=["goroutines", "mixed"])
def test_mutex_mutual_exclusion(procs2, n_gor, n_thr):
    """A read-yield-write increment loses updates without the lock; inside
    it, never, and nobody else is ever inside at the same time."""
    mu = Mutex()
    state = {"counter": 0, "inside": 0, "overlaps": 0}
    iters = 300

    def worker():
        for _ in range(iters):
            with mu:
                state["inside"] += 1
                if state["inside"] != 1:
                    state["overlaps"] += 1
                v = state["counter"]
                yield_now()
                state["counter"] = v + 1
                state["inside"] -= 1

    j = Joiner()
    for _ in range(n_gor):
        j.go(worker)
    for _ in range(n_thr):
        j.thread(worker)
    j.join()
    assert state["overlaps"] == 0
    assert state["counter"] == (n_gor + n_thr) * iters
    assert mu._state()["waiters"] == 0 and not mu.locked()


def test_unlocked_read_yield_write_does_lose_updates(procs2):
    """The control for the test above: the same loop without the lock.

    The workers start together, all parked until then: without a GIL
    holding them back while the main thread spawns the rest, each could run
    its 300 iterations before the next one exists (3.13t lost no update
    once in a full run)."""
    state = {"counter": 0}
    arrived, go_ahead = pygoro.chan(8), pygoro.chan()

    def worker():
        arrived.send(None)
        go_ahead.recv()
        for _ in range(300):
            v = state["counter"]
            yield_now()
            state["counter"] = v + 1

    j = Joiner()
    for _ in range(8):
        j.go(worker)
    for _ in range(8):
        arrived.recv()
    go_ahead.close()
    j.join()
    assert state["counter"] < 8 * 300


@pytest.mark.parametrize("waiter_kind", ["goroutine", "thread"])
def test_mutex_starvation_mode_bounds_a_hog(procs2, waiter_kind):
    """A goroutine re-locking in a tight loop cannot keep a waiter out: once
    the waiter has waited 1 ms its next failed attempt switches the Mutex to
    starvation mode and the hog's next unlock hands the lock over. Counted
    in hog acquisitions during each lock() of the waiter, not wall-clock.

    The hog holds the lock ~99% of the time (its loop inside the lock is
    where it gives up the GIL), and the waiter needs the GIL to run at all.
    Measured: 200-2,000 hog acquisitions per wait with starvation mode; with
    it disabled (threshold raised to 1000 s) 3,000-86,000, and often the
    waiter stayed out until the hog stopped at HOG_MAX."""
    HOG_MAX = 300_000
    mu = Mutex()
    st = {"hog": 0, "stop": False, "during": None}

    def hog():
        while not st["stop"] and st["hog"] < HOG_MAX:
            mu.lock()
            st["hog"] += 1
            for _ in range(300):
                pass
            mu.unlock()

    def waiter():
        samples = []
        for _ in range(10):
            before = st["hog"]
            mu.lock()
            samples.append(st["hog"] - before)
            mu.unlock()
            pygoro.time.sleep(0.002)
        st["during"] = samples
        st["stop"] = True

    j = Joiner()
    j.go(hog)
    wait_until(lambda: st["hog"] > 1000, what="the hog to run")
    (j.go if waiter_kind == "goroutine" else j.thread)(waiter)
    j.join()
    print(f"\nhog acquisitions during each wait: {st['during']}")
    assert st["during"] is not None
    assert max(st["during"]) < 30_000


def test_mutex_normal_mode_barges_and_starvation_mode_hands_off():
    """Normal mode: a woken waiter does not own the lock; a locker already
    running takes it first (barging: the lock stays on this CPU). Once that
    waiter has failed after waiting over 1 ms, starvation mode gives it the
    lock directly at the next unlock: a running locker can no longer take it.

    Deterministic here: the waiter needs the GIL, which this test holds
    between unlock() and try_lock()."""
    mu = Mutex()
    mu.lock()
    order = []

    def waiter():
        mu.lock()
        order.append("waiter")
        mu.unlock()

    j = Joiner()
    j.go(waiter)
    wait_until(lambda: mu._state()["waiters"] == 1, what="the waiter to park")
    time.sleep(0.002)  # it has now waited over 1 ms
    mu.unlock()  # wakes the waiter (normal mode)
    assert mu.try_lock(), "normal mode: the running locker barges in"
    s = mu._state()
    assert s["woken"] and not s["starving"]
    # let the woken waiter run: it finds the lock taken, has starved, and
    # switches the Mutex to starvation mode as it queues again (at the front)
    wait_until(lambda: mu._state()["starving"], what="starvation mode")
    mu.unlock()  # hands off: LOCKED stays clear, the lock is the waiter's
    assert not mu.try_lock(), "starvation mode: no barging"
    j.join()
    assert order == ["waiter"]
    assert mu._state() == {"locked": False, "woken": False, "starving": False, "waiters": 0,
                           "queued": 0}


def test_mutex_throughput_many_goroutines(procs2):
    """8 goroutines hammering one Mutex, each holding it across a gosched:
    everyone gets through and ownership changes hands (nobody is starved),
    but far less often than once per acquisition."""
    mu = Mutex()
    owners: list[int] = []
    iters = 500

    def worker(k):
        for _ in range(iters):
            with mu:
                owners.append(k)
                if len(owners) % 8 == 0:
                    runtime.gosched()

    j = Joiner()
    for k in range(8):
        j.go(worker, k)
    j.join()
    switches = sum(1 for a, b in zip(owners, owners[1:]) if a != b)
    print(f"\nownership changes: {switches} of {len(owners)} acquisitions")
    assert len(owners) == 8 * iters
    assert 7 <= switches < len(owners) // 4


# ---- RWMutex -----------------------------------------------------------------


def test_rwmutex_basics_and_misuse():
    rw = RWMutex()
    assert isinstance(rw, Locker) and isinstance(rw.rlocker(), Locker)
    with pytest.raises(RuntimeError, match="runlock"):
        rw.runlock()
    with pytest.raises(RuntimeError, match="unlock of unlocked RWMutex"):
        rw.unlock()
    rw.rlock()
    assert rw.try_rlock() and not rw.try_lock()
    with pytest.raises(RuntimeError):
        rw.unlock()  # read-locked, not write-locked: refused, state intact
    rw.runlock()
    rw.runlock()
    assert rw._state()["reader_count"] == 0
    with rw:
        assert not rw.try_rlock() and not rw.try_lock()
        with pytest.raises(RuntimeError):
            rw.runlock()
    with rw.rlocker():
        assert rw._state()["reader_count"] == 1
    assert rw._state() == {"reader_count": 0, "reader_wait": 0, "w_state": 0, "reader_sem": 0,
                           "writer_sem": 0}


def test_rwmutex_readers_overlap():
    """Every reader is inside at the same moment: none of them can leave
    before all have arrived."""
    rw = RWMutex()
    n = 6
    arrived = []
    lock = threading.Lock()

    def reader(k):
        with rw.rlocker():
            with lock:
                arrived.append(k)
            wait_until(lambda: len(arrived) == n, 30, "all readers inside")

    j = Joiner()
    for k in range(n - 2):
        j.go(reader, k)
    for k in range(n - 2, n):
        j.thread(reader, k)
    j.join()
    assert sorted(arrived) == list(range(n))


def test_rwmutex_writers_exclude(procs2):
    rw = RWMutex()
    st = {"readers": 0, "writers": 0, "bad": 0, "writes": 0}
    lock = threading.Lock()

    def reader():
        for _ in range(200):
            rw.rlock()
            with lock:
                st["readers"] += 1
                st["bad"] += st["writers"] != 0
            yield_now()
            with lock:
                st["readers"] -= 1
            rw.runlock()

    def writer():
        for _ in range(100):
            with rw:
                with lock:
                    st["writers"] += 1
                    st["bad"] += st["writers"] != 1 or st["readers"] != 0
                yield_now()
                with lock:
                    st["writers"] -= 1
                    st["writes"] += 1

    j = Joiner()
    for _ in range(4):
        j.go(reader)
    j.thread(reader)
    for _ in range(2):
        j.go(writer)
    j.thread(writer)
    j.join()
    assert st["bad"] == 0
    assert st["writes"] == 300


@pytest.mark.parametrize("reader_kind", ["goroutine", "thread"])
def test_rwmutex_pending_writer_blocks_new_readers(reader_kind):
    rw = RWMutex()
    order = []
    rw.rlock()  # the first reader: this test

    def writer():
        with rw:
            order.append("writer")

    def late_reader():
        with rw.rlocker():
            order.append("reader")

    j = Joiner()
    j.go(writer)
    wait_until(lambda: rw._state()["reader_count"] < 0, what="the writer to be pending")
    assert not rw.try_rlock()  # a waiting writer closes the door to readers
    (j.go if reader_kind == "goroutine" else j.thread)(late_reader)
    # the late reader is counted and waits behind the writer
    wait_until(lambda: rw._state()["reader_count"] == -(1 << 30) + 2, what="the reader to queue")
    assert order == []
    rw.runlock()
    j.join()
    assert order == ["writer", "reader"]
    assert rw._state()["reader_count"] == 0


# ---- WaitGroup ---------------------------------------------------------------


def test_waitgroup_waits_for_all(procs2):
    wg = WaitGroup()
    done = []
    lock = threading.Lock()

    def work(k):
        pygoro.time.sleep(0.001 * (k % 5))
        with lock:
            done.append(k)
        wg.done()

    n = 50
    wg.add(n)
    for k in range(n):
        pygoro.go(work, k)
    wg.wait()
    assert sorted(done) == list(range(n))
    # waiting from goroutines and threads too
    wg.add(1)
    seen = []
    j = Joiner()
    for _ in range(3):
        j.go(lambda: (wg.wait(), seen.append(1)))
        j.thread(lambda: (wg.wait(), seen.append(1)))
    wait_until(lambda: wg._state()["waiters"] == 6, what="six waiters")
    assert seen == []
    wg.done()
    j.join()
    assert len(seen) == 6
    assert wg._state() == {"counter": 0, "waiters": 0, "queued": 0}


def test_waitgroup_misuse_leaves_state_intact():
    wg = WaitGroup()
    with pytest.raises(RuntimeError, match="negative WaitGroup counter"):
        wg.done()
    assert wg._state()["counter"] == 0
    wg.add(2)
    with pytest.raises(RuntimeError, match="negative"):
        wg.add(-3)
    assert wg._state()["counter"] == 2
    with pytest.raises(OverflowError):
        wg.add(2**31)
    with pytest.raises(OverflowError):
        wg.add(10**30)
    with pytest.raises(RuntimeError, match="negative"):
        wg.add(-(10**30))
    assert wg._state()["counter"] == 2
    for bad in (1.5, "1", True, None):
        with pytest.raises(TypeError):
            wg.add(bad)
    wg.add(-2)
    wg.wait()


def test_waitgroup_reuse_before_wait_returned():
    """Go: "WaitGroup is reused before previous Wait has returned". The
    waiter is released by done() but needs the GIL to return; add(1) right
    after, with the GIL still held here, is the reuse."""
    wg = WaitGroup()
    wg.add(1)
    got = []

    def waiter():
        try:
            wg.wait()
            got.append("ok")
        except RuntimeError as e:
            got.append(str(e))

    pygoro.go(waiter)
    wait_until(lambda: wg._state()["waiters"] == 1, what="the waiter")
    wg.done()
    wg.add(1)
    wait_until(lambda: got, what="the waiter to return")
    assert "reused before previous wait has returned" in got[0]
    wg.done()
    wg.wait()


def test_waitgroup_go(monkeypatch):
    wg = WaitGroup()
    results = []
    reported = []
    monkeypatch.setattr(runtime, "excepthook", lambda args: reported.append(args))

    def ok(a, *, b):
        pygoro.time.sleep(0.01)
        results.append(a + b)

    def bad():
        raise ValueError("boom")

    for i in range(10):
        wg.go(ok, i, b=100)
    wg.go(bad)
    wg.wait()  # returns: done() ran for the failing one too
    assert sorted(results) == [100 + i for i in range(10)]
    wait_until(lambda: reported, what="the excepthook")
    assert isinstance(reported[0].exc_value, ValueError)
    assert wg._state()["counter"] == 0
    with pytest.raises(TypeError):
        wg.go(42)
    assert wg._state()["counter"] == 0


# ---- Once --------------------------------------------------------------------


def test_once_runs_fn_once_and_everyone_waits_for_it(procs2):
    once = Once()
    st = {"runs": 0, "finished": False, "early": 0}
    lock = threading.Lock()

    def fn():
        st["runs"] += 1
        pygoro.time.sleep(0.05)  # parks (goroutine) or sleeps (thread) mid-fn
        st["finished"] = True

    def caller():
        once.do(fn)
        with lock:
            st["early"] += not st["finished"]

    j = Joiner()
    for _ in range(12):
        j.go(caller)
    for _ in range(4):
        j.thread(caller)
    j.join()
    assert st["runs"] == 1
    assert st["early"] == 0
    assert once.done()


def test_once_fn_raising_is_done_like_go():
    once = Once()
    calls = []

    def fn():
        calls.append(1)
        raise KeyError("first")

    with pytest.raises(KeyError):
        once.do(fn)
    assert once.done()
    once.do(fn)  # not again
    assert calls == [1]
    with pytest.raises(TypeError):
        Once().do(3)


# ---- Cond --------------------------------------------------------------------


def _cond_waiters_in_order(c: Cond, n: int, woke: list, lock):
    """Start n goroutine waiters one after another (each parked before the
    next starts) and return their Joiner."""
    j = Joiner()

    def waiter(k):
        with c.L:
            c.wait()
            with lock:
                woke.append(k)

    for k in range(n):
        j.go(waiter, k)
        wait_until(lambda: c._waiters() == k + 1, what=f"waiter {k}")
    return j


def test_cond_signal_wakes_in_wait_order():
    c = Cond(Mutex())
    woke: list[int] = []
    lock = threading.Lock()
    j = _cond_waiters_in_order(c, 6, woke, lock)
    for k in range(6):
        c.signal()
        wait_until(lambda: len(woke) == k + 1, what=f"wakeup {k}")
    j.join()
    assert woke == list(range(6))
    c.signal()  # nobody waiting: nothing happens
    assert c._waiters() == 0


@pytest.mark.parametrize("kind", ["Mutex", "RWMutex", "rlocker", "RLock"])
def test_cond_broadcast_over_each_locker(kind):
    if kind == "rlocker":
        L = RWMutex().rlocker()
    else:
        L = getattr(sync, kind)()
    c = Cond(L)
    woke: list[int] = []
    lock = threading.Lock()
    j = _cond_waiters_in_order(c, 5, woke, lock)
    c.broadcast()
    j.join()
    assert sorted(woke) == list(range(5))


def test_cond_rlock_released_fully_and_restored():
    rl = RLock()
    c = Cond(rl)
    st = {}

    def waiter():
        with rl:
            with rl:
                c.wait()
                st["owned"] = rl.is_owned()
            st["still"] = rl.is_owned()

    j = Joiner()
    j.go(waiter)
    wait_until(lambda: c._waiters() == 1, what="the waiter")
    assert rl.try_lock()  # the waiter released both levels
    rl.unlock()
    c.signal()
    j.join()
    assert st == {"owned": True, "still": True}
    assert rl.try_lock()
    rl.unlock()


def test_cond_wait_without_lock_raises_and_keeps_signals():
    mu = Mutex()
    c = Cond(mu)
    with pytest.raises(RuntimeError, match="unlocked"):
        c.wait()
    assert c._waiters() == 0
    # the abandoned ticket swallows no signal meant for a real waiter
    woke: list[int] = []
    j = _cond_waiters_in_order(c, 1, woke, threading.Lock())
    c.signal()
    j.join()
    assert woke == [0]
    rl = RLock()
    with pytest.raises(RuntimeError, match="RLock not held"):
        Cond(rl).wait()
    with pytest.raises(TypeError):
        Cond(42)
    with pytest.raises(TypeError):
        Cond()


def test_cond_in_a_reference_cycle_is_collected():
    import gc
    import weakref

    class Owner:
        def __init__(self):
            self.mu = Mutex()
            self.cond = Cond(self)

        def lock(self):
            self.mu.lock()

        def unlock(self):
            self.mu.unlock()

    o = Owner()
    ref = weakref.ref(o.cond)
    del o
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("cls", [Mutex, RWMutex, RLock, WaitGroup, Once])
def test_weakrefs_die_with_the_object(cls):
    """Their shared tp_dealloc clears weak references, a subclass's too
    (held locked or not: a lock dropped while held is no error in Go)."""
    import weakref

    class Sub(cls):
        pass

    died = []
    for make in (cls, Sub):
        o = make()
        if isinstance(o, (Mutex, RWMutex, RLock)):
            o.lock()
        ref = weakref.ref(o, lambda r, name=make.__name__: died.append(name))
        del o
        assert ref() is None
    assert died == [cls.__name__, "Sub"]


def test_cond_over_generic_locker():
    class Tracking:
        def __init__(self):
            self.mu = Mutex()
            self.calls = []

        def lock(self):
            self.calls.append("lock")
            self.mu.lock()

        def unlock(self):
            self.calls.append("unlock")
            self.mu.unlock()

    L = Tracking()
    c = Cond(L)
    j = Joiner()

    def waiter():
        L.lock()
        c.wait()
        L.unlock()

    j.go(waiter)
    wait_until(lambda: c._waiters() == 1, what="the waiter")
    c.signal()
    j.join()
    assert L.calls == ["lock", "unlock", "lock", "unlock"]


# ---- RLock -------------------------------------------------------------------


def test_rlock_reentrant_and_owned():
    rl = RLock()
    rl.lock()
    rl.lock()
    assert rl.try_lock()
    assert rl.is_owned()
    errors = []

    def other():
        assert not rl.is_owned()
        assert not rl.try_lock()
        try:
            rl.unlock()
        except RuntimeError as e:
            errors.append(str(e))

    j = Joiner()
    j.go(other)
    j.thread(other)
    j.join()
    assert len(errors) == 2 and all("un-acquired" in e for e in errors)
    for _ in range(3):
        rl.unlock()
    assert not rl.is_owned()
    with pytest.raises(RuntimeError):
        rl.unlock()
    # now another goroutine can take it
    j = Joiner()
    j.go(lambda: (rl.lock(), rl.unlock()))
    j.join()
    # threading.RLock's spelling
    assert rl.acquire() and rl.acquire(blocking=False)
    rl.release()
    rl.release()
    assert not rl.is_owned()


# Free-threaded builds pin a goroutine to the thread where it first ran
# Python (DESIGN.md rule 11, csrc/sched/pin.c): there is no migration to
# survive or to break threading.RLock.
_NO_MIGRATION = "free-threaded build: goroutines are pinned to one OS thread (sched/pin.c)"


def _hold_across_migration(lock_factory, acquire, release):
    """In a goroutine: take the lock, gosched until the goroutine runs on
    another OS thread (busy goroutines keep both Ps going), release."""
    out = {}
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            runtime.gosched()

    def holder():
        lk = lock_factory()
        acquire(lk)
        first = threading.get_native_id()
        for _ in range(20000):
            runtime.gosched()
            if threading.get_native_id() != first:
                break
        out["moved"] = threading.get_native_id() != first
        try:
            release(lk)
            out["released"] = True
        except RuntimeError as e:
            out["released"] = str(e)

    j = Joiner()
    for _ in range(3):
        pygoro.go(busy)
    j.go(holder)
    try:
        j.join()
    finally:
        stop.set()
    return out


@pytest.mark.skipif(bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                    reason=_NO_MIGRATION)
def test_rlock_survives_goroutine_migration(procs2):
    out = _hold_across_migration(RLock, lambda lk: (lk.lock(), lk.lock()),
                                 lambda lk: (lk.unlock(), lk.unlock()))
    assert out["moved"], "the goroutine never changed OS thread"
    assert out["released"] is True


@pytest.mark.skipif(bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
                    reason=_NO_MIGRATION)
def test_threading_rlock_fails_after_migration(procs2):
    """Why pygoro.sync.RLock exists: threading.RLock is owned by an OS
    thread, and a goroutine that parks may resume on another one."""
    out = _hold_across_migration(threading.RLock, lambda lk: lk.acquire(),
                                 lambda lk: lk.release())
    assert out["moved"], "the goroutine never changed OS thread"
    assert "cannot release un-acquired lock" in str(out["released"])


# ---- Ctrl-C on the main thread -------------------------------------------------

_CTRL_C_PRELUDE = """
    import signal, threading, time
    import pygoro
    from pygoro.sync import Mutex, RWMutex, WaitGroup, Cond

    # Ctrl-C, as a user presses it: again if the first press was not seen.
    # The main thread's blocked wait notices a signal by the EINTR of its
    # futex wait; one landing in the instant it is out of that wait for its
    # 100 ms deadlock tick is only seen at its next Python-level check
    # (csrc/sched thread_park does not look at a tick), a race the scheduler
    # owns. These tests are about the withdrawal, so the helper repeats the
    # signal until the handler has raised, once.
    armed = threading.Event()

    def on_sigint(signum, frame):
        if armed.is_set():
            armed.clear()
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)

    def ctrl_c_in(d):
        main = threading.main_thread().ident
        armed.set()

        def send():
            time.sleep(d)
            while armed.is_set():
                signal.pthread_kill(main, signal.SIGINT)
                time.sleep(0.3)

        threading.Thread(target=send, daemon=True).start()

    def wait_until(pred):
        deadline = time.monotonic() + 30
        while not pred():
            assert time.monotonic() < deadline
            time.sleep(0.001)
"""


def _run_ctrl_c(body: str) -> str:
    r = run_script(_CTRL_C_PRELUDE + textwrap.indent(textwrap.dedent(body), "    "))
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def test_ctrl_c_mutex_lock_withdraws():
    out = _run_ctrl_c("""
        mu = Mutex()
        mu.lock()                       # held by the main thread itself
        got = []
        def gwaiter():
            mu.lock(); got.append(1); mu.unlock()
        pygoro.go(gwaiter)              # a goroutine waits too
        wait_until(lambda: mu._state()["waiters"] == 1)
        ctrl_c_in(0.25)
        t0 = time.monotonic()
        try:
            mu.lock()
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - t0 < 10)
        s = mu._state()
        print("state", s["locked"], s["waiters"], s["queued"])
        mu.unlock()                     # the goroutine gets it
        wait_until(lambda: got == [1])
        print("after", mu._state())
        mu.lock(); mu.unlock()
        print("usable")
    """)
    assert "interrupted True" in out, out
    assert "state True 1 1" in out, out  # only the goroutine is counted and queued
    assert "after {'locked': False, 'woken': False, 'starving': False, 'waiters': 0, " \
           "'queued': 0}" in out, out
    assert "usable" in out


def test_ctrl_c_mutex_lock_held_by_goroutine_in_starvation_mode():
    """The main thread has waited > 1 ms, so its next attempt would switch
    the Mutex to starvation mode; interrupted, it must leave no mode or
    count behind."""
    out = _run_ctrl_c("""
        mu = Mutex()
        release = threading.Event()
        def holder():
            mu.lock()
            while not release.is_set():
                pygoro.time.sleep(0.001)
            mu.unlock()
        pygoro.go(holder)
        wait_until(mu.locked)
        ctrl_c_in(0.25)
        try:
            mu.lock()
        except KeyboardInterrupt:
            print("interrupted")
        print("state", mu._state())
        release.set()
        wait_until(lambda: not mu.locked())
        mu.lock(); mu.unlock()
        print("final", mu._state())
    """)
    assert "interrupted" in out
    assert "state {'locked': True, 'woken': False, 'starving': False, 'waiters': 0, " \
           "'queued': 0}" in out, out
    assert "final {'locked': False, 'woken': False, 'starving': False, 'waiters': 0, " \
           "'queued': 0}" in out, out


def test_ctrl_c_waitgroup_wait_withdraws():
    out = _run_ctrl_c("""
        wg = WaitGroup()
        wg.add(1)
        woke = []
        pygoro.go(lambda: (wg.wait(), woke.append(1)))
        wait_until(lambda: wg._state()["waiters"] == 1)
        ctrl_c_in(0.25)
        try:
            wg.wait()
        except KeyboardInterrupt:
            print("interrupted")
        print("state", wg._state())
        wg.done()
        wait_until(lambda: woke == [1])
        wg.wait()
        print("final", wg._state())
    """)
    assert "interrupted" in out
    assert "state {'counter': 1, 'waiters': 1, 'queued': 1}" in out, out
    assert "final {'counter': 0, 'waiters': 0, 'queued': 0}" in out, out


def test_ctrl_c_cond_wait_withdraws_and_relocks():
    out = _run_ctrl_c("""
        mu = Mutex()
        c = Cond(mu)
        woke = []
        def gwaiter():
            with mu:
                c.wait()
                woke.append(1)
        pygoro.go(gwaiter)
        wait_until(lambda: c._waiters() == 1)
        mu.lock()
        ctrl_c_in(0.25)
        try:
            c.wait()
        except KeyboardInterrupt:
            print("interrupted, holding the lock again:", mu.locked())
        print("waiters", c._waiters())
        mu.unlock()
        c.signal()                      # goes to the goroutine, not the gone main thread
        wait_until(lambda: woke == [1])
        print("woke", woke)
    """)
    assert "interrupted, holding the lock again: True" in out, out
    assert "waiters 1" in out, out
    assert "woke [1]" in out, out


def test_ctrl_c_rwmutex_lock_and_rlock():
    out = _run_ctrl_c("""
        rw = RWMutex()
        rw.rlock()                      # a reader holds it: lock() waits
        ctrl_c_in(0.25)
        try:
            rw.lock()
        except KeyboardInterrupt:
            print("lock interrupted", rw._state())
        rw.runlock()
        print("clean", rw._state())
        done = threading.Event()
        def writer():
            rw.lock(); done.wait(); rw.unlock()
        pygoro.go(writer)
        wait_until(lambda: rw._state()["reader_count"] < 0)
        ctrl_c_in(0.25)
        try:
            rw.rlock()
        except KeyboardInterrupt:
            print("rlock interrupted")
        done.set()
        wait_until(lambda: rw._state()["w_state"] == 0)
        rw.rlock(); rw.runlock(); rw.lock(); rw.unlock()
        print("final", rw._state())
    """)
    clean = "{'reader_count': 0, 'reader_wait': 0, 'w_state': 0, 'reader_sem': 0, " \
            "'writer_sem': 0}"
    assert "lock interrupted {'reader_count': 1, 'reader_wait': 0, 'w_state': 0," in out, out
    assert "clean " + clean in out, out
    assert "rlock interrupted" in out, out
    assert "final " + clean in out, out


def test_main_thread_mutex_deadlock_is_reported():
    r = run_script("""
        import pygoro
        from pygoro.sync import Mutex
        mu = Mutex()
        mu.lock()
        try:
            mu.lock()
        except pygoro.DeadlockError as e:
            print("deadlock:", e)
    """)
    assert "deadlock: all goroutines are asleep" in r.stdout, r.stdout + r.stderr


def test_main_thread_rlock_deadlock_is_reported():
    """The main thread's read lock polls (see sync_type.c); it still sees
    that the writer holding the lock can never release it."""
    r = run_script("""
        import pygoro
        from pygoro.sync import RWMutex
        rw = RWMutex()
        rw.lock()
        try:
            rw.rlock()
        except pygoro.DeadlockError as e:
            print("deadlock:", e)
    """)
    assert "deadlock: all goroutines are asleep" in r.stdout, r.stdout + r.stderr
