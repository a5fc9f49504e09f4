"""Fixtures for the C-core tests: one cffi build of csrc/ per session."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import build as _build  # noqa: E402


@pytest.fixture(scope="session")
def clib():
    """(ffi, lib): the C core and the C test helpers, runtime started."""
    ffi, lib = _build.build()
    lib.goro_runtime_start(0)
    return ffi, lib


@pytest.fixture
def procs2(clib):
    """Run at GOMAXPROCS=2 (the machine's cores), then restore. Test modules
    that define their own procs2 shadow this one."""
    ffi, lib = clib
    old = lib.goro_gomaxprocs(2)
    yield clib
    lib.goro_gomaxprocs(old)
