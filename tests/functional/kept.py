"""What a library holds of another device's catalogue, read as tests check it: the file kept of it, and the library's
own tables (which hold none of its entries since its catalogue is kept as a file, issue 16)."""

from __future__ import annotations

import contextlib
import sqlite3

from sdcore.library.damage import uri
from sdcore.library.library import Library
from sdcore.sdpath import DeviceId
from sdcore.sync import catalogue_store


def kept_names(library: Library, device_id: DeviceId) -> set[str]:
    """The names of the entries in the catalogue file of `device_id` kept in `library` (roots, named '', left out)."""
    path = catalogue_store.path_of(library, device_id)
    if not path.is_file():
        return set()
    with contextlib.closing(sqlite3.connect(uri(path, "mode=ro"), uri=True)) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM entries WHERE name != ''")}


def in_tables(library: Library, device_id: DeviceId) -> int:
    """How many entries of `device_id` the library's own tables hold."""
    (count,) = (
        library.read()
        .execute(
            "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?",
            (str(device_id),),
        )
        .fetchone()
    )
    return int(count)
