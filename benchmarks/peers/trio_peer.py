"""trio: tasks in nurseries, memory channels, trio.Lock, cancel scopes; the
CPU rows use trio.to_thread."""

from __future__ import annotations

import math
import time

import trio

import common
from common import best_per_op, service_delays, service_result


def sync(afn):
    return lambda n: trio.run(afn, n)


async def spawn_join(n: int) -> int:
    async def child():
        pass
    t0 = time.perf_counter_ns()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(child)
    return time.perf_counter_ns() - t0


async def pingpong(n: int) -> int:
    ping_s, ping_r = trio.open_memory_channel(0)
    pong_s, pong_r = trio.open_memory_channel(0)

    async def echo():
        for _ in range(n):
            await pong_s.send(await ping_r.receive() + 1)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        t0 = time.perf_counter_ns()
        v = 0
        for _ in range(n):
            await ping_s.send(v)
            v = await pong_r.receive()
        dt = time.perf_counter_ns() - t0
    return dt


async def buffered(n: int) -> int:
    send, recv = trio.open_memory_channel(128)

    async def producer():
        async with send:
            for i in range(n):
                await send.send(i)

    t0 = time.perf_counter_ns()
    s = 0
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        async for v in recv:
            s += v
    dt = time.perf_counter_ns() - t0
    assert s == n * (n - 1) // 2
    return dt


async def select_default(n: int) -> int:
    _, recv = trio.open_memory_channel(0)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        try:
            recv.receive_nowait()
        except trio.WouldBlock:
            pass
    return time.perf_counter_ns() - t0


async def timer_stop(n: int) -> int:
    """trio's timer is a cancel scope's deadline: arm it, leave it unfired."""
    t0 = time.perf_counter_ns()
    for _ in range(n):
        with trio.move_on_after(3600.0):
            pass
    return time.perf_counter_ns() - t0


def mutex(workers: int):
    async def run_(n: int) -> int:
        mu = trio.Lock()
        per = n // workers
        count = [0]

        async def worker():
            for _ in range(per):
                async with mu:
                    count[0] += 1

        t0 = time.perf_counter_ns()
        async with trio.open_nursery() as nursery:
            for _ in range(workers):
                nursery.start_soon(worker)
        return time.perf_counter_ns() - t0
    return run_


async def cancel_fanout(rounds: int) -> int:
    """1000 tasks sleeping forever in a nursery; cancel its scope."""
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        async with trio.open_nursery() as nursery:
            for _ in range(common.FANOUT_CHILDREN):
                nursery.start_soon(trio.sleep_forever)
            await trio.sleep(0)
            nursery.cancel_scope.cancel()
    return time.perf_counter_ns() - t0


async def timers_once(n: int) -> int:
    t0 = time.perf_counter_ns()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(trio.sleep, common.TIMER_SLEEP)
    return time.perf_counter_ns() - t0


async def rss_parked(n: int) -> float:
    ev = trio.Event()
    before = common.rss_bytes()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(ev.wait)
        await trio.sleep(0.05)
        per = (common.rss_bytes() - before) / n
        ev.set()
    return per


def cpu(kind: str):
    async def parallel_(work, buf, jobs):
        async with trio.open_nursery() as nursery:
            for _ in range(jobs):
                nursery.start_soon(trio.to_thread.run_sync, work, buf)
    return lambda jobs: common.cpu_scaling(kind, jobs, lambda w, b, j: trio.run(parallel_, w, b, j))


async def service(requests: int) -> dict[str, float]:
    send, recv = trio.open_memory_channel(math.inf)
    for i in range(requests):
        send.send_nowait(i)
    send.close()
    lat: list[float] = []

    async def request(seed):
        with trio.fail_after(common.SERVICE_DEADLINE):
            async with trio.open_nursery() as nursery:
                for d in service_delays(common.SERVICE_FANOUT, seed):
                    nursery.start_soon(trio.sleep, d)

    async def client():
        async for i in recv:
            t0 = time.perf_counter()
            await request(i)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter_ns()
    async with trio.open_nursery() as nursery:
        for _ in range(common.SERVICE_CLIENTS):
            nursery.start_soon(client)
    return service_result(lat, time.perf_counter_ns() - t0)


# trio's primitives cost tens of µs per operation (every lock acquire and
# channel send is a checkpoint through the scheduler): a fraction of the
# common sizes gives a stable per-operation figure in a few seconds
SCALE = 10

WORKLOADS = {
    "spawn_join": lambda s: best_per_op(sync(spawn_join), s.n("spawn_join")),
    "pingpong": lambda s: best_per_op(sync(pingpong), s.n("pingpong") // SCALE),
    "buffered": lambda s: best_per_op(sync(buffered), s.n("buffered") // SCALE),
    "select_default": lambda s: best_per_op(sync(select_default), s.n("select_default")),
    "timer_stop": lambda s: best_per_op(sync(timer_stop), s.n("timer_stop")),
    "mutex_uncontended": lambda s: best_per_op(sync(mutex(1)), s.n("mutex_uncontended") // SCALE),
    "mutex_contended": lambda s: best_per_op(sync(mutex(common.CONTENDERS)), s.n("mutex_contended") // SCALE),
    "cancel_fanout": lambda s: best_per_op(sync(cancel_fanout), s.n("cancel_fanout")) / 1e3,
    "timers": lambda s: min(trio.run(timers_once, s.n("timers")) for _ in range(common.ROUNDS)) / 1e6,
    "rss_parked": lambda s: trio.run(rss_parked, s.n("rss_parked")),
    "sha256": lambda s: cpu("sha256")(s.n("sha256")),
    "zlib": lambda s: cpu("zlib")(s.n("zlib")),
    "service": lambda s: trio.run(service, s.n("service_rps")),
}
NOTES = {"timer_stop": "move_on_after scope, unfired",
         "mutex_contended": "single-threaded: the lock never contends"}
NOT_APPLICABLE = {"select2": "no select over memory channels"}
VERSION = "trio " + trio.__version__
