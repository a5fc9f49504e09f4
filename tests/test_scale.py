"""Many parked Python goroutines under the default OS limits, and Ctrl-C
delivered to a main thread parked in the runtime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pygoro
from pygoro import runtime


def _wait_count(target: int, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while runtime.num_goroutine() < target:
        assert time.monotonic() < deadline, (runtime.num_goroutine(), target)
        time.sleep(0.01)


def test_100k_parked_python_goroutines():
    with open("/proc/sys/vm/max_map_count") as f:
        max_maps = int(f.read())
    n = 100_000
    base = runtime.num_goroutine()
    gate = pygoro.chan()
    results = pygoro.chan(n)

    def parked(i):
        gate.recv()  # parks until the gate closes
        results.send(i)

    for i in range(n):
        pygoro.go(parked, i)
    _wait_count(base + n)
    with open("/proc/self/maps") as f:
        assert sum(1 for _ in f) < max_maps
    gate.close()
    got = sorted(results.recv() for _ in range(n))
    assert got == list(range(n))


_INTERRUPT_RACE = """
import signal, threading, time
import pygoro
ch = pygoro.chan()
sent = []
stop = [False]
def sender():
    i = 0
    while not stop[0]:
        try:
            ch.send(i)
        except pygoro.ClosedChannelError:
            return
        sent.append(i)
        i += 1
        if i % 50 == 0:
            time.sleep(0.001)
pygoro.go(sender)
handled = [0]
def on_sigint(signum, frame):
    handled[0] += 1   # returns normally: the interrupted wait must resume
signal.signal(signal.SIGINT, on_sigint)
main = threading.main_thread().ident
def interrupter():
    for _ in range(200):
        time.sleep(0.002)
        signal.pthread_kill(main, signal.SIGINT)
threading.Thread(target=interrupter).start()
got = []
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    if len(got) % 2:
        got.append(ch.recv())
    else:
        i, v, ok = pygoro.select(ch.recv_case(), None)
        got.append(v)
stop[0] = True
while True:
    i, v, ok = pygoro.select(ch.recv_case(), timeout=0.2)
    if i < 0:
        break
    got.append(v)
ch.close()
time.sleep(0.05)
print("handled", handled[0])
print("exact", sorted(got) == sent, len(got), len(sent))
"""


def test_signals_during_channel_waits_lose_and_duplicate_nothing():
    """The main thread's recv/select waits are cut short by signals hundreds
    of times while a goroutine keeps sending: each interrupted wait is
    withdrawn (or completed, if a sender had already committed to it), and
    every value sent is received exactly once."""
    r = subprocess.run([sys.executable, "-c", _INTERRUPT_RACE], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    handled = int(r.stdout.split("handled")[1].split()[0])
    assert handled > 0, r.stdout
    assert "exact True" in r.stdout, r.stdout


def test_ctrl_c_reaches_main_thread_parked_in_the_runtime():
    code = textwrap.dedent(
        """
        import signal, threading, time
        import pygoro
        main = threading.main_thread().ident
        def kill_soon():
            time.sleep(0.3)
            signal.pthread_kill(main, signal.SIGINT)
        for what in ("recv", "select", "send"):
            ch = pygoro.chan()
            threading.Thread(target=kill_soon).start()
            t0 = time.monotonic()
            try:
                if what == "recv":
                    ch.recv()
                elif what == "select":
                    pygoro.select(ch.recv_case(), None)
                else:
                    ch.send("lost?")
            except KeyboardInterrupt:
                print(what, "interrupted after %.1f" % (time.monotonic() - t0))
            # the withdrawn wait left nothing behind: a later exchange is exact
            pygoro.go(ch.send, "after")
            print(what, "then", ch.recv(), len(ch))
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for what in ("recv", "select", "send"):
        assert f"{what} interrupted after 0." in r.stdout, r.stdout
        assert f"{what} then after 0" in r.stdout, r.stdout
