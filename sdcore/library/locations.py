"""Locations: the folders a library indexes, each with its index mode and ignore rules."""

from __future__ import annotations

import builtins
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.events import LibraryChanged
from sdcore.fs.base import why_not_a_folder
from sdcore.library.schema import DIR_CODE, mode_code_sql, next_entry_id
from sdcore.sdpath import DeviceId, display, from_db, to_db

if TYPE_CHECKING:
    import sqlite3

    from sdcore.library.library import Library

MODES = ("shallow", "content", "deep")
UNCONFIRMED = "unconfirmed"
"""The scan state of a location on a disk whose rescan would drop most of what is indexed of it: another disk with
the same identity (a copied id file, a cloned filesystem UUID) may be mounted as it. Nothing is dropped, and its
folders are not watched, until a person says it is the same disk (`sd location rescan ID --confirm-drop`)."""
# Indexed by default: everything a user would want. These are skipped only where a location asks.
SUGGESTED_IGNORES = [".git", "node_modules", "__pycache__", ".cache"]


@dataclass(frozen=True)
class Location:
    """A folder of a device that a library indexes."""

    id: int
    device_id: DeviceId
    path: str
    name: str
    mode: str
    ignore: tuple[str, ...]
    scan_state: str
    root_id: int | None
    created: float
    last_scanned: float | None
    volume_id: str | None = None
    """The identity of the disk it is on (sdcore.volumes), when that disk comes and goes; else None."""
    volume_label: str | None = None
    volume_path: str | None = None
    """Its folder inside that disk ('' for the disk's root)."""
    volume_seen: float | None = None
    """When the disk was last seen mounted."""

    def relative(self, path: str) -> str | None:
        """`path` relative to this location ('' for its root), or None when outside it."""
        if path == self.path:
            return ""
        prefix = self.path.rstrip("/") + "/"
        return path[len(prefix) :].rstrip("/") if path.startswith(prefix) else None

    def absolute(self, relative: str) -> str:
        return os.path.join(self.path, relative) if relative else self.path

    @property
    def undecided(self) -> bool:
        """Whether it is on a disk whose rescan would drop most of what is indexed of it, and waits for a person
        to say it is the same disk (see sdcore.library.volume_locations.UNCONFIRMED)."""
        return self.scan_state == UNCONFIRMED

    def decision(self, how_many: str = "most of its") -> str:
        """What an undecided location says, and how to confirm."""
        disk = self.volume_label or "its disk"
        return (
            f"location {self.name!r}: {how_many} indexed files and folders are not on the disk mounted as {disk} "
            f"at {display(self.path)} — another disk with the same identity (a copied .sdvolume file, a cloned "
            f"filesystem UUID)? Nothing was dropped; if it is the same disk, `sd location rescan {self.id} "
            "--confirm-drop` forgets what is not there"
        )


_COLUMNS = (
    "id, device_id, path, name, mode, ignore, scan_state, root_id, created, last_scanned,"
    " volume_id, volume_label, volume_path, volume_seen"
)


def add_root(db: sqlite3.Connection, location_id: int, st: os.stat_result) -> int:
    """Give a location its root folder's entry (`st`: the folder's stat), in the write transaction `db`; its id."""
    root = db.execute(
        "INSERT INTO entries (id, location_id, parent_id, name, kind_code, inode, mtime, mode_code)"
        f" VALUES (?1, ?2, NULL, '', {DIR_CODE}, ?3, ?4, {mode_code_sql('?5', str(DIR_CODE))})",
        (next_entry_id(db), location_id, st.st_ino, st.st_mtime, st.st_mode),
    ).lastrowid
    assert root is not None
    db.execute("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, '')", (root, location_id))
    db.execute("UPDATE locations SET root_id = ? WHERE id = ?", (root, location_id))
    return root


def _location(row: tuple) -> Location:
    state, root_id, created, scanned, volume_id, volume_label, volume_path, volume_seen = row[6:]
    return Location(
        row[0], uuid.UUID(row[1]), from_db(row[2]), from_db(row[3]), row[4], tuple(json.loads(row[5])), state, root_id,
        created, scanned, volume_id, volume_label, None if volume_path is None else from_db(volume_path), volume_seen,
    )  # fmt: skip


