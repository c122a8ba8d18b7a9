"""Should another device's catalogue be a database file of its own? Measured before anyone rebuilds the read paths
(issue 16's first-sync budget: a first sync of a 200,000-entry catalogue <= 2x scp of the library's database file).

Run: python tests/bench/bench_catalogue_file.py [--files 200000] [--rounds 3] [--only sync|read|refusals]

In one run, side by side, alternating, median of the rounds, CPU (user+sys of every process that takes part) and wall:
1. scp of the owner's database.db over loopback (a real sshd: bench_net);
2. today's first sync (bench_catalogue's sync child: batches packed, msgpack, unpacked, applied);
3. the file design, step by step: (a) the owner makes the catalogue file (its own rows only, INSERT ... SELECT into
   an ATTACHed new file; beside it the backup API's copy of the whole database, for scale); (b) the file moved over
   the product's SSH channel (RemoteFS.open_read from a real `sd serve`, as a copy job reads); (c) the receiver
   checks the untrusted file (header, exact schema, quick_check or integrity_check, the catalogue's rules as
   set-based queries) and builds its indexes and search index in it; (d) ATTACH and read: listing one folder, and
   search (bench_catalogue part 3's queries) over three 200,000-entry databases vs the same rows in one.
4. A self-check: crafted files (a trigger, a view, an index over a function, a malformed page, a row breaking each
   rule) must all be refused.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import resource
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import bench_catalogue  # noqa: E402
import bench_net  # noqa: E402

from sdcore.library.locations import MODES  # noqa: E402
from sdcore.library.schema import add_functions, ext_token_sql, folded_sql  # noqa: E402
from sdcore.sync.catalogue import (  # noqa: E402
    KINDS,
    MAX_HELD,
    MAX_HELD_LOCATIONS,
    MAX_NAME,
    MAX_PATH,
    MAX_SIZE,
    MAX_TIME,
    OBJECT_KINDS,
    SCAN_STATES,
)

APPLICATION_ID = 0x53444354  # 'SDCT': a catalogue file, not a library
FORMAT = 1


def _among(column: str, values: frozenset[str] | tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in sorted(values))})"


def _text(column: str, most: int) -> str:
    return f"length({column}) <= {most} AND instr({column}, char(0)) = 0"  # (instr sees a NUL, length() stops at one)


_TIME = f"BETWEEN {-MAX_TIME:.0f} AND {MAX_TIME:.0f}"
SCHEMA = [
    """CREATE TABLE catalogue (format INTEGER NOT NULL, device_id TEXT NOT NULL, device_name TEXT NOT NULL,
    head INTEGER NOT NULL) STRICT""",
    """CREATE TABLE locations (id INTEGER PRIMARY KEY, path TEXT NOT NULL, name TEXT NOT NULL, mode TEXT NOT NULL,
    scan_state TEXT NOT NULL, created REAL NOT NULL, last_scanned REAL, root_id INTEGER, volume_id TEXT,
    volume_path TEXT) STRICT""",
    """CREATE TABLE entries (id INTEGER PRIMARY KEY, location_id INTEGER NOT NULL, parent_id INTEGER, name TEXT NOT NULL,
    extension TEXT NOT NULL, kind TEXT NOT NULL, object_kind TEXT, size INTEGER NOT NULL, files INTEGER NOT NULL,
    mtime REAL, hidden INTEGER NOT NULL, cas_id TEXT) STRICT""",
    "CREATE TABLE directory_paths (entry_id INTEGER PRIMARY KEY, location_id INTEGER NOT NULL, path TEXT NOT NULL) STRICT",
]
"""The catalogue file's whole schema, as the owner makes it: tables only (the receiver builds every index and the
search index itself, from rows it has checked). STRICT: quick_check proves each value's type, for free. (The rules
as CHECK constraints, which quick_check also runs, cost 0.6 s CPU on 210,000 entries: twice the scans below.)"""
ROW_RULES = {  # each table's rules on one row, all in one scan of it (coalesce: a NULL where none may be is a no)
    "catalogue": f"format = {FORMAT} AND length(device_id) = 36 AND length(device_name) >= 1 AND {_text('device_name', 200)}"
    " AND head >= 0",
    "locations": f"id >= 1 AND substr(path, 1, 1) = '/' AND {_text('path', MAX_PATH)} AND instr(path || '/', '/../') = 0"
    f" AND instr(path || '/', '/./') = 0 AND {_text('name', MAX_NAME)} AND {_among('mode', MODES)}"
    f" AND {_among('scan_state', SCAN_STATES)} AND created {_TIME} AND (last_scanned IS NULL OR last_scanned {_TIME})"
    " AND (root_id IS NULL OR root_id >= 1) AND CASE WHEN volume_id IS NULL THEN volume_path IS NULL ELSE"
    "  length(volume_id) <= 120 AND (volume_id GLOB 'uuid:?*' OR volume_id GLOB 'file:?*' OR volume_id GLOB 'fingerprint:?*')"
    "  AND NOT substr(volume_id, instr(volume_id, ':') + 1) GLOB '*[^0-9a-z._-]*'"
    f"  AND volume_path IS NOT NULL AND {_text('volume_path', MAX_PATH)}"
    "  AND instr('/' || volume_path || '/', '/../') = 0 AND instr('/' || volume_path || '/', '/./') = 0"
    "  AND (volume_path = '' OR instr('/' || volume_path || '/', '//') = 0) END",
    "entries": f"id >= 1 AND location_id >= 1 AND (parent_id IS NULL OR (parent_id >= 1 AND parent_id != id))"
    f" AND {_text('name', MAX_NAME)} AND instr(name, '/') = 0"
    " AND (name NOT IN ('', '.', '..') OR (name = '' AND parent_id IS NULL AND kind = 'dir'))"
    f" AND {_text('extension', MAX_NAME)} AND {_among('kind', KINDS)}"
    f" AND (object_kind IS NULL OR {_among('object_kind', OBJECT_KINDS)}) AND size BETWEEN 0 AND {MAX_SIZE}"
    f" AND files >= 0 AND (mtime IS NULL OR mtime {_TIME}) AND hidden IN (0, 1)"
    " AND (cas_id IS NULL OR (length(cas_id) BETWEEN 1 AND 64 AND NOT cas_id GLOB '*[^0-9a-f]*'))",
    "directory_paths": f"{_text('path', MAX_PATH)}",
}
RECEIVER_INDEXES = [
    "CREATE UNIQUE INDEX cat.entries_by_parent ON entries (parent_id, name)",
    "CREATE UNIQUE INDEX cat.directory_paths_by_path ON directory_paths (location_id, path)",
    "CREATE INDEX cat.entries_by_content ON entries (cas_id) WHERE cas_id IS NOT NULL",
    "CREATE UNIQUE INDEX cat.locations_by_path ON locations (path)",
]
SORTED_INDEXES = [
    "CREATE INDEX cat.entries_by_size ON entries (size)",
    "CREATE INDEX cat.entries_by_mtime ON entries (mtime)",
    "CREATE INDEX cat.entries_by_name ON entries (name COLLATE NOCASE)",
]
SEARCH_INDEX = [
    "CREATE VIRTUAL TABLE cat.search_index USING fts5(name, ext, tokenize = 'trigram', content = '', columnsize = 0,"
    " detail = none)",
    "CREATE VIRTUAL TABLE cat.folder_index USING fts5(path, tokenize = 'trigram', content = '', columnsize = 0,"
    " detail = none)",
    f"INSERT INTO cat.search_index (rowid, name, ext) SELECT e.id, {folded_sql('e.name')},"
    f" {ext_token_sql('e.extension')} FROM cat.entries e WHERE e.parent_id IS NOT NULL ORDER BY e.id",
    f"INSERT INTO cat.folder_index (rowid, path) SELECT entry_id, {folded_sql('path')} FROM cat.directory_paths"
    " WHERE path != '' ORDER BY entry_id",
]
RULES = [  # the rules that span rows, each a query that finds the first row breaking it
    ("an entry in a location the catalogue lacks",
     "SELECT e.id FROM entries e WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.id = e.location_id) LIMIT 1"),
    ("an entry whose folder is missing, not a folder, or in another location",
     "SELECT e.id FROM entries e LEFT JOIN entries p ON p.id = e.parent_id WHERE e.parent_id IS NOT NULL"
     " AND (p.id IS NULL OR p.kind != 'dir' OR p.location_id != e.location_id) LIMIT 1"),
    ("a folder without its path, or a path of no folder",
     "SELECT e.id FROM entries e LEFT JOIN directory_paths d ON d.entry_id = e.id"
     " WHERE (e.kind = 'dir') != (d.entry_id IS NOT NULL) OR d.location_id != e.location_id LIMIT 1"),
    ("a path of no entry", "SELECT d.entry_id FROM directory_paths d WHERE NOT EXISTS"
     " (SELECT 1 FROM entries e WHERE e.id = d.entry_id) LIMIT 1"),
    # each folder's path is its folder's path and its name: a path grows along a chain, so no chain is a loop
    ("a folder's path that is not its folder's path and its name",
     "SELECT e.id FROM directory_paths d JOIN entries e ON e.id = d.entry_id LEFT JOIN directory_paths f"
     " ON f.entry_id = e.parent_id WHERE CASE WHEN e.parent_id IS NULL THEN e.name = '' AND d.path != ''"
     " ELSE d.path IS NOT (CASE f.path WHEN '' THEN e.name ELSE f.path || '/' || e.name END) END LIMIT 1"),
    ("a location whose root is not a root of it",
     "SELECT l.id FROM locations l LEFT JOIN entries e ON e.id = l.root_id WHERE l.root_id IS NOT NULL"
     " AND (e.id IS NULL OR e.location_id != l.id OR e.parent_id IS NOT NULL OR e.name != '') LIMIT 1"),
]  # fmt: skip


class Refused(Exception):
    """The received file is not a catalogue this device accepts."""


# -- the owner's side ----------------------------------------------------------------------------------------------


def make_catalogue(database: Path, out: Path, device_id: str, name: str = "owner") -> None:
    """The owner's catalogue file: its own locations, entries and folders' paths, as one state of its library."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("ATTACH ? AS cat", (str(out),))
        conn.execute("PRAGMA cat.journal_mode = OFF")  # a new file: if this fails, it is thrown away
        conn.execute("PRAGMA cat.synchronous = OFF")
        conn.execute(f"PRAGMA cat.application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA cat.user_version = {FORMAT}")
        conn.execute("BEGIN")
        for sql in SCHEMA:
            conn.execute(sql.replace("CREATE TABLE ", "CREATE TABLE cat.", 1))
        head = conn.execute("SELECT coalesce(max(seq), 0) FROM catalogue_log").fetchone()[0]
        conn.execute("INSERT INTO cat.catalogue VALUES (?, ?, ?, ?)", (FORMAT, device_id, name, head))
        conn.execute(
            "INSERT INTO cat.locations SELECT id, path, name, mode, scan_state, created, last_scanned, root_id,"
            " volume_id, volume_path FROM locations WHERE device_id = ? ORDER BY id", (device_id,),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO cat.entries SELECT e.id, e.location_id, e.parent_id, e.name, e.extension, e.kind,"
            " e.object_kind, e.size, e.files, e.mtime, e.hidden, c.cas_id FROM entries e"
            " LEFT JOIN content_identities c ON c.id = e.content_id"
            " WHERE e.location_id IN (SELECT id FROM locations WHERE device_id = ?) ORDER BY e.id", (device_id,),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO cat.directory_paths SELECT entry_id, location_id, path FROM directory_paths"
            " WHERE location_id IN (SELECT id FROM locations WHERE device_id = ?) ORDER BY entry_id", (device_id,),
        )  # fmt: skip
        conn.execute("COMMIT")
    finally:
        conn.close()


