"""Repairing a damaged library: what can still be read goes into a fresh database, the index comes from the disk.

Kept: locations, tags, tags on content, notes, favourites, saved searches and what waits for a content to
come back (`detached`). Tags, notes and favourites on entries are kept by each entry's path and put back
on the entry found there once the locations are indexed again; an entry no longer there keeps them under
its content id, as a deleted entry does. Those on another device's entries (global ids: its catalogue is a file
of its own, sdcore.sync.catalogue_store) are kept as they are, with the devices' slots and their locations' ids
there (the files are not in the database: they stay); each such catalogue is fetched anew at the next sync. The
damaged database stays beside the new one as a backup.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdcore.library.damage import integrity_problems, unmark, uri
from sdcore.library.library import _acquire_lock, migrate, read_meta, write_meta
from sdcore.library.schema import DIR_CODE, mode_code_sql, next_entry_id
from sdcore.privacy import create_private
from sdcore.sdpath import from_db

if TYPE_CHECKING:
    from sdcore.library import Libraries, LibraryInfo


@dataclass(frozen=True)
class OnEntry:
    """What a person put on one entry, found by its path."""

    location_id: int | None
    """None when only its path could be read: the location is the one holding that path on disk."""
    path: str
    """Relative to the location, as the database writes it."""
    cas_id: str | None
    tag_ids: tuple[int, ...] = ()
    note: str | None = None
    favorite: bool = False


@dataclass
class Salvage:
    """The rows of a damaged database that could still be read."""

    locations: list[tuple] = field(default_factory=list)
    tags: list[tuple] = field(default_factory=list)
    content_tags: list[tuple] = field(default_factory=list)
    detached: list[tuple] = field(default_factory=list)
    saved_searches: list[tuple] = field(default_factory=list)
    on_entries: list[OnEntry] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    """What could not be read, said for a person."""
    entry_floor: int = 0
    """The highest entry id the damaged database ever gave, as far as can be read (never given again: the devices
    the library is shared with name entries by it)."""
    slots: list[tuple] = field(default_factory=list)
    """Other devices' slots (catalogue_slots), and the highest slot ever given (never given again)."""
    last_slot: int = 0
    catalogue_locations: list[tuple] = field(default_factory=list)
    """Which of the locations are another device's, and its own id for each (its catalogue file's)."""
    global_tags: list[tuple] = field(default_factory=list)
    """Tags on other devices' entries (tag id, global id, created): they need no entry row here."""
    global_metadata: list[tuple] = field(default_factory=list)
    """Notes and favourites on other devices' entries (global id, note, favorite, updated)."""


@dataclass(frozen=True)
class Repaired:
    """What a repair kept and what it could not."""

    name: str
    backup: Path | None
    """The damaged database, kept beside the new one (None when there was none to keep)."""
    locations: int
    tags: int
    put_back: int
    """Entries whose tags, notes and favourites are back on them."""
    waiting: int
    """Entries not found again: their tags and notes wait under their content id."""
    lost: int
    """Entries whose tags or notes could not be placed (no path, no content id)."""
    unreadable: tuple[str, ...]
    new_id: bool
    """library.json could not be read and was written anew (a new id)."""
    rebuilt: bool = True
    """False when the database was whole (only library.json was written anew)."""


