"""Seeing goroutines: pygoro.runtime.stack()/goroutines(), dump_on_signal,
PYGORO_TRACEBACK, the dump DeadlockError carries, pygoro.testing.no_leaks and
the pytest plugin.

Goroutines are parked on purpose and always released before a test returns;
every wait for them to reach a state polls with a generous deadline."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import pygoro
from pygoro import chan, go, runtime, select
from pygoro.testing import LeakError, no_leaks

pytest_plugins = ["pytester"]

DEADLINE = 30.0
HERE = os.path.abspath(__file__)


def here() -> int:
    """The caller's current line number."""
    return sys._getframe(1).f_lineno


def wait_for(pred, what: str):
    """Poll pred() until it returns something truthy; return that."""
    deadline = time.monotonic() + DEADLINE
    while True:
        r = pred()
        if r:
            return r
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def by_function(name: str) -> runtime.Goroutine | None:
    for g in runtime.goroutines():
        if g.function is not None and getattr(g.function, "__name__", None) == name:
            return g
    return None


def parked(name: str, state: str) -> runtime.Goroutine:
    def check():
        g = by_function(name)
        return g if g is not None and g.state == state else None

    return wait_for(check, f"{name} to park in {state!r}")


def run_python(code: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


# ---- stack() and goroutines() --------------------------------------------------


def test_wait_reasons_frames_and_creation_site():
    lines: dict[str, int] = {}
    a, b, c, full = chan(), chan(), chan(), chan(1)
    full.send("x")

    def receiver():
        lines["recv"] = here() + 1
        a.recv()

    def sender():
        lines["send"] = here() + 1
        full.send("y")

    def selector():
        lines["select"] = here() + 1
        select(b.recv_case(), c.recv_case())

    def napper():
        lines["nap"] = here() + 1
        pygoro.time.sleep(5)

    spawn_line = here() + 1
    go(receiver)
    go(sender)
    go(selector)
    go(napper)
    try:
        g_recv = parked("receiver", "chan receive")
        g_send = parked("sender", "chan send")
        g_sel = parked("selector", "select")
        g_nap = parked("napper", "sleep")
        for g, key, offset in ((g_recv, "recv", 0), (g_send, "send", 1), (g_sel, "select", 2)):
            assert g.is_python and not g.current
            assert g.waited is not None and g.waited >= 0
            innermost = g.frames[-1]
            assert (innermost.filename, innermost.lineno) == (HERE, lines[key])
            assert innermost.name.endswith(g.function.__name__)
            assert g.created_by is not None
            assert (g.created_by.filename, g.created_by.lineno) == (HERE, spawn_line + offset)
            assert g.created_by.name == "test_wait_reasons_frames_and_creation_site"
            assert g.parent_id is None and g.created_by_thread == "MainThread"
        # parked inside pygoro.time.sleep: the caller's frame is one up
        assert [(f.filename, f.lineno) for f in g_nap.frames][-2] == (HERE, lines["nap"])

        text = runtime.stack()
        for g in (g_recv, g_send, g_sel, g_nap):
            assert f"goroutine {g.id} [{g.state}, " in text
        assert f'  File "{HERE}", line {lines["recv"]}, in ' in text
        assert "    a.recv()\n" in text  # the source line, as in Python tracebacks
        assert (f"created by {HERE}:{spawn_line} in "
                f"test_wait_reasons_frames_and_creation_site, in thread MainThread\n") in text
    finally:
        a.send(None)
        assert full.recv() == "x"
        b.send(None)
        wait_for(lambda: by_function("sender") is None and by_function("receiver") is None
                 and by_function("selector") is None, "the parked goroutines to finish")
    # the napper is left to sleep out its 5 s in the background (a sleep
    # cannot be cut short)


def test_created_by_a_c_goroutine():
    """time.after_func starts the goroutine from a C goroutine: no Python
    caller, so the creator is named by that goroutine's label."""
    ch = chan()

    def later():
        ch.recv()

    pygoro.time.after_func(0.01, later)
    try:
        g = parked("later", "chan receive")
        assert g.created_by.name == "time.AfterFunc" and g.created_by.lineno is None
        assert g.parent_id is not None
        assert f"created by time.AfterFunc in goroutine {g.parent_id}\n" in g.format()
    finally:
        ch.send(None)


def test_sync_wait_reasons():
    """Goroutines parked in pygoro.sync show Go's wait reasons (runs once
    pygoro.sync is merged; tests/c/test_dump.py covers the C primitives)."""
    sync = pytest.importorskip("pygoro.sync")
    mu, wg = sync.Mutex(), sync.WaitGroup()
    mu.lock()
    wg.add(1)

    def locker():
        mu.lock()
        mu.unlock()

    def waiter():
        wg.wait()

    go(locker)
    go(waiter)
    try:
        assert parked("locker", "sync.Mutex.Lock").frames[-1].name.endswith("locker")
        assert parked("waiter", "sync.WaitGroup.Wait").frames[-1].name.endswith("waiter")
    finally:
        mu.unlock()
        wg.done()
    wait_for(lambda: by_function("locker") is None and by_function("waiter") is None,
             "locker and waiter to finish")


def test_waited_time_grows():
    ch = chan()

    def stuck():
        ch.recv()

    go(stuck)
    try:
        first = parked("stuck", "chan receive")
        time.sleep(0.4)
        second = parked("stuck", "chan receive")
        assert second.id == first.id
        # the park time comes from a ~4 ms coarse clock
        assert second.waited >= first.waited + 0.3, (first.waited, second.waited)
        assert f"[chan receive, {second.waited:.1f} seconds]" in second.format()
    finally:
        ch.send(None)


def test_waited_formats_minutes_and_hours():
    g = runtime.Goroutine(1, "chan receive", 125.0, True, False, None, None, None, None, None,
                          None, None)
    assert g.format().startswith("goroutine 1 [chan receive, 2 minutes]:\n")
    g = runtime.Goroutine(1, "select", 5400.0, True, False, None, None, None, None, None,
                          None, None)
    assert g.format().startswith("goroutine 1 [select, 1.5 hours]:\n")


def test_running_and_runnable():
    result: dict[str, object] = {}
    done = chan()
    old = runtime.gomaxprocs(1)

    def child():
        pass

    def parent():
        result["me"] = runtime.goid()
        # One P, and we hold it: the child cannot start before we park -
        # unless sysmon, seeing this P busy for 2 ms on a loaded machine,
        # lends another P to run it. So try a few times.
        for _ in range(20):
            line = here() + 1
            go(child)
            gs = runtime.goroutines()
            kids = [g for g in gs if g.function is child and g.state == "runnable"]
            if kids:
                result.update(self=gs[0], child=kids[0], line=line)
                break
        done.send(None)

    try:
        go(parent)
        done.recv()
    finally:
        runtime.gomaxprocs(old)
    me = result["self"]
    assert me.current and me.id == result["me"] and me.state == "running"
    # the caller's own frames end in the caller, not inside pygoro.runtime
    assert me.frames[-1].filename == HERE and me.frames[-1].name.endswith("parent")
    kid = result["child"]
    assert kid.state == "runnable" and kid.frames is None
    assert kid.parent_id == me.id and kid.created_by_thread is None
    assert kid.created_by.lineno == result["line"]
    text = kid.format()
    assert "child() (not started yet)" in text
    assert f", in goroutine {me.id}\n" in text


def test_running_in_a_blocking_call_shows_its_frames():
    """A goroutine in a call that released the GIL (time.sleep) is running,
    and its frames can be read all the same."""
    release = threading.Event()
    lines = {}

    def blocker():
        lines["sleep"] = here() + 1
        while not release.wait(0.01):  # threading's wait: the goroutine keeps its M
            pass

    go(blocker)
    try:
        g = wait_for(lambda: (lambda g: g if g and g.frames and any(
            f.lineno == lines.get("sleep") for f in g.frames) else None)(by_function("blocker")),
            "blocker to block")
        assert g.state == "running"
    finally:
        release.set()
    wait_for(lambda: by_function("blocker") is None, "blocker to finish")


def test_finished_goroutines_are_gone_and_ids_unique():
    ch = chan()
    for _ in range(50):
        go(ch.send, 1)
    for _ in range(50):
        ch.recv()
    wait_for(lambda: all(g.function is None or getattr(g.function, "__self__", None) is not ch
                         for g in runtime.goroutines()), "senders to finish")
    ids = [g.id for g in runtime.goroutines()]
    assert len(ids) == len(set(ids))


def test_dump_while_goroutines_churn():
    """stack() taken over and over while goroutines start, park and finish:
    never crashes, and only ever shows consistent goroutines."""
    stop = threading.Event()
    ch = chan(4)

    def worker(i):
        ch.send(i)
        ch.recv()

    def spawner():
        i = 0
        while not stop.is_set():
            go(worker, i)
            i += 1
            runtime.gosched()

    go(spawner)
    try:
        for _ in range(200):
            text = runtime.stack()
            assert text == "" or text.startswith("goroutine ")
    finally:
        stop.set()
    wait_for(lambda: by_function("spawner") is None, "spawner to stop")
    wait_for(lambda: by_function("worker") is None, "workers to finish")


def test_plain_threads_blocked_in_pygoro_are_listed():
    ch = chan()
    lines = {}

    def reader():
        lines["recv"] = here() + 1
        ch.recv()

    t = threading.Thread(target=reader, name="observe-reader")
    t.start()
    try:
        def find():
            for g in runtime.goroutines(threads=True):
                if g.thread == "observe-reader" and g.state == "chan receive":
                    return g
            return None

        g = wait_for(find, "the reader thread to block")
        assert g.id == 0 and g.waited >= 0
        assert (g.frames[-1].filename, g.frames[-1].lineno) == (HERE, lines["recv"])
        assert all(x.thread is None for x in runtime.goroutines())  # opt-in
        text = runtime.stack()
        assert "thread observe-reader [chan receive, " in text
        assert f'  File "{HERE}", line {lines["recv"]}, in ' in text
    finally:
        ch.send(None)
        t.join()
    assert not any(g.thread == "observe-reader" for g in runtime.goroutines(threads=True))


# ---- dump on request -------------------------------------------------------------


def test_dump_on_signal_in_process():
    out = io.StringIO()
    ch = chan()

    def parked_for_signal():
        ch.recv()

    previous = runtime.dump_on_signal(signal.SIGUSR1, file=out)
    go(parked_for_signal)
    try:
        parked("parked_for_signal", "chan receive")
        os.kill(os.getpid(), signal.SIGUSR1)
        wait_for(out.getvalue, "the dump")
        text = out.getvalue()
        assert text.startswith("pygoro: goroutine dump on SIGUSR1\n\n")
        assert "[chan receive, " in text and "parked_for_signal\n    ch.recv()" in text
    finally:
        signal.signal(signal.SIGUSR1, previous)
        ch.send(None)


SIGNAL_CHILD = """
    import sys, pygoro
    from pygoro import chan, go
    ch = chan()
    def parked_in_child():
        ch.recv()
    go(parked_in_child)
    while not any(g.state == "chan receive" for g in pygoro.runtime.goroutines()):
        pygoro.runtime.gosched()
    print("ready", flush=True)
    sys.stdin.readline()
    ch.send(None)
    print("done", flush=True)
"""


@pytest.mark.parametrize("value,sig", [("1", signal.SIGQUIT), ("SIGUSR2", signal.SIGUSR2),
                                       ("usr1", signal.SIGUSR1)])
def test_pygoro_traceback_env_dumps_on_signal(value, sig):
    p = run_python(SIGNAL_CHILD, env={"PYGORO_TRACEBACK": value}, stdin=subprocess.PIPE)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(sig)
        out, err = p.communicate("\n", timeout=60)
    finally:
        p.kill()
    assert p.returncode == 0, err
    assert out == "done\n"
    assert f"pygoro: goroutine dump on {signal.Signals(sig).name}\n" in err
    assert "[chan receive, " in err
    assert 'File "<string>", line 6, in parked_in_child\n' in err
    assert "created by <string>:7 in <module>, in thread MainThread" in err


def test_pygoro_traceback_env_rejects_nonsense():
    p = run_python("import pygoro, signal; print(signal.getsignal(signal.SIGQUIT) == signal.SIG_DFL)",
                   env={"PYGORO_TRACEBACK": "SIGNOPE"})
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "PYGORO_TRACEBACK='SIGNOPE'" in err and "ignored" in err
    assert out.strip() == "True"


DEADLOCK_CHILD = """
    import traceback, pygoro
    from pygoro import chan, go
    a, b = chan(), chan()
    def stuck_forever():
        a.recv()
    go(stuck_forever)
    try:
        b.recv()
    except pygoro.DeadlockError as e:
        print("GOROUTINES:", e.goroutines, sep="\\n")
        traceback.print_exc()
"""


def test_deadlock_error_carries_the_dump():
    p = run_python(DEADLOCK_CHILD)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out.startswith("GOROUTINES:\ngoroutine ")
    assert "[chan receive, " in out
    assert 'line 6, in stuck_forever\n' in out
    assert "created by <string>:7 in <module>, in thread MainThread" in out
    # the traceback shows the dump as a note after the message
    assert "all goroutines are asleep - deadlock!" in err
    assert "goroutines at the deadlock:\ngoroutine " in err
    assert "in stuck_forever" in err.split("goroutines at the deadlock:")[1]


def test_deadlock_error_default_goroutines_is_none():
    assert pygoro.DeadlockError("x").goroutines is None


# ---- no_leaks ----------------------------------------------------------------------


def test_no_leaks_passes_when_goroutines_finish():
    ch = chan()
    with no_leaks():
        for i in range(20):
            go(ch.send, i)
        assert sorted(ch.recv() for _ in range(20)) == list(range(20))


def test_no_leaks_waits_for_goroutines_winding_down():
    def slow():
        pygoro.time.sleep(0.05)

    with no_leaks(timeout=10.0):
        go(slow)


def test_no_leaks_ignores_goroutines_from_before():
    ch = chan()

    def older():
        ch.recv()

    go(older)
    try:
        parked("older", "chan receive")
        with no_leaks(timeout=0.05):
            pass
    finally:
        ch.send(None)


def test_no_leaks_fails_listing_the_leak():
    ch = chan()

    def leaky():
        ch.recv()

    with pytest.raises(LeakError) as info:
        with no_leaks(timeout=0.2):
            line = here() + 1
            go(leaky)
    try:
        err = info.value
        assert isinstance(err, AssertionError)
        (g,) = err.goroutines
        assert g.function is leaky and g.state == "chan receive"
        msg = str(err)
        assert msg.startswith("1 goroutine leaked:\n\ngoroutine ")
        assert ".leaky\n    ch.recv()\n" in msg
        assert f"created by {HERE}:{line} in test_no_leaks_fails_listing_the_leak" in msg
    finally:
        ch.send(None)


def test_no_leaks_lets_the_body_exception_through():
    ch = chan()
    with pytest.raises(ZeroDivisionError):
        with no_leaks(timeout=0.05):
            go(ch.recv)
            1 / 0
    ch.send(None)


@pytest.mark.parametrize("bad,exc", [("1", TypeError), (None, TypeError), (True, TypeError),
                                     (-1, ValueError), (float("nan"), ValueError)])
def test_no_leaks_rejects_bad_timeout(bad, exc):
    with pytest.raises(exc):
        with no_leaks(timeout=bad):
            pass


# ---- the pytest plugin -------------------------------------------------------------

PLUGIN_TESTS = """
    import pytest
    from pygoro import chan, go

    forever = chan()

    def test_clean():
        ch = chan()
        go(ch.send, 1)
        assert ch.recv() == 1

    @pytest.mark.no_leaks(timeout=0.1)
    def test_leaks_marked():
        go(forever.recv)

    def test_leaks_fixture(no_goroutine_leaks):
        go(forever.recv)

    def test_leaks_unchecked():
        go(forever.recv)

    @pytest.mark.no_leaks
    def test_clean_marked():
        ch = chan()
        go(ch.send, 1)
        ch.recv()
"""


def _plugin_args() -> list[str]:
    from importlib.metadata import entry_points

    installed = any(ep.value == "pygoro.pytest_plugin" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "pygoro.pytest_plugin"]


def test_pytest_plugin_marker_and_fixture(pytester):
    pytester.makepyfile(test_leaky=PLUGIN_TESTS)
    r = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider")
    r.assert_outcomes(passed=3, failed=2)
    out = r.stdout.str()
    assert "FAILED test_leaky.py::test_leaks_marked - pygoro.testing.LeakError" in out
    assert "FAILED test_leaky.py::test_leaks_fixture - pygoro.testing.LeakError" in out
    assert "1 goroutine leaked:" in out
    assert "[chan receive, " in out
    assert "test_leaky.py:13 in test_leaks_marked" in out


def test_pytest_plugin_option_checks_every_test(pytester):
    pytester.makepyfile(test_leaky=PLUGIN_TESTS)
    r = pytester.runpytest_subprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                      "--pygoro-no-leaks")
    r.assert_outcomes(passed=2, failed=3)
    assert "test_leaky.py:19 in test_leaks_unchecked" in r.stdout.str()
