"""Channels and select, driven from C goroutines and pthreads (no GIL).

The C drivers (helpers/chan.c) check exactly-once delivery, ordering and
wakeups as they go and return the number of violations; Python asserts that
it is 0 and checks the counters they report."""

import os

import pytest

SANITIZED = bool(os.environ.get("PYGORO_SANITIZE"))
SCALE = 10 if SANITIZED else 1

# helper "kinds" bits: senders pthreads, receivers pthreads, alternate
GOROUTINES, SEND_THREADS, RECV_THREADS, ALTERNATE = 0, 1, 2, 4

MS = 1_000_000
GORO_OK, GORO_CLOSED, GORO_WOULDBLOCK, GORO_INTERRUPTED, GORO_EINVAL = 0, 1, 2, 4, 5
SELECT_NONE, SELECT_INTERRUPTED, SELECT_CLOSED_BASE = -1, -2, -1000
RECV, SEND = 1, 2


def primes(n):
    out, k = [], 2
    while len(out) < n:
        if all(k % p for p in out):
            out.append(k)
        k += 1
    return out


@pytest.fixture
def procs2(clib):
    """Run at GOMAXPROCS=2 (the machine's cores), then restore."""
    ffi, lib = clib
    old = lib.goro_gomaxprocs(2)
    yield clib
    lib.goro_gomaxprocs(old)


# ---- basic API from Python (non-blocking calls only) ----


def test_try_ops_len_cap_close(clib):
    ffi, lib = clib
    c = lib.goro_chan_new(8, 2)
    assert lib.goro_chan_cap(c) == 2 and lib.goro_chan_len(c) == 0
    assert lib.goro_chan_elemsize(c) == 8
    v = ffi.new("int64_t *", 7)
    ok = ffi.new("bool *", True)
    assert lib.goro_chan_try_recv(c, v, ok) == GORO_WOULDBLOCK and not ok[0]
    assert lib.goro_chan_try_send(c, v) == GORO_OK
    v[0] = 8
    assert lib.goro_chan_try_send(c, v) == GORO_OK
    assert lib.goro_chan_try_send(c, v) == GORO_WOULDBLOCK
    assert lib.goro_chan_len(c) == 2
    assert lib.goro_chan_close(c) == GORO_OK
    assert lib.goro_chan_close(c) == GORO_CLOSED
    assert lib.goro_chan_closed(c)
    assert lib.goro_chan_try_send(c, v) == GORO_CLOSED
    assert lib.goro_chan_send(c, v) == GORO_CLOSED
    for want in (7, 8):
        assert lib.goro_chan_try_recv(c, v, ok) == GORO_OK and ok[0] and v[0] == want
    v[0] = 99
    assert lib.goro_chan_try_recv(c, v, ok) == GORO_OK and not ok[0] and v[0] == 0
    assert lib.goro_chan_recv(c, v, ok) == GORO_OK and not ok[0]
    assert lib.goro_chan_try_recv(c, ffi.NULL, ffi.NULL) == GORO_OK
    lib.goro_chan_free(c)


def test_unbuffered_try_ops_need_a_partner(clib):
    ffi, lib = clib
    c = lib.goro_chan_new(8, 0)
    v = ffi.new("int64_t *", 1)
    ok = ffi.new("bool *")
    assert lib.goro_chan_try_send(c, v) == GORO_WOULDBLOCK
    assert lib.goro_chan_try_recv(c, v, ok) == GORO_WOULDBLOCK
    assert lib.goro_chan_len(c) == 0 and lib.goro_chan_cap(c) == 0
    lib.goro_chan_close(c)
    assert lib.goro_chan_try_recv(c, v, ok) == GORO_OK and not ok[0]
    lib.goro_chan_free(c)


def test_nil_channel(clib):
    ffi, lib = clib
    v = ffi.new("int64_t *", 1)
    ok = ffi.new("bool *")
    assert lib.goro_chan_try_send(ffi.NULL, v) == GORO_WOULDBLOCK
    assert lib.goro_chan_try_recv(ffi.NULL, v, ok) == GORO_WOULDBLOCK
    assert lib.goro_chan_close(ffi.NULL) == GORO_EINVAL
    assert lib.goro_chan_len(ffi.NULL) == 0 and lib.goro_chan_cap(ffi.NULL) == 0


def test_new_rejects_overflow(clib):
    ffi, lib = clib
    assert lib.goro_chan_new(1 << 40, 1 << 40) == ffi.NULL