def refresh_catalogue(database: Path, kept: Path, device_id: str) -> None:
    """Bring a catalogue file the owner keeps up to what its library's numbered changes (catalogue_log) say since the
    file's head: rows of the entries and locations changed written again, those deleted dropped, folders' paths that
    differ copied again (a renamed folder changes every path below it, and the log names only the folder)."""
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("ATTACH ? AS cat", (str(kept),))
        conn.execute("BEGIN")
        (head,) = conn.execute("SELECT head FROM cat.catalogue").fetchone()
        (now,) = conn.execute("SELECT coalesce(max(seq), 0) FROM catalogue_log").fetchone()
        changed = "SELECT entry_id FROM catalogue_log WHERE seq > :head AND entry_id IS NOT NULL"
        places = "SELECT location_id FROM catalogue_log WHERE seq > :head AND location_id IS NOT NULL"
        for statement in (
            f"DELETE FROM cat.entries WHERE id IN ({changed})",
            f"DELETE FROM cat.directory_paths WHERE entry_id IN ({changed})",
            f"DELETE FROM cat.locations WHERE id IN ({places})",
            "INSERT INTO cat.locations SELECT id, path, name, mode, scan_state, created, last_scanned, root_id, volume_id,"
            f" volume_path FROM locations WHERE id IN ({places}) AND device_id = :device",
            "INSERT INTO cat.entries SELECT e.id, e.location_id, e.parent_id, e.name, e.extension, e.kind, e.object_kind,"
            " e.size, e.files, e.mtime, e.hidden, c.cas_id FROM catalogue_log g JOIN entries e ON e.id = g.entry_id"
            " LEFT JOIN content_identities c ON c.id = e.content_id WHERE g.seq > :head AND g.deleted = 0"
            " AND e.location_id IN (SELECT id FROM locations WHERE device_id = :device)",
            "INSERT OR REPLACE INTO cat.directory_paths SELECT d.entry_id, d.location_id, d.path FROM directory_paths d"
            " LEFT JOIN cat.directory_paths k ON k.entry_id = d.entry_id WHERE k.path IS NOT d.path"
            " AND d.location_id IN (SELECT id FROM locations WHERE device_id = :device)",
        ):  # fmt: skip
            conn.execute(statement, {"head": head, "device": device_id})
        conn.execute("UPDATE cat.catalogue SET head = ?", (now,))
        conn.execute("COMMIT")
    finally:
        conn.close()


