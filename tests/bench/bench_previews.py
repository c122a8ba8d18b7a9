"""Benchmark of previews and archives against issue 19's budgets: `python tests/bench/bench_previews.py`.

- the preview of a 24-megapixel JPEG (a photo-like one and a worst case of noise), and from the library's thumbnail,
- a zip of 100,000 members opened in the explorer: first screen, and the whole listing (beside a folder of as many),
- the disk usage view of a location of 200,000 entries, from the index's totals.
Each figure is printed with its budget and the ratio figure/budget (below 1.0 is within budget); wall and CPU time
are both given, since a loaded machine stretches the wall time.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from PIL import Image, ImageFilter

from sdcore import preview
from sdcore.fs import archive
from sdcore.index.media import describe_image
from sdcore.sdpath import SdPath
from sdtui.app import SdtuiApp
from sdtui.widgets.file_list import FileList
from sdtui.widgets.pane import Pane


def timed(fn, runs: int = 3) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The best wall and CPU seconds of `runs` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def report(name: str, seconds: tuple[float, float], budget: float) -> None:
    wall, cpu = seconds
    cpu_said = f"cpu {cpu * 1000:7.1f} ms" if cpu != wall else "(wall only)    "
    print(f"{name:52} wall {wall * 1000:7.1f} ms  {cpu_said}  budget {budget * 1000:.0f} ms  ratio {wall / budget:.2f}")


async def first_screens(root: Path, folders: list[Path], rounds: int = 5) -> dict[Path, list[tuple[float, float, float]]]:
    """(wall seconds to the first screen of rows, CPU seconds of the process meanwhile, wall seconds to the whole
    listing) of each folder in the explorer, `rounds` times, the folders taken in turn (side by side in one run);
    an archive is read afresh each time (its index dropped first)."""
    app = SdtuiApp(str(root), data_dir=root / "data")
    found: dict[Path, list[tuple[float, float, float]]] = {f: [] for f in folders}
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.5)
        left = app.screen.query_one("#left", Pane)
        fl = left.query_one(FileList)
        for _ in range(rounds):
            for folder in folders:
                archive._cache.clear()
                left.open(SdPath(app.api.device.id, "/"))
                while fl.state != "ready":
                    await asyncio.sleep(0.005)
                await pilot.pause(0.2)
                cpu = time.process_time()
                left.open(SdPath(app.api.device.id, str(folder)))
                fl.first_batch_in = None
                while fl.first_batch_in is None:
                    await asyncio.sleep(0.002)
                first_cpu = time.process_time() - cpu
                while fl.state != "ready":
                    await asyncio.sleep(0.005)
                found[folder].append((fl.first_batch_in, first_cpu, fl.loaded_in or 0.0))
    return found


async def enter_after_resting(root: Path, pack: Path, rounds: int = 4) -> list[tuple[float, float]]:
    """(wall, CPU) seconds to the first screen of Enter on archive `pack` after the cursor rested on it (its preview
    read meanwhile), read afresh each round: what a user does."""
    app = SdtuiApp(str(root), data_dir=root / "data")
    found = []
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.5)
        left = app.screen.query_one("#left", Pane)
        fl = left.query_one(FileList)
        for _ in range(rounds):
            archive._cache.clear()
            left.open(SdPath(app.api.device.id, str(pack.parent)), cursor_name=pack.name)
            while fl.state != "ready":
                await asyncio.sleep(0.005)
            await pilot.pause(0.4)  # the cursor rests on it: its preview is read
            cpu = time.process_time()
            left.open(SdPath(app.api.device.id, str(pack)))
            fl.first_batch_in = None
            while fl.first_batch_in is None:
                await asyncio.sleep(0.002)
            found.append((fl.first_batch_in, time.process_time() - cpu))
            while fl.state != "ready":
                await asyncio.sleep(0.005)
    return found


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def tar_index_memory(root: Path, members: int = 100_000) -> None:
    """Memory and time to index a .tar.gz of `members` one-byte members (issue 19: 76 MB and 3.7 s before)."""
    import io
    import tarfile
    import tracemalloc

    pack = root / "many.tar.gz"
    with tarfile.open(pack, "w:gz") as tf:
        for i in range(members):
            info = tarfile.TarInfo(f"dir/file{i:06d}.txt")
            info.size = 1
            tf.addfile(info, io.BytesIO(b"x"))
    archive._cache.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    idx = archive.index(str(pack))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    archive._cache.clear()
    tracemalloc.start()
    idx = archive.index(str(pack))
    kept = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"tar.gz of {members:,} members ({pack.stat().st_size / 1e6:.1f} MB): index wall {wall * 1000:.0f} ms, cpu "
          f"{cpu * 1000:.0f} ms; kept {kept[0] / 1e6:.1f} MB ({kept[0] / members:.0f} bytes a member, peak "
          f"{kept[1] / 1e6:.1f} MB), estimated {idx.cost / 1e6:.1f} MB")


async def usage_of_a_location(root: Path) -> tuple[float, float]:
    """Seconds (wall, cpu) to the first answer of `api.usage` (apparent sizes: the index's totals) on a location of
    200,000 files in 200 folders."""
    from sdcore.api import Api
    from sdcore.core import Core
    from sdcore.index.indexer import index_location

    tree = root / "located"
    for d in range(200):
        (tree / f"d{d:03d}").mkdir(parents=True)
        for f in range(1000):
            os.close(os.open(tree / f"d{d:03d}" / f"f{f:04d}", os.O_CREAT | os.O_WRONLY))
    async with Core(root / "data-usage") as core:
        library = core.library()
        location = library.locations.add(str(tree), name="located", mode="shallow")
        await library.jobs.wait(await index_location(library, location))
        api = Api(core)
        best = (float("inf"), float("inf"))
        for _ in range(3):
            wall, cpu = time.perf_counter(), time.process_time()
            async for first in api.usage(SdPath(core.device.id, str(tree)), apparent=True):
                assert sum(e.files or 0 for e in first) == 200_000
                break
            best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        return best


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-previews-") as tmp:
        root = Path(tmp)
        photo, noise = root / "photo.jpg", root / "noise.jpg"
        Image.effect_noise((1500, 1000), 40).convert("RGB").filter(ImageFilter.GaussianBlur(2)).resize(
            (6000, 4000)).save(photo, quality=85)  # fmt: skip
        Image.effect_noise((6000, 4000), 60).convert("RGB").save(noise, quality=90)
        box = (44, 40)
        report(f"24 MP JPEG, photo-like ({photo.stat().st_size >> 10} KB)",
               timed(lambda: preview.picture(str(photo), box)), 0.300)  # fmt: skip
        report(f"24 MP JPEG, noise ({noise.stat().st_size >> 10} KB)",
               timed(lambda: preview.picture(str(noise), box)), 0.300)  # fmt: skip
        describe_image(str(noise), root / "thumbs", "0123456789abcdef")
        thumb = root / "thumbs" / "012" / "0123456789abcdef.webp"
        report("24 MP JPEG from the library's thumbnail", timed(lambda: preview.picture(str(noise), box, thumb)), 0.050)

        zip_path = root / "many.zip"
        with zipfile.ZipFile(zip_path, "w") as zf:
            for i in range(100_000):
                zf.writestr(f"dir/file{i:06d}.txt", b"x")

        def whole() -> None:
            archive._cache.clear()
            archive.index(str(zip_path))

        report("zip of 100,000 members: whole index", timed(whole), 0.300)
        plain = root / "plain"
        plain.mkdir()
        for i in range(100_000):
            os.close(os.open(plain / f"file{i:06d}.txt", os.O_CREAT | os.O_WRONLY))
        screens = asyncio.run(first_screens(root, [zip_path / "dir", plain]))
        for folder, label in ((zip_path / "dir", "zip of 100,000 members"), (plain, "a folder of 100,000 files")):
            runs = screens[folder]
            first, cpu, loaded = (median([r[i] for r in runs]) for i in range(3))
            report(f"{label}: first screen (median of {len(runs)})", (first, cpu), 0.300)
            report(f"{label}: whole listing", (loaded, loaded), 1.5)
        ratio = [z[0] / f[0] for z, f in zip(screens[zip_path / "dir"], screens[plain], strict=True)]
        print(f"first screen zip/folder, each round: {' '.join(f'{r:.2f}' for r in ratio)}")
        project = root / "project" / "project.zip"
        project.parent.mkdir()
        with zipfile.ZipFile(project, "w") as zf:
            for i in range(100_000):
                zf.writestr(f"project-1.0/file{i:06d}.txt", b"x")
        runs = asyncio.run(enter_after_resting(root, project))
        report("Enter on a zip of 100,000 members under one folder, after resting on it",
               (median([r[0] for r in runs]), median([r[1] for r in runs])), 0.300)  # fmt: skip
        tar_index_memory(root)
        report("disk usage of a location of 200,000 entries", asyncio.run(usage_of_a_location(root)), 0.200)
    print("load:", " ".join(f"{x:.2f}" for x in os.getloadavg()), "on", os.cpu_count(), "cores", file=sys.stderr)


if __name__ == "__main__":
    main()
