"""pygoro.runtime: the scheduler's knobs and introspection (Go's package runtime).

    gomaxprocs(n=None) -> int   previous value; n sets how many goroutines run
                                Python or C in parallel (worker threads with a P)
    num_goroutine() -> int      live goroutines
    num_cpu() -> int            usable CPUs
    gosched()                   yield to other goroutines (runtime.Gosched)
    goid() -> int | None        current goroutine's id; None on a plain thread
    set_stack_size(n) -> int    stack size of Python goroutines started from now on
    excepthook                  called with the exception escaping a goroutine
    stack() -> str              dump of every goroutine (Go's SIGQUIT traceback)
    goroutines() -> list        the same as Goroutine records
    dump_on_signal(sig)         print stack() to stderr when sig arrives; also
                                installed at import by PYGORO_TRACEBACK=1
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from types import CodeType
from typing import Any, Callable, TextIO

from . import _core

__all__ = [
    "gomaxprocs",
    "num_goroutine",
    "num_cpu",
    "gosched",
    "goid",
    "set_stack_size",
    "stack_size",
    "excepthook",
    "ExceptHookArgs",
    "Goroutine",
    "goroutines",
    "stack",
    "dump_on_signal",
]

gosched = _core.gosched
num_goroutine = _core.num_goroutine
num_cpu = _core.num_cpu
goid = _core.goid


def gomaxprocs(n: int | None = None) -> int:
    """Return the previous GOMAXPROCS; set it when n is given (1..256).

    Like Go's runtime.GOMAXPROCS: the number of worker threads that may run
    goroutines at the same time. It defaults to the number of CPUs.
    """
    return _core.gomaxprocs(n)


def stack_size() -> int:
    """Stack size in bytes given to Python goroutines started from now on."""
    return _core.stack_size(None)


def set_stack_size(n: int) -> int:
    """Set the stack size (bytes, 64 KiB..1 GiB) of Python goroutines started
    from now on; returns the previous size. Deep recursion inside a goroutine
    raises RecursionError before the stack runs out: the budget scales with
    this size. Also settable with the environment variable PYGORO_PY_STACK_SIZE.
    """
    return _core.stack_size(n)


@dataclass(frozen=True)
class ExceptHookArgs:
    """What excepthook receives, like threading.ExceptHookArgs."""

    exc_type: type[BaseException]
    exc_value: BaseException
    exc_traceback: Any
    goid: int
    fn: Callable[..., Any] | None


def _default_excepthook(args: ExceptHookArgs) -> None:
    name = getattr(args.fn, "__qualname__", None) or repr(args.fn)
    print(f"Exception in goroutine {args.goid} ({name}):", file=sys.stderr)
    traceback.print_exception(args.exc_type, args.exc_value, args.exc_traceback, file=sys.stderr)


#: Called with an ExceptHookArgs for every exception that escapes a goroutine
#: (SystemExit excepted, as with threads). The default prints the traceback to
#: stderr naming the goroutine; the program continues. Replace it to log or
#: collect such errors: ``pygoro.runtime.excepthook = my_hook``.
excepthook: Callable[[ExceptHookArgs], Any] = _default_excepthook


def _dispatch_exception(exc: BaseException, goid: int, fn: Any) -> None:
    hook = excepthook
    hook(ExceptHookArgs(type(exc), exc, exc.__traceback__, goid, fn))


_core._set_exception_handler(_dispatch_exception)


# ---- goroutine dumps ----------------------------------------------------------


@dataclass(frozen=True)
class Goroutine:
    """One goroutine as a dump sees it (a snapshot: it may have moved on).

    Attributes:
        id: the goroutine id (goid); ids are never reused.
        state: "running", "runnable", or why it is parked: "chan receive",
            "chan send", "select", "sleep", "sync.Mutex.Lock",
            "sync.WaitGroup.Wait", ... (Go's wait reasons).
        waited: seconds it has been parked; None unless parked.
        is_python: a goroutine started by go() (else a C goroutine).
        current: the goroutine that took the dump.
        function: what go() was given (None for C goroutines, and once a
            Python goroutine has finished with it).
        label: a C goroutine's label (goro_go_named), if any.
        entry: a C goroutine's entry function, "symbol+0xoff" when the
            dynamic linker knows it (exported), else "object.so+0xoff".
        frames: a started Python goroutine's stack, outermost call first
            (None for C goroutines and goroutines that have not started).
        created_by: where go() was called (file, line, function); for a
            goroutine started by C code (time.after_func), only its name
            (the C goroutine's label), with no file or line.
        parent_id: the goroutine that called go(), None if a plain thread did.
        created_by_thread: the name of the thread that called go(), when
            no goroutine did.
        thread: set instead of an id (id 0) for a plain Python thread (the
            main thread, a threading.Thread) blocked in a pygoro call: its
            name. goroutines(threads=True) and stack() list those too.
    """

    id: int
    state: str
    waited: float | None
    is_python: bool
    current: bool
    function: Callable[..., Any] | None
    label: str | None
    entry: str | None
    frames: traceback.StackSummary | None
    created_by: traceback.FrameSummary | None
    parent_id: int | None
    created_by_thread: str | None
    thread: str | None = None

    def format(self) -> str:
        """This goroutine as a block of stack()'s text."""
        waited = "" if self.waited is None else ", " + _format_waited(self.waited)
        if self.thread is not None:
            frames = "".join(self.frames.format()) if self.frames else ""
            return f"thread {self.thread} [{self.state}{waited}]:\n{frames}"
        out = [f"goroutine {self.id} [{self.state}{waited}]:\n"]
        if self.frames:
            out.extend(self.frames.format())
        elif self.is_python:
            what = _callable_name(self.function) if self.function is not None else "?"
            started = "not started yet" if self.state == "runnable" else "no Python frames"
            out.append(f"  {what}() ({started})\n")
        else:
            out.append(f"  C function {self.entry or '?'}\n")
        if self.label:
            out.append(f"  label: {self.label}\n")
        if self.parent_id is not None:
            origin = f"in goroutine {self.parent_id}"
        elif self.created_by_thread is not None:
            origin = f"in thread {self.created_by_thread}"
        else:
            origin = "by a thread"
        fs = self.created_by
        if fs is None:
            out.append(f"created {origin}\n")
        elif fs.lineno is None:  # spawned by a C goroutine (e.g. time.AfterFunc)
            out.append(f"created by {fs.name} {origin}\n")
        else:
            out.append(f"created by {fs.filename}:{fs.lineno} in {fs.name}, {origin}\n")
        return "".join(out)


def _format_waited(s: float) -> str:
    # Go prints "2 minutes"; seconds help with a hang of a few seconds.
    if s < 60:
        return f"{s:.1f} seconds"
    if s < 3600:
        return f"{int(s // 60)} minutes"
    return f"{s / 3600:.1f} hours"


def _callable_name(fn: Any) -> str:
    try:
        name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    except Exception:  # a dump must not fail on an odd callable
        name = None
    return name if isinstance(name, str) else type(fn).__qualname__


def _summary(code: CodeType, lineno: int | None) -> traceback.FrameSummary:
    # the source line is read (linecache) only when a dump prints it
    return traceback.FrameSummary(code.co_filename, lineno, code.co_qualname, lookup_line=False)


_HERE = __file__


def goroutines(frames: bool = True, threads: bool = False) -> list[Goroutine]:
    """Every live goroutine, the caller's first, then by id.

    frames=False skips reading Python frames (Goroutine.frames is None):
    cheaper when only ids and states are wanted. threads=True appends the
    plain Python threads blocked in a pygoro call (Goroutine.thread set).

    States come from a snapshot that stops nothing in the scheduler: each
    goroutine is shown in a state it really was in, not necessarily all at
    the same instant. The Python parts (frames, function, creation site) are
    copied while no other thread can run Python: under the GIL, or, on a
    free-threaded build, with the world stopped (see docs/debugging.md).
    """
    names = {t.ident: t.name for t in threading.enumerate()}
    out = []
    for (gid, parent, state, waited, is_py, current, fn, label, entry, frames, spawn,
         thread) in _core._goroutines(frames):
        summary = None
        if frames is not None:
            fs = [_summary(code, line) for code, line in frames]
            if current:
                # drop this function and its callers inside pygoro.runtime
                while fs and fs[-1].filename == _HERE:
                    fs.pop()
            summary = traceback.StackSummary.from_list(fs)
        out.append(Goroutine(
            id=gid,
            state=state,
            waited=waited,
            is_python=is_py,
            current=current,
            function=fn,
            label=label,
            entry=entry,
            frames=summary,
            created_by=(_summary(*spawn) if isinstance(spawn, tuple)
                        else traceback.FrameSummary("", None, spawn, lookup_line=False)
                        if spawn is not None
                        else None),
            parent_id=parent or None,
            created_by_thread=(names.get(thread, f"{thread:#x}") if thread is not None
                               else None),
        ))
    if threads:
        for ident, state, waited, fr in _core._blocked_threads(frames):
            out.append(Goroutine(
                id=0, state=state, waited=waited, is_python=True, current=False,
                function=None, label=None, entry=None,
                frames=(traceback.StackSummary.from_list([_summary(c, n) for c, n in fr])
                        if fr is not None else None),
                created_by=None, parent_id=None, created_by_thread=None,
                thread=names.get(ident, f"{ident:#x}"),
            ))
    return out


def _other_ids() -> set[int]:
    """Ids of the live goroutines but the caller's (cheap: no records built)."""
    return {t[0] for t in _core._goroutines(False) if not t[5]}


def stack() -> str:
    """Text of every live goroutine (Go's SIGQUIT dump), e.g.::

        goroutine 7 [chan receive, 2.0 seconds]:
          File "/app/worker.py", line 12, in worker
            job = jobs.recv()
        created by /app/main.py:30 in main, in thread MainThread

    States: running, runnable, or the wait reason of a parked goroutine,
    with how long it has waited. Python goroutines show their frames
    (outermost first, as in Python tracebacks) and where go() was called;
    C goroutines their entry function. Plain Python threads blocked in a
    pygoro call (the main thread, threading threads) follow, as
    "thread NAME [chan receive, ...]:" blocks.
    """
    return "\n".join(g.format() for g in goroutines(threads=True))


def dump_on_signal(sig: int = signal.SIGQUIT, *, file: TextIO | None = None) -> Any:
    """Print stack() to file (default: sys.stderr) whenever sig arrives.

    Go dumps every goroutine on SIGQUIT (Ctrl-\\); this does the same without
    ending the program. Must be called from the main thread (Python runs
    signal handlers there, at its next chance: a main thread blocked in a
    pygoro call, time.sleep or a lock wakes up for it). Returns the previous
    handler, as signal.signal does. PYGORO_TRACEBACK=1 installs it for
    SIGQUIT at import; PYGORO_TRACEBACK=SIGUSR1 for another signal.
    """

    def handler(signum: int, frame: Any) -> None:
        out = file if file is not None else sys.stderr
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = str(signum)
        out.write(f"pygoro: goroutine dump on {name}\n\n{stack()}\n")
        out.flush()

    return signal.signal(sig, handler)


def _install_from_env() -> None:
    value = os.environ.get("PYGORO_TRACEBACK", "").strip()
    if value in ("", "0"):
        return
    if value == "1":
        sig = signal.SIGQUIT
    else:
        try:
            sig = int(value) if value.isdigit() else signal.Signals[
                value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()]
        except KeyError:
            warnings.warn(f"PYGORO_TRACEBACK={value!r}: not 0, 1 or a signal name; ignored",
                          RuntimeWarning, stacklevel=3)
            return
    if threading.current_thread() is not threading.main_thread():
        warnings.warn("PYGORO_TRACEBACK: pygoro was first imported outside the main thread; "
                      "call pygoro.runtime.dump_on_signal() from the main thread instead",
                      RuntimeWarning, stacklevel=3)
        return
    dump_on_signal(sig)


_install_from_env()
