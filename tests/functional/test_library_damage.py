"""A careful user's bad day: a damaged or full library never silently becomes an empty one, and parallel
`sd` commands wait for each other instead of failing on the library's lock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sdcore.library import damage

SD = [str(Path(sys.executable).parent / "sd")]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}  # asyncssh's DSA warnings are not ours to judge here


def sd(data: Path, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sd --data-dir DATA ...` as a script runs it: no terminal, nothing typed."""
    return subprocess.run(
        [*SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=timeout, cwd=cwd, env=ENV,
    )  # fmt: skip


def ok(data: Path, *args: str, cwd: Path | None = None) -> str:
    out = sd(data, *args, cwd=cwd)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with one line of error (no traceback) holding `words`; returns that line."""
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Every file of a library folder but its lock and SQLite's own -wal/-shm files, by content."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != ".lock" and not p.name.endswith(("-wal", "-shm"))
    }


@pytest.fixture
def tagged(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A data dir whose default library indexes 'docs' (600 files in 12 folders), with tags, notes and a favourite.

    Returns (data dir, docs, library folder).
    """
    data, docs = tmp_path / "data", tmp_path / "docs"
    for d in range(12):
        (docs / f"d{d}").mkdir(parents=True)
        for f in range(50):
            (docs / f"d{d}" / f"file{f}.txt").write_text(f"folder {d} file {f}\n" * (f + 1))
    asyncio.run(_index_and_tag(data, docs))  # in this process: five `sd` start-ups cost more than all the rest
    folder = data / "libraries" / "My Library.sdlibrary"
    assert folder.is_dir()
    return data, docs, folder


async def _index_and_tag(data: Path, docs: Path) -> None:
    """What `sd location add DOCS --mode content`, `sd tag create work`, `sd tag add`, `sd note` and `sd fav` do."""
    from sdcore.api import Api
    from sdcore.core import Core

    async with Core(data) as core:
        library = Api(core).library()
        here = core.local_path
        await library.locations.add(str(docs), mode="content", index=True)
        await library.tags.create("work")
        await library.tags["work"].add(here(str(docs / "d0" / "file1.txt")), here(str(docs / "d11" / "file49.txt")))
        await library.notes.set(here(str(docs / "d5" / "file5.txt")), "the signed copy")
        await library.favourites.set(here(str(docs / "d7" / "file7.txt")))


def overwrite_pages(database: Path, table: str, count: int = 3) -> None:
    """Damage `count` leaf pages of a table in the middle of the file, as a failing disk would."""
    conn = sqlite3.connect(database)
    pages = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno", (table,))]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    assert len(pages) > count + 2, pages
    middle = len(pages) // 2
    with open(database, "r+b") as f:
        for page in pages[middle : middle + count]:
            f.seek((page - 1) * page_size)
            f.write(os.urandom(page_size))


# -- 13.1: a damaged library is never replaced by an empty one ------------------------------------------


@pytest.mark.parametrize("how", ["emptied", "deleted"])
def test_a_lost_database_is_said_and_never_made_anew(tagged: tuple[Path, Path, Path], how: str) -> None:
    data, _, folder = tagged
    database = folder / "database.db"
    if how == "emptied":
        database.write_bytes(b"")
    else:
        database.unlink()
    for leftover in ("database.db-wal", "database.db-shm"):
        (folder / leftover).unlink(missing_ok=True)
    before = digest(folder)

    one_line_error(sd(data, "location", "list"), "My Library", "empty" if how == "emptied" else "missing", "sd library repair")
    one_line_error(sd(data, "tag", "create", "new"), "sd library repair")
    assert digest(folder) == before  # nothing made, nothing written
    assert (database.stat().st_size == 0) if how == "emptied" else not database.exists()
    listed = sd(data, "library", "list", "--json")
    assert listed.returncode == 0
    [entry] = json.loads(listed.stdout)  # no new library beside it
    assert entry["name"] == "My Library" and entry["default"] and "database" in entry["damaged"]
    table = sd(data, "library", "list")
    assert "DAMAGED" in table.stdout and "sd library repair 'My Library'" in table.stderr


def test_a_damaged_library_json_makes_no_new_library_and_moves_no_default(tagged: tuple[Path, Path, Path]) -> None:
    data, docs, folder = tagged
    settings = (data / "settings.json").read_text()
    good = (folder / "library.json").read_text()
    (folder / "library.json").write_text('{"id": "4bf2')  # cut short

    one_line_error(sd(data, "location", "list"), "library.json", "sd library")
    one_line_error(sd(data, "search", "file1"), "library.json")
    assert [p.name for p in (data / "libraries").iterdir()] == ["My Library.sdlibrary"]
    assert (data / "settings.json").read_text() == settings
    [entry] = json.loads(ok(data, "library", "list", "--json"))
    assert entry["name"] == "My Library" and "library.json" in entry["damaged"]

    (folder / "library.json").write_text(good)  # the user puts it back: all is as it was
    assert [loc["path"] for loc in json.loads(ok(data, "location", "list", "--json"))] == [str(docs)]
    assert len(json.loads(ok(data, "search", "--tag", "work", "--json"))) == 2


# -- 13.2: damaged pages ------------------------------------------------------------------------------


def test_damaged_pages_are_found_on_open_and_nothing_is_written_into_them(tagged: tuple[Path, Path, Path]) -> None:
    data, docs, folder = tagged
    overwrite_pages(folder / "database.db", "entries")
    before = digest(folder)

    one_line_error(sd(data, "tag", "create", "later"), "damaged", "sd library repair 'My Library'", "backup")
    one_line_error(sd(data, "ls", str(docs / "d3")), "damaged")
    after = digest(folder)
    assert after.pop(damage.MARK)  # the damage is remembered beside the database...
    assert after == before  # ...and nothing else was written
    [entry] = json.loads(ok(data, "library", "list", "--json"))
    assert "damaged" in entry["damaged"]


def test_check_names_the_damage_and_repair_rebuilds_the_index_keeping_tags_notes_and_favourites(
    tagged: tuple[Path, Path, Path],
) -> None:
    data, docs, folder = tagged
    assert "is sound" in ok(Path(data.name), "library", "check", cwd=data.parent)  # a data dir given relative too
    overwrite_pages(folder / "database.db", "entries")
    damaged_bytes = (folder / "database.db").read_bytes()

    checked = sd(data, "library", "check")
    assert checked.returncode == 1 and "is damaged" in checked.stdout and "sd library repair" in checked.stderr

    repaired = sd(data, "library", "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "kept 1 locations and 1 tags" in repaired.stdout and "back on 4 entries" in repaired.stdout
    [backup] = [p for p in folder.glob("database.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert backup.read_bytes() == damaged_bytes  # the damaged database is kept as it was
    assert "is sound" in ok(data, "library", "check")

    assert sorted(h["path"] for h in json.loads(ok(data, "search", "--tag", "work", "--json"))) == [
        str(docs / "d0" / "file1.txt"), str(docs / "d11" / "file49.txt"),
    ]  # fmt: skip
    assert [h["path"] for h in json.loads(ok(data, "search", "signed", "--json"))] == [str(docs / "d5" / "file5.txt")]
    assert len(json.loads(ok(data, "ls", str(docs / "d6"), "--json"))) == 50  # the index is whole again
    [location] = json.loads(ok(data, "location", "list", "--json"))
    assert location["state"] == "indexed" and location["files"] == 600
    ok(data, "tag", "create", "after-repair")  # writable again


def test_a_big_library_finds_damage_at_its_first_malformed_read_and_refuses_writes_from_then_on(
    tagged: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdtui.cli import app

    data, docs, folder = tagged
    overwrite_pages(folder / "database.db", "entries", count=6)
    monkeypatch.setattr(damage, "QUICK_CHECK_LIMIT", 0)  # as if the database were too big to check on each open
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, ["--data-dir", str(data), *args])

    assert invoke("location", "list").exit_code == 0  # the damage is not in what this reads: it goes unnoticed
    listed = [invoke("ls", str(docs / f"d{d}")) for d in range(12)]  # one of these reads a damaged page
    failed = [r for r in listed if r.exit_code != 0]
    assert failed and all(r.exit_code == 0 for r in listed[: listed.index(failed[0])])
    assert failed[0].exit_code == 1 and "damaged" in failed[0].output and "Traceback" not in failed[0].output
    assert failed[0].exception is None or isinstance(failed[0].exception, SystemExit)
    before = digest(folder)
    refused = invoke("tag", "create", "later")
    assert refused.exit_code == 1 and "damaged" in refused.output
    assert digest(folder) == before


async def test_the_api_says_a_damaged_page_it_meets_as_the_error_a_person_reads(
    tagged: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A front end asking the core API meets an SdError that says what to do, never sqlite3's own error."""
    from sdcore.api import Api
    from sdcore.core import Core
    from sdcore.errors import SdError

    data, docs, folder = tagged
    overwrite_pages(folder / "database.db", "entries", count=6)
    monkeypatch.setattr(damage, "QUICK_CHECK_LIMIT", 0)  # found when a read meets it, not on open
    async with Core(data) as core:
        entries = Api(core).library().entries
        with pytest.raises(SdError, match="damaged.*sd library repair"):
            for d in range(12):  # one of these folders lies on a damaged page
                await entries.find(*(core.local_path(str(docs / f"d{d}" / f"file{f}.txt")) for f in range(50)))


@pytest.mark.parametrize("follower", ["in time", "late"])
def test_an_index_job_meeting_damage_says_so_in_one_line_and_writes_no_more(
    tagged: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch, follower: str
) -> None:
    from sdcore.jobs.manager import JobManager
    from sdtui.cli import app

    data, docs, folder = tagged
    for d in range(12):  # every folder changed: the rescan reads every folder's entries
        (docs / f"d{d}" / "new.txt").write_text("new")
    overwrite_pages(folder / "database.db", "entries", count=6)
    monkeypatch.setattr(damage, "QUICK_CHECK_LIMIT", 0)
    if follower == "late":  # a loaded machine: the job has met the damage and ended before the command waits for it
        wait = JobManager.wait

        async def late_wait(self: JobManager, job_id: str) -> Any:
            while self.is_running(job_id):
                await asyncio.sleep(0.01)
            return await wait(self, job_id)

        monkeypatch.setattr(JobManager, "wait", late_wait)
    monkeypatch.setenv("COLUMNS", "300")
    rescanned = CliRunner().invoke(app, ["--data-dir", str(data), "location", "rescan", str(docs)])
    assert rescanned.exit_code == 1, (rescanned.output, rescanned.exception)
    assert "damaged" in rescanned.output and "sd library repair" in rescanned.output
    assert len(rescanned.output.strip().splitlines()) == 1, rescanned.output
    assert "Traceback" not in rescanned.output
    assert damage.MARK in digest(folder)  # every later open refuses at once
    one_line_error(sd(data, "search", "file1"), "damaged")


async def test_a_live_core_checks_a_big_library_in_the_background_and_stops_writing_to_it(
    tagged: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.core import Core
    from sdcore.library import LibraryDamaged

    data, _, folder = tagged
    overwrite_pages(folder / "database.db", "entries")
    monkeypatch.setattr(damage, "QUICK_CHECK_LIMIT", 0)  # too big to check on open
    async with Core(data) as core:
        library = core.library()
        assert library.damaged is None  # nothing read the damage yet
        await core.go_live(library)
        await asyncio.gather(*core._checks)
        assert library.damaged and "sd library repair" in library.damaged
        with pytest.raises(LibraryDamaged):
            with library.write() as db:
                db.execute("INSERT INTO tags (name, created) VALUES ('later', 0)")
    with pytest.raises(LibraryDamaged, match="damaged"):  # and every later open refuses at once
        Core(data).library()


async def test_damage_found_after_a_write_is_still_refused_at_the_next_open(tagged: tuple[Path, Path, Path]) -> None:
    """Closing checkpoints the last writes into the database file: the damage mark must still name that file."""
    from sdcore.core import Core
    from sdcore.library import LibraryDamaged

    data, _, folder = tagged
    async with Core(data) as core:
        library = core.library()
        with library.write() as db:
            db.execute("INSERT INTO tags (name, created) VALUES ('late', 0)")  # in the WAL until the last close
        library.found_damage("a page read back wrong")
    with pytest.raises(LibraryDamaged, match="a page read back wrong"):
        Core(data).library()


# -- 13.3: a full disk -----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs mounted in tmp_path (needs root: CI runs as root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (CI runs these as root)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the disk but `leave` bytes."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_is_one_line_reads_go_on_and_the_index_pauses_then_carries_on(tmp_path: Path, small_disk: Path) -> None:
    data = small_disk / "data"
    small, many = tmp_path / "small", tmp_path / "many"
    small.mkdir()
    (small / "readme.txt").write_text("hello")
    for d in range(20):
        (many / f"d{d}").mkdir(parents=True)
        for f in range(200):
            (many / f"d{d}" / f"f{f}.txt").write_text(f"{d}/{f}")
    ok(data, "location", "add", str(small), "--mode", "content")
    filler = fill(small_disk, leave=400 << 10)

    added = sd(data, "location", "add", str(many), "--mode", "content")
    line = one_line_error(added, "is full", str(small_disk), "free some space")
    assert "paused" in line
    [job] = [j for j in json.loads(ok(data, "job", "list", "--all", "--json")) if j["location_id"] == 2]
    assert job["state"] == "paused"
    locations = {loc["name"]: loc for loc in json.loads(ok(data, "location", "list", "--json"))}
    assert locations["many"]["state"] == "paused"

    fill(small_disk, leave=0)
    filler.unlink()
    filler = fill(small_disk, leave=0)  # now not a byte is left
    assert [h["name"] for h in json.loads(ok(data, "search", "readme", "--json"))] == ["readme.txt"]
    assert len(json.loads(ok(data, "ls", str(small), "--json"))) == 1
    ok(data, "job", "list")
    one_line_error(sd(data, "tag", "create", "x"), "is full", str(small_disk))

    filler.unlink()
    (small_disk / "filler").unlink(missing_ok=True)
    ok(data, "location", "rescan", "many")
    locations = {loc["name"]: loc for loc in json.loads(ok(data, "location", "list", "--json"))}
    assert locations["many"]["state"] == "indexed" and locations["many"]["files"] == 4000
    assert len(json.loads(ok(data, "search", "--ext", "txt", "--limit", "10000", "--json"))) == 4001


# -- 13.7 and 13.8: parallel commands and the lock -------------------------------------------------------


def test_ten_parallel_commands_reads_and_writes_all_succeed(tagged: tuple[Path, Path, Path], tmp_path: Path) -> None:
    data, docs, _ = tagged
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ("cp", str(docs / "d2"), str(out)),
        ("ls", "/etc"),
        ("search", "file1"),
        ("job", "list"),
        ("tag", "create", "one"),
        ("tag", "create", "two"),
        ("note", str(docs / "d1" / "file3.txt"), "written while others run"),
        ("ls", str(docs / "d4")),
        ("tag", "add", "work", str(docs / "d9" / "file9.txt")),
        ("location", "list"),
    ]
    with concurrent.futures.ThreadPoolExecutor(len(commands)) as pool:
        results = list(pool.map(lambda args: sd(data, *args, timeout=240), commands))
    failed = [(args, r.stderr) for args, r in zip(commands, results, strict=True) if r.returncode != 0]
    assert not failed
    assert {"one", "two", "work"} <= {t["name"] for t in json.loads(ok(data, "tag", "list", "--json"))}
    assert len(list((out / "d2").iterdir())) == 50


def test_a_write_waits_for_the_library_and_says_what_it_waits_for(tagged: tuple[Path, Path, Path]) -> None:
    from sdcore.library import Library

    data, _, folder = tagged
    holder = Library(folder, program="a test holding the library")
    holder.hold_lock()
    waiting = subprocess.Popen(
        [*SD, "--data-dir", str(data), "tag", "create", "patient"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, stdin=subprocess.DEVNULL, env=ENV,
    )  # fmt: skip
    try:
        assert waiting.stderr is not None
        said = waiting.stderr.readline()  # the library is held until `sd` says what it waits for, however slow
        assert waiting.poll() is None, said  # it waits...
    finally:
        holder.close()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, said + err  # ...and carries on once the library is free
    assert f"waiting for library 'My Library', open in process {os.getpid()} (a test holding the library)" in said
    assert "patient" in {t["name"] for t in json.loads(ok(data, "tag", "list", "--json"))}


def test_the_lock_names_the_command_as_it_was_typed(tagged: tuple[Path, Path, Path]) -> None:
    data, _, folder = tagged
    ok(data, "tag", "create", "named")
    holder = (folder / ".lock").read_text()
    assert "(sd tag create)" in holder and "--data-dir" not in holder


# -- 12.8: choosing the library ---------------------------------------------------------------------------


def test_library_create_switches_only_when_asked_and_use_changes_the_default(tmp_path: Path) -> None:
    data = tmp_path / "data"

    def default() -> str:
        return next(lib["name"] for lib in json.loads(ok(data, "library", "list", "--json")) if lib["default"])

    ok(data, "library", "create", "Work")  # the first library is the default
    assert default() == "Work"
    kept = ok(data, "library", "create", "Photos")  # no terminal to ask on, no flag: the default stays
    assert default() == "Work" and "sd library use Photos" in kept
    ok(data, "library", "create", "Music", "--no-use")
    assert default() == "Work"
    assert "'Travel' is the default library now" in ok(data, "library", "create", "Travel", "--use")
    assert default() == "Travel"
    assert "'Photos' is the default library now" in ok(data, "library", "use", "Photos")
    assert default() == "Photos"
    one_line_error(sd(data, "library", "use", "Nope"), "no library 'Nope'")


def test_library_create_asks_on_a_terminal(tmp_path: Path) -> None:
    import pty

    data = tmp_path / "data"
    ok(data, "library", "create", "Work")
    main, side = pty.openpty()
    with subprocess.Popen(
        [*SD, "--data-dir", str(data), "library", "create", "Photos"], stdin=side, stdout=side, stderr=side, env=ENV
    ) as proc:
        os.close(side)
        seen = b""
        while b"default library" not in seen:
            seen += os.read(main, 1024)
        os.write(main, b"y\n")
        assert proc.wait(60) == 0
    os.close(main)
    assert next(lib["name"] for lib in json.loads(ok(data, "library", "list", "--json")) if lib["default"]) == "Photos"


async def test_sdtui_opens_the_library_it_is_given(tmp_path: Path) -> None:
    from sdcore.errors import NotFound
    from sdtui.app import SdtuiApp, parse_args

    data = tmp_path / "data"
    ok(data, "library", "create", "Work")
    ok(data, "library", "create", "Photos", "--no-use")
    assert parse_args(["--library", "Photos", "."]).library == "Photos"
    app = SdtuiApp(str(tmp_path), data_dir=data, library="Photos")
    async with app.run_test():
        assert (await app.api.library().info()).name == "Photos"
    with pytest.raises(NotFound, match="no library 'Nope'"):
        SdtuiApp(str(tmp_path), data_dir=tmp_path / "other", library="Nope")


def test_a_default_library_whose_library_json_is_lost_is_refused_not_guessed_then_repaired(tmp_path: Path) -> None:
    data = tmp_path / "data"
    ok(data, "library", "create", "Work")
    ok(data, "library", "create", "Photos", "--use")
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "cat.jpg").write_bytes(b"meow")
    ok(data, "location", "add", str(tmp_path / "pictures"))
    settings = (data / "settings.json").read_text()
    photos = data / "libraries" / "Photos.sdlibrary"
    (photos / "library.json").write_text("")

    one_line_error(sd(data, "location", "list"), "Photos", "sd library use")  # not Work's locations instead
    assert (data / "settings.json").read_text() == settings
    assert sorted(p.name for p in (data / "libraries").iterdir()) == ["Photos.sdlibrary", "Work.sdlibrary"]

    repaired = ok(data, "library", "repair", "Photos")
    assert "written anew" in repaired and "'Photos' is the default library now" in repaired
    [location] = json.loads(ok(data, "location", "list", "--json"))  # the index lived on in its database
    assert location["path"] == str(tmp_path / "pictures") and location["files"] == 1


async def test_a_repaired_library_never_gives_an_entry_id_again_that_it_or_a_device_it_is_shared_with_saw(
    tagged: tuple[Path, Path, Path],
) -> None:
    """The devices a library is shared with name its entries by id: a repair starts its ids above the damaged
    database's floor, its highest id, and the high-water mark kept in the data dir (sdcore.sync.highwater)."""
    from sdcore.core import Core
    from sdcore.sync.highwater import Mark, _write

    data, docs, folder = tagged
    conn = sqlite3.connect(folder / "database.db")
    last = conn.execute(  # the files with the highest ids, deleted: the floor is above every id left
        "SELECT p.path || '/' || e.name FROM entries e JOIN directory_paths p ON p.entry_id = e.parent_id"
        " WHERE e.kind = 'file' ORDER BY e.id DESC LIMIT 10"
    ).fetchall()
    conn.close()
    for (rel,) in last:
        (docs / rel).unlink()
    ok(data, "location", "rescan", "1")
    conn = sqlite3.connect(folder / "database.db")
    floor = conn.execute("SELECT id FROM entry_id_floor").fetchone()[0]
    highest = conn.execute("SELECT max(id) FROM entries").fetchone()[0]
    conn.close()
    assert floor > highest
    library_id = json.loads((folder / "library.json").read_text())["id"]
    overwrite_pages(folder / "database.db", "entries")

    async with Core(data) as core:
        assert core.libraries.context.marks is not None
        _write(core.libraries.context.marks / f"{library_id}.json", Mark(entry_id=floor + 50))  # others saw more
        await core.libraries.repair("My Library", on_step=lambda step: None)
        ids = [i for (i,) in core.library().read().execute("SELECT id FROM entries")]
    assert len(ids) > 500 and min(ids) > floor + 50
