"""The catalogue: this device's entries and locations, numbered for the devices that share its library, and the
read-only copies of theirs (sync's device-owned data).

On the owner, `catalogue_log` holds one row per changed entry or location (its latest change or its deletion)
under a growing sequence number; `catalogue_changes(library, since, limit)` reads a batch after a peer's
watermark. On the other devices, the owner's catalogue is a file of its own (sdcore.sync.catalogue_store): a first
sync fetches it whole (`adopt_catalogue_file` then writes its locations and name into the library's tables,
`catalogue_file_kept` its watermark), and `apply_catalogue(library, device, batch)` writes each later batch's entries
into that file and its locations into the library's tables (each mapped to the owner's id for it), moving the
watermark; a batch applied twice changes nothing. Without a kept file, `apply_catalogue` writes a batch into the
ordinary `locations` and `entries` tables, each row mapped to the owner's id for it (sync no longer does: a first sync
always fetches the file; tests and benches still build catalogues so). A batch of entries none of which is here yet
is staged as it came and checked and written by a few statements, with no Python per entry (`_Writer.new_entries`). A sync that brings more than the library holds loads as the
indexer's first load does: without the search triggers and five of the entries' indexes, each made in one pass
at its end (sdcore.index.fts, sdcore.library.bulk), for a bounded time whatever the device says (`BulkWatch`). A
location of another device is never scanned, watched or changed here (`is_catalogue`), unless it is on a disk
plugged in here: then it is handed over to this device (sdcore.library.volume_locations says who may take what).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import operator
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from sdcore.errors import NotFound, SdError
from sdcore.index.fts import pause_fts, resume_fts
from sdcore.index.kinds import extension_of
from sdcore.library import schema
from sdcore.library.bulk import drop_secondary_indexes, make_secondary_indexes, secondary_indexes_missing
from sdcore.library.context import UNNAMED_DEVICE
from sdcore.library.damage import uri
from sdcore.library.locations import MODES, UNCONFIRMED, Location
from sdcore.library.schema import ENTRY_KINDS, kind_code_sql, next_entry_id, object_code_sql
from sdcore.sdpath import DeviceId, display, from_db
from sdcore.sync import highwater, kept_entries
from sdcore.sync.catalogue_store import SLOT_BITS, global_id

if TYPE_CHECKING:
    from sdcore.library.library import Library

FORMAT = 2
"""The version of a packed batch: 2 carries each location's disk (volume id and folder inside it); 1 (older peers,
still read) does not."""
LIMIT = 2000
"""Changes a batch carries by default (`catalogue_changes`); a batch adds the folders they need before them."""
MAX_LIMIT = 5000
MAX_ENTRIES = MAX_LIMIT + 4096
"""Entries one batch may carry: the changes asked for, and the folders above them (a path has at most 2048)."""
MAX_DELETED = MAX_LIMIT
MAX_LOCATIONS = 1000
MAX_NAME = 1024
"""Characters of a name (Linux allows 255 bytes; a name not UTF-8 takes more characters in its stored form)."""
MAX_PATH = 4096
MAX_ID = (1 << 63) - 1
MAX_HELD = 20_000_000
"""Entries this device keeps of one other device's catalogue (a peer cannot fill this disk with made-up files)."""
MAX_HELD_LOCATIONS = 10_000
"""Locations this device keeps of one other device's catalogue (each is listed, and looked at when a disk is plugged
in or a catalogue changes: see sdcore.library.volume_locations.take_over)."""
MAX_SIZE = 1 << 60
"""Bytes a file or folder may claim (an exabyte): past it a peer is lying."""
MAX_TIME = 1e15
"""Seconds from 1970 a time may be, either way (some 30 million years): past it a peer is lying."""
KINDS = frozenset(ENTRY_KINDS)
OBJECT_KINDS = frozenset(schema.OBJECT_KINDS)
SCAN_STATES = frozenset({"pending", "indexing", "indexed", "paused", "failed", UNCONFIRMED})
_CAS_ID = re.compile(r"[0-9a-f]{1,64}")
_HEX = re.compile(r"[0-9a-f]*")
_VOLUME_ID = re.compile(r"(uuid|file|fingerprint):[0-9a-z._-]{1,100}")
"""A disk's identity as sdcore.volumes.identify makes it."""


class CatalogueRefused(SdError):
    """A peer's catalogue batch that breaks the rules: nothing of it is written."""


@dataclass(frozen=True, slots=True)
class EntryRef:
    """An entry as every device of a library names it: its owner device and the owner's id for it (which survives
    renames and moves on that device)."""

    device_id: DeviceId
    entry_id: int


@dataclass(frozen=True, slots=True)
class CatalogueLocation:
    """A location of the owner as its catalogue carries it (ids are the owner's)."""

    id: int
    path: str
    name: str
    mode: str
    scan_state: str
    created: float
    last_scanned: float | None
    root_id: int | None
    volume_id: str | None = None
    """The disk it is on when that disk comes and goes (sdcore.volumes); it follows the disk to any device."""
    volume_path: str | None = None
    """Its folder inside that disk ('' its root), as the database stores it."""


class CatalogueEntry(NamedTuple):
    """An entry of the owner as its catalogue carries it (ids are the owner's; `name` as the database stores it).
    A tuple, in the wire's order of fields: a first sync makes hundreds of thousands."""

    id: int
    location_id: int
    parent_id: int | None  # None: the location's root, or an entry its owner's scan has detached for now
    name: str
    kind: str
    object_kind: str | None
    size: int
    files: int
    mtime: float | None
    hidden: bool
    cas_id: str | None


