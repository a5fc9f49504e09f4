"""Randomized stress of the C core with exact accounting (helpers/stress.c).

Goroutines and pthreads make random blocking and non-blocking sends and
receives, selects with defaults, timeouts and timer-channel cases, random
closes, helper goroutines, Mutex-guarded increments, while GOMAXPROCS changes
under them. Every value sent OK is received exactly once, every value whose
send failed on a closed channel is never received, and the goroutine count
returns to where it was.

Duration: 20 s by default, 6 s under a sanitizer (with fewer goroutines: TSAN
supports at most 8128 live ones), or PYGORO_SOAK seconds. PYGORO_STRESS_SEED
repeats a run's choices (the interleaving is the scheduler's)."""

from __future__ import annotations

import os
import random
import sys

FIELDS = (
    "ops", "sent", "failed", "received", "selects", "select_none", "timer_fires", "closes",
    "goroutines", "threads", "procs_changes", "rounds", "mutex_adds", "drained", "leftover",
    "elapsed_ns",
)

SANITIZED = bool(os.environ.get("PYGORO_SANITIZE"))


def _settings() -> tuple[float, float, int, int]:
    """(seconds, longest round in seconds, max goroutine workers per round,
    max pthreads per round)"""
    soak = os.environ.get("PYGORO_SOAK")
    if SANITIZED:
        seconds, round_s, workers, threads = 6.0, 0.15, 200, 3
    else:
        seconds, round_s, workers, threads = 20.0, 0.5, 2000, 4
    if soak:
        seconds = float(soak)
    return seconds, round_s, workers, threads


def test_random_channel_traffic_conserves_every_value(clib):
    ffi, lib = clib
    seed = int(os.environ.get("PYGORO_STRESS_SEED") or random.SystemRandom().getrandbits(63))
    seconds, round_s, workers, threads = _settings()
    out = ffi.new("int64_t[16]")
    print(f"\nC stress seed {seed} ({seconds:g} s, <= {workers} goroutine workers, "
          f"<= {threads} pthreads per round)", file=sys.stderr)
    errors = lib.stress_run(seed, int(seconds * 1e9), int(round_s * 1e9), workers, threads, 4, out)
    stats = dict(zip(FIELDS, out))
    print("C stress:", stats, file=sys.stderr)
    assert errors == 0, f"seed {seed}: {errors} violations (see stderr); {stats}"
    assert stats["leftover"] == 0, f"seed {seed}"
    # the run really exercised what it claims to (counts, not timings)
    assert stats["rounds"] >= 2
    assert stats["sent"] > 1000 and stats["received"] == stats["sent"], stats
    assert stats["failed"] > 0 and stats["closes"] > 0, stats
    assert stats["select_none"] > 0 and stats["timer_fires"] > 0, stats
    assert stats["procs_changes"] > 0 and stats["mutex_adds"] > 0, stats
    assert stats["goroutines"] > stats["rounds"] * 2, stats
