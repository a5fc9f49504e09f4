"""threading + queue: OS threads, queue.SimpleQueue/Queue, threading.Lock."""

from __future__ import annotations

import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait, FIRST_EXCEPTION

import common
from common import best_per_op, service_delays, service_result

#: threads are 8 MiB-stack OS threads: 100k of them is beyond the default
#: limits of this kind of machine, so the RSS row parks this many
RSS_THREADS = 5_000


def spawn_join(n: int) -> int:
    t0 = time.perf_counter_ns()
    ts = [threading.Thread(target=int) for _ in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter_ns() - t0


def pingpong(n: int) -> int:
    ping, pong = queue.SimpleQueue(), queue.SimpleQueue()

    def echo():
        for _ in range(n):
            pong.put(ping.get() + 1)

    t = threading.Thread(target=echo)
    t.start()
    t0 = time.perf_counter_ns()
    v = 0
    for _ in range(n):
        ping.put(v)
        v = pong.get()
    dt = time.perf_counter_ns() - t0
    t.join()
    return dt


def buffered(n: int) -> int:
    q: queue.Queue = queue.Queue(128)
    end = object()

    def producer():
        for i in range(n):
            q.put(i)
        q.put(end)

    t0 = time.perf_counter_ns()
    t = threading.Thread(target=producer)
    t.start()
    s = 0
    while (v := q.get()) is not end:
        s += v
    dt = time.perf_counter_ns() - t0
    t.join()
    assert s == n * (n - 1) // 2
    return dt


def select_default(n: int) -> int:
    q: queue.SimpleQueue = queue.SimpleQueue()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        try:
            q.get_nowait()
        except queue.Empty:
            pass
    return time.perf_counter_ns() - t0


def timer_stop(n: int) -> int:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        t = threading.Timer(3600.0, int)
        t.start()
        t.cancel()
        t.join()
    return time.perf_counter_ns() - t0


def mutex(workers: int):
    def run(n: int) -> int:
        mu = threading.Lock()
        per = n // workers
        count = [0]

        def worker():
            for _ in range(per):
                with mu:
                    count[0] += 1

        ts = [threading.Thread(target=worker) for _ in range(workers)]
        t0 = time.perf_counter_ns()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter_ns() - t0
    return run


def cancel_fanout(rounds: int) -> int:
    """No context in threading: a threading.Event is the cancel signal that
    1000 threads wait on."""
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        ev = threading.Event()
        ts = [threading.Thread(target=ev.wait) for _ in range(common.FANOUT_CHILDREN)]
        for t in ts:
            t.start()
        ev.set()
        for t in ts:
            t.join()
    return time.perf_counter_ns() - t0


def timers(n: int) -> float:
    def once():
        ts = [threading.Thread(target=time.sleep, args=(common.TIMER_SLEEP,)) for _ in range(n)]
        t0 = time.perf_counter_ns()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter_ns() - t0
    return min(once() for _ in range(common.ROUNDS)) / 1e6


def rss_parked(n: int) -> tuple[float, str]:
    n = min(n, RSS_THREADS)
    ev = threading.Event()
    threading.stack_size(0)
    before = common.rss_bytes()
    ts = [threading.Thread(target=ev.wait) for _ in range(n)]
    for t in ts:
        t.start()
    time.sleep(0.05)
    per = (common.rss_bytes() - before) / n
    ev.set()
    for t in ts:
        t.join()
    return per, f"at {n} threads"


def cpu(kind: str):
    def parallel(work, buf, jobs):
        with ThreadPoolExecutor() as ex:   # min(32, cpus + 4) workers
            list(ex.map(work, [buf] * jobs))
    return lambda jobs: common.cpu_scaling(kind, jobs, parallel)


def service(requests: int) -> dict[str, float]:
    """A shared pool big enough for every concurrent backend call; each
    request waits for its 50 futures with the deadline as timeout."""
    pool = ThreadPoolExecutor(common.SERVICE_CLIENTS * common.SERVICE_FANOUT)
    jobs: queue.SimpleQueue = queue.SimpleQueue()
    for i in range(requests):
        jobs.put(i)
    lat: list[float] = []

    def request(seed):
        fs = [pool.submit(time.sleep, d) for d in service_delays(common.SERVICE_FANOUT, seed)]
        done, pending = wait(fs, timeout=common.SERVICE_DEADLINE, return_when=FIRST_EXCEPTION)
        if pending:
            for f in pending:
                f.cancel()
            raise TimeoutError("deadline exceeded")
        for f in done:
            f.result()

    def client():
        while True:
            try:
                i = jobs.get_nowait()
            except queue.Empty:
                return
            t0 = time.perf_counter()
            request(i)
            lat.append(time.perf_counter() - t0)

    # warm the pool's threads, as a long-running service has them
    list(pool.map(time.sleep, [0.001] * common.SERVICE_CLIENTS * common.SERVICE_FANOUT))
    cs = [threading.Thread(target=client) for _ in range(common.SERVICE_CLIENTS)]
    t0 = time.perf_counter_ns()
    for c in cs:
        c.start()
    for c in cs:
        c.join()
    r = service_result(lat, time.perf_counter_ns() - t0)
    pool.shutdown()
    return r


WORKLOADS = {
    "spawn_join": lambda s: best_per_op(spawn_join, s.n("spawn_join") // 4),
    "pingpong": lambda s: best_per_op(pingpong, s.n("pingpong")),
    "buffered": lambda s: best_per_op(buffered, s.n("buffered")),
    "select_default": lambda s: best_per_op(select_default, s.n("select_default")),
    "timer_stop": lambda s: best_per_op(timer_stop, max(1, s.n("timer_stop") // 20)),
    "mutex_uncontended": lambda s: best_per_op(mutex(1), s.n("mutex_uncontended")),
    "mutex_contended": lambda s: best_per_op(mutex(common.CONTENDERS), s.n("mutex_contended")),
    "cancel_fanout": lambda s: best_per_op(cancel_fanout, s.n("cancel_fanout")) / 1e3,
    "timers": lambda s: timers(s.n("timers")),
    "rss_parked": lambda s: rss_parked(s.n("rss_parked")),
    "sha256": lambda s: cpu("sha256")(s.n("sha256")),
    "zlib": lambda s: cpu("zlib")(s.n("zlib")),
    "service": lambda s: service(s.n("service_rps")),
}
NOTES = {"timer_stop": "threading.Timer: a thread per timer",
         "cancel_fanout": "threading.Event set (no context)"}
NOT_APPLICABLE = {"select2": "no select over queues"}
VERSION = "Python " + sys.version.split()[0]
