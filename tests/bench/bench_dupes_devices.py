"""Benchmark: `sd dupes --devices` proving copies on two devices (two cores in this process, paired over SSH on
127.0.0.1, each hashing its own copies whole) against `jdupes -r` over both folders on this one machine (local
only: what jdupes can do). The groups must agree: identical files grouped, look-alikes (one sampled cas_id, a
different middle byte) not.

    python tests/bench/bench_dupes_devices.py [--files 200] [--size 1048576]

Prints wall and CPU seconds (this process: both cores, their SSH and hashing), and jdupes' (best of two, page
cache warm, user+sys of the child).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import blake3  # noqa: E402

from sdcore.api import Api  # noqa: E402
from sdcore.index.indexer import index_location  # noqa: E402
from sdcore.sync.service import sync_of  # noqa: E402
from tests.functional.test_sync_dupes import alpha_and_beta  # noqa: E402


def make(folders: tuple[Path, Path], files: int, size: int) -> None:
    for n in range(files):
        data = bytearray(blake3.blake3(n.to_bytes(4, "little")).digest(length=size))
        (folders[0] / f"f{n}.bin").write_bytes(data)
        if n % 2:
            data[min(100_000, size // 2)] ^= 0xFF  # a look-alike: same sampled id, another content
        (folders[1] / f"f{n}-copy.bin").write_bytes(data)


def jdupes(folders: tuple[Path, Path]) -> tuple[float, float, set[frozenset[str]]]:
    best_wall = best_cpu = float("inf")
    out = b""
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(["jdupes", "-r", "-q", *map(str, folders)], capture_output=True, check=True).stdout
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best_wall = min(best_wall, wall)
        best_cpu = min(best_cpu, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    groups = {frozenset(p for p in block.split("\n") if p) for block in out.decode().split("\n\n") if block.count("\n") >= 1}
    return best_wall, best_cpu, {g for g in groups if len(g) > 1}


async def ours(tmp: Path, folders: tuple[Path, Path]) -> tuple[float, float, set[frozenset[str]]]:
    async with alpha_and_beta(tmp) as (a, b):
        await sync_of(a).share(a.libraries.create("Photos"), "beta")
        for core, folder in ((a, folders[0]), (b, folders[1])):
            library = core.library("Photos")
            await library.jobs.wait(await index_location(library, library.locations.add(str(folder), mode="content")))
        lib = Api(a).library("Photos")
        from sdcore import dedup

        while len(dedup.across_devices(a.library("Photos"))) < len(list(folders[0].iterdir())):
            await asyncio.sleep(0.2)  # beta's catalogue on its way (every pair shares a cas_id)
        for core in (a, b):
            with core.library("Photos").write() as db:
                db.execute("DELETE FROM file_hashes")
        t0, c0 = time.perf_counter(), time.process_time()
        groups = await lib.duplicates_across_devices()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        unproven = [g for g in groups if not g.proven]
        assert not unproven, (len(unproven), len(groups), unproven[0])
        return wall, cpu, {frozenset(c.path for c in g.copies) for g in groups}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--size", type=int, default=1 << 20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        tmp = Path(work)
        folders = (tmp / "on-alpha", tmp / "on-beta")
        for f in folders:
            f.mkdir()
        make(folders, args.files, args.size)
        j_wall, j_cpu, j_groups = jdupes(folders)
        o_wall, o_cpu, o_groups = asyncio.run(ours(tmp, folders))
        print(f"load {os.getloadavg()[0]:.1f}; {args.files} pairs of {args.size} bytes, half of them look-alikes")
        print(f"jdupes -r  : wall {j_wall:.3f} s  cpu {j_cpu:.3f} s  groups {len(j_groups)}")
        print(f"dupes --devices (proving): wall {o_wall:.3f} s  cpu {o_cpu:.3f} s  groups {len(o_groups)}")
        print("same groups" if j_groups == o_groups else f"DIFFERENT: {len(j_groups ^ o_groups)} differ")


if __name__ == "__main__":
    main()
