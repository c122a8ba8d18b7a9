"""A library is its folder: copied into another data dir, kept on another disk, backed up beside itself, or
carried to a new machine, it is listed and used there, told apart from a library of the same name, and never
mixed up with a copy of itself. Real `sd` processes, real data dirs (two data dirs are two devices), real files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sdcore.core import Core
from sdcore.errors import AlreadyExists, NotFound
from sdcore.library import Libraries
from sdtui.cli import app

pytestmark = pytest.mark.timeout(300)  # stories of a dozen `sd` commands each, on a machine that may be loaded

SD = [str(Path(sys.executable).parent / "sd")]
ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}


def sd(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`sd --data-dir DATA ...` as a script runs it: no terminal, nothing typed."""
    return subprocess.run(
        [*SD, "--data-dir", str(data), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=180,
        env=ENV,
    )  # fmt: skip


def ok(data: Path, *args: str) -> str:
    out = sd(data, *args)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    return out.stdout


def as_json(data: Path, *args: str) -> Any:
    return json.loads(ok(data, *args, "--json"))


def one_line_error(out: subprocess.CompletedProcess[str], *words: str) -> str:
    """The command failed with one line of error (no traceback) holding `words`; returns that line."""
    assert out.returncode == 1, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """Every file of a folder (its lock and SQLite's -wal/-shm files aside), by content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock" and not p.name.endswith(("-wal", "-shm"))
    }


def listed(data: Path) -> dict[str, dict]:
    """`sd library list --json`, by folder name."""
    return {i["folder_name"]: i for i in as_json(data, "library", "list")}


def found(data: Path, *args: str) -> set[str]:
    """The paths a search finds."""
    return {hit["path"] for hit in as_json(data, *args)}


@pytest.fixture
def laptop(tmp_path: Path) -> tuple[Path, Path]:
    """Device A's data dir, whose default library indexes 'docs' with tags, a note and a favourite on its files.

    Returns (data dir, docs)."""
    data, docs = tmp_path / "laptop", tmp_path / "docs"
    for sub in ("bills", "photos"):
        (docs / sub).mkdir(parents=True)
    (docs / "bills" / "invoice-2024.pdf").write_text("invoice 2024\n")
    (docs / "bills" / "invoice-2025.pdf").write_text("invoice 2025\n")
    (docs / "photos" / "beach.jpg").write_bytes(b"\xff\xd8 beach")
    (docs / "readme.txt").write_text("readme\n")
    # the same `sd` commands in this process: the stories' own commands run as processes, five start-ups more
    # for every story's set-up prove nothing they do not
    for args in (
        ["location", "add", str(docs)],
        ["tag", "create", "work"],
        ["tag", "add", "work", str(docs / "bills" / "invoice-2024.pdf"), str(docs / "readme.txt")],
        ["note", str(docs / "photos" / "beach.jpg"), "summer 2024"],
        ["fav", str(docs / "bills" / "invoice-2025.pdf")],
    ):
        done = CliRunner().invoke(app, ["--data-dir", str(data), *args])
        assert done.exit_code == 0, (args, done.output, done.exception)
    return data, docs


def library_folder(data: Path, name: str = "My Library") -> Path:
    return data / "libraries" / f"{name}.sdlibrary"


def device_id(data: Path) -> str:
    return str(json.loads((data / "device.json").read_text())["id"])


def test_a_library_copied_from_another_device_is_listed_searched_and_keeps_its_tags(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, docs = laptop
    b = tmp_path / "desktop"
    ok(b, "library", "list")  # the desktop's own "My Library"
    shutil.copytree(library_folder(a), library_folder(b, "Kernel"))

    libraries = listed(b)
    assert [(i["name"], i["state"]) for i in libraries.values()] == [("My Library", "ok"), ("My Library", "ok")]
    assert libraries["Kernel"]["id"] != libraries["My Library"]["id"]
    told = sd(b, "library", "list")
    assert "2 libraries are named 'My Library'" in told.stderr and "--library Kernel" in told.stderr

    # each is picked: by folder name, by name where the folder has it, by a prefix of its id
    hits = as_json(b, "--library", "Kernel", "search", "invoice")
    assert {h["path"] for h in hits} == {str(docs / "bills" / f"invoice-{y}.pdf") for y in (2024, 2025)}
    assert {h["device_id"] for h in hits} == {device_id(a)}  # the laptop's files, as the laptop's catalogue
    one_line_error(sd(b, "--library", "Kernel", "location", "rescan", "docs"), "not this device")  # never scanned here
    assert found(b, "--library", "My Library", "search", "invoice") == set()
    assert found(b, "--library", libraries["Kernel"]["id"][:8], "search", "invoice") == {h["path"] for h in hits}
    # and the tags, the note and the favourite came with it
    tagged = as_json(b, "--library", "Kernel", "tag", "show", "work")
    assert {t["path"] for t in tagged} == {str(docs / "bills" / "invoice-2024.pdf"), str(docs / "readme.txt")}
    beach = f"sd://{device_id(a)}{docs / 'photos' / 'beach.jpg'}"  # the laptop's file, not this machine's path
    assert ok(b, "--library", "Kernel", "note", beach).strip() == "summer 2024"
    assert [f["path"] for f in as_json(b, "--library", "Kernel", "fav")] == [str(docs / "bills" / "invoice-2025.pdf")]

    ok(b, "library", "use", "Kernel")
    assert found(b, "search", "beach") == {str(docs / "photos" / "beach.jpg")}
    missing = sd(b, "--library", "Kernell", "search", "x")
    one_line_error(missing, "no library 'Kernell'", "'My Library' (folder 'Kernel')", "'My Library' (folder 'My Library')")


def test_a_backup_beside_its_library_is_a_copy_refused_until_forked(laptop: tuple[Path, Path], tmp_path: Path) -> None:
    a, docs = laptop
    backup = library_folder(a, "My Library backup")
    shutil.copytree(library_folder(a), backup)
    before = digest(backup)

    libraries = listed(a)
    assert libraries["My Library"]["state"] == "ok" and libraries["My Library"]["default"]
    assert libraries["My Library backup"]["state"] == "copy"
    assert libraries["My Library backup"]["copy_of"] == "My Library"
    assert libraries["My Library backup"]["id"] == libraries["My Library"]["id"]

    refused = sd(a, "--library", "My Library backup", "search", "invoice")
    one_line_error(refused, "'My Library backup'", "same library as folder 'My Library'", "sd library fork")
    one_line_error(sd(a, "library", "use", "My Library backup"), "copy")
    assert digest(backup) == before  # nothing of it was opened or written
    # the library itself is untouched by its copy, by name and by id
    assert len(found(a, "search", "invoice")) == 2
    assert len(found(a, "--library", libraries["My Library"]["id"], "search", "invoice")) == 2

    ok(a, "library", "fork", "My Library backup")
    libraries = listed(a)
    assert {i["state"] for i in libraries.values()} == {"ok"}
    assert libraries["My Library backup"]["name"] == "My Library backup"  # "My Library" is the other's
    assert libraries["My Library backup"]["id"] != libraries["My Library"]["id"]
    assert libraries["My Library"]["default"]
    tagged = as_json(a, "--library", "My Library backup", "tag", "show", "work")
    assert {t["path"] for t in tagged} == {str(docs / "bills" / "invoice-2024.pdf"), str(docs / "readme.txt")}


def test_a_library_copied_in_by_hand_and_used_stays_the_library_when_its_own_backup_appears(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = laptop
    b = tmp_path / "desktop"
    (b / "libraries").mkdir(parents=True)
    shutil.copytree(library_folder(a), library_folder(b, "Kernel"))
    assert len(found(b, "--library", "Kernel", "search", "invoice")) == 2  # used here: it is this data dir's
    shutil.copytree(library_folder(b, "Kernel"), library_folder(b, "Kernel backup"))  # sorts first

    libraries = listed(b)
    assert (libraries["Kernel"]["state"], libraries["Kernel backup"]["state"]) == ("ok", "copy")
    assert len(found(b, "--library", libraries["Kernel"]["id"], "search", "invoice")) == 2
    one_line_error(sd(b, "--library", "Kernel backup", "search", "invoice"), "copy", "sd library fork 'Kernel backup'")


def test_sd_library_open_lists_a_folder_kept_elsewhere_and_leaves_it_there(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, docs = laptop
    b = tmp_path / "desktop"
    usb = tmp_path / "usb" / "Work.sdlibrary"
    shutil.copytree(library_folder(a), usb)

    said = ok(b, "library", "open", str(usb))
    assert "listed as 'Work'" in said and "stays where it is" in said
    assert f"it holds 1 location of another device ({device_id(a)[:8]})" in said and "sd library migrate Work" in said
    assert (library_folder(b, "Work")).is_symlink() and usb.is_dir()
    assert len(found(b, "--library", "Work", "search", "invoice")) == 2
    ok(b, "--library", "Work", "tag", "add", "work", str(docs / "photos" / "beach.jpg"))  # written where it is
    assert len(as_json(b, "--library", str(usb), "tag", "show", "work")) == 3  # named by its path too
    assert "listed already" in ok(b, "library", "open", str(usb))

    # a copy of it elsewhere is the same library: refused, and nothing is listed
    other = tmp_path / "other" / "Work.sdlibrary"
    shutil.copytree(usb, other)
    one_line_error(sd(b, "library", "open", str(other)), "same library as folder 'Work'", "sd library fork")
    # until it is forked where it is
    ok(b, "library", "fork", str(other))
    assert "listed as 'Work-2'" in ok(b, "library", "open", str(other))

    # its disk unplugged: said so, never another library in its place
    kept = digest(usb)
    usb.parent.rename(tmp_path / "unplugged")
    libraries = listed(b)
    assert libraries["Work"]["state"] == "missing"
    one_line_error(sd(b, "--library", "Work", "search", "invoice"), "is not there")
    assert "'Work' (folder 'Work-2') is the default library now" in ok(b, "library", "use", "Work-2")  # which Work
    (tmp_path / "unplugged").rename(usb.parent)
    assert len(found(b, "--library", "Work", "search", "invoice")) == 2

    said = ok(b, "library", "delete", "Work", "--yes")
    assert "forgot library" in said and str(usb) in said
    assert not os.path.lexists(library_folder(b, "Work")) and digest(usb) == kept


def test_the_default_library_on_a_disk_not_mounted_is_said_missing_not_replaced(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = laptop
    b = tmp_path / "desktop"
    usb = tmp_path / "usb" / "Work.sdlibrary"
    shutil.copytree(library_folder(a), usb)
    ok(b, "library", "list")  # the desktop's own library first
    ok(b, "library", "open", str(usb))
    ok(b, "library", "use", "Work")
    usb.parent.rename(tmp_path / "unplugged")
    one_line_error(sd(b, "search", "invoice"), "default library cannot be used", "is not there")


def test_migrate_adopts_the_folders_that_exist_here_and_keeps_tags_on_the_same_files(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, docs = laptop
    music, films = tmp_path / "music", tmp_path / "films"
    for folder in (music, films):
        folder.mkdir()
        (folder / "track.txt").write_text(folder.name)
        ok(a, "location", "add", str(folder))
    b = tmp_path / "desktop"
    (b / "libraries").mkdir(parents=True)
    shutil.copytree(library_folder(a), library_folder(b))  # the laptop's library, carried to a new machine
    ids = {h["path"]: h["entry_id"] for h in as_json(b, "search", "invoice")}  # the laptop's entries, as copied

    # the files arrive on the new machine as a restore does: same paths and times, new inodes
    shutil.move(docs, tmp_path / "docs.old")
    shutil.copytree(tmp_path / "docs.old", docs)
    shutil.rmtree(tmp_path / "docs.old")
    (docs / "bills" / "invoice-2024.pdf").write_text("invoice 2024, corrected here\n")  # tagged, and edited
    (docs / "bills" / "invoice-2026.pdf").write_text("invoice 2026\n")
    shutil.rmtree(films)  # not on this machine
    ok(b, "location", "add", str(music))  # this machine indexes it already

    said = ok(b, "library", "migrate")
    laptop_id = device_id(a)[:8]
    assert f"adopted docs ({docs})" in said
    assert f"not here: {films} (location 3) stays device {laptop_id}'s" in said
    assert f"kept as device {laptop_id}'s: {music} (location 2) overlaps this device's location 4" in said

    here = device_id(b)
    hits = as_json(b, "search", "invoice")
    assert {h["path"] for h in hits} == {str(docs / "bills" / f"invoice-{y}.pdf") for y in (2024, 2025, 2026)}
    assert {h["device_id"] for h in hits} == {here}
    assert {h["path"]: h["entry_id"] for h in hits if h["path"] in ids} == ids  # the same entries, now this device's
    tagged = as_json(b, "tag", "show", "work")
    assert {t["path"] for t in tagged} == {str(docs / "bills" / "invoice-2024.pdf"), str(docs / "readme.txt")}
    # a file renamed here from now on keeps its note (the index knows this disk's inodes), with its history
    (docs / "photos" / "beach.jpg").rename(docs / "photos" / "beach-2024.jpg")
    ok(b, "location", "rescan", str(docs))
    assert ok(b, "note", str(docs / "photos" / "beach-2024.jpg")).strip() == "summer 2024"
    assert "summer 2024" in ok(b, "note", str(docs / "photos" / "beach-2024.jpg"), "--history")
    assert any(c["tag"] == "work" for c in as_json(b, "tag", "history", str(docs / "bills" / "invoice-2024.pdf")))
    assert [f["path"] for f in as_json(b, "fav")] == [str(docs / "bills" / "invoice-2025.pdf")]
    locations = {loc["path"]: loc for loc in as_json(b, "location", "list")}
    assert locations[str(docs)]["state"] == "indexed" and locations[str(docs)]["files"] == 5

    # the folder that was missing turns up: a second migrate adopts it, and nothing else moves
    films.mkdir()
    (films / "track.txt").write_text("films")
    said = ok(b, "library", "migrate")
    assert f"adopted films ({films})" in said and "docs" not in said
    assert found(b, "search", "track") == {str(music / "track.txt"), str(films / "track.txt")}


def test_a_folder_that_is_not_a_library_gets_a_clear_error_and_loses_nothing(
    laptop: tuple[Path, Path], tmp_path: Path
) -> None:
    a, _ = laptop
    b = tmp_path / "desktop"
    ok(b, "library", "list")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("not a library")
    damaged = tmp_path / "damaged.sdlibrary"
    shutil.copytree(library_folder(a), damaged)
    (damaged / "library.json").write_text('{"id": "7b0c', encoding="utf-8")
    future = tmp_path / "Future.sdlibrary"
    shutil.copytree(library_folder(a), future)
    meta = json.loads((future / "library.json").read_text())
    (future / "library.json").write_text(json.dumps({**meta, "id": str(uuid.uuid4()), "schema": 999}))
    conn = sqlite3.connect(future / "database.db")
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    kept = {folder: digest(folder) for folder in (plain, damaged, future)}
    libraries_before = sorted(p.name for p in (b / "libraries").iterdir())

    one_line_error(sd(b, "library", "open", str(plain)), str(plain), "no library.json")
    one_line_error(sd(b, "library", "open", str(damaged)), "library.json cannot be read")
    one_line_error(sd(b, "library", "open", str(future)), "newer sdtui (schema 999", "update sdtui")
    one_line_error(sd(b, "library", "open", str(tmp_path / "nowhere")), "is not a folder")
    assert sorted(p.name for p in (b / "libraries").iterdir()) == libraries_before

    # one from a newer sdtui copied in by hand: listed as such, refused everywhere, never migrated down or rebuilt
    shutil.copytree(future, library_folder(b, "Future"))
    assert listed(b)["Future"]["state"] == "newer"
    one_line_error(sd(b, "--library", "Future", "search", "invoice"), "newer sdtui", "nothing was changed")
    one_line_error(sd(b, "library", "repair", "Future", "--force"), "cannot be repaired here", "newer sdtui")
    one_line_error(sd(b, "library", "migrate", "Future"), "newer sdtui")
    assert digest(library_folder(b, "Future")) == kept[future]
    assert all(digest(folder) == kept[folder] for folder in (plain, damaged, future))


async def test_two_libraries_of_one_name_are_told_apart_everywhere_a_library_is_named(tmp_path: Path) -> None:
    async with Core(tmp_path / "data") as core:
        first, second = core.libraries.create("Photos"), core.libraries.create("Shared")
        await core.libraries.close()
        root = core.libraries.root
        (root / "Photos.sdlibrary").rename(root / "Mum.sdlibrary")
        (root / "Shared.sdlibrary").rename(root / "Dad.sdlibrary")
        for folder in ("Mum", "Dad"):
            meta = json.loads((root / f"{folder}.sdlibrary" / "library.json").read_text())
            (root / f"{folder}.sdlibrary" / "library.json").write_text(json.dumps({**meta, "name": "Photos"}))

        with pytest.raises(NotFound, match=r"'Photos' names 2 libraries .*folder 'Dad'.*folder 'Mum'"):
            core.libraries.find("Photos")
        assert core.library("Mum").id == first.id and core.library("Dad").id == second.id
        assert core.library(str(second.id)[:6]).id == second.id

        from sdcore.api import Api

        assert (await Api(core, library="Dad").library().info()).id == second.id
        assert (await Api(core).library("Mum.sdlibrary").info()).id == first.id
        with pytest.raises(NotFound):
            await Api(core).library("Photos").info()
        assert core.libraries.rename("Dad", "Dad's photos").name == "Dad's photos"
        assert core.libraries.find("Photos").folder_name == "Mum"


async def test_a_folder_given_a_known_id_by_create_gets_a_free_folder_name(tmp_path: Path) -> None:
    libraries = Libraries(tmp_path / "libraries")
    mine = libraries.create("My Library")
    shared = uuid.uuid4()
    theirs = libraries.create("My Library", library_id=shared)  # a library shared by another device, same name
    assert theirs.id == shared and theirs.folder.name == "My Library-2.sdlibrary"
    assert libraries.find("My Library").id == mine.id
    with pytest.raises(AlreadyExists, match="here already"):
        libraries.create("Other", library_id=shared)
    await libraries.close()


async def test_migrate_never_follows_a_symlink_put_where_a_location_was(laptop: tuple[Path, Path], tmp_path: Path) -> None:
    """The copied library names folders; what is at those paths on this machine is looked at when it is used: a
    symlink there (to this machine's private folder) is not a folder of the location, at adopt nor at indexing."""
    from sdcore.index.indexer import index_location
    from sdcore.library.adopt import adopt

    a, docs = laptop
    b = tmp_path / "desktop"
    (b / "libraries").mkdir(parents=True)
    shutil.copytree(library_folder(a), library_folder(b))
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwords.txt").write_text("hunter2\n")
    real_docs = tmp_path / "docs.real"
    docs.rename(real_docs)
    docs.symlink_to(secret)
    async with Core(b) as core:
        library = core.library()
        done = adopt(library)  # checked: a symlink is not the folder the location names
        assert done.adopted == [] and [loc.path for loc in done.absent] == [str(docs)]

        docs.unlink()
        real_docs.rename(docs)
        done = adopt(library)  # the folder is back: adopted
        assert [loc.path for loc in done.adopted] == [str(docs)]
        docs.rename(real_docs)  # and swapped for a symlink before it is indexed (used)
        docs.symlink_to(secret)
        await library.jobs.wait(await index_location(library, done.adopted[0]))
        names = {name for (name,) in library.read().execute("SELECT name FROM entries")}
        assert "passwords.txt" not in names


async def test_a_location_made_at_a_symlink_is_indexed_through_it(tmp_path: Path) -> None:
    """The user's own link (a location added as `~/photos` that links to a disk) is the folder the location was made
    with: followed, unlike a symlink put where a location's folder was."""
    from sdcore.index.indexer import index_location

    disk = tmp_path / "disk" / "photos"
    disk.mkdir(parents=True)
    (disk / "beach.jpg").write_bytes(b"\xff\xd8 beach")
    (tmp_path / "photos").symlink_to(disk)
    async with Core(tmp_path / "data") as core:
        library = core.library()
        location = library.locations.add(str(tmp_path / "photos"))
        record = await library.jobs.wait(await index_location(library, location))
        assert record.state == "completed", record.error
        assert "beach.jpg" in {name for (name,) in library.read().execute("SELECT name FROM entries")}
