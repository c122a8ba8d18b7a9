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
    """The id of the indexed entry at an absolute path (of this device unless `device_id` says otherwise)."""
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
    if rel == "":
        assert loc.root_id is not None
        return loc.root_id
    parent, _, name = rel.rpartition("/")
    row = library.read().execute(
        "SELECT e.id FROM directory_paths p JOIN entries e ON e.parent_id = p.entry_id"
        " WHERE p.location_id = ? AND p.path = ? AND e.name = ?",
        (loc.id, to_db(parent), to_db(name)),
    ).fetchone()
    if row is None:
        raise NotIndexed(
            f"{display(path)} is in location {loc.name!r} but not indexed yet (or no longer exists); "
            f"run `sd location rescan {typed(loc.name)}` first"
        )
    return int(row[0])


def paths_of(library: Library, entry_ids: Sequence[int]) -> dict[int, str]:
    """Absolute paths of entries by id (entries that no longer exist are left out)."""
    locations = {loc.id: loc for loc in library.locations.list()}
    out: dict[int, str] = {}
    conn = library.read()
    ids = list(entry_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for entry_id, location_id, parent_id, name, parent_path in conn.execute(
            "SELECT e.id, e.location_id, e.parent_id, e.name, p.path FROM entries e"
            f" LEFT JOIN directory_paths p ON p.entry_id = e.parent_id WHERE e.id IN ({','.join('?' * len(chunk))})",
            chunk,
        ):
            loc = locations[location_id]
            if parent_id is None:
                if entry_id == loc.root_id:
                    out[entry_id] = loc.path
                continue
            rel = from_db(f"{parent_path}/{name}" if parent_path else name)
            out[entry_id] = loc.absolute(rel)
    return out
