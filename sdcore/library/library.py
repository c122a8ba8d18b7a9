"""A library: one self-contained NAME.sdlibrary/ folder holding its database, lock and caches."""

from __future__ import annotations

import fcntl
import gc
import json
import os
import shutil
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sdcore.errors import SdError
from sdcore.fs import held
from sdcore.library import damage
from sdcore.library.bulk import make_secondary_indexes, secondary_indexes_missing
from sdcore.library.context import LibraryContext
from sdcore.library.damage import LibraryDamaged
from sdcore.library.schema import MIGRATIONS, add_functions, migrate
from sdcore.privacy import create_private, make_private_dir, write_private

if TYPE_CHECKING:
    from sdcore.jobs.manager import JobManager
    from sdcore.library.locations import Locations
    from sdcore.sync.shared import SharedData

SUFFIX = ".sdlibrary"
LOCK_WAIT = 60.0
"""Seconds a write waits for another process to let go of the library before it gives up."""
TELL_AFTER = 1.0
"""Seconds of waiting for the lock after which the person is told what they wait for."""

__all__ = ["Library", "LibraryDamaged", "LibraryLocked", "LibraryTooNew"]


class LibraryLocked(SdError):
    """Another process has the library open."""


class LibraryTooNew(SdError):
    """The library was written by a newer sdtui, whose schema this one does not know; nothing was changed."""


def too_new(name: str, schema: int) -> LibraryTooNew:
    return LibraryTooNew(
        f"library {name!r} was written by a newer sdtui (schema {schema}; this one knows up to {max(MIGRATIONS)}); "
        "update sdtui to use it (nothing was changed)"
    )


_CUT_OFF_JOBS = "SELECT 1 FROM jobs WHERE state IN ('queued', 'running') LIMIT 1"
"""Jobs a process left running: cut off, unless the process holding the lock still runs them."""


class _Damaged(Exception):
    """quick_check found damage while opening."""