async def repair(libraries: Libraries, info: LibraryInfo, on_step: Callable[[str], None]) -> Repaired:
    """Rebuild `info`'s library: salvage, a fresh database in place of the damaged one, index, put back."""
    from sdcore.index.indexer import index_location

    folder = info.folder
    lock = _acquire_lock(folder, info.name, libraries.program or "sd library repair", libraries.on_lock_wait, libraries.lock_wait)
    try:
        new_id = _mend_meta(folder)
        name = read_meta(folder)["name"]
        if new_id and not integrity_problems(folder):  # only library.json was lost: the database is whole
            unmark(folder)
            return Repaired(name, None, 0, 0, 0, 0, 0, (), new_id, rebuilt=False)
        on_step(f"reading what can be read of {folder / 'database.db'}")
        salvage = _salvage(folder / "database.db")
        on_step("writing a fresh database")
        mark = 0
        if libraries.context.marks is not None:  # what the devices it is shared with have seen of it
            from sdcore.sync.highwater import mark_in

            mark = mark_in(libraries.context.marks, read_meta(folder)["id"]).entry_id
        backup = _replace_database(folder, salvage, floor=max(salvage.entry_floor, mark))
        unmark(folder)
    finally:
        lock.close()
    library = libraries.open(info.folder_name if new_id else read_meta(folder)["id"])
    here = library.locations.device_id
    for location in library.locations.list():
        if location.device_id != here:
            continue
        if not os.path.isdir(location.path):
            on_step(f"location {location.name} ({location.path}) is not there now; index it when it is back")
            continue
        on_step(f"indexing {location.name} ({location.path}) again")
        record = await library.jobs.wait(await index_location(library, location))
        if record.state != "completed":
            on_step(f"indexing {location.name} ended {record.state}: {record.error or ''}; `sd location rescan` carries on")
    put_back, waiting, lost = _put_back(library, salvage.on_entries)
    return Repaired(
        name, backup, len(salvage.locations), len(salvage.tags), put_back, waiting, lost,
        tuple(salvage.unreadable), new_id,
    )  # fmt: skip


def _mend_meta(folder: Path) -> bool:
    """Write library.json anew when it cannot be read (a new id, the folder's name); True if it was."""
    try:
        meta = read_meta(folder)
        uuid.UUID(meta["id"])
        str(meta["name"])
        return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    meta_path = folder / "library.json"
    if meta_path.exists():
        os.replace(meta_path, folder / f"library.json.damaged-{_stamp()}")
    write_meta(
        folder, {"id": str(uuid.uuid4()), "name": folder.name.removesuffix(".sdlibrary"), "schema": 0, "created": time.time()}
    )
    return True


def _salvage(database: Path) -> Salvage:
    from sdcore.sync.catalogue_store import SLOT_BITS

    salvage = Salvage()
    if not database.exists() or database.stat().st_size == 0:
        salvage.unreadable.append("the whole database (it was missing or empty)")
        return salvage
    try:
        conn = sqlite3.connect(uri(database, "mode=ro"), uri=True)
        conn.execute("SELECT 1 FROM sqlite_master").fetchall()
    except sqlite3.DatabaseError as exc:
        salvage.unreadable.append(f"the whole database ({exc})")
        return salvage
    try:
        read = _Reader(conn, salvage.unreadable)
        salvage.locations = read.rows("locations", "id, device_id, path, name, mode, ignore, created")
        salvage.tags = read.rows("tags", "id, name, color, created")
        salvage.content_tags = read.rows("tag_assignments", "tag_id, cas_id, created", "cas_id IS NOT NULL")
        salvage.detached = read.rows("detached", "cas_id, tag_id, note, favorite, detached")
        salvage.saved_searches = read.rows("saved_searches", "name, query, created")
        salvage.entry_floor = read.highest_entry_id()
        if read.has("catalogue_slots"):  # (schema 34)
            salvage.slots = read.rows("catalogue_slots", "slot, device_id")
            salvage.last_slot = max([read.last_given("catalogue_slots"), *(slot for slot, _ in salvage.slots)])
        salvage.catalogue_locations = read.rows("catalogue_locations", "location_id, device_id, origin_id")
        theirs = f"entry_id >= {1 << SLOT_BITS}"  # another device's entry, by its global id
        salvage.global_tags = read.rows("tag_assignments", "tag_id, entry_id, created", theirs)
        salvage.global_metadata = read.rows("user_metadata", "entry_id, note, favorite, updated", theirs)
        by_entry: dict[int, dict[str, Any]] = {}
        ours = f"entry_id < {1 << SLOT_BITS}"
        for tag_id, entry_id in read.rows("tag_assignments", "tag_id, entry_id", f"entry_id IS NOT NULL AND {ours}"):
            by_entry.setdefault(entry_id, {"tags": []})["tags"].append(tag_id)
        for entry_id, note, favorite in read.rows("user_metadata", "entry_id, note, favorite", ours):
            by_entry.setdefault(entry_id, {"tags": []}).update(note=note, favorite=bool(favorite))
        for entry_id, data in by_entry.items():
            where = read.place(entry_id)
            if where is None:
                continue
            location_id, path, cas_id = where
            salvage.on_entries.append(
                OnEntry(location_id, path, cas_id, tuple(data["tags"]), data.get("note"), data.get("favorite", False))
            )
    finally:
        conn.close()
    return salvage


