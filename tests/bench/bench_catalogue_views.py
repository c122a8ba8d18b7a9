"""Issue 16's first-sync budget: why another device's catalogue must stay a file of its own, and a way to read it
with the SQL the library already has (measured before anyone rebuilds the read paths).

Run: python tests/bench/bench_catalogue_views.py [--files 200000] [--rounds 3]

In one run, on the catalogue of a real indexed library (bench_catalogue's 200k tree), CPU of every process taking
part, median of the rounds:
1. The floor of keeping other devices' catalogues in the library's own tables, as today: `scp` of the owner's
   database.db over loopback (a real sshd) beside the receiver writing the owner's catalogue file, already received
   and checked, into its own tables (`apply_catalogue` of one batch holding it all: no wire, no msgpack, no batch
   checks). If that alone is over 2x scp, no transport can meet the budget with the catalogue merged.
2. Reading the checked file in place with the library's own search SQL (sdcore.search's private `_by_relevance` and
   `_sorted`, unchanged): a connection whose main database is the catalogue file, the library attached read-only as
   `lib`, and TEMP VIEWs that shadow the names the SQL uses (`entries` with the columns a catalogue does not carry as
   NULL, `content_identities` from the entries' cas_id, `user_metadata` and `tag_assignments` from the library, their
   entry ids `SLOT << 40 | the owner's id`). Single-table views are flattened by SQLite, so its indexes serve them
   (the query plan is printed). The same queries on the owner's own database, for comparison: the hits must be the
   same rows.
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
from bench_catalogue_file import SEARCH_INDEX, SORTED_INDEXES, cpu_self, measured, owner_library  # noqa: E402

from sdcore import search  # noqa: E402
from sdcore.library.context import LibraryContext  # noqa: E402
from sdcore.library.library import Library, create_folder  # noqa: E402
from sdcore.library.schema import add_functions  # noqa: E402
from sdcore.sync.catalogue import BulkWatch, CatalogueBatch, CatalogueLocation, EntryRows, apply_catalogue  # noqa: E402
from sdcore.sync.catalogue_file import check, make  # noqa: E402

SLOT = 1 << 40
"""The entry ids of the first other device's catalogue in the library's tables (tags, notes): SLOT | its own id."""
VIEWS = [
    "CREATE TEMP VIEW entries AS SELECT id, location_id, parent_id, name, extension, kind, object_kind, size, files,"
    " mtime, hidden, NULL AS inode, NULL AS mode, NULL AS link_target,"
    " CASE WHEN cas_id IS NOT NULL THEN id END AS content_id FROM main.entries",
    "CREATE TEMP VIEW content_identities AS SELECT id, cas_id FROM main.entries WHERE cas_id IS NOT NULL",
    f"CREATE TEMP VIEW user_metadata AS SELECT entry_id - {SLOT} AS entry_id, note, favorite FROM lib.user_metadata"
    f" WHERE entry_id BETWEEN {SLOT} AND {2 * SLOT - 1}",
    f"CREATE TEMP VIEW tag_assignments AS SELECT tag_id, entry_id - {SLOT} AS entry_id, cas_id FROM lib.tag_assignments"
    f" WHERE entry_id IS NULL OR entry_id BETWEEN {SLOT} AND {2 * SLOT - 1}",
]
QUERIES = ["report", "photo 2019", "img", "a", "zzzznothing"]


def merged_into_own_tables(made: Path, owner_id: str, work: Path) -> None:
    """The checked catalogue file written into a new device's library as today's catalogue is (one batch)."""
    library = Library(create_folder(work, "receiver"), LibraryContext.this_device_only(uuid.uuid4()))
    conn = sqlite3.connect(made)
    locations = tuple(CatalogueLocation(*row) for row in conn.execute(
        "SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id, volume_path FROM locations"))  # fmt: skip
    rows = [list(row) for row in conn.execute(
        "SELECT e.id, e.location_id, e.parent_id, e.name, e.kind, e.object_kind, e.size, e.files, e.mtime, e.hidden,"
        " e.cas_id FROM entries e LEFT JOIN directory_paths d ON d.entry_id = e.id ORDER BY e.kind != 'dir', d.path")]  # fmt: skip
    name, head = conn.execute("SELECT device_name, head FROM catalogue").fetchone()
    conn.close()
    device = uuid.UUID(owner_id)
    apply_catalogue(library, device, CatalogueBatch(device, name, 0, head, head, locations, EntryRows(rows)), BulkWatch(False))
    library.close()


def catalogue_connection(cat: Path, database: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{cat}?mode=ro", uri=True, isolation_level=None)
    add_functions(conn)
    conn.execute("ATTACH ? AS lib", (f"file:{database}?mode=ro",))
    for sql in VIEWS:
        conn.execute(sql)
    return conn


def searched(conn: sqlite3.Connection, text: str, sort: str) -> list[tuple]:
    terms = search._terms(text)
    if sort == "relevance":
        return search._by_relevance(conn, terms, [], [], "", 50)
    return search._sorted(conn, terms, [], [], "", search.Query(text, sort=sort))


def bench_reads(cat: Path, database: Path, rounds: int) -> None:
    own = sqlite3.connect(f"file:{database}?mode=ro", uri=True, isolation_level=None)
    add_functions(own)
    viewed = catalogue_connection(cat, database)
    print(f"\n{'query':14} {'sort':9} {'hits':>4} {'file, ms CPU':>13} {'own db, ms':>11}  same hits")
    for text in QUERIES:
        for sort in ("relevance", "size"):
            times: dict[str, list[float]] = {"file": [], "own": []}
            hits = {}
            for _ in range(max(rounds, 5)):
                for what, conn in (("file", viewed), ("own", own)):
                    start = cpu_self()
                    hits[what] = searched(conn, text, sort)
                    times[what].append(cpu_self() - start)
            same = [r[:2] + r[3:] for r in hits["file"]] == [r[:2] + r[3:] for r in hits["own"]]
            print(f"{text!r:14} {sort:9} {len(hits['file']):4} {statistics.median(times['file']) * 1000:13.2f}"
                  f" {statistics.median(times['own']) * 1000:11.2f}  {'yes' if same else 'NO'}")  # fmt: skip
    plan = viewed.execute(
        "EXPLAIN QUERY PLAN SELECT e.name, c.cas_id FROM entries e LEFT JOIN content_identities c"
        " ON c.id = e.content_id WHERE e.parent_id = 5 ORDER BY e.name"
    ).fetchall()
    print("a folder's listing on the file, through the views:", "; ".join(row[3] for row in plan))


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
        cat = work / "cat.db"
        shutil.copy(made, cat)
        check(cat, uuid.UUID(owner_id))
        conn = sqlite3.connect(":memory:", isolation_level=None)
        add_functions(conn)
        conn.execute("ATTACH ? AS cat", (str(cat),))
        for sql in SEARCH_INDEX + SORTED_INDEXES:
            conn.execute(sql)
        conn.close()
        bench_reads(cat, database, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
    asyncio.run(bench(tree, args.rounds))


if __name__ == "__main__":
    main()
