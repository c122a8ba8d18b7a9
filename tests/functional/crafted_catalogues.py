"""Catalogue files as an attacker would craft them (sdcore.sync.catalogue_file), each with the rule that must refuse
it: for test_catalogue_file.py and the self-check of tests/bench/bench_catalogue_file.py."""

from __future__ import annotations

import os
import random
import sqlite3
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sdcore.library.schema import ENTRY_KINDS, OBJECT_KINDS
from sdcore.sync.catalogue import MAX_NAME, MAX_SIZE
from sdcore.sync.catalogue_file import APPLICATION_ID, FORMAT, SCHEMA, Limits

DEVICE = "00000000-0000-4000-8000-000000000001"
"""The device whose catalogue `tiny` makes."""
FILE, DIR, SYMLINK = (ENTRY_KINDS.index(k) for k in ("file", "dir", "symlink"))
IMAGE, TEXT = (OBJECT_KINDS.index(k) for k in ("image", "text"))


def tiny(path: Path, mutate: Callable[[sqlite3.Connection], None] | None = None, loose: bool = False) -> Path:
    """A small valid catalogue (one location, a folder, files), then `mutate`d as an attacker would: `loose` makes the
    tables without STRICT and then writes the exact schema's text over theirs (writable_schema)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {FORMAT}")
    conn.execute("PRAGMA journal_mode = DELETE")
    for sql in SCHEMA:
        conn.execute(_loosened(sql) if loose else sql)
    conn.execute("INSERT INTO catalogue VALUES (?, ?, ?, ?)", (FORMAT, DEVICE, "owner", 10))
    conn.execute("INSERT INTO locations VALUES (1, '/home/me', 'home', 'content', 'indexed', 1.7e9, 1.7e9, 1, NULL, NULL)")
    conn.execute(f"INSERT INTO entries VALUES (1, 1, NULL, '', {DIR}, NULL, 30, 3, 1.7e9, 0, NULL)")
    conn.execute(f"INSERT INTO entries VALUES (2, 1, 1, 'photos', {DIR}, NULL, 20, 2, 1.7e9, 0, NULL)")
    conn.execute(f"INSERT INTO entries VALUES (3, 1, 2, 'a.jpg', {FILE}, {IMAGE}, 10, 0, 1.7e9, 0, 4660)")
    conn.execute(f"INSERT INTO entries VALUES (4, 1, 2, 'b.JPG', {FILE}, {IMAGE}, 10, 0, 1.7e9, 0, -5)")
    conn.execute(f"INSERT INTO entries VALUES (5, 1, 1, 'n.txt', {FILE}, {TEXT}, 10, 0, 1.7e9, 0, NULL)")
    conn.execute("INSERT INTO directory_paths VALUES (1, 1, ''), (2, 1, 'photos')")
    if mutate is not None:
        conn.create_function("is_utf8", 1, lambda s: s, deterministic=True)  # (as `check` has it)
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
    def mutate(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return mutate


@dataclass(frozen=True)
class Crafted:
    """A crafted file: `tiny`'s, `mutate`d (through SQLite), then `damage`d (its bytes), checked under `limits`."""

    what: str
    rule: str
    """What the refusal must say."""
    mutate: Callable[[sqlite3.Connection], None] | None = None
    loose: bool = False
    damage: Callable[[Path], None] | None = None
    limits: Limits = Limits()

    def make(self, path: Path) -> Path:
        tiny(path, self.mutate, self.loose)
        if self.damage is not None:
            self.damage(path)
        return path