class Library:
    """An open library: its identity, its database connections and its lock.

    Writes go through one connection guarded by a lock (`with library.write() as db:`, one
    transaction); reads use a connection per thread (`library.read()`), which WAL lets run beside writes.
    Opening writes nothing: reads need no lock, so they run beside another process's writes. The first
    write takes the library's lock (waiting for the process holding it) and keeps it until close; so does
    an open that finds jobs left running, if the lock is free (their process is gone: they are marked
    interrupted, ready to resume). A library found damaged, or opened on a full disk, refuses every write.
    """

    def __init__(
        self,
        folder: Path,
        context: LibraryContext | None = None,
        *,
        program: str | None = None,
        on_lock_wait: Callable[[str], None] | None = None,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self.folder = folder
        self.context = context or LibraryContext.this_device_only()
        """The device it runs on, its event bus and the filesystems of devices (from the core that opened it)."""
        self.program = program or os.path.basename(sys.argv[0])
        """What the lock file says holds the library (`sd cp`, `sdtui`)."""
        self.on_lock_wait = on_lock_wait
        self.lock_wait = lock_wait
        problem = damage.problem_of(folder)
        if problem is not None:
            name = folder.name.removesuffix(SUFFIX)
            raise LibraryDamaged(f"library {name!r} cannot be used: {problem}; {damage.recovery(name)}")
        meta = read_meta(folder)
        self.id = uuid.UUID(meta["id"])
        self.name: str = meta["name"]
        if isinstance(meta.get("schema"), int) and meta["schema"] > max(MIGRATIONS):
            raise too_new(self.name, meta["schema"])
        self.damaged: str | None = None
        """What is wrong, once damage was found while open (writes are refused from then on)."""
        self._damage_problem = ""  # what the damage mark beside the database says
        self._lock_file: IO[str] | None = None
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._closed = False
        self.disk_full = False
        """Opened on a full disk: read from the database file as it is, every write refused."""
        self.restored: str | None = None
        """The line that says the library was found restored from a backup when this process took its lock."""
        self.catalogue_head: int | None = None
        """The last change of this device's catalogue told on the bus (0: not numbered; None: not looked yet)."""
        try:
            try:
                self._open_database()
            except sqlite3.Error as exc:
                if not damage.is_full(exc, folder):
                    raise
                self._abandon()
                self.disk_full = True
                self._open_database()
        except (sqlite3.Error, _Damaged) as exc:
            self._abandon()
            if damage.is_full(exc, folder):
                raise damage.disk_full(folder, self.name) from None
            if not isinstance(exc, _Damaged) and not damage.is_damage(exc):
                raise SdError(
                    f"the database of library {self.name!r} ({folder}/database.db) cannot be opened ({exc}); "
                    "check the disk and the folder's permissions"
                ) from None
            problem = f"its database {folder}/database.db is damaged ({exc})"
            damage.mark(folder, problem)
            raise LibraryDamaged(f"library {self.name!r} cannot be used: {problem}; {damage.recovery(self.name)}") from None
        except BaseException:
            self._abandon()
            raise
        # its database files, once SQLite made them: a reader in this process closing one would drop its locks
        self._held = held.hold(self.folder / f"database.db{suffix}" for suffix in ("", "-wal", "-shm"))
        self.locations: Locations = _locations(self)
        self._jobs: JobManager | None = None
        self._sync: SharedData | None = None
        self._parts = threading.Lock()

    @property
    def jobs(self) -> JobManager:
        """Its jobs (made when first asked: a listing needs neither them nor their modules)."""
        if self._jobs is None:
            with self._parts:
                if self._jobs is None:
                    self._jobs = _jobs(self)
        return self._jobs

    async def close_jobs(self) -> None:
        """Stop its running jobs (see JobManager.close); nothing to do when no one asked for its jobs."""
        if self._jobs is not None:
            await self._jobs.close()

    @property
    def sync(self) -> SharedData:
        """Its shared data (tags, notes, favourites, saved searches) as an operation log other devices merge (made
        when first asked, as `jobs`)."""
        if self._sync is None:
            with self._parts:
                if self._sync is None:
                    self._sync = _sync(self)
        return self._sync

    def _open_database(self) -> None:
        self._writer = self._connect()
        # the writer's big sorts (an index made over a million rows) spill to disk, not into this process
        self._writer.execute("PRAGMA temp_store = FILE")
        self.schema_version: int = self._writer.execute("PRAGMA user_version").fetchone()[0]
        if self.schema_version > max(MIGRATIONS):
            raise too_new(self.name, self.schema_version)
        if self.schema_version < max(MIGRATIONS):
            if self.disk_full:
                raise sqlite3.OperationalError("database or disk is full")  # told as the full disk it is
            self.hold_lock()  # migrations are writes
        elif not self.disk_full and (
            self._writer.execute(_CUT_OFF_JOBS).fetchone() or secondary_indexes_missing(self._writer)
        ):
            # a rerun after a crash finds the jobs it cut off interrupted, ready to resume, and the indexes a bulk
            # load it cut off went without made again (unless another process holds the lock: its load is under way)
            self._lock_if_free()
        # (an immutable read on a full disk may see another process's half-written pages: no verdict from it)
        if not self.disk_full and (self.folder / "database.db").stat().st_size <= damage.QUICK_CHECK_LIMIT:
            problems = damage.quick_check(self._writer)
            if problems:
                raise _Damaged(problems[0])

    def _connect(self) -> sqlite3.Connection:
        database = self.folder / "database.db"
        if self.disk_full:  # SQLite cannot make its -shm file: read the file as it is, without WAL locking
            conn = sqlite3.connect(damage.uri(database, "immutable=1"), uri=True, isolation_level=None, check_same_thread=False)
            add_functions(conn)  # a search checks its candidates with them
            return conn
        conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("PRAGMA cache_size = -65536")
        add_functions(conn)
        return conn

    def _abandon(self) -> None:
        """Let go of everything a failed open took."""
        if getattr(self, "_writer", None) is not None:
            self._writer.close()
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def hold_lock(self, wait: float | None = None) -> None:
        """Make this process the library's one writer until it closes.

        Waits up to `wait` seconds (default `lock_wait`) while another process is; then LibraryLocked.
        """
        with self._write_lock:
            if self._lock_file is not None:
                return
            wait = self.lock_wait if wait is None else wait
            self._lock_file = _acquire_lock(self.folder, self.name, self.program, self.on_lock_wait, wait)
            try:
                version = self._writer.execute("PRAGMA user_version").fetchone()[0]
                if version < max(MIGRATIONS):
                    self.schema_version = migrate(self._writer)
                    meta = read_meta(self.folder)
                    if meta.get("schema") != self.schema_version:
                        write_meta(self.folder, {**meta, "schema": self.schema_version})
                # whoever held the lock before us is gone: its jobs were cut off (written only if there are any:
                # opening writes nothing otherwise)
                if self._writer.execute(_CUT_OFF_JOBS).fetchone():
                    self._writer.execute("UPDATE jobs SET state = 'interrupted' WHERE state IN ('queued', 'running')")
                if secondary_indexes_missing(self._writer):  # a bulk load was cut off: never left without them
                    make_secondary_indexes(self._writer)
                self._check_restored()
            except BaseException:
                self._lock_file.close()
                self._lock_file = None
                raise

    def _check_restored(self) -> None:
        """Before the first write: if the library's numbers are below what the devices it is shared with saw of it
        (restored from a backup), number on past them (sdcore.sync.highwater); said once, in `restored`."""
        if self.context.marks is None:
            return
        from sdcore.events import LibraryChanged
        from sdcore.sync import highwater

        self._writer.execute("BEGIN IMMEDIATE")
        try:
            told = highwater.check(self, self._writer)
            self._writer.execute("COMMIT")
        except BaseException:
            self._writer.execute("ROLLBACK")
            raise
        if told is not None:
            self.restored = told
            if getattr(self, "sync", None) is not None:
                self.sync._clock = None  # it starts again past the stamps of the ops the restore lost
            self.context.bus.publish(LibraryChanged(self.id, "restored"))

    def _lock_if_free(self) -> None:
        """Take the lock now if nobody holds it (and mark the jobs its last holder left running as interrupted)."""
        try:
            self.hold_lock(wait=0)
        except LibraryLocked:
            pass  # reads go on beside the holder; the first write waits for it
        except sqlite3.Error as exc:
            if not damage.is_full(exc, self.folder):
                raise  # on a full disk the cut-off jobs are marked by a later opener; reading goes on

    @property
    def holds_lock(self) -> bool:
        return self._lock_file is not None

    def wait_until_free(self) -> None:
        """Block, without polling, until no process holds the library's lock (not taking it: `hold_lock` does)."""
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # a lock of its own open file: closing it lets go of this one only
        finally:
            os.close(fd)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection; commits on success, rolls back on error.

        Raises LibraryDamaged once the database is found damaged, and DiskFull when the disk has no room.
        """
        with self._write_lock:
            if self.damaged:
                raise LibraryDamaged(self.damaged)
            if self.disk_full:
                raise damage.disk_full(self.folder, self.name)
            conn = self._writer
            if conn.in_transaction:  # nested: part of the outer transaction
                yield conn
                return
            try:
                self.hold_lock()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                if self.catalogue_head != 0:
                    tell_changes(self)
            except sqlite3.Error as exc:
                told = self.explain(exc)
                if told is None:
                    raise
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise told from exc

    def explain(self, exc: BaseException) -> SdError | None:
        """A database or disk error as the line a person needs (and damage remembered); None if it is neither."""
        if damage.is_full(exc, self.folder) or (self.disk_full and damage.is_damage(exc)):
            return damage.disk_full(self.folder, self.name)
        if not damage.is_damage(exc):
            return None
        return self.found_damage(str(exc))

    def found_damage(self, detail: str) -> LibraryDamaged:
        """Remember that the database is damaged: writes are refused from now on, and every later open."""
        if not self.damaged:
            self.damaged = (
                f"the database of library {self.name!r} ({self.folder}/database.db) is damaged ({detail}); "
                + damage.recovery(self.name)
            )
            self._damage_problem = f"its database is damaged ({detail})"
            damage.mark(self.folder, self._damage_problem)
        return LibraryDamaged(self.damaged)

    def verify(self) -> list[str]:
        """SQLite's quick_check, on a connection of its own; what it finds is remembered as damage."""
        if self.disk_full:
            return []  # read as it is, the file may be mid-write by another process: no verdict from it
        conn = self._connect()
        try:
            problems = damage.quick_check(conn)
        finally:
            conn.close()
        if problems:
            self.found_damage(problems[0])
        return problems

    def read(self) -> sqlite3.Connection:
        """This thread's read connection (sees every committed write)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise sqlite3.ProgrammingError(f"library {self.name!r} is closed")
            conn = self._connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        self._closed = True
        mine = getattr(self._local, "conn", None)
        if mine is not None:
            mine.close()
        # Another thread's reader is never closed from here: closed under a query, SQLite frees what the query still
        # uses and the interpreter dies. Dropped from the threads' slots, each is closed by the collector (a
        # connection and its statement cache refer to each other) once nothing uses it: the idle ones now.
        self._local = threading.local()
        gc.collect()
        with self._write_lock:
            self._writer.close()
            if self._damage_problem:  # the last close checkpointed the WAL into the file: mark the file as it is now
                damage.mark(self.folder, self._damage_problem)
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
            held.release(self._held)
            self._held = []

    @property
    def thumbnails(self) -> Path:
        return self.folder / "thumbnails"

    def __repr__(self) -> str:
        return f"Library({self.name!r}, {self.folder})"


def create_folder(root: Path, name: str, library_id: uuid.UUID | None = None, folder_name: str | None = None) -> Path:
    """Make a NAME.sdlibrary/ folder (or FOLDER_NAME.sdlibrary/) under `root` with its database, of a new library
    (or of the library `library_id`); it appears whole or not at all."""
    folder = root / ((folder_name or safe_folder_name(name)) + SUFFIX)
    if folder.exists():
        from sdcore.errors import AlreadyExists

        raise AlreadyExists(f"a library named {name!r} exists already ({folder})")
    make_private_dir(root)
    building = root / f".{uuid.uuid4().hex}.creating"
    try:
        building.mkdir(mode=0o700)
        (building / "thumbnails").mkdir(mode=0o700)
        (building / "indexes").mkdir(mode=0o700)
        create_private(building / ".lock")
        create_private(building / "database.db")  # before SQLite makes it: its -wal and -shm take its mode
        conn = sqlite3.connect(building / "database.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            schema = migrate(conn)
        finally:
            conn.close()
        _write_json(
            building / "library.json",
            {"id": str(library_id or uuid.uuid4()), "name": name, "schema": schema, "created": time.time()},
        )
        building.rename(folder)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        if folder.exists():  # made meanwhile by another process
            from sdcore.errors import AlreadyExists

            raise AlreadyExists(f"a library named {name!r} exists already ({folder})") from None
        raise
    return folder


def read_meta(folder: Path) -> dict:
    return json.loads((folder / "library.json").read_text())  # type: ignore[no-any-return]


def write_meta(folder: Path, meta: dict) -> None:
    _write_json(folder / "library.json", meta)


def safe_folder_name(name: str) -> str:
    cleaned = "".join(c if c not in '/\\\0' else "_" for c in name).strip()
    if not cleaned or cleaned in (".", ".."):
        raise SdError(f"{name!r} is not a usable library name")
    return cleaned


def _acquire_lock(
    folder: Path, name: str, program: str, on_wait: Callable[[str], None] | None, wait: float
) -> IO[str]:
    """The library's lock file, locked; waits up to `wait` seconds for the process holding it."""
    # held open as long as the library is; owner-only like all of the data dir
    f = os.fdopen(os.open(folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600), "a+")
    start = time.monotonic()
    told = False
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            waited = time.monotonic() - start
            if waited >= wait:
                f.close()
                raise LibraryLocked(
                    f"library {name!r} is open in {holder}, which did not let go in {wait:g} s; wait for it to "
                    "finish, or run your command through it (a running `sd serve` or `sdtui` carries out `sd` "
                    "commands for its data dir)"
                ) from None
            if not told and waited >= TELL_AFTER and on_wait is not None:
                on_wait(f"waiting for library {name!r}, open in {holder} (up to {wait:g} s; Ctrl-C stops)")
                told = True
            time.sleep(0.05)
    try:
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} ({program}) on {socket.gethostname()}")
        f.flush()
    except OSError:  # a full disk: the lock holds all the same, only its note of who holds it is missing
        pass
    return f


def _write_json(path: Path, data: dict) -> None:
    write_private(path, json.dumps(data, indent=1))


def tell_changes(library: Library) -> None:
    from sdcore.sync.catalogue import tell_changes as tell

    tell(library)


def _locations(library: Library) -> Locations:
    from sdcore.library.locations import Locations

    return Locations(library)


def _sync(library: Library) -> SharedData:
    from sdcore.sync.shared import SharedData

    return SharedData(library)


def _jobs(library: Library) -> JobManager:
    from sdcore.jobs.manager import JobManager

    return JobManager(library)
