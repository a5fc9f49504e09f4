"""pygoro.sync: Go's package sync, for goroutines and threads alike.

    Go                          pygoro.sync
    var mu sync.Mutex           mu = Mutex()
    mu.Lock(); mu.Unlock()      mu.lock(); mu.unlock()      or: with mu: ...
    mu.TryLock()                mu.try_lock()
    var rw sync.RWMutex         rw = RWMutex()
    rw.RLock(); rw.RUnlock()    rw.rlock(); rw.runlock()    or: with rw.rlocker(): ...
    rw.Lock(); rw.Unlock()      rw.lock(); rw.unlock()      or: with rw: ...
    rw.RLocker()                rw.rlocker()
    var wg sync.WaitGroup       wg = WaitGroup()
    wg.Add(n); wg.Done()        wg.add(n); wg.done()
    wg.Wait()                   wg.wait()
    wg.Go(f)  (Go 1.25)         wg.go(f, *args, **kwargs)
    var once sync.Once          once = Once()
    once.Do(f)                  once.do(f)
    c := sync.NewCond(&mu)      c = Cond(mu)
    c.Wait(); c.Signal()        c.wait(); c.signal(); c.broadcast()
    sync.Locker                 Locker (a Protocol: lock() and unlock())
    (none)                      RLock(): reentrant, owned by a goroutine
    sync.Pool{New: f}           Pool(new=f); p.get(); p.put(x)
    semaphore.NewWeighted(n)    Semaphore(n); s.acquire(ctx, n); s.try_acquire(n);
      (golang.org/x/sync)         s.release(n)
    atomic.Int64, atomic.Value  atomic.Int64(), atomic.Value()  (pygoro.sync.atomic)

Every blocking call works from a goroutine (it parks; its thread runs other
goroutines, and the GIL is free meanwhile), from a plain thread (it sleeps
with the GIL released) and from the main thread, where Ctrl-C raises
KeyboardInterrupt and withdraws the wait cleanly: a lock is never left held
by an interrupted lock(), and nothing stays counted or queued.

Go's fatal errors are RuntimeError here, raised before anything changes:
unlock of an unlocked Mutex, runlock without a read lock, a WaitGroup
counter going negative, a WaitGroup reused before the last wait() returned,
RLock.unlock() by a goroutine that does not hold it, Cond.wait() without its
lock held.

Mutex, RWMutex and WaitGroup are not owned, as in Go: a goroutine may unlock
a Mutex another goroutine locked. RLock is owned by the goroutine that locked
it (on a plain thread: by the thread), and unlike threading.RLock it stays
owned when that goroutine parks and resumes on another OS thread, which is
exactly where threading.RLock fails ("cannot release un-acquired lock").
threading.Lock and threading.Condition work in goroutines, but block the
whole worker thread instead of parking the goroutine; use these.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from .. import _core

from . import atomic
from ._pool import Pool
from ._semaphore import Semaphore

__all__ = [
    "Locker",
    "Mutex",
    "RWMutex",
    "RLock",
    "WaitGroup",
    "Once",
    "Cond",
    "Pool",
    "Semaphore",
    "atomic",
]

Mutex = _core.Mutex
RWMutex = _core.RWMutex
RLock = _core.RLock
Once = _core.Once
Cond = _core.Cond


@runtime_checkable
class Locker(Protocol):
    """Go's sync.Locker: anything with lock() and unlock() (Mutex, RWMutex,
    RWMutex.rlocker(), RLock). Cond accepts any Locker."""

    def lock(self) -> None: ...

    def unlock(self) -> None: ...


class WaitGroup(_core.WaitGroup):
    """Go's sync.WaitGroup: wait for a collection of goroutines to finish.

    add(n) before starting the goroutines, done() in each as it finishes,
    wait() until the counter is back to zero; or let go() do the counting::

        wg = WaitGroup()
        for url in urls:
            wg.go(fetch, url)
        wg.wait()
    """

    __slots__ = ()

    def go(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run fn(*args, **kwargs) in a new goroutine counted by this
        WaitGroup (Go 1.25's WaitGroup.Go): add(1) now, done() when fn
        returns or raises. An exception from fn goes to
        pygoro.runtime.excepthook, as from any goroutine."""
        if not callable(fn):
            raise TypeError(f"WaitGroup.go() needs a callable, not {type(fn).__name__}")
        self.add(1)

        def run() -> None:
            try:
                fn(*args, **kwargs)
            finally:
                self.done()

        # Dumps and the excepthook name the goroutine after fn.
        run.__qualname__ = getattr(fn, "__qualname__", run.__qualname__)
        run.__name__ = getattr(fn, "__name__", run.__name__)
        run.__wrapped__ = fn  # type: ignore[attr-defined]
        try:
            _core.go(run)
        except BaseException:
            self.done()
            raise
