"""Fixtures for the C-core tests: one cffi build of csrc/ per session."""

import os
import sys
import sysconfig

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import build as _build  # noqa: E402


@pytest.fixture(scope="session")
def clib():
    """(ffi, lib): the C core and the C test helpers, runtime started."""
    try:
        import cffi  # noqa: F401
    except ImportError:
        if sysconfig.get_config_var("Py_GIL_DISABLED"):
            # cffi refuses to build on free-threaded 3.13 (it supports 3.14t
            # and later). The C core has no Python in it: the GIL builds'
            # runs and the sanitizer steps test it; this interpreter runs the
            # Python suite and the C tests that need no cffi.
            pytest.skip("cffi is not available for free-threaded CPython "
                        f"{sys.version_info[0]}.{sys.version_info[1]}; the C core is "
                        "tested on the GIL builds")
        raise
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
