"""Another device's catalogue as a database file of its own (`NAME.sdlibrary/catalogues/DEVICE.db`, issue 16's first
sync): the owner makes it from its library (`make`) or keeps one up to date from its numbered changes (`refresh`);
the receiver takes the file it was sent as an attacker may have made it, and `check`s it before anything else reads it.

The file holds tables only (`SCHEMA`, STRICT: quick_check proves every value's type): no index, trigger, view or
search index comes from a peer. `check` runs, in this order, on a connection of its own in SQLite's defensive mode
(`defend`): the header read as bytes before SQLite parses anything of it; the schema compared exactly; quick_check;
the rules of one row (`ROW_RULES`: the same as `CatalogueBatch.unpack` applies to a batch, from the constants of
sdcore.sync.catalogue), one scan a table, the entries' text proved in Python over a chunk of them at once
(`TEXT_RULES`); the receiver's own indexes in the file (`RECEIVER_INDEXES`; a UNIQUE one refuses two entries of one
name in a folder); the rules across rows (`RULES`: each entry's folder is a folder of its location, each folder's
path is its folder's path and its name, so no chain of folders is a loop). Ids are the owner's, as they are: nothing
is mapped.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import sqlite3
import stat
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.index.cas import ID_BYTES
from sdcore.library.damage import uri
from sdcore.library.locations import MODES
from sdcore.library.schema import DIR_CODE, ENTRY_KINDS, OBJECT_KINDS
from sdcore.sdpath import DeviceId, display
from sdcore.sync.catalogue import (
    MAX_HELD,
    MAX_HELD_LOCATIONS,
    MAX_ID,
    MAX_NAME,
    MAX_PATH,
    MAX_SIZE,
    MAX_TIME,
    SCAN_STATES,
    CatalogueRefused,
    _this_device_name,
    start_tracking,
)
from sdcore.sync.highwater import restarted

if TYPE_CHECKING:
    from sdcore.library.library import Library

APPLICATION_ID = 0x53444354
"""'SDCT' in the header: a catalogue file, not a library or any other SQLite file."""
FORMAT = 1
"""The file's version (in the header's user_version and in its `catalogue` row)."""
PAGE_SIZE = 16384
"""(Pages of 16 KiB take a check of 200,000 entries 5% less than SQLite's 4 KiB.)"""
MAX_DEVICE_NAME = 200
MAX_VALUE = 1 << 20
"""Bytes of the longest value SQLite reads from a received file (a name is at most MAX_NAME characters)."""

SCHEMA = [
    "CREATE TABLE catalogue (format INTEGER NOT NULL, device_id TEXT NOT NULL, device_name TEXT NOT NULL,"
    " head INTEGER NOT NULL) STRICT",
    "CREATE TABLE locations (id INTEGER PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, mode TEXT NOT NULL,"
    " scan_state TEXT NOT NULL, created REAL NOT NULL, last_scanned REAL, root_id INTEGER, volume_id TEXT,"
    " volume_path TEXT) STRICT",
    "CREATE TABLE entries (id INTEGER PRIMARY KEY, location_id INTEGER NOT NULL, parent_id INTEGER, name TEXT NOT NULL,"
    " kind_code INTEGER NOT NULL, object_code INTEGER, size INTEGER NOT NULL, files INTEGER NOT NULL, mtime REAL,"
    " hidden INTEGER NOT NULL, cas_number INTEGER) STRICT",
    "CREATE TABLE directory_paths (entry_id INTEGER PRIMARY KEY, location_id INTEGER NOT NULL, path TEXT NOT NULL)"
    " STRICT",
]
"""The whole schema of a catalogue file (the rules as CHECK constraints would cost twice the scans of ROW_RULES). An
entry's kind and object kind are their places in ENTRY_KINDS and OBJECT_KINDS, as the library stores them; its
cas_id the number of its 8 bytes (`cas_number`: any number is one, and numbers sort faster than text); its extension
is not sent (the receiver takes it from its name where it needs it)."""
RECEIVER_INDEXES = [
    "CREATE UNIQUE INDEX cat.entries_by_parent ON entries (parent_id, name)",
    "CREATE UNIQUE INDEX cat.directory_paths_by_path ON directory_paths (location_id, path)",
    "CREATE UNIQUE INDEX cat.locations_by_path ON locations (path)",
    "CREATE INDEX cat.entries_by_content ON entries (cas_number) WHERE cas_number IS NOT NULL",
]
"""What the receiver builds in a file it checked (`check`): the UNIQUE ones are rules too."""

# -- the owner's side ----------------------------------------------------------------------------------------------


def make(library: Library, out: Path) -> None:
    """Write this device's catalogue in `library` (its locations, their entries and folders' paths, as one state of
    the library) to a new file `out`, numbered from its changes (`refresh` brings it up to date later). It is written
    beside it and renamed when whole: one cut off (kill -9; written with no journal) is never taken for a whole one."""
    start_tracking(library)
    here = str(library.context.device_id)
    if os.path.lexists(out):
        raise FileExistsError(f"{out} is not a new file")
    new = out.with_name(out.name + ".new")
    new.unlink(missing_ok=True)  # (one cut off)
    conn = library._connect()
    conn.create_function("cas_number", 1, cas_number, deterministic=True)
    try:
        conn.execute("ATTACH ? AS cat", (uri(new, "mode=rwc"),))
        conn.execute("PRAGMA cat.journal_mode = OFF")  # a new file: if this fails, it is thrown away
        conn.execute("PRAGMA cat.synchronous = OFF")
        conn.execute(f"PRAGMA cat.page_size = {PAGE_SIZE}")  # (before anything is written)
        conn.execute(f"PRAGMA cat.application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA cat.user_version = {FORMAT}")
        conn.execute("BEGIN")
        for sql in SCHEMA:
            conn.execute(sql.replace("CREATE TABLE ", "CREATE TABLE cat.", 1))
        head = conn.execute("SELECT coalesce(max(seq), 0) FROM catalogue_log").fetchone()[0]
        conn.execute("INSERT INTO cat.catalogue VALUES (?, ?, ?, ?)", (FORMAT, here, _this_device_name(library), head))
        ours = "SELECT id FROM locations WHERE device_id = :here"
        conn.execute(f"INSERT INTO cat.locations {_LOCATIONS} WHERE id IN ({ours}) ORDER BY id", {"here": here})
        conn.execute(f"INSERT INTO cat.entries {_ENTRIES} WHERE e.location_id IN ({ours}) ORDER BY e.id", {"here": here})
        conn.execute(f"INSERT INTO cat.directory_paths {_PATHS} WHERE d.location_id IN ({ours}) ORDER BY d.entry_id",
                     {"here": here})  # fmt: skip
        conn.execute("COMMIT")
    except BaseException:
        conn.close()
        new.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(new, out)


_LOCATIONS = (
    "SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id, volume_path FROM locations"
)
_ENTRIES = (
    "SELECT e.id, e.location_id, e.parent_id, e.name,"  # (a kind this sdtui does not know, stored as its name: other)
    f" CASE typeof(e.kind_code) WHEN 'integer' THEN e.kind_code ELSE {ENTRY_KINDS.index('other')} END,"
    " CASE typeof(e.object_code) WHEN 'integer' THEN e.object_code END, e.size, e.files,"
    " e.mtime, e.hidden, cas_number(c.cas_id) FROM entries e LEFT JOIN content_identities c ON c.id = e.content_id"
)
_PATHS = "SELECT d.entry_id, d.location_id, d.path FROM directory_paths d"


def refresh(library: Library, kept: Path) -> None:
    """Bring a catalogue file this device keeps up to what its numbered changes (catalogue_log) say since the file's
    head: rows of the entries and locations changed written again, those deleted dropped, folders' paths that differ
    copied again (a renamed folder changes every path below it, and the log names only the folder). A file of another
    numbering (a library restored or copied from another device since) is made again."""
    start_tracking(library)
    here = str(library.context.device_id)
    conn = library._connect()
    conn.create_function("cas_number", 1, cas_number, deterministic=True)
    try:
        conn.execute("ATTACH ? AS cat", (uri(kept, "mode=rw"),))
        conn.execute("BEGIN")
        device, head = conn.execute("SELECT device_id, head FROM cat.catalogue").fetchone()
        (now,) = conn.execute("SELECT coalesce(max(seq), 0) FROM catalogue_log").fetchone()
        if device != here or head > now or restarted(conn, head):
            conn.execute("ROLLBACK")
            conn.close()
            kept.unlink()
            make(library, kept)
            return
        since = {"head": head, "here": here}
        changed = "SELECT entry_id FROM catalogue_log WHERE seq > :head AND entry_id IS NOT NULL"
        places = "SELECT location_id FROM catalogue_log WHERE seq > :head AND location_id IS NOT NULL"
        ours = "SELECT id FROM locations WHERE device_id = :here"
        for statement in (
            f"DELETE FROM cat.entries WHERE id IN ({changed})",
            f"DELETE FROM cat.directory_paths WHERE entry_id IN ({changed})",
            f"DELETE FROM cat.locations WHERE id IN ({places})",
            f"INSERT INTO cat.locations {_LOCATIONS} WHERE id IN ({places}) AND device_id = :here",
            f"INSERT INTO cat.entries {_ENTRIES} JOIN catalogue_log g ON g.entry_id = e.id"
            f" WHERE g.seq > :head AND g.deleted = 0 AND e.location_id IN ({ours})",
            f"INSERT OR REPLACE INTO cat.directory_paths {_PATHS} LEFT JOIN cat.directory_paths k"
            f" ON k.entry_id = d.entry_id WHERE k.path IS NOT d.path AND d.location_id IN ({ours})",
        ):
            conn.execute(statement, since)
        conn.execute("UPDATE cat.catalogue SET head = ?", (now,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def cas_number(cas_id: str | None) -> int | None:
    """A cas_id's 8 bytes (sdcore.index.cas) as the file holds them, a signed number (`printf('%016x', n)` in SQL or
    `cas_id_of` writes it back); None for none, or for a cas_id of another shape (the catalogue batches carry it)."""
    if cas_id is None or len(cas_id) != 2 * ID_BYTES or _LOWER_HEX.fullmatch(cas_id) is None:
        return None
    return int.from_bytes(bytes.fromhex(cas_id), "big", signed=True)


def cas_id_of(number: int) -> str:
    """The cas_id whose `cas_number` is `number`."""
    return (number & ((1 << 8 * ID_BYTES) - 1)).to_bytes(ID_BYTES, "big").hex()


_LOWER_HEX = re.compile("[0-9a-f]*")


# -- the receiver's side -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What this device keeps of one other device's catalogue."""

    entries: int = MAX_HELD
    locations: int = MAX_HELD_LOCATIONS
    largest_id: int = MAX_ID
    """Of an entry (the catalogue store numbers another device's entries below 1 << 40)."""

    @property
    def file_bytes(self) -> int:
        """The largest file that can hold that many (a generous 1,200 bytes an entry, and room for locations)."""
        return self.entries * 1200 + (1 << 24)


HELD = Limits()


@dataclass(frozen=True, slots=True)
class CatalogueFile:
    """What a checked catalogue file holds."""

    device_id: DeviceId
    device_name: str
    """As the device calls itself (a peer's text: `display` it)."""
    head: int
    """The owner's last numbered change the file holds (the receiver's watermark of it)."""
    entries: int
    locations: int


def _text(column: str, most: int) -> str:
    # (length() stops at a NUL, instr() sees it; text that is not printable ASCII is proved UTF-8 in Python)
    return (
        f"length({column}) <= {most} AND instr({column}, char(0)) = 0"
        f" AND CASE WHEN {column} GLOB '*[^ -~]*' THEN is_utf8(CAST({column} AS BLOB)) ELSE 1 END"  # (an OR costs more)
    )


def _among(column: str, values: frozenset[str] | tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


def _within(folder: str) -> str:
    """No `.` or `..` among the names of a path (`folder` the path with a '/' either side)."""
    return f"instr({folder}, '/../') = 0 AND instr({folder}, '/./') = 0"


_IN_PATH = _within("path || '/'")
_IN_VOLUME = _within("'/' || volume_path || '/'")
_IN_FOLDER = _within("'/' || d.path || '/'")
_TIME = f"BETWEEN {-MAX_TIME:.0f} AND {MAX_TIME:.0f}"
ROW_RULES: dict[str, list[tuple[str, str]]] = {
    "catalogue": [
        ("its format is not this sdtui's", f"format = {FORMAT}"),
        ("its device name is empty, too long or not text",
         f"length(device_name) >= 1 AND {_text('device_name', MAX_DEVICE_NAME)}"),
        ("its head is not a change's number", "head >= 0"),
    ],
    "locations": [
        ("its id is not an id", "id >= 1"),
        ("its path is not an absolute path",
         f"substr(path, 1, 1) = '/' AND {_text('path', MAX_PATH)} AND {_IN_PATH}"),
        ("its name is unusable", _text("name", MAX_NAME)),
        ("its mode is unknown", _among("mode", MODES)),
        ("its scan state is unknown", _among("scan_state", SCAN_STATES)),
        ("its times are not times", f"created {_TIME} AND (last_scanned IS NULL OR last_scanned {_TIME})"),
        ("its root is not an id", "root_id IS NULL OR root_id >= 1"),
        ("its disk is not a disk's identity and a folder inside it",
         "CASE WHEN volume_id IS NULL THEN volume_path IS NULL ELSE"
         " (volume_id GLOB 'uuid:?*' OR volume_id GLOB 'file:?*' OR volume_id GLOB 'fingerprint:?*')"
         " AND length(substr(volume_id, instr(volume_id, ':') + 1)) <= 100 AND instr(volume_id, char(0)) = 0"
         " AND NOT substr(volume_id, instr(volume_id, ':') + 1) GLOB '*[^0-9a-z._-]*'"
         f" AND volume_path IS NOT NULL AND {_text('volume_path', MAX_PATH)} AND {_IN_VOLUME}"
         " AND (volume_path = '' OR instr('/' || volume_path || '/', '//') = 0) END"),
    ],
    "entries": [  # (its id: _check_entries; its location and its folder: RULES)
        ("its name is not a file name",  # (and TEXT_RULES)
         f"length(name) <= {MAX_NAME} AND (name != '' OR (parent_id IS NULL AND kind_code = {DIR_CODE}))"),
        ("its kind is unknown", f"kind_code BETWEEN 0 AND {len(ENTRY_KINDS) - 1}"),
        ("its object kind is unknown", f"object_code IS NULL OR object_code BETWEEN 0 AND {len(OBJECT_KINDS) - 1}"),
        ("its size is not a size", f"size BETWEEN 0 AND {MAX_SIZE}"),
        ("its file count is not a count", "files >= 0"),
        ("its modification time is not a time", f"mtime IS NULL OR mtime {_TIME}"),
        ("its hidden flag is not a flag", "hidden BETWEEN 0 AND 1"),
    ],
    "directory_paths": [("its path is not a folder's path", f"length(path) <= {MAX_PATH}")],  # (its text: RULES)
}  # fmt: skip
"""Each table's rules on one row, as apply_catalogue's on a batch (`_entry`, `_location`): all of a table's in one
scan of it; the first row breaking any is looked at again to name the rule. NULL where none may be is a no."""
TEXT_RULES = [
    ("its name is not a file name",
     f"{_text('name', MAX_NAME)} AND instr(name, '/') = 0 AND name != '.' AND name != '..'"),
]
"""The rest of the entries' rules, on their names: proved in Python over a chunk's names joined (`_names_fine`), as
SQL looks at each character of each; these say the same, to name the rule a row breaks."""
_ROW = {"catalogue": "its catalogue row", "locations": "location {}", "entries": "entry {}",
        "directory_paths": "the path of folder {}"}  # fmt: skip
_NO_LOCATION = "an entry is in a location the catalogue lacks"
RULES = [  # the rules across rows, each a query that finds the first row breaking it
    (_NO_LOCATION,  # (one in a folder is in its folder's location: the next rule)
     "SELECT e.id FROM entries e WHERE e.parent_id IS NULL"
     " AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.id = e.location_id) LIMIT 1"),
    ("an entry's folder is missing, not a folder, in another location, or itself",
     "SELECT e.id, EXISTS (SELECT 1 FROM locations l WHERE l.id = e.location_id) FROM entries e"
     " LEFT JOIN entries p ON p.id = e.parent_id WHERE e.parent_id IS NOT NULL"
     f" AND (p.id IS NULL OR p.id = e.id OR p.kind_code != {DIR_CODE} OR p.location_id != e.location_id) LIMIT 1"),
    ("a path is of no entry", "SELECT d.entry_id FROM directory_paths d WHERE NOT EXISTS"
     " (SELECT 1 FROM entries e WHERE e.id = d.entry_id) LIMIT 1"),
    ("a folder has no path, or a path is of no folder of its location",
     "SELECT d.entry_id FROM directory_paths d JOIN entries e ON e.id = d.entry_id"
     f" WHERE e.kind_code != {DIR_CODE} OR e.location_id != d.location_id LIMIT 1"),
    ("a folder has no path",  # each path is of one folder (the rules above): a folder lacks one if paths are fewer
     f"SELECT e.id FROM entries e WHERE :folders != (SELECT count(*) FROM directory_paths) AND e.kind_code = {DIR_CODE}"
     " AND NOT EXISTS (SELECT 1 FROM directory_paths d WHERE d.entry_id = e.id) LIMIT 1"),
    # a path grows along a chain of folders, so no chain is a loop, and is text as its names are (TEXT_RULES); a
    # folder its owner's scan detached for now (no folder, not a root) keeps its path, text inside its location
    ("a folder's path is not its folder's path and its name",
     "SELECT e.id FROM directory_paths d CROSS JOIN entries e ON e.id = d.entry_id LEFT JOIN directory_paths f"
     " ON f.entry_id = e.parent_id WHERE NOT coalesce(CASE WHEN e.parent_id IS NOT NULL THEN"
     " d.path = (CASE f.path WHEN '' THEN e.name ELSE f.path || '/' || e.name END) WHEN e.name = '' THEN d.path = ''"
     " ELSE d.path != '' AND substr(d.path, 1, 1) != '/' AND instr('/' || d.path || '/', '//') = 0"
     f" AND {_IN_FOLDER} AND {_text('d.path', MAX_PATH)} END, 0) LIMIT 1"),
    ("a location's root is not a root of it",
     "SELECT l.id FROM locations l LEFT JOIN entries e ON e.id = l.root_id WHERE l.root_id IS NOT NULL"
     " AND (e.id IS NULL OR e.location_id != l.id OR e.parent_id IS NOT NULL OR e.name != '') LIMIT 1"),
]  # fmt: skip


def _expected_schema() -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(":memory:")
    for sql in SCHEMA:
        conn.execute(sql)
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").fetchall()
    conn.close()
    return rows


_EXPECTED = _expected_schema()
_DEFENSIVE = 1010  # SQLITE_DBCONFIG_DEFENSIVE


def refused(why: str) -> CatalogueRefused:
    """The refusal, on one line fit to print (`why` may quote names and errors of the peer's file)."""
    return CatalogueRefused(f"a catalogue file was refused: {display(why)}")


def defend(conn: sqlite3.Connection) -> None:
    """SQLite's defences for an untrusted database (https://sqlite.org/security.html) on `conn`, before it opens one;
    raises CatalogueRefused when defensive mode cannot be set (a check never runs without it)."""
    try:
        _set_defensive(conn)
    except (OSError, AttributeError) as exc:
        raise refused(f"this Python cannot put SQLite in defensive mode to check it ({exc})") from None
    if not defensive(conn):
        raise refused("this Python cannot put SQLite in defensive mode to check it")
    conn.execute("PRAGMA trusted_schema = OFF")  # the schema calls no function that is not innocuous
    conn.execute("PRAGMA cell_size_check = ON")
    conn.execute("PRAGMA mmap_size = 0")
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1 << 16)  # nor a schema statement longer than 64 KiB parsed
    conn.create_function("is_utf8", 1, _is_utf8, deterministic=True)


def defensive(conn: sqlite3.Connection) -> bool:
    """Whether `conn` is in SQLite's defensive mode, as SQLite says."""
    if hasattr(conn, "getconfig"):
        return bool(conn.getconfig(_DEFENSIVE))
    return _db_config(conn, -1)


def _set_defensive(conn: sqlite3.Connection) -> None:
    if hasattr(conn, "setconfig"):  # Python 3.12+
        conn.setconfig(_DEFENSIVE, True)
    else:
        _db_config(conn, 1)


def _db_config(conn: sqlite3.Connection, value: int) -> bool:
    """sqlite3_db_config(DEFENSIVE) through ctypes, for Python 3.11 (no Connection.setconfig): its sqlite3 handle is
    the first field after the object's header, and the function is taken from the library the sqlite3 module uses."""
    import _sqlite3

    if sys.version_info[:2] != (3, 11) or hasattr(sys, "getobjects"):  # another layout of the connection object
        raise OSError(f"no known layout of a connection in Python {sys.version.split()[0]}")
    config = ctypes.CDLL(_sqlite3.__file__).sqlite3_db_config
    handle = ctypes.c_void_p.from_address(id(conn) + 2 * ctypes.sizeof(ctypes.c_void_p))
    out = ctypes.c_int(-1)
    if config(handle, _DEFENSIVE, ctypes.c_int(value), ctypes.byref(out)) != 0:
        raise OSError("sqlite3_db_config failed")
    return out.value == 1


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def check_header(path: Path, limits: Limits) -> None:
    """The file's header, read before SQLite parses anything of it: a plain rollback-journal UTF-8 database of ours, in
    a file (a link staged in its place is not followed, a FIFO not waited on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise refused("it is not a file but a link") from None
    try:
        info = os.fstat(fd)
        head = os.pread(fd, 100, 0) if stat.S_ISREG(info.st_mode) else b""
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise refused("it is not a file (a FIFO, a folder or a device)")
    size = info.st_size
    if size > limits.file_bytes:
        raise refused(f"it is {size:,} bytes, more than a catalogue of {limits.entries:,} entries takes")
    for beside in ("-journal", "-wal"):  # SQLite would read (roll back, replay) it too
        if os.path.lexists(f"{path}{beside}"):
            raise refused(f"a {beside[1:]} file lies beside it")
    if len(head) < 100 or head[:16] != b"SQLite format 3\0":
        raise refused("it is not an SQLite database")
    (page,) = struct.unpack(">H", head[16:18])
    page = 65536 if page == 1 else page
    (pages,) = struct.unpack(">I", head[28:32])

    def number(at: int) -> int:
        return int(struct.unpack(">I", head[at : at + 4])[0])

    fields = {
        "file format": (head[18], head[19]) == (1, 1),  # not WAL: a -wal file beside it would be read too
        "reserved bytes": head[20] == 0,
        "page size": page in (512, 1024, 2048, 4096, 8192, 16384, 32768, 65536) and pages * page == size,
        "schema format": number(44) == 4,
        "auto-vacuum": number(52) == 0 and number(64) == 0,
        "text encoding": number(56) == 1,
        "version": number(60) == FORMAT,
        "application id": number(68) == APPLICATION_ID,
    }
    wrong = [what for what, fine in fields.items() if not fine]
    if wrong:
        raise refused(f"its header is wrong ({', '.join(wrong)})")


def check(path: Path, device_id: DeviceId, limits: Limits = HELD) -> CatalogueFile:
    """Refuse the file at `path` (CatalogueRefused, naming the rule it breaks) unless it is exactly a catalogue of
    `device_id` that keeps every rule and `limits`; else build the receiver's indexes in it and say what it holds.
    The file is the receiver's copy (one refused or cut off is deleted by the caller), checked once: with those
    indexes it is no longer a file as a peer sends it."""
    check_header(path, limits)
    conn = sqlite3.connect("file::memory:", uri=True, isolation_level=None)
    try:
        defend(conn)
        try:
            return _check(conn, path, device_id, limits)
        except sqlite3.DatabaseError as exc:  # one that quick_check did not see: a damaged page, a value too long
            raise refused(f"it is damaged ({exc})") from None
    finally:
        conn.close()


def _check(conn: sqlite3.Connection, path: Path, device_id: DeviceId, limits: Limits) -> CatalogueFile:
    try:
        conn.execute("ATTACH ? AS cat", (uri(path, "mode=rw"),))
        schema = conn.execute("SELECT type, name, tbl_name, sql FROM cat.sqlite_schema ORDER BY name").fetchall()
    except sqlite3.DatabaseError as exc:  # (an index over a function: "unsafe use of ...", trusted_schema says)
        raise refused(f"its schema cannot be read ({exc})") from None
    if schema != _EXPECTED:
        names = {r[1] for r in schema} ^ {r[1] for r in _EXPECTED}
        odd = sorted(map(str, names)) or [a[1] for a, b in zip(schema, _EXPECTED, strict=False) if a != b]
        raise refused(f"its schema is not a catalogue's ({', '.join(odd)[:200]})")
    conn.execute("PRAGMA cat.journal_mode = MEMORY")  # (defensive mode allows no OFF) a copy cut off is deleted
    conn.execute("PRAGMA cat.synchronous = OFF")  # the caller syncs the file once, when it keeps it
    conn.execute(f"PRAGMA cat.cache_size = {-_CACHE // 1024}")  # read once, by quick_check: the scans after find it
    found = [line for (row,) in conn.execute("PRAGMA cat.quick_check(5)") for line in row.splitlines()]
    if found != ["ok"]:
        found = [line for line in found if not line.startswith("***")]  # ("*** in database cat ***")
        raise refused(f"it is damaged or a value is not of its column's type ({'; '.join(found)[:300]})")
    for table in ("catalogue", "locations", "directory_paths"):
        _refuse_breaking(conn, table, ROW_RULES[table])
    rows = conn.execute("SELECT device_id, device_name, head FROM cat.catalogue").fetchall()
    if len(rows) != 1:
        raise refused(f"it has {len(rows)} catalogue rows, not one")
    if rows[0][0] != str(device_id):
        raise refused("it is another device's catalogue, not the sender's")
    entries, locations = (conn.execute(f"SELECT count(*) FROM cat.{t}").fetchone()[0] for t in ("entries", "locations"))
    if entries > limits.entries or locations > limits.locations:
        raise refused(
            f"it holds {entries:,} entries in {locations:,} locations; this device keeps at most {limits.entries:,} in"
            f" {limits.locations:,} of one device"
        )
    folders = _check_entries(conn, limits.largest_id)
    for sql in RECEIVER_INDEXES:  # (before the rules across rows: they use entries_by_parent)
        try:
            conn.execute(sql)
        except sqlite3.IntegrityError:
            raise refused(f"two rows share what must be unique ({sql.split(' ON ')[1]})") from None
    for why, sql in RULES:
        bad = conn.execute(sql, {"folders": folders}).fetchone()  # (main is an empty memory database: the names are cat's)
        if bad is not None:
            raise refused(f"{why if bad[1:] != (0,) else _NO_LOCATION} (id {bad[0]})")
    return CatalogueFile(device_id, rows[0][1], rows[0][2], entries, locations)


_CACHE = 64 << 20
"""Bytes of a checked file SQLite keeps in memory (a catalogue of 200,000 entries takes some 15 MB)."""
_CHUNK = 20_000
"""Entries one query of their scan reads: their names joined take some 400 KB (past MAX_VALUE, the chunk is halved)."""


def _broken(rules: list[tuple[str, str]]) -> str:
    """SQL true of a row that breaks one of `rules` (NULL is a no; `IS NOT TRUE` keeps AND and OR short-circuiting)."""
    return "(" + " AND ".join(f"({rule})" for _, rule in rules) + ") IS NOT TRUE"


def _refuse_breaking(conn: sqlite3.Connection, table: str, rules: list[tuple[str, str]], within: str = "",
                     bounds: tuple[int, ...] = ()) -> None:  # fmt: skip
    """Refuse the file if a row of `table` (`within`: a condition on the rowid, of `bounds`) breaks one of `rules`,
    naming the first row and the first rule it breaks."""
    bad = conn.execute(f"SELECT rowid FROM cat.{table} WHERE {within}{_broken(rules)} LIMIT 1", bounds).fetchone()
    if bad is not None:
        why = next(why for why, rule in rules if not conn.execute(
            f"SELECT coalesce({rule}, 0) FROM cat.{table} WHERE rowid = ?", bad).fetchone()[0])  # fmt: skip
        raise refused(f"{_ROW[table].format(bad[0])}: {why}")


def _check_entries(conn: sqlite3.Connection, largest: int) -> int:
    """The entries' ROW_RULES, and their TEXT_RULES, in one scan of them a chunk at a time; returns how many are
    folders."""
    first, last = conn.execute(  # (each its own SELECT: one end of the rowids, where both in one would scan them all)
        "SELECT (SELECT min(rowid) FROM cat.entries), (SELECT max(rowid) FROM cat.entries)").fetchone()
    if first is not None and first < 1:  # (the chunks start after 0)
        raise refused(f"entry {first}: its id is not an id")
    if last is not None and last > largest:
        raise refused(f"entry {last}: its id is past {largest:,}, the largest this device keeps")
    folders, low = 0, 0
    while True:
        end = conn.execute("SELECT rowid FROM cat.entries WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?",
                           (low, _CHUNK - 1)).fetchone()  # fmt: skip
        high = MAX_ID if end is None else end[0]
        folders += _check_chunk(conn, low, high)
        if end is None:
            return folders
        low = high


_CHUNK_SCAN = (
    f"SELECT count(*), count(*) FILTER (WHERE kind_code = {DIR_CODE}),"
    f" min(rowid) FILTER (WHERE {_broken(ROW_RULES['entries'])}), CAST(group_concat(name, '/') AS BLOB)"
    " FROM cat.entries WHERE rowid > ? AND rowid <= ?"
)
"""Of a chunk of entries: how many, how many folders, the first breaking ROW_RULES, the names joined (as bytes)."""


def _check_chunk(conn: sqlite3.Connection, low: int, high: int) -> int:
    """The entries of rowids `low` (not included) to `high`, as `_check_entries`."""
    try:
        count, folders, bad, names = conn.execute(_CHUNK_SCAN, (low, high)).fetchone()
    except sqlite3.DataError:  # (names joined past MAX_VALUE) in halves, to one entry: one value that long is damage
        if high - low < 2:
            raise
        middle = low + (high - low) // 2
        return _check_chunk(conn, low, middle) + _check_chunk(conn, middle, high)
    if bad is not None or not _names_fine(count, names or b""):
        _refuse_breaking(conn, "entries", ROW_RULES["entries"] + TEXT_RULES, "rowid > ? AND rowid <= ? AND ", (low, high))
        raise refused(f"an entry of ids {low + 1} to {high} breaks a rule")  # (not reached: TEXT_RULES say the same)
    return int(folders)


def _names_fine(count: int, names: bytes) -> bool:
    """Whether `count` names joined by '/' keep TEXT_RULES: a few passes of C over them."""
    try:
        names.decode()  # UTF-8 (the '/'s between, ASCII, are inside no character)
    except UnicodeDecodeError:
        return False
    ends = b"/" + names + b"/"
    return (
        b"\0" not in names
        and names.count(b"/") == max(count - 1, 0)  # the '/'s between: none in a name
        and b"/./" not in ends
        and b"/../" not in ends
    )
