"""Channels, select and timers, for the C core and the Python API (issue 3's
benchmark list). The same loops make the rows of benchmarks/run.py's table.

    python -m pytest benchmarks/test_chan.py --benchmark-only -s

C figures come from C loops in C goroutines (tests/c/helpers/bench.c): no
Python cost per iteration. Python figures time the loop inside the
goroutines (impl_pygoro.py). Each prints ns per operation and stores it in
extra_info. Go 1.27 on this machine (issue 3): ping-pong 0.73 µs, buffered
67-72 ns/item, select 200 ns, Timer+Stop ~0.4 µs; benchmarks/run.py runs the
Go programs side by side."""

from __future__ import annotations

import pytest

import impl_pygoro

# (name, C loop taking n and returning elapsed ns, n)
C_ROWS = [
    ("pingpong", lambda lib, n: lib.bench_pingpong(n), 200_000),
    ("buffered_128", lambda lib, n: lib.bench_buffered(n, 128), 2_000_000),
    # 2 sends + select over both + recv of the other: Go's row
    ("select_2_ready", lambda lib, n: lib.bench_select2(n), 1_000_000),
    ("select_default_empty", lambda lib, n: lib.bench_select_default(n), 5_000_000),
    # goro_chan_try_recv on an empty buffered channel: the lock-free path
    ("try_recv_empty", lambda lib, n: lib.chan_try_empty_cost(n) * n, 5_000_000),
    ("timer_stop", lambda lib, n: lib.bench_timer_stop(n), 1_000_000),
]

# (name, Python loop taking n and returning elapsed ns, n)
PY_ROWS = [
    ("pingpong", impl_pygoro.pingpong, 50_000),
    ("buffered_128", impl_pygoro.buffered, 200_000),
    ("select_2_ready", impl_pygoro.select2, 50_000),
    ("select_default_empty", impl_pygoro.select_default, 200_000),
    # pygoro.time.Timer(d).stop()
    ("timer_stop", impl_pygoro.timer_stop, 50_000),
    # pygoro.time.after(d) never fired, dropped with its channel: what a
    # select's losing `case <-time.After(d):` costs
    ("after", impl_pygoro.after_unfired, 50_000),
]


@pytest.mark.parametrize("name,loop,n", C_ROWS, ids=[r[0] for r in C_ROWS])
def test_c(clib, per_op, name, loop, n):
    _, lib = clib

    def run():
        r = loop(lib, n)
        assert r > 0, f"the C loop of {name} reported a wrong result"
        return r

    per_op(run, n)


@pytest.mark.parametrize("name,loop,n", PY_ROWS, ids=[r[0] for r in PY_ROWS])
def test_py(per_op, name, loop, n):
    per_op(lambda: loop(n), n)


@pytest.mark.parametrize("workers", [1, 2], ids=["1-goroutine", "2-goroutines"])
@pytest.mark.parametrize("early", [0, 1], ids=["random-place", "earliest"])
@pytest.mark.parametrize("pending", [0, 100_000], ids=["0-pending", "100k-pending"])
def test_c_timer_add_stop_heap(clib, per_op, pending, early, workers):
    """timer_reset + timer_stop on the runtime's one timer heap, with 0 or
    100,000 other timers pending, the new timer at a random place or before
    all others (it sifts up to the root), from 1 or 2 goroutines at once
    (one heap, one lock): ns per pair, per goroutine."""
    _, lib = clib
    n = 200_000

    def run():
        ns = lib.timer_bench_add_stop(pending, n, workers, early)
        assert ns > 0
        return ns * n

    per_op(run, n)
