"""The catalogue's costs, side by side in one run (issue 16). Run: python tests/bench/bench_catalogue.py [--files N].

1. What numbering changes costs the indexer: the same tree indexed into a library that does not sync and into one
   that does (its changes numbered), alternately, best of each; the ratio.
2. A first sync of an N-entry catalogue (default 200,000): catalogue_changes -> pack -> msgpack -> unpack ->
   apply_catalogue, batch after batch, in a process of its own (its peak memory is the sync's); beside it, a copy
   of the owner's database file (what scp would move).
3. Search over 1,000,000 entries of three devices (one's own index, two catalogues): p50 and p99 of a set of
   queries, in-process.
Corpora are made with /work/shared/bench/gen_tree.py under $SD_BENCH_DIR (default /work/corpus).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
GEN = ROOT.parent / "shared" / "bench" / "gen_tree.py"
if not GEN.exists():
    GEN = Path("/work/shared/bench/gen_tree.py")
CORPUS = Path(os.environ.get("SD_BENCH_DIR", "/work/corpus"))


def corpus(name: str, files: int, dirs: int) -> Path:
    out = CORPUS / name
    if not out.exists():
        CORPUS.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "tree", str(out), "--files", str(files), "--dirs", str(dirs),
                        "--scale", "0.001"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


async def index_into(data: Path, tree: Path, mode: str, how: str) -> float:
    """Index `tree` into a new library: `how` = "before" (no catalogue triggers, as before this issue), "unshared"
    (the triggers, but the library not shared) or "shared" (every change numbered)."""
    from sdcore.core import Core
    from sdcore.index.indexer import index_location
    from sdcore.sync.catalogue import start_tracking

    async with Core(data) as core:
        library = core.library()
        if how == "shared":
            start_tracking(library)
        elif how == "before":
            with library.write() as db:
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'catalogue%'").fetchall():
                    db.execute(f"DROP TRIGGER {name}")
        loc = library.locations.add(str(tree), mode=mode)
        start = time.perf_counter()
        record = await library.jobs.wait(await index_location(library, loc))
        took = time.perf_counter() - start
        assert record.state == "completed", record.error
    return took


def bench_tracking(tree: Path, rounds: int) -> None:
    with tempfile.TemporaryDirectory(dir=CORPUS) as tmp:  # a first read of the tree, not counted: the OS caches it
        asyncio.run(index_into(Path(tmp) / "data", tree, "content", "before"))
    for mode in ("shallow", "content"):
        times: dict[str, list[float]] = {"before": [], "unshared": [], "shared": []}
        for _ in range(rounds):
            for how in times:
                with tempfile.TemporaryDirectory(dir=CORPUS) as tmp:
                    times[how].append(asyncio.run(index_into(Path(tmp) / "data", tree, mode, how)))
        before, unshared, shared = (min(times[how]) for how in ("before", "unshared", "shared"))
        print(f"index {mode:8} without the catalogue {before:6.2f} s; not shared {unshared:6.2f} s x{unshared / before:.3f};"
              f" shared (changes numbered) {shared:6.2f} s x{shared / before:.3f}  [{load()}]")  # fmt: skip


def sync_child(owner: str, receiver: str, owner_id: str) -> None:
    """In a process of its own: pull the owner's whole catalogue into the receiver, as the wire would carry it."""
    import msgpack

    from sdcore.library.context import LibraryContext
    from sdcore.library.library import Library
    from sdcore.sync.catalogue import (
        CatalogueBatch,
        apply_catalogue,
        catalogue_changes,
        catalogue_watermark,
    )

    a = Library(Path(owner), LibraryContext.this_device_only(uuid.UUID(owner_id)))
    b = Library(Path(receiver), LibraryContext.this_device_only(uuid.uuid4()))
    start = time.perf_counter()
    sent = batches = 0
    reading = 0.0
    while True:
        began = time.perf_counter()
        batch = catalogue_changes(a, catalogue_watermark(b, a.context.device_id), 5000)
        wire = msgpack.packb(batch.pack())
        reading += time.perf_counter() - began
        sent += len(wire)
        apply_catalogue(b, a.context.device_id, CatalogueBatch.unpack(msgpack.unpackb(wire)))
        batches += 1
        if batch.complete:
            break
    took = time.perf_counter() - start
    print(f"(the owner's side: {reading:.2f} s)", file=sys.stderr)
    count = b.read().execute("SELECT count(*) FROM catalogue_entries").fetchone()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{took:.2f} {count} {batches} {sent} {peak:.0f}")


