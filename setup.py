"""Build of the extension module pygoro._core (metadata lives in pyproject.toml).

pygoro._core is every C and assembly file under csrc/, runtime and CPython
bridge alike, globbed at build time so that a new file is picked up without
touching this script. Files that only apply to one CPU or context-switch mode
guard themselves (`#if defined(__x86_64__) && !defined(PYGORO_CONTEXT_UCONTEXT)`),
so nothing is excluded here.

Environment:
    PYGORO_STRICT=1            add -Wall -Wextra -Werror (CI sets it)
    PYGORO_CONTEXT=ucontext    build the glibc ucontext context switch
                               (-DPYGORO_CONTEXT_UCONTEXT) instead of the
                               hand-written one
    PYGORO_CFLAGS              extra compiler flags, split on whitespace
                               (as in tests/c/build.py)

Every build recompiles every file: the flags above change the objects without
changing any source, and csrc/ compiles in seconds.

The runtime is for Linux and macOS (see csrc/sched/platform.c). Elsewhere the
build compiles that one file first, so its #error naming what a port needs is
the whole output instead of one error among many from the files that need it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CSRC = "csrc"  # relative: setuptools wants sources relative to setup.py
PLATFORM_CHECK = f"{CSRC}/sched/platform.c"


def _sources() -> list[str]:
    srcs = sorted(
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / CSRC).rglob("*")
        if p.suffix in (".c", ".S") and p.is_file()
    )
    # Objects are named after their source minus the suffix: foo.c and foo.S
    # in one directory would silently overwrite each other's foo.o.
    stems: dict[str, str] = {}
    for s in srcs:
        stem = s.rsplit(".", 1)[0]
        if stem in stems:
            raise SystemExit(f"setup.py: {stems[stem]} and {s} would both compile to {stem}.o")
        stems[stem] = s
    return srcs


def _depends() -> list[str]:
    return sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / CSRC).rglob("*.h"))


def _flags() -> tuple[list[str], list[str], list[tuple[str, str | None]]]:
    cflags = ["-std=c11", "-O2", "-fvisibility=hidden", "-pthread"]
    ldflags = ["-pthread"]
    macros: list[tuple[str, str | None]] = []
    if os.environ.get("PYGORO_STRICT", "").strip() not in ("", "0"):
        cflags += ["-Wall", "-Wextra", "-Werror"]
    context = os.environ.get("PYGORO_CONTEXT", "").strip()
    if context == "ucontext":
        macros.append(("PYGORO_CONTEXT_UCONTEXT", None))
    elif context:
        raise SystemExit(f"setup.py: PYGORO_CONTEXT must be 'ucontext' or unset, not {context!r}")
    cflags += os.environ.get("PYGORO_CFLAGS", "").split()
    return cflags, ldflags, macros


class BuildExt(build_ext):
    """build_ext that also compiles .S (assembly run through the C preprocessor)."""

    def finalize_options(self) -> None:
        # Command.__init__ resets `force` to None after initialize_options, so
        # it is set here, before build's False would fill it in.
        if self.force is None:
            self.force = True  # see the module docstring
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self) -> None:
        # UnixCCompiler hands any file whose suffix it knows to the C compiler
        # driver, and gcc/clang assemble .S after preprocessing it.
        if ".S" not in self.compiler.src_extensions:
            self.compiler.src_extensions.append(".S")
        if not sys.platform.startswith(("linux", "darwin")):
            # raises CompileError carrying the file's #error (see the docstring)
            self.compiler.compile([PLATFORM_CHECK], output_dir=self.build_temp, extra_postargs=cflags)
        super().build_extensions()


cflags, ldflags, macros = _flags()

setup(
    ext_modules=[
        Extension(
            "pygoro._core",
            sources=_sources(),
            depends=_depends(),
            include_dirs=[CSRC, f"{CSRC}/include"],
            define_macros=macros,
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
