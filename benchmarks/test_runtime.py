"""Runtime core: spawn, yield, switch, memory per parked goroutine.

    python -m pytest benchmarks/test_runtime.py --benchmark-only -s

C figures are measured inside C loops (no per-iteration Python cost); each
benchmark prints ns per operation and stores it in extra_info."""

from __future__ import annotations

import os
import threading
import time

import pytest

import pygoro
from pygoro import runtime


# ---- C core -------------------------------------------------------------

def test_c_spawn_exit(clib, per_op):
    ffi, lib = clib
    n = 100_000
    # spawned from a goroutine in batches that fit the caches: the steady
    # state of a program that keeps starting short goroutines
    per_op(lambda: sum(lib.core_spawn_join(1000, 1) for _ in range(n // 1000)), n)


def test_c_gosched_round_trip(clib, per_op):
    ffi, lib = clib
    changes = ffi.new("int64_t *")
    n = 200_000
    per_op(lambda: lib.core_gosched_yielders(2, n, changes), 2 * n)


def test_c_register_switch(clib, per_op):
    ffi, lib = clib
    n = 10_000_000
    per_op(lambda: lib.core_switch_only(n), 2 * n)


def _fresh_process(code: str) -> float:
    """Run code in a new interpreter (so no stack caches are warm) and return
    the float it prints last."""
    import subprocess
    import sys
    import textwrap

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=300, env=env, check=True)
    return float(r.stdout.split()[-1])


def test_c_rss_per_parked_goroutine(benchmark):
    n = 100_000
    code = f"""
        import build
        ffi, lib = build.build()
        lib.goro_runtime_start(0)
        rss = ffi.new("int64_t *")
        lib.core_park_many({n}, rss)
        print(rss[0] * 1024 / {n})
    """
    per_g = benchmark.pedantic(lambda: _fresh_process(code), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_goroutine"] = per_g
    print(f"\n  C RSS per parked goroutine: {per_g:.0f} bytes")


def test_py_rss_per_parked_goroutine(benchmark):
    n = 100_000
    code = f"""
        import time, pygoro
        from pygoro import runtime
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096
        gate = pygoro.chan()
        def parked():          # a Python frame, as a real goroutine has
            gate.recv()
        warm = [pygoro.go(parked) for _ in range(1000)]
        while runtime.num_goroutine() < 1000:
            time.sleep(0.01)
        before = rss()
        for _ in range({n}):
            pygoro.go(parked)
        while runtime.num_goroutine() < {n} + 1000:
            time.sleep(0.01)
        print((rss() - before) / {n})
    """
    per_g = benchmark.pedantic(lambda: _fresh_process(code), rounds=1, iterations=1)
    benchmark.extra_info["bytes_per_goroutine"] = per_g
    print(f"\n  Python RSS per parked goroutine: {per_g:.0f} bytes")


# ---- Python -------------------------------------------------------------

def _spawn_from_goroutine(n: int) -> float:
    done = threading.Event()
    count = [0]

    def child():
        count[0] += 1  # goroutines run Python under the GIL, one at a time
        if count[0] == n:
            done.set()

    def parent():
        for _ in range(n):
            pygoro.go(child)

    t0 = time.perf_counter_ns()
    pygoro.go(parent)
    done.wait()
    return time.perf_counter_ns() - t0


@pytest.fixture(params=[1, 2], ids=["P1", "P2"])
def procs(request):
    """Run the benchmark at gomaxprocs 1 and 2."""
    old = runtime.gomaxprocs(request.param)
    yield request.param
    runtime.gomaxprocs(old)


def test_py_spawn_run_exit(per_op, procs):
    n = 50_000
    per_op(lambda: _spawn_from_goroutine(n), n)


def _gosched_pair(n: int) -> float:
    done = threading.Event()
    left = [2]

    def f():
        for _ in range(n):
            runtime.gosched()
        left[0] -= 1
        if left[0] == 0:
            done.set()

    t0 = time.perf_counter_ns()
    pygoro.go(f)
    pygoro.go(f)
    done.wait()
    return time.perf_counter_ns() - t0


def test_py_gosched_round_trip(per_op, procs):
    n = 100_000
    per_op(lambda: _gosched_pair(n), 2 * n)
