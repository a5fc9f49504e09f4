"""sync: Pool, weighted Semaphore and atomics, in C and from Python.

    python -m pytest benchmarks/test_sync_extra.py --benchmark-only -s

C figures are measured inside C loops driven through cffi (no per-iteration
Python cost). Python figures time a loop of method calls, next to the
nearest standard-library peer; each benchmark prints ns per operation and
stores it in extra_info."""

from __future__ import annotations

import threading
import time

import pytest

from pygoro import chan, go
from pygoro.sync import Pool
from pygoro.sync import Semaphore
from pygoro.sync.atomic import Int64, Value

GOROUTINE, THREAD = 0, 1


# ---- C core -------------------------------------------------------------


@pytest.mark.parametrize("kind", [GOROUTINE, THREAD], ids=["goroutine", "thread"])
def test_c_pool_get_put(clib, per_op, kind):
    ffi, lib = clib
    n = 2_000_000
    per_op(lambda: lib.sx_pool_getput_ns(n, kind), n)


def test_c_semaphore_acquire_release_uncontended(clib, per_op):
    ffi, lib = clib
    n = 1_000_000
    per_op(lambda: lib.sx_sem_uncontended_ns(n), n)


def test_c_atomic_int64_add(clib, per_op):
    ffi, lib = clib
    n = 10_000_000
    per_op(lambda: lib.sx_atomic_add_ns(n), n)


# ---- Python ---------------------------------------------------------------


def _timed(loop, n: int, in_goroutine: bool = False) -> int:
    """Run loop(n) here or in a goroutine; return the elapsed ns."""
    if not in_goroutine:
        t0 = time.perf_counter_ns()
        loop(n)
        return time.perf_counter_ns() - t0
    out = chan(1)

    def body():
        t0 = time.perf_counter_ns()
        loop(n)
        out.send(time.perf_counter_ns() - t0)

    go(body)
    return out.recv()


@pytest.mark.parametrize("where", ["main-thread", "goroutine"])
def test_py_pool_get_put(per_op, where):
    p = Pool(new=bytearray)

    def loop(n):
        get, put = p.get, p.put
        for _ in range(n):
            put(get())

    n = 500_000
    per_op(lambda: _timed(loop, n, where == "goroutine"), n)


def test_py_list_free_list_peer(per_op):
    """The usual Python peer of a pool: a list used as a free list (not safe
    without the GIL, and shared by every thread)."""
    free = [bytearray()]

    def loop(n):
        pop, append = free.pop, free.append
        for _ in range(n):
            append(pop() if free else bytearray())

    n = 500_000
    per_op(lambda: _timed(loop, n), n)


def _acquire_release(s):
    def loop(n):
        acquire, release = s.acquire, s.release
        for _ in range(n):
            acquire()
            release()

    return loop


@pytest.mark.parametrize("where", ["main-thread", "goroutine"])
def test_py_semaphore_acquire_release(per_op, where):
    n = 500_000
    per_op(lambda: _timed(_acquire_release(Semaphore(4)), n, where == "goroutine"), n)


def test_py_threading_semaphore_peer(per_op):
    n = 500_000
    per_op(lambda: _timed(_acquire_release(threading.Semaphore(4)), n), n)


def test_py_int64_add(per_op):
    a = Int64()

    def loop(n):
        add = a.add
        for _ in range(n):
            add(1)

    n = 1_000_000
    per_op(lambda: _timed(loop, n), n)


def test_py_locked_int_peer(per_op):
    """A lock-protected int: what Python code writes without atomics."""
    lock = threading.Lock()
    box = [0]

    def loop(n):
        for _ in range(n):
            with lock:
                box[0] += 1

    n = 1_000_000
    per_op(lambda: _timed(loop, n), n)


def test_py_value_load(per_op):
    v = Value({"config": 1})

    def loop(n):
        load = v.load
        for _ in range(n):
            load()

    n = 1_000_000
    per_op(lambda: _timed(loop, n), n)
