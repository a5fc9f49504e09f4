"""pygoro's C core: the workloads run as C loops in C goroutines
(tests/c/helpers/bench.c, built with the C tests' cffi harness), so no
Python cost is paid per iteration. cffi releases the GIL around each call."""

from __future__ import annotations

import os
import sys

import common
from common import best_per_op

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "c"))

import build  # noqa: E402  (tests/c/build.py)

ffi, lib = build.build()
lib.goro_runtime_start(0)


def checked(r: int) -> int:
    if r < 0:
        raise RuntimeError("C benchmark loop reported a wrong result")
    return r


def per_op(fn):
    return lambda n: checked(fn(n))


def cancel_fanout(rounds: int) -> int:
    return sum(checked(lib.bench_close_fanout(common.FANOUT_CHILDREN)) for _ in range(rounds))


WORKLOADS = {
    "spawn_join": lambda s: best_per_op(per_op(lib.bench_spawn_join), s.c_n("spawn_join")),
    "pingpong": lambda s: best_per_op(per_op(lib.bench_pingpong), s.c_n("pingpong")),
    "buffered": lambda s: best_per_op(lambda n: checked(lib.bench_buffered(n, 128)), s.c_n("buffered")),
    "select2": lambda s: best_per_op(per_op(lib.bench_select2), s.c_n("select2")),
    "select_default": lambda s: best_per_op(per_op(lib.bench_select_default), s.c_n("select_default")),
    "timer_stop": lambda s: best_per_op(per_op(lib.bench_timer_stop), s.c_n("timer_stop")),
    "mutex_uncontended": lambda s: best_per_op(lambda n: checked(lib.bench_mutex(1, n)),
                                               s.c_n("mutex_uncontended")),
    "mutex_contended": lambda s: best_per_op(
        lambda n: checked(lib.bench_mutex(common.CONTENDERS, n // common.CONTENDERS)),
        s.c_n("mutex_contended") // common.CONTENDERS * common.CONTENDERS),
    # no context package in C: a context's cancel is the close of its done
    # channel, so this row is a close waking 1000 blocked receivers
    "cancel_fanout": lambda s: best_per_op(cancel_fanout, s.c_n("cancel_fanout")) / 1e3,
    "timers": lambda s: min(checked(lib.bench_sleepers(s.n("timers"), int(common.TIMER_SLEEP * 1e9)))
                            for _ in range(common.ROUNDS)) / 1e6,
    "rss_parked": lambda s: float(lib.bench_rss_parked(s.n("rss_parked"))),
}
NOTES = {"cancel_fanout": "close of one done channel (no context in C)"}
NOT_APPLICABLE = {w: "Python-level work" for w in ("sha256", "zlib", "service")}
VERSION = "cffi " + __import__("cffi").__version__
