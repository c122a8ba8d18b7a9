"""Benchmark: `sd dupes` (sdcore.dedup) against `jdupes -r` on the corpus tree; the groups must match.

    python tests/bench/bench_dupes.py TREE [--work DIR]

TREE comes from `python3 /work/shared/bench/gen_tree.py tree TREE` (made here if missing, with
--files/--dirs). Timed: jdupes -r (best of two, page cache warm); ours straight from disk (best of two);
ours from nothing through the library (index the tree in
content mode, then find; or in shallow mode, then find by size); ours with the content index built (first find, no full hash kept yet);
ours again (full hashes reused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore import dedup  # noqa: E402
from sdcore.core import Core  # noqa: E402
from sdcore.index.indexer import index_location  # noqa: E402

GEN_TREE = "/work/shared/bench/gen_tree.py"


def jdupes_groups(tree: Path) -> tuple[float, set[frozenset[str]]]:
    best = float("inf")
    out = b""
    for _ in range(2):
        t0 = time.perf_counter()
        out = subprocess.run(["jdupes", "-r", "-q", str(tree)], capture_output=True, check=True).stdout
        best = min(best, time.perf_counter() - t0)
    groups = set()
    for block in out.decode("utf-8", "surrogateescape").split("\n\n"):
        paths = [p for p in block.split("\n") if p]
        if len(paths) > 1:
            groups.add(frozenset(paths))
    return best, groups


def our_groups(found: dedup.Duplicates) -> set[frozenset[str]]:
    return {frozenset(f.path for f in g.files) for g in found.groups}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tree")
    parser.add_argument("--work", help="A folder for the data dir (default: a temporary one, removed after).")
    parser.add_argument("--files", type=int, default=200_000, help="When the tree is made here.")
    parser.add_argument("--dirs", type=int, default=10_000, help="When the tree is made here.")
    args = parser.parse_args()
    tree = Path(args.tree).resolve()
    if not tree.exists():
        subprocess.run(
            [sys.executable, GEN_TREE, "tree", str(tree), "--files", str(args.files), "--dirs", str(args.dirs)], check=True
        )
    manifest = tree.parent / (tree.name + ".manifest.json")
    if manifest.exists():
        print("tree:", {k: v for k, v in json.loads(manifest.read_text()).items() if isinstance(v, int | float | str)})
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-dupes-"))
    try:
        jd_time, jd = jdupes_groups(tree)
        print(f"jdupes -r: {jd_time:.2f} s, {len(jd)} groups")
        disk_s = float("inf")
        for _ in range(2):  # best of two, as for jdupes
            t0 = time.perf_counter()
            from_disk = dedup.find_in([str(tree)])
            disk_s = min(disk_s, time.perf_counter() - t0)
        print(f"ours from nothing, straight from disk (`sd dupes TREE`, nothing indexed): {disk_s:.2f} s, "
              f"{len(from_disk.groups)} groups: ratio to jdupes {disk_s / jd_time:.2f}")
        async with Core(work / "data") as core:
            library = core.library()
            t0 = time.perf_counter()
            loc = library.locations.add(str(tree), mode="content")
            record = await library.jobs.wait(await index_location(library, loc))
            index_s = time.perf_counter() - t0
            assert record.state == "completed", record.error
            t1 = time.perf_counter()
            first = await asyncio.to_thread(dedup.find, library)
            first_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            second = await asyncio.to_thread(dedup.find, library)
            second_s = time.perf_counter() - t2
        async with Core(work / "data-shallow") as core:  # from nothing, the quickest way: metadata, then sizes
            library = core.library()
            t0 = time.perf_counter()
            loc = library.locations.add(str(tree), mode="shallow")
            record = await library.jobs.wait(await index_location(library, loc))
            shallow_index_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            by_size = await asyncio.to_thread(dedup.find, library)
            by_size_s = time.perf_counter() - t1
        print(f"ours from nothing, shallow index {shallow_index_s:.2f} s + dupes by size and full hash {by_size_s:.2f} s"
              f" = {shallow_index_s + by_size_s:.2f} s: ratio to jdupes {(shallow_index_s + by_size_s) / jd_time:.2f}")
        ours = our_groups(first)
        print(f"ours, index (content mode): {index_s:.2f} s; dupes with the content index built: {first_s:.2f} s "
              f"({len(ours)} groups, {first.wasted / 2**20:.1f} MiB wasted); again, full hashes kept: {second_s:.2f} s")
        print(f"ours from nothing (index + dupes): {index_s + first_s:.2f} s")
        print(f"ratios to jdupes: content index built {first_s / jd_time:.2f}, again {second_s / jd_time:.2f}, "
              f"from nothing {(index_s + first_s) / jd_time:.2f}")
        same = ours == jd and our_groups(second) == ours and our_groups(by_size) == ours and our_groups(from_disk) == ours
        print("groups match jdupes:", same)
        if not same:
            print(f"  only ours: {len(ours - jd)}, only jdupes: {len(jd - ours)}")
            for g in list(ours - jd)[:3] + list(jd - ours)[:3]:
                print("   ", sorted(g)[:4])
            sys.exit(1)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
