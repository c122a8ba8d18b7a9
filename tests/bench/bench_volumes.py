"""Benchmark of disks coming and going in the explorer: `python tests/bench/bench_volumes.py [--files N]` (as root).

Measures, with a real loop-mounted ext4 image holding N files (100,000) at its root:
- mount to the disk shown in the sidebar, and umount to it gone (run_test; the issue promises within 1 s),
- the first screen of the disk's root opened in a pane, against a local folder of 1 file, side by side (ratio;
  medians of a few runs each, alternated).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.widgets.sidebar import Sidebar

ROUNDS = 5


async def wait_until(predicate, timeout: float = 60.0, step: float = 0.001) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError
        await asyncio.sleep(step)
    return time.perf_counter() - started


def make_disk(root: Path, files: int) -> Path:
    image = root / "big.img"
    with open(image, "wb") as f:
        f.truncate(max(64, files // 200) << 20)
    subprocess.run(["mkfs.ext4", "-q", "-N", str(files + 1000), "-L", "BIG DISK", str(image)], check=True)
    point = root / "fill"
    point.mkdir()
    subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
    try:
        for i in range(files):
            os.close(os.open(point / f"f{i:06d}.jpg", os.O_CREAT | os.O_WRONLY, 0o644))
    finally:
        subprocess.run(["umount", str(point)], check=True)
    return image


async def measure(root: Path, image: Path) -> dict[str, float]:
    small = root / "small"
    small.mkdir()
    (small / "a.txt").write_text("a\n")
    point = root / "usb"
    point.mkdir()
    figures: dict[str, float] = {}
    app = SdtuiApp(str(small), data_dir=root / "data")
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, ExplorerScreen)
        sidebar = screen.query_one(Sidebar)
        await wait_until(lambda: any(k.startswith("vol-") for k in sidebar._places))  # the mount table is watched
        await pilot.pause(1.0)
        subprocess.run(["mount", "-o", "loop", str(image), str(point)], check=True)
        figures["mount -> shown in the sidebar (s)"] = await wait_until(lambda: f"vol-{point}" in sidebar._places)

        pane = screen.active
        fl = pane.file_list
        painted: list[float] = []
        render_line = fl.render_line

        def spy(y: int):  # type: ignore[no-untyped-def]
            if int(fl.scroll_offset.y) + y < len(fl.rows):
                painted.append(time.perf_counter())
            return render_line(y)

        fl.render_line = spy  # type: ignore[method-assign]

        async def first_screen(folder: Path, rows: int) -> float:
            await pilot.pause(0.3)
            painted.clear()
            opened = time.perf_counter()
            pane.open(app.core.local_path(str(folder)))
            await wait_until(lambda: bool(painted) and pane.path is not None and pane.path.path == str(folder))
            took = painted[0] - opened
            await wait_until(lambda: fl.state == "ready" and len(fl.entries) >= rows)
            return took

        disk, local = [], []
        for _ in range(ROUNDS):
            disk.append(await first_screen(point, 100))
            local.append(await first_screen(small, 1))
        figures["first screen of the disk's root (s, median)"] = statistics.median(disk)
        figures["first screen of a 1-file local folder (s, median)"] = statistics.median(local)
        figures["ratio disk / local"] = statistics.median(disk) / statistics.median(local)

        await pilot.pause(0.5)
        started = time.perf_counter()
        subprocess.run(["umount", str(point)], check=True)
        unmounted = time.perf_counter()
        await wait_until(lambda: f"vol-{point}" not in sidebar._places)
        figures["umount command itself (s)"] = unmounted - started
        figures["umount done -> gone from the sidebar (s)"] = time.perf_counter() - unmounted
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("mounting a disk image needs root")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["HOME"] = str(root)
        image = make_disk(root, args.files)
        figures = asyncio.run(measure(root, image))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    for name, value in figures.items():
        print(f"{name:52} {value:8.3f}")
    print(f"(load average {load}, {args.files:,} files on the disk)")


if __name__ == "__main__":
    main()
