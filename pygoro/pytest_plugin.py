"""pytest plugin: fail a test that leaves goroutines behind (pygoro's goleak).

Opt in per test with the marker or the fixture, or for a whole run:

    @pytest.mark.no_leaks                  # or no_leaks(timeout=2.0)
    def test_pipeline(): ...

    def test_server(no_goroutine_leaks): ...

    pytest --pygoro-no-leaks               # every test

A goroutine counts as leaked when the test function started it (fixtures'
goroutines are not counted) and it is still alive `timeout` seconds (default
1.0) after the test function returned. The test then fails with
pygoro.testing.LeakError, listing each leaked goroutine's stack and where it
was created. A test that already failed is not checked again.

Registered through the ``pytest11`` entry point when pygoro is installed;
``-p pygoro.pytest_plugin`` loads it explicitly.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from . import runtime
from .testing import LeakError, leaked_goroutines

_MARKER = "no_leaks"
_DEFAULT_TIMEOUT = 1.0


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--pygoro-no-leaks",
        action="store_true",
        default=False,
        help="pygoro: fail every test that leaves goroutines running",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(timeout={_DEFAULT_TIMEOUT}): fail the test if goroutines it started are "
        "still alive `timeout` seconds after it returns (pygoro.testing.no_leaks)",
    )


def _leak_timeout(item: pytest.Item) -> float | None:
    """The timeout to check item with, or None when it is not checked."""
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return _DEFAULT_TIMEOUT if item.config.getoption("--pygoro-no-leaks") else None
    if marker.args:
        raise pytest.UsageError(f"@pytest.mark.{_MARKER} takes only timeout=..., as a keyword")
    timeout = marker.kwargs.get("timeout", _DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
        raise pytest.UsageError(
            f"@pytest.mark.{_MARKER}(timeout=...) needs seconds >= 0, not {timeout!r}")
    return float(timeout)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    timeout = _leak_timeout(item)
    if timeout is None:
        return (yield)
    __tracebackhide__ = True  # the report is the leak list, not this hook
    before = runtime._other_ids()
    result = yield  # raises (and skips the check) if the test failed
    leaked = leaked_goroutines(before, timeout)
    if leaked:
        raise LeakError(leaked)
    return result


@pytest.fixture
def no_goroutine_leaks(request: pytest.FixtureRequest) -> Any:
    """Fail this test if goroutines it started outlive it (see the module
    docstring); the same as @pytest.mark.no_leaks."""
    if request.node.get_closest_marker(_MARKER) is None:
        request.node.add_marker(_MARKER)
    return None