class Locations:
    """The locations of one library: `library.locations.add(path, mode="content")`."""

    def __init__(self, library: Library) -> None:
        self.library = library

    @property
    def device_id(self) -> DeviceId:
        """This device: the one whose folders `add` registers."""
        return self.library.context.device_id

    def add(self, path: str, mode: str = "content", name: str | None = None, ignore: list[str] | None = None) -> Location:
        """Register a folder of this device (indexing it is a job: see sdcore.index)."""
        check_mode(mode)
        path = os.path.abspath(os.path.expanduser(path))
        if not os.path.isdir(path):
            raise NotFound(f"{display(path)} {why_not_a_folder(path)}; a location must be an existing folder")
        for other in self.list():
            if other.device_id != self.device_id:
                continue
            if other.path == path:
                raise AlreadyExists(f"{display(path)} is already location {other.id} ({other.name})")
            if other.relative(path) is not None or Location.relative(_as_loc(path), other.path) is not None:
                raise AlreadyExists(
                    f"{display(path)} overlaps location {other.id} ({display(other.path)}); locations may not nest"
                )
        st = os.stat(path)
        now = time.time()
        from sdcore.library.volume_locations import volume_holding

        volume = volume_holding(path)
        inside = None if volume is None else "" if path == volume.mount_point else os.path.relpath(path, volume.mount_point)
        with self.library.write() as db:
            cur = db.execute(
                "INSERT INTO locations (device_id, path, name, mode, ignore, created, volume_id, volume_label,"
                " volume_path, volume_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (str(self.device_id), to_db(path), to_db(name or os.path.basename(path) or path), mode,
                 json.dumps(ignore or []), now, volume and volume.id, volume and volume.name,
                 None if inside is None else to_db(inside), volume and now),
            )
            location_id = cur.lastrowid
            assert location_id is not None
            add_root(db, location_id, st)
        self._changed("location added")
        return self.get(location_id)  # type: ignore[arg-type]

    def list(self) -> list[Location]:
        return [_location(r) for r in self.library.read().execute(f"SELECT {_COLUMNS} FROM locations ORDER BY id")]

    def get(self, key: int | str) -> Location:
        """A location by id, name or path (this device's first: another device's is known from its catalogue)."""
        for loc in sorted(self.list(), key=lambda loc: loc.device_id != self.device_id):
            if str(loc.id) == str(key) or loc.name == key or loc.path == os.path.abspath(os.path.expanduser(str(key))):
                return loc
        raise NotFound(f"no location {display(str(key))!r}; `sd location list` shows them")

    def containing(self, path: str, device_id: DeviceId | None = None) -> tuple[Location, str] | None:
        """The location holding `path` on a device, and the path relative to it."""
        device_id = device_id or self.device_id
        for loc in self.list():
            if loc.device_id == device_id:
                rel = loc.relative(path)
                if rel is not None:
                    return loc, rel
        return None

    def set_state(self, location_id: int, state: str, scanned: bool = False) -> None:
        with self.library.write() as db:
            if scanned:
                db.execute("UPDATE locations SET scan_state = ?, last_scanned = ? WHERE id = ?", (state, time.time(), location_id))
            else:
                db.execute("UPDATE locations SET scan_state = ? WHERE id = ?", (state, location_id))

    def set_mode(self, key: int | str, mode: str) -> Location:
        """Index the location in another mode from its next scan (what a new mode needs is added then)."""
        check_mode(mode)
        loc = self._own(self.get(key))
        with self.library.write() as db:
            db.execute("UPDATE locations SET mode = ? WHERE id = ?", (mode, loc.id))
        self._changed("location mode changed")
        return self.get(loc.id)

    def set_ignore(self, location_id: int, patterns: builtins.list[str]) -> None:
        self._own(self.get(location_id))
        with self.library.write() as db:
            db.execute("UPDATE locations SET ignore = ? WHERE id = ?", (json.dumps(patterns), location_id))

    def remove(self, key: int | str) -> Location:
        """Forget a location and its index (the files themselves are not touched)."""
        loc = self._own(self.get(key))
        with self.library.write() as db:
            db.execute("DELETE FROM directory_paths WHERE location_id = ?", (loc.id,))
            db.execute("DELETE FROM entries WHERE location_id = ?", (loc.id,))
            db.execute("DELETE FROM fts_pause WHERE location_id = ?", (loc.id,))  # (after: a paused entry is in no index)
            db.execute("DELETE FROM locations WHERE id = ?", (loc.id,))
            db.execute("DELETE FROM catalogue_locations WHERE location_id = ?", (loc.id,))  # one taken over from a device
        self._changed("location removed")
        return loc

    def _own(self, loc: Location) -> Location:
        """`loc`, if this device's: another device's location is its own to change (its catalogue here follows)."""
        from sdcore.sync.catalogue import refuse_catalogue

        refuse_catalogue(self.library, loc)
        return loc

    def _changed(self, what: str) -> None:
        self.library.context.bus.publish(LibraryChanged(self.library.id, what))


def _as_loc(path: str) -> Location:
    return Location(0, uuid.UUID(int=0), path, "", "", (), "", None, 0.0, None)


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise SdError(f"unknown index mode {mode!r}; use one of {', '.join(MODES)}")
