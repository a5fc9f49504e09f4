"""docs/api.md documents every public name, and nothing that does not exist.

docs/api.md has one section per module, headed ``## `pygoro.x` ``, and in it
one entry per public name, headed ``### `name...` `` (``### `class Name...` ``
for classes). A module's public names are its ``__all__``, or else the
non-underscore functions and classes defined in it. A class's entry must
mention each of its public members (methods, properties, fields) in
backquotes, e.g. `` `send(v)` ``. Every ``goro_*`` function pygoro.h declares
must appear in the "C API" section.

Every name that is documented must exist.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
import types

import pytest

import pygoro

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
API_MD = os.path.join(ROOT, "docs", "api.md")
PYGORO_H = os.path.join(ROOT, "csrc", "include", "pygoro.h")

# Documented from /work/shared/API.md ahead of their code. None: the whole
# module is on its way; a set: those names of an existing module are.

MODULE_HEADING = re.compile(r"^## `(pygoro[\w.]*)`", re.M)
ENTRY_HEADING = re.compile(r"^### `(?:class )?([A-Za-z_]\w*)", re.M)


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def mask_code(text: str) -> str:
    """text with the inside of ``` fences blanked (same length), so that a
    `# comment` line in a code block is not taken for a heading."""
    return re.sub(r"^```.*?^```", lambda m: re.sub(r"[^\n]", " ", m.group()), text,
                  flags=re.M | re.S)


def sections(text: str, heading: re.Pattern[str]) -> dict[str, str]:
    """Split text at the headings that match (group 1 names the section),
    each section running to the next heading of the same or a higher level."""
    level = len(heading.pattern.split(" ", 1)[0].lstrip("^"))
    masked = mask_code(text)
    ends = [m.start() for m in re.finditer(r"^#{1,%d} " % level, masked, re.M)]
    out: dict[str, str] = {}
    for m in heading.finditer(masked):
        end = next((e for e in ends if e > m.start()), len(text))
        out[m.group(1)] = text[m.end():end]
    return out


def public_names(mod: types.ModuleType) -> list[str]:
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    return sorted(
        n for n, v in vars(mod).items()
        if not n.startswith("_") and not n.startswith("pytest_")
        and (inspect.isfunction(v) or inspect.isclass(v))
        and getattr(v, "__module__", None) == mod.__name__)


