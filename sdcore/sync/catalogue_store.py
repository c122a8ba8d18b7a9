"""Other devices' catalogues kept as files of their own, `NAME.sdlibrary/catalogues/DEVICE.db` (issue 16's first sync:
merged into the library's own tables, a 200,000-entry catalogue costs 10x an `scp` of the database, whatever brings
it: tests/bench/bench_catalogue_views.py). A received file is staged beside its place, checked
(sdcore.sync.catalogue_file), given what reading it needs (`SEARCH_INDEX`, `SORTED_INDEXES`) and put in place by one rename (`keep`);
`connect` opens a kept one so that the library's own SQL (sdcore.search, listings) reads it unchanged; `reader` keeps
one such connection a thread, which `search.run` and `listing.list_indexed` read a kept device's entries from (its rows
in the library's own tables, if any, are not read).

The catalogue's entries keep their owner's ids. Where the library's tables name one (tags, notes), it is
`global_id(slot, owner id)`: the slot, a number this library gives each other device (`slot_of`), in the bits above 40
(the library's own ids stay below). Sync keeps them (sdcore.sync.service: a first sync fetches the file, later batches
go into it by sdcore.sync.catalogue_store_apply).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.index.kinds import extension_of
from sdcore.library.damage import uri
from sdcore.library.schema import ENTRY_KINDS, OBJECT_KINDS, add_functions, folded_sql, named_sql
from sdcore.sdpath import DeviceId

if TYPE_CHECKING:
    from collections.abc import Callable

    from sdcore.library.library import Library
    from sdcore.sync.catalogue_file import CatalogueFile, Limits

# (sdcore.sync.catalogue_file, and sdcore.sync.catalogue with it, only where a file is received: `sd ls` and `sd search`
# read kept ones through this module and must not load them, tests/unit/test_cli_startup.py)

FOLDER = "catalogues"
SLOT_BITS = 40
"""The library's own entry ids stay below 1 << SLOT_BITS; another device's entry is `slot << SLOT_BITS | its id`."""
MAX_SLOT = (1 << (63 - SLOT_BITS)) - 1
_FILE = ENTRY_KINDS.index("file")

INDEXED_NAME = folded_sql("name")
"""An entry's name as the search index holds it (SQL over a row of `entries`), and its extension (below)."""
INDEXED_EXT = f"CASE kind_code WHEN {_FILE} THEN ext_token(name) ELSE '' END"
INDEXED_PATH = folded_sql("path")
"""A folder's path as the folder index holds it (SQL over a row of `directory_paths`, whose path is not '')."""
SEARCH_INDEX = [
    "CREATE VIRTUAL TABLE cat.search_index USING fts5(name, ext, tokenize = 'trigram', content = '', columnsize = 0,"
    " detail = none)",
    "CREATE VIRTUAL TABLE cat.folder_index USING fts5(path, tokenize = 'trigram', content = '', columnsize = 0,"
    " detail = none)",
    # empty: notes are the library's, by global ids (`connect` shadows it with theirs; the library's is never read)
    "CREATE VIRTUAL TABLE cat.note_index USING fts5(note, tokenize = 'trigram', columnsize = 0)",
    f"INSERT INTO cat.search_index (rowid, name, ext) SELECT id, {INDEXED_NAME}, {INDEXED_EXT} FROM cat.entries"
    " WHERE parent_id IS NOT NULL ORDER BY id",
    f"INSERT INTO cat.folder_index (rowid, path) SELECT entry_id, {INDEXED_PATH} FROM cat.directory_paths"
    " WHERE path != '' ORDER BY entry_id",
]
"""The library's own search index, built by the receiver in a checked file (by the owner's ids)."""
SORTED_INDEXES = [  # sorted searches walk these and stop at the limit
    "CREATE INDEX cat.entries_by_size ON entries (size)",
    "CREATE INDEX cat.entries_by_mtime ON entries (mtime)",
    "CREATE INDEX cat.entries_by_name ON entries (name COLLATE NOCASE)",
]


def global_id(slot: int, owner_id: int) -> int:
    """The id by which the library's tables (tags, notes) name the entry `owner_id` of the device given `slot`."""
    if not 1 <= slot <= MAX_SLOT or not 0 < owner_id < 1 << SLOT_BITS:
        raise ValueError(f"no global id for entry {owner_id} of slot {slot}")
    return slot << SLOT_BITS | owner_id


