"""Make the tests import the installed pygoro, not this source tree.

`python -m pytest tests` (the README's test command, which CI runs from the
repository root) puts the current directory first on sys.path. There, the
source package ./pygoro/ (no compiled pygoro._core, or a stale one built in
place) would shadow the package that `pip install .` put in site-packages.
pytest loads this file before it imports any test module, so:

- When a pygoro is installed outside this tree, the implicit current-directory
  entry is dropped from sys.path, and PYTHONSAFEPATH=1 (Python 3.11+) keeps
  child interpreters that tests start (`subprocess.run([sys.executable, "-c",
  ...])`) from putting their current or script directory first again. A
  child script that imports a module beside it must add that directory to
  sys.path itself.
- When none is (nothing installed, or an editable install pointing here), the
  source tree stays importable: that is the in-place build being tested.

--import-mode=importlib (pyproject.toml) keeps pytest from adding sys.path
entries of its own. The report header line "pygoro under test: ..." tells
which package a run imports.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _installed_elsewhere() -> bool:
    spec = importlib.util.find_spec("pygoro")
    if spec is None or spec.origin is None:
        return False
    return not os.path.abspath(spec.origin).startswith(_ROOT + os.sep)


def _prefer_installed() -> None:
    # sys.path[0] is the implicit entry ('' or the current directory, for
    # `python -m` and `-c`) unless -P / PYTHONSAFEPATH turned it off; then the
    # first entry is an explicit one and stays.
    implicit = None
    if not sys.flags.safe_path and sys.path and os.path.abspath(sys.path[0] or os.curdir) == _ROOT:
        implicit = sys.path.pop(0)
    if _installed_elsewhere():
        os.environ.setdefault("PYTHONSAFEPATH", "1")
    elif implicit is not None:
        sys.path.insert(0, implicit)


# Also when pygoro is already imported (`-p pygoro.pytest_plugin` imports it
# before this file; the pytest11 entry point, pytest_pygoro, waits until
# pytest_configure for this reason): find_spec then reports that module, so
# the rules above still hold.
_prefer_installed()


def pytest_report_header(config):
    mod = sys.modules.get("pygoro")
    if mod is not None:
        where = os.path.dirname(mod.__file__ or "?")
    else:
        spec = importlib.util.find_spec("pygoro")
        where = os.path.dirname(spec.origin) if spec and spec.origin else "not importable"
    return f"pygoro under test: {where}"
