"""Migrating a library copied from another device: its locations there become this device's where the same
folders exist here (`sd library migrate`). The same hand-over (`take`) makes a location on a disk this device's
when the disk is plugged in here (sdcore.library.volume_locations.take_over).

A copied library's locations keep their device's id: here they are that device's catalogue, never scanned. An
adopted location becomes this device's, keeps its entry rows (so the tags, notes and favourites on them stay
on the same files, and are said again of them as this device's entries in the shared data's log) and is
indexed again to find what differs here. Its entries' inodes are those of the other
device's disk, which the indexer would take for moves and replaced folders: they are set to what is found at
each entry's path here (or cleared where nothing is), so that the index goes by path once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sdcore.events import LibraryChanged
from sdcore.library.schema import mode_code_sql
from sdcore.sdpath import from_db, to_db

if TYPE_CHECKING:
    from sdcore.library.library import Library
    from sdcore.library.locations import Location

BATCH = 5_000
"""Entries whose inodes are looked up and written at a time."""


@dataclass
class Migrated:
    """What `migrate` did with each location of another device."""

    adopted: list[Location] = field(default_factory=list)
    """Now this device's, indexed again."""
    absent: list[Location] = field(default_factory=list)
    """No such folder here: kept as their device's catalogue (offline); a later migrate adopts them once there."""
    taken: list[tuple[Location, Location]] = field(default_factory=list)
    """(theirs, this device's location holding, or held by, the same folder): kept as their device's."""
    not_indexed: list[tuple[Location, str]] = field(default_factory=list)
    """Adopted, but their index ended early (how): `sd location rescan` carries on."""


async def migrate(library: Library, on_step: Callable[[str], None] = lambda _: None) -> Migrated:
    """Adopt the locations of other devices whose folders exist here, and index them again."""
    import asyncio

    from sdcore.index.indexer import index_location

    done = await asyncio.to_thread(adopt, library)
    for location in done.adopted:
        on_step(f"indexing {location.name} ({location.path}) again, to find what differs on this device")
        record = await library.jobs.wait(await index_location(library, location))
        if record.state != "completed":
            done.not_indexed.append((location, record.error or record.state))
    return done


def adopt(library: Library) -> Migrated:
    """Make this device's every location of another device whose folder exists here (no index job is started)."""
    here = library.locations.device_id
    locations = library.locations.list()
    mine = [loc for loc in locations if loc.device_id == here]
    done = Migrated()
    for loc in locations:
        if loc.device_id == here or _synced(library.read(), loc.id):
            continue
        if not folder_here(loc.path):
            done.absent.append(loc)
            continue
        clash = next((m for m in mine if m.relative(loc.path) is not None or loc.relative(m.path) is not None), None)
        if clash is not None:
            done.taken.append((loc, clash))
            continue
        adopted = take(library, loc)
        mine.append(adopted)
        done.adopted.append(adopted)
    if done.adopted:
        library.context.bus.publish(LibraryChanged(library.id, "location added"))  # the watcher watches them now
    return done


def take(library: Library, loc: Location, path: str | None = None) -> Location:
    """Make another device's location this device's, at `path` (its own path by default), keeping its entries (those
    in its device's kept catalogue file written into the library's tables first, with the shared data on them; one
    with none anywhere is given its root folder); the caller indexes it again (a rescan: what differs here)."""
    from sdcore.library.locations import add_root

    here = str(library.locations.device_id)
    loc = loc if path is None else dataclasses.replace(loc, path=path)
    from sdcore.sync.catalogue import kept_location_into_tables

    with library.write() as db:  # its entries, if they are in a catalogue file kept here (committed: read below)
        kept_location_into_tables(library, db, loc.id)
    rooted = library.read().execute(
        "SELECT 1 FROM locations l JOIN entries e ON e.id = l.root_id AND e.location_id = l.id WHERE l.id = ?", (loc.id,)
    ).fetchone()
    st = os.stat(loc.path) if rooted is None else None  # (none came: its catalogue is in no file kept here either)
    with library.write() as db:
        # its entries are this device's now: no longer known by the other device's ids (sdcore.sync.catalogue), save
        # to say of them what that device's ops made before it heard of it say (sdcore.sync.shared: `_follow_taken`)
        db.execute(
            "INSERT OR REPLACE INTO taken_entries (device_id, origin_id, entry_id) SELECT coalesce(c.device_id, ?),"
            " coalesce(c.origin_id, e.id), e.id FROM entries e LEFT JOIN catalogue_entries c ON c.entry_id = e.id"
            " WHERE e.location_id = ?", (str(loc.device_id), loc.id),
        )  # fmt: skip
        db.execute("DELETE FROM catalogue_entries WHERE entry_id IN (SELECT id FROM entries WHERE location_id = ?)", (loc.id,))
        if st is not None:  # no entries of it here (nor in a kept file): the index makes them
            add_root(db, loc.id, st)
        db.execute(
            "UPDATE locations SET device_id = ?, path = ?, scan_state = 'pending' WHERE id = ?", (here, to_db(loc.path), loc.id)
        )
        db.execute(  # and the devices this library is shared with get them as this device's
            "INSERT OR REPLACE INTO catalogue_log (entry_id) SELECT id FROM entries WHERE location_id = ?"
            " AND EXISTS (SELECT 1 FROM catalogue_tracking WHERE device_id = ?) ORDER BY id",
            (loc.id, here),
        )
        _inodes_from_here(library.read(), db, loc)
        _shared_data_follows(library, db, loc.id)
    library.sync.tell()
    return library.locations.get(loc.id)


