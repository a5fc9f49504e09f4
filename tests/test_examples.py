"""The example programs run and print what they should (README quickstart)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_example(name: str) -> str:
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_hello():
    assert run_example("hello.py").splitlines() == [
        "hello, gopher",
        "hello, pythonista",
        "hello, world",
    ]
