"""Indexer benchmarks, side by side with find and plocate's updatedb in one run (issues 2, 18).

    python tests/bench/bench_index.py [--million] [--only shallow]

Makes (once) the deterministic corpora of ../shared/bench/gen_tree.py under $SD_BENCH_DIR (default
/work/corpus): a 200,000-file tree and a flat directory of 100,000 files; and unpacks Debian's Linux source
(apt-get install linux-source-6.1 plocate) there. Prints ratios, in wall and CPU time (on a loaded machine
wall times are noise; CPU counts sd's walker child too, which runs on the other core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# ../shared from the main checkout, ../../shared from a worktree under wt/
GEN = next((g for g in (ROOT.parent / "shared", ROOT.parents[1] / "shared") if g.exists()), ROOT.parent / "shared") / "bench" / "gen_tree.py"
CORPUS = Path(os.environ.get("SD_BENCH_DIR", "/work/corpus"))
SD = str(Path(sys.executable).parent / "sd")
# sd runs as on a user's machine, with its bytecode cached (some sandboxes export PYTHONDONTWRITEBYTECODE,
# which makes every start compile sd's modules again)
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def corpus(name: str, *args: str) -> Path:
    out = CORPUS / name
    if not out.exists():
        CORPUS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), args[0], str(out), *args[1:]], check=True)
    return out


def wall(cmd: list[str], **kw: object) -> float:
    return timed(cmd, **kw)[0]


def timed(cmd: list[str], **kw: object) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best(n: int, fn) -> float:  # type: ignore[no-untyped-def]
    return min(fn() for _ in range(n))


def linux_tree() -> Path | None:
    """Debian's linux-source-6.1 (apt-get install linux-source-6.1), unpacked once beside the other corpora."""
    out = CORPUS / "linux"
    tarball = Path("/usr/src/linux-source-6.1.tar.xz")
    if not out.exists() and tarball.exists():
        out.mkdir(parents=True)
        subprocess.run(["tar", "xf", str(tarball), "-C", str(out)], check=True)
    return out if out.exists() else None


def shallow_round(tree: Path) -> dict[str, tuple[float, float]]:
    """One round of `sd location add --mode shallow` then `sd location rescan` (nothing changed), and plocate's
    `updatedb -U` (walk a tree and make it searchable, in C++) after them: each (wall, CPU of the command and its
    children: sd's walker child too), in a data dir whose device key and library were made before (a first run's
    set-up is not indexing); and the sizes of sd's and plocate's databases, as (bytes, bytes)."""
    data = Path(tempfile.mkdtemp(prefix="sdbench-"))
    # as on a machine where sd is set up: the device's key and the library made before (~0.2 s CPU, once)
    wall([SD, "--data-dir", str(data), "library", "list"])
    took = {"sd": timed([SD, "--data-dir", str(data), "location", "add", str(tree), "--mode", "shallow"])}
    size = (data / "libraries" / "My Library.sdlibrary" / "database.db").stat().st_size
    took["sd database"] = (size, size)
    took["rescan"] = timed([SD, "--data-dir", str(data), "location", "rescan", "1"])
    shutil.rmtree(data)
    if shutil.which("updatedb"):
        out = data.with_suffix(".plocate")
        took["updatedb"] = timed(["updatedb", "-U", str(tree), "-o", str(out), "-l", "0"])
        took["updatedb database"] = (out.stat().st_size, out.stat().st_size)
        out.unlink()
    return took


def paths_as_text(tree: Path) -> tuple[int, int]:
    """(entries, bytes) of `find TREE`'s paths, one a line: what an index of the tree holds at the least."""
    paths = subprocess.run(["find", str(tree), "-printf", r"%p\n"], capture_output=True, check=True).stdout
    return paths.count(b"\n"), len(paths)


