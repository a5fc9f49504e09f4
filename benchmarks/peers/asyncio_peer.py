"""asyncio (and, through uvloop_peer, asyncio on uvloop): tasks,
asyncio.Queue, asyncio.Lock, TaskGroup, asyncio.timeout."""

from __future__ import annotations

import asyncio
import sys
import time

import common
from common import best_per_op, service_delays, service_result

#: the event loop factory asyncio.run uses (uvloop_peer replaces it)
loop_factory = asyncio.new_event_loop


def run(coro):
    """Run coro on a fresh loop from loop_factory."""
    loop = loop_factory()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def sync(afn):
    """afn(n) -> coroutine returning elapsed ns, as a plain function."""
    return lambda n: run(afn(n))


async def spawn_join(n: int) -> int:
    async def child():
        pass
    t0 = time.perf_counter_ns()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(child())
    return time.perf_counter_ns() - t0


async def pingpong(n: int) -> int:
    ping: asyncio.Queue = asyncio.Queue(1)
    pong: asyncio.Queue = asyncio.Queue(1)

    async def echo():
        for _ in range(n):
            await pong.put(await ping.get() + 1)

    t = asyncio.create_task(echo())
    t0 = time.perf_counter_ns()
    v = 0
    for _ in range(n):
        await ping.put(v)
        v = await pong.get()
    dt = time.perf_counter_ns() - t0
    await t
    return dt


async def buffered(n: int) -> int:
    q: asyncio.Queue = asyncio.Queue(128)
    end = object()

    async def producer():
        for i in range(n):
            await q.put(i)
        await q.put(end)

    t0 = time.perf_counter_ns()
    t = asyncio.create_task(producer())
    s = 0
    while (v := await q.get()) is not end:
        s += v
    dt = time.perf_counter_ns() - t0
    await t
    assert s == n * (n - 1) // 2
    return dt


async def select2(n: int) -> int:
    """asyncio's select: asyncio.wait(FIRST_COMPLETED) over two get tasks."""
    a: asyncio.Queue = asyncio.Queue(1)
    b: asyncio.Queue = asyncio.Queue(1)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await a.put(1)
        await b.put(2)
        ga, gb = asyncio.ensure_future(a.get()), asyncio.ensure_future(b.get())
        done, pending = await asyncio.wait((ga, gb), return_when=asyncio.FIRST_COMPLETED)
        for p in pending:
            p.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if len(done) == 1:      # the loser was cancelled: drain its queue
            (b if ga in done else a).get_nowait()
    return time.perf_counter_ns() - t0


async def select_default(n: int) -> int:
    q: asyncio.Queue = asyncio.Queue()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        try:
            q.get_nowait()
        except asyncio.QueueEmpty:
            pass
    return time.perf_counter_ns() - t0


async def timer_stop(n: int) -> int:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        loop.call_later(3600.0, int).cancel()
    return time.perf_counter_ns() - t0


def mutex(workers: int):
    async def run_(n: int) -> int:
        mu = asyncio.Lock()
        per = n // workers
        count = [0]

        async def worker():
            for _ in range(per):
                async with mu:
                    count[0] += 1

        t0 = time.perf_counter_ns()
        async with asyncio.TaskGroup() as tg:
            for _ in range(workers):
                tg.create_task(worker())
        return time.perf_counter_ns() - t0
    return run_


async def cancel_fanout(rounds: int) -> int:
    """1000 child tasks waiting forever in a TaskGroup; cancelling the
    parent task cancels them all."""
    async def child():
        await asyncio.Event().wait()

    async def parent(started):
        async with asyncio.TaskGroup() as tg:
            for _ in range(common.FANOUT_CHILDREN):
                tg.create_task(child())
            started.set()

    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        started = asyncio.Event()
        p = asyncio.create_task(parent(started))
        await started.wait()
        p.cancel()
        try:
            await p
        except asyncio.CancelledError:
            pass
    return time.perf_counter_ns() - t0


async def timers_once(n: int) -> int:
    t0 = time.perf_counter_ns()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(asyncio.sleep(common.TIMER_SLEEP))
    return time.perf_counter_ns() - t0


async def rss_parked(n: int) -> float:
    ev = asyncio.Event()
    before = common.rss_bytes()
    ts = [asyncio.create_task(ev.wait()) for _ in range(n)]
    await asyncio.sleep(0.05)
    per = (common.rss_bytes() - before) / n
    ev.set()
    await asyncio.gather(*ts)
    return per


def cpu(kind: str):
    async def parallel_(work, buf, jobs):
        loop = asyncio.get_running_loop()   # the default executor
        await asyncio.gather(*(loop.run_in_executor(None, work, buf) for _ in range(jobs)))
    return lambda jobs: common.cpu_scaling(kind, jobs, lambda w, b, j: run(parallel_(w, b, j)))


async def service(requests: int) -> dict[str, float]:
    jobs: asyncio.Queue = asyncio.Queue()
    for i in range(requests):
        jobs.put_nowait(i)
    lat: list[float] = []

    async def request(seed):
        async with asyncio.timeout(common.SERVICE_DEADLINE):
            async with asyncio.TaskGroup() as tg:
                for d in service_delays(common.SERVICE_FANOUT, seed):
                    tg.create_task(asyncio.sleep(d))

    async def client():
        while not jobs.empty():
            i = jobs.get_nowait()
            t0 = time.perf_counter()
            await request(i)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter_ns()
    async with asyncio.TaskGroup() as tg:
        for _ in range(common.SERVICE_CLIENTS):
            tg.create_task(client())
    return service_result(lat, time.perf_counter_ns() - t0)


WORKLOADS = {
    "spawn_join": lambda s: best_per_op(sync(spawn_join), s.n("spawn_join")),
    "pingpong": lambda s: best_per_op(sync(pingpong), s.n("pingpong")),
    "buffered": lambda s: best_per_op(sync(buffered), s.n("buffered")),
    # each select spawns and cancels two tasks: ~50 µs, so fewer rounds
    "select2": lambda s: best_per_op(sync(select2), s.n("select2") // 5),
    "select_default": lambda s: best_per_op(sync(select_default), s.n("select_default")),
    "timer_stop": lambda s: best_per_op(sync(timer_stop), s.n("timer_stop")),
    "mutex_uncontended": lambda s: best_per_op(sync(mutex(1)), s.n("mutex_uncontended")),
    "mutex_contended": lambda s: best_per_op(sync(mutex(common.CONTENDERS)), s.n("mutex_contended")),
    "cancel_fanout": lambda s: best_per_op(sync(cancel_fanout), s.n("cancel_fanout")) / 1e3,
    "timers": lambda s: min(run(timers_once(s.n("timers"))) for _ in range(common.ROUNDS)) / 1e6,
    "rss_parked": lambda s: run(rss_parked(s.n("rss_parked"))),
    "sha256": lambda s: cpu("sha256")(s.n("sha256")),
    "zlib": lambda s: cpu("zlib")(s.n("zlib")),
    "service": lambda s: run(service(s.n("service_rps"))),
}
NOTES = {"select2": "asyncio.wait(FIRST_COMPLETED) over 2 get tasks",
         "timer_stop": "loop.call_later + cancel",
         "mutex_contended": "single-threaded: the lock never contends"}
VERSION = "Python " + sys.version.split()[0]