def test_select_default_and_null_cases(clib):
    ffi, lib = clib
    a = lib.goro_chan_new(8, 1)
    b = lib.goro_chan_new(8, 0)
    va, vb = ffi.new("int64_t *", 5), ffi.new("int64_t *", 6)
    cases = ffi.new("goro_select_case[4]")
    cases[0] = (ffi.NULL, RECV, vb, False)
    cases[1] = (a, RECV, va, False)
    cases[2] = (b, RECV, vb, False)
    cases[3] = (ffi.NULL, SEND, vb, False)
    # nothing ready: default
    assert lib.goro_select(cases, 4, 0) == SELECT_NONE
    # all disabled, default
    assert lib.goro_select(cases, 1, 0) == SELECT_NONE
    assert lib.goro_select(ffi.NULL, 0, 0) == SELECT_NONE
    # a value in a: case 1, never a NULL case
    one = ffi.new("int64_t *", 41)
    for _ in range(50):
        assert lib.goro_chan_try_send(a, one) == GORO_OK
        va[0] = 0
        assert lib.goro_select(cases, 4, -1) == 1
        assert va[0] == 41 and cases[1].recv_ok
    # send case into a's free slot, alone with default (the one-case path)
    cases[1] = (a, SEND, one, False)
    assert lib.goro_select(cases, 2, 0) == 1
    assert lib.goro_select(cases, 2, 0) == SELECT_NONE  # full now
    # closed channel: send case reports CLOSED_BASE - i
    lib.goro_chan_close(b)
    cases[2] = (b, SEND, vb, False)
    assert lib.goro_select(cases, 4, 0) == SELECT_CLOSED_BASE - 2
    # closed receive case is ready with recv_ok false
    cases[2] = (b, RECV, vb, False)
    vb[0] = 3
    r = lib.goro_select(cases, 4, 0)
    assert r == 2 and not cases[2].recv_ok and vb[0] == 0
    lib.goro_chan_free(a)
    lib.goro_chan_free(b)


def test_elements_zero_size_large_and_free_elems(clib):
    ffi, lib = clib
    assert lib.chan_elems() == 0
    released = ffi.new("int64_t[2]")
    # ring wrapped: 13 values through cap 5, 2 more taken: 3 left (10, 11, 12)
    assert lib.chan_free_elems_check(5, 13, 2, released) == 0
    assert list(released) == [3, 10 + 11 + 12]
    assert lib.chan_free_elems_check(4, 0, 0, released) == 0
    assert list(released) == [0, 0]


# ---- goroutines ----


@pytest.mark.parametrize("in_goroutine", [0, 1])
def test_prime_sieve(procs2, in_goroutine):
    ffi, lib = procs2
    out = ffi.new("int64_t[100]")
    assert lib.chan_sieve(100, out, in_goroutine) == 0
    assert list(out) == primes(100)


@pytest.mark.parametrize("cap", [0, 1, 16])
@pytest.mark.parametrize("nsend,nrecv", [(1, 1), (4, 4), (8, 2), (2, 8)])
def test_mpmc_exactly_once(procs2, cap, nsend, nrecv):
    ffi, lib = procs2
    per = 20000 // SCALE // nsend
    count, total = ffi.new("int64_t *"), ffi.new("int64_t *")
    assert lib.chan_mpmc(nsend, nrecv, per, cap, GOROUTINES, count, total) == 0
    n = nsend * per
    assert count[0] == n and total[0] == n * (n - 1) // 2


@pytest.mark.parametrize("kinds", [SEND_THREADS, RECV_THREADS, SEND_THREADS | RECV_THREADS,
                                   ALTERNATE])
@pytest.mark.parametrize("cap", [0, 4])
def test_threads_and_goroutines_share_a_channel(procs2, kinds, cap):
    ffi, lib = procs2
    per = 5000 // SCALE
    count, total = ffi.new("int64_t *"), ffi.new("int64_t *")
    assert lib.chan_mpmc(3, 3, per, cap, kinds, count, total) == 0
    assert count[0] == 3 * per