async def owner_and_receiver(tmp: Path, tree: Path) -> tuple[str, str, str]:
    """Two devices' data dirs in `tmp`: the owner's library with `tree` indexed (content), a new device's empty one;
    returns their library folders and the owner's device id."""
    from sdcore.core import Core
    from sdcore.index.indexer import index_location

    async with Core(tmp / "owner") as core, Core(tmp / "receiver") as other:
        library = core.library()
        loc = library.locations.add(str(tree), mode="content")
        record = await library.jobs.wait(await index_location(library, loc))
        assert record.state == "completed", record.error
        return str(library.folder), str(other.library().folder), str(core.device.id)


async def first_sync(tree: Path) -> None:
    with tempfile.TemporaryDirectory(dir=CORPUS) as tmp:
        owner, receiver, owner_id = await owner_and_receiver(Path(tmp), tree)
        database = Path(owner) / "database.db"
        start = time.perf_counter()
        shutil.copyfile(database, Path(tmp) / "copy.db")
        os.sync()
        copy = time.perf_counter() - start
        out: Any = subprocess.run(
            [sys.executable, __file__, "--sync-child", owner, receiver, owner_id], check=True, capture_output=True, text=True
        )
        print(out.stderr.strip())
        out = out.stdout.split()
        took, count, batches, sent, peak = float(out[0]), int(out[1]), int(out[2]), int(out[3]), float(out[4])
        print(f"first sync of {count:,} entries: {took:.2f} s in {batches} batches ({sent / 2**20:.0f} MiB on the wire),"
              f" {count / took:,.0f} entries/s, peak memory {peak:.0f} MB; copying the owner's database file "
              f"({database.stat().st_size / 2**20:.0f} MiB) took {copy:.2f} s  [{load()}]")  # fmt: skip


WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo",
         "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango"]  # fmt: skip


def bench_search(total: int, keep: Path | None = None) -> None:
    """Three devices' entries in one library: two others' applied as catalogues, one's own (made the same way).

    With `keep`, the library is made there once and reused by later runs (opened, so migrated, by the code of the day).
    """
    from sdcore.library.context import LibraryContext
    from sdcore.library.library import Library

    if keep is not None and (keep / "three.sdlibrary").exists():
        start = time.perf_counter()
        library = Library(keep / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4()))
        print(f"reused the library in {keep} (opened in {time.perf_counter() - start:.1f} s)  [{load()}]")
        search_three(library)
        library.close()
        return
    with tempfile.TemporaryDirectory(dir=CORPUS) as tmp:
        library = make_three(Path(tmp) if keep is None else keep, total)
        search_three(library)
        library.close()


