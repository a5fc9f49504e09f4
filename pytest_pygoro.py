"""pytest11 entry point of pygoro: registers pygoro.pytest_plugin lazily.

The plugin itself is pygoro.pytest_plugin (goleak for pytest; see there).
This module exists because pytest loads entry-point plugins before it reads
any conftest.py, and importing pygoro.pytest_plugin imports the pygoro
package: run from a source checkout (`python -m pytest tests`, the current
directory first on sys.path), that would import the uncompiled source tree
instead of the installed package before the checkout's conftest.py could
say which one to test. So nothing here imports pygoro until
pytest_configure, which runs after the initial conftest files.
"""

from __future__ import annotations

import pytest

_PLUGIN = "pygoro.pytest_plugin"


def pytest_addoption(parser: pytest.Parser) -> None:
    # Options must exist before the command line is parsed, i.e. before the
    # plugin module can be imported; pygoro.pytest_plugin adds the same one
    # when loaded on its own (-p), whichever comes first wins.
    try:
        parser.addoption(
            "--pygoro-no-leaks",
            action="store_true",
            default=False,
            help="pygoro: fail every test that leaves goroutines running",
        )
    except ValueError:
        pass  # -p pygoro.pytest_plugin added it already


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.has_plugin(_PLUGIN):
        return  # loaded explicitly with -p
    import importlib

    try:
        plugin = importlib.import_module(_PLUGIN)
    except ImportError as e:
        # pygoro is not importable here: e.g. a pip install from a checkout
        # left pygoro.egg-info (with this entry point) in the source tree,
        # and pytest runs from that tree with an interpreter that has no
        # pygoro of its own. Tests that do not use pygoro must still run.
        if config.getoption("--pygoro-no-leaks"):
            raise pytest.UsageError(f"--pygoro-no-leaks: pygoro cannot be imported ({e})") from e
        return
    config.pluginmanager.register(plugin, _PLUGIN)
