"""Keeping another device's catalogue up to date from its batches: in a file of its own (sdcore.sync.catalogue_store_apply
`apply`) vs in the library's own tables (sdcore.sync.catalogue `apply_catalogue`, today).

Run: python tests/bench/bench_catalogue_store_apply.py [--files 200000] [--rounds 3]

On the catalogue of a real indexed library (bench_catalogue's 200k tree), kept both ways by a second library from the
same file, the owner then changes and the same batches (packed and unpacked, as the wire brings them) are applied
each way, in one process, side by side, alternating, CPU (user+sys) and wall, median of the rounds:
1. 1,000 files changed (their times) and a folder renamed (bench_catalogue_file.change_some);
2. 5,000 files changed: a batch of 5,000 entries;
3. 5,000 files added in a new location (a batch of 5,000 new entries; apply_catalogue writes those without Python per
   entry).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_catalogue  # noqa: E402
from bench_catalogue_file import change_some, cpu_self, owner_library  # noqa: E402
from bench_catalogue_views import merged_into_own_tables  # noqa: E402

from sdcore.index.indexer import index_location  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402
from sdcore.sync.catalogue import CatalogueBatch, apply_catalogue, catalogue_changes  # noqa: E402
from sdcore.sync.catalogue_file import make  # noqa: E402
from sdcore.sync.catalogue_store import keep, path_of, staging_path  # noqa: E402
from sdcore.sync.catalogue_store_apply import apply  # noqa: E402


def batch_after(owner: Library, since: int) -> CatalogueBatch:
    batch = CatalogueBatch.unpack(catalogue_changes(owner, since, 5000).pack())
    return batch


async def add_files(owner: Library, where: Path, count: int) -> None:
    for i in range(count):
        folder = where / f"new{i // 100}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"added {i}.txt").write_text(f"file {i}")
    loc = owner.locations.add(str(where), mode="content")
    record = await owner.jobs.wait(await index_location(owner, loc))
    assert record.state == "completed", record.error


async def bench(tree: Path, rounds: int) -> None:
    with tempfile.TemporaryDirectory(dir=bench_catalogue.CORPUS) as tmp:
        work = Path(tmp)
        owner_folder, _receiver, owner_id = await bench_catalogue.owner_and_receiver(work, tree)
        owner = owner_library(owner_folder, owner_id)
        made = work / "made.db"
        make(owner, made)
        merged_into_own_tables(made, owner_id, work / "merged")  # (today's way, as a first sync leaves it)
        keeper = Library(create_folder(work / "kept", "receiver"), LibraryContext.this_device_only(uuid.uuid4()))
        device = owner.context.device_id
        shutil.copy(made, staging_path(keeper, device))
        keep(keeper, device)
        kept_template = work / "kept-template.db"
        shutil.copy(path_of(keeper, device), kept_template)
        head = catalogue_changes(owner, 0, 1).head
        owner.close()
        change_some(Path(owner_folder) / "database.db", 1000)
        owner = owner_library(owner_folder, owner_id)
        batches = {"1,000 changed": batch_after(owner, head)}
        owner.close()
        change_some(Path(owner_folder) / "database.db", 5000)
        owner = owner_library(owner_folder, owner_id)
        batches["5,000 changed"] = batch_after(owner, batches["1,000 changed"].up_to)
        await add_files(owner, work / "added", 5000)
        batches["5,000 added"] = batch_after(owner, batches["5,000 changed"].up_to)
        owner.close()
        for what, batch in batches.items():
            print(f"{what}: {len(batch.entries):,} entries, {batch.since} -> {batch.up_to} of {batch.head}")
        runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in range(rounds):
            shutil.copy(kept_template, path_of(keeper, device))
            shutil.copytree(work / "merged", work / f"merged{r}")
            (folder,) = (work / f"merged{r}").glob("*.sdlibrary")
            merged = Library(folder, LibraryContext.this_device_only(uuid.uuid4()))
            for what, batch in batches.items():
                ways = [("file", lambda b=batch: apply(keeper, device, b)),
                        ("own tables", lambda b=batch, m=merged: apply_catalogue(m, device, b))]  # fmt: skip
                for way, run in ways if r % 2 == 0 else ways[::-1]:
                    start, wall = cpu_self(), time.perf_counter()
                    run()
                    runs.setdefault((what, way), []).append((cpu_self() - start, time.perf_counter() - wall))
            merged.close()
            shutil.rmtree(work / f"merged{r}")
        keeper.close()
        print(f"\n{'batch':16} {'file: s CPU':>12} {'wall':>6} {'own tables: s CPU':>18} {'wall':>6}  ({bench_catalogue.load()})")
        for what in batches:
            cells = []
            for way in ("file", "own tables"):
                taken = runs[(what, way)]
                cells.append((statistics.median(c for c, _ in taken), statistics.median(w for _, w in taken)))
            print(f"{what:16} {cells[0][0]:12.3f} {cells[0][1]:6.2f} {cells[1][0]:18.3f} {cells[1][1]:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
