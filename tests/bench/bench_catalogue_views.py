"""Issue 16's first-sync budget: why another device's catalogue must stay a file of its own, and a way to read it
with the SQL the library already has (measured before anyone rebuilds the read paths).

Run: python tests/bench/bench_catalogue_views.py [--files 200000] [--rounds 3]

In one run, on the catalogue of a real indexed library (bench_catalogue's 200k tree), CPU of every process taking
part, median of the rounds:
1. The floor of keeping other devices' catalogues in the library's own tables, as today: `scp` of the owner's
   database.db over loopback (a real sshd) beside the receiver writing the owner's catalogue file, already received
   and checked, into its own tables (`apply_catalogue` of one batch holding it all: no wire, no msgpack, no batch
   checks). If that alone is over 2x scp, no transport can meet the budget with the catalogue merged.
2. Reading the file in place, kept by a second library (sdcore.sync.catalogue_store: staged, checked, given the
   search index and put in place), with the library's own search SQL unchanged (`search.run_on` on
   `catalogue_store.connect`: TEMP VIEWs shadow the names that SQL uses; single-table views are flattened by SQLite,
   so the file's indexes serve them: the query plan is printed), beside the same queries on the owner's own
   database: the hits must be the same.
3. With --search-kept DIR: `search.run` over a library of 200,000 entries plus two other devices' 200,000-entry
   catalogues kept as files (as it reads them: each searched, the hits merged), beside one database holding all
   600,000 (today's catalogue): CPU p50/p99 of bench_catalogue's queries, alternating, median of the rounds. Made in
   DIR once from bench_catalogue_file.bench_read's libraries (copied: the shared ones are never opened here).
   --per-device 333334: issue 16's size, 1,000,000 entries over the three (libraries made once, in the corpus);
   --against REVISION: sdcore/search.py of that git revision beside today's in place of the one database, the same
   hits asked of both.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_catalogue  # noqa: E402
import bench_net  # noqa: E402
from bench_catalogue_file import cpu_self, measured, owner_library  # noqa: E402

from sdcore import search  # noqa: E402
from sdcore.index.listing import CHILDREN_SQL  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402
from sdcore.library.schema import ENTRY_KINDS, OBJECT_KINDS  # noqa: E402
from sdcore.sync import catalogue_store  # noqa: E402
from sdcore.sync.catalogue import BulkWatch, CatalogueBatch, CatalogueLocation, EntryRows, apply_catalogue  # noqa: E402
from sdcore.sync.catalogue_file import cas_id_of, make  # noqa: E402
from sdcore.sync.catalogue_store import connect, keep, kept, staging_path  # noqa: E402

QUERIES = ["report", "photo 2019", "img", "a", "zzzznothing"]
SLOT = 1


def merged_into_own_tables(made: Path, owner_id: str, work: Path) -> None:
    """The checked catalogue file written into a new device's library as today's catalogue is (one batch)."""
    library = Library(create_folder(work, "receiver"), LibraryContext.this_device_only(uuid.uuid4()))
    conn = sqlite3.connect(made)
    locations = tuple(CatalogueLocation(*row) for row in conn.execute(
        "SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id, volume_path FROM locations"))  # fmt: skip
    rows = [[i, lo, p, n, ENTRY_KINDS[k], None if o is None else OBJECT_KINDS[o], s, f, m, bool(h),
             None if c is None else cas_id_of(c)] for i, lo, p, n, k, o, s, f, m, h, c in conn.execute(
        "SELECT e.* FROM entries e LEFT JOIN directory_paths d ON d.entry_id = e.id ORDER BY e.kind_code != 1, d.path")]  # fmt: skip
    name, head = conn.execute("SELECT device_name, head FROM catalogue").fetchone()
    conn.close()
    device = uuid.UUID(owner_id)
    apply_catalogue(library, device, CatalogueBatch(device, name, 0, head, head, locations, EntryRows(rows)), BulkWatch(False))
    library.close()


def bench_reads(owner: Library, receiver: Library, rounds: int) -> None:
    own = owner.read()
    viewed = connect(receiver, owner.context.device_id, SLOT)
    places = {loc.id: loc for loc in owner.locations.list()}
    print(f"\n{'query':14} {'sort':9} {'hits':>4} {'file, ms CPU':>13} {'own db, ms':>11}  same hits")
    for text in QUERIES:
        for sort in ("relevance", "size"):
            query = search.Query(text, sort=sort)
            times: dict[str, list[float]] = {"file": [], "own": []}
            hits = {}
            for _ in range(max(rounds, 5)):
                for what, conn, library in (("file", viewed, receiver), ("own", own, owner)):
                    start = cpu_self()
                    hits[what] = search.run_on(conn, library, query, places)
                    times[what].append(cpu_self() - start)
            print(f"{text!r:14} {sort:9} {len(hits['file']):4} {statistics.median(times['file']) * 1000:13.2f}"
                  f" {statistics.median(times['own']) * 1000:11.2f}  {'yes' if hits['file'] == hits['own'] else 'NO'}")  # fmt: skip
    plan = viewed.execute(f"EXPLAIN QUERY PLAN {CHILDREN_SQL}", (5,)).fetchall()
    print("a folder's listing on the file, through the views:", "; ".join(row[3] for row in plan))
    viewed.close()


async def bench(tree: Path, rounds: int) -> None:
    runs: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(dir=bench_catalogue.CORPUS) as tmp:
        work = Path(tmp)
        owner, _receiver, owner_id = await bench_catalogue.owner_and_receiver(work, tree)
        database = Path(owner) / "database.db"
        made = work / "made.db"
        library = owner_library(owner, owner_id)
        make(library, made)
        library.close()
        key = work / "client_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        sshd, port, known = bench_net.start_sshd(work, key.with_suffix(".pub").read_text().strip())
        try:
            for r in range(rounds):
                with measured(runs, "scp database.db", sshd.pid):
                    bench_net.scp(key, port, known, f"HOST:{database}", str(work / "scp.db"))
                (work / "scp.db").unlink()
                with measured(runs, "merge the checked file into own tables"):
                    merged_into_own_tables(made, owner_id, work / f"merged{r}")
                shutil.rmtree(work / f"merged{r}")
        finally:
            sshd.terminate()
            sshd.wait()
        scp = statistics.median(c for c, _ in runs["scp database.db"])
        for what, taken in runs.items():
            cpu = statistics.median(c for c, _ in taken)
            print(f"{what:40} {cpu:6.2f} s CPU  {cpu / scp:5.2f}x scp")
        library = owner_library(owner, owner_id)
        receiver = Library(create_folder(work / "kept", "receiver"), LibraryContext.this_device_only(uuid.uuid4()))
        shutil.copy(made, staging_path(receiver, library.context.device_id))
        keep(receiver, library.context.device_id)
        bench_reads(library, receiver, rounds)
        receiver.close()
        library.close()


def read_libraries(per_device: int, one: bool = False) -> Path:
    """bench_catalogue_file.bench_read's libraries: `one` (3 devices' `per_device` entries each), dev0..dev2 (one each);
    made once (200,000 a device: bench_catalogue_file's own)."""
    keep = bench_catalogue.CORPUS / ("catalogue-file-read" if per_device == 200_000 else f"catalogue-file-read-{per_device}")
    for name, devices in (("dev0", 1), ("dev1", 1), ("dev2", 1), ("one", 3)):
        if (name != "one" or one) and not (keep / name / "three.sdlibrary").exists():
            (keep / name).mkdir(parents=True, exist_ok=True)
            bench_catalogue.make_three(keep / name, per_device * devices, devices).close()
    return keep


def library_with_kept(where: Path, per_device: int) -> Library:
    """dev0's library (`per_device` entries of one device in its tables) keeping dev1's and dev2's catalogues as files:
    their locations in its tables (as sync writes them) mapped to theirs, their entries only in the files."""
    folder = where / "kept" / "three.sdlibrary"
    read = read_libraries(per_device)
    if not folder.exists():
        shutil.copytree(read / "dev0" / "three.sdlibrary", folder)
        files = []
        for name in ("dev1", "dev2"):
            copy = where / name / "three.sdlibrary"
            shutil.copytree(read / name / "three.sdlibrary", copy)
            with sqlite3.connect(copy / "database.db") as conn:
                (device,) = conn.execute("SELECT DISTINCT device_id FROM locations").fetchone()
            owner = owner_library(str(copy), device)  # opened as that device's own
            make(owner, where / f"{name}.db")
            places = owner.read().execute("SELECT * FROM locations").fetchall()
            owner.close()
            shutil.rmtree(copy.parent)
            files.append((uuid.UUID(device), where / f"{name}.db", places))
        library = Library(folder, LibraryContext.this_device_only(uuid.uuid4()))
        for device, made, places in files:
            with library.write() as db:
                columns = [row[1] for row in db.execute("PRAGMA table_info(locations)")]
                for place in places:
                    row = dict(zip(columns, place, strict=True))
                    origin = row.pop("id")
                    row["path"] = f"{row['path']}-{device}"  # (each device's home has one path in these libraries)
                    local = db.execute(f"INSERT INTO locations ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                       list(row.values())).lastrowid  # fmt: skip
                    db.execute("INSERT INTO catalogue_locations VALUES (?, ?, ?)", (local, str(device), origin))
            shutil.move(made, staging_path(library, device))
            keep(library, device)
        library.close()
    return Library(folder, LibraryContext.this_device_only(uuid.uuid4()))


def search_module_at(revision: str) -> Any:
    """sdcore/search.py as it was at `revision` (git), loaded beside today's: both measured in one process."""
    source = subprocess.run(["git", "show", f"{revision}:sdcore/search.py"], check=True, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2]).stdout  # fmt: skip
    module = sys.modules[f"search_at_{revision}"] = types.ModuleType(f"search_at_{revision}")  # (dataclasses look it up)
    exec(compile(source, f"{revision}:sdcore/search.py", "exec"), module.__dict__)
    return module


def kept_queries() -> list[search.Query]:
    """bench_catalogue part 3's queries."""
    words = bench_catalogue.WORDS
    return [search.Query(w) for w in words] + [search.Query(f"{a} {b}") for a, b in zip(words, words[1:], strict=False)] + [
        search.Query("", ext=("pdf",), limit=100), search.Query("sierra", sort="size"), search.Query("tango_golf"),
        search.Query("*.md", limit=50),
    ]  # fmt: skip


def bench_search_kept(where: Path, rounds: int, per_device: int, against: str | None) -> None:
    where.mkdir(parents=True, exist_ok=True)
    split = library_with_kept(where, per_device)
    assert len(kept(split)) == 2
    runs: dict[str, Callable[[search.Query], list[search.Hit]]] = {}
    if against:
        before = search_module_at(against)
        runs[f"library + 2 kept, {against}"] = lambda q: before.run(split, q)
        runs["library + 2 kept, now"] = lambda q: search.run(split, q)
    else:
        if not (where / "one" / "three.sdlibrary").exists():
            shutil.copytree(read_libraries(per_device, one=True) / "one" / "three.sdlibrary", where / "one" / "three.sdlibrary")
        one = Library(where / "one" / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4()))
        runs["one database"] = lambda q: search.run(one, q)
        runs["library + 2 kept files"] = lambda q: search.run(split, q)
    queries = kept_queries()
    for q in queries:  # warm the caches as a user's later searches find them
        for run in runs.values():
            run(q)
    times: dict[str, list[dict[str, float]]] = {what: [] for what in runs}  # a round's CPU ms by query
    same = 0
    for _ in range(rounds):
        for per_round in times.values():
            per_round.append({})
        for q in queries:
            found = []
            for what, run in runs.items():
                began = time.process_time()
                found.append([(h.device_id, h.relative) for h in run(q)])
                times[what][-1][f"{q.text!r} ext={q.ext} sort={q.sort}"] = (time.process_time() - began) * 1000
            same += all(f == found[0] for f in found)
    total = sum(
        conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        for conn in [split.read(), *(catalogue_store.reader(split, d, s) for d, s in kept(split).items())]
    )
    print(f"\nsearch over {total:,} entries of three devices ({len(queries)} queries x {rounds} rounds, alternating,"
          f" CPU ms, p50/p99 of each round, median of the rounds)  [{bench_catalogue.load()}]")  # fmt: skip
    for what, per_round in times.items():
        p50 = statistics.median(statistics.median(r.values()) for r in per_round)
        p99 = statistics.median(sorted(r.values())[max(int(len(r) * 0.99) - 1, 0)] for r in per_round)
        slow = sorted(per_round[0], key=lambda k: -statistics.median(r[k] for r in per_round))[:4]
        print(f"  {what:30} p50 {p50:6.2f}  p99 {p99:6.2f}; slowest (median): "
              + ", ".join(f"{k} {statistics.median(r[k] for r in per_round):.1f}" for k in slow))  # fmt: skip
    print(f"  same hits in the same order: {same} of {len(queries) * rounds}")
    misses = [search.Query("alpha zzzz"), search.Query("zzzz alpha"), search.Query("alpha zzzz", sort="size")]
    print("  a word in no file beside a common one (not in the figures above), CPU ms, median of 5: " + "; ".join(
        f"{what} " + ", ".join(f"{q.text!r} {q.sort} {statistics.median(cpu_ms(run, q) for _ in range(5)):.1f}" for q in misses)
        for what, run in runs.items()))  # fmt: skip
    split.close()


def cpu_ms(run: Callable[[search.Query], list[search.Hit]], query: search.Query) -> float:
    began = time.process_time()
    run(query)
    return (time.process_time() - began) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--search-kept", type=Path, help="part 3 only, its libraries made in this folder once")
    parser.add_argument("--per-device", type=int, default=200_000, help="part 3: entries of each of the three devices")
    parser.add_argument("--against", metavar="REVISION", help="part 3: search.py of this git revision beside today's "
                        "(in place of one database holding all)")  # fmt: skip
    args = parser.parse_args()
    if args.search_kept:
        bench_search_kept(args.search_kept, args.rounds, args.per_device, args.against)
        return
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
