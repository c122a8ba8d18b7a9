"""The library's entries by path and by id: the indexed entry at a path, and the paths of entries."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sdcore.errors import SdError
from sdcore.sdpath import DeviceId, display, from_db, to_db, typed

if TYPE_CHECKING:
    from sdcore.library.library import Library

PATH_SQL = "CASE p.path WHEN '' THEN e.name ELSE p.path || '/' || e.name END"
"""An entry's path in its location, in SQL over entries `e` joined with its folder's directory_paths `p`."""


class NotInLibrary(SdError):
    """A path outside every location of the library."""


class NotIndexed(SdError):
    """A path inside a location that the index has not reached yet."""


class InsideArchive(SdError):
    """A member of an archive: not a file the library can hold (archives open as read-only folders)."""


def refuse_archive_members(paths: list[str]) -> None:
    """Tags, notes and favourites go on files of folders, never on the members of an archive (read-only folders)."""
    from sdcore.fs.archive_path import split

    for path in paths:
        found = split(path)
        if found is not None and found[1] != "/":
            raise InsideArchive(
                f"{display(path)} is inside an archive: unpack it first (F5, sd cp), then tag or note the copy"
            )


def entry_at(library: Library, path: str, device_id: DeviceId | None = None) -> int:
    """The id of the indexed entry at an absolute path (of this device unless `device_id` says otherwise; another
    device's whose catalogue is kept as a file: its global id, found in that file)."""
    path = os.path.abspath(path) if device_id is None else path
    found = library.locations.containing(path, device_id)
    if found is None:
        if device_id is None:  # a path of this device: one inside an archive of it is said so
            refuse_archive_members([path])
        raise NotInLibrary(
            f"{display(path)} is not in any location of library {library.name!r}; add its folder with "
            "`sd location add DIR` and index it first"
        )
    loc, rel = found
    db, location_id, high, root = library.read(), loc.id, 0, loc.root_id
    if device_id is not None and device_id != library.context.device_id:
        from sdcore.sync import kept_entries

        kept = kept_entries.of_device(library, device_id)
        if kept is not None:  # its entries are in the file of its catalogue kept here, by global ids
            location_id = kept.local(loc.id)
            db, high, root = kept.conn, kept.high, kept.root_of(location_id)
    if rel == "":
        if root is None:
            raise NotIndexed(f"{display(path)} is a location not indexed yet; run `sd location rescan {typed(loc.name)}` first")
        return root
    parent, _, name = rel.rpartition("/")
    row = db.execute(
        "SELECT e.id FROM directory_paths p JOIN entries e ON e.parent_id = p.entry_id"
        " WHERE p.location_id = ? AND p.path = ? AND e.name = ?",
        (location_id, to_db(parent), to_db(name)),
    ).fetchone()
    if row is None:
        raise NotIndexed(
            f"{display(path)} is in location {loc.name!r} but not indexed yet (or no longer exists); "
            f"run `sd location rescan {typed(loc.name)}` first"
        )
    return int(row[0]) | high


def paths_of(library: Library, entry_ids: Sequence[int]) -> dict[int, str]:
    """Absolute paths of entries by id, the library's own and other devices' (global ids: from their kept catalogue);
    entries that no longer exist are left out."""
    from sdcore.sync.kept_entries import sources

    locations = {loc.id: loc for loc in library.locations.list()}
    out: dict[int, str] = {}
    for source, ids in sources(library, entry_ids):
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for entry_id, location_id, parent_id, name, parent_path in source.conn.execute(
                "SELECT e.id, e.location_id, e.parent_id, e.name, p.path FROM entries e"
                f" LEFT JOIN directory_paths p ON p.entry_id = e.parent_id WHERE e.id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                loc = locations.get(source.location(location_id) or -1)
                if loc is None:
                    continue  # (a location of a kept catalogue that the library does not hold: nowhere to name it)
                entry_id |= source.high
                if parent_id is None:  # (in a kept catalogue, only a location's root has none)
                    if entry_id == loc.root_id or source.high:
                        out[entry_id] = loc.path
                    continue
                rel = from_db(f"{parent_path}/{name}" if parent_path else name)
                out[entry_id] = loc.absolute(rel)
    return out
