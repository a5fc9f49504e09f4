"""pygoro.chan and select from Python: goroutines and threads."""

from __future__ import annotations

import sys
import threading
import time

import pytest

import pygoro
from pygoro import ClosedChannelError, chan, go, select


def run_in_goroutine(fn, *args):
    out = chan(1)

    def wrapper():
        try:
            out.send((True, fn(*args)))
        except BaseException as e:  # returned to the test, not to excepthook
            out.send((False, e))

    go(wrapper)
    ok, v = out.recv()
    if not ok:
        raise v
    return v


def test_unbuffered_handoff_and_fifo():
    c = chan()
    go(lambda: [c.send(i) for i in range(100)])
    assert [c.recv() for _ in range(100)] == list(range(100))


def test_buffered_len_cap_and_close_drains():
    c = chan(3)
    assert c.cap == 3 and len(c) == 0
    c.send(1)
    c.send(2)
    assert len(c) == 2
    c.close()
    assert c.closed
    assert c.recv_ok() == (1, True)
    assert c.recv() == 2
    assert c.recv_ok() == (None, False)
    assert c.recv() is None


def test_iteration_ends_when_closed_and_drained():
    c = chan(2)

    def producer():
        for i in range(10):
            c.send(i)
        c.close()

    go(producer)
    assert list(c) == list(range(10))


def _send_and_report(c, results):
    """Send 1 on c, then report on results whether the send went through or
    the channel was closed under it."""
    try:
        c.send(1)
        results.send(("send", "ok"))
    except ClosedChannelError:
        results.send(("send", "closed"))


def test_close_wakes_blocked_receivers_and_fails_blocked_senders():
    r, s = chan(), chan()
    results = chan(10)
    for _ in range(3):
        go(lambda: results.send(("recv", r.recv_ok())))
    for _ in range(2):
        go(_send_and_report, s, results)
    time.sleep(0.1)
    r.close()
    s.close()
    got = sorted(results.recv() for _ in range(5))
    assert got == [("recv", (None, False))] * 3 + [("send", "closed")] * 2


@pytest.mark.parametrize("closer", ["thread", "goroutine"])
def test_close_many_wakes_every_waiter_of_every_channel(closer):
    """_core._close_many (pygoro.context's batched cancel): each channel is
    closed, and all their receivers and senders wake, whether the closer is
    a plain thread (one batch into the global queue) or a goroutine (its
    P's run queue)."""
    from pygoro import _core

    chans = [chan() for _ in range(40)]
    results = chan(200)
    for i, c in enumerate(chans):
        if i % 4:
            for _ in range(3):
                go(lambda c=c: results.send(("recv", c.recv_ok())))
        else:  # senders on their own channels, or they meet a receiver
            go(_send_and_report, c, results)
    time.sleep(0.1)
    if closer == "thread":
        _core._close_many(chans)
    else:
        run_in_goroutine(_core._close_many, tuple(chans))
    got = sorted(results.recv() for _ in range(100))
    assert got == [("recv", (None, False))] * 90 + [("send", "closed")] * 10
    assert all(c.closed for c in chans)


def test_close_many_bad_input_still_wakes_what_it_closed():
    from pygoro import _core

    a, b, c = chan(), chan(), chan()
    woke = chan(2)
    go(lambda: woke.send(a.recv_ok()))
    go(lambda: woke.send(c.recv_ok()))
    time.sleep(0.05)
    with pytest.raises(TypeError, match="item 1: expected a Chan, not int"):
        _core._close_many([a, 7, c])
    assert woke.recv() == (None, False)  # a was closed, and its waiter woke
    assert a.closed and not c.closed
    b.close()
    with pytest.raises(ClosedChannelError):
        _core._close_many([c, b])
    assert woke.recv() == (None, False)
    with pytest.raises(TypeError, match="list or tuple"):
        _core._close_many(None)
    _core._close_many([])


def test_close_errors():
    c = chan()
    c.close()
    with pytest.raises(ClosedChannelError):
        c.close()
    with pytest.raises(ClosedChannelError):
        c.send(1)


