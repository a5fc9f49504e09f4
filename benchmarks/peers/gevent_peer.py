"""gevent: greenlets, gevent.queue, gevent.lock, gevent.Timeout; the CPU rows
use the hub's thread pool (gevent's way to run blocking C work)."""

from __future__ import annotations

import time

import gevent
import gevent.event
import gevent.lock
import gevent.pool
import gevent.queue

import common
from common import best_per_op, service_delays, service_result


def spawn_join(n: int) -> int:
    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(int) for _ in range(n)])
    return time.perf_counter_ns() - t0


def pingpong(n: int) -> int:
    ping, pong = gevent.queue.Channel(), gevent.queue.Channel()

    def echo():
        for _ in range(n):
            pong.put(ping.get() + 1)

    g = gevent.spawn(echo)
    t0 = time.perf_counter_ns()
    v = 0
    for _ in range(n):
        ping.put(v)
        v = pong.get()
    dt = time.perf_counter_ns() - t0
    g.join()
    return dt


def buffered(n: int) -> int:
    q = gevent.queue.Queue(128)

    def producer():
        for i in range(n):
            q.put(i)
        q.put(StopIteration)

    t0 = time.perf_counter_ns()
    g = gevent.spawn(producer)
    s = sum(q)       # iteration ends at StopIteration
    dt = time.perf_counter_ns() - t0
    g.join()
    assert s == n * (n - 1) // 2
    return dt


def select_default(n: int) -> int:
    q = gevent.queue.Queue()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        try:
            q.get_nowait()
        except gevent.queue.Empty:
            pass
    return time.perf_counter_ns() - t0


def timer_stop(n: int) -> int:
    loop = gevent.get_hub().loop
    t0 = time.perf_counter_ns()
    for _ in range(n):
        t = loop.timer(3600.0)
        t.start(int)
        t.close()
    return time.perf_counter_ns() - t0


def mutex(workers: int):
    def run(n: int) -> int:
        mu = gevent.lock.Semaphore()
        per = n // workers
        count = [0]

        def worker():
            for _ in range(per):
                with mu:
                    count[0] += 1

        t0 = time.perf_counter_ns()
        gevent.joinall([gevent.spawn(worker) for _ in range(workers)])
        return time.perf_counter_ns() - t0
    return run


def cancel_fanout(rounds: int) -> int:
    """1000 greenlets waiting forever in a Group; Group.kill() cancels them."""
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        grp = gevent.pool.Group()
        ev = gevent.event.Event()
        for _ in range(common.FANOUT_CHILDREN):
            grp.spawn(ev.wait)
        gevent.sleep(0)     # let them start waiting
        grp.kill()
    return time.perf_counter_ns() - t0


def timers(n: int) -> float:
    def once():
        t0 = time.perf_counter_ns()
        gevent.joinall([gevent.spawn(gevent.sleep, common.TIMER_SLEEP) for _ in range(n)])
        return time.perf_counter_ns() - t0
    return min(once() for _ in range(common.ROUNDS)) / 1e6


def rss_parked(n: int) -> float:
    ev = gevent.event.Event()
    before = common.rss_bytes()
    gs = [gevent.spawn(ev.wait) for _ in range(n)]
    gevent.sleep(0.05)
    per = (common.rss_bytes() - before) / n
    ev.set()
    gevent.joinall(gs)
    return per


def cpu(kind: str):
    def parallel(work, buf, jobs):
        pool = gevent.get_hub().threadpool
        gevent.joinall([pool.spawn(work, buf) for _ in range(jobs)])
    return lambda jobs: common.cpu_scaling(kind, jobs, parallel)


def service(requests: int) -> dict[str, float]:
    jobs = gevent.queue.Queue()
    for i in range(requests):
        jobs.put(i)
    lat: list[float] = []

    def request(seed):
        with gevent.Timeout(common.SERVICE_DEADLINE):
            gs = [gevent.spawn(gevent.sleep, d) for d in service_delays(common.SERVICE_FANOUT, seed)]
            gevent.joinall(gs, raise_error=True)

    def client():
        while not jobs.empty():
            i = jobs.get_nowait()
            t0 = time.perf_counter()
            request(i)
            lat.append(time.perf_counter() - t0)

    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(client) for _ in range(common.SERVICE_CLIENTS)], raise_error=True)
    return service_result(lat, time.perf_counter_ns() - t0)


WORKLOADS = {
    "spawn_join": lambda s: best_per_op(spawn_join, s.n("spawn_join")),
    "pingpong": lambda s: best_per_op(pingpong, s.n("pingpong")),
    "buffered": lambda s: best_per_op(buffered, s.n("buffered")),
    "select_default": lambda s: best_per_op(select_default, s.n("select_default")),
    "timer_stop": lambda s: best_per_op(timer_stop, s.n("timer_stop")),
    "mutex_uncontended": lambda s: best_per_op(mutex(1), s.n("mutex_uncontended")),
    "mutex_contended": lambda s: best_per_op(mutex(common.CONTENDERS), s.n("mutex_contended")),
    "cancel_fanout": lambda s: best_per_op(cancel_fanout, s.n("cancel_fanout")) / 1e3,
    "timers": lambda s: timers(s.n("timers")),
    "rss_parked": lambda s: rss_parked(s.n("rss_parked")),
    "sha256": lambda s: cpu("sha256")(s.n("sha256")),
    "zlib": lambda s: cpu("zlib")(s.n("zlib")),
    "service": lambda s: service(s.n("service_rps")),
}
NOTES = {"timer_stop": "hub.loop.timer start + close",
         "cancel_fanout": "Group.kill() of 1000 waiting greenlets",
         "mutex_contended": "single-threaded: the lock never contends"}
NOT_APPLICABLE = {"select2": "no select over queues"}
VERSION = "gevent " + gevent.__version__
