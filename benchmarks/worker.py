"""Run one workload of one Python implementation in this process and print
its rows as JSON lines (benchmarks/run.py starts one process per cell, so
memory figures start fresh and no implementation disturbs another).

    python benchmarks/worker.py IMPL WORKLOAD [--quick]

IMPL: pygoro, pygoro-c, threading, asyncio, uvloop, gevent, trio.
WORKLOAD: a name from common.WORKLOADS, or "service" (both service rows)."""

from __future__ import annotations

import importlib
import json
import os
import sys

# beside this file: common, impl_*, peers (added explicitly: under
# PYTHONSAFEPATH=1 the script's directory is not on sys.path)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODULES = {
    "pygoro": "impl_pygoro",
    "pygoro-c": "impl_c",
    "threading": "peers.threads",
    "asyncio": "peers.asyncio_peer",
    "uvloop": "peers.uvloop_peer",
    "gevent": "peers.gevent_peer",
    "trio": "peers.trio_peer",
}


def run(impl: str, workload: str, quick: bool) -> list[dict]:
    """The rows one (implementation, workload) cell produces."""
    import common

    mod = importlib.import_module(MODULES[impl])
    rows = [workload] if workload != "service" else ["service_rps", "service_p99"]
    na = getattr(mod, "NOT_APPLICABLE", {})
    if workload in na or workload not in mod.WORKLOADS:
        why = na.get(workload, "no equivalent")
        return [{"impl": impl, "workload": w, "value": None, "note": why} for w in rows]
    out = mod.WORKLOADS[workload](common.Sizes(quick))
    note = getattr(mod, "NOTES", {}).get(workload, "")
    if isinstance(out, tuple):
        out, note = out
    if not isinstance(out, dict):
        out = {workload: out}
    return [{"impl": impl, "workload": w, "value": float(v), "note": note,
             "version": getattr(mod, "VERSION", "")} for w, v in out.items()]


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    args = [a for a in argv if a != "--quick"]
    if len(args) != 2 or args[0] not in MODULES:
        print(__doc__, file=sys.stderr)
        return 2
    for row in run(args[0], args[1], quick):
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
