"""pygoro.sync: Mutex costs, in C and from Python, next to threading, asyncio
and gevent.

    python -m pytest benchmarks/test_sync.py --benchmark-only -s

C figures come from C loops (tests/c/helpers/sync.c, no per-iteration Python
cost). Python figures include the loop and the with statement, the same for
every library compared. "Yielding" rows hold the lock across a switch to
another task: pygoro's runtime.gosched(), time.sleep(0) for threads,
asyncio.sleep(0), gevent.sleep(0) - the cost of contended hand-over between
tasks of one library, 8 tasks, ns per critical section."""

from __future__ import annotations

import threading
import time

import pytest

import pygoro
from pygoro import runtime
from pygoro.sync import Mutex, WaitGroup

GOROUTINE, PTHREAD = 0, 1
N_TASKS = 8


# ---- C core ---------------------------------------------------------------


def test_c_mutex_uncontended(clib, per_op):
    ffi, lib = clib
    n = 5_000_000
    per_op(lambda: lib.sync_mutex_uncontended_ns(n) * n, n)


def _c_mutex_contended(lib, tasks: int, kind: int, n: int) -> int:
    per = lib.sync_mutex_contended_ns(tasks, kind, n)
    assert per > 0, "the C loop lost an update"
    return per * tasks * n


def test_c_mutex_contended_8_goroutines(clib, per_op):
    ffi, lib = clib
    n = 200_000
    per_op(lambda: _c_mutex_contended(lib, N_TASKS, GOROUTINE, n), N_TASKS * n)


@pytest.mark.parametrize("kind", [GOROUTINE, PTHREAD], ids=["goroutines", "threads"])
def test_c_mutex_contended_2(clib, per_op, kind):
    """Two goroutines, or two plain threads, on one Mutex."""
    ffi, lib = clib
    n = 200_000
    per_op(lambda: _c_mutex_contended(lib, 2, kind, n), 2 * n)


def test_c_rwmutex_rlock_runlock_uncontended(clib, per_op):
    ffi, lib = clib
    n = 2_000_000
    per_op(lambda: lib.sync_rw_uncontended_read_ns(n) * n, n)


