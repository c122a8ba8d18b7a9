"""Benchmark of the look before a disk's location is rescanned (does the disk mounted hold most of what is indexed,
or is it another disk with the same identity?): `python tests/bench/bench_volume_rescan.py [--files N]` (as root).

A real loop-mounted ext4 image with N files (100,000) in folders of 1,000, indexed as a shallow location. Measures,
in CPU seconds (this process and its children: the walk runs in a child), the look alone (missing_on_disk) and a whole
rescan that finds nothing changed (the look included), side by side; medians of a few rounds, alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sdcore.api import Api
from sdcore.core import Core
from sdcore.library import volume_locations

ROUNDS = 5


def cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def make_disk(root: Path, files: int) -> tuple[Path, Path]:
    image = root / "big.img"
    with open(image, "wb") as f:
        f.truncate(max(64, files // 200) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-N", str(files + 1000), "-L", "BIG DISK", str(image)], check=True)
    point = root / "usb"
    point.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
    for i in range(files):
        folder = point / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            folder.mkdir()
        os.close(os.open(folder / f"f{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
    return image, point


async def measure(root: Path, point: Path) -> dict[str, float]:
    async with Core(root / "data") as core:
        api = Api(core)
        location = await api.library().locations.add(str(point), mode="shallow", index=True)
        library = core.library()
        looks, rescans = [], []
        for _ in range(ROUNDS):
            loc = library.locations.get(location.id)
            start = cpu()
            missing, total = await asyncio.to_thread(volume_locations.missing_on_disk, library, loc)
            looks.append(cpu() - start)
            assert missing == 0, (missing, total)
            start = cpu()
            done = await api.library().jobs.wait((await api.library().locations.index(location.id)).id)
            rescans.append(cpu() - start)
            assert done.state == "completed", done.error
        return {"entries": total, "look": statistics.median(looks), "rescan": statistics.median(rescans)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _, point = make_disk(root, args.files)
        try:
            started = time.perf_counter()
            figures = asyncio.run(measure(root, point))
        finally:
            subprocess.run(["umount", "-l", str(point)], check=False)
    load = os.getloadavg()[0]
    print(f"{figures['entries']:,} entries; load {load:.1f}; {time.perf_counter() - started:.0f} s in all")
    print(f"look before a rescan: {figures['look'] * 1000:.0f} ms CPU (median of {ROUNDS})")
    print(f"rescan, nothing changed (look included): {figures['rescan'] * 1000:.0f} ms CPU")
    print(f"ratio look / rescan: {figures['look'] / figures['rescan']:.3f}")


if __name__ == "__main__":
    main()