@pytest.mark.parametrize("cap", [0, 1, 3, 64])
def test_fifo_order(procs2, cap):
    ffi, lib = procs2
    assert lib.chan_fifo(50000 // SCALE, cap) == 0


@pytest.mark.parametrize("cap", [0, 1, 4])
def test_full_buffer_receiver_moves_waiting_sender_in(procs2, cap):
    ffi, lib = procs2
    assert lib.chan_full_handoff(cap, 5) == 0


def test_close_wakes_receivers_and_fails_senders(procs2):
    ffi, lib = procs2
    assert lib.chan_close_wakes(6, 6, 4, GOROUTINES) == 0


def test_close_wakes_blocked_threads(procs2):
    ffi, lib = procs2
    assert lib.chan_close_wakes(3, 3, 2, RECV_THREADS) == 0


@pytest.mark.parametrize("cap", [1, 5])
def test_close_drains_buffer_first(clib, cap):
    ffi, lib = clib
    assert lib.chan_close_drains(cap) == 0


# ---- select ----


@pytest.mark.parametrize("dup", [0, 1])
@pytest.mark.parametrize("kinds", [GOROUTINES, SEND_THREADS | RECV_THREADS])
def test_select_senders_and_receivers_conserve(procs2, dup, kinds):
    ffi, lib = procs2
    caps = ffi.new("int[]", [0, 1, 3, 0])
    chosen = ffi.new("int64_t[64]")
    per = 20000 // SCALE
    assert lib.chan_select_mpmc(4, caps, 4, 4, per, dup, kinds, chosen) == 0
    ncases = 4 + (2 if dup else 0)
    assert sum(chosen[i] for i in range(ncases)) == 4 * per
    if dup:
        assert chosen[4] == 0, "a NULL case was chosen"
        assert chosen[5] > 0, "the duplicate case of channel 0 was never chosen"


def test_select_many_cases_heap_path(procs2):
    ffi, lib = procs2
    caps = ffi.new("int[]", [i % 3 for i in range(12)])
    chosen = ffi.new("int64_t[64]")
    per = 10000 // SCALE
    assert lib.chan_select_mpmc(12, caps, 3, 3, per, 1, GOROUTINES, chosen) == 0
    assert sum(chosen[i] for i in range(14)) == 3 * per
    assert chosen[12] == 0


def test_select_send_and_receive_same_channel(procs2):
    ffi, lib = procs2
    sends = ffi.new("int64_t *")
    rounds = 50000 // SCALE
    assert lib.chan_select_same_chan(rounds, sends) == 0
    assert sends[0] == rounds


@pytest.mark.parametrize("nready", [2, 3])
def test_select_fairness(clib, nready):
    ffi, lib = clib
    iters = 10000 * nready
    counts = ffi.new("int64_t[32]")
    assert lib.chan_select_fairness(iters, nready, counts) == 0
    # even slots are NULL cases
    assert all(counts[2 * i] == 0 for i in range(nready))
    for i in range(nready):
        share = counts[2 * i + 1] / iters
        # expected 1/nready; binomial sd ~ 0.005 here: allow 8x that
        assert abs(share - 1 / nready) < 0.04, list(counts)[: 2 * nready]


def test_select_fairness_mixed_case_kinds(clib):
    ffi, lib = clib
    counts = ffi.new("int64_t[3]")
    assert lib.chan_select_fairness_mixed(30000, counts) == 0
    for i in range(3):
        assert abs(counts[i] / 30000 - 1 / 3) < 0.04, list(counts)


def test_select_writes_only_the_winning_receive_buffer(clib):
    """A losing or timed-out receive case's buffer is untouched, even when a
    send case of the same select sends from it; a close gives the winning
    receive case the zero value."""
    assert clib[1].chan_select_buffers() == 0


@pytest.mark.parametrize("nchans", [0, 1, 2, 4])
@pytest.mark.parametrize("where", ["thread", "goroutine"])
def test_select_timeout(clib, nchans, where):
    ffi, lib = clib
    elapsed = ffi.new("int64_t *")
    fn = lib.chan_select_timeout if where == "thread" else lib.chan_select_timeout_in_goroutine
    r = fn(20 * MS, nchans, elapsed)
    assert r == SELECT_NONE  # -100 would mean a stale sudog was left queued
    assert 20 * MS <= elapsed[0] < 2000 * MS


def test_select_timeout_races_senders(procs2):
    ffi, lib = procs2
    timeouts = ffi.new("int64_t *")
    per = 5000 // SCALE
    assert lib.chan_select_timeout_race(4, 4, per, 30_000, timeouts) == 0
    # 30 us timeouts against senders that pause: some must have expired
    assert timeouts[0] > 0


# ---- interruptible plain threads ----


@pytest.mark.parametrize("mode", [0, 1, 2, 3], ids=["recv", "select-recv", "send", "select-send"])
@pytest.mark.parametrize("cap", [0, 2])
def test_interrupted_waits_withdraw_or_complete(procs2, mode, cap):
    """A signalled interruptible thread retries its operation; every value
    must still be delivered exactly once, whether each signal made it
    withdraw or arrived after a partner had committed."""
    ffi, lib = procs2
    interrupted, commits = ffi.new("int64_t *"), ffi.new("int64_t *")
    n = 20000 // SCALE
    assert lib.chan_interrupt(mode, n, cap, interrupted, commits) == 0
    assert interrupted[0] > 0, "no wait was interrupted: the test did not test anything"


@pytest.mark.parametrize("mode,want", [(0, GORO_INTERRUPTED), (1, GORO_INTERRUPTED),
                                       (2, SELECT_INTERRUPTED), (3, GORO_INTERRUPTED),
                                       (4, SELECT_INTERRUPTED)],
                         ids=["recv", "send", "select", "nil-recv", "select-no-cases"])
def test_interrupted_lone_wait(clib, mode, want):
    ffi, lib = clib
    queued = ffi.new("int *")
    assert lib.chan_interrupt_lone(mode, queued) == want
    assert queued[0] == 0


# ---- ping-pong ----


def test_pingpong_echoes_every_value_in_order(procs2):
    """Two goroutines bounce a counter over two unbuffered channels; each
    value must come back as sent. (Its speed is benchmarks/test_chan.py's.)"""
    ffi, lib = procs2
    errs = ffi.new("int64_t *")
    assert lib.chan_pingpong(100000 // SCALE, errs) > 0
    assert errs[0] == 0
