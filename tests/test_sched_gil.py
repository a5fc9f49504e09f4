"""Python goroutines and the GIL with several Ps (csrc/python/goroutine.c,
"One M at a time runs Python goroutines"): an M waits for the M running
Python goroutines instead of queueing on the GIL next to it, and sysmon
lends no extra P for an M that waits for the GIL. None of that may cost
progress: work queued behind a goroutine that computes, or that sits in a
call which released the GIL, still runs."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import pygoro
from pygoro import runtime

pytestmark = pytest.mark.skipif(
    hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled(),
    reason="GIL builds only: free-threaded builds run Python goroutines in parallel")


@pytest.fixture(params=[1, 2], ids=["P1", "P2"])
def procs(request):
    old = runtime.gomaxprocs(request.param)
    yield request.param
    runtime.gomaxprocs(old)


def test_goroutine_queued_behind_a_computing_goroutine_runs(procs):
    """A goroutine that computes in Python without ever blocking keeps its
    M and the GIL; one made runnable meanwhile must still get to run while
    it computes (CPython's switch interval shares the GIL; at one P, sysmon
    moves the queued work to another M), not only once it is done."""
    seen = threading.Event()
    finished = threading.Event()
    result: list[bool] = []

    def compute() -> None:
        deadline = time.monotonic() + 10.0
        while not seen.is_set() and time.monotonic() < deadline:
            sum(range(1000))
        result.append(seen.is_set())
        finished.set()

    def other() -> None:
        seen.set()

    pygoro.go(compute)
    time.sleep(0.05)  # compute holds its M now
    pygoro.go(other)
    assert finished.wait(30)
    assert result == [True]


def test_goroutines_run_while_the_runner_sits_in_a_blocking_call(procs):
    """The goroutine that last ran Python on an M calls time.sleep (the GIL
    released, its M blocked). Goroutines woken on the other M must not wait
    for that M to come back: a chain of 300 hand-offs, each a goroutine
    resuming, finishes while the sleeper still sleeps."""
    if procs == 1:
        pytest.skip("one P: the sleeper's M keeps the P until sysmon moves the queue")
    sleeping = threading.Event()
    woke = threading.Event()

    def sleeper() -> None:
        sleeping.set()
        time.sleep(1.0)
        woke.set()

    n = 300
    chans = [pygoro.chan() for _ in range(n + 1)]

    def link(i: int) -> None:
        chans[i].send(chans[i + 1].recv())

    pygoro.go(sleeper)
    assert sleeping.wait(10)
    for i in range(n):
        pygoro.go(link, i)
    chans[n].send("token")
    assert chans[0].recv() == "token"
    assert not woke.is_set(), "the chain waited for the sleeping goroutine's M"
    assert woke.wait(10)


_BURST = """
import pygoro
from pygoro import runtime, sync, _core
runtime.gomaxprocs(2)
n = 30000
wg = sync.WaitGroup()
wg.add(n)
def work():
    s = 0
    for i in range(50):
        s += i
    wg.done()
for _ in range(n):
    pygoro.go(work)
wg.wait()
print(_core._stats()["num_m"])
"""


def test_burst_of_python_goroutines_starts_no_thread_per_gil_wait():
    """30,000 short Python goroutines spawned by the main thread at
    gomaxprocs 2: an M that waits for the GIL looks stuck to sysmon (its P
    schedules nothing for 2 ms), and lending it a P only started another M
    that waited for the GIL too, one more every 2 ms: 30-56 threads for a
    burst like this one. Now it needs the two Ms of its two Ps, 3-4 threads
    in all here; the bound leaves room for Ps lent while an M really was
    stuck (descheduled by a busy machine for 2 ms, say), one at a time."""
    out = subprocess.run([sys.executable, "-c", _BURST], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) <= 8
