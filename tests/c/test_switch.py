"""The context switch (csrc/arch) on its own, as plain C programs: no cffi, no
scheduler, no Python inside.

tests/c/native/switch_selftest.c is built with gcc and run natively with the
assembly switch and with the ucontext one, and cross-built and run under
qemu-aarch64 when the cross compiler and qemu-user are installed (.ci/run
installs them through tests/c/native/run_aarch64.sh). When gdb is installed
(gdb-multiarch for aarch64), a debugger single-steps through ctx_switch and
must get a clean backtrace at every instruction: that checks the CFI.
"""

import os
import platform
import re
import shutil
import socket
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NATIVE = os.path.join(ROOT, "tests", "c", "native")
ARCH = os.path.join(ROOT, "csrc", "arch")
# The compiler, qemu and the programs are not instrumented: never hand them a
# sanitizer runtime that the sanitizer test runs preload into Python.
ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
CFLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-I" + os.path.join(ROOT, "csrc")]
VARIANTS = {"asm": [], "ucontext": ["-DPYGORO_CONTEXT_UCONTEXT"]}

HOST_ASM = platform.machine() in ("x86_64", "aarch64")
CROSS_CC = shutil.which("aarch64-linux-gnu-gcc")
QEMU = shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
NO_CROSS = ("aarch64 cross compiler (gcc-aarch64-linux-gnu) or qemu-user not installed; "
            "CI installs them")


def arch_sources():
    return sorted(os.path.join(ARCH, f) for f in os.listdir(ARCH) if f.endswith((".c", ".S")))


