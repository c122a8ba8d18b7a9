"""Benchmark: `sdcore.search` on a library of 1,000,000 entries against plocate on the same names.

    python tests/bench/bench_search.py [--entries 1000000] [--queries 200] [--work DIR]

Entries are written straight into a real library with SQL (names from the shared corpus generator's
word lists), the search index filled in one go through `fts_paused`; then 200 different queries
(substrings of real names, two-word queries, and queries with filters) run in the process, and the
same texts run through `plocate -i -l 100` on a database built from the same paths.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore import search  # noqa: E402
from sdcore.core import Core  # noqa: E402
from sdcore.index.fts import pause_fts, resume_fts  # noqa: E402
from sdcore.index.kinds import extension_of, kind_from_extension  # noqa: E402
from sdcore.library.library import Library  # noqa: E402
from sdcore.library.schema import kind_code_sql, object_code_sql  # noqa: E402
from sdcore.sdpath import to_db  # noqa: E402

GEN_TREE = Path("/work/shared/bench/gen_tree.py")
PLOCATE_ROOT = "/Q"  # paths given to plocate: a root no query can match


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("gen_tree", GEN_TREE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthesize(library: Library, root: str, entries: int, seed: int = 7) -> tuple[list[str], float, float]:
    """Write `entries` rows (about 1 in 20 a folder) into a new location; returns (relative paths, load s, fts s)."""
    gen = load_generator()
    rng = random.Random(seed)
    loc = library.locations.add(root, mode="shallow")
    ndirs = max(1, entries // 20)
    dirs = gen._make_dirs(rng, ndirs)  # '' first, parents before children
    dir_ids = {"": loc.root_id}
    next_id = library.read().execute("SELECT max(id) FROM entries").fetchone()[0] + 1
    dir_rows, path_rows = [], []
    for rel in dirs[1:]:
        parent, _, name = rel.rpartition("/")
        dir_ids[rel] = next_id
        dir_rows.append((next_id, loc.id, dir_ids[parent], to_db(name), "", "dir", None, 0, None))
        path_rows.append((next_id, loc.id, to_db(rel)))
        next_id += 1
    weights = [rng.paretovariate(1.1) for _ in dirs]
    parents = rng.choices(dirs, weights=weights, k=entries - len(dir_rows))
    seen = {tuple(rel.rpartition("/")[::2]) for rel in dirs[1:]}  # (parent, name): a file may not take a folder's name
    file_rows = []
    paths = list(dirs[1:])
    now = time.time()
    for i, parent in enumerate(parents):
        name = gen._file_name(rng, i)
        while (parent, name) in seen:
            name = f"{name[:-1]}{rng.randrange(10)}{name[-1]}" if "." in name else name + "1"
        seen.add((parent, name))
        ext = extension_of(name)
        size = int(min(rng.lognormvariate(8, 2), 1 << 32))
        mtime = now - rng.random() * 10 * 365 * 86400
        file_rows.append((next_id, loc.id, dir_ids[parent], to_db(name), ext, "file", kind_from_extension(ext), size, mtime))
        paths.append(f"{parent}/{name}" if parent else name)
        next_id += 1
    insert = (
        "INSERT INTO entries (id, location_id, parent_id, name, extension, kind_code, object_code, size, mtime)"
        f" VALUES (?1, ?2, ?3, ?4, ?5, {kind_code_sql('?6')}, {object_code_sql('?7')}, ?8, ?9)"
    )
    t0 = time.perf_counter()
    with library.write() as db:
        pause_fts(db, loc.id)
        db.executemany(insert, dir_rows)
        db.executemany("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, ?)", path_rows)
        db.executemany(insert, file_rows)
        t1 = time.perf_counter()
        resume_fts(db, loc.id)
    t2 = time.perf_counter()
    return paths, t1 - t0, t2 - t1


def make_queries(paths: list[str], count: int, seed: int = 11) -> list[tuple[str, dict]]:
    """`count` different (text, filters): substrings of real names, word pairs, and filtered queries."""
    rng = random.Random(seed)
    gen = load_generator()
    queries: dict[tuple[str, str], tuple[str, dict]] = {}
    filters_pool = [
        {"ext": ("jpg",)}, {"kind": ("image",)}, {"ext": ("pdf", "docx")}, {"min_size": 100_000},
        {"kind": ("code",), "max_size": 4096}, {"modified_after": time.time() - 3 * 365 * 86400},
        {"kind": ("file",), "ext": ("png",)}, {"ext": ("txt", "md"), "max_size": 10_000},
    ]
    while len(queries) < count:
        r = rng.random()
        if r < 0.6:
            name = rng.choice(paths).rpartition("/")[2]
            if len(name) < 4:
                continue
            n = rng.randint(3, min(8, len(name)))
            start = rng.randrange(len(name) - n + 1)
            text, filters = name[start : start + n], {}
            if not text.strip() or len(text.strip()) < 3:
                continue
            text = text.strip()
        elif r < 0.75:
            text, filters = " ".join(rng.sample(gen.WORDS, 2)), {}
        else:
            text, filters = rng.choice(gen.WORDS)[: rng.randint(3, 6)], rng.choice(filters_pool)
        queries.setdefault((text.lower(), repr(sorted(filters.items()))), (text, filters))
    return list(queries.values())


def make_sorted_queries(count: int, seed: int = 13) -> list[tuple[str, dict]]:
    """Searches sorted by size, date or name instead of relevance (every match competes for the first place)."""
    rng = random.Random(seed)
    gen = load_generator()
    sorts = [
        {"sort": "size"}, {"sort": "date"}, {"sort": "name"}, {"kind": ("file",), "sort": "size"},
        {"ext": ("txt", "md"), "sort": "date"}, {"kind": ("image",), "sort": "size", "reverse": True},
    ]
    return [(rng.choice(gen.WORDS)[: rng.randint(3, 6)], sorts[i % len(sorts)]) for i in range(count)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


CPU: list[float] = []  # the CPU time of each query of the last `time_ours` (a loaded machine's wall times are noise)


def time_ours(library: Library, queries: list[tuple[str, dict]]) -> tuple[list[float], list[int]]:
    times, counts = [], []
    CPU.clear()
    for text, filters in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        hits = search.find(library, text, **filters)
        times.append(time.perf_counter() - t0)
        CPU.append(time.process_time() - c0)
        counts.append(len(hits))
    return times, counts


def time_plocate(db: str, queries: list[tuple[str, dict]]) -> tuple[list[float], list[int]]:
    times, counts = [], []
    for text, _ in queries:
        args = ["plocate", "-d", db, "-i", "-l", "100", "--", *text.split()]
        t0 = time.perf_counter()
        out = subprocess.run(args, capture_output=True)
        times.append(time.perf_counter() - t0)
        counts.append(out.stdout.count(b"\n"))
    return times, counts


def summary(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return f"{label}: median {statistics.median(ms):.2f} ms, p99 {percentile(ms, 99):.2f} ms, max {max(ms):.2f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--work", help="A folder to work in (default: a new temporary one, removed after).")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-search-"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "root"
    root.mkdir(exist_ok=True)
    try:
        async with Core(work / "data") as core:
            library = core.library()
            listing = work / "paths.txt"
            if library.locations.list() and listing.exists():  # a --work folder of an earlier run: reuse it
                with open(listing, encoding="utf-8", errors="surrogateescape") as f:
                    paths = [line[len(PLOCATE_ROOT) + 1 :].rstrip("\n") for line in f][1:]
                print(f"reusing {len(paths) + 1:,} entries in {work}")
            else:
                t0 = time.perf_counter()
                paths, load_s, fts_s = synthesize(library, str(root), args.entries)
                print(f"synthesized {len(paths) + 1:,} entries in {time.perf_counter() - t0:.1f} s "
                      f"(rows {load_s:.1f} s, search index in one INSERT ... SELECT {fts_s:.1f} s)")
            db_size = os.path.getsize(work / "data" / "libraries" / "My Library.sdlibrary" / "database.db")
            print(f"database {db_size / 2**20:.0f} MiB")
            queries = make_queries(paths, args.queries)
            search.find(library, "warm up")  # opens the read connection
            ours, our_counts = time_ours(library, queries)
            cpu = list(CPU)
            print(summary(f"sdcore.search, {len(queries)} different queries by relevance", ours))
            print(summary("  CPU time of the same", cpu))
            for label, test in (("no filter", lambda f: not f), ("with filters", lambda f: bool(f))):
                picked = [t for t, q in zip(ours, queries, strict=True) if test(q[1])]
                print(summary(f"  {label} ({len(picked)})", picked))
            slowest = sorted(zip(cpu, queries, strict=True), key=lambda x: -x[0])[:3]  # in CPU time
            print("  slowest:", "; ".join(f"{t * 1000:.1f} ms {q[0]!r} {q[1]}" for t, q in slowest))
            sorted_queries = make_sorted_queries(20)
            by_order, _ = time_ours(library, sorted_queries)
            print(summary(f"sorted by size, date or name instead ({len(sorted_queries)}, not in the figures above)", by_order))
            print(summary("  CPU time of the same", CPU))
            slowest = sorted(zip(by_order, sorted_queries, strict=True), key=lambda x: -x[0])[:3]
            print("  slowest:", "; ".join(f"{t * 1000:.1f} ms {q[0]!r} {q[1]}" for t, q in slowest))
            print(f"  results: median {statistics.median(our_counts):.0f}, "
                  f"{sum(c == 100 for c in our_counts)} queries hit the limit of 100")
        with open(listing, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(PLOCATE_ROOT + "\n")
            for rel in paths:
                f.write(f"{PLOCATE_ROOT}/{rel}\n")
        if shutil.which("plocate-build") is None and not os.path.exists("/usr/sbin/plocate-build"):
            print("plocate is not installed (apt-get install plocate): no comparison")
            return
        build = shutil.which("plocate-build") or "/usr/sbin/plocate-build"
        t0 = time.perf_counter()
        subprocess.run([build, "-p", "-l", "no", str(listing), str(work / "plocate.db")], check=True)
        print(f"plocate-build: {time.perf_counter() - t0:.1f} s")
        theirs, their_counts = time_plocate(str(work / "plocate.db"), queries)
        print(summary(f"plocate -i -l 100 (a process per query), same {len(queries)} texts", theirs))
        print(f"ratio ours/plocate: median {statistics.median(ours) / statistics.median(theirs):.2f}, "
              f"p99 {percentile(ours, 99) / percentile(theirs, 99):.2f}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
