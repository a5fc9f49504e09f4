"""Randomized stress of the Python API with exact accounting of every value.

Goroutines and threading.Threads draw operations at random from their own
seeded generators: blocking sends and receives, recv_ok, selects of up to
four cases (some disabled) ending by default, by timeout, by a
pygoro.time.after() case, by a context's done case or by a case alone;
sends through select; helper goroutines that send one value; random closes
(the channel is replaced in its slot); context trees canceled at random and
deadlines expiring; gomaxprocs changes; sleeps and yields; and, when
pygoro.sync exists, Mutex-guarded increments, RWMutex readers checking that
no write is seen half-done, a Once per round, and helpers joined by
WaitGroup.go.

Accounting: every value is a unique int. A send that returned marks it sent,
a send that raised ClosedChannelError marks it failed (provably undelivered:
the channel was closed); every receive is recorded. To end a round the
driver cancels the round's context and swaps every slot for a closed
channel, closing what it took out, so every blocked operation returns; it
joins the workers and drains the buffers. Then: received == sent exactly
(no loss, no duplicate), failed ∩ received is empty, and the goroutine count
is back to its baseline.

Duration: 8 s, or PYGORO_SOAK seconds; PYGORO_STRESS_SEED repeats a run's
choices (the interleaving is the scheduler's). The seed is printed, and the
figures (operations, values conserved, goroutines started, time) too.
"""

from __future__ import annotations

import collections
import os
import random
import sys
import threading
import time
import traceback

import pygoro
from pygoro import ClosedChannelError, context, runtime, select
from pygoro import time as gotime

try:  # pygoro.sync lands from another branch
    from pygoro import sync as gosync
except ImportError:  # pragma: no cover - depends on the merge state
    gosync = None

CAPS = (0, 0, 0, 1, 2, 8, 64)
IDS_PER_WORKER = 1 << 32


class Round:
    """Shared state of one round: channel slots, contexts, tallies."""

    def __init__(self, rng: random.Random, nchan: int) -> None:
        self.stop = False
        self.slots = [pygoro.chan(rng.choice(CAPS)) for _ in range(nchan)]
        self.all = list(self.slots)  # every channel made this round
        self.sentinel = pygoro.chan()
        self.sentinel.close()
        self.lock = threading.Lock()  # guards slot replacement and self.all
        self.ctx, self.cancel = context.with_cancel(context.background())
        # per-worker tallies are merged at the end; lists append atomically
        self.sent: list[int] = []
        self.failed: list[int] = []
        self.received: list[int] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.helpers = pygoro.chan(1 << 20)  # each helper sends a token when done
        self.nhelpers = 0
        self.guarded = 0
        self.mu = gosync.Mutex() if gosync else None
        # helpers are joined through a WaitGroup when pygoro.sync exists
        self.wg = gosync.WaitGroup() if gosync else None
        # writers keep pair[0] == pair[1] under the write lock; readers check
        self.rw = gosync.RWMutex() if gosync else None
        self.pair = [0, 0]
        self.once = gosync.Once() if gosync else None
        self.once_calls = 0

    def replace_and_close(self, rng: random.Random) -> bool:
        i = rng.randrange(len(self.slots))
        with self.lock:
            old = self.slots[i]
            if old is self.sentinel:
                return False
            new = pygoro.chan(rng.choice(CAPS))
            self.slots[i] = new
            self.all.append(new)
        old.close()  # only the replacer closes it
        try:
            old.close()
        except ClosedChannelError:
            return True
        raise AssertionError("second close did not raise ClosedChannelError")

    def end(self) -> None:
        self.stop = True
        self.cancel()
        with self.lock:
            taken = list(self.slots)
            self.slots[:] = [self.sentinel] * len(self.slots)
        for c in taken:
            if not c.closed:
                try:
                    c.close()
                except ClosedChannelError:
                    pass  # its replacer closed it meanwhile


