"""Python goroutines: spawning, migration between worker threads with the
interpreter state intact, exceptions, recursion, exit and fork."""

from __future__ import annotations

import contextvars
import os
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time

import pytest

import pygoro
from pygoro import runtime


def wait_until(pred, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.001)


def run_script(code: str, timeout: float = 60.0, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_go_runs_function_with_args_and_kwargs():
    results = []
    done = threading.Event()

    def f(a, b, *, c):
        results.append((a, b, c))
        done.set()

    pygoro.go(f, 1, "x", c=[3])
    assert done.wait(10)
    assert results == [(1, "x", [3])]


def test_go_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        pygoro.go(42)
    with pytest.raises(TypeError):
        pygoro.go()


def test_goid_inside_and_outside():
    assert runtime.goid() is None
    ids = []
    done = threading.Event()

    def f():
        ids.append(runtime.goid())
        done.set()

    pygoro.go(f)
    assert done.wait(10)
    assert isinstance(ids[0], int) and ids[0] > 0


def test_many_goroutines_all_run():
    base = runtime.num_goroutine()  # other tests may leave goroutines parked
    n = 20000
    count = [0]
    lock = threading.Lock()
    done = threading.Event()

    def f():
        with lock:
            count[0] += 1
            if count[0] == n:
                done.set()

    for _ in range(n):
        pygoro.go(f)
    assert done.wait(60)
    wait_until(lambda: runtime.num_goroutine() <= base)


cv = contextvars.ContextVar("cv", default="unset")


class _GilStateProbe:
    """Calls back into Python through PyGILState_Ensure, like a C extension."""

    @staticmethod
    def call(fn):
        return pygoro._core._gilstate_call(fn)


def test_migration_keeps_python_state():
    """Goroutines hop between worker threads across thousands of gosched()
    calls; everything the interpreter keeps per thread state survives.
    Each worker yields n_yields times and then on until it has run on two
    threads (at most max_yields): which M takes a yielded goroutine is the
    scheduler's choice, and one M tends to keep running Python goroutines
    while it has them (goroutine.c, the GIL runner), so a fixed count could
    end before a goroutine ever moved. Two busy goroutines keep both Ps
    going until every worker is done, so the last workers still have
    company to be displaced by."""
    old = runtime.gomaxprocs(2)
    stop_busy = threading.Event()
    try:
        n_goroutines = 8
        n_yields = 2000
        max_yields = 50_000
        pinned = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))  # never moves
        tl = threading.local()
        results = {}
        errors = []
        lock = threading.Lock()
        done = threading.Event()

        def busy():
            while not stop_busy.is_set():
                runtime.gosched()

        def worker(i):
            try:
                cv.set(f"g{i}")
                tl.value = i
                local_list = [i] * 3

                def gen():
                    k = 0
                    while True:
                        yield k
                        k += 1

                g = gen()
                threads = set()
                try:
                    raise ValueError(i)
                except ValueError as handling:
                    for k in range(max_yields):
                        if k >= n_yields and (len(threads) > 1 or pinned):
                            break
                        threads.add(threading.get_native_id())
                        runtime.gosched()
                        assert cv.get() == f"g{i}"
                        assert tl.value == i
                        assert local_list == [i] * 3
                        assert next(g) == k
                        assert sys.exc_info()[1] is handling
                        if k % 100 == 0:
                            assert _GilStateProbe.call(lambda: i * 2) == i * 2
                with lock:
                    results[i] = threads
            except BaseException as e:  # reported below, not lost in excepthook
                with lock:
                    errors.append(repr(e))
            finally:
                with lock:
                    if len(results) + len(errors) == n_goroutines:
                        done.set()

        for _ in range(2):
            pygoro.go(busy)
        for i in range(n_goroutines):
            pygoro.go(worker, i)
        assert done.wait(120)
        assert errors == []
        moved = [i for i, ts in results.items() if len(ts) > 1]
        if pinned:
            # free-threaded: pinned to the thread they started on (see
            # tests/test_freethread.py); the state checks above still ran
            assert moved == [], results
        else:
            # most goroutines ran on more than one OS thread
            assert len(moved) > n_goroutines // 2, results
        # the spawner's context was copied, not shared
        assert cv.get() == "unset"
    finally:
        stop_busy.set()
        runtime.gomaxprocs(old)


def test_contextvars_copied_from_spawner():
    cv.set("parent")
    seen = []
    done = threading.Event()

    def f():
        seen.append(cv.get())
        cv.set("child")
        done.set()

    pygoro.go(f)
    assert done.wait(10)
    assert seen == ["parent"]
    assert cv.get() == "parent"


def test_threading_local_is_per_goroutine():
    tl = threading.local()
    tl.v = "main"
    seen = []
    done = threading.Event()

    def f():
        seen.append(getattr(tl, "v", None))
        tl.v = "goroutine"
        done.set()

    pygoro.go(f)
    assert done.wait(10)
    assert seen == [None]
    assert tl.v == "main"


