"""A library: one self-contained NAME.sdlibrary/ folder holding its database, lock and caches."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sdcore.errors import SdError
from sdcore.library.schema import MIGRATIONS, add_functions, migrate
from sdcore.privacy import create_private, make_private_dir, write_private

if TYPE_CHECKING:
    from sdcore.core import Core
    from sdcore.jobs.manager import JobManager
    from sdcore.library.locations import Locations

SUFFIX = ".sdlibrary"


class LibraryLocked(SdError):
    """Another process has the library open."""


class LibraryDamaged(SdError):
    """The library's files cannot be read; nothing was changed."""


class Library:
    """An open library: its identity, its database connections and its lock.

    Writes go through one connection guarded by a lock (`with library.write() as db:`, one
    transaction); reads use a connection per thread (`library.read()`), which WAL lets run beside writes.
    """

    def __init__(self, folder: Path, core: Core | None = None) -> None:
        self.folder = folder
        self.core = core
        self._lock_file = _acquire_lock(folder)
        try:
            meta = json.loads((folder / "library.json").read_text())
            self.id = uuid.UUID(meta["id"])
            self.name: str = meta["name"]
        except (OSError, ValueError, KeyError) as exc:
            self._lock_file.close()
            raise LibraryDamaged(f"{folder}/library.json cannot be read ({exc}); restore it from a backup") from None
        self._local = threading.local()
        self._write_lock = threading.RLock()
        try:
            self._writer = self._connect()
            # the writer's big sorts (an index made over a million rows) spill to disk, not into this process
            self._writer.execute("PRAGMA temp_store = FILE")
            self.schema_version = migrate(self._writer)
        except sqlite3.DatabaseError as exc:
            self._lock_file.close()
            raise LibraryDamaged(
                f"the database of library {self.name!r} ({folder}/database.db) is damaged: {exc}. "
                "Nothing was changed; restore the folder from a backup"
            ) from None
        if meta.get("schema") != self.schema_version:
            _write_json(folder / "library.json", {**meta, "schema": self.schema_version})
        self._readers: list[sqlite3.Connection] = []
        self.locations: Locations = _locations(self)
        self.jobs: JobManager = _jobs(self)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.folder / "database.db", isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")
        add_functions(conn)
        return conn

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; commits on success, rolls back on error."""
        with self._write_lock:
            conn = self._writer
            if conn.in_transaction:  # nested: part of the outer transaction
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self) -> sqlite3.Connection:
        """This thread's read connection (sees every committed write)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._readers:
            conn.close()
        with self._write_lock:
            self._writer.close()
        self._lock_file.close()

    @property
    def thumbnails(self) -> Path:
        return self.folder / "thumbnails"

    def __repr__(self) -> str:
        return f"Library({self.name!r}, {self.folder})"


def create_folder(root: Path, name: str) -> Path:
    """Make an empty NAME.sdlibrary/ folder under `root`."""
    folder = root / (safe_folder_name(name) + SUFFIX)
    if folder.exists():
        from sdcore.errors import AlreadyExists

        raise AlreadyExists(f"a library named {name!r} exists already ({folder})")
    make_private_dir(root)
    folder.mkdir(mode=0o700)
    (folder / "thumbnails").mkdir(mode=0o700)
    (folder / "indexes").mkdir(mode=0o700)
    create_private(folder / "database.db")  # before SQLite makes it: its -wal and -shm take its mode
    _write_json(
        folder / "library.json",
        {"id": str(uuid.uuid4()), "name": name, "schema": max(MIGRATIONS), "created": time.time()},
    )
    return folder


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "library.json").read_text())


def write_meta(folder: Path, meta: dict) -> None:
    _write_json(folder / "library.json", meta)


def safe_folder_name(name: str) -> str:
    cleaned = "".join(c if c not in '/\\\0' else "_" for c in name).strip()
    if not cleaned or cleaned in (".", ".."):
        raise SdError(f"{name!r} is not a usable library name")
    return cleaned


def _acquire_lock(folder: Path):  # type: ignore[no-untyped-def]
    if not (folder / "library.json").exists():
        raise LibraryDamaged(f"{folder} is not a library folder (no library.json)")
    f = os.fdopen(os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600), "a+")
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise LibraryLocked(
            f"library {folder.name} is open in {holder}; close that program, or run your command "
            "through it (a running `sd serve` or `sdtui` carries out `sd` commands for its data dir)"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"process {os.getpid()} ({' '.join(os.path.basename(a) for a in sys.argv[:2])}) on {socket.gethostname()}")
    f.flush()
    return f


def _write_json(path: Path, data: dict) -> None:
    write_private(path, json.dumps(data, indent=1))


def _locations(library: Library) -> Locations:
    from sdcore.library.locations import Locations

    return Locations(library)


def _jobs(library: Library) -> JobManager:
    from sdcore.jobs.manager import JobManager

    return JobManager(library)
