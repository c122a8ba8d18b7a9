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
import uuid
from pathlib import Path

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


READ_LIBRARIES = bench_catalogue.CORPUS / "catalogue-file-read"
"""bench_catalogue_file.bench_read's libraries: `one` (3 devices' 200,000 entries each), dev0..dev2 (one each)."""


def library_with_kept(where: Path) -> Library:
    """dev0's library (200,000 entries of one device in its tables) keeping dev1's and dev2's catalogues as files:
    their locations in its tables (as sync writes them) mapped to theirs, their entries only in the files."""
    folder = where / "kept" / "three.sdlibrary"
    if not folder.exists():
        shutil.copytree(READ_LIBRARIES / "dev0" / "three.sdlibrary", folder)
        files = []
        for name in ("dev1", "dev2"):
            copy = where / name / "three.sdlibrary"
            shutil.copytree(READ_LIBRARIES / name / "three.sdlibrary", copy)
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


def bench_search_kept(where: Path, rounds: int) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if not (where / "one" / "three.sdlibrary").exists():
        shutil.copytree(READ_LIBRARIES / "one" / "three.sdlibrary", where / "one" / "three.sdlibrary")
    one = Library(where / "one" / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4()))
    split = library_with_kept(where)
    assert len(kept(split)) == 2
    words = bench_catalogue.WORDS
    queries = [search.Query(w) for w in words] + [search.Query(f"{a} {b}") for a, b in zip(words, words[1:], strict=False)] + [
        search.Query("", ext=("pdf",), limit=100), search.Query("sierra", sort="size"), search.Query("tango_golf"),
        search.Query("*.md", limit=50),
    ]  # fmt: skip
    for q in queries[:3]:  # warm the caches as a user's second search finds them
        search.run(one, q)
        search.run(split, q)
    times: dict[str, dict[str, list[float]]] = {"one database": {}, "library + 2 kept files": {}}
    same = 0
    for _ in range(rounds):
        for q in queries:
            found = {}
            for what, library in (("one database", one), ("library + 2 kept files", split)):
                began = time.process_time()
                found[what] = search.run(library, q)
                times[what].setdefault(f"{q.text!r} ext={q.ext} sort={q.sort}", []).append((time.process_time() - began) * 1000)
            same += [h.name for h in found["one database"]] == [h.name for h in found["library + 2 kept files"]]
    total = one.read().execute("SELECT count(*) FROM entries").fetchone()[0]
    print(f"\nsearch over {total:,} entries of three devices ({len(queries)} queries x {rounds} rounds, alternating,"
          f" CPU ms)  [{bench_catalogue.load()}]")  # fmt: skip
    for what, per_query in times.items():
        every = sorted(t for ts in per_query.values() for t in ts)
        p99 = every[max(int(len(every) * 0.99) - 1, 0)]
        slow = sorted(per_query.items(), key=lambda x: -statistics.median(x[1]))[:3]
        print(f"  {what:24} p50 {statistics.median(every):6.2f}  p99 {p99:6.2f}; slowest (median): "
              + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in slow))  # fmt: skip
    print(f"  same names in the same order: {same} of {len(queries) * rounds}")
    one.close()
    split.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--search-kept", type=Path, help="part 3 only, its libraries made in this folder once")
    args = parser.parse_args()
    if args.search_kept:
        bench_search_kept(args.search_kept, args.rounds)
        return
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