SCHEMA_RULE = "its schema is not a catalogue's"
NAME_RULE = "entry 5: its name is not a file name"
ORPHAN = f"INSERT INTO entries VALUES (6, 1, NULL, 'old', {DIR}, NULL, 0, 0, NULL, 0, NULL)"
TOO_BIG = "string or blob too big"
CRAFTED = [
    Crafted("a trigger", SCHEMA_RULE, _sql("CREATE TRIGGER t AFTER INSERT ON entries BEGIN SELECT 1; END")),
    Crafted("a view", SCHEMA_RULE, _sql("CREATE VIEW v AS SELECT * FROM entries")),
    Crafted("an extra table", SCHEMA_RULE, _sql("CREATE TABLE x (a)")),
    Crafted("an index over a function", "its schema cannot be read (malformed database schema (x) - unsafe use", _sql("CREATE INDEX x ON entries (is_utf8(name))")),
    Crafted("an index named to drive the terminal", "its schema is not a catalogue's (x\\n\\x1b[2J)",
            _sql("CREATE INDEX \"x\n\x1b[2J\" ON entries (name)")),
    Crafted("an index of its own", SCHEMA_RULE, _sql("CREATE INDEX x ON entries (name)")),
    Crafted("a table's text changed (not STRICT)", SCHEMA_RULE, _sql(
        "PRAGMA writable_schema = ON", "UPDATE sqlite_schema SET sql = replace(sql, ') STRICT', ')') WHERE name = 'entries'",
        "PRAGMA writable_schema = OFF")),
    Crafted("a column added", SCHEMA_RULE, _sql("ALTER TABLE entries ADD COLUMN x TEXT")),
    Crafted("a malformed page (a cell pointer past the page)", "damaged", damage=_write(4096 * 3 + 8, b"\xff\xf0")),
    Crafted("a page overwritten with garbage", "damaged", damage=_write(4096 * 3 + 200, random.Random(16).randbytes(3800))),
    Crafted("truncated", "header is wrong (page size)", damage=lambda p: os.truncate(p, p.stat().st_size - 4096)),
    Crafted("UTF-16 text", "header is wrong (text encoding)", damage=_write(56, struct.pack(">I", 2))),
    Crafted("WAL mode in its header", "header is wrong (file format)", damage=_write(18, b"\x02\x02")),
    Crafted("reserved bytes (a checksum VFS)", "header is wrong (reserved bytes)", damage=_write(20, b"\x08")),
    Crafted("another application's file", "header is wrong (application id)", damage=_write(68, struct.pack(">I", 0))),
    Crafted("another version", "header is wrong (version)", damage=_write(60, struct.pack(">I", FORMAT + 1))),
    Crafted("a journal beside it (rolled back into it on open)", "a journal file lies beside it",
            damage=lambda p: Path(f"{p}-journal").write_bytes(b"\0" * 512)),
    Crafted("not a database", "not an SQLite database", damage=_write(0, b"SQLite format 4")),
    Crafted("another device's catalogue", "another device's catalogue",
            _sql("UPDATE catalogue SET device_id = '00000000-0000-4000-8000-000000000002'")),
    Crafted("two rows of catalogue", "2 catalogue rows", _sql("INSERT INTO catalogue SELECT * FROM catalogue")),
    Crafted("another format in its row", "its format is not", _sql(f"UPDATE catalogue SET format = {FORMAT + 1}")),
    Crafted("a device name too long", "its device name", _sql("UPDATE catalogue SET device_name = printf('%.201c', 'x')")),
    Crafted("a device name not UTF-8", "its device name", _sql("UPDATE catalogue SET device_name = CAST(x'61ff' AS TEXT)")),
    Crafted("an unknown kind", "entry 5: its kind is unknown", _sql(f"UPDATE entries SET kind_code = {len(ENTRY_KINDS)} WHERE id = 5")),
    Crafted("a kind of a negative place", "entry 5: its kind is unknown", _sql("UPDATE entries SET kind_code = -1 WHERE id = 5")),
    Crafted("a kind stored as its name", "not of its column's type", _sql("UPDATE entries SET kind_code = 'file' WHERE id = 5"), True),
    Crafted("an unknown object kind", "entry 5: its object kind is unknown",
            _sql(f"UPDATE entries SET object_code = {len(OBJECT_KINDS)} WHERE id = 5")),
    Crafted("a negative size", "entry 5: its size is not a size", _sql("UPDATE entries SET size = -1 WHERE id = 5")),
    Crafted("a size past an exabyte", "entry 5: its size is not a size",
            _sql(f"UPDATE entries SET size = {MAX_SIZE + 1} WHERE id = 5")),
    Crafted("a negative file count", "entry 2: its file count", _sql("UPDATE entries SET files = -1 WHERE id = 2")),
    Crafted("a time 100 million years away", "entry 5: its modification time is not a time",
            _sql("UPDATE entries SET mtime = 3e15 WHERE id = 5")),
    Crafted("a size stored as text", "not of its column's type", _sql("UPDATE entries SET size = 'ten' WHERE id = 5"), True),
    Crafted("a name stored as a number", "not of its column's type", _sql("UPDATE entries SET name = 42 WHERE id = 5"), True),
    Crafted("a name stored as a blob", "not of its column's type", _sql("UPDATE entries SET name = x'41' WHERE id = 5"), True),
    Crafted("a name with a slash", NAME_RULE, _sql("UPDATE entries SET name = 'a/b.txt' WHERE id = 5")),
    Crafted("a name '..'", NAME_RULE, _sql("UPDATE entries SET name = '..' WHERE id = 5")),
    Crafted("a name '.'", NAME_RULE, _sql("UPDATE entries SET name = '.' WHERE id = 5")),
    Crafted("a name with a NUL", NAME_RULE, _sql("UPDATE entries SET name = 'a' || char(0) || 'b.txt' WHERE id = 5")),
    Crafted("a name with a NUL after 500 letters", NAME_RULE,
            _sql("UPDATE entries SET name = printf('%.500c', 'a') || char(0) || 'b.txt' WHERE id = 5")),
    Crafted("a name not UTF-8 (Python cannot read it back)", NAME_RULE, _sql(
        f"UPDATE entries SET kind_code = {SYMLINK}, object_code = NULL, name = CAST(x'61ff' AS TEXT) WHERE id = 5")),
    Crafted("a name not UTF-8 inside 1,000 letters", NAME_RULE, _sql(
        "UPDATE entries SET name = CAST(printf('%.500c', 'a') || x'ff' || printf('%.500c', 'b') AS TEXT) WHERE id = 5")),
    Crafted("a name ending in half a character", NAME_RULE,
            _sql("UPDATE entries SET name = CAST(CAST('n.tx' AS BLOB) || x'c3' AS TEXT) WHERE id = 5")),
    Crafted("a name of an encoded surrogate (not UTF-8)", NAME_RULE,
            _sql("UPDATE entries SET name = CAST(x'6eeda080' AS TEXT) WHERE id = 5")),
    Crafted("an empty name that is not a root", NAME_RULE, _sql("UPDATE entries SET name = '' WHERE id = 5")),
    Crafted("a name too long", NAME_RULE, _sql(f"UPDATE entries SET name = printf('%.{MAX_NAME}c', 'x') || '.txt' WHERE id = 5")),
    Crafted("a name of 2 MiB (past what SQLite reads from a peer)", TOO_BIG,
            _sql("UPDATE entries SET name = printf('%.2097152c', 'x') || '.txt' WHERE id = 5")),
    Crafted("a cas_id as its text", "not of its column's type", _sql("UPDATE entries SET cas_number = 'ab12' WHERE id = 3"), True),
    Crafted("a cas_id as bytes", "not of its column's type", _sql("UPDATE entries SET cas_number = x'ab12' WHERE id = 3"), True),
    Crafted("a cas_id as a real", "not of its column's type", _sql("UPDATE entries SET cas_number = 0.5 WHERE id = 3"), True),
    Crafted("a name with a slash at the largest id", "entry 9223372036854775807: its name is not a file name", _sql(
        f"INSERT INTO entries VALUES (1 << 40, 1, 1, 'far', {FILE}, NULL, 0, 0, NULL, 0, NULL)",
        f"INSERT INTO entries VALUES (9223372036854775807, 1, 1, 'a/b', {FILE}, NULL, 0, 0, NULL, 0, NULL)")),
    Crafted("a name too long after names that joined take more than SQLite reads of one value", "entry 1300: its name", _sql(
        f"WITH n(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM n WHERE i < 1300) INSERT INTO entries SELECT i, 1, 1,"
        f" printf('%.{MAX_NAME - 10}c', 'x') || i || CASE i WHEN 1300 THEN printf('%.20c', 'x') ELSE '' END, {FILE},"
        " NULL, 0, 0, NULL, 0, NULL FROM n")),
    Crafted("a name that is '/'", NAME_RULE, _sql("UPDATE entries SET name = '/' WHERE id = 5")),
    Crafted("a root named '/'", "entry 1: its name is not a file name", _sql("UPDATE entries SET name = '/' WHERE id = 1")),
    Crafted("a character split across the '/' the scan joins names with", NAME_RULE, _sql(
        "UPDATE entries SET name = CAST(CAST('n.tx' AS BLOB) || x'c3' AS TEXT) WHERE id = 5",
        f"INSERT INTO entries VALUES (6, 1, 1, CAST(x'a9' || CAST('t.txt' AS BLOB) AS TEXT), {FILE}, NULL, 0, 0, NULL, 0, NULL)")),
    Crafted("a name with a slash in the entry one past a chunk of 20,000", "entry 20001: its name is not a file name", _sql(
        "WITH n(i) AS (SELECT 6 UNION ALL SELECT i + 1 FROM n WHERE i < 20001) INSERT INTO entries SELECT i, 1, 1,"
        f" CASE i WHEN 20001 THEN 'a/b' ELSE 'f' || i END, {FILE}, NULL, 0, 0, NULL, 0, NULL FROM n")),
    Crafted("two roots of one location", "must be unique (directory_paths (location_id, path))", _sql(
        f"INSERT INTO entries VALUES (6, 1, NULL, '', {DIR}, NULL, 0, 0, NULL, 0, NULL)",
        "INSERT INTO directory_paths VALUES (6, 1, '')")),
    Crafted("a detached folder's path that is another folder's", "must be unique (directory_paths (location_id, path))",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, 'photos')")),
    Crafted("a hidden flag of 2", "entry 5: its hidden flag is not a flag", _sql("UPDATE entries SET hidden = 2 WHERE id = 5")),
    Crafted("an id of 0", "entry 0: its id is not an id", _sql("UPDATE entries SET id = 0 WHERE id = 5")),
    Crafted("a negative id", "entry -5: its id is not an id", _sql("UPDATE entries SET id = -5 WHERE id = 5")),
    Crafted("an entry its own folder", "folder is missing, not a folder, in another location, or itself (id 5)",
            _sql("UPDATE entries SET parent_id = 5 WHERE id = 5")),
    Crafted("a folder its own folder", "folder is missing, not a folder, in another location, or itself (id 2)",
            _sql("UPDATE entries SET parent_id = 2 WHERE id = 2")),
    Crafted("a folder of id 0", "folder is missing", _sql("UPDATE entries SET parent_id = 0 WHERE id = 5")),
    Crafted("a location of id 0 on an entry", "in a location the catalogue lacks (id 5)",
            _sql("UPDATE entries SET location_id = 0 WHERE id = 5")),
    Crafted("a folder that is a file", "folder is missing, not a folder", _sql("UPDATE entries SET parent_id = 5 WHERE id = 3")),
    Crafted("a folder that is missing", "folder is missing, not a folder", _sql("UPDATE entries SET parent_id = 99 WHERE id = 3")),
    Crafted("a folder in another location", "folder is missing, not a folder", _sql(
        "INSERT INTO locations VALUES (2, '/srv', 'srv', 'content', 'indexed', 1.7e9, NULL, NULL, NULL, NULL)",
        "UPDATE entries SET location_id = 2 WHERE id = 3")),
    Crafted("an entry of no location", "in a location the catalogue lacks", _sql("UPDATE entries SET location_id = 7 WHERE id = 5")),
    Crafted("an entry of no location and no folder", "in a location the catalogue lacks",
            _sql(ORPHAN.replace("(6, 1,", "(6, 7,"), "INSERT INTO directory_paths VALUES (6, 7, 'was/here')")),
    Crafted("two entries of one name in a folder", "must be unique (entries (parent_id, name))",
            _sql("UPDATE entries SET name = 'a.jpg' WHERE id = 4")),
    Crafted("two locations of one path", "must be unique (locations (path))", _sql(
        "INSERT INTO locations VALUES (2, '/home/me', 'again', 'content', 'indexed', 1.7e9, NULL, NULL, NULL, NULL)")),
    Crafted("folders in a loop", "a folder's path is not its folder's path", _sql(
        "UPDATE entries SET parent_id = 6 WHERE id = 2",
        f"INSERT INTO entries VALUES (6, 1, 2, 'loop', {DIR}, NULL, 0, 0, NULL, 0, NULL)",
        "INSERT INTO directory_paths VALUES (6, 1, 'photos/loop')")),
    Crafted("a folder without a path", "a folder has no path", _sql("DELETE FROM directory_paths WHERE entry_id = 2")),
    Crafted("a folder's path that lies", "a folder's path is not its folder's path",
            _sql("UPDATE directory_paths SET path = 'etc' WHERE entry_id = 2")),
    Crafted("a detached folder's path that leaves its location", "a folder's path is not its folder's path",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, 'a/../../etc')")),
    Crafted("a detached folder's path that is absolute", "a folder's path is not its folder's path",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, '/etc')")),
    Crafted("a detached folder's path not UTF-8", "a folder's path is not its folder's path",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, CAST(x'61ff' AS TEXT))")),
    Crafted("a detached folder's path with a NUL", "a folder's path is not its folder's path",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, 'a' || char(0) || 'b')")),
    Crafted("a folder's path not UTF-8", "a folder's path is not its folder's path",
            _sql("UPDATE directory_paths SET path = CAST(CAST('photos' AS BLOB) || x'ff' AS TEXT) WHERE entry_id = 2")),
    Crafted("a folder's path with a NUL after it", "a folder's path is not its folder's path",
            _sql("UPDATE directory_paths SET path = 'photos' || char(0) || 'x' WHERE entry_id = 2")),
    Crafted("a path too long", "the path of folder 6: its path is not a folder's path",
            _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, printf('%.4097c', 'a'))")),
    Crafted("a path for a file", "a path is of no folder", _sql("INSERT INTO directory_paths VALUES (5, 1, 'n.txt')")),
    Crafted("a path of no entry", "a path is of no entry", _sql("INSERT INTO directory_paths VALUES (9, 1, 'gone')")),
    Crafted("a location path that is relative", "location 1: its path is not an absolute path",
            _sql("UPDATE locations SET path = 'home/me'")),
    Crafted("a location path with '..'", "location 1: its path is not an absolute path",
            _sql("UPDATE locations SET path = '/home/../etc'")),
    Crafted("a location path not UTF-8", "location 1: its path is not an absolute path",
            _sql("UPDATE locations SET path = CAST(x'2f68ff' AS TEXT)")),
    Crafted("an unknown mode", "location 1: its mode is unknown", _sql("UPDATE locations SET mode = 'turbo'")),
    Crafted("an unknown scan state", "location 1: its scan state is unknown", _sql("UPDATE locations SET scan_state = 'x'")),
    Crafted("a root that is not its root", "a location's root is not a root of it", _sql("UPDATE locations SET root_id = 2")),
    Crafted("a disk id of another shape", "location 1: its disk", _sql("UPDATE locations SET volume_id = 'uuid:A B', volume_path = ''")),
    Crafted("a disk id too long", "location 1: its disk",
            _sql("UPDATE locations SET volume_id = 'uuid:' || printf('%.101c', 'a'), volume_path = ''")),
    Crafted("a disk id with a NUL (where GLOB and length() stop)", "location 1: its disk",
            _sql("UPDATE locations SET volume_id = 'uuid:ab' || char(0) || ' /etc', volume_path = ''")),
    Crafted("a folder inside a disk with '..'", "location 1: its disk",
            _sql("UPDATE locations SET volume_id = 'uuid:ab', volume_path = '../x'")),
    Crafted("more entries than this device keeps (4 here)", "it holds 5 entries in 1 locations", limits=Limits(entries=4)),
    Crafted("more locations than this device keeps (0 here)", "it holds 5 entries in 1 locations",
            limits=Limits(locations=0)),
]  # fmt: skip
FINE = [
    ("the file as made", None, False),
    ("its tables made without STRICT, the schema's text written over", None, True),
    ("a detached folder (its path kept, inside its location)", _sql(ORPHAN, "INSERT INTO directory_paths VALUES (6, 1, 'was/here')"), False),
    ("names of dots and letters of any script", _sql(
        "UPDATE entries SET name = '.bashrc' WHERE id = 5",
        *(f"INSERT INTO entries VALUES ({i}, 1, 1, '{name}', {FILE}, NULL, 0, 0, NULL, 0, NULL)" for i, name in
          enumerate(("a.", "..x.Tar", "Été.PDF", "x..", "...", "ÉTÉ.ÉTÉ", "日本語のファイル名", "a\nb", "\U0001f600"), 7))), False),
    ("names of 1,024 characters of two bytes each", _sql(f"UPDATE entries SET name = replace(printf('%.{MAX_NAME}c', 'x'), 'x', 'é') WHERE id = 5"), False),
    ("names that joined take more than SQLite reads of one value (the scan halves its chunk)", _sql(
        f"WITH n(i) AS (SELECT 10 UNION ALL SELECT i + 1 FROM n WHERE i < 1200) INSERT INTO entries SELECT i, 1, 1,"
        f" printf('%.{MAX_NAME - 10}c', 'x') || i, {FILE}, NULL, 0, 0, NULL, 0, i FROM n"), False),
    ("entries of ids far apart", _sql(
        f"INSERT INTO entries VALUES (1 << 40, 1, 1, 'far', {FILE}, NULL, 0, 0, NULL, 0, NULL)",
        f"INSERT INTO entries VALUES (9223372036854775807, 1, 1, 'farthest', {FILE}, NULL, 0, 0, NULL, 0, NULL)"), False),
    ("exactly 20,000 entries (one chunk of the scan)", _sql(
        "WITH n(i) AS (SELECT 6 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO entries SELECT i, 1, 1,"
        f" 'f' || i, {FILE}, NULL, 0, 0, NULL, 0, NULL FROM n"), False),
    ("a location on a disk", _sql("UPDATE locations SET volume_id = 'fingerprint:ab.c-d_1', volume_path = 'a/b'"), False),
]  # fmt: skip
"""Files that keep every rule (`check` accepts them)."""
