"""Notes and favourites: what a person says about an entry (notes are searchable)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sdcore.errors import NotFound, SdError

if TYPE_CHECKING:
    from sdcore.library.library import Library
    from sdcore.sync.shared import Version


def set_note(library: Library, entry_id: int, text: str | None) -> None:
    """Write an entry's note (None or blank text removes it); search finds it at once."""
    from sdcore.sync.oplog import NOTE_LIMIT

    note = text.strip() if text and text.strip() else None
    if note is not None and len(note) > NOTE_LIMIT:
        raise SdError(f"a note is at most {NOTE_LIMIT:,} characters (this one has {len(note):,}); keep a longer text in a file")
    with library.write() as db:
        _require(library, db, entry_id)
        library.sync.set_note(db, entry_id, note)
        _keep(db, entry_id, "note", note)
    library.sync.tell()


def note(library: Library, entry_id: int) -> str | None:
    """An entry's note, if it has one."""
    row = library.read().execute("SELECT note FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
    return row[0] if row else None


def note_history(library: Library, entry_id: int) -> list[Version]:
    """Every text the entry's note held, on any device of the library, oldest first."""
    _require(library, library.read(), entry_id)
    return library.sync.note_history(entry_id)


def restore_note(library: Library, entry_id: int, number: int) -> str | None:
    """Put back the text the note held as version `number` of `note_history`; the note now."""
    versions = note_history(library, entry_id)
    if not 1 <= number <= len(versions):
        raise NotFound(
            f"the note has no version {number}; "
            + (f"pick 1 to {len(versions)} (`sd note PATH --history` lists them)" if versions else "it never had a text")
        )
    text = versions[number - 1].value
    set_note(library, entry_id, text)
    return text  # type: ignore[no-any-return]


def set_favorite(library: Library, entry_ids: Iterable[int], favorite: bool = True) -> int:
    """Mark entries as favourites (or not); returns how many changed."""
    changed = 0
    with library.write() as db:
        for entry_id in entry_ids:
            _require(library, db, entry_id)
            row = db.execute("SELECT favorite FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
            changed += bool(row and row[0]) != favorite
            library.sync.set_favorite(db, entry_id, favorite)
            _keep(db, entry_id, "favorite", int(favorite))
    library.sync.tell()
    return changed


def is_favorite(library: Library, entry_id: int) -> bool:
    row = library.read().execute("SELECT favorite FROM user_metadata WHERE entry_id = ?", (entry_id,)).fetchone()
    return bool(row and row[0])


def favorites(library: Library) -> list[int]:
    """The ids of every favourite entry, oldest favourite first."""
    from sdcore.sync.kept_entries import shown_sql

    rows = library.read().execute(
        f"SELECT entry_id FROM user_metadata WHERE favorite AND {shown_sql(library, 'entry_id')} ORDER BY updated, entry_id"
    )
    return [r[0] for r in rows]


def _require(library: Library, db: sqlite3.Connection, entry_id: int) -> None:
    from sdcore.sync import kept_entries

    if kept_entries.is_global(entry_id):  # another device's: in the file of its catalogue kept here
        held = kept_entries.exists(library, entry_id)
    else:
        held = db.execute("SELECT 1 FROM entries WHERE id = ?", (entry_id,)).fetchone() is not None
    if not held:
        raise NotFound(f"entry {entry_id} is not in the library (deleted, or never indexed)")


def _keep(db: sqlite3.Connection, entry_id: int, column: str, value: object) -> None:
    """Write what the person asked for even where the shared state held it already (a value a moved file's content
    brought back through the `detached` trigger is this device's alone)."""
    db.execute(
        f"INSERT INTO user_metadata (entry_id, {column}, updated) VALUES (?, ?, ?)"
        f" ON CONFLICT (entry_id) DO UPDATE SET {column} = excluded.{column}, updated = excluded.updated"
        f" WHERE {column} IS NOT excluded.{column}",
        (entry_id, value, time.time()),
    )
    db.execute("DELETE FROM user_metadata WHERE entry_id = ? AND note IS NULL AND NOT favorite", (entry_id,))