def change_some(database: Path, count: int) -> None:
    """What a rescan might write on the owner: `count` files' times changed and a folder renamed (not timed)."""
    conn = sqlite3.connect(database, isolation_level=None)
    add_functions(conn)
    with conn:
        conn.execute("UPDATE entries SET mtime = mtime + 1 WHERE id IN (SELECT id FROM entries WHERE kind = 'file'"
                     " ORDER BY random() LIMIT ?)", (count,))  # fmt: skip
        folder = conn.execute("SELECT e.id, p.path FROM entries e JOIN directory_paths p ON p.entry_id = e.id"
                              " WHERE e.kind = 'dir' AND e.files > 10 ORDER BY random() LIMIT 1").fetchone()  # fmt: skip
        conn.execute("UPDATE entries SET name = name || '-renamed' WHERE id = ?", (folder[0],))
        prefix = folder[1]
        conn.execute(
            "UPDATE directory_paths SET path = ?1 || '-renamed' || substr(path, length(?1) + 1)"
            " WHERE path = ?1 OR path GLOB ?1 || '/*'", (prefix,),
        )  # fmt: skip
    conn.close()


def digest(path: Path) -> int:
    conn = sqlite3.connect(path)
    rows = [conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("locations", "entries", "directory_paths")]
    conn.close()
    return hash(repr(rows))


def backup_whole(database: Path, out: Path) -> None:
    """For scale: the backup API's copy of the owner's whole database (which holds what must not leave it)."""
    src, dst = sqlite3.connect(database), sqlite3.connect(out)
    src.backup(dst)
    src.close()
    dst.close()


# -- the receiver's side -------------------------------------------------------------------------------------------


def defend(conn: sqlite3.Connection) -> None:
    """SQLite's own defences for an untrusted database (https://sqlite.org/security.html). Python 3.12 has
    Connection.setconfig(SQLITE_DBCONFIG_DEFENSIVE); 3.11 reaches sqlite3_db_config through ctypes (the handle is the
    first field of the connection object: checked below by reading the setting back)."""
    if hasattr(conn, "setconfig"):
        conn.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)  # type: ignore[attr-defined]
    else:
        lib = ctypes.CDLL("libsqlite3.so.0")
        handle = ctypes.c_void_p.from_address(id(conn) + 2 * ctypes.sizeof(ctypes.c_void_p))
        out = ctypes.c_int(0)
        lib.sqlite3_db_config(handle, 1010, ctypes.c_int(1), ctypes.byref(out))  # SQLITE_DBCONFIG_DEFENSIVE
        if out.value != 1:
            raise RuntimeError("defensive mode could not be set")
    conn.execute("PRAGMA trusted_schema = OFF")  # the schema calls no function that is not innocuous
    conn.execute("PRAGMA cell_size_check = ON")
    conn.execute("PRAGMA mmap_size = 0")
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1 << 20)  # no value longer than a MiB is read into memory
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1 << 16)  # nor a schema statement longer than 64 KiB parsed


def expected_schema() -> list[tuple[str, str, str, str]]:
    conn = sqlite3.connect(":memory:")
    for sql in SCHEMA:
        conn.execute(sql)
    rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name").fetchall()
    conn.close()
    return rows