def folder_here(path: str) -> bool:
    """Whether `path` is a folder here, reached without a symlink (one put there would make the location
    another folder of this machine: the copied library names the folder, not where a link on this disk leads)."""
    return os.path.isdir(path) and os.path.realpath(path) == os.path.normpath(path)


def _synced(db: sqlite3.Connection, location_id: int) -> bool:
    """Whether a location is the catalogue of a device that shares the library (streamed by sync: never adopted)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'catalogue_locations'").fetchone() is None:
        return False
    return db.execute("SELECT 1 FROM catalogue_locations WHERE location_id = ?", (location_id,)).fetchone() is not None


def _shared_data_follows(library: Library, db: sqlite3.Connection, location_id: int) -> None:
    """Tags, notes and favourites of the adopted entries, said again of them as this device's entries.

    Shared data names an entry by its owner and the owner's id for it: what was said of them as the other
    device's is not about this device's entries for the devices this library is shared with later (or the
    history here). The entries keep their rows, so what shows does not change."""
    sync = library.sync
    by_tag: dict[int, list[int]] = {}
    for tag_id, entry_id in db.execute(
        "SELECT a.tag_id, a.entry_id FROM tag_assignments a JOIN entries e ON e.id = a.entry_id WHERE e.location_id = ?",
        (location_id,),
    ).fetchall():
        by_tag.setdefault(tag_id, []).append(entry_id)
    for tag_id, entry_ids in by_tag.items():
        sync.tag(db, sync.uid_of(db, tag_id), [sync.target_of(db, entry_id) for entry_id in entry_ids])
    for entry_id, note, favorite in db.execute(
        "SELECT m.entry_id, m.note, m.favorite FROM user_metadata m JOIN entries e ON e.id = m.entry_id"
        " WHERE e.location_id = ?",
        (location_id,),
    ).fetchall():
        if note is not None:
            sync.set_note(db, entry_id, note)
        if favorite:
            sync.set_favorite(db, entry_id, True)


_SET_FOUND = (
    f"UPDATE entries SET inode = ?1, mode_code = coalesce(mode_code, {mode_code_sql('?2', 'kind_code')}),"
    " link_target = coalesce(link_target, ?3) WHERE id = ?4"
)
"""An entry's inode, mode and link target as found here (`_found`)."""


def _inodes_from_here(read: sqlite3.Connection, db: sqlite3.Connection, loc: Location) -> None:
    """Each entry's inode as found at its path on this device (NULL where nothing of its kind is there), and its
    mode and link where the row has none (another device's catalogue does not carry them).

    Read on the read connection: a scan of the writer's own rows would meet them again as their inodes change."""
    rows = read.execute(
        "SELECT e.id, e.kind, p.path, e.name FROM entries e LEFT JOIN directory_paths p ON p.entry_id = e.parent_id"
        " WHERE e.location_id = ?",
        (loc.id,),
    )
    while batch := rows.fetchmany(BATCH):
        found: list[tuple[int | None, int | None, str | None, int]] = []
        for entry_id, kind, parent, name in batch:
            if entry_id == loc.root_id:
                path = loc.path
            elif parent is None:  # orphaned: a scan left it looking for its move; the index settles it
                found.append((None, None, None, entry_id))
                continue
            else:
                path = loc.absolute(from_db(f"{parent}/{name}" if parent else name))
            found.append((*_found(path, kind), entry_id))
        db.executemany(_SET_FOUND, found)


def _found(path: str, kind: str) -> tuple[int | None, int | None, str | None]:
    """Inode, mode and link target of what is at `path` when it is of that kind."""
    try:
        st = os.lstat(path)
    except OSError:
        return None, None, None
    if stat.S_ISDIR(st.st_mode) != (kind == "dir"):
        return None, None, None
    link = None
    if stat.S_ISLNK(st.st_mode):
        with contextlib.suppress(OSError):
            link = to_db(os.readlink(path))
    return st.st_ino, st.st_mode, link
