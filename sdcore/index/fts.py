"""The search index during a first bulk load: paused for a location's new entries, built in one pass at the end.

`pause_fts(conn, location_id)` and `resume_fts(conn, location_id)` are the one pair every bulk load calls (the
indexer's first index, a first sync of another device's catalogue): whatever the search index is made of, they
stop keeping it per row and build it for the location's new entries in one pass. Write no search-index SQL elsewhere.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sdcore.errors import SdError
from sdcore.library.schema import ext_token_sql, folded_sql

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)


def pause_fts(conn: sqlite3.Connection, location_id: int) -> None:
    """Stop the search triggers for entries of this location added from now on (until `resume_fts`).

    Persistent: it is committed with the caller's transaction and survives a crash, so a resumed
    load still ends with every entry searchable. Pausing an already paused location keeps the older mark.
    """
    conn.execute(
        "INSERT OR IGNORE INTO fts_pause (location_id, from_id) VALUES (?, (SELECT coalesce(max(id), 0) FROM entries))",
        (location_id,),
    )


def resume_fts(conn: sqlite3.Connection, location_id: int) -> int:
    """Index the entries (their names and extensions) and folders (their paths) added while paused, an INSERT ... SELECT
    each, and restart the triggers; returns how many entries."""
    row = conn.execute("SELECT from_id FROM fts_pause WHERE location_id = ?", (location_id,)).fetchone()
    if row is None:
        return 0
    # Walks in rowid order: FTS5 appends rows so 3x faster, and no sort holds every name in memory. (Notes have an index
    # of their own, kept by its triggers whatever is paused.)
    count = conn.execute(
        f"INSERT INTO search_index (rowid, name, ext) SELECT e.id, {folded_sql('e.name')}, {ext_token_sql('e.extension')}"
        " FROM entries e WHERE +e.location_id = ? AND e.id > ? AND e.parent_id IS NOT NULL ORDER BY e.id",
        (location_id, row[0]),
    ).rowcount
    conn.execute(
        f"INSERT INTO folder_index (rowid, path) SELECT p.entry_id, {folded_sql('p.path')} FROM directory_paths p"
        " WHERE +p.location_id = ? AND p.entry_id > ? AND p.path != '' ORDER BY p.entry_id",
        (location_id, row[0]),
    )
    conn.execute("DELETE FROM fts_pause WHERE location_id = ?", (location_id,))
    return count


@contextmanager
def fts_paused(conn: sqlite3.Connection, location_id: int) -> Iterator[None]:
    """Within a write transaction: add a location's entries without a trigger per row, index them at the end.

        with library.write() as db, fts_paused(db, location.id):
            db.executemany(INSERT_ENTRY, rows)
    """
    pause_fts(conn, location_id)
    yield
    resume_fts(conn, location_id)


def index_cut_off_loads(library: Library) -> None:
    """A first load leaves its entries out of search until it ends (`pause_fts`). One that no job is running
    (paused, cut off by a crash, failed, gone) would hide them for good: index what it loaded, now."""
    conn = library.read()
    paused = [r[0] for r in conn.execute("SELECT location_id FROM fts_pause")]
    if not paused:
        return
    running = {r.location_id for r in library.jobs.list(states=("queued", "running")) if r.kind == "index"}
    stale = [loc for loc in paused if loc not in running]
    if stale:
        try:
            with library.write() as db:
                for location_id in stale:
                    resume_fts(db, location_id)  # the job, when it resumes, adds the rest through the triggers
        except (sqlite3.Error, SdError) as exc:  # cannot write (a full disk...): search what is indexed
            log.warning("could not index the entries of an unfinished first index for search: %s", exc)


def searchable_entries(conn: sqlite3.Connection) -> set[int]:
    """The ids of the entries the search index holds (a check for tests and repairs: it reads the whole index).

    An entry is there when it has a folder, its location is not paused, and its name or extension gives a trigram
    (a name of one or two characters without one gives none: such names are looked for row by row)."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.search_index_rows USING fts5vocab(main, search_index, 'instance')")
    return {row[0] for row in conn.execute("SELECT DISTINCT doc FROM temp.search_index_rows")}