def slot_of(library: Library, device_id: DeviceId, make: bool = False) -> int | None:
    """The slot of another device in this library (see `global_id`), None when it has none; with `make`, one given it
    then: the next never given (a slot is never reused while the library lives, schema migration 34)."""
    if device_id == library.context.device_id:
        raise ValueError("this device's own entries have their own ids: it has no slot")
    found = library.read().execute("SELECT slot FROM catalogue_slots WHERE device_id = ?", (str(device_id),)).fetchone()
    if found is not None or not make:
        return None if found is None else int(found[0])
    with library.write() as db:
        given = db.execute("INSERT OR IGNORE INTO catalogue_slots (device_id) VALUES (?)", (str(device_id),)).rowcount
        (slot,) = db.execute("SELECT slot FROM catalogue_slots WHERE device_id = ?", (str(device_id),)).fetchone()
        if slot > MAX_SLOT:  # (8 million devices kept once each: rolled back)
            raise ValueError(f"library {library.name!r} has given every slot; no other device's catalogue can be kept")
        if given:  # its entries are named by global ids from now on: the tags and notes on them shown so
            library.sync.named_by_slot(db, str(device_id))
    return int(slot)


def kept(library: Library) -> dict[DeviceId, int]:
    """The other devices whose catalogue is kept here as a file, and their slots (never this device: a library copied
    back from a device that kept this one's catalogue holds it, stale beside this device's own index)."""
    slots = library.read().execute("SELECT device_id, slot FROM catalogue_slots WHERE device_id != ?",
                                   (str(library.context.device_id),)).fetchall()  # fmt: skip
    return {device: slot for text, slot in slots if path_of(library, device := uuid.UUID(text)).is_file()}


def location_ids(library: Library, device_id: DeviceId) -> dict[int, int]:
    """The library's ids of another device's locations (its `locations` table holds them) -> that device's own ids
    (those of its catalogue file); not one this device took over (its disk plugged in here: this device's own now,
    its entries in the library's tables; what the file still holds of it is not read). The one filter of what a kept
    file is read for: search, listings, `sd dupes --devices`, and through kept_entries.Source the inspector's same
    content, tags on content and paths of global ids (test_kept_catalogue_gaps: read once after a take-over)."""
    rows = library.read().execute(
        "SELECT c.location_id, c.origin_id FROM catalogue_locations c JOIN locations l ON l.id = c.location_id"
        " WHERE c.device_id = ?1 AND l.device_id = ?1",
        (str(device_id),),
    )
    return dict(rows.fetchall())


def reader(library: Library, device_id: DeviceId, slot: int) -> sqlite3.Connection | None:
    """This thread's connection to the catalogue of `device_id` kept here (`connect`), None when none is kept: opened
    once, and again when the file was replaced (`keep`), closed when it is gone (`forget`). The file's inode tells: the
    connection held keeps the file it opened, so a new file never gets its inode."""
    readers: dict[DeviceId, tuple[int, sqlite3.Connection, int]] = library._local.__dict__.setdefault("catalogues", {})
    # (in the thread's slots beside its read connection: Library.close drops both alike)
    held = readers.get(device_id)
    try:
        inode = os.stat(path_of(library, device_id)).st_ino  # (before it is opened: replaced since, it is opened again)
    except FileNotFoundError:
        inode = None
    if held is not None and held[0] == inode:
        version = held[1].execute("PRAGMA lib.data_version").fetchone()[0]  # changed by any write of the library's since
        if version != held[2]:
            refresh_shared(held[1], slot)
            readers[device_id] = (inode, held[1], version)
        return held[1]
    if held is not None:
        del readers[device_id]
        held[1].close()
    if inode is None:
        return None
    try:
        conn = connect(library, device_id, slot)
    except FileNotFoundError:  # forgotten meanwhile
        return None
    conn.execute(f"PRAGMA mmap_size = {1 << 32}")  # (as the library's own searches read it)
    version = conn.execute("PRAGMA lib.data_version").fetchone()[0]
    refresh_shared(conn, slot)  # (again: a write between `connect`'s copy and the version read would be missed)
    readers[device_id] = (inode, conn, version)
    return conn


def path_of(library: Library, device_id: DeviceId) -> Path:
    return library.folder / FOLDER / f"{device_id}.db"


def staging_path(library: Library, device_id: DeviceId) -> Path:
    """Where a catalogue file of `device_id` is written as it arrives (`keep` checks it and puts it in place)."""
    (library.folder / FOLDER).mkdir(exist_ok=True)
    return library.folder / FOLDER / f"{device_id}.db.part"