def bench_shallow(tree: Path, label: str = "200k") -> None:
    """The shallow first index beside plocate's `updatedb -U` and find, three rounds (best of each)."""
    find = best(3, lambda: wall(["find", str(tree), "-printf", r"%i %s %T@ %p\n"]))
    rounds = [shallow_round(tree) for _ in range(3)]
    sd_wall, sd_cpu = min(r["sd"][0] for r in rounds), min(r["sd"][1] for r in rounds)
    print(f"shallow index {label}: sd {sd_wall:.2f}s (CPU {sd_cpu:.2f}s)  find {find:.2f}s  ratio {sd_wall / find:.2f}x")
    if "updatedb" in rounds[0]:
        up_wall, up_cpu = min(r["updatedb"][0] for r in rounds), min(r["updatedb"][1] for r in rounds)
        print(f"  vs plocate's updatedb -U: {up_wall:.2f}s (CPU {up_cpu:.2f}s)  ratio {sd_wall / up_wall:.2f}x wall,"
              f" {sd_cpu / up_cpu:.2f}x CPU (budget 3x)")
    else:
        print("  plocate is not installed (apt-get install plocate): no updatedb to compare with")
    entries, text = paths_as_text(tree)
    database = rounds[-1]["sd database"][0]
    print(f"  index size: {database / entries:.0f} bytes an entry ({database / 2**20:.1f} MiB); the paths as text"
          f" {text / entries:.0f}: {database / text:.2f}x (budget 2x)")
    again = min(r["rescan"][0] for r in rounds)
    print(f"re-index unchanged:   sd {again:.2f}s  find {find:.2f}s  ratio {again / find:.2f}x (budget 2x)")
    floor = python_floor(tree)
    print(f"  the floor in CPython, writing nothing: {floor:.2f}s = {floor / find:.2f}x find")
    bench_phases(tree, label)


def cpu() -> float:
    """CPU seconds of this process (every thread) and of the children it waited for."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def phase_profile(tree: Path) -> dict[str, float]:
    """CPU seconds of each phase of a shallow first index of `tree`, run here one phase after the other (the walker
    child's CPU is counted when it ends, with discovery): where the time goes, and when the entries are searchable."""
    from sdcore.core import Core
    from sdcore.index.indexer import IndexJob
    from sdcore.jobs.job import JobContext

    async def run() -> dict[str, float]:
        data = Path(tempfile.mkdtemp(prefix="sdbench-"))
        took: dict[str, float] = {}
        async with Core(data) as core:
            library = core.library()
            loc = library.locations.add(str(tree), mode="shallow")
            job = IndexJob(loc.id)
            ctx = JobContext("bench", job, library, persistent=False)
            steps = {
                "start": lambda: job._start(ctx, loc), "discovery": lambda: job._discover(ctx, loc),
                "cleanup": lambda: job._in_tx(ctx, job._cleanup, loc), "aggregation": lambda: job._in_tx(ctx, job._aggregate, loc),
                "search": lambda: job._in_tx(ctx, job._build_search, loc), "indexes": lambda: job._in_tx(ctx, job._make_indexes, loc),
            }
            while job.phase in steps:
                phase, start = job.phase, cpu()
                steps[phase]()
                took[phase] = took.get(phase, 0.0) + cpu() - start
        shutil.rmtree(data)
        return took

    return asyncio.run(run())


def bench_phases(tree: Path, label: str) -> None:
    """Median of 3 in-process runs, each in a fresh interpreter (sd's imports and start counted apart)."""
    code = "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_index as b; print(json.dumps(b.phase_profile(b.Path(sys.argv[2]))))"
    runs = [
        json.loads(subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), str(tree)],
                                  capture_output=True, text=True, check=True).stdout)
        for _ in range(3)
    ]
    phases = {k: sorted(r[k] for r in runs)[1] for k in runs[0]}
    searchable = sum(v for k, v in phases.items() if k != "indexes")
    names = {"discovery": "walk and write (the walker child too)", "cleanup": "cleanup and folder totals",
             "search": "search index", "indexes": "secondary indexes"}
    print(f"  phases {label} (CPU, median of 3, in one process, sd's start-up not counted): "
          + ", ".join(f"{names.get(k, k)} {v:.2f}s" for k, v in phases.items() if k != "start")
          + f"; searchable after {searchable:.2f}s, every index made after {sum(phases.values()):.2f}s")


def python_floor(tree: Path) -> float:
    """Wall time of a bare Python process that starts, walks `tree` with os.scandir and lstats every entry."""
    walk = (
        "import os, sys\n"
        "pending = [sys.argv[1]]\n"
        "while pending:\n"
        "    for e in os.scandir(pending.pop()):\n"
        "        st = e.stat(follow_symlinks=False)\n"
        "        if e.is_dir(follow_symlinks=False): pending.append(e.path)\n"
    )
    return best(3, lambda: wall([sys.executable, "-c", walk, str(tree)]))


