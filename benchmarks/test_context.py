"""Context cancellation fan-out: one cancel() waking 1000 waiting goroutines.

    python -m pytest benchmarks/test_context.py --benchmark-only -s

A parent context has 1000 children (with_cancel each); 1000 goroutines each
wait on their own child's done() channel. The clock runs from the parent's
cancel() call (made by the main thread, or by a goroutine) until the last
goroutine has woken and finished; the figure is that time divided by 1000:
"µs per child". Go 1.27 on this kind of
machine: 1.3-1.7 µs per child; target for pygoro from Python: <= 2 µs.

The peers do the same shape of work with 1000 asyncio tasks: all awaiting
one asyncio.Event (set once), or each cancelled with task.cancel(), on the
default loop and on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

import pygoro
from pygoro import context, runtime

N = 1000


def _wait_parked(ready: pygoro.Chan, n: int) -> None:
    """Return once n waiters have signalled on ready, the last thing each
    does before it blocks, and have had the time to block."""
    for _ in range(n):
        ready.recv()
    time.sleep(0.02)  # let the last ones park; not part of the measurement


def _cancel_fan_out(n: int, use_select: bool, from_goroutine: bool,
                    cpu: list[int] | None = None) -> float:
    """Wall-clock ns from cancel() until all n waiters have finished; the
    process CPU time of the same window (every thread: main, Ms, sysmon) is
    appended to cpu."""
    base = runtime.num_goroutine()
    parent, cancel = context.with_cancel(context.background())
    finished = pygoro.chan()
    count = itertools.count(1)  # next() is atomic under the GIL
    ready = pygoro.chan(n)

    def waiter(ctx: context.Context) -> None:
        ready.send(None)
        if use_select:
            pygoro.select(ctx.done_case())
        else:
            ctx.done().recv()
        if next(count) == n:
            finished.close()

    children = []
    for _ in range(n):
        ctx, child_cancel = context.with_cancel(parent)
        children.append(child_cancel)
        pygoro.go(waiter, ctx)
    _wait_parked(ready, n)
    cpu0 = time.process_time_ns()
    if from_goroutine:
        started = pygoro.chan(1)

        def canceller() -> None:
            started.send(time.perf_counter_ns())
            cancel()

        pygoro.go(canceller)
        finished.recv()
        elapsed = time.perf_counter_ns() - started.recv()
    else:
        t0 = time.perf_counter_ns()
        cancel()
        finished.recv()
        elapsed = time.perf_counter_ns() - t0
    if cpu is not None:
        cpu.append(time.process_time_ns() - cpu0)
    for c in children:
        c()
    while runtime.num_goroutine() > base:
        time.sleep(0.001)
    return elapsed


@pytest.fixture(params=[1, 2], ids=["P1", "P2"])
def procs(request):
    old = runtime.gomaxprocs(request.param)
    yield request.param
    runtime.gomaxprocs(old)


@pytest.mark.parametrize("caller", ["thread", "goroutine"])
@pytest.mark.parametrize("how", ["recv", "select"])
def test_py_context_cancel_1000_children(benchmark, per_op, procs, how, caller):
    """how: each waiter blocks in ctx.done().recv() or select(ctx.done_case());
    caller: cancel() is called by the main thread or by a goroutine. Also
    records the CPU time per child (all threads), which a loaded machine
    inflates less than the wall-clock figure."""
    cpu: list[int] = []
    per_op(lambda: _cancel_fan_out(N, how == "select", caller == "goroutine", cpu), N,
           rounds=10, unit_name="ns_per_child")
    best_cpu = min(cpu[1:] or cpu) / N  # the first sample is the warm-up round
    benchmark.extra_info["cpu_ns_per_child"] = round(best_cpu, 2)
    print(f"  {benchmark.name}: {best_cpu:.2f} cpu ns per child")


# ---- peers: asyncio (and uvloop) ----------------------------------------------


def _loops():
    loops = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:
        pass
    else:
        loops.append(("uvloop", uvloop.new_event_loop))
    return loops


async def _asyncio_event(n: int) -> float:
    ev = asyncio.Event()
    tasks = [asyncio.create_task(ev.wait()) for _ in range(n)]
    await asyncio.sleep(0)  # every task reaches its await
    t0 = time.perf_counter_ns()
    ev.set()
    await asyncio.gather(*tasks)
    return time.perf_counter_ns() - t0


async def _asyncio_cancel(n: int) -> float:
    never = asyncio.Event()
    tasks = [asyncio.create_task(never.wait()) for _ in range(n)]
    await asyncio.sleep(0)
    t0 = time.perf_counter_ns()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return time.perf_counter_ns() - t0


@pytest.mark.parametrize("loop_name,new_loop", _loops(), ids=[n for n, _ in _loops()])
@pytest.mark.parametrize("how", ["event", "cancel"])
def test_asyncio_wake_1000_tasks(per_op, loop_name, new_loop, how):
    coro = _asyncio_event if how == "event" else _asyncio_cancel
    loop = new_loop()
    try:
        per_op(lambda: loop.run_until_complete(coro(N)), N, rounds=10,
               unit_name="ns_per_child")
    finally:
        loop.close()
