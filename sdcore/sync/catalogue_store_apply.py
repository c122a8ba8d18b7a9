"""A kept catalogue file (sdcore.sync.catalogue_store) brought up to date from its owner's numbered batches, as
apply_catalogue keeps the library's own tables: `apply` writes a CatalogueBatch into `catalogue_store.path_of` in one
transaction, by the owner's ids as they are, with the folders' paths and the search index kept right, and moves the
file's head to the batch's `up_to`. Every rule `check` enforces on a whole file holds after each batch; a batch that
would break one is refused (CatalogueRefused) and writes nothing.

An entry deleted takes its row (and a folder's path) only: what is still below it is detached (no folder), as the
owner's scan detaches it, because its own deletion, or its move out, is numbered apart and may come in a later batch
(deleting the tree would lose an entry moved out whose move came after). An entry that takes a name in a folder where
a stale one still is detaches that one the same way. A detached folder's path is below a name no entry can have
(longer than MAX_NAME), so it never takes a path a folder arriving needs.

The search index is kept by statements here rather than by triggers in the file: they cost the same
(tests/bench/bench_catalogue_store_apply.py), a kept file holds no trigger, and the order of a row's way out of the
contentless index and its way in, which two triggers do not keep, is written out. An entry changed where it was, under
its name (most of what a rescan changes), costs the index nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sdcore.library.damage import uri
from sdcore.library.schema import DIR_CODE, ENTRY_KINDS, OBJECT_KINDS, add_functions
from sdcore.sdpath import DeviceId, display, from_db
from sdcore.sync.catalogue import (
    MAX_NAME,
    CatalogueBatch,
    CatalogueEntry,
    CatalogueLocation,
    CatalogueRefused,
    _rows,
)
from sdcore.sync.catalogue_file import HELD, Limits, cas_number
from sdcore.sync.catalogue_store import INDEXED_EXT, INDEXED_NAME, INDEXED_PATH, SLOT_BITS, ext_token, path_of

if TYPE_CHECKING:
    from sdcore.library.library import Library

_KIND = {kind: code for code, kind in enumerate(ENTRY_KINDS)}
_OBJECT = {kind: code for code, kind in enumerate(OBJECT_KINDS)}
_DETACHED = "~" * (MAX_NAME + 1)
_LARGEST_ID = (1 << SLOT_BITS) - 1
"""The largest owner's id a kept file holds (as `catalogue_store.keep` checks a whole one): a larger one, made global
(`slot << SLOT_BITS | id`), would name an entry of another slot."""


def detached_path(entry_id: int) -> str:
    """The path of a folder detached from its folder: below a name no entry has, so no folder that comes takes it."""
    return f"{_DETACHED}/{entry_id}"


def apply(library: Library, device_id: DeviceId, batch: CatalogueBatch, limits: Limits = HELD) -> set[str]:
    """Write `batch` of `device_id`'s catalogue into the file of it kept here and move the file's head to the batch's
    `up_to`, in one transaction: a batch applied twice changes nothing. Raises CatalogueRefused, writing nothing, for a
    batch that starts after the file's head or would break a rule of a catalogue file (or `limits`); FileNotFoundError
    when no catalogue of `device_id` is kept here (`catalogue_store.keep` puts a whole one in place first). Returns the
    folders whose listing it changed (absolute paths on that device, the first MAX_TOUCHED)."""
    if batch.device_id != device_id:
        raise _refused(f"it claims to be the catalogue of {batch.device_id}, not of {device_id}")
    kept = path_of(library, device_id)
    if not kept.is_file():
        raise FileNotFoundError(f"no catalogue of {device_id} is kept in {library.folder}")
    conn = sqlite3.connect(uri(kept, "mode=rw"), uri=True, isolation_level=None)
    try:
        add_functions(conn)
        conn.create_function("ext_token", 1, ext_token, deterministic=True)
        conn.execute("BEGIN IMMEDIATE")
        try:
            writer = _Writer(conn, batch)
            if writer.write(limits):
                conn.execute("COMMIT")
                return writer.touched
            conn.execute("ROLLBACK")
            return set()
        except sqlite3.IntegrityError as exc:  # (not reached by the rules above: the unique indexes stand behind them)
            conn.execute("ROLLBACK")
            raise _refused(f"it contradicts itself ({exc})") from None
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()


def _refused(why: str) -> CatalogueRefused:
    return CatalogueRefused(f"a catalogue batch was refused: {why}")


_UNINDEX = (
    f"INSERT INTO search_index (search_index, rowid, name, ext) SELECT 'delete', id, {INDEXED_NAME}, {INDEXED_EXT}"
    " FROM entries WHERE parent_id IS NOT NULL AND "
)
_INDEX = f"INSERT INTO search_index (rowid, name, ext) SELECT id, {INDEXED_NAME}, {INDEXED_EXT} FROM entries WHERE parent_id IS NOT NULL AND "
_UNINDEX_PATHS = (
    f"INSERT INTO folder_index (folder_index, rowid, path) SELECT 'delete', entry_id, {INDEXED_PATH} FROM directory_paths"
    " WHERE path != '' AND "
)
_INDEX_PATHS = f"INSERT INTO folder_index (rowid, path) SELECT entry_id, {INDEXED_PATH} FROM directory_paths WHERE path != '' AND "
_FOLDER = "SELECT e.location_id, e.kind_code, d.path FROM entries e LEFT JOIN directory_paths d ON d.entry_id = e.id WHERE e.id = ?"
_COLUMNS = "id, location_id, parent_id, name, kind_code, object_code, size, files, mtime, hidden, cas_number"
_STAGE = f"CREATE TEMP TABLE IF NOT EXISTS staged (n INTEGER PRIMARY KEY, {_COLUMNS}, step INTEGER NOT NULL)"
"""A batch's entries as the file's rows; `step`: 0 one by one, 1 in place, 2 new at a free name, 3 one by one last."""
_UPSERT = (
    "ON CONFLICT (id) DO UPDATE SET parent_id = excluded.parent_id, name = excluded.name, kind_code = excluded.kind_code,"
    " object_code = excluded.object_code, size = excluded.size, files = excluded.files, mtime = excluded.mtime,"
    " hidden = excluded.hidden, cas_number = excluded.cas_number"
)
_IN_PLACE = (  # where it was, as it was named: neither its path nor the search index changes
    "UPDATE temp.staged SET step = 1 WHERE EXISTS (SELECT 1 FROM entries e WHERE e.id = staged.id"
    " AND e.location_id = staged.location_id AND e.parent_id IS staged.parent_id AND e.name = staged.name"
    " AND e.kind_code = staged.kind_code)"
)
_UPDATE_IN_PLACE = (
    "UPDATE entries SET object_code = s.object_code, size = s.size, files = s.files, mtime = s.mtime, hidden = s.hidden,"
    " cas_number = s.cas_number FROM temp.staged s WHERE s.step = 1 AND s.id = entries.id"
)
_NEW_AT_FREE_NAMES = (  # (after the folders and moves: a new file's folder may be new, its name freed by a move)
    "UPDATE temp.staged SET step = 2 WHERE step = 3 AND id NOT IN (SELECT id FROM entries) AND EXISTS (SELECT 1 FROM"
    f" entries p WHERE p.id = staged.parent_id AND p.kind_code = {DIR_CODE} AND p.location_id = staged.location_id)"
    " AND NOT EXISTS (SELECT 1 FROM entries o WHERE o.parent_id = staged.parent_id AND o.name = staged.name)"
    " AND NOT EXISTS (SELECT 1 FROM temp.staged t WHERE t.step = 3 AND t.parent_id = staged.parent_id"
    " AND t.name = staged.name AND t.n != staged.n)"
)
_INSERT_NEW = f"INSERT INTO entries SELECT {_COLUMNS} FROM temp.staged WHERE step = 2 ORDER BY n"
_PARENTS = (  # the folders of some entries, and their locations' paths
    "SELECT DISTINCT l.path, d.path FROM entries e JOIN directory_paths d ON d.entry_id = e.parent_id"
    f" JOIN locations l ON l.id = e.location_id WHERE substr(d.path, 1, {MAX_NAME + 1}) != '{_DETACHED}' AND e.id IN "
)
MAX_TOUCHED = 64
"""Folders a batch names as changed (`EntriesChanged`, as apply_catalogue does): a pane shows one at a time."""
_SUBTREE = "location_id = ? AND (path = ? OR (path >= ? AND path < ?))"  # ('/' sorts just before '0')


def _subtree(location: int, path: str) -> tuple[int, str, str, str]:
    return location, path, path + "/", path + "0"


class _Writer:
    """Writes one batch into a catalogue file inside its transaction. The search index is contentless: a row leaves
    it by its values as they were (`_UNINDEX` before a row changes, `_INDEX` after)."""

    def __init__(self, conn: sqlite3.Connection, batch: CatalogueBatch) -> None:
        self.conn, self.batch = conn, batch
        self.locations = {row[0] for row in conn.execute("SELECT id FROM locations")}
        self.touched: set[str] = set()

    def touch(self, ids: str, args: Sequence[object] = ()) -> None:
        """Note the folders of the entries `ids` (SQL naming their ids) as changed, as far as MAX_TOUCHED."""
        if len(self.touched) >= MAX_TOUCHED:
            return
        for location, path in self.conn.execute(f"{_PARENTS}({ids}) LIMIT {MAX_TOUCHED}", args):
            self.touched.add(f"{location.rstrip('/')}/{from_db(path)}" if path else location)

    def write(self, limits: Limits) -> bool:
        batch = self.batch
        device, head = self.conn.execute("SELECT device_id, head FROM catalogue").fetchone()
        if device != str(batch.device_id):
            raise _refused("it is of another device than the catalogue kept of it")
        if batch.since > head:
            raise _refused(
                f"{display(batch.device_name)}'s batch starts after change {batch.since}, and the catalogue kept of it"
                f" has only up to {head}; ask again from {head}"
            )
        if batch.up_to <= head:
            return False  # every change it carries is here already, or a newer one
        self.delete_entries(batch.deleted_entries)
        for gone in batch.deleted_locations:
            self.delete_location(gone)
        for loc in batch.locations:
            self.location(loc)
        self.entries(batch.entries)
        # a root that is no root of its location any more (deleted, or yet to come: it is set when it comes)
        self.conn.execute(
            "UPDATE locations SET root_id = NULL WHERE root_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries e"
            " WHERE e.id = locations.root_id AND e.location_id = locations.id AND e.parent_id IS NULL AND e.name = '')"
        )
        if batch.entries or batch.locations:
            self.within(limits)
        self.conn.execute("UPDATE catalogue SET head = ?, device_name = ?", (batch.up_to, batch.device_name))
        return True

    def within(self, limits: Limits) -> None:
        (entries,) = self.conn.execute("SELECT count(*) FROM entries").fetchone()
        if entries > limits.entries or len(self.locations) > limits.locations:
            raise _refused(
                f"the catalogue of {display(self.batch.device_name)} would hold {entries:,} entries in"
                f" {len(self.locations):,} locations; this device keeps at most {limits.entries:,} in"
                f" {limits.locations:,} of one device"
            )

    # locations

    def delete_location(self, location: int) -> None:
        db = self.conn
        db.execute(_UNINDEX + "location_id = ?", (location,))
        db.execute(_UNINDEX_PATHS + "location_id = ?", (location,))
        db.execute("DELETE FROM entries WHERE location_id = ?", (location,))
        db.execute("DELETE FROM directory_paths WHERE location_id = ?", (location,))
        db.execute("DELETE FROM locations WHERE id = ?", (location,))
        self.locations.discard(location)

    def location(self, loc: CatalogueLocation) -> None:
        if loc.root_id is not None and loc.root_id > _LARGEST_ID:
            raise _refused(f"location {loc.id}'s root {loc.root_id} is past the largest id a catalogue kept here holds")
        stale = self.conn.execute("SELECT id FROM locations WHERE path = ? AND id != ?", (loc.path, loc.id)).fetchone()
        if stale is not None:  # removed there and added again: its removal is on its way
            self.delete_location(stale[0])
        self.conn.execute(
            "INSERT INTO locations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET path = excluded.path,"
            " name = excluded.name, mode = excluded.mode, scan_state = excluded.scan_state, created = excluded.created,"
            " last_scanned = excluded.last_scanned, root_id = excluded.root_id, volume_id = excluded.volume_id,"
            " volume_path = excluded.volume_path",
            (loc.id, loc.path, loc.name, loc.mode, loc.scan_state, loc.created, loc.last_scanned, loc.root_id,
             loc.volume_id, loc.volume_path),
        )  # fmt: skip
        self.locations.add(loc.id)

    # entries

    def delete_entries(self, ids: tuple[int, ...]) -> None:
        """Delete these entries; what is still below one is detached."""
        if not ids:
            return
        db = self.conn
        db.execute("CREATE TEMP TABLE IF NOT EXISTS gone (id INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.gone")
        db.executemany("INSERT OR IGNORE INTO temp.gone VALUES (?)", [(i,) for i in ids])
        self.touch("SELECT id FROM temp.gone")
        db.execute(_UNINDEX + "id IN temp.gone")
        db.execute(_UNINDEX_PATHS + "entry_id IN temp.gone")
        db.execute("DELETE FROM directory_paths WHERE entry_id IN temp.gone")
        db.execute("DELETE FROM entries WHERE id IN temp.gone")
        for (child,) in db.execute("SELECT id FROM entries WHERE parent_id IN temp.gone").fetchall():
            self.detach(child)

    def detach(self, entry_id: int) -> None:
        """Take an entry out of its folder (its own change is on its way); a folder's tree goes below its detached path."""
        db = self.conn
        db.execute(_UNINDEX + "id = ?", (entry_id,))
        db.execute("UPDATE entries SET parent_id = NULL WHERE id = ?", (entry_id,))
        row = db.execute("SELECT location_id, path FROM directory_paths WHERE entry_id = ?", (entry_id,)).fetchone()
        if row is not None:
            self.move(row[0], row[1], detached_path(entry_id))

    def move(self, location: int, old: str, new: str) -> None:
        """A folder's path, and the paths of every folder below it, from `old` to `new`."""
        db = self.conn
        db.execute(_UNINDEX_PATHS + _SUBTREE, _subtree(location, old))
        db.execute(f"UPDATE directory_paths SET path = ? || substr(path, ?) WHERE {_SUBTREE}",
                   (new, len(old) + 1, *_subtree(location, old)))  # fmt: skip
        db.execute(_INDEX_PATHS + _SUBTREE, _subtree(location, new))

    def entries(self, entries: Sequence[CatalogueEntry]) -> None:
        """The batch's entries, staged as the file's rows: most in a few statements (those whose place is as it was, in
        place; new ones in a folder here, at a free name, inserted), the others one at a time in the batch's order."""
        if not entries:
            return
        db = self.conn
        db.execute(_STAGE)
        db.execute("CREATE INDEX IF NOT EXISTS temp.staged_by_place ON staged (parent_id, name)")
        db.execute("DELETE FROM temp.staged")
        db.executemany(
            "INSERT INTO temp.staged VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [(n, e[0], e[1], e[2], e[3], _KIND[e[4]], _OBJECT.get(e[5] or ""), e[6], e[7], e[8], int(e[9]),
              cas_number(e[10])) for n, e in enumerate(_rows(entries))],
        )  # fmt: skip
        past = db.execute("SELECT id FROM temp.staged WHERE id > ? LIMIT 1", (_LARGEST_ID,)).fetchone()
        if past is not None:
            raise _refused(f"entry {past[0]} is past the largest id a catalogue kept here holds ({_LARGEST_ID})")
        self.touch("SELECT id FROM temp.staged")  # where they were (a move, a rename) and, after, where they are
        (ids,) = db.execute("SELECT count(DISTINCT id) FROM temp.staged").fetchone()
        if ids == len(entries):  # (an id twice: each in turn, the later a change of the earlier)
            db.execute(_IN_PLACE)
            db.execute(_UPDATE_IN_PLACE)
            db.execute("UPDATE temp.staged SET step = 3 WHERE step = 0 AND id NOT IN (SELECT id FROM entries)"
                       f" AND kind_code != {DIR_CODE}")  # fmt: skip
        self.one_by_one(0)
        db.execute(_NEW_AT_FREE_NAMES)
        db.execute(_INSERT_NEW)
        db.execute(_INDEX + "id IN (SELECT id FROM temp.staged WHERE step = 2)")
        self.one_by_one(3)
        self.touch("SELECT id FROM temp.staged")

    def one_by_one(self, step: int) -> None:
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM temp.staged WHERE step = ? ORDER BY n", (step,)).fetchall()
        for row in rows:
            self.entry(row)

    def entry(self, e: tuple) -> None:  # (a row of the file's entries)
        db = self.conn
        if e[1] not in self.locations:
            raise _refused(f"entry {e[0]} is in location {e[1]}, which its device never sent")
        is_dir = e[4] == DIR_CODE
        old = db.execute(_FOLDER, (e[0],)).fetchone()
        if old is not None and (old[0] != e[1] or (old[1] == DIR_CODE) != is_dir):
            self.delete_entries((e[0],))  # the owner gave its id to another entry
            old = None
        above: str | None = None
        if e[2] is not None:
            parent = db.execute(_FOLDER, (e[2],)).fetchone()
            if parent is None or parent[0] != e[1] or parent[1] != DIR_CODE:
                raise _refused(f"entry {e[0]}'s folder {e[2]} is not a folder of its location that its device sent")
            above = parent[2]
            if is_dir and old is not None and above is not None and (above == old[2] or above.startswith(f"{old[2]}/")):
                raise _refused(f"it moves folder {e[0]} into itself")
            stale = db.execute("SELECT id FROM entries WHERE parent_id = ? AND name = ? AND id != ?",
                               (e[2], e[3], e[0])).fetchone()  # fmt: skip
            if stale is not None:
                self.detach(stale[0])
        if old is not None:
            db.execute(_UNINDEX + "id = ?", (e[0],))
        db.execute(f"INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) {_UPSERT}", e)
        db.execute(_INDEX + "id = ?", (e[0],))
        if is_dir:
            self.place(e, above)

    def place(self, e: tuple, above: str | None) -> None:
        """A folder's path, from its folder's (`above`), its tree's with it if it moved."""
        row = self.conn.execute("SELECT path FROM directory_paths WHERE entry_id = ?", (e[0],)).fetchone()
        old = None if row is None else row[0]  # (read now: detaching a stale entry may have moved it)
        if e[2] is None:
            path = "" if e[3] == "" else detached_path(e[0])  # (only a root is named '')
            if e[3] == "":
                self.conn.execute("UPDATE locations SET root_id = ? WHERE id = ? AND root_id IS NULL", (e[0], e[1]))
        else:
            path = f"{above}/{e[3]}" if above else e[3]
        if old is None:
            self.conn.execute("INSERT INTO directory_paths VALUES (?, ?, ?)", (e[0], e[1], path))
            self.conn.execute(_INDEX_PATHS + "entry_id = ?", (e[0],))
        elif old != path:
            self.move(e[1], old, path)