def test_c_once_do_when_done(clib, per_op):
    """goro_once_do after the first call: the one-atomic-load fast path."""
    ffi, lib = clib
    n = 5_000_000
    per_op(lambda: lib.sync_once_done_ps(n) * n // 1000, n)


def _percentile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[int(q * (len(sorted_ns) - 1))] / 1e3


def test_c_mutex_contended_8_goroutines_bystander(clib, benchmark):
    """The 8-way contended Mutex again, with one more goroutine sleeping
    200 us in a loop beside the contenders: how late its wakeups run is how
    long a goroutine queued next to a busy lock waits for a CPU (the cost
    of letting contenders spin with work queued: sync_runtime_can_spin in
    csrc/sched/proc.c). Prints ns per Lock+Unlock and the lateness p50/p90
    in microseconds; test_go_mutex_contended_8_goroutines_bystander prints
    Go's."""
    ffi, lib = clib
    n = 250_000
    late = ffi.new("int64_t[8192]")
    nlate = ffi.new("int *")
    rows: list[tuple[float, float, float]] = []

    def once() -> None:
        dt = lib.bench_mutex_bystander(N_TASKS, n, 200_000, late, 8192, nlate)
        assert dt > 0, "the C loop lost an update"
        assert nlate[0] > 0, "the bystander never woke"
        got = sorted(late[i] for i in range(nlate[0]))
        rows.append((dt / (N_TASKS * n), _percentile(got, 0.5), _percentile(got, 0.9)))

    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
    for ns, p50, p90 in rows[1:]:
        print(f"  {benchmark.name}: {ns:.1f} ns per op, bystander late p50 {p50:.0f} us, "
              f"p90 {p90:.0f} us")
    benchmark.extra_info["rounds"] = [
        {"ns_per_op": round(ns, 1), "late_p50_us": p50, "late_p90_us": p90} for ns, p50, p90 in rows[1:]]


def test_go_mutex_contended_8_goroutines_bystander(benchmark, gobench):
    """Go's figure for the same program (benchmarks/go: mutexBystander),
    three rounds."""
    import json
    import subprocess

    exe, env = gobench
    rows: list[dict] = []

    def once() -> None:
        out = subprocess.run([exe, "mutex_contended_bystander"], capture_output=True, text=True,
                             env=env, timeout=300, check=True).stdout
        rows.extend(json.loads(line) for line in out.splitlines())

    benchmark.pedantic(once, rounds=1, iterations=1)
    for r in rows:
        print(f"  {benchmark.name}: {r['value']:.1f} ns per op, {r['note']}")
    benchmark.extra_info["rounds"] = rows


# ---- Python, uncontended ------------------------------------------------------


def _with_loop(lk, n: int) -> int:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        with lk:
            pass
    return time.perf_counter_ns() - t0


def test_py_mutex_uncontended(per_op):
    mu = Mutex()
    n = 500_000
    per_op(lambda: _with_loop(mu, n), n)


def test_py_mutex_lock_unlock_calls(per_op):
    mu = Mutex()
    n = 500_000

    def run() -> int:
        lock, unlock = mu.lock, mu.unlock
        t0 = time.perf_counter_ns()
        for _ in range(n):
            lock()
            unlock()
        return time.perf_counter_ns() - t0

    per_op(run, n)


def test_threading_lock_uncontended(per_op):
    lk = threading.Lock()
    n = 500_000
    per_op(lambda: _with_loop(lk, n), n)


def test_threading_lock_acquire_release_calls(per_op):
    lk = threading.Lock()
    n = 500_000

    def run() -> int:
        acquire, release = lk.acquire, lk.release
        t0 = time.perf_counter_ns()
        for _ in range(n):
            acquire()
            release()
        return time.perf_counter_ns() - t0

    per_op(run, n)


def test_py_rlock_uncontended(per_op):
    from pygoro.sync import RLock

    rl = RLock()
    n = 500_000
    per_op(lambda: _with_loop(rl, n), n)


def test_threading_rlock_uncontended(per_op):
    rl = threading.RLock()
    n = 500_000
    per_op(lambda: _with_loop(rl, n), n)


# ---- 8 tasks contending, yielding inside the lock -----------------------------


def test_py_mutex_8_goroutines_yielding(per_op):
    n = 5_000
    mu = Mutex()

    def worker() -> None:
        for _ in range(n):
            with mu:
                runtime.gosched()

    def run() -> int:
        wg = WaitGroup()
        t0 = time.perf_counter_ns()
        for _ in range(N_TASKS):
            wg.go(worker)
        wg.wait()
        return time.perf_counter_ns() - t0

    per_op(run, N_TASKS * n)


def test_threading_lock_8_threads_yielding(per_op):
    n = 500
    lk = threading.Lock()

    def worker() -> None:
        for _ in range(n):
            with lk:
                time.sleep(0)

    def run() -> int:
        ts = [threading.Thread(target=worker) for _ in range(N_TASKS)]
        t0 = time.perf_counter_ns()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return time.perf_counter_ns() - t0

    per_op(run, N_TASKS * n, rounds=3)


def test_asyncio_lock_8_tasks_yielding(per_op):
    asyncio = pytest.importorskip("asyncio")
    n = 5_000

    async def main() -> int:
        lk = asyncio.Lock()

        async def worker() -> None:
            for _ in range(n):
                async with lk:
                    await asyncio.sleep(0)

        t0 = time.perf_counter_ns()
        await asyncio.gather(*(worker() for _ in range(N_TASKS)))
        return time.perf_counter_ns() - t0

    per_op(lambda: asyncio.run(main()), N_TASKS * n)


def test_gevent_semaphore_8_greenlets_yielding(per_op):
    gevent = pytest.importorskip("gevent", reason="gevent is not installed (pip install gevent)")
    from gevent.lock import Semaphore

    n = 5_000

    def run() -> int:
        sem = Semaphore(1)

        def worker() -> None:
            for _ in range(n):
                with sem:
                    gevent.sleep(0)

        t0 = time.perf_counter_ns()
        gevent.joinall([gevent.spawn(worker) for _ in range(N_TASKS)])
        return time.perf_counter_ns() - t0

    per_op(run, N_TASKS * n)
