"""pygoro's Python API: every workload of the table (see common.py).

Each timed section runs in goroutines and reports its elapsed time over a
channel; the main thread only starts them and waits."""

from __future__ import annotations

import time

import pygoro
from pygoro import chan, context, errgroup, go, select
from pygoro import time as gtime

import common
from common import best_per_op, service_delays, service_result

try:  # pygoro.sync (Mutex) lands separately; the mutex rows need it
    from pygoro import sync as _sync
    Mutex = _sync.Mutex
except (ImportError, AttributeError):
    Mutex = None


def in_goroutine(fn) -> int:
    """Run fn() in a goroutine; its elapsed ns."""
    out = chan(1)

    def body():
        t0 = time.perf_counter_ns()
        fn()
        out.send(time.perf_counter_ns() - t0)

    go(body)
    return out.recv()


def spawn_join(n: int) -> int:
    def run():
        done = chan(n)

        def child():
            done.send(None)

        for _ in range(n):
            go(child)
        for _ in range(n):
            done.recv()
    return in_goroutine(run)


def pingpong(n: int) -> int:
    ping, pong, done = chan(), chan(), chan(1)

    def echo():
        for _ in range(n):
            pong.send(ping.recv() + 1)

    def driver():
        t0 = time.perf_counter_ns()
        v = 0
        for _ in range(n):
            ping.send(v)
            v = pong.recv()
        done.send(time.perf_counter_ns() - t0)

    go(echo)
    go(driver)
    return done.recv()


def buffered(n: int) -> int:
    c, done = chan(128), chan(1)

    def producer():
        for i in range(n):
            c.send(i)
        c.close()

    def consumer():
        t0 = time.perf_counter_ns()
        s = 0
        for v in c:
            s += v
        assert s == n * (n - 1) // 2
        done.send(time.perf_counter_ns() - t0)

    go(consumer)
    go(producer)
    return done.recv()


def select2(n: int) -> int:
    def run():
        a, b = chan(1), chan(1)
        ra, rb = a.recv_case(), b.recv_case()
        for _ in range(n):
            a.send(1)
            b.send(2)
            i, _, _ = select(ra, rb)
            (b if i == 0 else a).recv()
    return in_goroutine(run)


def select_default(n: int) -> int:
    def run():
        c = chan()
        rc = c.recv_case()
        for _ in range(n):
            if select(rc, default=True)[0] != -1:
                raise AssertionError("empty channel ready")
    return in_goroutine(run)


def timer_stop(n: int) -> int:
    def run():
        for _ in range(n):
            if not gtime.Timer(3600.0).stop():
                raise AssertionError("timer not pending")
    return in_goroutine(run)


def after_unfired(n: int) -> int:
    """time.after(d) for a timer that never fires: armed, then dropped with
    its channel (what a select's losing `after` case costs)."""
    def run():
        for _ in range(n):
            gtime.after(3600.0)
    return in_goroutine(run)


def mutex(workers: int):
    def run(n: int) -> int:
        mu, done = Mutex(), chan(workers)
        per = n // workers
        count = [0]

        def worker():
            for _ in range(per):
                with mu:
                    count[0] += 1
            done.send(None)

        t0 = time.perf_counter_ns()
        for _ in range(workers):
            go(worker)
        for _ in range(workers):
            done.recv()
        dt = time.perf_counter_ns() - t0
        assert count[0] == per * workers
        return dt
    return run


def cancel_fanout(rounds: int) -> int:
    """A parent context, FANOUT_CHILDREN derived contexts each watched by a
    goroutine; cancel the parent and wait until every child has seen done."""
    k = common.FANOUT_CHILDREN

    def run():
        for _ in range(rounds):
            parent, cancel = context.with_cancel(context.background())
            done = chan(k)

            def child(ctx, cc):
                ctx.done().recv()
                cc()
                done.send(None)

            for _ in range(k):
                go(child, *context.with_cancel(parent))
            cancel()
            for _ in range(k):
                done.recv()
    return in_goroutine(run)


