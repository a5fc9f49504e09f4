"""What every implementation of the benchmark table shares: the workloads
(name, unit, direction, sizes), timing helpers and the CPU-bound job.

An implementation module (impl_pygoro, impl_c, peers/*) exposes
``WORKLOADS: dict[str, Callable[[Sizes], float | dict[str, float]]]``: each
function runs one workload at the given sizes and returns its value in the
workload's unit (a dict of row name to value for a workload reporting more
than one row, the service scenario). A workload an implementation has no
equivalent for is missing from its dict, or listed in its ``NOT_APPLICABLE``
with the reason."""

from __future__ import annotations

import os
import time
import zlib
import hashlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Workload:
    """One row of the table. lower: whether a smaller value is better.
    full/quick: the size parameter n for the Python implementations (the C
    core and Go run more iterations of the per-operation rows: see c_scale)."""
    name: str
    title: str
    unit: str
    lower: bool
    full: int
    quick: int
    c_scale: int = 1


WORKLOADS: list[Workload] = [
    Workload("spawn_join", "spawn + join", "ns/op", True, 20_000, 500, 5),
    Workload("pingpong", "unbuffered ping-pong round trip", "ns/op", True, 20_000, 500, 10),
    Workload("buffered", "buffered cap-128 producer→consumer", "ns/item", True, 100_000, 2_000, 20),
    Workload("select2", "select over 2 ready channels (2 sends+select+recv)", "ns/op", True, 30_000, 500, 30),
    Workload("select_default", "select with default, empty channel", "ns/op", True, 100_000, 1_000, 50),
    Workload("timer_stop", "Timer + Stop (after/Timer.stop)", "ns/op", True, 30_000, 500, 30),
    Workload("mutex_uncontended", "mutex lock+unlock, uncontended", "ns/op", True, 200_000, 2_000, 25),
    Workload("mutex_contended", "mutex lock+unlock, 8-way contended", "ns/op", True, 80_000, 800, 25),
    Workload("cancel_fanout", "context cancel fan-out to 1000 children", "µs/op", True, 5, 1, 4),
    Workload("timers", "10k timers (10k sleepers × 10 ms)", "ms", True, 10_000, 10_000),
    Workload("rss_parked", "RSS per parked unit at 100k", "B/unit", True, 100_000, 2_000),
    Workload("sha256", "sha256 over 1 MiB buffers, all cores", "MB/s", False, 128, 4),
    Workload("zlib", "zlib.compress 1 MiB buffers, all cores", "MB/s", False, 16, 2),
    Workload("service_rps", "service: 50-way fan-out per request, requests/s", "req/s", False, 300, 20),
    Workload("service_p99", "service: 50-way fan-out per request, p99 latency", "ms", True, 300, 20),
]
BY_NAME = {w.name: w for w in WORKLOADS}

#: workloads measured together (one run yields both rows)
GROUPS = {"service_rps": "service", "service_p99": "service"}

ROUNDS = 3          # best of ROUNDS timed runs, after one warm-up run
CONTENDERS = 8      # goroutines/threads/tasks in the contended mutex row
FANOUT_CHILDREN = 1000
TIMER_SLEEP = 0.010
SERVICE_CLIENTS = 20
SERVICE_FANOUT = 50
SERVICE_DEADLINE = 1.0   # s: far above the 5 ms a request needs, even on a loaded machine
MIB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    """The n of each workload for one run (full or --quick)."""
    quick: bool

    def n(self, name: str) -> int:
        w = BY_NAME[name]
        return w.quick if self.quick else w.full

    def c_n(self, name: str) -> int:
        return self.n(name) * BY_NAME[name].c_scale


def best_per_op(run: Callable[[int], int], n: int, rounds: int = ROUNDS) -> float:
    """run(n) performs n operations and returns the elapsed ns; the best
    per-operation time over `rounds` runs after a warm-up of n // 10 (the
    least disturbed by other processes on a shared machine)."""
    run(max(1, n // 10))
    return min(run(n) for _ in range(rounds)) / n


def timed(fn: Callable[[], object]) -> int:
    """Elapsed ns of fn()."""
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


def rss_bytes() -> int:
    """Resident set size of this process."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cpu_buffer() -> bytes:
    """1 MiB, half compressible (a repeating pattern) and half random, the
    same mix as the Go program."""
    half = MIB // 2
    return bytes(i % 7 for i in range(half)) + os.urandom(MIB - half)


def cpu_job(kind: str) -> Callable[[bytes], object]:
    """The GIL-releasing work: hashlib.sha256 or zlib.compress (level 6)."""
    if kind == "sha256":
        return lambda b: hashlib.sha256(b).digest()
    return lambda b: zlib.compress(b, 6)


def cpu_scaling(kind: str, jobs: int, parallel: Callable[[Callable[[bytes], object], bytes, int], None]
                ) -> tuple[float, str]:
    """MB/s of `parallel(work, buf, jobs)` (every job run on all cores the
    implementation's way), with a note giving its speedup over the same jobs
    run one after another in the calling thread."""
    work, buf = cpu_job(kind), cpu_buffer()
    work(buf)
    serial = min(timed(lambda: [work(buf) for _ in range(jobs)]) for _ in range(2))
    par = min(timed(lambda: parallel(work, buf, jobs)) for _ in range(2))
    mbs = jobs * MIB / 1e6 / (par / 1e9)
    return mbs, f"{serial / par:.2f}× serial on {os.cpu_count()} cores"


def service_delays(n: int, seed: int) -> list[float]:
    """The simulated backend latencies of one request: uniform 1-5 ms."""
    import random
    r = random.Random(seed)
    return [r.uniform(0.001, 0.005) for _ in range(n)]


def service_result(latencies_s: list[float], elapsed_ns: int) -> dict[str, float]:
    """requests/s and p99 latency (ms) of a service run."""
    lat = sorted(latencies_s)
    k = max(0, -(-len(lat) * 99 // 100) - 1)
    return {"service_rps": len(lat) / (elapsed_ns / 1e9), "service_p99": lat[k] * 1e3}