class Worker:
    def __init__(self, rnd: Round, index: int, seed: int) -> None:
        self.r = rnd
        self.rng = random.Random(seed)
        self.next_id = index * IDS_PER_WORKER
        self.counts: collections.Counter[str] = collections.Counter()

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def chan(self) -> pygoro.Chan:
        return self.rng.choice(self.r.slots)

    def send(self, ch: pygoro.Chan, v: int) -> None:
        try:
            ch.send(v)
        except ClosedChannelError:
            self.r.failed.append(v)
        else:
            self.r.sent.append(v)

    def got(self, v: object, ok: bool) -> None:
        if ok:
            assert isinstance(v, int), v
            self.r.received.append(v)

    def select_op(self) -> None:
        rng, r = self.rng, self.r
        cases: list = []
        ids: dict[int, int] = {}
        for i in range(rng.randint(1, 4)):
            if rng.random() < 0.12:
                cases.append(None)
            elif rng.random() < 0.5:
                ids[i] = self.new_id()
                cases.append(self.chan().send_case(ids[i]))
            else:
                cases.append(self.chan().recv_case())
        how = rng.randrange(5)
        kw: dict = {}
        extra = None
        if how == 0:
            kw["default"] = True
        elif how == 1:
            kw["timeout"] = rng.random() * 0.002
        elif how == 2:
            extra = "timer"
            cases.append(gotime.after(rng.random() * 0.002).recv_case())
        elif how == 3:
            extra = "ctx"
            sub, cancel = context.with_timeout(r.ctx, rng.random() * 0.003)
            if rng.random() < 0.3:
                cancel()
            cases.append(sub.done_case())
        if all(c is None for c in cases) and not kw:
            kw["default"] = True  # select over nothing would block forever
        try:
            i, v, ok = select(*cases, **kw)
        except ClosedChannelError:
            # some send case's channel was closed: which one is unknown, so
            # none of the ids may have been delivered (checked at the end)
            self.r.failed.extend(ids.values())
            self.counts["select_closed"] += 1
            return
        finally:
            if extra == "ctx":
                cancel()
        self.counts["selects"] += 1
        if i < 0:
            self.counts["select_none"] += 1
        elif i in ids:
            self.r.sent.append(ids[i])
        elif i == len(cases) - 1 and extra is not None:
            self.counts[f"select_{extra}"] += 1
        else:
            self.got(v, ok)

    def rw_op(self) -> None:
        r = self.r
        if self.rng.random() < 0.2:
            with r.rw:
                r.pair[0] += 1
                if self.rng.random() < 0.3:
                    runtime.gosched()  # hold the write lock across a park
                r.pair[1] += 1
            self.counts["rw_writes"] += 1
        else:
            with r.rw.rlocker():
                a = r.pair[0]
                if self.rng.random() < 0.1:
                    runtime.gosched()
                assert a == r.pair[0] == r.pair[1], "a reader saw a half-done write"
            self.counts["rw_reads"] += 1
        if self.rng.random() < 0.05:
            self.counts["once_tries"] += 1
            r.once.do(self.once_fn)

    def once_fn(self) -> None:
        self.r.once_calls += 1

    def helper(self, ch: pygoro.Chan, v: int) -> None:
        try:
            self.send(ch, v)
        finally:
            self.r.helpers.send(None)

    def run(self) -> None:
        rng, r = self.rng, self.r
        try:
            while not r.stop:
                self.counts["ops"] += 1
                op = rng.random()
                if op < 0.18:
                    self.send(self.chan(), self.new_id())
                elif op < 0.36:
                    self.got(*self.chan().recv_ok())
                elif op < 0.42:
                    v = self.chan().recv()
                    self.got(v, v is not None)
                elif op < 0.70:
                    self.select_op()
                elif op < 0.74:
                    if r.wg is not None:
                        r.wg.go(self.send, self.chan(), self.new_id())
                    else:
                        with r.lock:
                            r.nhelpers += 1
                        pygoro.go(self.helper, self.chan(), self.new_id())
                    self.counts["helpers"] += 1
                elif op < 0.80:
                    # wait on the round's context or a channel, whichever first
                    sub, cancel = context.with_cancel(r.ctx)
                    if rng.random() < 0.5:
                        cancel()
                    i, v, ok = select(self.chan().recv_case(), sub.done_case())
                    cancel()
                    if i == 0:
                        self.got(v, ok)
                    else:
                        assert sub.err() is not None
                        self.counts["ctx_done"] += 1
                elif op < 0.83 and r.mu is not None:
                    with r.mu:
                        r.guarded += 1
                    self.counts["mutex_adds"] += 1
                elif op < 0.86 and r.rw is not None:
                    self.rw_op()
                elif op < 0.92:
                    runtime.gosched()
                elif op < 0.97:
                    gotime.sleep(rng.random() * 0.0005)
                elif op < 0.985:
                    if r.replace_and_close(rng):
                        self.counts["closes"] += 1
        except BaseException as e:  # a violation seen on the spot: fail the round
            r.errors.append(f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        finally:
            with r.lock:
                r.counts.update(self.counts)


def _procs_changer(r: Round, seed: int, done: pygoro.Chan) -> None:
    rng = random.Random(seed)
    try:
        while not r.stop:
            runtime.gomaxprocs(rng.randint(1, 3))
            r.counts["procs_changes"] += 1
            gotime.sleep(0.002 + rng.random() * 0.004)
    finally:
        done.send(None)


def run_round(seed: int, seconds: float, totals: collections.Counter) -> None:
    rng = random.Random(seed)
    r = Round(rng, rng.randint(1, 8))
    ngor = rng.choice((4, 16, 64, 256)) if rng.random() < 0.9 else 2000
    nthreads = rng.randint(0, 3)
    done = pygoro.chan(ngor + 1)
    workers = [Worker(r, i, rng.getrandbits(64)) for i in range(ngor + nthreads)]

    def in_goroutine(w: Worker) -> None:
        try:
            w.run()
        finally:
            done.send(None)

    for w in workers[:ngor]:
        pygoro.go(in_goroutine, w)
    threads = [threading.Thread(target=w.run) for w in workers[ngor:]]
    for t in threads:
        t.start()
    pygoro.go(_procs_changer, r, rng.getrandbits(64), done)
    time.sleep(seconds)
    r.end()
    for _ in range(ngor + 1):
        done.recv()
    for t in threads:
        t.join()
    # helpers started before the end: each sends a token when finished
    for _ in range(r.nhelpers):
        r.helpers.recv()
    if r.wg is not None:
        r.wg.wait()
    drained = 0
    for c in r.all:
        for v in c:  # closed: iteration ends once drained
            r.received.append(v)
            drained += 1

    where = f"seed {seed}"
    assert not r.errors, f"{where}: {len(r.errors)} workers failed; first:\n{r.errors[0]}"
    counts = collections.Counter(r.received)
    dups = [v for v, n in counts.items() if n > 1]
    assert not dups, f"{where}: received twice: {dups[:5]}"
    sent, failed, got = set(r.sent), set(r.failed), set(counts)
    assert len(sent) == len(r.sent), f"{where}: an id sent twice"
    assert got - sent == set(), f"{where}: received but never sent OK: {sorted(got - sent)[:5]}"
    assert sent - got == set(), f"{where}: sent OK, never received: {sorted(sent - got)[:5]}"
    assert failed & got == set(), f"{where}: failed send delivered: {sorted(failed & got)[:5]}"
    if r.mu is not None:
        assert r.guarded == r.counts["mutex_adds"], where
        assert r.pair == [r.counts["rw_writes"]] * 2, where
        tried = r.counts["once_tries"] > 0
        assert r.once_calls == int(tried) and r.once.done() == tried, where
    totals.update(r.counts)
    totals.update(sent=len(sent), failed=len(failed), received=len(r.received),
                  drained=drained, threads=nthreads, rounds=1,
                  goroutines=ngor + 1 + r.counts["helpers"])


def test_random_traffic_conserves_every_value():
    seed = int(os.environ.get("PYGORO_STRESS_SEED") or random.SystemRandom().getrandbits(63))
    soak = os.environ.get("PYGORO_SOAK")
    seconds = float(soak) if soak else 8.0
    print(f"\nPython stress seed {seed} ({seconds:g} s)", file=sys.stderr)
    rng = random.Random(seed)
    base = runtime.num_goroutine()
    procs = runtime.gomaxprocs()
    totals: collections.Counter[str] = collections.Counter()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            run_round(rng.getrandbits(64), min(0.05 + rng.random() * 0.5, seconds), totals)
    finally:
        runtime.gomaxprocs(procs)
    elapsed = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while runtime.num_goroutine() != base and time.monotonic() < deadline:
        time.sleep(0.005)
    leftover = runtime.num_goroutine() - base
    print(f"Python stress: {dict(totals)}, time {elapsed:.1f} s, leftover goroutines {leftover}",
          file=sys.stderr)
    assert leftover == 0, f"seed {seed}: {leftover} goroutines left behind"
    # the run did what it claims to (counts, not timings)
    assert totals["rounds"] >= 2
    assert totals["sent"] > 100 and totals["received"] == totals["sent"], totals
    assert totals["failed"] > 0 and totals["closes"] > 0, totals
    assert totals["select_none"] > 0 and totals["ctx_done"] > 0, totals
    assert totals["procs_changes"] > 0, totals
    if gosync is not None:
        assert totals["mutex_adds"] > 0 and totals["rw_reads"] > 0 and totals["rw_writes"] > 0
