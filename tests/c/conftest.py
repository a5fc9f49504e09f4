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
