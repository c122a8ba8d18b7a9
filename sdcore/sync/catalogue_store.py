"""Other devices' catalogues kept as files of their own, `NAME.sdlibrary/catalogues/DEVICE.db` (issue 16's first sync:
merged into the library's own tables, a 200,000-entry catalogue costs 10x an `scp` of the database, whatever brings
it: tests/bench/bench_catalogue_views.py). A received file is staged beside its place, checked
(sdcore.sync.catalogue_file), given what reading it needs (`SEARCH_INDEX`, `SORTED_INDEXES`) and put in place by one rename (`keep`);
`connect` opens a kept one so that the library's own SQL (sdcore.search, listings) reads it unchanged.

The catalogue's entries keep their owner's ids. Where the library's tables name one (tags, notes), it is
`global_id(slot, owner id)`: the slot, a number this library gives each other device, in the bits above 40 (the
library's own ids stay below). Not wired into sync or any read path yet: the next steps are in issue 16's notes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.index.kinds import extension_of
from sdcore.library.damage import uri
from sdcore.library.schema import ENTRY_KINDS, OBJECT_KINDS, add_functions, folded_sql, named_sql
from sdcore.sdpath import DeviceId
from sdcore.sync.catalogue_file import CatalogueFile, Limits, check

if TYPE_CHECKING:
    from sdcore.library.library import Library

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
    # empty: notes are the library's, by global ids (the library's note index, by its own ids, is never read here)
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


KEPT = Limits(largest_id=(1 << SLOT_BITS) - 1)
"""What a kept catalogue holds at most: HELD, of entry ids that `global_id` numbers."""


def global_id(slot: int, owner_id: int) -> int:
    """The id by which the library's tables (tags, notes) name the entry `owner_id` of the device given `slot`."""
    if not 1 <= slot <= MAX_SLOT or not 0 < owner_id < 1 << SLOT_BITS:
        raise ValueError(f"no global id for entry {owner_id} of slot {slot}")
    return slot << SLOT_BITS | owner_id


def path_of(library: Library, device_id: DeviceId) -> Path:
    return library.folder / FOLDER / f"{device_id}.db"


def staging_path(library: Library, device_id: DeviceId) -> Path:
    """Where a catalogue file of `device_id` is written as it arrives (`keep` checks it and puts it in place)."""
    (library.folder / FOLDER).mkdir(exist_ok=True)
    return library.folder / FOLDER / f"{device_id}.db.part"


def keep(library: Library, device_id: DeviceId, limits: Limits = KEPT) -> CatalogueFile:
    """Check the file staged for `device_id` (CatalogueRefused says why not), build what reading it needs, make it
    durable and put it in place of the one kept so far, which its readers keep until they close it. A staged file
    refused or cut off (an error, Ctrl-C) is deleted; the one kept stays."""
    staged, kept = staging_path(library, device_id), path_of(library, device_id)
    try:
        held = check(staged, device_id, limits)
        _index_for_reads(staged)
        with open(staged, "rb") as f:
            os.fsync(f.fileno())
        os.replace(staged, kept)
    except BaseException:
        with contextlib.suppress(IsADirectoryError):  # (a folder staged is no file to delete: the refusal is said)
            staged.unlink(missing_ok=True)
        raise
    folder = os.open(kept.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return held


def forget(library: Library, device_id: DeviceId) -> None:
    """The catalogue of `device_id` kept here, and any staged, deleted."""
    for path in (path_of(library, device_id), staging_path(library, device_id)):
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
    unchanged: its main database is the catalogue, the library's is attached (`lib`, read-only), and TEMP VIEWs, which
    SQLite resolves first, shadow every name that SQL reads: `entries` with the library's columns (those a catalogue
    does not carry are NULL), `locations` and `content_identities` from the catalogue, `user_metadata` and
    `tag_assignments` from the library by global ids (`slot`), and every other table of the library that names an
    entry, empty (an unqualified name would otherwise reach the library's own rows by ids of another numbering).
    Single-table views are flattened by SQLite: the catalogue's indexes serve them."""
    kept = path_of(library, device_id)
    if not kept.is_file():
        raise FileNotFoundError(f"no catalogue of {device_id} is kept in {library.folder}")
    if not 1 <= slot <= MAX_SLOT:
        raise ValueError(f"{slot} is not a slot")
    low, high = slot << SLOT_BITS, (slot + 1) << SLOT_BITS
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
            "user_metadata": f"SELECT entry_id - {low} AS entry_id, note, favorite, updated FROM lib.user_metadata"
            f" WHERE entry_id >= {low} AND entry_id < {high}",
            "tag_assignments": f"SELECT tag_id, entry_id - {low} AS entry_id, cas_id, created FROM lib.tag_assignments"
            f" WHERE entry_id IS NULL OR entry_id >= {low} AND entry_id < {high}",
        }
        for name, sql in views.items():
            conn.execute(f"CREATE TEMP VIEW {name} AS {sql}")
        for name in _naming_an_entry(conn) - views.keys() - _HELD_BY_THE_CATALOGUE:
            conn.execute(f'CREATE TEMP VIEW "{name}" AS SELECT * FROM lib."{name}" WHERE 0')
    except BaseException:
        conn.close()
        raise
    return conn


_HELD_BY_THE_CATALOGUE = {"directory_paths", "search_index", "folder_index", "note_index"}
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
