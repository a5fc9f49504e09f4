"""sysmon: goroutines blocked in plain blocking calls do not stall the
goroutines queued behind them."""

import threading
import time

import pygoro
from pygoro import runtime


def test_blocking_calls_do_not_stall_the_scheduler():
    old = runtime.gomaxprocs(2)
    try:
        n = 50
        done = threading.Event()
        left = [n]
        lock = threading.Lock()
        progress = [0]
        stop = [False]

        def sleeper():
            time.sleep(0.2)  # blocks its worker thread, GIL released
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    done.set()

        def spinner():
            while not stop[0]:
                progress[0] += 1
                runtime.gosched()

        t0 = time.monotonic()
        pygoro.go(spinner)
        for _ in range(n):
            pygoro.go(sleeper)
        assert done.wait(10)
        elapsed = time.monotonic() - t0
        before = progress[0]
        time.sleep(0.1)
        after = progress[0]
        stop[0] = True
        # 50 sleeps of 0.2 s on 2 Ps would take 5 s without handoff
        assert elapsed < 1.5, elapsed
        assert after > before  # the yielding goroutine kept running
    finally:
        runtime.gomaxprocs(old)
