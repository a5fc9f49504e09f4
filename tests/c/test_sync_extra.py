"""Pool, the weighted Semaphore and the atomics (csrc/sync/pool.c,
semaphore.c, pygoro.h), driven from C goroutines and pthreads (no GIL).

The C drivers (helpers/sync_extra.c) check their invariants as they go and
return the number of violations; Python asserts that it is 0 and checks the
figures they report."""

import os

import pytest

SANITIZED = bool(os.environ.get("PYGORO_SANITIZE"))
SCALE = 10 if SANITIZED else 1

GORO_OK, GORO_WOULDBLOCK, GORO_TIMEOUT = 0, 2, 3
GORO_EINVAL, GORO_EMISUSE, GORO_CANCELED = 5, 7, 8
GOROUTINE, THREAD = 0, 1
PARK, SELECT = 0, 1
FOREVER = -1


# ---- Pool ----


@pytest.mark.parametrize(
    "ngor,nthreads,drain",
    [(8, 0, 0), (8, 3, 0), (6, 2, 1)],
    ids=["8-goroutines", "8-goroutines+3-threads", "with-concurrent-drain"],
)
def test_pool_conservation(procs2, ngor, nthreads, drain):
    """No object is held by two workers at once, and every object created is
    released exactly once (by drain or by free)."""
    ffi, lib = procs2
    created = ffi.new("int64_t *")
    drained = ffi.new("int64_t *")
    assert lib.sx_pool_conservation(ngor, nthreads, 20000 // SCALE, drain, created, drained) == 0
    n = ngor + nthreads
    print(f"\n{created[0]} objects created for {n} workers holding up to 4 each; "
          f"{drained[0]} released by drain")
    # Reuse works: far fewer objects than gets (every worker made ~2.5 per round).
    assert 1 <= created[0] <= n * 4 + drained[0]
    if drain:
        assert drained[0] > 0


@pytest.mark.parametrize("kind", [GOROUTINE, THREAD], ids=["goroutine", "thread"])
def test_pool_reuse_and_new(clib, kind):
    ffi, lib = clib
    assert lib.sx_pool_reuse(kind) == 0


def test_pool_steal_from_other_p(clib):
    """A plain thread takes what a goroutine left in its P's shared stack;
    only the P's private object stays out of reach."""
    ffi, lib = clib
    got = ffi.new("int *")
    assert lib.sx_pool_steal(100, got) == 0
    assert got[0] == 99


def test_pool_get_without_new_and_put_null(clib):
    ffi, lib = clib
    p = lib.goro_pool_new(ffi.NULL, ffi.NULL)
    assert lib.goro_pool_get(p) == ffi.NULL
    assert lib.goro_pool_put(p, ffi.NULL) == GORO_OK
    assert lib.goro_pool_get(p) == ffi.NULL
    x = ffi.new("int *")
    assert lib.goro_pool_put(p, x) == GORO_OK
    assert lib.goro_pool_drain(p, ffi.NULL, ffi.NULL) == 1  # the plain thread's stack
    assert lib.goro_pool_get(p) == ffi.NULL
    lib.goro_pool_free(p, ffi.NULL, ffi.NULL)


# ---- Semaphore ----


def test_semaphore_misuse(clib):
    ffi, lib = clib
    assert lib.goro_semaphore_new(0) == ffi.NULL
    assert lib.goro_semaphore_new(-3) == ffi.NULL
    s = lib.goro_semaphore_new(3)
    assert lib.goro_semaphore_size(s) == 3
    for n in (0, -1, 4):
        assert lib.goro_semaphore_acquire(s, n) == GORO_EINVAL
        assert lib.goro_semaphore_try_acquire(s, n) == GORO_EINVAL
        assert lib.goro_semaphore_acquire_select(s, n, ffi.NULL, ffi.NULL, FOREVER) == GORO_EINVAL
    assert lib.goro_semaphore_release(s, 1) == GORO_EMISUSE
    assert lib.goro_semaphore_release(s, 0) == GORO_EINVAL
    assert lib.goro_semaphore_try_acquire(s, 2) == GORO_OK
    assert lib.goro_semaphore_try_acquire(s, 2) == GORO_WOULDBLOCK
    assert lib.goro_semaphore_release(s, 3) == GORO_EMISUSE
    assert lib.goro_semaphore_held(s) == 2
    assert lib.goro_semaphore_acquire_select(s, 2, ffi.NULL, ffi.NULL, 0) == GORO_TIMEOUT
    assert lib.goro_semaphore_acquire_select(s, 2, ffi.NULL, ffi.NULL, 2_000_000) == GORO_TIMEOUT
    assert lib.goro_semaphore_held(s) == 2 and lib.goro_semaphore_waiters(s) == 0
    assert lib.goro_semaphore_acquire_select(s, 1, ffi.NULL, ffi.NULL, FOREVER) == GORO_OK
    assert lib.goro_semaphore_release(s, 3) == GORO_OK
    assert lib.goro_semaphore_held(s) == 0
    lib.goro_semaphore_free(s)


def test_semaphore_closed_cancel_wins_over_free_units(clib):
    ffi, lib = clib
    s = lib.goro_semaphore_new(3)
    c = lib.goro_chan_new(0, 0)
    lib.goro_chan_close(c)
    assert lib.goro_semaphore_acquire_select(s, 1, c, ffi.NULL, FOREVER) == GORO_CANCELED
    assert lib.goro_semaphore_held(s) == 0
    lib.goro_chan_free(c)
    lib.goro_semaphore_free(s)


@pytest.mark.parametrize(
    "kind,big,small",
    [(GOROUTINE, PARK, PARK), (GOROUTINE, SELECT, PARK), (THREAD, PARK, SELECT),
     (THREAD, SELECT, SELECT)],
    ids=["goroutines-park", "goroutines-select-big", "threads-select-small", "threads-select"],
)
def test_semaphore_fifo_large_waiter_not_starved(procs2, kind, big, small):
    ffi, lib = procs2
    assert lib.sx_sem_fifo(20, kind, big, small) == 0


@pytest.mark.parametrize("kind", [GOROUTINE, THREAD], ids=["goroutine", "thread"])
@pytest.mark.parametrize("timeout_ms", [0, 20], ids=["cancel", "timeout"])
def test_semaphore_withdrawn_head_wakes_waiters_behind(clib, kind, timeout_ms):
    ffi, lib = clib
    assert lib.sx_sem_cancel(kind, timeout_ms) == 0


@pytest.mark.parametrize("kind", [GOROUTINE, THREAD], ids=["goroutine", "thread"])
def test_semaphore_retry_keeps_its_place(clib, kind):
    """semaphore_acquire_select_seq (what Python's main thread uses after a
    handled signal): a retried wait goes back in front of later arrivals."""
    ffi, lib = clib
    assert lib.sx_sem_keep_place(kind) == 0


@pytest.mark.parametrize(
    "ngor,nthreads,size,big",
    [(8, 0, 4, 0), (8, 3, 5, 0), (6, 2, 8, 1)],
    ids=["8-goroutines", "8-goroutines+3-threads", "with-a-whole-size-waiter"],
)
def test_semaphore_stress_weight_accounting(procs2, ngor, nthreads, size, big):
    ffi, lib = procs2
    mx = ffi.new("int64_t *")
    counts = ffi.new("int64_t[5]")
    iters = 5000 // SCALE
    assert lib.sx_sem_stress(ngor, nthreads, size, iters, big, mx, counts) == 0
    ok, wouldblock, timedout, canceled, big_rounds = counts
    print(f"\nmax units held {mx[0]}/{size}; ok {ok}, would block {wouldblock}, "
          f"timed out {timedout}, cancelled {canceled}, big rounds {big_rounds}")
    assert 1 <= mx[0] <= size
    assert canceled > 0 and ok > 0
    if big:
        assert big_rounds == iters  # the whole-size waiter was never starved


# ---- atomics ----


@pytest.mark.parametrize("ngor,nthreads", [(8, 0), (8, 3)], ids=["8-goroutines", "8+3-threads"])
def test_atomic_int64_contention(procs2, ngor, nthreads):
    ffi, lib = procs2
    assert lib.sx_atomic_contention(ngor, nthreads, 100000 // SCALE) == 0


def test_atomic_int64_ops_and_wraparound(clib):
    ffi, lib = clib
    a = ffi.new("goro_atomic_int64_t *")
    assert lib.goro_atomic_int64_load(a) == 0
    assert lib.goro_atomic_int64_add(a, 5) == 5
    assert lib.goro_atomic_int64_add(a, -7) == -2
    assert lib.goro_atomic_int64_swap(a, 10) == -2
    assert not lib.goro_atomic_int64_cas(a, 9, 1)
    assert lib.goro_atomic_int64_cas(a, 10, 1)
    lib.goro_atomic_int64_store(a, 2**63 - 1)
    assert lib.goro_atomic_int64_add(a, 1) == -(2**63)
    assert lib.goro_atomic_int64_load(a) == -(2**63)
