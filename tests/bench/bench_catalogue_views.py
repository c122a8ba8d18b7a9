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
from sdcore.sync.catalogue_store import connect, keep, staging_path  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
