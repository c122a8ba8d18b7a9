"""Other devices' entries by global id (`catalogue_store.global_id`), read from the file of their catalogue kept here.

The library's tables (tag assignments, notes, favourites) name another device's entry by its global id; this module
tells which kept file holds it and reads it there: the library's own SQL over `entries`, `directory_paths`,
`content_identities` and `locations` runs on that file's connection (`catalogue_store.connect`) by the owner's ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sdcore.sync import catalogue_store
from sdcore.sync.catalogue_store import SLOT_BITS

if TYPE_CHECKING:
    import sqlite3

    from sdcore.library.library import Library
    from sdcore.library.locations import Location
    from sdcore.sdpath import DeviceId

_LOW = (1 << SLOT_BITS) - 1


@dataclass(frozen=True)
class Source:
    """A database that holds entries: the library's own (`high` 0), or the kept catalogue of another device, whose
    ids are its owner's (an owner id `| high` is its global id) and whose locations are the owner's (`locations`:
    the owner's location id -> the library's)."""

    conn: sqlite3.Connection
    high: int = 0
    locations: dict[int, int] | None = None
    device_id: DeviceId | None = None

    def location(self, location_id: int) -> int | None:
        """The library's id of a location of this database."""
        return location_id if self.locations is None else self.locations.get(location_id)

    def local(self, library_location: int) -> int:
        """This database's id of a location of the library (-1: none)."""
        if self.locations is None:
            return library_location
        return next((mine for mine, theirs in self.locations.items() if theirs == library_location), -1)

    def owner_id(self, entry_id: int | None) -> int | None:
        """This database's id of an entry of it named by its global id (the library's own: as it is)."""
        return entry_id if entry_id is None or not self.high else entry_id & _LOW

    def root_of(self, location_id: int) -> int | None:
        """The id (global) of the root folder of a location of this database."""
        row = self.conn.execute("SELECT root_id FROM locations WHERE id = ?", (location_id,)).fetchone()
        return None if row is None or row[0] is None else int(row[0]) | self.high


def is_global(entry_id: int) -> bool:
    """Whether an id names another device's entry (a global id), not one of the library's own."""
    return entry_id >> SLOT_BITS != 0


def of_device(library: Library, device_id: DeviceId) -> Source | None:
    """The kept catalogue of `device_id` (None when none is kept: its entries, if any, are the library's own rows)."""
    if device_id == library.context.device_id:
        return None
    slot = catalogue_store.slot_of(library, device_id)
    return None if slot is None else _source(library, device_id, slot)


def of_location(library: Library, location: Location) -> tuple[Source, int] | None:
    """The kept catalogue holding the entries of another device's location, and its owner's id for the location (None
    when that device's catalogue is not kept, or does not map the location: its entries, if any, are the library's)."""
    source = of_device(library, location.device_id)
    if source is None:
        return None
    owners = source.local(location.id)
    return None if owners == -1 else (source, owners)


def of_slot(library: Library, slot: int) -> Source | None:
    """The kept catalogue of the device given `slot` (None when no device has it or its file is not kept)."""
    row = library.read().execute("SELECT device_id FROM catalogue_slots WHERE slot = ?", (slot,)).fetchone()
    if row is None:
        return None
    device_id = uuid.UUID(row[0])
    return None if device_id == library.context.device_id else _source(library, device_id, slot)


def _source(library: Library, device_id: DeviceId, slot: int) -> Source | None:
    conn = catalogue_store.reader(library, device_id, slot)
    if conn is None:
        return None
    owners = catalogue_store.location_ids(library, device_id)
    return Source(conn, slot << SLOT_BITS, {theirs: mine for mine, theirs in owners.items()}, device_id)


def device_name(library: Library, device_id: DeviceId) -> str:
    """Another device's name (a peer's text: `display` it) as the library's `devices` table has it, else its id.

    The one place it is read: the table is written with the name the device is paired as by each batch of it and at
    once when it renames itself (sdcore.sync.service); its kept file's `device_name` is only what it called itself
    when the file was made or last changed, never read for people."""
    row = library.read().execute("SELECT name FROM devices WHERE id = ?", (str(device_id),)).fetchone()
    return str(device_id) if row is None else str(row[0])


def shown_sql(library: Library, column: str) -> str:
    """SQL that holds for an entry id in `column` the library can show: its own, or a global id of a device whose
    catalogue is kept here. The rows (tags, notes, favourites) on a forgotten device's entries stay but show nowhere;
    its slot is never given again, so once it rejoins and its file is kept again they show as they were, and the ops
    it sends meanwhile land on them as on any global id."""
    slots = ",".join(map(str, sorted(catalogue_store.kept(library).values())))
    return f"({column} < {1 << SLOT_BITS} OR ({column} >> {SLOT_BITS}) IN ({slots}))"


def sources(library: Library, entry_ids: Iterable[int]) -> list[tuple[Source, list[int]]]:
    """The databases holding these entries, each with the ids in its own numbering (the library's own first); a
    global id whose device's catalogue is not kept here is left out (nothing can be read of it)."""
    own: list[int] = []
    by_slot: dict[int, list[int]] = {}
    for entry_id in entry_ids:
        if is_global(entry_id):
            by_slot.setdefault(entry_id >> SLOT_BITS, []).append(entry_id & _LOW)
        else:
            own.append(entry_id)
    found = [(Source(library.read()), own)] if own else []
    for slot, ids in by_slot.items():
        source = of_slot(library, slot)
        if source is not None:
            found.append((source, ids))
    return found


def exists(library: Library, entry_id: int) -> bool:
    """Whether another device's entry (a global id) is in the file of its catalogue kept here."""
    found = sources(library, [entry_id])
    return (
        bool(found)
        and found[0][0].conn.execute("SELECT 1 FROM entries WHERE id = ?", (found[0][1][0],)).fetchone()
        is not None
    )


def cas_id_of(library: Library, entry_id: int) -> tuple[str, str | None] | None:
    """(name, cas_id) of an entry, the library's own or another device's (None when there is no such entry)."""
    for source, (owner_id,) in sources(library, [entry_id]):
        row = source.conn.execute(
            "SELECT e.name, c.cas_id FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.id = ?",
            (owner_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1])
    return None


def with_content(library: Library, cas_ids: Sequence[str]) -> list[tuple[int, str]]:
    """(global id, cas_id) of every entry of the kept catalogues with one of these contents, in the locations of theirs
    the library holds (their files hold cas_ids as `cas_number`s, indexed)."""
    from sdcore.sync.catalogue_file import cas_id_of as cas_of_number
    from sdcore.sync.catalogue_file import cas_number

    numbers = [n for n in dict.fromkeys(cas_number(c) for c in cas_ids) if n is not None]
    found: list[tuple[int, str]] = []
    if not numbers:
        return found
    for device_id, slot in catalogue_store.kept(library).items():
        source = _source(library, device_id, slot)
        if source is None:
            continue
        places = ",".join(map(str, source.locations or {}))  # (not a location taken over here: this device's now)
        for start in range(0, len(numbers), 500):
            chunk = numbers[start : start + 500]
            rows = source.conn.execute(
                f"SELECT id, cas_number FROM main.entries WHERE cas_number IS NOT NULL AND cas_number IN ({','.join('?' * len(chunk))})"
                f" AND location_id IN ({places})",
                chunk,
            )
            found += [(owner_id | source.high, cas_of_number(number)) for owner_id, number in rows]
    return found