EXPECTED = expected_schema()


def check_header(path: Path, limit_bytes: int) -> None:
    """The file's header, before SQLite parses anything of it: a plain rollback-journal UTF-8 database of our kind."""
    size = path.stat().st_size
    if size > limit_bytes:
        raise Refused(f"it is {size:,} bytes, more than a catalogue of {MAX_HELD:,} entries takes")
    with open(path, "rb") as f:
        head = f.read(100)
    if len(head) < 100 or head[:16] != b"SQLite format 3\0":
        raise Refused("it is not an SQLite database")
    page = struct.unpack(">H", head[16:18])[0]
    page = 65536 if page == 1 else page
    pages = struct.unpack(">I", head[28:32])[0]
    fields = {
        "file format": (head[18], head[19]) == (1, 1),  # not WAL: a -wal file beside it would be read too
        "reserved bytes": head[20] == 0,
        "page size": page in (4096, 8192, 16384, 32768, 65536) and pages * page == size,
        "schema format": struct.unpack(">I", head[44:48])[0] == 4,
        "auto-vacuum": struct.unpack(">I", head[52:56])[0] == 0 and struct.unpack(">I", head[64:68])[0] == 0,
        "text encoding": struct.unpack(">I", head[56:60])[0] == 1,
        "version": struct.unpack(">I", head[60:64])[0] == FORMAT,
        "application id": struct.unpack(">I", head[68:72])[0] == APPLICATION_ID,
    }
    wrong = [what for what, fine in fields.items() if not fine]
    if wrong:
        raise Refused(f"its header is wrong ({', '.join(wrong)})")


def check(path: Path, device_id: str, integrity: bool = False, max_entries: int = MAX_HELD,
          times: dict[str, float] | None = None) -> sqlite3.Connection:  # fmt: skip
    """Refuse the file unless it is exactly a catalogue of `device_id` that keeps every rule; returns a connection to it
    (writable: the receiver builds its indexes in it next), the file ATTACHed as `cat`."""
    clock = Clock(times)
    check_header(path, max_entries * 1200 + (1 << 24))
    conn = sqlite3.connect("file::memory:", uri=True, isolation_level=None)
    try:
        defend(conn)
        add_functions(conn)  # for the search index the receiver builds (called by its statements, never the schema)
        try:
            conn.execute("ATTACH ? AS cat", (f"file:{path}?mode=rw",))
            schema = conn.execute("SELECT type, name, tbl_name, sql FROM cat.sqlite_schema ORDER BY name").fetchall()
        except sqlite3.DatabaseError as exc:
            raise Refused(f"its schema cannot be read ({exc})") from None
        if schema != EXPECTED:
            extra = sorted({r[1] for r in schema} ^ {r[1] for r in EXPECTED}) or [
                a[1] for a, b in zip(schema, EXPECTED, strict=False) if a != b
            ]
            raise Refused(f"its schema is not a catalogue's ({', '.join(map(str, extra))[:200]})")
        conn.execute("PRAGMA cat.journal_mode = OFF")  # the receiver's own copy: refused or cut off, it is deleted
        conn.execute("PRAGMA cat.synchronous = OFF")  # (written once with one fsync when it is accepted: `receive`)
        clock.tick("open, header, schema")
        try:
            found = conn.execute(f"PRAGMA cat.{'integrity_check' if integrity else 'quick_check'}(5)").fetchall()
        except sqlite3.DatabaseError as exc:
            raise Refused(f"it is damaged ({exc})") from None
        if found != [("ok",)]:
            raise Refused(f"it is damaged or breaks a rule ({'; '.join(r[0] for r in found)[:300]})")
        clock.tick("integrity_check" if integrity else "quick_check")
        for table, rule in ROW_RULES.items():
            bad = conn.execute(f"SELECT rowid FROM cat.{table} WHERE NOT coalesce({rule}, 0) LIMIT 1").fetchone()
            if bad is not None:
                raise Refused(f"a row of its {table} breaks the catalogue's rules (row {bad[0]})")
        clock.tick("rules on each row")
        rows = conn.execute("SELECT format, device_id FROM cat.catalogue").fetchall()
        if rows != [(FORMAT, device_id)]:
            raise Refused("it is not the catalogue of the device that sent it")
        entries, locations = (conn.execute(f"SELECT count(*) FROM cat.{t}").fetchone()[0] for t in ("entries", "locations"))
        if entries > max_entries or locations > MAX_HELD_LOCATIONS:
            raise Refused(f"it holds {entries:,} entries in {locations:,} locations, more than this device keeps")
        for why, sql in RULES:
            bad = conn.execute(sql).fetchone()  # (main is an empty memory database: the names are cat's)
            if bad is not None:
                raise Refused(f"{why} (id {bad[0]})")
        clock.tick("rules across rows")
        for sql in RECEIVER_INDEXES:  # a UNIQUE one refuses two entries of one name in a folder
            try:
                conn.execute(sql)
            except sqlite3.IntegrityError:
                raise Refused(f"two entries share what must be unique ({sql.split(' ON ')[1]})") from None
        clock.tick("indexes (folder, path, content)")
    except BaseException:
        conn.close()
        raise
    return conn


class Clock:
    """CPU seconds of this process between ticks, into `times` by step."""

    def __init__(self, times: dict[str, float] | None) -> None:
        self.times, self.last = times, cpu_self()

    def tick(self, what: str) -> None:
        now = cpu_self()
        if self.times is not None:
            self.times[what] = self.times.get(what, 0.0) + now - self.last
        self.last = now


def receive(path: Path, device_id: str, times: dict[str, float], integrity: bool = False) -> None:
    """Everything the receiver does with a received catalogue file before it is attached to its library."""
    clock = Clock(times)
    conn = check(path, device_id, integrity, times=times)
    clock.last = cpu_self()
    try:
        for sql in SEARCH_INDEX:
            conn.execute(sql)
        clock.tick("search index (names, folders)")
        for sql in SORTED_INDEXES:
            conn.execute(sql)
        clock.tick("sorted-search indexes (size, mtime, name)")
    finally:
        conn.close()
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