def keep(
    library: Library, device_id: DeviceId, limits: Limits | None = None, listable: Callable[[], None] | None = None
) -> CatalogueFile:
    """Check the file staged for `device_id` (CatalogueRefused says why not; `limits`: catalogue_file.HELD, and
    always entry ids that `global_id` numbers), give the device its slot, and put a copy of it in place of the one kept
    so far as soon as it is checked: listable from then on (`listable()` is called then), found by no search yet
    (`connect`). Then build its search index and put it in place too (a new file, which `reader` opens anew; readers
    of the one before keep theirs until they close it). A staged file refused or cut off (an error, Ctrl-C) is
    deleted; what was kept stays (cut off while indexing: the listable copy)."""
    from sdcore.sync.catalogue_file import HELD, check

    limits = dataclasses.replace(limits or HELD, largest_id=(1 << SLOT_BITS) - 1)
    staged, kept = staging_path(library, device_id), path_of(library, device_id)
    listed = _listed(kept)
    try:
        held = check(staged, device_id, limits)
        slot_of(library, device_id, make=True)
        shutil.copyfile(staged, listed)
        _put(listed, kept)
        if listable is not None:
            listable()
        _index_for_reads(staged)
        _put(staged, kept)
    except BaseException:
        for path in (staged, listed):
            with contextlib.suppress(IsADirectoryError):  # (a folder staged is no file to delete: the refusal is said)
                path.unlink(missing_ok=True)
        raise
    return held


def _listed(kept: Path) -> Path:
    """Where the checked copy is written before it is put in place (`keep`)."""
    return kept.with_name(f"{kept.name}.listed")


def _put(path: Path, kept: Path) -> None:
    """`path` made durable and put in place of `kept`, by one rename."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    os.replace(path, kept)
    folder = os.open(kept.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def forget(library: Library, device_id: DeviceId) -> None:
    """The catalogue of `device_id` kept here, and any staged, deleted (its slot stays: never given again)."""
    forget_in(library.folder, device_id)


def forget_in(folder: Path, device_id: object) -> None:
    """`forget` in the library folder `folder` (what sdcore.sync.members calls when a device leaves the library)."""
    kept = folder / FOLDER / f"{uuid.UUID(str(device_id))}.db"  # (a name made of the id alone, never of a peer's text)
    for path in (kept, _listed(kept), kept.with_name(f"{kept.name}.part"), kept.with_name(f"{kept.name}-journal")):
        path.unlink(missing_ok=True)


def ext_token(name: str) -> str:
    """A file's extension as the search index holds it (a catalogue does not carry it: taken from the name)."""
    ext = extension_of(name)
    return f"\ue000{ext}\ue000" if ext else ""  # (as schema.ext_token_sql writes it)


def _index_for_reads(path: Path) -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        add_functions(conn)
        conn.create_function("ext_token", 1, ext_token, deterministic=True)
        conn.execute("ATTACH ? AS cat", (uri(path, "mode=rw"),))
        conn.execute("PRAGMA cat.journal_mode = OFF")  # a staged file: if this fails, it is deleted
        conn.execute("BEGIN")
        for sql in SEARCH_INDEX + SORTED_INDEXES:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def connect(library: Library, device_id: DeviceId, slot: int) -> sqlite3.Connection:
    """A read-only connection to the catalogue of `device_id` kept here, on which the library's own SQL runs
    unchanged: its main database is the catalogue, the library's is attached (`lib`, read-only), and TEMP VIEWs and
    tables, which SQLite resolves first, shadow every name that SQL reads: `entries` with the library's columns (those a
    catalogue does not carry are NULL), `locations` and `content_identities` from the catalogue, `user_metadata` and
    `tag_assignments` copied from the library's rows of global ids (`slot`; as of `refresh_shared`, which `reader`
    calls when the library changed), and every other table of the library that names an entry, empty (an unqualified name would otherwise reach the library's own rows by ids of another numbering).
    Single-table views are flattened by SQLite: the catalogue's indexes serve them."""
    kept = path_of(library, device_id)
    if not kept.is_file():
        raise FileNotFoundError(f"no catalogue of {device_id} is kept in {library.folder}")
    if not 1 <= slot <= MAX_SLOT:
        raise ValueError(f"{slot} is not a slot")
    if os.path.lexists(f"{kept}-journal"):  # an apply cut off (kill -9): rolled back first, which no read-only reader can
        with contextlib.closing(sqlite3.connect(uri(kept, "mode=rw"), uri=True)) as writer:
            writer.execute("SELECT head FROM catalogue").fetchone()
    conn = sqlite3.connect(uri(kept, "mode=ro"), uri=True, isolation_level=None, check_same_thread=False)
    try:
        add_functions(conn)
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("ATTACH ? AS lib", (uri(library.folder / "database.db", "mode=ro"),))
        views = {
            "entries": "SELECT id, location_id, parent_id, name,"
            f" CASE kind_code WHEN {_FILE} THEN extension_of(name) ELSE '' END AS extension, kind_code, object_code,"
            " size, files, NULL AS inode, mtime, NULL AS mode_code, NULL AS link_target,"
            " CASE WHEN cas_number IS NOT NULL THEN id END AS content_id, NULL AS fingerprint, NULL AS error,"
            f" {named_sql(ENTRY_KINDS, 'kind_code')} AS kind, {named_sql(OBJECT_KINDS, 'object_code')} AS object_kind,"
            " NULL AS mode, hidden FROM main.entries",
            "content_identities": "SELECT id, printf('%016x', cas_number) AS cas_id, size, NULL AS object_kind,"
            " NULL AS full_hash FROM main.entries WHERE cas_number IS NOT NULL",
            "locations": f"SELECT id, '{device_id}' AS device_id, path, name, mode, NULL AS ignore, scan_state, root_id, created,"
            " last_scanned, volume_id, NULL AS volume_label, volume_path, NULL AS volume_seen FROM main.locations",
        }
        for name, sql in views.items():
            conn.execute(f"CREATE TEMP VIEW {name} AS {sql}")
        # (keyed as the library's, so that SQLite plans the searches' joins as it does on the library)
        conn.execute("CREATE TEMP TABLE user_metadata (entry_id INTEGER PRIMARY KEY, note, favorite, updated)")
        conn.execute(f"CREATE TEMP TABLE tag_assignments AS {_shared(slot)['tag_assignments']} LIMIT 0")
        conn.execute("CREATE INDEX temp.tag_assignments_by_entry ON tag_assignments (entry_id)")
        for name in _naming_an_entry(conn) - views.keys() - _shared(slot).keys() - _HELD_BY_THE_CATALOGUE:
            conn.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM lib."{name}" WHERE 0')
        held = {name for (name,) in conn.execute("SELECT name FROM main.sqlite_schema WHERE type = 'table'")}
        for name, sql in _SEARCH_TABLES.items():
            if name not in held or name == "note_index":  # a file whose search index is not built yet: found by
                conn.execute(sql.replace("cat.", "temp.", 1))  # nothing, never by the library's; notes: below
        refresh_shared(conn, slot)
    except BaseException:
        conn.close()
        raise
    return conn


