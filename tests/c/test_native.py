"""The C core as a plain C program (no Python): both context switches natively,
and the aarch64 switch under qemu when the cross tools are installed
(.ci/run runs tests/c/native/run_aarch64.sh, which installs them)."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.join(os.path.dirname(__file__), "native")
# The compiler and the self-test are not instrumented: never hand them a
# sanitizer runtime that the sanitizer test runs preload into Python.
ENV = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


@pytest.mark.parametrize("flags", [[], ["-DPYGORO_CONTEXT_UCONTEXT"]], ids=["asm", "ucontext"])
def test_core_selftest_native(tmp_path, flags):
    exe = tmp_path / "selftest"
    subprocess.run([os.path.join(HERE, "build_selftest.sh"), str(exe), "gcc", *flags],
                   check=True, capture_output=True, text=True, env=ENV)
    r = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "core_selftest: all passed" in r.stdout


@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="aarch64 cross compiler / qemu-user not installed (CI installs them)")
def test_core_selftest_aarch64_qemu():
    r = subprocess.run([os.path.join(HERE, "run_aarch64.sh")], capture_output=True, text=True,
                       timeout=900, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("core_selftest: all passed") == 2