# -- measuring -----------------------------------------------------------------------------------------------------


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_of(pid: int, children: bool = True) -> float:
    """CPU seconds of a running process (and of its children it has waited for)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(v) for v in fields[11:15 if children else 13])
    return ticks / os.sysconf("SC_CLK_TCK")


@contextmanager
def measured(into: dict[str, list[tuple[float, float]]], what: str, *pids: int) -> Iterator[None]:
    """CPU (this process, its children, and `pids` with theirs) and wall of the block, appended to into[what]."""
    before = cpu_self() + cpu_children() + sum(cpu_of(p) for p in pids)
    start = time.perf_counter()
    yield
    wall = time.perf_counter() - start
    time.sleep(0.3)  # a server reaps the child that served the connection
    into.setdefault(what, []).append((cpu_self() + cpu_children() + sum(cpu_of(p) for p in pids) - before, wall))


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def load() -> str:
    return bench_catalogue.load()


# -- 1-3: the first sync, three ways -------------------------------------------------------------------------------


async def bench_sync(tree: Path, rounds: int) -> None:
    from sdcore.library.context import LibraryContext
    from sdcore.library.library import Library, create_folder
    from sdcore.sync.catalogue import start_tracking

    runs: dict[str, list[tuple[float, float]]] = {}
    steps: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(dir=bench_catalogue.CORPUS) as tmp:
        work = Path(tmp)
        owner, _receiver, owner_id = await bench_catalogue.owner_and_receiver(work, tree)
        library = Library(Path(owner), LibraryContext.this_device_only(uuid.UUID(owner_id)))
        start_tracking(library)  # numbered once, when the library was first shared: not part of a first sync
        count = library.read().execute("SELECT count(*) FROM entries").fetchone()[0]
        library.close()
        database = Path(owner) / "database.db"
        print(f"owner: {count:,} entries, database.db {database.stat().st_size / 2**20:.1f} MiB  [{load()}]")
        sd, net, key = bench_net.start_serve(work)
        servers = [sd]
        try:
            sshd, port, known = bench_net.start_sshd(work, key.with_suffix(".pub").read_text().strip())
            servers.append(sshd)
            await net.fs_for("server").stat("/")  # connect once, like a long-lived core
            for r in range(rounds):
                with measured(runs, "1 scp database.db", sshd.pid):
                    bench_net.scp(key, port, known, f"HOST:{database}", str(work / "scp.db"))
                os.unlink(work / "scp.db")

                receiver = create_folder(work / f"today{r}", "receiver")
                Library(receiver, LibraryContext.this_device_only(uuid.uuid4())).close()
                with measured(runs, "2 today's first sync (no wire)"):
                    subprocess.run([sys.executable, bench_catalogue.__file__, "--sync-child", owner, str(receiver),
                                    owner_id], check=True, capture_output=True)  # fmt: skip
                shutil.rmtree(work / f"today{r}")

                with measured(runs, "3a backup API, whole database (scale)"):
                    backup_whole(database, work / "whole.db")
                os.unlink(work / "whole.db")
                made = work / "made.db"
                with measured(runs, "3a owner makes the catalogue file"):
                    make_catalogue(database, made, owner_id)
                change_some(database, 1000)
                with measured(runs, "3a'' owner refreshes its kept file (1,000 changes)"):
                    refresh_catalogue(database, made, owner_id)
                if r == 0:  # the kept file, refreshed, is what a new one made now would be
                    make_catalogue(database, work / "fresh.db", owner_id)
                    assert digest(made) == digest(work / "fresh.db"), "the refreshed catalogue file differs"
                    os.unlink(work / "fresh.db")
                with measured(runs, "3a' owner copies a catalogue file it keeps"):
                    backup_whole(made, work / "kept.db")
                os.unlink(work / "kept.db")
                got = work / "got.db"
                with measured(runs, "3b file over sd's SSH channel", sd.pid):
                    await bench_net.sd_copy_file(net, str(made), str(got), atomic=False)
                times: dict[str, float] = {}
                with measured(runs, "3c receiver: check, every index, search index"):
                    receive(got, owner_id, times)
                for what, took in times.items():
                    steps.setdefault(what, []).append(took)
                sizes = made.stat().st_size, got.stat().st_size
                for p in (made, got):
                    p.unlink()
                print(f"round {r + 1}: " + ", ".join(f"{k.split(' ')[0]} {v[-1][0]:.2f}" for k, v in runs.items())
                      + f" s CPU  [{load()}]")  # fmt: skip
        finally:
            await net.close()
            for proc in servers:
                proc.terminate()
                proc.wait()
    report(runs, steps, sizes, rounds)


def report(runs: dict[str, list[tuple[float, float]]], steps: dict[str, list[float]], sizes: tuple[int, int],
           rounds: int) -> None:  # fmt: skip
    scp_cpu, scp_wall = median(runs["1 scp database.db"])
    print(f"\ncatalogue file {sizes[0] / 2**20:.1f} MiB (with the receiver's indexes and search index {sizes[1] / 2**20:.1f}"
          f" MiB); median of {rounds}, CPU of every process taking part, wall")  # fmt: skip
    print(f"{'step':48} {'CPU s':>7} {'x scp':>6} {'wall s':>7} {'x scp':>6}")
    for what, taken in runs.items():
        c, w = median(taken)
        print(f"{what:48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}")
    print("  the receiver's steps (CPU s, median):")
    for what, taken in steps.items():
        print(f"    {what:44} {statistics.median(taken):7.3f}")
    search = statistics.median(steps["search index (names, folders)"])
    sort = statistics.median(steps["sorted-search indexes (size, mtime, name)"])
    receiver = median(runs["3c receiver: check, every index, search index"])
    for owner in ("3a owner makes the catalogue file", "3a' owner copies a catalogue file it keeps"):
        parts = [median(runs[owner]), median(runs["3b file over sd's SSH channel"]), receiver]
        print(f"file design, the owner {'makes the file' if owner.startswith('3a ') else 'keeps the file'}:")
        for name, minus in (("  all, sorted searches ready", 0.0), ("  searchable (sorted-search indexes after)", sort),
                            ("  listable (search index and those after)", sort + search)):  # fmt: skip
            c = sum(p[0] for p in parts) - minus
            w = sum(p[1] for p in parts) - minus
            verdict = "meets" if c <= 2 * scp_cpu else "misses"
            print(f"{name:48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}  {verdict} 2x scp (CPU)")
    c, w = median(runs["2 today's first sync (no wire)"])
    print(f"{'today (for comparison, no SSH)':48} {c:7.2f} {c / scp_cpu:6.2f} {w:7.2f} {w / scp_wall:6.2f}")


# -- 3d: reading across attached catalogues ------------------------------------------------------------------------


def bench_read(keep: Path, per_device: int, rounds: int) -> None:
    """Search (bench_catalogue part 3's queries) over three devices' 200,000 entries each: in one database (today) vs
    in three databases, each searched and the hits merged (the file design: one search index per catalogue)."""
    from sdcore.library.context import LibraryContext
    from sdcore.library.library import Library
    from sdcore.search import Query, run

    libraries = []
    for name, devices in (("one", 3), ("dev0", 1), ("dev1", 1), ("dev2", 1)):
        where = keep / name
        if not (where / "three.sdlibrary").exists():
            where.mkdir(parents=True, exist_ok=True)
            bench_catalogue.make_three(where, per_device * devices, devices).close()
        libraries.append(Library(where / "three.sdlibrary", LibraryContext.this_device_only(uuid.uuid4())))
    one, split = libraries[0], libraries[1:]
    words = bench_catalogue.WORDS
    queries = [Query(w) for w in words] + [Query(f"{a} {b}") for a, b in zip(words, words[1:], strict=False)] + [
        Query("", ext=("pdf",), limit=100), Query("sierra", sort="size"), Query("tango_golf"), Query("*.md", limit=50),
    ]  # fmt: skip
    for q in queries[:3]:
        run(one, q)
        for lib in split:
            run(lib, q)

    def merged(q: Query) -> None:  # each database's best `limit`, merged: what a search across attached files returns
        hits = [h for lib in split for h in run(lib, q)]
        hits.sort(key=lambda h: (-h.size, h.name) if q.sort == "size" else (h.name,))
        del hits[q.limit :]

    cpu: dict[str, list[list[float]]] = {"one database": [], "three databases": []}
    wall: dict[str, list[list[float]]] = {"one database": [], "three databases": []}
    worst: dict[str, dict[str, float]] = {"one database": {}, "three databases": {}}
    for _ in range(rounds):
        for what, search in (("one database", lambda q: run(one, q)), ("three databases", merged)):
            took, waited = [], []
            for q in queries:
                start, began = time.perf_counter(), time.process_time()
                search(q)
                took.append((time.process_time() - began) * 1000)
                waited.append((time.perf_counter() - start) * 1000)
                key = f"{q.text!r} ext={q.ext} sort={q.sort}"
                worst[what][key] = max(worst[what].get(key, 0.0), took[-1])
            cpu[what].append(sorted(took))
            wall[what].append(sorted(waited))
    total = one.read().execute("SELECT count(*) FROM entries").fetchone()[0]
    print(f"\nsearch over {total:,} entries of three devices ({len(queries)} queries, median of {rounds} rounds,"
          f" CPU and wall)  [{load()}]:")  # fmt: skip
    for what in cpu:
        (c50, c99), (w50, w99) = (
            (statistics.median(statistics.median(t) for t in per), statistics.median(t[int(len(t) * 0.99) - 1] for t in per))
            for per in (cpu[what], wall[what])
        )
        slow = ", ".join(f"{k} {v:.0f}" for k, v in sorted(worst[what].items(), key=lambda x: -x[1])[:3])
        print(f"  {what:16} CPU p50 {c50:6.1f} ms p99 {c99:6.1f} ms; wall p50 {w50:6.1f} ms p99 {w99:6.1f} ms;"
              f" slowest (CPU ms): {slow}")  # fmt: skip

    # listing one folder: the biggest folder of a device, from one database vs from an ATTACHed catalogue file
    folder = one.read().execute("SELECT parent_id FROM entries GROUP BY parent_id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    sql = ("SELECT id, name, kind, size, mtime, hidden FROM {s}entries WHERE parent_id = ? ORDER BY name"
           " COLLATE NOCASE")  # fmt: skip
    conn = split[0].read()
    made = keep / "dev0.catalogue.db"
    if not made.exists():
        with tempfile.TemporaryDirectory(dir=keep) as tmp:
            device = conn.execute("SELECT device_id FROM locations LIMIT 1").fetchone()[0]
            staged = Path(tmp) / "c.db"
            make_catalogue(split[0].folder / "database.db", staged, device)
            check(staged, device).close()
            staged.rename(made)
    reader = one.read()  # the library's own read connection (its cache), with the catalogue file ATTACHed to it
    start = time.perf_counter()
    reader.execute("ATTACH ? AS cat", (f"file:{made}?mode=ro",))
    reader.execute("SELECT count(*) FROM cat.locations").fetchone()
    attach = (time.perf_counter() - start) * 1000
    own_folder = reader.execute("SELECT parent_id FROM cat.entries GROUP BY parent_id ORDER BY count(*) DESC LIMIT 1").fetchone()[0]
    lists: dict[str, list[float]] = {"one database": [], "attached catalogue": []}
    for _ in range(max(rounds, 9)):
        for what, statement, arg in (("one database", sql.format(s=""), folder), ("attached catalogue", sql.format(s="cat."), own_folder)):
            began = time.process_time()
            rows = reader.execute(statement, (arg,)).fetchall()
            lists[what].append((time.process_time() - began) * 1000)
    print(f"listing the biggest folder ({len(rows)} entries, CPU, median of {len(lists['one database'])}): " + ", ".join(
        f"{what} {statistics.median(t):.2f} ms" for what, t in lists.items()) + f"; ATTACH + first read {attach:.1f} ms")  # fmt: skip
    reader.execute("DETACH cat")
    for lib in libraries:
        lib.close()


# -- 4: crafted files ----------------------------------------------------------------------------------------------

DEVICE = "00000000-0000-4000-8000-000000000001"


def tiny(path: Path, mutate: Callable[[sqlite3.Connection], None] | None = None, loose: bool = False) -> Path:
    """A small valid catalogue (one location, a folder, files), then `mutate`d as an attacker would: `loose` makes the
    tables without STRICT and CHECKs and then writes the exact schema's text over theirs (writable_schema)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {FORMAT}")
    conn.execute("PRAGMA journal_mode = DELETE")
    for sql in SCHEMA:
        conn.execute(_loosened(sql) if loose else sql)
    conn.execute("INSERT INTO catalogue VALUES (?, ?, ?, ?)", (FORMAT, DEVICE, "owner", 10))
    conn.execute("INSERT INTO locations VALUES (1, '/home/me', 'home', 'content', 'indexed', 1.7e9, 1.7e9, 1, NULL, NULL)")
    conn.execute("INSERT INTO entries VALUES (1, 1, NULL, '', '', 'dir', NULL, 30, 3, 1.7e9, 0, NULL)")
    conn.execute("INSERT INTO entries VALUES (2, 1, 1, 'photos', '', 'dir', NULL, 20, 2, 1.7e9, 0, NULL)")
    conn.execute("INSERT INTO entries VALUES (3, 1, 2, 'a.jpg', 'jpg', 'file', 'image', 10, 0, 1.7e9, 0, 'ab12')")
    conn.execute("INSERT INTO entries VALUES (4, 1, 2, 'b.jpg', 'jpg', 'file', 'image', 10, 0, 1.7e9, 0, 'cd34')")
    conn.execute("INSERT INTO entries VALUES (5, 1, 1, 'n.txt', 'txt', 'file', 'text', 10, 0, 1.7e9, 0, NULL)")
    conn.execute("INSERT INTO directory_paths VALUES (1, 1, ''), (2, 1, 'photos')")
    if mutate is not None:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.create_function("extension_of", 1, lambda s: s, deterministic=True)
        mutate(conn)
    if loose:
        conn.execute("PRAGMA writable_schema = ON")
        for sql in SCHEMA:
            name = sql.split()[2]
            conn.execute("UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?", (sql, name))
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute(f"PRAGMA schema_version = {version + 1}")
        conn.execute("PRAGMA writable_schema = OFF")
    conn.close()
    return path


def _loosened(sql: str) -> str:
    out = sql.removesuffix(" STRICT")
    for kind in ("INTEGER", "REAL", "TEXT"):
        out = out.replace(f" {kind} ", " ")
    return out.replace(" PRIMARY KEY", " INTEGER PRIMARY KEY")  # (still the rowid)


def _write(at: int, data: bytes) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(data)

    return damage


def _sql(*statements: str) -> Callable[[sqlite3.Connection], None]:
    return lambda conn: [conn.execute(s) for s in statements] and None


CRAFTED: list[tuple[str, Callable[[sqlite3.Connection], None] | None, bool, Callable[[Path], None] | None]] = [
    ("a trigger", _sql("CREATE TRIGGER t AFTER INSERT ON entries BEGIN SELECT 1; END"), False, None),
    ("a view", _sql("CREATE VIEW v AS SELECT * FROM entries"), False, None),
    ("an extra table", _sql("CREATE TABLE x (a)"), False, None),
    ("an index over a function", _sql("CREATE INDEX x ON entries (extension_of(name))"), False, None),
    ("an index of its own", _sql("CREATE INDEX x ON entries (name)"), False, None),
    ("a table's text changed (not STRICT)", _sql("PRAGMA writable_schema = ON",
     "UPDATE sqlite_schema SET sql = replace(sql, ') STRICT', ')') WHERE name = 'entries'",
     "PRAGMA writable_schema = OFF"), False, None),
    ("a column added", _sql("ALTER TABLE entries ADD COLUMN x TEXT"), False, None),
    ("a malformed page (a cell pointer past the page)", None, False, _write(4096 * 3 + 8 + 2 * 0, b"\xff\xf0")),
    ("a page overwritten with garbage", None, False, _write(4096 * 3 + 200, os.urandom(3800))),
    ("truncated", None, False, lambda p: os.truncate(p, p.stat().st_size - 4096)),
    ("UTF-16 text", None, False, _write(56, struct.pack(">I", 2))),
    ("WAL mode in its header", None, False, _write(18, b"\x02\x02")),
    ("reserved bytes (a checksum VFS)", None, False, _write(20, b"\x08")),
    ("another application's file", None, False, _write(68, struct.pack(">I", 0))),
    ("another device's catalogue", _sql("UPDATE catalogue SET device_id = '00000000-0000-4000-8000-000000000002'"), False, None),
    ("two rows of catalogue", _sql("INSERT INTO catalogue SELECT * FROM catalogue"), False, None),
    ("an unknown kind", _sql("UPDATE entries SET kind = 'bogus' WHERE id = 5"), False, None),
    ("an unknown object kind", _sql("UPDATE entries SET object_kind = 'malware' WHERE id = 5"), False, None),
    ("a negative size", _sql("UPDATE entries SET size = -1 WHERE id = 5"), False, None),
    ("a size past an exabyte", _sql(f"UPDATE entries SET size = {MAX_SIZE + 1} WHERE id = 5"), False, None),
    ("a time 100 million years away", _sql("UPDATE entries SET mtime = 3e15 WHERE id = 5"), False, None),
    ("a size stored as text", _sql("UPDATE entries SET size = 'ten' WHERE id = 5"), True, None),
    ("a name stored as a number", _sql("UPDATE entries SET name = 42 WHERE id = 5"), True, None),
    ("a name stored as a blob", _sql("UPDATE entries SET name = x'41' WHERE id = 5"), True, None),
    ("a name with a slash", _sql("UPDATE entries SET name = 'a/b' WHERE id = 5"), False, None),
    ("a name '..'", _sql("UPDATE entries SET name = '..' WHERE id = 5"), False, None),
    ("a name with a NUL", _sql("UPDATE entries SET name = 'a' || char(0) || 'b' WHERE id = 5"), False, None),
    ("an empty name that is not a root", _sql("UPDATE entries SET name = '' WHERE id = 5"), False, None),
    ("a name too long", _sql(f"UPDATE entries SET name = printf('%.{MAX_NAME + 1}c', 'x') WHERE id = 5"), False, None),
    ("a cas_id not hex", _sql("UPDATE entries SET cas_id = 'XYZ' WHERE id = 3"), False, None),
    ("a cas_id too long", _sql("UPDATE entries SET cas_id = printf('%.65c', 'a') WHERE id = 3"), False, None),
    ("a hidden flag of 2", _sql("UPDATE entries SET hidden = 2 WHERE id = 5"), False, None),
    ("an id of 0", _sql("UPDATE entries SET id = 0 WHERE id = 5"), False, None),
    ("an entry its own folder", _sql("UPDATE entries SET parent_id = 5 WHERE id = 5"), False, None),
    ("a folder that is a file", _sql("UPDATE entries SET parent_id = 5 WHERE id = 3"), False, None),
    ("a folder that is missing", _sql("UPDATE entries SET parent_id = 99 WHERE id = 3"), False, None),
    ("a folder in another location", _sql(
        "INSERT INTO locations VALUES (2, '/srv', 'srv', 'content', 'indexed', 1.7e9, NULL, NULL, NULL, NULL)",
        "UPDATE entries SET location_id = 2 WHERE id = 3"), False, None),
    ("an entry of no location", _sql("UPDATE entries SET location_id = 7 WHERE id = 5"), False, None),
    ("two entries of one name in a folder", _sql("UPDATE entries SET name = 'a.jpg' WHERE id = 4"), False, None),
    ("folders in a loop", _sql("UPDATE entries SET parent_id = 6 WHERE id = 2",
                               "INSERT INTO entries VALUES (6, 1, 2, 'loop', '', 'dir', NULL, 0, 0, NULL, 0, NULL)",
                               "INSERT INTO directory_paths VALUES (6, 1, 'photos/loop')"), False, None),
    ("a folder without a path", _sql("DELETE FROM directory_paths WHERE entry_id = 2"), False, None),
    ("a folder's path that lies", _sql("UPDATE directory_paths SET path = 'etc' WHERE entry_id = 2"), False, None),
    ("a path for a file", _sql("INSERT INTO directory_paths VALUES (5, 1, 'n.txt')"), False, None),
    ("a location path that is relative", _sql("UPDATE locations SET path = 'home/me'"), False, None),
    ("a location path with '..'", _sql("UPDATE locations SET path = '/home/../etc'"), False, None),
    ("an unknown mode", _sql("UPDATE locations SET mode = 'turbo'"), False, None),
    ("a root that is not its root", _sql("UPDATE locations SET root_id = 2"), False, None),
    ("a disk id of another shape", _sql("UPDATE locations SET volume_id = 'uuid:A B', volume_path = ''"), False, None),
    ("a folder inside a disk with '..'", _sql("UPDATE locations SET volume_id = 'uuid:ab', volume_path = '../x'"), False, None),
    ("more entries than this device keeps (4 here)", None, False, None),
]  # fmt: skip


def self_check() -> None:
    """Every crafted file is refused, and the file they were made from is accepted."""
    with tempfile.TemporaryDirectory() as tmp:
        check(tiny(Path(tmp) / "fine.db"), DEVICE).close()
        check(tiny(Path(tmp) / "fine-loose.db", loose=True), DEVICE).close()
        failures = []
        for i, (what, mutate, loose, damage) in enumerate(CRAFTED):
            path = tiny(Path(tmp) / f"{i}.db", mutate, loose)
            if damage is not None:
                damage(path)
            try:
                check(path, DEVICE, max_entries=4 if what.startswith("more entries") else MAX_HELD).close()
            except Refused as exc:
                print(f"  refused {what}: {exc}")
            else:
                failures.append(what)
                print(f"  ACCEPTED {what}")
        if failures:
            sys.exit(f"accepted {len(failures)} crafted files: {', '.join(failures)}")
        print(f"all {len(CRAFTED)} crafted files refused; the file they were made from accepted")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", choices=("sync", "read", "refusals"))
    parser.add_argument("--read-keep", type=Path, default=bench_catalogue.CORPUS / "catalogue-file-read",
                        help="where the read part's libraries are made once and reused")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("SD_DATA_DIR", str(bench_catalogue.CORPUS / "unused-data"))
    if args.only in (None, "refusals"):
        self_check()
    if args.only in (None, "sync"):
        tree = bench_catalogue.corpus(f"catalogue-{args.files}", args.files, args.files // 20)
        asyncio.run(bench_sync(tree, args.rounds))
    if args.only in (None, "read"):
        bench_read(args.read_keep, args.files, args.rounds)


if __name__ == "__main__":
    main()