def test_bad_capacity():
    with pytest.raises(ValueError):
        chan(-1)
    with pytest.raises(TypeError):
        chan("3")
    with pytest.raises(ValueError):
        chan(1 << 40)


def test_directional_views():
    c = chan(1)
    s, r = c.send_only(), c.recv_only()
    s.send(5)
    assert r.recv() == 5
    with pytest.raises(TypeError, match="send on receive-only"):
        r.send(1)
    with pytest.raises(TypeError, match="close of receive-only"):
        r.close()
    with pytest.raises(TypeError, match="receive from send-only"):
        s.recv()
    assert s.cap == r.cap == 1
    s.close()
    assert list(r) == []


def test_select_default_timeout_and_none_cases():
    a = chan(1)
    assert select(a.recv_case(), default=True) == (-1, None, False)
    t0 = time.monotonic()
    assert select(a.recv_case(), None, timeout=0.05) == (-1, None, False)
    assert time.monotonic() - t0 >= 0.04
    a.send("v")
    assert select(None, a.recv_case()) == (1, "v", True)
    assert select(a.send_case("w"), None) == (0, None, True)
    assert a.recv() == "w"
    with pytest.raises(TypeError):
        select("not a case")
    with pytest.raises(ValueError):
        select(a.recv_case(), timeout=-1)


def test_select_with_one_receive_case_is_a_receive():
    """select(c.recv_case()) with no default and no timeout takes the plain
    receive path (as Go compiles a one-case select); the results are the
    select's: (0, value, True), then (0, None, False) once closed and
    drained, from a goroutine parked in it as from the main thread."""
    c = chan(1)
    c.send("buffered")
    assert select(c.recv_case()) == (0, "buffered", True)
    got = chan(2)
    go(lambda: got.send(select(c.recv_case())))
    go(lambda: got.send(select(c.recv_only().recv_case())))
    time.sleep(0.05)  # both park in the select
    c.send("handed")
    c.close()
    assert sorted([got.recv(), got.recv()], key=repr) == [(0, "handed", True), (0, None, False)]
    assert select(c.recv_case()) == (0, None, False)
    with pytest.raises(TypeError):
        select(c.send_only().recv_case())


def test_select_fairness():
    a, b = chan(1), chan(1)
    counts = [0, 0]
    for _ in range(10000):
        a.send(1) if len(a) == 0 else None
        b.send(1) if len(b) == 0 else None
        i, _, _ = select(a.recv_case(), b.recv_case())
        counts[i] += 1
    assert 4000 < counts[0] < 6000, counts


def test_select_send_on_closed_raises():
    a = chan(1)
    a.close()
    with pytest.raises(ClosedChannelError):
        select(a.send_case(1))


def test_prime_sieve():
    def generate(ch):
        i = 2
        while True:
            ch.send(i)
            i += 1

    def filt(src, dst, prime):
        for v in src:
            if v % prime:
                dst.send(v)

    def sieve(n):
        ch = chan()
        go(generate, ch)
        primes = []
        for _ in range(n):
            p = ch.recv()
            primes.append(p)
            nxt = chan()
            go(filt, ch, nxt, p)
            ch = nxt
        return primes

    primes = run_in_goroutine(sieve, 100)
    assert primes[:10] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    assert primes[-1] == 541


def test_many_senders_receivers_selecting_exactly_once():
    chans = [chan(c) for c in (0, 1, 4)]
    n_senders, per = 6, 500
    results = chan(n_senders * per)
    done = chan(16)

    def sender(k):
        for i in range(per):
            v = k * per + i
            cases = [c.send_case(v) for c in chans]
            select(*cases)
        done.send(("sender", k))

    def receiver():
        while True:
            i, v, ok = select(*(c.recv_case() for c in chans), timeout=1.0)
            if i < 0:
                break
            results.send(v)
        done.send(("receiver", None))

    for k in range(n_senders):
        go(sender, k)
    for _ in range(3):
        go(receiver)
    for _ in range(n_senders + 3):
        done.recv()
    got = sorted(results.recv() for _ in range(len(results)))
    assert got == list(range(n_senders * per))


