"""Timers and sleep in the C core."""

import os

MS = 1_000_000
SLOW = 5 if os.environ.get("PYGORO_SANITIZE") else 1


def test_many_sleepers_overlap(clib):
    ffi, lib = clib
    dt = lib.timer_sleepers(1000, 50 * MS)
    assert 50 * MS <= dt < 2000 * MS * SLOW  # about one sleep, not 1000


def test_timer_fires_once(clib):
    assert clib[1].timer_fires_once(20 * MS) == 1


def test_stop_prevents_firing(clib):
    assert clib[1].timer_stop_prevents(20 * MS) == 1


def test_no_stale_value_after_stop(clib):
    assert clib[1].timer_no_stale_after_stop(20 * MS) == 1


def test_ticker(clib):
    assert clib[1].timer_ticker_ticks(10 * MS, 5) == 1


def test_after_func_runs_once_in_a_goroutine(clib):
    assert clib[1].timer_after_func_runs(10 * MS) == 1


def test_100k_pending_timers(clib):
    per = clib[1].timer_many_pending(100_000)
    assert per > 0
