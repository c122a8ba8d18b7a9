"""The high-water mark of a shared library: the highest of its own numbers (entry ids, catalogue changes, its own
operations' numbers and stamps) this device ever let other devices see, kept in the data dir outside the library
folder. A library restored from a backup has lower numbers than that; found when it is next written to
(`Library.hold_lock`), its numbers move past the mark, so that no entry id, catalogue change or operation number
other devices hold is ever given again to something else, and what was lost comes back:

- the devices holding its catalogue past the backup's last change load it again (`restarted`, sdcore.sync.service);
- its own operations made after the backup are asked back from the devices that hold them (`oplog.watermarks`).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sdcore.library.library import Library

log = logging.getLogger(__name__)
_lock = threading.Lock()


@dataclass(frozen=True)
class Mark:
    """A library's own numbers: the highest given so far."""

    entry_id: int = 0
    """The highest entry id given (a new entry gets a higher one)."""
    catalogue: int = 0
    """The number of its catalogue's last change."""
    op_seq: int = 0
    """The number of this device's last operation."""
    hlc: int = 0
    """The stamp of this device's last operation."""

    def below(self, other: Mark) -> bool:
        """Whether any of these numbers is below the other's."""
        return any(getattr(self, f.name) < getattr(other, f.name) for f in fields(self))

    def highest(self, other: Mark) -> Mark:
        return Mark(*(max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))


def numbers(conn: sqlite3.Connection, device: str) -> Mark:
    """The library's own numbers now (what a restore found earlier raised them to counts as given)."""
    row = conn.execute(
        "SELECT max(coalesce((SELECT max(id) FROM entries), 0), (SELECT id FROM entry_id_floor)),"
        " coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'catalogue_log'), 0),"
        " coalesce((SELECT max(seq) FROM sync_ops WHERE origin = ?1 AND seq IS NOT NULL), 0),"
        " coalesce((SELECT max(hlc) FROM sync_ops WHERE origin = ?1), 0),"
        " coalesce((SELECT max(ops_to) FROM sync_restores WHERE origin = ?1), 0),"
        " coalesce((SELECT max(hlc_to) FROM sync_restores WHERE origin = ?1), 0)",
        (device,),
    ).fetchone()
    return Mark(int(row[0] or 0), int(row[1]), max(row[2], row[4]), max(row[3], row[5]))


def _file(library: Library) -> Path | None:
    where = library.context.marks
    return None if where is None else where / f"{library.id}.json"


def mark_in(marks: Path, library_id: object) -> Mark:
    """The mark kept in `marks` (a data dir's) of the library of that id (zeros when none is)."""
    return _read(marks / f"{library_id}.json")


def _read(path: Path) -> Mark:
    try:
        data = json.loads(path.read_text())
        return Mark(**{f.name: int(data.get(f.name, 0)) for f in fields(Mark)})
    except (OSError, ValueError, TypeError, AttributeError):
        return Mark()


def seen(library: Library) -> None:
    """Before an answer carries the library's numbers to another device: keep them as its mark (only ever raised;
    written and flushed to disk before the answer leaves)."""
    path = _file(library)
    if path is None:
        return
    now = numbers(library.read(), str(library.context.device_id))
    with _lock:
        held = _read(path)
        if held.below(now):
            _write(path, held.highest(now))


def _write(path: Path, mark: Mark) -> None:
    from sdcore.privacy import make_private_dir

    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(asdict(mark)).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def mark_of(library: Library) -> Mark:
    """The library's mark as kept in the data dir (zeros when none is)."""
    path = _file(library)
    return Mark() if path is None else _read(path)


def check(library: Library, db: sqlite3.Connection) -> str | None:
    """When the library's numbers are below its mark (restored from a backup, or a copy of an older state put in
    its place): move them past the mark and keep what was lost, in the write transaction `db`; the line that says
    so (logged once: the numbers are past the mark from then on). None when the library is as its mark says."""
    mark = mark_of(library)
    device = str(library.context.device_id)
    now = numbers(db, device)
    if not now.below(mark):
        return None
    db.execute("UPDATE entry_id_floor SET id = max(id, ?)", (mark.entry_id,))
    if now.catalogue < mark.catalogue:
        if db.execute("SELECT 1 FROM sqlite_sequence WHERE name = 'catalogue_log'").fetchone():
            db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'catalogue_log'", (mark.catalogue,))
        else:
            db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('catalogue_log', ?)", (mark.catalogue,))
    # what it holds of its own ops (not what an earlier restore raised its numbers to: those it may have lost again)
    held_seq, held_hlc = db.execute(
        "SELECT coalesce((SELECT max(seq) FROM sync_ops WHERE origin = ?1 AND seq IS NOT NULL), 0),"
        " coalesce((SELECT max(hlc) FROM sync_ops WHERE origin = ?1), 0)", (device,),
    ).fetchone()  # fmt: skip
    db.execute(
        "INSERT INTO sync_restores (origin, catalogue_from, catalogue_to, ops_from, ops_to, hlc_from, hlc_to, found)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (device, now.catalogue, max(now.catalogue, mark.catalogue), held_seq, max(now.op_seq, mark.op_seq),
         held_hlc, max(now.hlc, mark.hlc), time.time()),
    )  # fmt: skip
    told = (
        f"library {library.name!r} is older than what the devices it is shared with have seen of it (restored from a "
        "backup?): its new entries, changes and operations are numbered past theirs, they load its catalogue again, "
        "and its own tags and notes made after the backup come back from them"
    )
    log.warning("%s (numbers %s, mark %s)", told, now, mark)
    return told


def restarted(conn: sqlite3.Connection, since: int) -> bool:
    """Whether a device asking for the catalogue's changes after `since` holds changes a restore lost (numbered past
    the backup's last, up to what other devices had seen): it must load the catalogue again from the start."""
    return conn.execute(
        "SELECT 1 FROM sync_restores WHERE ? > catalogue_from AND ? <= catalogue_to LIMIT 1", (since, since)
    ).fetchone() is not None


def own_watermark(conn: sqlite3.Connection, marks: dict[str, int]) -> None:
    """While this device lacks operations of its own that a restore lost (numbers the others hold), ask for its own
    after the stamp it had as restored, so that they come back (the `marks` an asker sends, changed in place)."""
    for origin, ops_from, ops_to, hlc_from in conn.execute(
        "SELECT origin, ops_from, ops_to, hlc_from FROM sync_restores WHERE ops_to > ops_from"
    ).fetchall():
        held = conn.execute(
            "SELECT count(*) FROM sync_ops WHERE origin = ? AND seq > ? AND seq <= ?", (origin, ops_from, ops_to)
        ).fetchone()[0]
        if held < ops_to - ops_from:
            marks[origin] = min(marks.get(origin, 0), hlc_from)