def make_three(where: Path, total: int, devices: int = 3):  # type: ignore[no-untyped-def]
    from sdcore.library.context import LibraryContext
    from sdcore.library.library import Library, create_folder
    from sdcore.sync.catalogue import CatalogueBatch, CatalogueEntry, CatalogueLocation, apply_catalogue

    words = WORDS
    exts = ["jpg", "txt", "pdf", "py", "mp3", "md"]
    if True:
        folder = create_folder(where, "three")
        library = Library(folder, LibraryContext.this_device_only(uuid.uuid4()))
        per_device = total // devices
        start = time.perf_counter()
        for d in range(devices):
            device = uuid.uuid4()
            entries: list[CatalogueEntry] = []
            seq = 0

            def send(
                entries: list[CatalogueEntry], locations: tuple[CatalogueLocation, ...], device: uuid.UUID = device,
                name: str = f"device{d}",
            ) -> None:
                nonlocal seq
                head = per_device // 5000 + 3  # a first sync: complete with its last batch
                apply_catalogue(library, device, CatalogueBatch(device, name, seq, seq + 1, head, locations, tuple(entries)))
                seq += 1

            root = 1
            send([CatalogueEntry(root, 1, None, "", "dir", None, 0, 0, None, False, None)],
                 (CatalogueLocation(1, f"/home/device{d}", "home", "content", "indexed", 0.0, 0.0, root),))
            next_id, dirs = 2, []
            for i in range(per_device // 100):
                dirs.append(CatalogueEntry(next_id, 1, root, f"{words[i % 20]}-{i}", "dir", None, 0, 0, 1.7e9, False, None))
                next_id += 1
            send(dirs, ())
            for i in range(per_device):
                parent = dirs[i % len(dirs)].id
                name = f"{words[(i * 7) % 20]}_{words[(i * 13) % 20]}_{i}.{exts[i % len(exts)]}"
                entries.append(CatalogueEntry(next_id, 1, parent, name, "file", None, i % 100_000, 0, 1.7e9 + i, False,
                                              f"{(i * 2654435761) % (1 << 64):016x}"))  # fmt: skip
                next_id += 1
                if len(entries) == 5000:
                    send(entries, ())
                    entries = []
            if entries:
                send(entries, ())
            apply_catalogue(library, device, CatalogueBatch(device, f"device{d}", seq, seq + 3, seq + 3))
        took = time.perf_counter() - start
        count = library.read().execute("SELECT count(*) FROM entries").fetchone()[0]
        print(f"applied {count:,} catalogue entries of {devices} devices in {took:.1f} s ({count / took:,.0f}/s)  [{load()}]")
        return library


def search_three(library):  # type: ignore[no-untyped-def]
    from sdcore.search import Query, run

    words = WORDS
    if True:
        count = library.read().execute("SELECT count(*) FROM entries").fetchone()[0]
        queries = [Query(w) for w in words] + [Query(f"{a} {b}") for a, b in zip(words, words[1:], strict=False)] + [
            Query("", ext=("pdf",), limit=100), Query("sierra", sort="size"), Query("tango_golf"), Query("*.md", limit=50),
        ]  # fmt: skip
        for q in queries[:3]:
            run(library, q)  # warm the cache as a user's second search would find it
        times = []
        slowest: dict[str, float] = {}
        for _ in range(3):
            for q in queries:
                start = time.perf_counter()
                run(library, q)
                took_ms = (time.perf_counter() - start) * 1000
                times.append(took_ms)
                what = f"{q.text!r} ext={q.ext} sort={q.sort}"
                slowest[what] = max(slowest.get(what, 0.0), took_ms)
        print("slowest:", ", ".join(f"{w} {t:.0f} ms" for w, t in sorted(slowest.items(), key=lambda x: -x[1])[:4]))
        times.sort()
        p50, p99 = statistics.median(times), times[int(len(times) * 0.99) - 1]
        print(f"search over {count:,} entries of three devices: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
              f"({len(times)} searches)  [{load()}]")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--sync-child":
        sync_child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--tracking-files", type=int, default=40_000)
    parser.add_argument("--search-entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("tracking", "sync", "search"))
    parser.add_argument("--search-keep", type=Path, help="make the search library here once, reuse it after")
    args = parser.parse_args()
    os.environ.setdefault("SD_DATA_DIR", str(CORPUS / "unused-data"))
    if args.only in (None, "tracking"):
        bench_tracking(corpus(f"catalogue-{args.tracking_files}", args.tracking_files, args.tracking_files // 20),
                       args.rounds)  # fmt: skip
    if args.only in (None, "sync"):
        asyncio.run(first_sync(corpus(f"catalogue-{args.files}", args.files, args.files // 20)))
    if args.only in (None, "search"):
        bench_search(args.search_entries, args.search_keep)


if __name__ == "__main__":
    main()
