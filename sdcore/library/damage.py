"""A library's health: cheap checks before it opens, the damage mark, and SQLite errors told as a person needs them."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path

from sdcore.errors import SdError
from sdcore.privacy import write_private
from sdcore.sdpath import typed

# quick_check reads every page: 0.19 s for the 156 MB database of a 200,000-file library (2.8 s with a cold
# page cache). Databases up to this size are checked on every open (~20 ms); bigger ones on their first
# sign of damage, in a long-running core's first minute, and by `sd library check`.
QUICK_CHECK_LIMIT = 16 << 20
MARK = "damage.json"
"""Left in the library folder when damage was found, so every later open refuses at once (a restored
database.db, found by its size, time and inode, is looked at afresh)."""


class LibraryDamaged(SdError):
    """The library's files cannot be read; nothing was changed."""


class DiskFull(SdError):
    """The disk holding a library has no room left for a write."""


def recovery(name: str) -> str:
    """What a person can do about a damaged library."""
    return (
        f"nothing was written to it. `sd library repair {typed(name)}` rebuilds it from what can still be read "
        "(the index from the disk), or restore the folder from a backup (a copy of the folder is one)"
    )


def problem_of(folder: Path, remembered: bool = True) -> str | None:
    """What is wrong with a library folder as far as a cheap look can tell (None: nothing seen).

    Reads library.json, the database file's header and (with `remembered`) the damage mark; opens nothing.
    """
    meta = folder / "library.json"
    if not meta.exists():
        return f"{folder} is not a library folder (no library.json)"
    try:
        data = json.loads(meta.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("name"), str):
            raise ValueError("no id or name")
    except (OSError, ValueError) as exc:
        return f"{meta} cannot be read ({exc})"
    database = folder / "database.db"
    try:
        size = database.stat().st_size
    except FileNotFoundError:
        return f"its database {database} is missing"
    except OSError as exc:
        return f"its database {database} cannot be read ({exc.strerror})"
    if not size:
        return f"its database {database} is empty (0 bytes)"
    try:
        schema_in_header(database)
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            return f"its database {database} is not an SQLite database (overwritten?)"
        return f"its database {database} cannot be read ({exc})"
    return marked(folder) if remembered else None


def schema_in_header(database: Path) -> int:
    """The schema version in a database file's header (SQLite's user_version); sqlite3.DatabaseError when the file
    is not an SQLite database.

    Read through SQLite, never with open(): closing any descriptor of the file drops every lock SQLite holds on it
    in this process (POSIX locks belong to the process), and another process closing its connection would take the
    database for unused and delete its WAL, with the writes in it.
    """
    try:
        return _user_version(database, "mode=ro&immutable=1")
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise
        # The file alone may be half-written by a checkpoint a full disk cut off (its header counts pages the disk had
        # no room for): the WAL still holds them, and a reader of both sees a sound database.
        return _user_version(database, "mode=ro")


def _user_version(database: Path, mode: str) -> int:
    conn = sqlite3.connect(uri(database, mode), uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def marked(folder: Path) -> str | None:
    """The damage found earlier in this folder's database, if it is still the same file."""
    try:
        mark = json.loads((folder / MARK).read_text())
        if mark.get("database") == _identity(folder / "database.db"):
            return str(mark["problem"])
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    return None


def mark(folder: Path, problem: str) -> None:
    """Remember that this folder's database is damaged (best effort: the disk may be full or read-only)."""
    try:
        write_private(folder / MARK, json.dumps({"problem": problem, "database": _identity(folder / "database.db")}))
    except OSError:
        pass


def unmark(folder: Path) -> None:
    (folder / MARK).unlink(missing_ok=True)


def _identity(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def quick_check(conn: sqlite3.Connection, full: bool = False) -> list[str]:
    """The problems SQLite finds in the database (quick_check, or integrity_check with `full`); [] if sound."""
    try:
        rows = [r[0] for r in conn.execute("PRAGMA integrity_check(50)" if full else "PRAGMA quick_check(50)")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def integrity_problems(folder: Path) -> list[str]:
    """Everything wrong with a library folder, every page of its database read; [] when it is sound."""
    problem = problem_of(folder, remembered=False)
    if problem is not None:
        return [problem]
    try:
        conn = sqlite3.connect(uri(folder / "database.db", "mode=ro"), uri=True)
    except sqlite3.Error as exc:
        return [f"its database cannot be opened ({exc})"]
    try:
        return quick_check(conn, full=True)
    finally:
        conn.close()


def uri(database: Path, query: str) -> str:
    """An SQLite URI for a database file, with a query (`mode=ro`, `immutable=1`)."""
    return f"{Path(os.path.abspath(database)).as_uri()}?{query}"


def is_damage(exc: BaseException) -> bool:
    """Whether an SQLite error says the database file itself is damaged."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorcode", None) in (
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_NOTADB,
    )


def is_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether an error says the disk is full (or is an I/O error on the disk of `folder`, which is full)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if not isinstance(exc, sqlite3.Error):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        return True
    # SQLite says only "disk I/O error" when it cannot make the -shm file or write the -wal on a full disk
    primary = code & 0xFF if isinstance(code, int) else None
    return folder is not None and primary in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) and disk_is_full(folder)


def disk_is_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW


FULL_BELOW = 1 << 20
"""Free bytes below which a disk counts as full when SQLite reports only an I/O error."""


def disk_full(folder: Path, name: str) -> DiskFull:
    """The one line for a write a full disk refused."""
    mount = mount_point(folder)
    return DiskFull(
        f"the disk holding library {name!r} ({mount}) is full; free some space on it, then run the command "
        "again (listing and searching still work meanwhile)"
    )


def mount_point(path: Path) -> str:
    path = Path(os.path.abspath(path))
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return str(path)
