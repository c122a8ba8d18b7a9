"""The entries' secondary indexes during a bulk load (a location's first index, a first sync from another device).

A bulk load writes faster without them and makes them again in one pass at its end. Missing indexes are the mark of
a load under way: one cut off by a crash is found when a process next takes the library's lock, and they are made
again there (`Library.hold_lock`), so a library is never left without them.
"""

from __future__ import annotations

import sqlite3

CREATE_SECONDARY_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS entries_by_parent ON entries (parent_id, name)",
    "CREATE INDEX IF NOT EXISTS entries_by_inode ON entries (location_id, inode)",
    "CREATE INDEX IF NOT EXISTS entries_by_content ON entries (content_id) WHERE content_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS entries_by_size ON entries (size)",
    "CREATE INDEX IF NOT EXISTS entries_by_mtime ON entries (mtime)",
    "CREATE INDEX IF NOT EXISTS entries_by_name ON entries (name COLLATE NOCASE)",
)
"""As schema.py makes them (the last of each in its migrations)."""
SECONDARY_INDEXES = tuple(statement.split(" EXISTS ")[1].split()[0] for statement in CREATE_SECONDARY_INDEXES)


def drop_secondary_indexes(db: sqlite3.Connection, keep: tuple[str, ...] = ()) -> None:
    """Before a bulk load's writes (in its transaction): the indexes but `keep` go."""
    for name in SECONDARY_INDEXES:
        if name not in keep:
            db.execute(f"DROP INDEX IF EXISTS {name}")


def make_secondary_indexes(db: sqlite3.Connection) -> None:
    """After a bulk load (or one cut off): the indexes it dropped, each in one pass over the entries."""
    for statement in CREATE_SECONDARY_INDEXES:
        db.execute(statement)


def secondary_indexes_missing(db: sqlite3.Connection) -> bool:
    """Whether a bulk load has dropped some (it is under way, or was cut off)."""
    marks = ",".join("?" * len(SECONDARY_INDEXES))
    found = db.execute(f"SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN ({marks})", SECONDARY_INDEXES)
    return bool(found.fetchone()[0] < len(SECONDARY_INDEXES))
