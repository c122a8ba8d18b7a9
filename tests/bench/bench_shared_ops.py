"""Benchmark: what the operation log costs and how fast another device takes it in.

    python tests/bench/bench_shared_ops.py [--files 10000] [--work DIR]

A folder of FILES files is indexed (shallow) in library A, whose folder is then copied as device B's. Timed,
side by side in one run: tagging every file on A one call per 1,000 files, as `tags.assign` did before the log
(the same rows written straight into tag_assignments, in a copy of A) and as it does now (an op per file, in the
same transaction); `ops_since` of all of A's ops; B's `apply` of them (in batches of 1,000, as a pull does);
and applying them a second time (all known: nothing changes). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sdcore import tags  # noqa: E402
from sdcore.index.indexer import index_location  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402

BATCH = 1000


def open_as(folder: Path, device: uuid.UUID) -> Library:
    return Library(folder, LibraryContext.this_device_only(device))


def assign_without_log(library: Library, name: str, entry_ids: list[int]) -> None:
    """`tags.assign` before the operation log (commit b7b2b23): the rows alone."""
    with library.write() as db:
        tag_id = db.execute("SELECT id FROM tags WHERE name = ?", (name,)).fetchone()[0]
        for entry_id in entry_ids:  # its _check_entries
            db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone()
        now = time.time()
        db.executemany(
            "INSERT OR IGNORE INTO tag_assignments (tag_id, entry_id, cas_id, created) VALUES (?, ?, ?, ?)",
            [(tag_id, e, None, now) for e in entry_ids],
        )


def tag_all(library: Library, ids: list[int], assign: object) -> float:
    t0 = time.perf_counter()
    for start in range(0, len(ids), BATCH):
        assign(library, "bench", ids[start : start + BATCH])  # type: ignore[operator]
    return time.perf_counter() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--work", help="A folder to work in (default: a temporary one, removed after).")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench_shared_"))
    try:
        tree = work / "tree"
        tree.mkdir(parents=True)
        for n in range(args.files):
            (tree / f"file{n:06}.txt").touch()
        a_id, b_id = uuid.uuid4(), uuid.uuid4()
        folder = create_folder(work / "a", "Bench")
        a = open_as(folder, a_id)
        location = a.locations.add(str(tree), mode="shallow")
        assert (await a.jobs.wait(await index_location(a, location))).state == "completed"
        ids = [r[0] for r in a.read().execute("SELECT id FROM entries WHERE parent_id IS NOT NULL ORDER BY id")]
        tags.create(a, "bench")
        a.close()
        copies = {}
        for name in ("before", "b"):
            copies[name] = work / name / folder.name
            shutil.copytree(folder, copies[name], ignore=shutil.ignore_patterns(".lock"))
        before, a = open_as(copies["before"], a_id), open_as(folder, a_id)
        seconds_before = tag_all(before, ids, assign_without_log)
        seconds_after = tag_all(a, ids, lambda lib, name, chunk: tags.assign(lib, name, chunk))
        assert len(tags.entries(a, "bench")) == len(ids) == len(tags.entries(before, "bench"))

        t0 = time.perf_counter()
        ops = a.sync.ops_since({}, 10 * len(ids))
        seconds_ops_since = time.perf_counter() - t0
        b = open_as(copies["b"], b_id)
        t0 = time.perf_counter()
        for start in range(0, len(ops), BATCH):
            b.sync.apply(ops[start : start + BATCH])
        seconds_apply = time.perf_counter() - t0
        assert len(tags.entries(b, "bench")) == len(ids) and b.sync.digest() == a.sync.digest()
        t0 = time.perf_counter()
        again = sum(b.sync.apply(ops[start : start + BATCH]) for start in range(0, len(ops), BATCH))
        seconds_again = time.perf_counter() - t0
        assert again == 0
        print(json.dumps({
            "files": len(ids),
            "ops": len(ops),
            "tag_all_before_s": round(seconds_before, 3),
            "tag_all_with_log_s": round(seconds_after, 3),
            "log_cost_ratio": round(seconds_after / seconds_before, 2),
            "ops_since_s": round(seconds_ops_since, 3),
            "apply_s": round(seconds_apply, 3),
            "apply_again_s": round(seconds_again, 3),
            "load": os.getloadavg()[0],
        }))
        for library in (a, b, before):
            library.close()
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