def test_exception_goes_to_excepthook():
    got = []
    done = threading.Event()
    old = runtime.excepthook

    def hook(args):
        got.append(args)
        done.set()

    runtime.excepthook = hook
    try:

        def boom():
            raise KeyError("boom")

        pygoro.go(boom)
        assert done.wait(10)
    finally:
        runtime.excepthook = old
    (args,) = got
    assert args.exc_type is KeyError
    assert isinstance(args.exc_value, KeyError)
    assert args.exc_traceback is not None
    assert args.fn is boom
    assert args.goid > 0


def test_default_excepthook_prints_and_program_continues():
    r = run_script(
        """
        import threading, pygoro
        done = threading.Event()
        def boom():
            try:
                raise ZeroDivisionError("nope")
            finally:
                done.set()
        pygoro.go(boom)
        done.wait(10)
        import time; time.sleep(0.2)
        print("still running")
        """
    )
    assert r.returncode == 0, r.stderr
    assert "still running" in r.stdout
    assert "Exception in goroutine" in r.stderr
    assert "ZeroDivisionError: nope" in r.stderr
    assert "boom" in r.stderr


def test_system_exit_in_goroutine_ends_it_quietly():
    r = run_script(
        """
        import sys, threading, time, pygoro
        done = threading.Event()
        def f():
            done.set()
            sys.exit(5)
        pygoro.go(f)
        done.wait(10); time.sleep(0.2)
        print("main continues")
        """
    )
    assert r.returncode == 0, r.stderr
    assert "main continues" in r.stdout
    assert "SystemExit" not in r.stderr


def test_deep_c_recursion_raises_recursion_error_not_crash():
    r = run_script(
        """
        import threading, json, pygoro
        out = []
        done = threading.Event()
        def f():
            x = []
            for _ in range(200000):
                x = [x]
            for fn in (repr, json.dumps):
                try:
                    fn(x)
                    out.append("no error")
                except RecursionError:
                    out.append("RecursionError")
            done.set()
        pygoro.go(f)
        done.wait(60)
        print(out)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "['RecursionError', 'RecursionError']" in r.stdout


def test_deep_python_recursion_raises_recursion_error():
    out = []
    done = threading.Event()

    def rec(n):
        return rec(n + 1)

    def f():
        try:
            rec(0)
        except RecursionError:
            out.append("RecursionError")
        done.set()

    pygoro.go(f)
    assert done.wait(30)
    assert out == ["RecursionError"]


def test_exit_with_live_goroutines_keeps_exit_code():
    """Parked, runnable and busy-looping goroutines do not hang or crash
    interpreter exit; the program's own exit code comes through."""
    r = run_script(
        """
        import sys, threading, pygoro
        from pygoro import runtime
        ev = threading.Event()
        started = threading.Event()
        def parked():
            ev.wait()          # blocks its M in a plain blocking call
        def busy():
            started.set()
            x = 0
            while True:
                x += 1
        def yielder():
            while True:
                runtime.gosched()
        for _ in range(3):
            pygoro.go(parked)
        pygoro.go(busy)
        for _ in range(10):
            pygoro.go(yielder)
        for _ in range(1000):
            pygoro.go(lambda: None)
        started.wait(10)
        sys.exit(7)
        """,
        timeout=60,
    )
    assert r.returncode == 7, (r.returncode, r.stderr)
    assert "Fatal Python error" not in r.stderr
    assert "Segmentation" not in r.stderr


def test_fork_child_can_start_goroutines():
    r = run_script(
        """
        import os, threading, pygoro
        from pygoro import runtime
        # goroutines alive in the parent at fork time
        ev = threading.Event()
        for _ in range(4):
            pygoro.go(ev.wait)
        pid = os.fork()
        if pid == 0:
            done = threading.Event()
            out = []
            def f(x):
                out.append(x * 2)
                done.set()
            pygoro.go(f, 21)
            ok = done.wait(10)
            os._exit(0 if ok and out == [42] else 3)
        _, status = os.waitpid(pid, 0)
        ev.set()
        print("child exit", os.waitstatus_to_exitcode(status))
        """
    )
    assert r.returncode == 0, r.stderr
    assert "child exit 0" in r.stdout


def test_fork_from_goroutine():
    r = run_script(
        """
        import os, threading, pygoro
        res = []
        done = threading.Event()
        def forker():
            pid = os.fork()
            if pid == 0:
                d2 = threading.Event()
                pygoro.go(d2.set)
                os._exit(0 if d2.wait(10) else 4)
            _, status = os.waitpid(pid, 0)
            res.append(os.waitstatus_to_exitcode(status))
            done.set()
        pygoro.go(forker)
        done.wait(30)
        print("child exit", res)
        """
    )
    assert r.returncode == 0, r.stderr
    assert "child exit [0]" in r.stdout


def test_gomaxprocs_validation():
    old = runtime.gomaxprocs()
    with pytest.raises(ValueError):
        runtime.gomaxprocs(0)
    with pytest.raises(TypeError):
        runtime.gomaxprocs("2")
    assert runtime.gomaxprocs() == old
    assert runtime.num_cpu() >= 1


def test_stack_size_setting():
    old = runtime.stack_size()
    try:
        assert runtime.set_stack_size(1 << 20) == old
        assert runtime.stack_size() == 1 << 20
        with pytest.raises(ValueError):
            runtime.set_stack_size(1024)
        with pytest.raises(TypeError):
            runtime.set_stack_size(1.5)
    finally:
        runtime.set_stack_size(old)
