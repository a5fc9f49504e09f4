"""The example programs run and print exactly what they should.

Every example prints only deterministic facts (counts, results, booleans
that cannot flip under load), so each test compares the whole output."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name: str) -> str:
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr  # no traceback from a goroutine either
    return r.stdout


def test_hello():
    assert run_example("hello.py").splitlines() == [
        "hello, gopher",
        "hello, pythonista",
        "hello, world",
    ]


def test_leak():
    assert run_example("leak.py").splitlines() == [
        "leak(): goroutines before 0, after 1, leaked 1",
        "We received a value: 1",
        "We received a value: 2",
        "no_leak(): goroutines before 1, after 1, leaked 0",
    ]


def test_search_timeout():
    assert run_example("search_timeout.py").splitlines() == [
        "== result channel capacity 0",
        "process: search canceled: context deadline exceeded",
        "Number of goroutines before: 0",
        "Number of goroutines after : 1",
        "Number of goroutines leaked: 1",
        "== result channel capacity 1",
        "process: search canceled: context deadline exceeded",
        "Number of goroutines before: 1",
        "Number of goroutines after : 1",
        "Number of goroutines leaked: 0",
    ]


def test_tracker_chan():
    assert run_example("tracker_chan.py").splitlines() == [
        "== normal shutdown",
        "recorded event 0",
        "recorded event 1",
        "recorded event 2",
        "shutdown: all events recorded",
        "== a full queue and a caller's deadline",
        "event 0: queued",
        "event 1: queued",
        "event 2: context deadline exceeded",
        "recorded event 0",
        "recorded event 1",
        "shutdown: all queued events recorded",
        "== shutdown while the event store is down",
        "shutdown: context deadline exceeded",
    ]


def test_first():
    assert run_example("first.py").splitlines() == [
        "first_leaky     6 results for 'golang'; goroutines leaked: 2",
        "first_buffered  6 results for 'golang'; goroutines leaked: 0",
        "first_drop      6 results for 'golang'; goroutines leaked: 0",
        "first_done      6 results for 'golang'; goroutines leaked: 0",
    ]


def test_account():
    assert run_example("account.py").splitlines() == [
        "balance after 100 customers x 10 x (+10, -5): 5100",
        "withdraw 1000000 refused: balance 5100, asked for 1000000",
        "balance unchanged: 5100",
        "goroutines left: 0",
    ]


def test_servers():
    assert run_example("servers.py").splitlines() == [
        "app   GET /             -> 200 Hello, QCon!",
        "app   GET /             -> 200 Hello, QCon!",
        "app   GET /             -> 200 Hello, QCon!",
        "debug GET /debug/vars   -> 200 goroutines=4",
        "debug GET /debug/crash  -> connection closed without a response",
        "debug server exited: RuntimeError('debug handler crashed')",
        "app server exited: shut down gracefully",
        "requests served: app 3, debug 1",
        "goroutines left: 0",
    ]


def test_bounded():
    assert run_example("bounded.py").splitlines() == [
        "20 good files:",
        "  never more than 3 in flight: True",
        "  20 digests, combined aa03f57db5e50268",
        "file07.txt is unreadable:",
        "  never more than 3 in flight: True",
        "  wait() raised the first error: OSError('file07.txt: unreadable')",
    ]


def test_thread_server():
    assert run_example("thread_server.py").splitlines() == [
        "GOOG,MSFT              -> 200 GOOG=180 MSFT=420",
        "AAPL                   -> 200 AAPL=230",
        "GOOG,MSFT,AAPL,AMZN    -> 200 GOOG=180 MSFT=420 AAPL=230 AMZN=190",
        "AMZN,SLOW              -> 504 deadline exceeded",
        "MSFT                   -> 200 MSFT=420",
        "NOPE                   -> 404 unknown symbol 'NOPE'",
        "AAPL,GOOG              -> 200 AAPL=230 GOOG=180",
        "SLOW                   -> 504 deadline exceeded",
        "goroutines left after shutdown: 0",
    ]


def test_tracker():
    assert run_example("tracker.py").splitlines() == [
        "shutdown: all finished, 10 of 10 events recorded",
        "shutdown: timed out (context deadline exceeded), 0 of 10 events recorded",
        "after the store recovered: 10 of 10 events recorded",
    ]


def test_pipeline():
    assert run_example("pipeline.py").splitlines() == [
        "pipeline gen(1..10) -> sq -> sum: 385",
        "fan-out to 2 sq workers, fan-in: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]",
        "cancellation: took 1 of 2000 squares, then closed stop",
        "goroutines left after the three pipelines: 0",
        "drop: sent 5, dropped 15; the consumer later gets [0, 1, 2, 3, 4]",
    ]


def test_config_cow():
    assert run_example("config_cow.py").splitlines() == [
        "8 readers, 16000 reads, 200 reloads",
        "torn configs seen: 0",
        "a reader saw the version go backwards: 0",
        "final version: 200",
    ]
