"""Make the tests import the installed pygoro, not this source tree.

`python -m pytest tests` (the README's test command, which CI runs from the
repository root) puts the current directory first on sys.path. There, the
source package ./pygoro/ (no compiled pygoro._core, or a stale one built in
place) would shadow the package that `pip install .` put in site-packages.

- pytest loads this file before it imports any test module, so dropping that
  one implicit entry here makes `import pygoro` find the installed package.
  --import-mode=importlib (pyproject.toml) keeps pytest from adding entries
  of its own.
- Child interpreters that tests start (`subprocess.run([sys.executable, "-c",
  ...])` from this directory) would put it first again; PYTHONSAFEPATH=1
  (Python 3.11+) stops them from prepending their current directory or
  script directory. A child script that imports a module beside it must put
  that directory on sys.path itself.

Explicit entries stay: to test the source tree in place, after building the
extension into it, say so with PYTHONPATH=. python -m pytest tests
The report header line "pygoro under test: ..." tells which package a run
imports.
"""

from __future__ import annotations

import importlib.util
import os
import sys

_ROOT = os.path.dirname(os.path.abspath(__file__))


def _drop_implicit_cwd() -> None:
    # sys.path[0] is the implicit entry ('' or the current directory for
    # `python -m` and `-c`) unless -P / PYTHONSAFEPATH turned it off; then the
    # first entry is an explicit one and must stay.
    if sys.flags.safe_path or not sys.path:
        return
    if os.path.abspath(sys.path[0] or os.curdir) == _ROOT:
        del sys.path[0]


_drop_implicit_cwd()
os.environ.setdefault("PYTHONSAFEPATH", "1")


def pytest_report_header(config):
    mod = sys.modules.get("pygoro")
    if mod is not None:
        where = os.path.dirname(mod.__file__ or "?")
    else:
        spec = importlib.util.find_spec("pygoro")
        where = os.path.dirname(spec.origin) if spec and spec.origin else "not installed"
    return f"pygoro under test: {where}"