class _Reader:
    """Reads a damaged database row by row, stepping over what cannot be read."""

    def __init__(self, conn: sqlite3.Connection, unreadable: list[str]) -> None:
        self.conn = conn
        self.unreadable = unreadable

    def rows(self, table: str, columns: str, where: str = "1") -> list[tuple]:
        out: list[tuple] = []
        after: int | None = None
        for row in self._from(table, columns, where, None):
            if row is None:
                break
            out.append(row[1:])
            after = row[0]
        else:
            return out
        # damage: try to pick up again further on, in ever longer steps
        self.unreadable.append(f"some rows of {table}" + (f" after row {after}" if after is not None else ""))
        step = 1
        while step < 1 << 40:
            start = (after or 0) + step
            got = list(self._from(table, columns, where, start))
            if not got:  # past the last row
                return out
            good = [r for r in got if r is not None]
            out.extend(r[1:] for r in good)
            if good:
                after = good[-1][0]
                if got[-1] is not None:
                    return out
                step = 1
            else:
                step *= 4
        return out

    def _from(self, table: str, columns: str, where: str, start: int | None) -> Iterator[tuple | None]:
        """Rows (rowid first) in rowid order from `start`; a None ends them where damage stopped the read."""
        try:
            bound = "" if start is None else f" AND rowid >= {int(start)}"
            yield from self.conn.execute(f"SELECT rowid, {columns} FROM {table} WHERE ({where}){bound} ORDER BY rowid")
        except sqlite3.DatabaseError:
            yield None

    def has(self, table: str) -> bool:
        """Whether the database has that table (one of a later schema)."""
        try:
            return self.conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone() is not None
        except sqlite3.DatabaseError:
            return False

    def last_given(self, table: str) -> int:
        """The highest rowid an AUTOINCREMENT table ever gave (0 if it cannot be read)."""
        try:
            row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        except sqlite3.DatabaseError:
            return 0
        return row[0] if row is not None and isinstance(row[0], int) else 0

    def highest_entry_id(self) -> int:
        """The highest entry id the database gave, from whatever still says it (its floor, the entries' highest
        rowid, the search index, the folders): each is one read of a b-tree's last page."""
        best = 0
        for sql in (
            "SELECT id FROM entry_id_floor", "SELECT max(id) FROM entries", "SELECT max(rowid) FROM search_index",
            "SELECT max(entry_id) FROM directory_paths", "SELECT max(entry_id) FROM catalogue_entries",
        ):  # fmt: skip
            try:
                row = self.conn.execute(sql).fetchone()
            except sqlite3.DatabaseError:
                continue
            if row is not None and isinstance(row[0], int):
                best = max(best, row[0])
        return best

    def place(self, entry_id: int) -> tuple[int | None, str, str | None] | None:
        """An entry's location, path in it and cas_id, if they can be read."""
        try:
            row = self.conn.execute(
                "SELECT e.location_id, e.name, p.path, c.cas_id FROM entries e"
                " JOIN directory_paths p ON p.entry_id = e.parent_id"
                " LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.id = ?",
                (entry_id,),
            ).fetchone()
        except sqlite3.DatabaseError:
            row = None
        if row is not None:
            location_id, name, parent, cas_id = row
            return location_id, f"{parent}/{name}" if parent else name, cas_id
        # Its row is lost: where it was is kept apart for an entry with tags, a note or a favourite (migration 27); a
        # search index of before then held its name (folded) and folder (not its location: found on disk later).
        found = None
        for where in (
            "SELECT CASE p.path WHEN '' THEN s.name ELSE p.path || '/' || s.name END FROM entry_places s"
            " JOIN directory_paths p ON p.entry_id = s.parent_id WHERE s.entry_id = ?",
            "SELECT CASE p.path WHEN '' THEN s.name ELSE p.path || '/' || s.name END FROM search_index s"
            " JOIN directory_paths p ON p.entry_id = s.parent WHERE s.rowid = ?",
        ):
            try:
                found = self.conn.execute(where, (entry_id,)).fetchone()
            except sqlite3.DatabaseError:
                found = None
            if found is not None:
                break
        if found is None:
            self.unreadable.append(f"where entry {entry_id} is (its tags, note or favourite are lost)")
            return None
        return None, found[0], None