def test_threads_and_goroutines_share_a_channel():
    c = chan()
    total = chan(10)

    def thread_sender(base):
        for i in range(200):
            c.send(base + i)

    threads = [threading.Thread(target=thread_sender, args=(k * 1000,)) for k in range(2)]
    for t in threads:
        t.start()
    go(lambda: [c.send(5000 + i) for i in range(200)])

    def goroutine_receiver():
        total.send(sorted(c.recv() for _ in range(300)))

    go(goroutine_receiver)
    mine = [c.recv() for _ in range(300)]
    for t in threads:
        t.join()
    assert sorted(mine + total.recv()) == sorted(
        list(range(200)) + list(range(1000, 1200)) + list(range(5000, 5200)))


def test_references_are_handed_over_not_leaked():
    sentinel = object()
    base = sys.getrefcount(sentinel)
    c = chan(8)
    for _ in range(1000):
        c.send(sentinel)
        assert c.recv() is sentinel
    for _ in range(8):
        c.send(sentinel)
    assert sys.getrefcount(sentinel) == base + 8
    del c  # buffered references are released with the channel
    assert sys.getrefcount(sentinel) == base
    d = chan()
    cases = [d.send_case(sentinel)]
    assert select(*cases, default=True)[0] == -1
    del cases
    assert sys.getrefcount(sentinel) == base


def test_deadlock_error_when_nothing_can_wake_the_main_thread():
    # In a fresh interpreter: under pytest-timeout's watchdog thread another
    # thread exists that could in principle send, so no deadlock is declared.
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import pygoro
        from pygoro import chan, go, select
        def idle():
            chan().recv()          # a goroutine asleep forever, too
        go(idle)
        for op in (lambda: chan().recv(), lambda: chan().send(1),
                   lambda: select(chan().recv_case(), None),
                   lambda: select(chan().recv_case())):
            try:
                op()
            except pygoro.DeadlockError as e:
                print("DeadlockError:", e)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("DeadlockError: all goroutines are asleep - deadlock!") == 4, r.stdout


def test_no_deadlock_error_while_another_thread_can_send():
    c = chan()
    t = threading.Timer(0.3, c.send, args=("late",))
    t.start()
    assert c.recv() == "late"
    t.join()


def test_signal_that_interrupts_no_system_call_still_reaches_a_blocked_main_thread():
    """_thread.interrupt_main() trips SIGINT's handler the way a signal does
    but delivers no signal, so no futex wait returns EINTR: the same as a
    real Ctrl-C landing while the main thread is between two waits. The
    periodic check must see the tripped handler and raise KeyboardInterrupt
    from recv, send, select, sleep and Mutex.lock, each withdrawn cleanly.
    A pending timer keeps the runtime from looking idle (an idle runtime's
    deadlock check would find the signal by another road)."""
    import subprocess
    import textwrap

    code = textwrap.dedent(
        """
        import _thread, threading, time
        import pygoro
        from pygoro import chan, select
        from pygoro.sync import Mutex
        import pygoro.time as gtime
        # One interrupter thread, also keeping the program from looking
        # deadlocked: 50 ms after each request it trips SIGINT. (A thread
        # started per op could fire before start() returned: on 3.13t a
        # start() there has taken 50-150 ms.)
        request, stop = threading.Event(), False
        def interrupter():
            while True:
                request.wait()
                request.clear()
                if stop:
                    return
                time.sleep(0.05)
                _thread.interrupt_main()
        t = threading.Thread(target=interrupter)
        t.start()
        mu = Mutex(); mu.lock()
        far = gtime.Timer(3600)  # a pending timer: the runtime is not idle
        c = chan()
        ops = {"recv": c.recv, "send": lambda: c.send(1),
               "select": lambda: select(c.recv_case()),
               "sleep": lambda: gtime.sleep(3600), "lock": mu.lock}
        for name, op in ops.items():
            try:
                request.set()
                op()
            except KeyboardInterrupt:
                print(name, "interrupted")
        # nothing was left queued: a sender and a receiver still pair up
        pygoro.go(c.send, "v")
        print("after:", c.recv())
        stop = True
        request.set()
        t.join()
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n") == [
        "recv interrupted", "send interrupted", "select interrupted",
        "sleep interrupted", "lock interrupted", "after: v", "",
    ], r.stdout + r.stderr
