"""Build the C core (no Python.h) plus the C test helpers into a cffi module.

The tests in tests/c/ drive the runtime through this module: C goroutines run
at full parallelism with no GIL, and Python only starts them and checks
results.

    tests/c/cdefs/*.h    declarations for cffi. Each file is also valid C that
                         is included after pygoro.h, except the parts between
                         /* cdef-only */ and /* end cdef-only */, which only
                         cffi sees (e.g. copies of pygoro.h's structs).
    tests/c/helpers/*.c  C test code (compiled with the core's flags)

Environment:
    PYGORO_SANITIZE=thread|address   build with a sanitizer (run Python with
                                     the sanitizer runtime in LD_PRELOAD)
    PYGORO_CONTEXT=ucontext          use the glibc ucontext switch
    PYGORO_CFLAGS                    extra compiler flags

The objects are compiled with -Wall -Wextra -Werror and cached by content
hash under tests/c/_build/.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
HERE = Path(__file__).resolve().parent
BUILD = HERE / "_build"

CDEF_ONLY = re.compile(r"/\* cdef-only \*/.*?/\* end cdef-only \*/", re.S)


def core_sources() -> list[Path]:
    """Every C and assembly file of the runtime except the CPython bridge."""
    out = []
    for p in sorted(CSRC.rglob("*")):
        if p.suffix not in (".c", ".S"):
            continue
        if "python" in p.relative_to(CSRC).parts:
            continue
        out.append(p)
    return out


def helper_sources() -> list[Path]:
    return sorted((HERE / "helpers").glob("*.c"))


def cdef_files() -> list[Path]:
    return sorted((HERE / "cdefs").glob("*.h"))


def mode_flags() -> tuple[str, list[str], list[str]]:
    sanitize = os.environ.get("PYGORO_SANITIZE", "").strip()
    context = os.environ.get("PYGORO_CONTEXT", "").strip()
    cflags = ["-std=c11", "-fPIC", "-pthread", "-Wall", "-Wextra", "-Werror",
              "-fvisibility=hidden", "-g"]
    ldflags = ["-pthread"]
    name = "native"
    if sanitize:
        if sanitize not in ("thread", "address"):
            raise ValueError(f"PYGORO_SANITIZE must be thread or address, not {sanitize!r}")
        cflags += [f"-fsanitize={sanitize}", "-O1", "-fno-omit-frame-pointer"]
        ldflags += [f"-fsanitize={sanitize}"]
        name = sanitize
    else:
        cflags += ["-O2"]
        # Calls from the C loops (benchmarks/, tests) into the core bind
        # directly, as in a C program linked with the core (or in Go), not
        # through the PLT a shared module's exported functions otherwise
        # go through: a few cycles per call on select+default or an
        # uncontended Mutex, where the whole operation is ~15 cycles.
        ldflags += ["-Wl,-Bsymbolic-functions"]
    if context == "ucontext":
        cflags += ["-DPYGORO_CONTEXT_UCONTEXT"]
        name += "-ucontext"
    elif context:
        raise ValueError(f"PYGORO_CONTEXT must be ucontext or unset, not {context!r}")
    extra = os.environ.get("PYGORO_CFLAGS", "").split()
    cflags += extra
    return name, cflags, ldflags


def _digest(paths: list[Path], flags: list[str]) -> str:
    h = hashlib.sha256()
    h.update(" ".join(flags).encode())
    h.update(sys.version.encode())
    for p in paths:
        h.update(str(p).encode())
        h.update(p.read_bytes())
    for p in sorted(CSRC.rglob("*.h")):
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def build():
    """Compile (if needed) and import the test module; returns (ffi, lib)."""
    import cffi

    name, cflags, ldflags = mode_flags()
    sources = core_sources() + helper_sources()
    cdefs = cdef_files()
    digest = _digest(sources + cdefs, cflags + ldflags)
    modname = f"_pygoro_ctest_{name.replace('-', '_')}_{digest}"
    outdir = BUILD / name
    outdir.mkdir(parents=True, exist_ok=True)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    target = outdir / (modname + suffix)

    if not target.exists():
        objdir = outdir / f"obj-{digest}"
        objdir.mkdir(exist_ok=True)
        incs = [f"-I{CSRC}", f"-I{CSRC / 'include'}"]

        def compile_one(src: Path) -> Path:
            obj = objdir / (src.relative_to(ROOT).as_posix().replace("/", "__") + ".o")
            cmd = ["gcc", *cflags, *incs, "-c", str(src), "-o", str(obj)]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"compiling {src} failed:\n{' '.join(cmd)}\n{r.stderr}")
            return obj

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            objs = list(ex.map(compile_one, sources))

        cdef_text = "\n".join(p.read_text() for p in cdefs)
        c_decls = "\n".join(CDEF_ONLY.sub("", p.read_text()) for p in cdefs)
        ffi = cffi.FFI()
        ffi.cdef(cdef_text)
        ffi.set_source(
            modname,
            '#include "pygoro.h"\n' + c_decls,
            include_dirs=[str(CSRC), str(CSRC / "include")],
            extra_objects=[str(o) for o in objs],
            extra_compile_args=[a for a in cflags if a not in ("-Werror", "-std=c11", "-fvisibility=hidden")],
            extra_link_args=ldflags,
        )
        ffi.compile(tmpdir=str(outdir), verbose=False)

    spec = importlib.util.spec_from_file_location(modname, target)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ffi, mod.lib


if __name__ == "__main__":
    ffi, lib = build()
    print("built", lib)