def _replace_database(folder: Path, salvage: Salvage, floor: int = 0) -> Path | None:
    """A fresh database of the salvaged rows in place of the damaged one, which is kept; returns where. Its entry ids
    start above `floor` (no id the damaged database gave is given again)."""
    fresh = folder / "database.db.rebuilding"
    for leftover in (fresh, fresh.with_name(fresh.name + "-wal"), fresh.with_name(fresh.name + "-shm")):
        leftover.unlink(missing_ok=True)
    create_private(fresh)  # owner-only, and so are its -wal and -shm
    conn = sqlite3.connect(fresh, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        schema = migrate(conn)
        conn.execute("BEGIN")
        conn.execute("UPDATE entry_id_floor SET id = max(id, ?)", (floor,))
        for loc_id, device_id, path, name, mode, ignore, created in salvage.locations:
            conn.execute(
                "INSERT INTO locations (id, device_id, path, name, mode, ignore, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (loc_id, device_id, path, name, mode, ignore, created),
            )
            try:
                st = os.stat(path)
                inode, mtime, st_mode = st.st_ino, st.st_mtime, st.st_mode
            except (OSError, TypeError, ValueError):
                inode, mtime, st_mode = None, None, None
            if any(mapped[0] == loc_id for mapped in salvage.catalogue_locations):
                continue  # another device's: its entries are in its catalogue file
            root = conn.execute(
                "INSERT INTO entries (id, location_id, parent_id, name, kind_code, inode, mtime, mode_code)"
                f" VALUES (?1, ?2, NULL, '', {DIR_CODE}, ?3, ?4, {mode_code_sql('?5', str(DIR_CODE))})",
                (next_entry_id(conn), loc_id, inode, mtime, st_mode),
            ).lastrowid
            conn.execute("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, '')", (root, loc_id))
            conn.execute("UPDATE locations SET root_id = ? WHERE id = ?", (root, loc_id))
        conn.executemany("INSERT OR IGNORE INTO tags (id, name, color, created) VALUES (?, ?, ?, ?)", salvage.tags)
        conn.executemany(
            "INSERT OR IGNORE INTO tag_assignments (tag_id, cas_id, created) VALUES (?, ?, ?)", salvage.content_tags
        )
        conn.executemany(
            "INSERT INTO detached (cas_id, tag_id, note, favorite, detached) VALUES (?, ?, ?, ?, ?)", salvage.detached
        )
        conn.executemany(
            "INSERT OR IGNORE INTO saved_searches (name, query, created) VALUES (?, ?, ?)", salvage.saved_searches
        )
        _catalogues_kept(conn, salvage)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    database = folder / "database.db"
    backup = None
    if database.exists():
        backup = folder / f"database.db.damaged-{_stamp()}"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{database}{suffix}").exists():
                os.replace(f"{database}{suffix}", f"{backup}{suffix}")
    os.replace(fresh, database)
    meta = read_meta(folder)
    write_meta(folder, {**meta, "schema": schema})
    return backup


def _catalogues_kept(conn: sqlite3.Connection, salvage: Salvage) -> None:
    """Other devices' slots, locations' ids and the tags, notes and favourites on their entries, into the fresh
    database as they were (their watermarks are not: each catalogue is fetched anew, whole, at the next sync)."""
    conn.executemany("INSERT OR IGNORE INTO catalogue_slots (slot, device_id) VALUES (?, ?)", salvage.slots)
    if salvage.last_slot:  # a slot given, even one whose row is lost, is never given again
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'catalogue_slots'")
        conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('catalogue_slots', ?)", (salvage.last_slot,))
    conn.executemany(
        "INSERT OR IGNORE INTO catalogue_locations (location_id, device_id, origin_id) SELECT ?1, ?2, ?3"
        " WHERE EXISTS (SELECT 1 FROM locations WHERE id = ?1)",
        salvage.catalogue_locations,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO tag_assignments (tag_id, entry_id, created) SELECT ?1, ?2, ?3"
        " WHERE EXISTS (SELECT 1 FROM tags WHERE id = ?1)",
        salvage.global_tags,
    )
    conn.executemany(
        "INSERT OR IGNORE INTO user_metadata (entry_id, note, favorite, updated) VALUES (?, ?, ?, ?)",
        salvage.global_metadata,
    )


def _put_back(library: Any, on_entries: list[OnEntry]) -> tuple[int, int, int]:
    """Tags, notes and favourites onto the entries found again at their paths; the others wait or are lost."""
    locations = {loc.id: loc for loc in library.locations.list()}
    put_back = waiting = lost = 0
    now = time.time()
    with library.write() as db:
        for item in on_entries:
            entry_id = None
            candidates = [item.location_id] if item.location_id is not None else [
                loc.id for loc in locations.values() if os.path.lexists(loc.absolute(from_db(item.path)))
            ]  # fmt: skip
            for location_id in candidates:
                parent, _, name = item.path.rpartition("/")
                row = db.execute(
                    "SELECT e.id FROM directory_paths p JOIN entries e ON e.parent_id = p.entry_id"
                    " WHERE p.location_id = ? AND p.path = ? AND e.name = ?",
                    (location_id, parent, name),
                ).fetchone()
                entry_id = row[0] if row else entry_id
            if entry_id is not None:
                db.executemany(
                    "INSERT OR IGNORE INTO tag_assignments (tag_id, entry_id, created) SELECT ?, ?, ? WHERE EXISTS"
                    " (SELECT 1 FROM tags WHERE id = ?)",
                    [(tag_id, entry_id, now, tag_id) for tag_id in item.tag_ids],
                )
                if item.note is not None or item.favorite:
                    db.execute(
                        "INSERT OR REPLACE INTO user_metadata (entry_id, note, favorite, updated) VALUES (?, ?, ?, ?)",
                        (entry_id, item.note, int(item.favorite), now),
                    )
                put_back += 1
            elif item.cas_id is not None:
                db.executemany(
                    "INSERT INTO detached (cas_id, tag_id, detached) VALUES (?, ?, ?)",
                    [(item.cas_id, tag_id, now) for tag_id in item.tag_ids],
                )
                if item.note is not None or item.favorite:
                    db.execute(
                        "INSERT INTO detached (cas_id, note, favorite, detached) VALUES (?, ?, ?, ?)",
                        (item.cas_id, item.note, int(item.favorite), now),
                    )
                waiting += 1
            else:
                lost += 1
    return put_back, waiting, lost


def _stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")

