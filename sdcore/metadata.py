"""Notes and favourites: what a person says about an entry (notes are searchable)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sdcore.errors import NotFound
from sdcore.events import LibraryChanged

if TYPE_CHECKING:
    from sdcore.library.library import Library


def set_note(library: Library, entry_id: int, text: str | None) -> None:
    """Write an entry's note (None or blank text removes it); search finds it at once."""
    note = text.strip() if text and text.strip() else None
    with library.write() as db:
        _require(db, entry_id)
        db.execute(
            "INSERT INTO user_metadata (entry_id, note, updated) VALUES (?, ?, ?)"
            " ON CONFLICT (entry_id) DO UPDATE SET note = excluded.note, updated = excluded.updated",
            (entry_id, note, time.time()),
        )
        db.execute("DELETE FROM user_metadata WHERE entry_id = ? AND note IS NULL AND NOT favorite", (entry_id,))
    _changed(library, "notes")


def note(library: Library, entry_id: int) -> str | None:
    """An entry's note, if it has one."""
    row = library.read().execute("SELECT note FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
    return row[0] if row else None


def set_favorite(library: Library, entry_ids: Iterable[int], favorite: bool = True) -> int:
    """Mark entries as favourites (or not); returns how many changed."""
    now = time.time()
    changed = 0
    with library.write() as db:
        for entry_id in entry_ids:
            _require(db, entry_id)
            before = db.total_changes
            db.execute(
                "INSERT INTO user_metadata (entry_id, favorite, updated) VALUES (?, ?, ?)"
                " ON CONFLICT (entry_id) DO UPDATE SET favorite = excluded.favorite, updated = excluded.updated"
                " WHERE favorite IS NOT excluded.favorite",
                (entry_id, int(favorite), now),
            )
            changed += db.total_changes - before
            db.execute("DELETE FROM user_metadata WHERE entry_id = ? AND note IS NULL AND NOT favorite", (entry_id,))
    _changed(library, "favorites")
    return changed


def is_favorite(library: Library, entry_id: int) -> bool:
    row = library.read().execute("SELECT favorite FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
    return bool(row and row[0])


def favorites(library: Library) -> list[int]:
    """The ids of every favourite entry, oldest favourite first."""
    return [r[0] for r in library.read().execute("SELECT entry_id FROM user_metadata WHERE favorite ORDER BY updated, entry_id")]


def _require(db: sqlite3.Connection, entry_id: int) -> None:
    if db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone() is None:
        raise NotFound(f"entry {entry_id} is not in the library (deleted, or never indexed)")

def _changed(library: Library, what: str) -> None:
    """Tell the UI (it never polls): the library's {what} changed."""
    library.context.bus.publish(LibraryChanged(library.id, what))
