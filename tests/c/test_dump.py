"""goro_dump / goro_dump_buf (csrc/sched/dump.c): C goroutines parked in each
kind of wait show their wait reason, how long they waited, their entry
function (by name, through dladdr) and the goroutine that created them."""

import re
import time

import pytest

DEADLINE = 60.0


def dump(ffi, lib) -> str:
    need = lib.goro_dump_buf(ffi.NULL, 0)
    buf = ffi.new("char[]", need + 4096)  # goroutines may start meanwhile
    lib.goro_dump_buf(buf, len(buf))
    return ffi.string(buf).decode()


def blocks(text: str) -> dict[str, str]:
    """entry function name -> its goroutine's block"""
    out = {}
    for block in text.strip().split("\n\n"):
        m = re.search(r"^\t(dump_entry_\w+)\(\)$", block, re.M)
        if m:
            out[m.group(1)] = block + "\n"
    return out


EXPECTED = {
    "dump_entry_receiver": "chan receive",
    "dump_entry_sender": "chan send",
    "dump_entry_selector": "select",
    "dump_entry_locker": "sync.Mutex.Lock",
    "dump_entry_waiter": "sync.WaitGroup.Wait",
    "dump_entry_sleeper": "sleep",
}


def test_dump_shows_every_wait(clib):
    ffi, lib = clib
    spawner = lib.dump_park_all()
    assert spawner != 0
    try:
        deadline = time.monotonic() + DEADLINE
        while True:
            found = blocks(dump(ffi, lib))
            states = {name: re.match(r"goroutine \d+ \[([^,\]]+)", b).group(1)
                      for name, b in found.items()}
            if all(states.get(k) == v for k, v in EXPECTED.items()):
                break
            assert time.monotonic() < deadline, f"not all parked: {states}"
            time.sleep(0.01)
        for name, block in found.items():
            if name == "dump_entry_spawner":
                continue
            assert re.match(r"goroutine \d+ \[[^\]]+, \d+\.\d seconds\]:\n", block), block
            assert f"created in goroutine {spawner}\n" in block, block
        assert "\tlabel: dump test sleeper\n" in found["dump_entry_sleeper"]
        # the waited time grows while they stay parked
        w1 = float(re.search(r", (\d+\.\d) seconds", found["dump_entry_receiver"]).group(1))
        time.sleep(0.35)
        again = blocks(dump(ffi, lib))["dump_entry_receiver"]
        w2 = float(re.search(r", (\d+\.\d) seconds", again).group(1))
        assert w2 >= w1 + 0.2, (w1, w2)
        # the buffer form truncates and still reports the full length
        small = ffi.new("char[]", 16)
        full = lib.goro_dump_buf(small, 16)
        assert full > 15 and len(ffi.string(small)) == 15
    finally:
        assert lib.dump_release_all() == 0