def _shared(slot: int) -> dict[str, str]:
    """The library's notes, favourites and tags of the entries of the device given `slot`, by the owner's ids."""
    low, high = slot << SLOT_BITS, (slot + 1) << SLOT_BITS
    return {
        # (the CASTs make the tables' ids INTEGER columns, which an index on them serves when compared with `e.id`)
        "user_metadata": f"SELECT CAST(entry_id - {low} AS INTEGER) AS entry_id, note, favorite, updated"
        f" FROM lib.user_metadata WHERE entry_id >= {low} AND entry_id < {high}",
        "tag_assignments": f"SELECT tag_id, CAST(entry_id - {low} AS INTEGER) AS entry_id, cas_id, created"
        f" FROM lib.tag_assignments WHERE entry_id IS NULL OR entry_id >= {low} AND entry_id < {high}",
    }


def refresh_shared(conn: sqlite3.Connection, slot: int) -> None:
    """Copy again into a catalogue's connection (`connect`) the library's notes, favourites and tags of its entries.

    Copies, not views: a view's id (theirs minus the slot's bits) has no index, and a search joins the notes to every
    entry it reads (2,000 notes on a device made a search of its catalogue 6 s instead of 0.1)."""
    conn.execute("BEGIN")
    for name, sql in _shared(slot).items():
        conn.execute(f"DELETE FROM temp.{name}")
        conn.execute(f"INSERT INTO temp.{name} {sql}")
    conn.execute("DELETE FROM temp.note_index")  # (the notes' search index, as the library's note triggers write it)
    if conn.execute("SELECT 1 FROM main.sqlite_schema WHERE name = 'search_index'").fetchone() is not None:
        conn.execute(f"INSERT INTO temp.note_index (rowid, note) SELECT entry_id, {folded_sql('note')} FROM temp.user_metadata"
                     " WHERE note IS NOT NULL")  # fmt: skip
    conn.execute("COMMIT")


_SEARCH_TABLES = {sql.split()[3].removeprefix("cat."): sql for sql in SEARCH_INDEX if sql.startswith("CREATE VIRTUAL")}
"""The search index's tables, by name: an unqualified name of one reaches the library's own when the file lacks it."""
_HELD_BY_THE_CATALOGUE = {"directory_paths", *_SEARCH_TABLES}
_ENTRY_COLUMNS = {"entry_id", "parent_id", "content_id", "location_id"}


def _naming_an_entry(conn: sqlite3.Connection) -> set[str]:
    """The library's tables with a column that holds an entry's, a content's or a location's id."""
    tables = [name for (name,) in conn.execute("SELECT name FROM lib.sqlite_schema WHERE type = 'table'")]
    naming = set()
    for name in tables:
        with contextlib.suppress(sqlite3.DatabaseError):  # a virtual table's module is not needed to list its columns
            columns = {row[1] for row in conn.execute("SELECT * FROM pragma_table_xinfo(?, 'lib')", (name,))}
            if columns & _ENTRY_COLUMNS or name == "entries":
                naming.add(name)
    return naming