def bench_content(tree: Path) -> None:
    """cas_id throughput of the content phase vs a plain Python loop reading the same samples."""
    from sdcore.core import Core
    from sdcore.index.cas import HEADER_OR_FOOTER_SIZE, MINIMUM_FILE_SIZE, SAMPLE_COUNT, SAMPLE_SIZE
    from sdcore.index.indexer import IndexJob
    from sdcore.jobs.job import JobContext

    paths = [os.path.join(d, f) for d, _, fs in os.walk(tree) for f in fs]

    def plain_loop() -> float:
        start = time.perf_counter()
        for p in paths:
            with open(p, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size <= MINIMUM_FILE_SIZE:
                    fh.read()
                    continue
                fh.read(HEADER_OR_FOOTER_SIZE)
                step = (size - 2 * HEADER_OR_FOOTER_SIZE) // SAMPLE_COUNT
                for k in range(SAMPLE_COUNT):
                    fh.seek(HEADER_OR_FOOTER_SIZE + k * step)
                    fh.read(SAMPLE_SIZE)
                fh.seek(size - HEADER_OR_FOOTER_SIZE)
                fh.read(HEADER_OR_FOOTER_SIZE)
        return time.perf_counter() - start

    async def content_phase() -> float:
        data = Path(tempfile.mkdtemp(prefix="sdbench-"))
        async with Core(data) as core:
            library = core.library()
            loc = library.locations.add(str(tree), mode="content")
            job = IndexJob(loc.id)  # run the phases one by one, timing only the content phase
            ctx = JobContext("bench", job, library, persistent=False)
            job._start(ctx, loc)
            job._discover(ctx, loc)
            job._in_tx(ctx, job._cleanup, loc)  # and aggregation
            job._in_tx(ctx, job._build_search, loc)
            job._in_tx(ctx, job._make_indexes, loc)
            assert job.phase == "content", job.phase
            start = time.perf_counter()
            while job.phase == "content":
                job._content(ctx, loc)
            took = time.perf_counter() - start
        shutil.rmtree(data)
        return took

    plain = min(plain_loop() for _ in range(2))
    ours = asyncio.run(content_phase())
    print(f"content (cas_id) {len(paths):,} files: sd {ours:.2f}s  plain loop {plain:.2f}s  ratio {ours / plain:.2f}x (budget 1.5x)")


def quick_scan(data: Path, flat: Path) -> list[str]:
    """`sd index quick-scan` of the folder `flat` alone, nothing kept: the command line."""
    return [SD, "--data-dir", str(data), "index", "quick-scan", str(flat), "--scope", "current", "--ephemeral", "--json"]


def bench_quick_scan(flat: Path) -> None:
    find = best(3, lambda: wall(["find", str(flat), "-maxdepth", "1", "-printf", r"%i %s %T@ %p\n"]))
    data = Path(tempfile.mkdtemp(prefix="sdbench-"))
    ours = best(3, lambda: wall(quick_scan(data, flat)))
    from sdcore.fs.local import LocalFS

    async def first_batch() -> float:
        start = time.perf_counter()
        async for batch in LocalFS().list_dir(str(flat), 1000):
            assert len(batch) == 1000
            return time.perf_counter() - start
        return float("nan")

    first = asyncio.run(first_batch())
    print(f"quick-scan flat 100k: sd {ours:.2f}s (budget < 1 s)  find {find:.2f}s  ratio {ours / find:.2f}x (budget 2x);"
          f" first 1,000 entries in {first * 1000:.0f} ms (budget 100 ms)")
    floor = python_floor(flat)
    print(f"  the floor in CPython, writing nothing: {floor:.2f}s = {floor / find:.2f}x find")
    shutil.rmtree(data)


def bench_memory(million: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="sdbench-"))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    took = wall([SD, "--data-dir", str(data), "location", "add", str(million), "--mode", "shallow"])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"index 1,000,000 files (shallow): {took:.1f}s, peak RSS of a process {max(peak, before) / 1024:.0f} MB (budget 300 MB)")
    shutil.rmtree(data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--million", action="store_true", help="also index a 1,000,000-file tree (made once; slow)")
    ap.add_argument("--only", choices=["shallow", "content", "quick", "memory"])
    a = ap.parse_args()
    tree = corpus("tree", "tree")
    print(f"machine: {os.cpu_count()} cores; corpora in {CORPUS}")
    print(f"load: {os.getloadavg()[0]:.1f}")
    if a.only in (None, "shallow"):
        bench_shallow(tree)
        linux = linux_tree()
        if linux is not None:
            bench_shallow(linux, "Linux 6.1 source")
    if a.only in (None, "quick"):
        bench_quick_scan(corpus("flat", "flat"))
    if a.only in (None, "content"):
        bench_content(tree)
    if a.million or a.only == "memory":
        bench_memory(corpus("million", "tree", "--files", "1000000", "--dirs", "50000", "--scale", "0", "--large-mb", "", "--medium", "0", "--near", "0"))


if __name__ == "__main__":
    main()
