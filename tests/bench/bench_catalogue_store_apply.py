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
Beside `apply` as it is (the search index kept by its statements), the same with the index kept by triggers made in
the kept file instead (TRIGGERS, and `apply`'s index statements made to do nothing): the brief's question of which
costs less.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_catalogue  # noqa: E402
from bench_catalogue_file import change_some, cpu_self, owner_library  # noqa: E402
from bench_catalogue_views import merged_into_own_tables  # noqa: E402

from sdcore.index.indexer import index_location  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402
from sdcore.library.schema import add_functions  # noqa: E402
from sdcore.sync import catalogue_store_apply  # noqa: E402
from sdcore.sync.catalogue import CatalogueBatch, apply_catalogue, catalogue_changes  # noqa: E402
from sdcore.sync.catalogue_file import make  # noqa: E402
from sdcore.sync.catalogue_store import (  # noqa: E402
    INDEXED_EXT,
    INDEXED_NAME,
    INDEXED_PATH,
    ext_token,
    keep,
    path_of,
    staging_path,
)
from sdcore.sync.catalogue_store_apply import apply  # noqa: E402

TRIGGERS = [
    f"CREATE TRIGGER entry_in AFTER INSERT ON entries WHEN new.parent_id IS NOT NULL BEGIN INSERT INTO search_index"
    f" (rowid, name, ext) VALUES (new.id, {INDEXED_NAME.replace('name', 'new.name')},"
    f" {INDEXED_EXT.replace('kind_code', 'new.kind_code').replace('(name)', '(new.name)')}); END",
    f"CREATE TRIGGER entry_out AFTER DELETE ON entries WHEN old.parent_id IS NOT NULL BEGIN INSERT INTO search_index"
    f" (search_index, rowid, name, ext) VALUES ('delete', old.id, {INDEXED_NAME.replace('name', 'old.name')},"
    f" {INDEXED_EXT.replace('kind_code', 'old.kind_code').replace('(name)', '(old.name)')}); END",
    # (one trigger each way: the old row out of the index before the new one in, as two triggers would not be)
    f"CREATE TRIGGER entry_moved AFTER UPDATE OF parent_id, name, kind_code ON entries BEGIN"
    f" INSERT INTO search_index (search_index, rowid, name, ext) SELECT 'delete', old.id,"
    f" {INDEXED_NAME.replace('name', 'old.name')}, {INDEXED_EXT.replace('kind_code', 'old.kind_code').replace('(name)', '(old.name)')}"
    f" WHERE old.parent_id IS NOT NULL; INSERT INTO search_index (rowid, name, ext) SELECT new.id,"
    f" {INDEXED_NAME.replace('name', 'new.name')}, {INDEXED_EXT.replace('kind_code', 'new.kind_code').replace('(name)', '(new.name)')}"
    " WHERE new.parent_id IS NOT NULL; END",
    f"CREATE TRIGGER path_in AFTER INSERT ON directory_paths WHEN new.path != '' BEGIN INSERT INTO folder_index"
    f" (rowid, path) VALUES (new.entry_id, {INDEXED_PATH.replace('path', 'new.path')}); END",
    f"CREATE TRIGGER path_out AFTER DELETE ON directory_paths WHEN old.path != '' BEGIN INSERT INTO folder_index"
    f" (folder_index, rowid, path) VALUES ('delete', old.entry_id, {INDEXED_PATH.replace('path', 'old.path')}); END",
    f"CREATE TRIGGER path_moved AFTER UPDATE OF path ON directory_paths BEGIN INSERT INTO folder_index"
    f" (folder_index, rowid, path) SELECT 'delete', old.entry_id, {INDEXED_PATH.replace('path', 'old.path')}"
    f" WHERE old.path != ''; INSERT INTO folder_index (rowid, path) SELECT new.entry_id,"
    f" {INDEXED_PATH.replace('path', 'new.path')} WHERE new.path != ''; END",
]
"""The search index kept by triggers in the kept file (the alternative measured)."""
NO_STATEMENTS = {"_UNINDEX": "SELECT 1 FROM entries WHERE 0 AND ", "_INDEX": "SELECT 1 FROM entries WHERE 0 AND ",
                 "_UNINDEX_PATHS": "SELECT 1 FROM directory_paths WHERE 0 AND ",
                 "_INDEX_PATHS": "SELECT 1 FROM directory_paths WHERE 0 AND "}  # fmt: skip


@contextmanager
def by_triggers() -> Iterator[None]:
    """`apply` with its index statements doing nothing (the triggers do it)."""
    saved = {name: getattr(catalogue_store_apply, name) for name in NO_STATEMENTS}
    for name, sql in NO_STATEMENTS.items():
        setattr(catalogue_store_apply, name, sql)
    try:
        yield
    finally:
        for name, sql in saved.items():
            setattr(catalogue_store_apply, name, sql)


def with_triggers(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    add_functions(conn)
    conn.create_function("ext_token", 1, ext_token, deterministic=True)
    for sql in TRIGGERS:
        conn.execute(sql)
    conn.close()


def digest(path: Path) -> int:
    """Of a kept file's rows and what its search indexes hold (each term and how many rows have it)."""
    conn = sqlite3.connect(path)
    found = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("locations", "entries", "directory_paths")]
    for index in ("search_index", "folder_index"):
        conn.execute(f"CREATE VIRTUAL TABLE temp.v_{index} USING fts5vocab(main, {index}, row)")
        found.append(conn.execute(f"SELECT term, doc FROM temp.v_{index} ORDER BY term").fetchall())
    conn.close()
    return hash(repr(found))


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
        triggered = Library(create_folder(work / "triggered", "receiver"), LibraryContext.this_device_only(uuid.uuid4()))
        (triggered.folder / "catalogues").mkdir()
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
            shutil.copy(kept_template, path_of(triggered, device))
            with_triggers(path_of(triggered, device))
            shutil.copytree(work / "merged", work / f"merged{r}")
            (folder,) = (work / f"merged{r}").glob("*.sdlibrary")
            merged = Library(folder, LibraryContext.this_device_only(uuid.uuid4()))
            for what, batch in batches.items():
                ways = [("file", lambda b=batch: apply(keeper, device, b)),
                        ("triggers", lambda b=batch: apply(triggered, device, b)),
                        ("own tables", lambda b=batch, m=merged: apply_catalogue(m, device, b))]  # fmt: skip
                for way, run in ways if r % 2 == 0 else ways[::-1]:
                    start, wall = cpu_self(), time.perf_counter()
                    with by_triggers() if way == "triggers" else nullcontext():
                        run()
                    runs.setdefault((what, way), []).append((cpu_self() - start, time.perf_counter() - wall))
            merged.close()
            shutil.rmtree(work / f"merged{r}")
        keeper.close()
        triggered.close()
        assert digest(path_of(keeper, device)) == digest(path_of(triggered, device))
        ways = ("file", "triggers", "own tables")
        print(f"\n{'batch':16}" + "".join(f" {way + ': s CPU':>18} {'wall':>6}" for way in ways) + f"  ({bench_catalogue.load()})")
        for what in batches:
            line = f"{what:16}"
            for way in ways:
                taken = runs[(what, way)]
                line += f" {statistics.median(c for c, _ in taken):18.3f} {statistics.median(w for _, w in taken):6.2f}"
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