def public_members(cls: type) -> list[str]:
    """What a user of cls reaches by attribute: its own public methods,
    properties and class attributes, dataclass and NamedTuple fields."""
    names = {n for n in vars(cls) if not n.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {f.name for f in dataclasses.fields(cls)}
    names |= set(getattr(cls, "_fields", ()))
    return sorted(names)


def undocumented(mod: types.ModuleType, doc: str) -> list[str]:
    """The public names of mod (and members of its classes, as Class.member)
    that the module's section of doc does not document."""
    section = sections(doc, MODULE_HEADING).get(mod.__name__)
    if section is None:
        return [f"(no section ## `{mod.__name__}`)"]
    entries = sections(section, ENTRY_HEADING)
    documented_modules = set(sections(doc, MODULE_HEADING))
    missing = []
    for name in public_names(mod):
        value = getattr(mod, name, None)
        if isinstance(value, types.ModuleType):
            if value.__name__ not in documented_modules:
                missing.append(name)
            continue
        if name not in entries:
            missing.append(name)
            continue
        if inspect.isclass(value) and value.__module__.startswith("pygoro"):
            for member in public_members(value):
                if not re.search(rf"`{re.escape(member)}\b", entries[name]):
                    missing.append(f"{name}.{member}")
    return missing


def load(modname: str) -> types.ModuleType:
    """The module (a submodule may also be a module object in its parent)."""
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        # pygoro.sync.atomic may be a namespace object in pygoro.sync
        parent, _, last = modname.rpartition(".")
        try:
            obj = getattr(importlib.import_module(parent), last, None)
        except ModuleNotFoundError:
            obj = None
        if isinstance(obj, types.ModuleType):
            return obj
        raise e


def all_modules() -> list[str]:
    found = {f"pygoro.{m.name}" for m in pkgutil.iter_modules(pygoro.__path__)
             if not m.name.startswith("_")}
    return sorted({"pygoro", "pygoro.sync.atomic", *found})


@pytest.mark.parametrize("modname", all_modules())
def test_every_public_name_is_documented(modname):
    mod = load(modname)
    assert undocumented(mod, read(API_MD)) == []


@pytest.mark.parametrize("modname", all_modules())
def test_every_documented_name_exists(modname):
    section = sections(read(API_MD), MODULE_HEADING).get(modname)
    assert section is not None, f"docs/api.md has no section ## `{modname}`"
    mod = load(modname)
    absent = [n for n in sections(section, ENTRY_HEADING) if not hasattr(mod, n)]
    assert absent == []


def test_every_c_function_is_documented():
    header = read(PYGORO_H)
    funcs = re.findall(r"^GORO_EXTERN [^;(]*?\b(goro_\w+)\s*\(", header, re.M)
    assert len(funcs) > 40, "the pattern no longer finds pygoro.h's declarations"
    c_api = sections(read(API_MD), re.compile(r"^## (C API)", re.M)).get("C API")
    assert c_api is not None, "docs/api.md has no section ## C API"
    assert [f for f in funcs if f"`{f}" not in c_api] == []


def test_the_check_catches_an_undocumented_name():
    mod = types.ModuleType("pygoro.fake")
    mod.__all__ = ["documented", "forgotten", "Thing"]
    mod.documented = lambda: None
    mod.forgotten = lambda: None

    class Thing:
        def kept(self): ...
        def lost(self): ...

    Thing.__module__ = "pygoro.fake"
    mod.Thing = Thing
    doc = ("## `pygoro.fake`\n\n### `documented()`\n\nText.\n\n"
           "### `class Thing`\n\n- `kept()`: text\n\n## `pygoro.other`\n\n### `forgotten()`\n")
    assert undocumented(mod, doc) == ["forgotten", "Thing.lost"]


README = os.path.join(ROOT, "README.md")


def readme_block(heading: str, lang: str) -> str:
    """The first ```lang block of the README section with this heading."""
    section = sections(read(README), re.compile(r"^## (%s)$" % re.escape(heading), re.M))
    assert heading in section, f"README.md has no section ## {heading}"
    m = re.search(r"^```%s\n(.*?)^```" % lang, section[heading], re.M | re.S)
    assert m, f"README.md section {heading!r} has no ```{lang} block"
    return m.group(1)


def test_readme_example_runs():
    import subprocess
    import sys

    code = readme_block("Example: fan-out with a deadline", "python")
    assert len(code.splitlines()) <= 25
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "10 responses\n"
    # and the deadline path the README describes
    # calls of 5-10 s: the 1 ms deadline surely comes first, and cancels them
    short = (code.replace("context.background(), 1.0)", "context.background(), 0.001)")
                 .replace("uniform(0.01, 0.05)", "uniform(5, 10)"))
    assert short.count("0.001") == 1 and "uniform(5, 10)" in short
    r = subprocess.run([sys.executable, "-c", short], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pygoro.context.DeadlineExceeded" in r.stderr, r.stderr


def test_readme_quickstart_is_what_ci_runs():
    quickstart = read(README).split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert 'pip install ".[test]"\npython -m pytest tests\n' in quickstart
    ci = os.path.join(ROOT, ".ci", "run")
    if not os.path.exists(ci):
        pytest.skip(".ci/run is not in this tree (an sdist carries no .ci/)")
    m = re.search(r'^PYGORO_TEST_CMD="([^"]*)"', read(ci), re.M)
    assert m and m.group(1) == "python -m pytest tests"
