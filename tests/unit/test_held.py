"""Reading an open library's database files in its own process never drops SQLite's locks on them (sdcore.fs.held)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sdcore import dedup
from sdcore.api.root import Api
from sdcore.core import Core
from sdcore.fs import held
from sdcore.fs.local import LocalFS
from sdcore.index import cas, kinds
from sdcore.library import Libraries, Library
from sdcore.ops import localcopy

# another process that opens the database and closes it as its last connection: were this process's locks gone,
# it would take the database for unused, checkpoint it and delete its WAL (the open library writing on into it)
OTHER_PROCESS = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM sqlite_master'); c.close()"
SEEN = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM kept').fetchone()[0])"


def _read_whole(path: str) -> None:
    async def read() -> None:
        async for _ in LocalFS().open_read(path):
            pass

    asyncio.run(read())


def _copy(path: str) -> None:
    dst = str(Path(path).parent.parent / "copied.db")
    localcopy.copy_file(path, dst, dst + ".tmp", replace=True, verify=True)


def _dedup(path: str) -> None:
    """As `sd dupes` hashes a candidate: from the library (a file checked first) and from disk."""
    st = os.lstat(path)
    dedup._identify(path, st.st_size, {})
    candidate = dedup._Candidate(0, path, st.st_size, st.st_mtime, st.st_ino, key=(st.st_dev, st.st_ino))
    dedup._hash_checked(candidate)


READERS: dict[str, Callable[[str], object]] = {
    "open_read (a preview, api.read, a copy between devices)": _read_whole,
    "copy_file (sd cp of the .sdlibrary folder)": _copy,
    "hash_file (a verified copy)": localcopy.hash_file,
    "identify (the content indexer)": cas.identify,
    "full_hash": cas.full_hash,
    "read_head (its kind)": kinds.read_head,
    "dedup": _dedup,
}


def _write_survives(lib: Library, read: Callable[[], object]) -> None:
    """Read the open library's database files with `read`, write, let another process open and close the database:
    the write is seen by a third process while the library is open, and is still there once it closed."""
    database = lib.folder / "database.db"
    with lib.write() as db:
        db.execute("CREATE TABLE kept (n INTEGER)")
    assert lib.read().execute("SELECT count(*) FROM kept").fetchone() == (0,)
    read()
    with lib.write() as db:
        db.execute("INSERT INTO kept VALUES (1)")
    subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(database)], check=True)
    with lib.write() as db:
        db.execute("INSERT INTO kept VALUES (2)")
    try:
        seen = subprocess.run([sys.executable, "-c", SEEN, str(database)], capture_output=True, text=True)
        assert seen.stdout == "2\n", seen.stderr
    finally:
        lib.close()
    assert held.parked() == 0  # what was kept open is closed with the library
    seen = subprocess.run([sys.executable, "-c", SEEN, str(database)], capture_output=True, text=True)
    assert seen.stdout == "2\n", seen.stderr


@pytest.mark.parametrize("reader", list(READERS))
def test_reading_an_open_librarys_database_in_its_process_loses_none_of_its_writes(tmp_path: Path, reader: str) -> None:
    lib = Libraries(tmp_path / "libraries").create("Mine")
    files = [str(lib.folder / f"database.db{suffix}") for suffix in ("", "-wal", "-shm")]
    _write_survives(lib, lambda: [READERS[reader](f) for f in files])


def test_reading_the_core_s_open_library_through_the_api_loses_none_of_its_writes(tmp_path: Path) -> None:
    """As a preview or `sd cat` of the .sdlibrary folder, forwarded to the running core, reads it."""
    core = Core(tmp_path / "data")
    lib = core.library()
    api = Api(core)

    async def read(name: str) -> None:
        async for _ in api.read(core.local_path(str(lib.folder / name))):
            pass

    try:
        _write_survives(lib, lambda: [asyncio.run(read(f"database.db{s}")) for s in ("", "-wal", "-shm")])
    finally:
        asyncio.run(core.close())


def test_a_file_of_no_open_library_is_closed_at_once(tmp_path: Path) -> None:
    lib = Libraries(tmp_path / "libraries").create("Mine")
    other = tmp_path / "other"
    other.write_bytes(b"x")
    try:
        fd = os.open(other, os.O_RDONLY)
        held.close(fd)
        assert held.parked() == 0
        with pytest.raises(OSError):
            os.fstat(fd)
    finally:
        lib.close()


def test_copying_the_open_library_s_folder_in_the_core_loses_none_of_its_writes(tmp_path: Path) -> None:
    """`sd cp` of the .sdlibrary folder, forwarded to the running core: its copy job reads the database files."""
    backup = tmp_path / "backup"
    backup.mkdir()

    async def story() -> None:
        async with Core(tmp_path / "data") as core:
            api = Api(core)
            lib = core.library()
            folder = core.local_path(str(lib.folder))

            def copy() -> None:
                async def run() -> None:
                    job = await api.ops.copy([folder], core.local_path(str(backup)))
                    assert (await api.library().jobs.wait(job.id)).state == "completed"

                asyncio.run_coroutine_threadsafe(run(), loop).result(30)

            loop = asyncio.get_running_loop()
            await asyncio.to_thread(_write_survives, lib, copy)

    asyncio.run(story())
    assert (backup / "My Library.sdlibrary" / "database.db").exists()
