"""Libraries: a user creates, lists, renames and deletes them; a locked or damaged one gives a clear error."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from sdcore.core import DEFAULT_LIBRARY, Core
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.library import Libraries, Library, LibraryDamaged, LibraryLocked
from sdcore.library.schema import MIGRATIONS, _statements

LATEST = max(MIGRATIONS)


def test_first_use_makes_a_default_library_and_keeps_using_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    core = Core(data)
    first = core.library()
    assert first.name == DEFAULT_LIBRARY
    folder = first.folder
    assert folder.parent == data / "libraries" and folder.name.endswith(".sdlibrary")
    for part in ("library.json", "database.db", "thumbnails", "indexes", ".lock"):
        assert (folder / part).exists(), part
    first_id = first.id
    first.close()

    again = Core(data).library()
    try:
        assert again.id == first_id
        assert len(Core(data).libraries.list()) == 1
    finally:
        again.close()


def test_create_list_rename_delete(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    work = libs.create("Work")
    photos = libs.create("Photos")
    assert sorted(i.name for i in libs.list()) == ["Photos", "Work"]
    assert {i.id for i in libs.list()} == {work.id, photos.id}
    assert libs.open("Work") is work
    assert libs.open(str(photos.id)[:8]) is photos  # an id prefix will do

    with pytest.raises(AlreadyExists):
        libs.create("Work")
    with pytest.raises(AlreadyExists):
        libs.rename("Work", "Photos")

    info = libs.rename("Work", "Work 2026")
    assert info.name == "Work 2026" and info.id == work.id
    assert info.folder.name == "Work 2026.sdlibrary"
    assert not (tmp_path / "libraries" / "Work.sdlibrary").exists()
    assert json.loads((info.folder / "library.json").read_text())["name"] == "Work 2026"
    with pytest.raises(NotFound, match="sd library create"):
        libs.open("Work")
    reopened = libs.open("Work 2026")
    assert reopened.id == work.id

    deleted = libs.delete("Photos")
    assert deleted.name == "Photos" and not deleted.folder.exists()
    assert [i.name for i in libs.list()] == ["Work 2026"]
    reopened.close()


@pytest.mark.parametrize("name", ["", "  ", ".", ".."])
def test_an_unusable_library_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(SdError):
        Libraries(tmp_path / "libraries").create(name)


def test_a_name_with_a_slash_stays_one_folder(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("a/b")
    assert lib.folder.parent == tmp_path / "libraries"
    assert [i.name for i in libs.list()] == ["a/b"]
    lib.close()


def test_a_second_opener_reads_beside_the_holder_and_its_write_waits_then_names_the_holder(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Mine")
    lib.hold_lock()  # as the first write does
    told: list[str] = []
    second = Library(lib.folder, program="sd tag create", on_lock_wait=told.append, lock_wait=1.5)
    try:
        assert not second.holds_lock and second.locations.list() == []  # reading needs no lock
        with pytest.raises(LibraryLocked) as err:
            with second.write() as db:
                db.execute("INSERT INTO tags (name, created) VALUES ('x', 0)")
        assert f"process {os.getpid()}" in str(err.value)
        assert len(told) == 1 and "waiting for library 'Mine'" in told[0] and f"process {os.getpid()}" in told[0]
        assert lib.read().execute("SELECT COUNT(*) FROM tags").fetchone() == (0,)
    finally:
        second.close()
    lib.close()
    Library(lib.folder).close()  # the lock goes with its holder


def test_a_reader_holds_no_lock_but_an_opener_finding_cut_off_jobs_takes_it_and_marks_them(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Mine")
    with lib.write() as db:
        db.execute("INSERT INTO jobs (id, name, state, created, updated) VALUES ('j1', 'index', 'running', 0, 0)")
    reader = Library(lib.folder)
    assert not reader.holds_lock  # the writer that left the job running is still there
    reader.close()
    lib.close()  # now it is gone (as after a kill -9): its job was cut off
    reader = Library(lib.folder)
    try:
        assert reader.holds_lock
        assert reader.read().execute("SELECT state FROM jobs").fetchall() == [("interrupted",)]
    finally:
        reader.close()
    again = Library(lib.folder)
    assert not again.holds_lock  # nothing left to mark: reading takes no lock
    again.close()


def test_a_write_waits_for_the_holder_to_let_go(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Mine")
    lib.hold_lock()
    second = Library(lib.folder, lock_wait=30)
    threading.Timer(0.5, lib.close).start()
    with second.write() as db:
        db.execute("INSERT INTO tags (name, created) VALUES ('x', 0)")
    assert second.holds_lock
    assert second.read().execute("SELECT name FROM tags").fetchall() == [("x",)]
    second.close()


def test_another_process_cannot_write_rename_or_delete_a_library_in_use(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Shared")
    lib.hold_lock()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from sdcore.library import Libraries, Library, LibraryLocked
        libs = Libraries(Path({str(tmp_path / "libraries")!r}))
        libs.lock_wait = 0.2
        def write():
            with Library(Path({str(lib.folder)!r}), lock_wait=0.2).write() as db:
                db.execute("INSERT INTO tags (name, created) VALUES ('x', 0)")
        for attempt in (write, lambda: libs.rename("Shared", "X"), lambda: libs.delete("Shared")):
            try:
                attempt()
            except LibraryLocked as exc:
                print("locked:", exc)
            else:
                print("done")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("locked:") for line in lines), out.stdout
    assert f"process {os.getpid()}" in lines[0]
    assert lib.folder.exists() and [i.name for i in libs.list()] == ["Shared"]
    lib.close()


def test_a_corrupt_database_is_a_clear_error_and_is_left_as_it_was(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Damaged")
    folder = lib.folder
    lib.close()
    junk = os.urandom(64 * 1024)
    for leftover in ("database.db-wal", "database.db-shm"):
        (folder / leftover).unlink(missing_ok=True)
    (folder / "database.db").write_bytes(junk)

    fresh = Libraries(tmp_path / "libraries")
    for _ in range(2):  # the failed open leaves no lock behind: the second try says the same
        with pytest.raises(LibraryDamaged) as err:
            fresh.open("Damaged")
        assert "database" in str(err.value) and "backup" in str(err.value)
    assert (folder / "database.db").read_bytes() == junk
    assert not (folder / "database.db-wal").exists() or (folder / "database.db-wal").stat().st_size == 0


def test_an_unreadable_library_json_is_a_clear_error(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Meta")
    folder = lib.folder
    lib.close()
    (folder / "library.json").write_text("{not json")
    with pytest.raises(LibraryDamaged, match="library.json"):
        Library(folder)
    assert (folder / "library.json").read_text() == "{not json"
    Path(folder / "library.json").unlink()
    with pytest.raises(LibraryDamaged, match="not a library folder"):
        Library(folder)


def test_a_new_library_has_every_migration_recorded(tmp_path: Path) -> None:
    lib = Libraries(tmp_path / "libraries").create("New")
    assert lib.schema_version == LATEST
    assert lib.read().execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert lib.read().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert json.loads((lib.folder / "library.json").read_text())["schema"] == LATEST
    lib.close()


def test_an_old_library_is_migrated_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Old")
    folder = lib.folder
    lib.close()
    # Replace its database with one at schema version 1 holding a location.
    (folder / "database.db").unlink()
    conn = sqlite3.connect(folder / "database.db", isolation_level=None)
    for statement in _statements(MIGRATIONS[1]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO locations (device_id, path, name, mode, created) VALUES ('d', '/old', 'old', 'shallow', 0)"
    )
    conn.execute("INSERT INTO entries (location_id, name, kind) VALUES (1, 'kept.txt', 'file')")
    conn.close()
    meta = json.loads((folder / "library.json").read_text())
    (folder / "library.json").write_text(json.dumps({**meta, "schema": 1}))

    reopened = Library(folder)
    try:
        assert reopened.schema_version == LATEST
        db = reopened.read()
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert db.execute("SELECT path FROM locations").fetchall() == [("/old",)]
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"entries_by_parent", "directory_paths_by_path"} <= indexes  # migration 2
        assert db.execute("SELECT COUNT(*) FROM tags").fetchone() == (0,)  # migration 3
        db.execute("SELECT COUNT(*) FROM search_index WHERE search_index MATCH 'kep'").fetchone()  # migration 4 (27)
        assert json.loads((folder / "library.json").read_text())["schema"] == LATEST
    finally:
        reopened.close()
    # opening again runs nothing twice
    Library(folder).close()


def test_locations_add_list_remove(tmp_path: Path, library: Library) -> None:
    docs = tmp_path / "Documents"
    docs.mkdir()
    (tmp_path / "Music").mkdir()
    loc = library.locations.add(str(docs), mode="shallow", ignore=[".git"])
    assert (loc.path, loc.name, loc.mode, loc.ignore, loc.scan_state) == (str(docs), "Documents", "shallow", (".git",), "pending")
    music = library.locations.add(str(tmp_path / "Music"), name="Tunes")
    assert music.name == "Tunes" and music.mode == "content"
    assert [x.id for x in library.locations.list()] == [loc.id, music.id]
    assert library.locations.get("Tunes") == music
    assert library.locations.get(str(docs)) == loc
    assert library.locations.containing(str(docs / "a" / "b")) == (loc, "a/b")
    assert library.locations.containing(str(tmp_path)) is None

    with pytest.raises(AlreadyExists):
        library.locations.add(str(docs))
    (docs / "inner").mkdir()
    with pytest.raises(AlreadyExists, match="nest"):
        library.locations.add(str(docs / "inner"))
    with pytest.raises(AlreadyExists, match="nest"):
        library.locations.add(str(tmp_path))
    with pytest.raises(NotFound, match="does not exist"):
        library.locations.add(str(tmp_path / "nope"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotFound, match="not a directory"):
        library.locations.add(str(tmp_path / "file"))
    with pytest.raises(SdError, match="mode"):
        library.locations.add(str(tmp_path / "Music"), mode="turbo")

    removed = library.locations.remove(loc.id)
    assert removed.id == loc.id
    assert [x.id for x in library.locations.list()] == [music.id]
    assert library.read().execute("SELECT COUNT(*) FROM entries WHERE location_id = ?", (loc.id,)).fetchone() == (0,)
    assert docs.is_dir()  # the files themselves are untouched
    with pytest.raises(NotFound):
        library.locations.get(loc.id)


async def test_a_library_opened_without_a_core_works_on_this_device_and_tells_its_own_bus(tmp_path: Path) -> None:
    """A tool (or a test) opens a library folder by itself: no core, yet its changes are told and local ops run."""
    from sdcore import ops
    from sdcore.events import JobStateChanged, LibraryChanged
    from sdcore.sdpath import SdPath

    library = Libraries(tmp_path / "libraries").create("Alone")
    here = library.context.device_id
    assert not hasattr(library, "core")  # what it needs is in its context, never a core that may be None
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("a")
    try:
        with library.context.bus.subscribe(LibraryChanged, JobStateChanged) as events:
            library.locations.add(str(tmp_path / "docs"))
            copied = await library.jobs.wait(
                await ops.copy(library, [SdPath(here, str(tmp_path / "docs" / "a.txt"))], SdPath(here, str(tmp_path)))
            )
            told = [events.get_nowait() for _ in range(3)]
        assert copied.state == "completed", copied.error
        assert (tmp_path / "a.txt").read_text() == "a"
        assert told[0] == LibraryChanged(library.id, "location added")
        assert [e.state for e in told[1:] if isinstance(e, JobStateChanged)] == ["running", "completed"]
        with pytest.raises(NotFound, match="cannot be reached from here"):
            await ops.copy(library, [SdPath(uuid.uuid4(), "/elsewhere/b.txt")], SdPath(here, str(tmp_path)))
    finally:
        await library.jobs.close()
        library.close()


def test_listing_libraries_while_one_is_open_loses_none_of_its_writes(tmp_path: Path) -> None:
    """Listing libraries read each database's header with open() and close(). Closing any descriptor of a file drops
    every POSIX lock the process holds on it, SQLite's too: another process closing its connection then took the
    database for unused and deleted its WAL, and the open library's next writes went to a deleted file (lost; "disk
    I/O error" once the other process wrote), as an explorer and `sd serve` started together found."""
    libs = Libraries(tmp_path / "libraries")
    lib = libs.create("Mine")
    with lib.write() as db:
        db.execute("CREATE TABLE kept (n INTEGER)")
    database = lib.folder / "database.db"
    assert lib.read().execute("SELECT count(*) FROM kept").fetchone() == (0,)  # a reader connection open too
    assert [info.name for info in libs.list()] == ["Mine"]
    Library(lib.folder, lock_wait=0).close()  # opening a second handle looks at the header too
    other_process = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM sqlite_master'); c.close()"
    subprocess.run([sys.executable, "-c", other_process, str(database)], check=True)
    with lib.write() as db:
        db.execute("INSERT INTO kept VALUES (1)")
    seen = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM kept').fetchone()[0])"
    try:  # another process (a second front end) sees the write, as it would any committed one
        assert subprocess.run([sys.executable, "-c", seen, str(database)], capture_output=True, text=True).stdout == "1\n"
    finally:
        lib.close()