def timers(n: int) -> float:
    def once() -> int:
        done = chan(n)

        def sleeper():
            gtime.sleep(common.TIMER_SLEEP)
            done.send(None)

        def run():
            for _ in range(n):
                go(sleeper)
            for _ in range(n):
                done.recv()
        return in_goroutine(run)
    return min(once() for _ in range(common.ROUNDS)) / 1e6


def rss_parked(n: int) -> float:
    gate, started = chan(), chan(n)

    def parked():        # a Python frame, as a real goroutine has
        started.send(None)
        gate.recv()

    before = common.rss_bytes()
    for _ in range(n):
        go(parked)
    for _ in range(n):
        started.recv()
    time.sleep(0.05)
    per = (common.rss_bytes() - before) / n
    gate.close()
    return per


def cpu(kind: str):
    def parallel(work, buf, jobs):
        done = chan(jobs)

        def job():
            work(buf)
            done.send(None)

        for _ in range(jobs):
            go(job)
        for _ in range(jobs):
            done.recv()

    return lambda jobs: common.cpu_scaling(kind, jobs, parallel)


def service(requests: int) -> dict[str, float]:
    """SERVICE_CLIENTS goroutines issue requests; each request fans out to
    SERVICE_FANOUT backend calls in an errgroup under a context deadline."""
    def backend(ctx, d):
        t = gtime.Timer(d)
        i, _, _ = select(ctx.done_case(), t.c.recv_case())
        if i == 0:
            t.stop()
            raise ctx.err()

    def request(seed):
        with context.with_timeout(context.background(), common.SERVICE_DEADLINE) as (ctx, _):
            g, gctx = errgroup.with_context(ctx)
            for d in service_delays(common.SERVICE_FANOUT, seed):
                g.go(backend, gctx, d)
            g.wait()

    jobs, lat = chan(requests), chan(requests)
    for i in range(requests):
        jobs.send(i)
    jobs.close()

    def client():
        for i in jobs:
            t0 = time.perf_counter()
            request(i)
            lat.send(time.perf_counter() - t0)

    t0 = time.perf_counter_ns()
    for _ in range(common.SERVICE_CLIENTS):
        go(client)
    latencies = [lat.recv() for _ in range(requests)]
    return service_result(latencies, time.perf_counter_ns() - t0)


WORKLOADS = {
    "spawn_join": lambda s: best_per_op(spawn_join, s.n("spawn_join")),
    "pingpong": lambda s: best_per_op(pingpong, s.n("pingpong")),
    "buffered": lambda s: best_per_op(buffered, s.n("buffered")),
    "select2": lambda s: best_per_op(select2, s.n("select2")),
    "select_default": lambda s: best_per_op(select_default, s.n("select_default")),
    "timer_stop": lambda s: best_per_op(timer_stop, s.n("timer_stop")),
    "cancel_fanout": lambda s: best_per_op(cancel_fanout, s.n("cancel_fanout")) / 1e3,
    "timers": lambda s: timers(s.n("timers")),
    "rss_parked": lambda s: rss_parked(s.n("rss_parked")),
    "sha256": lambda s: cpu("sha256")(s.n("sha256")),
    "zlib": lambda s: cpu("zlib")(s.n("zlib")),
    "service": lambda s: service(s.n("service_rps")),
}
NOT_APPLICABLE: dict[str, str] = {}
if Mutex is not None:
    WORKLOADS["mutex_uncontended"] = lambda s: best_per_op(mutex(1), s.n("mutex_uncontended"))
    WORKLOADS["mutex_contended"] = lambda s: best_per_op(mutex(common.CONTENDERS), s.n("mutex_contended"))
else:
    NOT_APPLICABLE["mutex_uncontended"] = NOT_APPLICABLE["mutex_contended"] = \
        "pygoro.sync.Mutex not in this build"

VERSION = pygoro.__version__