def build(cc, out, flags, main=os.path.join(NATIVE, "switch_selftest.c")):
    cmd = [cc, *CFLAGS, *flags, main, *arch_sources(), "-o", str(out), "-lm"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert r.returncode == 0, " ".join(cmd) + "\n" + r.stderr
    return out


def run_selftest(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}\n{r.stdout}{r.stderr}"
    assert "switch_selftest: all passed" in r.stdout, r.stdout
    print(r.stdout)  # the measured ns per switch, shown with -rP / -s
    return r.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_switch_selftest_native(tmp_path, variant):
    if variant == "asm" and not HOST_ASM:
        pytest.skip(f"no assembly switch for {platform.machine()}")
    exe = build("gcc", tmp_path / "switch_selftest", VARIANTS[variant])
    out = run_selftest([str(exe), "400000"], timeout=120)
    assert ("ucontext" if variant == "ucontext" else "asm") in out.splitlines()[0]


@pytest.mark.skipif(not (CROSS_CC and QEMU), reason=NO_CROSS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_switch_selftest_aarch64_qemu(tmp_path, variant):
    exe = build(CROSS_CC, tmp_path / "switch_selftest", ["-static", *VARIANTS[variant]])
    out = run_selftest([QEMU, str(exe), "200000"], timeout=240)
    assert out.splitlines()[0] == "switch_selftest: " + (
        "ucontext" if variant == "ucontext" else "aarch64 asm")


def test_run_aarch64_script_native_ucontext():
    """The script's native mode (ucontext on the host), as CI's aarch64 step
    runs its qemu mode."""
    r = subprocess.run([os.path.join(NATIVE, "run_aarch64.sh"), "--native", "--ucontext",
                        "--no-core"], capture_output=True, text=True, timeout=240,
                       env={**ENV, "ROUND_TRIPS": "100000"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "switch_selftest: all passed" in r.stdout
    assert "native: all passed (switch_selftest; ucontext switch)" in r.stdout


# ---- CFI: a debugger stepping through ctx_switch ----------------------------

# Two contexts, each calling ctx_switch from a named function; the first
# switch goes to a fresh context, so its tail runs on the stack ctx_make
# built.
DRIVER = r"""
#include <stdlib.h>
#include "arch/context.h"
static struct goro_context m, c;
__attribute__((noinline)) static void co_side(void) { ctx_switch(&c, &m); __asm__ volatile(""); }
static void co(void *a) { (void)a; for (;;) co_side(); }
__attribute__((noinline)) static void main_side(void) { ctx_switch(&m, &c); __asm__ volatile(""); }
int main(void)
{
    void *s = malloc(1 << 16);
    ctx_make(&c, s, 1 << 16, co, NULL);
    for (int i = 0; i < 3; i++)
        main_side();
    return 0;
}
"""

GDB_SCRIPT = """
set pagination off
set confirm off
break ctx_switch
{start}
set $n = 0
while $n < 4
  set $i = 0
  while $i < {steps}
    echo @@STEP\\n
    bt 10
    stepi
    set $i = $i + 1
  end
  continue
  set $n = $n + 1
end
"""

FRAME = re.compile(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(\S+) \(")


def check_backtraces(out, min_steps):
    """Every backtrace taken while stepping through ctx_switch (and the code
    around it) ends at main or ctx_trampoline, with no junk frames, and shows
    one context's calls only."""
    steps = out.split("@@STEP")[1:]
    window = inside = 0
    for step in steps:
        frames = [m.groups() for m in map(FRAME.match, step.splitlines()) if m]
        assert frames, step
        assert "Backtrace stopped" not in step and "corrupt" not in step, step
        names = [f[2] for f in frames]
        inside += names[0] == "ctx_switch"
        if names == ["ctx_trampoline"]:
            continue  # stepping through the trampoline itself: the outermost frame
        if names[-1] == "??" and len(names) == 2:
            # a fresh context's first switch, between the stack swap and
            # `ret`: the return address is ctx_trampoline itself, whose
            # preceding byte is covered by the trampoline's FDE (marked
            # outermost) but by no symbol
            window += 1
            continue
        assert "??" not in names, step
        assert names[-1] in ("main", "ctx_trampoline"), step
        assert ("main" in names) != ("co" in names or "co_side" in names), step
    assert inside >= min_steps, out[-3000:]
    assert window < 20, "most steps ended in the fresh-context window"


def listening(port):
    with open("/proc/net/tcp") as f:  # local_address is HEXIP:HEXPORT, state 0A is LISTEN
        return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
                   for line in f.readlines()[1:])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(platform.machine() != "x86_64" or not shutil.which("gdb"),
                    reason="needs gdb on x86-64")
def test_cfi_gdb_x86_64(tmp_path):
    src = tmp_path / "driver.c"
    src.write_text(DRIVER)
    exe = build("gcc", tmp_path / "driver", ["-O1"], main=str(src))
    script = tmp_path / "steps.gdb"
    script.write_text(GDB_SCRIPT.format(start="run", steps=22))
    r = subprocess.run(["gdb", "-q", "-batch", "-nx", "-x", str(script), str(exe)],
                       capture_output=True, text=True, timeout=120, env=ENV)
    check_backtraces(r.stdout, min_steps=60)


@pytest.mark.skipif(not (CROSS_CC and QEMU and shutil.which("gdb-multiarch")),
                    reason="needs gdb-multiarch and " + NO_CROSS)
def test_cfi_gdb_aarch64_qemu(tmp_path):
    src = tmp_path / "driver.c"
    src.write_text(DRIVER)
    exe = build(CROSS_CC, tmp_path / "driver", ["-O1", "-static"], main=str(src))
    port = free_port()
    qemu = subprocess.Popen([QEMU, "-g", str(port), str(exe)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Wait for the gdb stub to listen. Not by connecting to it: qemu-user
        # runs the program freely once its one debugger client goes away.
        deadline = time.monotonic() + 20
        while not listening(port):
            assert time.monotonic() < deadline and qemu.poll() is None, "no gdb stub from qemu"
            time.sleep(0.05)
        script = tmp_path / "steps.gdb"
        start = f"target remote 127.0.0.1:{port}\ncontinue"
        script.write_text(GDB_SCRIPT.format(start=start, steps=36))
        r = subprocess.run(["gdb-multiarch", "-q", "-batch", "-nx", "-x", str(script), str(exe)],
                           capture_output=True, text=True, timeout=180, env=ENV)
        check_backtraces(r.stdout, min_steps=100)
    finally:
        qemu.kill()
        qemu.wait()