@dataclass(frozen=True, slots=True)
class CatalogueBatch:
    """The owner's changes after `since` up to `up_to` (of `head` so far): locations and entries as they are now
    (every folder an entry needs comes before it, here or in an earlier batch), and the ids deleted."""

    device_id: DeviceId
    device_name: str
    since: int
    up_to: int
    head: int
    locations: tuple[CatalogueLocation, ...] = ()
    entries: Sequence[CatalogueEntry] = ()
    deleted_locations: tuple[int, ...] = ()
    deleted_entries: tuple[int, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether the receiver has everything the owner had when it made the batch."""
        return self.up_to >= self.head

    def pack(self) -> list[Any]:
        """Plain values for msgpack."""
        return [
            FORMAT, str(self.device_id), self.device_name, self.since, self.up_to, self.head,
            [[lo.id, lo.path, lo.name, lo.mode, lo.scan_state, lo.created, lo.last_scanned, lo.root_id, lo.volume_id,
              lo.volume_path] for lo in self.locations],
            self.entries.rows if isinstance(self.entries, EntryRows) else list(map(list, self.entries)),
            list(self.deleted_locations), list(self.deleted_entries),
        ]  # fmt: skip

    @classmethod
    def unpack(cls, data: Any) -> CatalogueBatch:
        """A batch from what a peer sent, every field checked; CatalogueRefused says what is wrong."""
        _check(isinstance(data, list) and len(data) == 10, "it is not a catalogue batch")
        version, device, device_name, since, up_to, head, locations, entries, gone_locations, gone_entries = data
        _check(version in (1, FORMAT), f"its format {version!r} is not {FORMAT}; update sdtui on both devices")
        _check(isinstance(device, str), "its device is not an id")
        try:
            device_id = uuid.UUID(device)
        except ValueError:
            raise CatalogueRefused(f"a catalogue batch was refused: its device {device[:40]!r} is not an id") from None
        _check(isinstance(device_name, str) and 0 < len(device_name) <= 200, "its device name is empty or too long")
        for what, number in (("since", since), ("up_to", up_to), ("head", head)):
            _check(_is_int(number) and 0 <= number <= MAX_ID, f"its {what} is not a sequence number")
        _check(since <= up_to <= head, "its sequence numbers are out of order")
        _check(isinstance(locations, list) and len(locations) <= MAX_LOCATIONS, "it carries too many locations")
        _check(isinstance(entries, list) and len(entries) <= MAX_ENTRIES, "it carries too many entries")
        for gone, limit in ((gone_locations, MAX_LOCATIONS), (gone_entries, MAX_DELETED)):
            _check(isinstance(gone, list) and len(gone) <= limit, "it deletes too many ids at once")
            _check(all(_is_id(i) for i in gone), "it deletes something that is not an id")
        return cls(
            device_id, device_name, since, up_to, head, tuple(_location(lo, version) for lo in locations),
            _entries(entries), tuple(gone_locations), tuple(gone_entries),
        )  # fmt: skip


def _check(condition: bool, why: str) -> None:
    if not condition:
        raise CatalogueRefused(f"a catalogue batch was refused: {why}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_id(value: Any) -> bool:
    return _is_int(value) and 0 < value <= MAX_ID


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -MAX_TIME <= value <= MAX_TIME


def _location(data: Any, version: int = FORMAT) -> CatalogueLocation:
    _check(isinstance(data, list) and len(data) == (8 if version == 1 else 10), "a location is malformed")
    id_, path, name, mode, state, created, scanned, root, volume, inside = data if version > 1 else [*data, None, None]
    _check(_is_id(id_), "a location's id is not an id")
    _check(
        isinstance(path, str) and path.startswith("/") and 0 < len(path) <= MAX_PATH and "\0" not in path
        and ".." not in path.split("/") and "." not in path.split("/"),
        f"location {id_}'s path is not an absolute path",
    )  # fmt: skip
    _check(isinstance(name, str) and len(name) <= MAX_NAME and "\0" not in name, f"location {id_}'s name is unusable")
    _check(isinstance(mode, str) and mode in MODES, f"location {id_}'s mode is not one of {', '.join(MODES)}")
    _check(isinstance(state, str) and state in SCAN_STATES, f"location {id_}'s scan state is unknown")
    _check(_is_time(created) and (scanned is None or _is_time(scanned)), f"location {id_}'s times are not times")
    _check(root is None or _is_id(root), f"location {id_}'s root is not an id")
    _check(
        (volume is None and inside is None)
        or (isinstance(volume, str) and _VOLUME_ID.fullmatch(volume) is not None and isinstance(inside, str)
            and len(inside) <= MAX_PATH and "\0" not in inside
            and (inside == "" or not {"", ".", ".."} & set(inside.split("/")))),
        f"location {id_}'s disk is not a disk's identity and a folder inside it",
    )  # fmt: skip
    return CatalogueLocation(id_, path, name, mode, state, float(created), scanned, root, volume, inside)


class EntryRows(Sequence[CatalogueEntry]):
    """A batch's entries as the wire carries them, every field checked, seen one at a time as CatalogueEntry and
    written in bulk as they are (`rows`): a first sync brings hundreds of thousands, no object is made for each."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[list[Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> CatalogueEntry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[CatalogueEntry]: ...
    def __getitem__(self, index: int | slice) -> CatalogueEntry | Sequence[CatalogueEntry]:
        if isinstance(index, slice):
            return EntryRows(self.rows[index])
        return CatalogueEntry._make(self.rows[index])

    def __iter__(self) -> Iterator[CatalogueEntry]:
        return map(CatalogueEntry._make, self.rows)


def _rows(entries: Sequence[CatalogueEntry]) -> Sequence[Sequence[Any]]:
    """Entries as rows of values in the wire's order, as they are (msgpack packs a NamedTuple as the list it is)."""
    return entries.rows if isinstance(entries, EntryRows) else list(entries)


def _entries(rows: list[Any]) -> Sequence[CatalogueEntry]:
    """A batch's entries, every field checked: a column at a time (a first sync brings hundreds of thousands), and
    row by row, to say which entry is wrong, when one is."""
    if _all_fine(rows):
        return EntryRows(rows)
    return tuple(_entry(row) for row in rows)


def _all_fine(rows: list[Any]) -> bool:
    """Whether every entry passes `_entry`'s checks (False may also mean: let `_entry` look closer). Each check runs
    over a column in C (set, map, min, max, join), never a Python line per entry: a batch holds thousands."""
    if not rows:
        return True
    if set(map(type, rows)) != {list} or set(map(len, rows)) != {11}:
        return False
    ids, locations, parents, names, kinds, object_kinds, sizes, files, mtimes, hidden, cas_ids = zip(*rows, strict=True)
    if not (_ints(ids, 1, MAX_ID) and _ints(locations, 1, MAX_ID) and _ints(sizes, 0, MAX_SIZE) and _ints(files, 0, MAX_ID)):
        return False
    folders = _present(parents)
    if not _ints(folders, 1, MAX_ID) or any(map(operator.eq, parents, ids)):
        return False
    if set(map(type, kinds)) != {str} or not set(kinds) <= KINDS:
        return False
    if set(map(type, names)) != {str} or max(map(len, names)) > MAX_NAME:
        return False
    joined = "".join(names)
    if "/" in joined or "\0" in joined:
        return False
    if "" in names or "." in names or ".." in names:  # the root's name is "", and only the root's
        odd = [i for i, n in enumerate(names) if n in ("", ".", "..")]
        if not all(names[i] == "" and parents[i] is None and kinds[i] == "dir" for i in odd):
            return False
    known = _present(object_kinds)
    if set(map(type, known)) - {str} or not set(known) <= OBJECT_KINDS:
        return False
    times = _present(mtimes)
    if set(map(type, times)) - {float, int}:
        return False
    try:
        if times and not (all(map(math.isfinite, times)) and -MAX_TIME <= min(times) and max(times) <= MAX_TIME):
            return False
    except OverflowError:  # an int past any float
        return False
    if set(map(type, hidden)) != {bool}:
        return False
    cas = _present(cas_ids)
    if not cas:
        return True
    return set(map(type, cas)) == {str} and 0 < min(map(len, cas)) and max(map(len, cas)) <= 64 and (
        _HEX.fullmatch("".join(cas)) is not None
    )


def _ints(column: Sequence[Any], low: int, high: int) -> bool:
    return not column or (set(map(type, column)) == {int} and low <= min(column) and max(column) <= high)


def _present(column: tuple[Any, ...]) -> Sequence[Any]:
    """The values of a column that are not None."""
    return column if None not in column else [v for v in column if v is not None]


def _entry(data: Any) -> CatalogueEntry:
    _check(isinstance(data, list) and len(data) == 11, "an entry is malformed")
    id_, location, parent, name, kind, object_kind, size, files, mtime, hidden, cas_id = data
    _check(_is_id(id_) and _is_id(location), "an entry's id or location is not an id")
    _check(parent is None or (_is_id(parent) and parent != id_), f"entry {id_}'s folder is not an id")
    _check(isinstance(name, str) and len(name) <= MAX_NAME, f"entry {id_}'s name is not a name")
    _check(
        (name == "" and parent is None and kind == "dir")
        or (name not in ("", ".", "..") and "/" not in name and "\0" not in name),
        f"entry {id_}'s name {display(name[:80])!r} is not a file name",
    )
    _check(isinstance(kind, str) and kind in KINDS, f"entry {id_}'s kind is unknown")
    _check(
        object_kind is None or (isinstance(object_kind, str) and object_kind in OBJECT_KINDS),
        f"entry {id_}'s object kind is unknown",
    )
    _check(_is_int(size) and 0 <= size <= MAX_SIZE, f"entry {id_}'s size is not a size")
    _check(_is_int(files) and 0 <= files <= MAX_ID, f"entry {id_}'s file count is not a count")
    _check(mtime is None or _is_time(mtime), f"entry {id_}'s modification time is not a time")
    _check(isinstance(hidden, bool), f"entry {id_}'s hidden flag is not a flag")
    _check(cas_id is None or (isinstance(cas_id, str) and _CAS_ID.fullmatch(cas_id) is not None),
           f"entry {id_}'s cas_id is not a content id")  # fmt: skip
    return CatalogueEntry(id_, location, parent, name, kind, object_kind, size, files, mtime, hidden, cas_id)


# -- references ---------------------------------------------------------------------------------------------


_OWNER_ID = (1 << SLOT_BITS) - 1
"""The bits of a global id that hold its owner's id for the entry."""


def ref_of(conn: sqlite3.Connection, entry_id: int) -> EntryRef:
    """The stable reference of an entry of this library: (its owner, the owner's id for it). Another device's entry
    whose catalogue is kept as a file is named by its global id (sdcore.sync.catalogue_store.global_id)."""
    if entry_id >> SLOT_BITS:
        row = conn.execute("SELECT device_id FROM catalogue_slots WHERE slot = ?", (entry_id >> SLOT_BITS,)).fetchone()
        if row is None or not entry_id & _OWNER_ID:
            raise NotFound(f"no entry {entry_id} in the library")
        return EntryRef(uuid.UUID(row[0]), entry_id & _OWNER_ID)
    row = conn.execute(
        "SELECT c.device_id, c.origin_id, l.device_id FROM entries e JOIN locations l ON l.id = e.location_id"
        " LEFT JOIN catalogue_entries c ON c.entry_id = e.id WHERE e.id = ?",
        (entry_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"no entry {entry_id} in the library")
    if row[0] is not None:
        return EntryRef(uuid.UUID(row[0]), row[1])
    return EntryRef(uuid.UUID(row[2]), entry_id)  # this device's, or a library folder copied from its owner


def entry_of(conn: sqlite3.Connection, ref: EntryRef, here: DeviceId | None = None) -> int | None:
    """This library's id of the entry `ref` names; None when it cannot name it (yet). Given `here` (this device, which
    has no slot), an entry of another device that has a slot here (its catalogue kept as a file) is its global id,
    whether or not the file holds it yet, and an owner's id that no global id numbers names nothing (it would reach
    another slot's entries); without it, only the entries the library's own tables hold are looked up (what the
    merge of a catalogue into them asks). An entry of a location taken over here names nothing: it is this device's
    now, and what is said of it by its old owner's id is said again of it by this device (sdcore.sync.shared)."""
    if here is not None and ref.device_id != here:
        slot = conn.execute("SELECT slot FROM catalogue_slots WHERE device_id = ?", (str(ref.device_id),)).fetchone()
        if slot is not None:
            if not 0 < ref.entry_id <= _OWNER_ID or taken_entry(conn, ref) is not None:
                return None
            return global_id(slot[0], ref.entry_id)
    row = conn.execute(
        "SELECT entry_id FROM catalogue_entries WHERE device_id = ? AND origin_id = ?", (str(ref.device_id), ref.entry_id)
    ).fetchone()
    if row is not None:
        return int(row[0])
    row = conn.execute(
        "SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id WHERE e.id = ? AND l.device_id = ?"
        " AND NOT EXISTS (SELECT 1 FROM catalogue_entries c WHERE c.entry_id = e.id)",
        (ref.entry_id, str(ref.device_id)),
    ).fetchone()
    return int(row[0]) if row is not None else None


def taken_entry(conn: sqlite3.Connection, ref: EntryRef) -> int | None:
    """This device's entry that `ref`, an entry of another device's location taken over here, became (None: `ref` names
    no such entry, or the file is gone since). Only the take over writes these (sdcore.library.adopt.take): an op
    naming another id of that device, or another device's entry, reaches no entry of the location by it."""
    row = conn.execute(
        "SELECT t.entry_id FROM taken_entries t JOIN entries e ON e.id = t.entry_id WHERE t.device_id = ? AND t.origin_id = ?",
        (str(ref.device_id), ref.entry_id),
    ).fetchone()
    return None if row is None else int(row[0])


# -- whose locations ------------------------------------------------------------------------------------------


def is_catalogue(library: Library, location: Location) -> bool:
    """Whether a location is another device's (known from its catalogue): never scanned, watched or changed here."""
    return location.device_id not in (library.context.device_id, UNNAMED_DEVICE)


def refuse_catalogue(library: Library, location: Location) -> None:
    """Raise the line that says why another device's location cannot be indexed here."""
    if is_catalogue(library, location):
        owner = device_name(library, location.device_id)
        raise SdError(
            f"location {location.name!r} is on {owner}, not this device: only {owner} indexes or changes it (this "
            "device keeps its catalogue); run the command there"
        )


def device_name(library: Library, device_id: DeviceId) -> str:
    """A device's name as the library knows it (kept_entries.device_name), fit to print."""
    return display(kept_entries.device_name(library, device_id))


def renamed(library: Library, device_id: DeviceId, name: str) -> None:
    """Another device of the library calls itself `name` now (as this device names it): its row says so."""
    with library.write() as db:
        db.execute("UPDATE devices SET name = ? WHERE id = ?", (name, str(device_id)))


def devices(library: Library) -> dict[DeviceId, str]:
    """The other devices whose catalogue the library holds: id -> name (as the device calls itself)."""
    here = library.context.device_id
    ids = {uuid.UUID(r[0]) for r in library.read().execute("SELECT DISTINCT device_id FROM locations")} - {here, UNNAMED_DEVICE}
    return {d: kept_entries.device_name(library, d) for d in sorted(ids)}


def as_of(library: Library, device_id: DeviceId) -> float | None:
    """When the catalogue of a device was last brought up to date (its last sync, else its last scan as copied)."""
    conn = library.read()
    row = conn.execute("SELECT synced FROM catalogue_peers WHERE device_id = ?", (str(device_id),)).fetchone()
    if row is not None:
        return float(row[0])
    row = conn.execute("SELECT max(last_scanned) FROM locations WHERE device_id = ?", (str(device_id),)).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def describe_as_of(when: float | None) -> str:
    """`offline, as of 2026-12-07 14:03` for people."""
    return "offline, as of " + (time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "an unknown time")


# -- offline devices ---------------------------------------------------------------------------------------

REACH_TIMEOUT = 5.0
"""Seconds a listing waits for a device before it lists the device's catalogue instead."""
UNREACHABLE_FOR = 5.0
"""Seconds a device found unreachable is taken as offline without trying again (one command asks several times)."""
_unreachable: dict[DeviceId, float] = {}


class DeviceOffline(SdError):
    """A device known from its catalogue is out of reach: its files can be listed and searched, not changed."""


def has_catalogue(library: Library, device_id: DeviceId) -> bool:
    """Whether the library holds a catalogue of that (other) device."""
    if device_id in (library.context.device_id, UNNAMED_DEVICE):
        return False
    return library.read().execute("SELECT 1 FROM locations WHERE device_id = ? LIMIT 1", (str(device_id),)).fetchone() is not None


async def reachable(library: Library, device_id: DeviceId) -> bool:
    """Whether a device answers now (connecting to it if need be, for `REACH_TIMEOUT` at most)."""
    import asyncio

    if device_id == library.context.device_id:
        return True
    if time.monotonic() - _unreachable.get(device_id, -UNREACHABLE_FOR) < UNREACHABLE_FOR:
        return False
    try:
        link = getattr(library.context.fs_for(device_id), "link", None)  # unpaired: known from its catalogue only
        if link is not None and not getattr(link, "connected", True):
            await asyncio.wait_for(link.connect(), REACH_TIMEOUT)
    except (SdError, OSError, TimeoutError):
        _unreachable[device_id] = time.monotonic()
        return False
    _unreachable.pop(device_id, None)
    return True


async def offline_since(library: Library, device_id: DeviceId) -> float | None:
    """For a device the library has a catalogue of and that cannot be reached now: when its catalogue was brought
    up to date (0.0 when never known); None when it is this device, reachable, or not in the catalogue."""
    if not has_catalogue(library, device_id) or await reachable(library, device_id):
        return None
    return as_of(library, device_id) or 0.0


async def refuse_offline(library: Library, devices: Iterable[DeviceId]) -> None:
    """Raise DeviceOffline for the first of `devices` known from its catalogue that cannot be reached now."""
    for device_id in dict.fromkeys(devices):
        when = await offline_since(library, device_id)
        if when is not None:
            raise DeviceOffline(
                f"{device_name(library, device_id)} is offline: its files can be listed and searched from the "
                f"catalogue ({describe_as_of(when).removeprefix('offline, ')}), not changed"
            )


# -- the owner's side ---------------------------------------------------------------------------------------


def catalogue_changes(library: Library, since_seq: int, limit: int = LIMIT) -> CatalogueBatch:
    """This device's changes after `since_seq`: at most `limit` of them, with the folders and locations they need
    that the asker lacks. The first call starts numbering (every entry of this device, as it is now)."""
    limit = max(1, min(limit, MAX_LIMIT))
    start_tracking(library)
    here = library.context.device_id
    conn = library._connect()  # one read transaction of its own: the batch is one state of the index
    try:
        conn.execute("BEGIN")
        head = conn.execute("SELECT coalesce(max(seq), 0) FROM catalogue_log").fetchone()[0]
        if since_seq > head or highwater.restarted(conn, since_seq):
            # asked after a change this log never reached, or one a restore from a backup lost: the whole catalogue
            # again; the asker sees its head below what it asked, or is told to restart, and starts over
            since_seq = 0
        # each change with its entry as it is now, in one statement (a statement an entry is several times slower)
        rows = conn.execute(
            "SELECT g.seq, g.entry_id, g.location_id, g.deleted, e.id, e.location_id, e.parent_id, e.name, e.kind,"
            " e.object_kind, e.size, e.files, e.mtime, e.hidden, c.cas_id FROM catalogue_log g"
            " LEFT JOIN entries e ON e.id = g.entry_id AND g.deleted = 0"
            " LEFT JOIN content_identities c ON c.id = e.content_id WHERE g.seq > ? ORDER BY g.seq LIMIT ?",
            (since_seq, limit),
        ).fetchall()
        up_to = rows[-1][0] if len(rows) == limit else head
        builder = _BatchBuilder(conn, str(here), since_seq)
        for _seq, entry_id, location_id, deleted, *entry in rows:
            if entry_id is None:
                builder.location(location_id, deleted)
            elif deleted:
                builder.deleted_entries.append(entry_id)
            elif entry[0] is not None:
                entry[-2] = bool(entry[-2])
                builder.entry(CatalogueEntry._make(entry))
        conn.execute("COMMIT")
    finally:
        conn.close()
    return CatalogueBatch(
        here, _this_device_name(library), since_seq, max(up_to, since_seq), max(head, since_seq),
        tuple(builder.locations.values()), tuple(builder.entries.values()), tuple(builder.deleted_locations),
        tuple(builder.deleted_entries),
    )  # fmt: skip


def start_tracking(library: Library) -> None:
    """Number this device's changes from now on, starting with every entry and location it has (a library copied
    from another device starts again for this one)."""
    here = str(library.context.device_id)
    row = library.read().execute("SELECT device_id FROM catalogue_tracking").fetchone()
    if row is not None and row[0] == here:
        return
    with library.write() as db:
        db.execute("DELETE FROM catalogue_tracking")
        db.execute("DELETE FROM catalogue_log")
        db.execute("INSERT INTO catalogue_tracking (device_id) VALUES (?)", (here,))
        db.execute("INSERT INTO catalogue_log (location_id) SELECT id FROM locations WHERE device_id = ? ORDER BY id", (here,))
        db.execute(
            "INSERT INTO catalogue_log (entry_id) SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id"
            " WHERE l.device_id = ? ORDER BY e.id",
            (here,),
        )
    library.catalogue_head = -1


def tell_changes(library: Library) -> None:
    """After a write: publish CatalogueChanged when this device's numbered changes grew (the sync pushes on it)."""
    from sdcore.events import CatalogueChanged

    if library.catalogue_head is None:  # not known yet: is this device's catalogue numbered at all?
        try:
            row = library._writer.execute("SELECT device_id FROM catalogue_tracking").fetchone()
        except sqlite3.OperationalError:  # a schema from before the catalogue (a test of an older migration)
            row = None
        library.catalogue_head = -1 if row and row[0] == str(library.context.device_id) else 0
    if library.catalogue_head == 0:
        return
    row = library._writer.execute("SELECT seq FROM sqlite_sequence WHERE name = 'catalogue_log'").fetchone()
    head = row[0] if row else 0
    if head != library.catalogue_head:
        first = library.catalogue_head == -1
        library.catalogue_head = head
        if not first:
            library.context.bus.publish(CatalogueChanged(library.id, library.context.device_id))


def _this_device_name(library: Library) -> str:
    return library.context.device_name or str(library.context.device_id)[:8]


_ENTRY_SQL = (
    "SELECT e.id, e.location_id, e.parent_id, e.name, e.kind, e.object_kind, e.size, e.files, e.mtime, e.hidden,"
    " c.cas_id FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id WHERE e.id = ?"
)
_LOCATION_SQL = (
    "SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id, volume_path FROM locations"
    " WHERE id = ? AND device_id = ?"
)


class _BatchBuilder:
    """Collects a batch's rows, each folder and location before what needs it."""

    def __init__(self, conn: sqlite3.Connection, here: str, since: int) -> None:
        self.conn, self.here, self.since = conn, here, since
        self.locations: dict[int, CatalogueLocation] = {}
        self.entries: dict[int, CatalogueEntry] = {}
        self.deleted_locations: list[int] = []
        self.deleted_entries: list[int] = []
        self._sent: dict[tuple[str, int], bool] = {}

    def _asker_has(self, kind: str, row_id: int) -> bool:
        """Whether the asker has this entry or location as it is now (its last change is at or before `since`)."""
        key = (kind, row_id)
        if key not in self._sent:
            column = "entry_id" if kind == "entry" else "location_id"
            row = self.conn.execute(f"SELECT seq FROM catalogue_log WHERE {column} = ?", (row_id,)).fetchone()
            self._sent[key] = row is not None and row[0] <= self.since
        return self._sent[key]

    def location(self, location_id: int, deleted: bool = False) -> None:
        if deleted:
            self.deleted_locations.append(location_id)
            return
        if location_id in self.locations:
            return
        row = self.conn.execute(_LOCATION_SQL, (location_id, self.here)).fetchone()
        if row is not None:
            self.locations[row[0]] = CatalogueLocation(*row)

    def entry(self, entry: CatalogueEntry) -> None:
        """Add an entry, and before it the folders above it that the asker lacks."""
        parent = entry.parent_id
        if (
            (parent is None or parent in self.entries or self._asker_has("entry", parent))
            and (entry.location_id in self.locations or self._asker_has("location", entry.location_id))
            and entry.id not in self.entries
        ):
            self.entries[entry.id] = entry  # (most of a first sync: its folder and location came before it)
            return
        chain: list[CatalogueEntry] = []
        found: CatalogueEntry | None = entry
        while found is not None and found.id not in self.entries and len(chain) < 4096:
            chain.append(found)
            parent = found.parent_id
            found = None
            if parent is not None and parent not in self.entries and not self._asker_has("entry", parent):
                row = self.conn.execute(_ENTRY_SQL, (parent,)).fetchone()
                found = None if row is None else CatalogueEntry._make((*row[:9], bool(row[9]), row[10]))
        for found in reversed(chain):
            if found.location_id not in self.locations and not self._asker_has("location", found.location_id):
                self.location(found.location_id)
            self.entries[found.id] = found


# -- the receiver's side ------------------------------------------------------------------------------------


def catalogue_watermark(library: Library, device_id: DeviceId) -> int:
    """How far this device has the catalogue of `device_id` (0: nothing yet)."""
    row = library.read().execute("SELECT seq FROM catalogue_peers WHERE device_id = ?", (str(device_id),)).fetchone()
    return int(row[0]) if row else 0


def catalogue_held(library: Library, device_id: DeviceId) -> bool:
    """Whether this device holds the catalogue of `device_id` as a file with a watermark (else a first sync fetches it:
    none kept, forgotten, or one whose fetch was cut off after it was put in place, before it was searchable)."""
    row = library.read().execute("SELECT 1 FROM catalogue_peers WHERE device_id = ?", (str(device_id),)).fetchone()
    return row is not None and _is_kept(library, device_id)


def apply_catalogue(
    library: Library, device_id: DeviceId, batch: CatalogueBatch, bulk: BulkWatch | None = None,
    name: Callable[[], str] | None = None,
) -> None:
    """Write another device's batch into its catalogue and move its watermark, in one transaction; a batch applied
    twice changes nothing. Raises CatalogueRefused, writing nothing, for a batch that breaks the rules. `bulk`: what
    bounds the bulk load of a sync from a device (see BulkWatch). `name()`: the name the device is paired as, written
    in place of the one the batch says, asked inside the transaction (a rename heard while the batch was on its way,
    written into the library's tables at once by sdcore.sync.service, is not undone)."""
    if batch.device_id != device_id:
        raise CatalogueRefused(
            f"a catalogue batch from {device_id} was refused: it claims to be the catalogue of {batch.device_id} "
            "(a device sends only its own)"
        )
    if device_id in (library.context.device_id, UNNAMED_DEVICE):
        raise CatalogueRefused("a catalogue batch was refused: it claims to be this device's own catalogue")
    kept = _is_kept(library, device_id)
    with library.write() as db:
        if name is not None:
            batch = dataclasses.replace(batch, device_name=name())
        watermark = _watermark(db, device_id)
        if batch.since > watermark:
            raise CatalogueRefused(
                f"a catalogue batch from {display(batch.device_name)} was refused: it starts after change "
                f"{batch.since}, and this device has only up to {watermark}; ask again from {watermark}"
            )
        if batch.up_to < watermark:
            return  # an older batch than one applied (a retry that arrived late): what it carries is known or newer
        held = 0 if kept else db.execute("SELECT coalesce(max(entry_id), 0) FROM catalogue_entries").fetchone()[0]
        if held + len(batch.entries) > MAX_HELD:  # maybe too many: counted (a kept file holds to its own limits)
            held = db.execute("SELECT count(*) FROM catalogue_entries WHERE device_id = ?", (str(device_id),)).fetchone()[0]
        if held + len(batch.entries) - len(batch.deleted_entries) > MAX_HELD:
            raise CatalogueRefused(
                f"a catalogue batch from {display(batch.device_name)} was refused: this device keeps at most"
                f" {MAX_HELD:,} entries of one device's catalogue, and holds {held:,} of it"
            )
        if batch.locations:
            places = _places_after(db, device_id, batch)
            if places > MAX_HELD_LOCATIONS:
                raise CatalogueRefused(
                    f"a catalogue batch from {display(batch.device_name)} was refused: this device keeps at most"
                    f" {MAX_HELD_LOCATIONS:,} locations of one device's catalogue, and it would hold {places:,} of it"
                )
        batch = _without_taken_over(db, batch)
        if kept:
            writer, touched = _apply_kept(library, db, device_id, batch)
        else:
            writer = _apply_in_tables(library, db, device_id, batch, bulk)
            touched = writer.touched
        _set_watermark(db, device_id, batch.up_to, watermark)
    _tell(library, device_id, writer, batch, touched)


def _apply_in_tables(
    library: Library, db: sqlite3.Connection, device_id: DeviceId, batch: CatalogueBatch, bulk: BulkWatch | None
) -> _Writer:
    """A batch of a device whose catalogue is not kept as a file, into the library's own tables (a library copied from
    its owner's folder holds its entries there)."""
    bulked = (bulk is None or bulk.allowed) and _bulk_load(db, batch)
    if bulked:
        drop_secondary_indexes(db, keep=("entries_by_parent",))  # the writer finds entries by folder and name
    writer = _Writer(db, device_id, library)
    writer.device(batch.device_name)
    try:
        for origin in batch.deleted_entries:
            writer.delete_entry(origin)
        for origin in batch.deleted_locations:
            writer.delete_location(origin)
        for loc in batch.locations:
            writer.location(loc)
        if not writer.new_entries(batch.entries):  # some are here already: one at a time
            writer.known([e.id for e in batch.entries] + [e.parent_id for e in batch.entries if e.parent_id])
            writer.contents(batch.entries)
            for entry in batch.entries:
                writer.entry(entry)
            writer.flush()
        for loc in batch.locations:
            writer.root_of(loc)
        library.sync.reapply_pending(db, str(device_id), [row[0] for row in _rows(batch.entries)])  # tags waiting
    except sqlite3.IntegrityError as exc:  # two entries of one folder with one name, say
        raise CatalogueRefused(f"a catalogue batch was refused: it contradicts itself ({exc})") from None
    writer.index_for_search(batch.complete)
    if bulk is not None and bulk.applied(bulked, len(batch.entries), batch.head - batch.up_to):
        make_secondary_indexes(db)  # the device does not bring what it says fast enough: no more without them
    elif batch.complete and not bulked and secondary_indexes_missing(db):
        make_secondary_indexes(db)  # a first sync's last batch: the indexes it wrote without, in one pass each
    return writer


def _is_kept(library: Library, device_id: DeviceId) -> bool:
    from sdcore.sync import catalogue_store

    return catalogue_store.path_of(library, device_id).is_file()


def _apply_kept(
    library: Library, db: sqlite3.Connection, device_id: DeviceId, batch: CatalogueBatch
) -> tuple[_Writer, set[str]]:
    """A batch of a device whose catalogue is kept as a file: its entries into the file (catalogue_store_apply), its
    locations and name into the library's tables (inside the caller's transaction, which moves the watermark). The
    file commits first: cut off between the two (kill -9, a full disk), the watermark is still the batch's `since`, the
    same batch comes again, writes nothing into the file (whose head is its `up_to` already) and its locations again
    (the same rows). Returns the writer and the folders (absolute, the owner's) whose listing changed."""
    from sdcore.sync import catalogue_store_apply

    touched = catalogue_store_apply.apply(library, device_id, batch)
    return _kept_locations(library, db, device_id, batch), touched


def _kept_locations(library: Library, db: sqlite3.Connection, device_id: DeviceId, batch: CatalogueBatch) -> _Writer:
    """The name and locations a batch of a device whose catalogue is a kept file says, into the library's tables."""
    writer = _Writer(db, device_id, library, kept=True)
    writer.device(batch.device_name)
    for origin in batch.deleted_locations:
        writer.delete_location(origin)
    for loc in batch.locations:
        writer.location(loc)
    return writer


def _set_watermark(db: sqlite3.Connection, device_id: DeviceId, up_to: int, watermark: int) -> None:
    if up_to > watermark:
        db.execute(
            "INSERT INTO catalogue_peers (device_id, seq, synced) VALUES (?, ?, ?) ON CONFLICT (device_id)"
            " DO UPDATE SET seq = excluded.seq, synced = excluded.synced",
            (str(device_id), up_to, time.time()),
        )
    else:
        db.execute("UPDATE catalogue_peers SET synced = ? WHERE device_id = ?", (time.time(), str(device_id)))


def _tell(library: Library, device_id: DeviceId, writer: _Writer, batch: CatalogueBatch, touched: set[str]) -> None:
    """The events of a batch applied: locations handed over or changed, the folders whose listing changed."""
    from sdcore.events import EntriesChanged, LibraryChanged

    bus = library.context.bus
    if writer.handed_over:
        bus.publish(LibraryChanged(library.id, "location removed"))
    if batch.locations or batch.deleted_locations:
        bus.publish(LibraryChanged(library.id, "catalogue locations changed"))
    for directory in sorted(touched):
        bus.publish(EntriesChanged(device_id, directory, (), library.id))


def adopt_catalogue_file(library: Library, device_id: DeviceId, name: str | None = None) -> None:
    """After a first sync put the catalogue file of `device_id` in place (catalogue_store.keep, listable): its
    locations and its name into the library's tables as a batch of them would be written (the mapping to the
    library's ids, a volume taken over), the locations it no longer has dropped. The watermark is moved apart, once the
    file is searchable too (`catalogue_file_kept`): cut off before, the file is fetched again."""
    from sdcore.sync import catalogue_store

    with contextlib.closing(sqlite3.connect(uri(catalogue_store.path_of(library, device_id), "mode=ro"), uri=True)) as f:
        device_name, head = f.execute("SELECT device_name, head FROM catalogue").fetchone()
        locations = tuple(CatalogueLocation(*row) for row in f.execute(f"{_FILE_LOCATIONS} ORDER BY id"))
    with library.write() as db:
        ids = {loc.id for loc in locations}
        gone = tuple(origin for (origin,) in db.execute(
            "SELECT origin_id FROM catalogue_locations WHERE device_id = ?", (str(device_id),)) if origin not in ids)  # fmt: skip
        batch = CatalogueBatch(device_id, name or device_name, 0, head, head, locations, (), gone)
        writer = _kept_locations(library, db, device_id, _without_taken_over(db, batch))
    _tell(library, device_id, writer, dataclasses.replace(batch, locations=locations), set())


def catalogue_file_kept(library: Library, device_id: DeviceId, head: int) -> None:
    """The watermark of a device whose catalogue file was kept (whole and searchable): its numbered batches from `head`."""
    with library.write() as db:
        db.execute(
            "INSERT INTO catalogue_peers (device_id, seq, synced) VALUES (?, ?, ?) ON CONFLICT (device_id)"
            " DO UPDATE SET seq = excluded.seq, synced = excluded.synced",
            (str(device_id), head, time.time()),
        )


_FILE_LOCATIONS = (
    "SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id, volume_path FROM locations"
)


def kept_location_into_tables(library: Library, db: sqlite3.Connection, location_id: int) -> None:
    """Another device's location whose entries are in the file of its catalogue kept here, its entries written into
    the library's own tables (mapped to the owner's ids, as a batch of them was before issue 16), and the tags, notes
    and favourites on them moved from their global ids to those rows; in the caller's write transaction. What a take
    over (sdcore.library.adopt.take) keeps of it: the file holds them no more for this device (`_FILE_TAKEN`)."""
    from sdcore.sync import kept_entries
    from sdcore.sync.catalogue_file import cas_id_of

    row = db.execute("SELECT device_id FROM locations WHERE id = ?", (location_id,)).fetchone()
    source = None if row is None else kept_entries.of_device(library, uuid.UUID(row[0]))
    origin = -1 if source is None else source.local(location_id)
    if source is None or source.device_id is None or origin == -1:
        return
    file = source.conn
    location = CatalogueLocation(*file.execute(f"{_FILE_LOCATIONS} WHERE id = ?", (origin,)).fetchone())
    entries = [
        CatalogueEntry(i, origin, parent, name, ENTRY_KINDS[kind], None if o is None else schema.OBJECT_KINDS[o], size,
                       files, mtime, bool(hidden), None if cas is None else cas_id_of(cas))
        for i, parent, name, kind, o, size, files, mtime, hidden, cas in file.execute(
            "SELECT id, parent_id, name, kind_code, object_code, size, files, mtime, hidden, cas_number FROM main.entries"
            " WHERE location_id = ? ORDER BY id", (origin,))
    ]  # fmt: skip
    writer = _Writer(db, source.device_id, library)
    writer.location(location)
    if not writer.new_entries(entries):
        writer.known([e.id for e in entries] + [e.parent_id for e in entries if e.parent_id])
        writer.contents(entries)
        for entry in entries:
            writer.entry(entry)
        writer.flush()
    writer.root_of(location)
    moved = db.execute(
        "SELECT ? | c.origin_id, c.entry_id FROM catalogue_entries c JOIN entries e ON e.id = c.entry_id"
        " WHERE e.location_id = ? AND c.device_id = ?", (source.high, location_id, str(source.device_id)),
    ).fetchall()  # fmt: skip
    db.executemany("UPDATE tag_assignments SET entry_id = ?2 WHERE entry_id = ?1", moved)
    db.executemany(  # (a note moved by its triggers: the note index is keyed by the entry's id)
        "INSERT OR REPLACE INTO user_metadata (entry_id, note, favorite, updated)"
        " SELECT ?2, note, favorite, updated FROM user_metadata WHERE entry_id = ?1", moved)  # fmt: skip
    db.executemany("DELETE FROM user_metadata WHERE entry_id = ?", [(was,) for was, _ in moved])


def _places_after(db: sqlite3.Connection, device_id: DeviceId, batch: CatalogueBatch) -> int:
    """How many locations of the device's catalogue this device would hold with the batch (at least: those it
    deletes are not counted out)."""
    (places,) = db.execute("SELECT count(*) FROM catalogue_locations WHERE device_id = ?", (str(device_id),)).fetchone()
    if places + len(batch.locations) <= MAX_HELD_LOCATIONS:
        return places + len(batch.locations)
    (known,) = db.execute(
        "SELECT count(*) FROM catalogue_locations WHERE device_id = ? AND origin_id IN (SELECT value FROM json_each(?))",
        (str(device_id), json.dumps([lo.id for lo in batch.locations])),
    ).fetchone()
    return places + len(batch.locations) - known


def _without_taken_over(db: sqlite3.Connection, batch: CatalogueBatch) -> CatalogueBatch:
    """The batch without what it says of the locations this device took over from its owner (their disk is here
    now; the owner learns it from this device's catalogue): they are this device's, its changes of them are not."""
    taken = {origin for (origin,) in db.execute(
        "SELECT c.origin_id FROM catalogue_locations c JOIN locations l ON l.id = c.location_id"
        " WHERE c.device_id = ?1 AND l.device_id != ?1", (str(batch.device_id),),
    )}  # fmt: skip
    released = taken & set(batch.deleted_locations)  # the owner has let go of it: the id may come again, for another
    if released:
        db.executemany("DELETE FROM catalogue_locations WHERE device_id = ? AND origin_id = ?",
                       [(str(batch.device_id), origin) for origin in released])  # fmt: skip
        taken -= released
    if not taken:
        return batch
    entries = batch.entries
    kept = EntryRows([row for row in entries.rows if row[1] not in taken]) if isinstance(entries, EntryRows) else tuple(
        e for e in entries if e.location_id not in taken
    )
    return dataclasses.replace(
        batch,
        locations=tuple(lo for lo in batch.locations if lo.id not in taken),
        entries=kept,
        deleted_locations=tuple(i for i in batch.deleted_locations if i not in taken),
    )  # (its deleted entries are not mapped to the entries taken over any more: deleting them does nothing)


def forget_catalogue(library: Library, device_id: DeviceId) -> None:
    """Drop this device's catalogue of another device and its watermark (it is loaded again from the start)."""
    from sdcore.events import LibraryChanged

    with library.write() as db:
        writer = _Writer(db, device_id, library)
        for (local,) in db.execute(
            "SELECT c.location_id FROM catalogue_locations c JOIN locations l ON l.id = c.location_id"
            " WHERE c.device_id = ?1 AND l.device_id = ?1", (str(device_id),),
        ).fetchall():  # fmt: skip
            writer._drop_location(local)
        db.execute("DELETE FROM catalogue_peers WHERE device_id = ?", (str(device_id),))
    from sdcore.sync import catalogue_store

    catalogue_store.forget(library, device_id)  # (after: cut off between, a watermark of 0 fetches the file again)
    library.context.bus.publish(LibraryChanged(library.id, "catalogue locations changed"))


BULK_LOAD_MIN = 20_000
"""Changes a sync must still bring (and more than the library holds) to be written as a bulk load."""
BULK_STALL = 5.0
"""Seconds a bulk load of a sync waits for the device's next batch before it makes the indexes again."""
BULK_MOST = 300.0
"""Seconds a bulk load of a sync may keep the library without those indexes, whatever the device says is to come."""


class BulkWatch:
    """What bounds the time a sync from a device keeps this library without its secondary indexes. A bulk load starts
    on what the device says is still to come (its `head`), which it may make up; the library's own sorted searches,
    duplicates and rescans are slow meanwhile. So the load ends (the indexes made again, and not dropped again in
    this sync) when the device stalls (no batch within BULK_STALL), when its batches come too slowly to bring what
    it says within BULK_MOST of the load's start, or at BULK_MOST. A device has one bulk load per run of the sync
    service (sdcore.sync.service): each makes the indexes again, over the whole library."""

    def __init__(self, under_way: bool, allowed: bool = True) -> None:
        self.allowed = allowed
        """Whether this sync may (still) write as a bulk load."""
        self._began = time.monotonic() if under_way else None
        self._arrived = 0

    @property
    def began(self) -> bool:
        """Whether a bulk load was under way in this sync."""
        return self._began is not None

    @property
    def under_way(self) -> bool:
        return self._began is not None and self.allowed

    def patience(self) -> float | None:
        """How long to wait for the next batch before ending the load (None: no load under way)."""
        return BULK_STALL if self.under_way else None

    def stalled(self) -> None:
        """No batch came within `patience()`: the load ends (the caller makes the indexes: `end_bulk_load`)."""
        self.allowed = False

    def applied(self, bulked: bool, entries: int, to_come: int) -> bool:
        """After a batch (`bulked`: written as a bulk load) of `entries`, with `to_come` changes still to come by the
        device's word: whether the load ends here (the caller makes the indexes)."""
        if not bulked:
            return False
        now = time.monotonic()
        if self._began is None:
            self._began = now
            return False
        self._arrived += entries
        elapsed, left = now - self._began, BULK_MOST - (now - self._began)
        if left <= 0 or to_come * elapsed > left * max(self._arrived, 1):  # at this rate, not all within BULK_MOST
            self.allowed = False
            return True
        return False



def _bulk_load(db: sqlite3.Connection, batch: CatalogueBatch) -> bool:
    """Whether this batch is part of a bulk load, written without the entries' secondary indexes (far faster than a
    B-tree insert a row in each): one under way (the indexes are missing), or a sync that still brings more entries
    than the library has (a first sync, mostly). Its last batch makes them again; so does a sync that stops before
    (`end_bulk_load`), or the next open after a crash (`Library.hold_lock`)."""
    if batch.complete:
        return False
    if secondary_indexes_missing(db):
        return True
    held = db.execute("SELECT coalesce(max(id), 0) FROM entries").fetchone()[0]
    return batch.head - batch.since > max(BULK_LOAD_MIN, held)


def bulk_load_under_way(library: Library) -> bool:
    return secondary_indexes_missing(library.read())


def end_bulk_load(library: Library) -> None:
    """After a first sync stopped before its end (the device went away, the job was paused or canceled): make the
    indexes it wrote without, so the library is not left slow to sort and find duplicates in meanwhile."""
    if secondary_indexes_missing(library.read()):
        with library.write() as db:
            make_secondary_indexes(db)


def _watermark(db: sqlite3.Connection, device_id: DeviceId) -> int:
    row = db.execute("SELECT seq FROM catalogue_peers WHERE device_id = ?", (str(device_id),)).fetchone()
    return int(row[0]) if row else 0


# A batch's new entries as they came (`_Writer.new_entries`): `n` their order, `place` their local location. A
# staged entry's folder is the staged row `p` of that id, else (`p.id IS NULL`) the entry `c` of the catalogue.
_STAGE_TABLE = (
    "CREATE TEMP TABLE IF NOT EXISTS catalogue_stage (n INTEGER PRIMARY KEY, id INTEGER NOT NULL UNIQUE,"
    " location_id INTEGER, parent_id INTEGER, name TEXT, kind TEXT, object_kind TEXT, size INTEGER, files INTEGER,"
    " mtime REAL, hidden INTEGER, cas_id TEXT, place INTEGER)"
)
_STAGE_ENTRY = (
    "INSERT INTO temp.catalogue_stage (id, location_id, parent_id, name, kind, object_kind, size, files, mtime, hidden,"
    " cas_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_FOLDER_OF_STAGED = (
    " LEFT JOIN temp.catalogue_stage p ON p.id = s.parent_id"
    " LEFT JOIN catalogue_entries c ON p.id IS NULL AND c.device_id = ?1 AND c.origin_id = s.parent_id"
)
_ANY_KNOWN = (  # (CROSS JOIN: the stage first, never the device's every entry first)
    "SELECT 1 FROM temp.catalogue_stage s CROSS JOIN catalogue_entries c ON c.device_id = ? AND c.origin_id = s.id"
    " LIMIT 1"
)
_WRONG_FOLDER = (  # the first entry whose folder is not a folder of its location, staged before it or here already
    f"SELECT s.id, s.parent_id FROM temp.catalogue_stage s {_FOLDER_OF_STAGED} LEFT JOIN entries f ON f.id = c.entry_id"
    " WHERE s.parent_id IS NOT NULL AND NOT coalesce(CASE WHEN p.id IS NOT NULL"
    "  THEN p.n < s.n AND p.kind = 'dir' AND p.place = s.place ELSE f.kind = 'dir' AND f.location_id = s.place END, 0)"
    " ORDER BY s.n LIMIT 1"
)
_NAMES_TAKEN = (  # entries here at the folder and name of a staged one
    "SELECT e.location_id, e.id, e.kind FROM temp.catalogue_stage s"
    " CROSS JOIN catalogue_entries c ON c.device_id = ? AND c.origin_id = s.parent_id"
    " CROSS JOIN entries e ON e.parent_id = c.entry_id AND e.name = s.name"
)
_NEW_CONTENTS = (
    "INSERT INTO content_identities (cas_id, size, object_kind) SELECT cas_id, size, object_kind"
    " FROM temp.catalogue_stage WHERE cas_id IS NOT NULL ORDER BY cas_id ON CONFLICT (cas_id) DO NOTHING"
)
_NEW_ENTRIES = (
    "INSERT INTO entries (id, location_id, parent_id, name, extension, kind_code, object_code, size, files, mtime,"
    " content_id)"
    " SELECT s.n + :offset, s.place, coalesce(p.n + :offset, c.entry_id), s.name,"
    "  CASE s.kind WHEN 'file' THEN extension_of(s.name) ELSE '' END,"
    f"  {kind_code_sql('s.kind')}, {object_code_sql('s.object_kind')}, s.size, s.files, s.mtime, i.id"
    " FROM temp.catalogue_stage s LEFT JOIN temp.catalogue_stage p ON p.id = s.parent_id"
    " LEFT JOIN catalogue_entries c ON p.id IS NULL AND c.device_id = :owner AND c.origin_id = s.parent_id"
    " LEFT JOIN content_identities i ON i.cas_id = s.cas_id ORDER BY s.n"
)
_NEW_FOLDERS = (
    f"SELECT s.n, s.id, s.parent_id, s.name, p.n, d.path, s.place FROM temp.catalogue_stage s {_FOLDER_OF_STAGED}"
    " LEFT JOIN directory_paths d ON d.entry_id = c.entry_id WHERE s.kind = 'dir' ORDER BY s.n"
)
_NEW_PARENTS = (  # the folders of the staged entries, in the order they first come (read as far as needed)
    f"SELECT DISTINCT s.parent_id, s.place, p.n, d.path FROM temp.catalogue_stage s {_FOLDER_OF_STAGED}"
    " LEFT JOIN directory_paths d ON d.entry_id = c.entry_id WHERE s.parent_id IS NOT NULL"
)


class _Writer:
    """Applies one batch of one device's catalogue inside a write transaction."""

    def __init__(self, db: sqlite3.Connection, device_id: DeviceId, library: Library, kept: bool = False) -> None:
        self.db = db
        self.kept = kept  # the device's entries are in its kept file: only its locations are written here
        self.device_id = device_id
        self.owner = str(device_id)
        self.touched: set[str] = set()  # directories (absolute, the owner's) whose listing changed, if few
        self._locations: dict[int, tuple[int, str]] = {}  # origin id -> (local id, path)
        self._roots: dict[int, int] = {}  # local location id -> the owner's id of its root entry
        self._mapped: dict[int, int | None] = {}  # origin id -> local id (None: not here), as looked up
        self._folders: dict[int, tuple[int, str, str | None]] = {}  # local id -> (location, kind, directory path)
        self._new_folders: set[int] = set()  # local ids made in this batch: nothing else is in them yet
        self._content: dict[str, int] = {}
        self._new_rows: list[tuple] = []  # entries to insert, their ids handed out here (`flush`)
        self._new_paths: list[tuple[int, int, str]] = []
        self._taken: list[tuple[int, str]] = []  # (folder, name) of new entries in folders that were here before
        self._origin: dict[int, int] = {}  # local id handed out -> the owner's id
        self._next_id = next_entry_id(db)
        self._paused: set[int] = set()  # local locations loaded without the search triggers (a first sync)
        self.library = library
        self.handed_over = False  # whether a location of this device became the owner's (`_hand_over`)
        self._mounted: set[str] | None = None  # ids of the disks mounted here, read at the batch's first claim for one
        # A library folder copied from the owner holds its entries under their own ids, unmapped: looked up then.
        self._adoptable = db.execute(
            "SELECT 1 FROM locations WHERE device_id = ? AND id NOT IN (SELECT location_id FROM catalogue_locations)"
            " LIMIT 1", (self.owner,),
        ).fetchone() is not None  # fmt: skip

    def device(self, name: str) -> None:
        self.db.execute(
            "INSERT INTO devices (id, name) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            (self.owner, name),
        )

    # locations

    def _local_location(self, origin: int) -> tuple[int, str] | None:
        if origin in self._locations:
            return self._locations[origin]
        row = self.db.execute(
            "SELECT l.id, l.path FROM catalogue_locations c JOIN locations l ON l.id = c.location_id"
            " WHERE c.device_id = ? AND c.origin_id = ?",
            (self.owner, origin),
        ).fetchone()
        if row is None:  # a library folder copied from the owner holds its locations under their own ids
            row = self.db.execute(
                "SELECT id, path FROM locations WHERE id = ? AND device_id = ?"
                " AND id NOT IN (SELECT location_id FROM catalogue_locations)",
                (origin, self.owner),
            ).fetchone()
            if row is not None:
                self.db.execute("INSERT INTO catalogue_locations VALUES (?, ?, ?)", (row[0], self.owner, origin))
        if row is not None:
            self._locations[origin] = (row[0], row[1])
        return self._locations.get(origin)

    def location(self, loc: CatalogueLocation) -> None:
        known = self._local_location(loc.id)
        if known is None:
            stale = self.db.execute(
                "SELECT id FROM locations WHERE device_id = ? AND path = ?", (self.owner, loc.path)
            ).fetchone()
            if stale is not None:  # removed there and added again: its removal is on its way
                self._drop_location(stale[0])
            if loc.volume_id is not None:
                self._hand_over(loc.volume_id, loc.volume_path or "")
            local = self.db.execute(
                "INSERT INTO locations (device_id, path, name, mode, scan_state, created, last_scanned, volume_id,"
                " volume_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.owner, loc.path, loc.name, loc.mode, loc.scan_state, loc.created, loc.last_scanned, loc.volume_id,
                 loc.volume_path),
            ).lastrowid  # fmt: skip
            assert local is not None
            self.db.execute("INSERT INTO catalogue_locations VALUES (?, ?, ?)", (local, self.owner, loc.id))
            if not self.kept:
                pause_fts(self.db, local)  # a first sync: its search index is made in one pass when it completes
                self._paused.add(local)
        else:
            local = known[0]
            if known[1] != loc.path:
                clash = self.db.execute(
                    "SELECT id FROM locations WHERE device_id = ? AND path = ? AND id != ?", (self.owner, loc.path, local)
                ).fetchone()
                if clash is not None:
                    self._drop_location(clash[0])
            self.db.execute(
                "UPDATE locations SET path = ?, name = ?, mode = ?, scan_state = ?, created = ?, last_scanned = ?,"
                " volume_id = ?, volume_path = ? WHERE id = ?",
                (loc.path, loc.name, loc.mode, loc.scan_state, loc.created, loc.last_scanned, loc.volume_id,
                 loc.volume_path, local),
            )  # fmt: skip
        self._locations[loc.id] = (local, loc.path)
        if loc.root_id is not None:
            self._roots[local] = loc.root_id
        if self.kept:  # its root by its global id, as the library's tables name another device's entries
            self.db.execute("UPDATE locations SET root_id = ? WHERE id = ?", (self._global_id(loc.root_id), local))

    def _global_id(self, owner_id: int | None) -> int | None:
        from sdcore.sync.catalogue_store import global_id

        row = self.db.execute("SELECT slot FROM catalogue_slots WHERE device_id = ?", (self.owner,)).fetchone()
        return None if owner_id is None or row is None else global_id(row[0], owner_id)

    def _hand_over(self, volume_id: str, inside: str) -> None:
        """The owner says its new location is this device's location on a disk (it has the disk mounted now): this
        device's is dropped (its entries come back as the owner's), unless the disk is mounted here too (see
        sdcore.library.volume_locations: a cloned disk, or a lie)."""
        from sdcore.volumes import list_volumes

        here = str(self.library.context.device_id)
        mine = self.db.execute(
            "SELECT id FROM locations WHERE device_id = ? AND volume_id = ? AND volume_path = ?", (here, volume_id, inside)
        ).fetchall()
        if not mine:
            return
        if self._mounted is None:  # once a batch: a batch of a thousand such claims would read the disks a thousand times
            self._mounted = {v.id for v in list_volumes()}
        if volume_id in self._mounted:
            return
        for (local,) in mine:
            self.db.execute("DELETE FROM locations WHERE id = ?", (local,))  # first: peers are told of it, not of each entry
            self._drop_location(local)
            self.handed_over = True

    def root_of(self, loc: CatalogueLocation) -> None:
        local_location = self._locations[loc.id][0]
        root = self._local_entry(loc.root_id) if loc.root_id is not None else None
        self.db.execute("UPDATE locations SET root_id = ? WHERE id = ?", (root, local_location))

    def delete_location(self, origin: int) -> None:
        known = self._local_location(origin)
        if known is not None:
            self._drop_location(known[0])
            self._locations.pop(origin, None)

    def _drop_location(self, local: int) -> None:
        self.flush()
        db = self.db
        db.execute("DELETE FROM catalogue_entries WHERE entry_id IN (SELECT id FROM entries WHERE location_id = ?)", (local,))
        db.execute("DELETE FROM directory_paths WHERE location_id = ?", (local,))
        db.execute("DELETE FROM entries WHERE location_id = ?", (local,))
        db.execute("DELETE FROM catalogue_locations WHERE location_id = ?", (local,))
        db.execute("DELETE FROM locations WHERE id = ?", (local,))
        db.execute("DELETE FROM fts_pause WHERE location_id = ?", (local,))
        self._folders.clear()
        self._mapped.clear()
        self._locations = {k: v for k, v in self._locations.items() if v[0] != local}

    def index_for_search(self, complete: bool) -> None:
        """A first sync's entries join the search index in one pass once it is complete (a trigger a row is slower)."""
        if complete:
            for (location,) in self.db.execute(
                "SELECT location_id FROM catalogue_locations WHERE device_id = ?", (self.owner,)
            ).fetchall():
                resume_fts(self.db, location)

    # entries

    def contents(self, entries: Sequence[CatalogueEntry]) -> None:
        """The content ids of the batch's cas_ids, made where new, all at once."""
        found = {e.cas_id: e for e in entries if e.cas_id is not None}
        self.db.executemany(
            "INSERT INTO content_identities (cas_id, size, object_kind) VALUES (?, ?, ?) ON CONFLICT (cas_id) DO NOTHING",
            [(cas, e.size, e.object_kind) for cas, e in found.items()],
        )
        wanted = list(found)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            self._content.update(self.db.execute(
                f"SELECT cas_id, id FROM content_identities WHERE cas_id IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall())  # fmt: skip

    def new_entries(self, entries: Sequence[CatalogueEntry]) -> bool:
        """Write a batch's entries when none of them is here yet (a first sync, new files) with no Python per entry:
        staged as they came, checked and written by a few statements (folders' paths are worked out in Python, a
        folder at a time). False, having written nothing, when some are here already, or an id comes twice, or the
        library is a copy of the owner's (its entries are found one by one): `entry` writes them then."""
        if not entries:
            return True
        if self._adoptable:
            return False
        db, owner = self.db, self.owner
        db.execute(_STAGE_TABLE)
        db.execute("DELETE FROM temp.catalogue_stage")
        try:
            db.executemany(_STAGE_ENTRY, _rows(entries))  # (a NamedTuple is bound as a sequence: slower, still right)
        except sqlite3.IntegrityError:  # an id twice: the later row is a change of the earlier one
            return False
        if db.execute(_ANY_KNOWN, (owner,)).fetchone() is not None:
            return False
        places: dict[int, str] = {}  # local location -> its path
        for (origin,) in db.execute("SELECT DISTINCT location_id FROM temp.catalogue_stage").fetchall():
            where = self._local_location(origin)
            if where is None:
                (first,) = db.execute("SELECT id FROM temp.catalogue_stage WHERE location_id = ? ORDER BY n", (origin,)).fetchone()
                raise CatalogueRefused(
                    f"a catalogue batch was refused: entry {first} is in location {origin}, which its device never sent"
                )
            db.execute("UPDATE temp.catalogue_stage SET place = ? WHERE location_id = ?", (where[0], origin))
            places[where[0]] = where[1]
        wrong = db.execute(_WRONG_FOLDER, (owner,)).fetchone()
        if wrong is not None:
            raise CatalogueRefused(
                f"a catalogue batch was refused: entry {wrong[0]}'s folder {wrong[1]} is not a folder of its location"
                " that its device sent"
            )
        for location, entry_id, kind in db.execute(_NAMES_TAKEN, (owner,)).fetchall():
            _orphan(db, location, entry_id, kind == "dir")  # out of date: its own change is in a later batch
        base = next_entry_id(db)
        offset = base - db.execute("SELECT min(n) FROM temp.catalogue_stage").fetchone()[0]
        db.execute(_NEW_CONTENTS)
        db.execute(_NEW_ENTRIES, {"offset": offset, "owner": owner})
        db.execute("INSERT INTO catalogue_entries SELECT n + ?, ?, id FROM temp.catalogue_stage ORDER BY n", (offset, owner))
        paths = self._new_folder_paths(offset)
        self._touch(places, paths)
        db.execute("DELETE FROM temp.catalogue_stage")
        self._next_id = base + len(entries)
        self._folders.clear()
        self._mapped.clear()
        return True

    def _new_folder_paths(self, offset: int) -> dict[int, str]:
        """The paths of the staged folders (each below its folder, staged before it or here already): written, and
        returned by stage row."""
        paths: dict[int, str] = {}
        rows: list[tuple[int, int, str]] = []
        for n, origin, parent, name, parent_n, above, place in self.db.execute(_NEW_FOLDERS, (self.owner,)).fetchall():
            local = n + offset
            path: str | None = None
            if parent is None:
                path = "" if self._is_root(place, origin) else None  # else detached by its owner's scan for now
            else:
                if parent_n is not None:
                    above = paths[parent_n]
                if above is not None:
                    path = f"{above}/{name}" if above else name
            paths[n] = path if path is not None else f"//orphan-{local}"
            rows.append((local, place, paths[n]))
        self.db.executemany("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, ?)", rows)
        return paths

    def _touch(self, places: dict[int, str], paths: dict[int, str]) -> None:
        """The folders whose listing the staged entries changed, as `entry` notes them (the first 64)."""
        folders = self.db.execute(_NEW_PARENTS, (self.owner,))
        for _parent, place, parent_n, above in folders:
            if len(self.touched) >= 64:
                break
            path = paths[parent_n] if parent_n is not None else above
            if path is not None and not path.startswith("//"):
                self.touched.add(_absolute(places[place], from_db(path)))
        folders.close()

    def flush(self) -> None:
        """Write the new entries held back (one statement for many is far faster than one each)."""
        self._free_taken()
        if self._new_paths:
            self.db.executemany("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, ?)", self._new_paths)
        if self._new_rows:
            self.db.executemany(
                "INSERT INTO entries (id, location_id, parent_id, name, extension, kind_code, object_code, size, files, mtime,"
                f" content_id) VALUES (?1, ?2, ?3, ?4, ?5, {kind_code_sql('?6')}, {object_code_sql('?7')}, ?8, ?9, ?10, ?11)",
                self._new_rows,
            )
            self.db.executemany(
                "INSERT INTO catalogue_entries VALUES (?, ?, ?)", [(row[0], self.owner, self._origin[row[0]]) for row in self._new_rows]
            )
        self._new_paths, self._new_rows = [], []

    def known(self, origins: list[int]) -> None:
        """Look up which of these entries the catalogue has already, all at once."""
        wanted = [o for o in dict.fromkeys(origins) if o not in self._mapped]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            self._mapped.update(dict.fromkeys(chunk))
            self._mapped.update(self.db.execute(
                f"SELECT origin_id, entry_id FROM catalogue_entries WHERE device_id = ? AND origin_id IN"
                f" ({','.join('?' * len(chunk))})", (self.owner, *chunk),
            ).fetchall())  # fmt: skip
            if self._adoptable:
                for origin in chunk:
                    if self._mapped[origin] is None:
                        self._mapped[origin] = entry_of(self.db, EntryRef(self.device_id, origin))

    def _local_entry(self, origin: int) -> int | None:
        if origin not in self._mapped:
            self._mapped[origin] = entry_of(self.db, EntryRef(self.device_id, origin))
        return self._mapped[origin]

    def _folder(self, local: int) -> tuple[int, str, str | None] | None:
        """(location, kind, directory path) of a local entry."""
        if local not in self._folders:
            row = self.db.execute(
                "SELECT e.location_id, e.kind, p.path FROM entries e LEFT JOIN directory_paths p ON p.entry_id = e.id"
                " WHERE e.id = ?", (local,),
            ).fetchone()  # fmt: skip
            if row is None:
                return None
            self._folders[local] = (row[0], row[1], row[2])
        return self._folders[local]

    def _content_id(self, e: CatalogueEntry) -> int | None:
        return None if e.cas_id is None else self._content[e.cas_id]

    def _ensure_mapped(self, origin: int, local: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO catalogue_entries VALUES (?, ?, ?)", (local, self.owner, origin))

    def entry(self, e: CatalogueEntry) -> None:
        db = self.db
        where = self._local_location(e.location_id)
        if where is None:
            raise CatalogueRefused(
                f"a catalogue batch was refused: entry {e.id} is in location {e.location_id}, which its device "
                "never sent"
            )
        location, location_path = where
        parent: int | None = None
        parent_path: str | None = None
        if e.parent_id is not None:
            parent = self._local_entry(e.parent_id)
            folder = None if parent is None else self._folder(parent)
            if folder is None or folder[0] != location or folder[1] != "dir":
                raise CatalogueRefused(
                    f"a catalogue batch was refused: entry {e.id}'s folder {e.parent_id} is not a folder of its "
                    "location that its device sent"
                )
            parent_path = folder[2]
        local = self._local_entry(e.id)
        if local is not None:
            self.flush()  # a change of what is here: the rows held back go in first
        old = None if local is None else self._folder(local)
        if old is not None and (old[0] != location or old[1] != e.kind):  # the owner reused the id for another entry
            self._drop_entry(local)  # type: ignore[arg-type]
            local, old = None, None
        path: str | None = None
        if e.kind == "dir":
            if e.parent_id is None and self._is_root(location, e.id):
                path = ""
            elif parent_path is not None:
                path = f"{parent_path}/{e.name}" if parent_path else e.name
            # else: detached by its owner's scan for now; its place comes with its next change
            if local is not None and path is not None:
                self._refuse_cycle(local, parent, e)
        if parent is not None and local is not None:
            self._free(parent, e.name, local, location)
        elif parent is not None and parent not in self._new_folders:
            self._taken.append((parent, e.name))  # what is at that name is looked up for every new entry at once
        ext = extension_of(e.name) if e.kind == "file" else ""
        values = (parent, e.name, ext, e.kind, e.object_kind, e.size, e.files, e.mtime, self._content_id(e))  # hidden: by name
        if local is None:
            local = self._next_id
            self._next_id += 1
            self._new_rows.append((local, location, *values))
            self._origin[local] = e.id
            self._mapped[e.id] = local
            if e.kind == "dir":
                path = path if path is not None else f"//orphan-{local}"
                self._new_paths.append((local, location, path))
                self._new_folders.add(local)
        else:
            self._ensure_mapped(e.id, local)
            db.execute(
                f"UPDATE entries SET parent_id = ?1, name = ?2, extension = ?3, kind_code = {kind_code_sql('?4')},"
                f" object_code = {object_code_sql('?5')}, size = ?6, files = ?7, mtime = ?8, content_id = ?9 WHERE id = ?10",
                (*values, local),
            )
            if e.kind == "dir":
                path = path if path is not None else f"//orphan-{local}"
                if old is not None and old[2] is not None and old[2] != path:
                    _move_paths(db, location, old[2], path)
                    self._folders.clear()  # the paths below it moved too
                elif old is not None and old[2] is None:
                    db.execute("INSERT INTO directory_paths (entry_id, location_id, path) VALUES (?, ?, ?)",
                               (local, location, path))  # fmt: skip
        if e.kind == "dir":
            self._folders[local] = (location, "dir", path)
        if parent_path is not None and not parent_path.startswith("//") and len(self.touched) < 64:
            self.touched.add(_absolute(location_path, from_db(parent_path)))

    def _is_root(self, location: int, origin: int) -> bool:
        if location not in self._roots:
            root = self._root_origin(location)
            if root is None:
                return False
            self._roots[location] = root
        return self._roots[location] == origin

    def _root_origin(self, location: int) -> int | None:
        row = self.db.execute(
            "SELECT c.origin_id, l.root_id FROM locations l LEFT JOIN catalogue_entries c ON c.entry_id = l.root_id"
            " WHERE l.id = ?", (location,),
        ).fetchone()  # fmt: skip
        if row is None or row[1] is None:
            return None
        return int(row[0]) if row[0] is not None else int(row[1])

    def _refuse_cycle(self, local: int, parent: int | None, e: CatalogueEntry) -> None:
        """A folder may not go below itself (a peer's lie, or a bug: either way the tree would loop)."""
        self.flush()
        seen = 0
        here = parent
        while here is not None and seen < 10_000:
            if here == local:
                raise CatalogueRefused(f"a catalogue batch was refused: it moves folder {e.id} into itself")
            row = self.db.execute("SELECT parent_id FROM entries WHERE id = ?", (here,)).fetchone()
            here = row[0] if row else None
            seen += 1

    def _free(self, parent: int, name: str, keep: int | None, location: int) -> None:
        """An entry still at that name is out of date (its change is in a later batch): detach it till then."""
        row = self.db.execute("SELECT id, kind FROM entries WHERE parent_id = ? AND name = ?", (parent, name)).fetchone()
        if row is not None and row[0] != keep:
            self.flush()
            _orphan(self.db, location, row[0], row[1] == "dir")
            self._folders.clear()

    def _free_taken(self) -> None:
        """`_free` for the names the new entries held back take: a look at each of their folders, not at each name."""
        taken: dict[int, set[str]] = {}
        for parent, name in self._taken:
            taken.setdefault(parent, set()).add(name)
        self._taken = []
        stale: list[tuple[int, int, str]] = []
        for parent, names in taken.items():
            here = self.db.execute("SELECT name, location_id, id, kind FROM entries WHERE parent_id = ?", (parent,))
            stale.extend(row[1:] for row in here if row[0] in names)
        for location, entry_id, kind in stale:
            _orphan(self.db, location, entry_id, kind == "dir")
        if stale:
            self._folders.clear()

    def delete_entry(self, origin: int) -> None:
        local = self._local_entry(origin)
        if local is not None:
            self._drop_entry(local)

    def _drop_entry(self, local: int) -> None:
        """Delete one entry; what is still below it is detached (its own deletion or move is on its way)."""
        self.flush()
        db = self.db
        row = db.execute("SELECT location_id, kind FROM entries WHERE id = ?", (local,)).fetchone()
        if row is None:
            return
        location = row[0]
        if row[1] == "dir":
            for child, kind in db.execute("SELECT id, kind FROM entries WHERE parent_id = ?", (local,)).fetchall():
                _orphan(db, location, child, kind == "dir")
            db.execute("DELETE FROM directory_paths WHERE entry_id = ?", (local,))
        db.execute("DELETE FROM entries WHERE id = ?", (local,))
        db.execute("DELETE FROM catalogue_entries WHERE entry_id = ?", (local,))
        self._folders.clear()
        self._mapped = {k: v for k, v in self._mapped.items() if v != local}


def _absolute(location_path: str, relative: str) -> str:
    return f"{location_path.rstrip('/')}/{relative}" if relative else location_path


def _move_paths(db: sqlite3.Connection, location_id: int, old: str, new: str) -> None:
    from sdcore.index.indexer import _move_paths as move

    move(db, location_id, old, new)


def _orphan(db: sqlite3.Connection, location_id: int, entry_id: int, is_dir: bool) -> None:
    from sdcore.index.indexer import _orphan as orphan

    orphan(db, location_id, entry_id, is_dir)
