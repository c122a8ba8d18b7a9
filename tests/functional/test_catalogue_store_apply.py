"""A kept catalogue file brought up to date from its owner's numbered batches (sdcore.sync.catalogue_store_apply): a
real library's file, kept by a second library, follows the owner's changes (a folder renamed, files moved, a tree
deleted, files added and changed, a location removed and one added) batch by batch to the file the owner makes now,
search index and all; a batch applied twice changes nothing, one from after the file's head is refused; an apply cut
off leaves the file as it was; a batch that would break a rule of a catalogue file is refused and writes nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest

from sdcore import search
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.sync import catalogue_store_apply
from sdcore.sync.catalogue import CatalogueBatch, CatalogueEntry, CatalogueRefused, catalogue_changes
from sdcore.sync.catalogue_file import APPLICATION_ID, FORMAT, PAGE_SIZE, SCHEMA, Limits, check, make
from sdcore.sync.catalogue_store import _index_for_reads, connect, keep, path_of, staging_path
from sdcore.sync.catalogue_store_apply import apply
from tests.functional import test_catalogue_store
from tests.functional.test_catalogue_file import indexed, make_home, rows
from tests.functional.test_catalogue_store import QUERIES, SLOT

receiver = test_catalogue_store.receiver  # (a fixture: a second device's library)


def kept(owner: Library, receiver: Library) -> Path:
    """The owner's catalogue as it is now, made by it and kept by `receiver`."""
    make(owner, staging_path(receiver, owner.context.device_id))
    keep(receiver, owner.context.device_id)
    return path_of(receiver, owner.context.device_id)


def head_of(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("SELECT head FROM catalogue").fetchone()[0])


def batches_since(owner: Library, since: int, limit: int) -> list[CatalogueBatch]:
    """The owner's batches after `since`, as they come over the wire."""
    found = []
    while True:
        batch = CatalogueBatch.unpack(catalogue_changes(owner, since, limit).pack())
        found.append(batch)
        since = batch.up_to
        if batch.complete:
            return found


def follow(owner: Library, receiver: Library, limit: int) -> None:
    """Apply the owner's batches since the kept file's head, proving after each that the file keeps every rule."""
    path = path_of(receiver, owner.context.device_id)
    for batch in batches_since(owner, head_of(path), limit):
        apply(receiver, owner.context.device_id, batch)
        assert_checked(path, owner)


def assert_checked(path: Path, owner: Library) -> None:
    """`check` accepts the kept file's tables (copied into a file as a peer sends one: the kept file has the
    receiver's indexes in it), and its search index is the one `keep` builds over them."""
    copy = path.with_name("copy.db")
    copy.unlink(missing_ok=True)
    conn = sqlite3.connect(copy, isolation_level=None)
    conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {FORMAT}")
    conn.execute("ATTACH ? AS kept", (str(path),))
    for sql in SCHEMA:
        conn.execute(sql)
        table = sql.split()[2]
        conn.execute(f"INSERT INTO {table} SELECT * FROM kept.{table}")
    conn.close()
    check(copy, owner.context.device_id)
    _index_for_reads(copy)
    assert vocabulary(copy) == vocabulary(path)  # the search index kept as one made anew over its rows
    copy.unlink()


def vocabulary(path: Path) -> list[list[tuple]]:
    """What the search index and folder index hold: each term and how many rows have it (a row left in, or one taken
    out by other values than it went in with, changes a count)."""
    conn = sqlite3.connect(path)
    found = []
    for index in ("search_index", "folder_index"):
        conn.execute(f"CREATE VIRTUAL TABLE temp.v_{index} USING fts5vocab(main, {index}, row)")
        found.append(conn.execute(f"SELECT term, doc FROM temp.v_{index} ORDER BY term").fetchall())
    conn.close()
    return found


def assert_as_made_now(owner: Library, receiver: Library, tmp_path: Path) -> None:
    """The kept file's tables and search index are those of the file the owner makes now (kept by a third library),
    and the library's search finds on it what it finds on the owner's own database."""
    device = owner.context.device_id
    shutil.rmtree(tmp_path / "fresh", ignore_errors=True)
    third = Library(create_folder(tmp_path / "fresh", "Fresh"), LibraryContext.this_device_only(uuid.uuid4()))
    fresh = kept(owner, third)
    third.close()
    mine = path_of(receiver, device)
    assert rows(mine) == rows(fresh)
    assert vocabulary(mine) == vocabulary(fresh)
    places = {loc.id: loc for loc in owner.locations.list()}
    conn = connect(receiver, device, SLOT)
    try:
        for query in QUERIES:
            assert search.run_on(conn, receiver, query, places) == search.run_on(owner.read(), owner, query, places), query
    finally:
        conn.close()


async def changed(owner: Library, home: Path, tmp_path: Path) -> None:
    """What a user does between two syncs, indexed by the owner: a folder renamed, files moved between folders, a
    tree deleted, files added, a file's content changed, a location removed and another added."""
    (home / "photos" / "2024").rename(home / "photos" / "twenty-four")  # every path below it changes
    (home / "docs" / "Été.PDF").rename(home / "photos" / "Été.PDF")
    (home / "photos" / "copy of winter.jpg").rename(home / "empty" / "copy of winter.jpg")
    shutil.rmtree(home / "old")
    (home / "photos" / "twenty-four" / "autumn").mkdir()
    (home / "photos" / "twenty-four" / "autumn" / "leaves.jpg").write_bytes(b"\xff\xd8\xff" + b"leaf" * 50)
    (home / "docs" / "new.md").write_text("# new")
    (home / "docs" / ".bashrc").write_text("alias la='ls -a' # changed")
    owner.locations.remove(str(tmp_path / "other"))
    await indexed(owner, home)
    third = tmp_path / "third"
    (third / "music" / "live").mkdir(parents=True)
    (third / "music" / "live" / "song.flac").write_bytes(b"fLaC" + b"\0" * 40)
    await indexed(owner, third)


async def indexed_home(owner: Library, tmp_path: Path) -> Path:
    """The owner's home (and a tree to delete later) and a second location, indexed."""
    home = make_home(tmp_path / "home")
    (home / "old" / "deep" / "deeper").mkdir(parents=True)
    for folder in ("old", "old/deep", "old/deep/deeper"):
        (home / folder / "notes.txt").write_text(folder)
    await indexed(owner, home)
    other = tmp_path / "other"
    (other / "inside").mkdir(parents=True)
    (other / "inside" / "x.txt").write_text("x")
    await indexed(owner, other)
    return home


@pytest.mark.parametrize("limit", [3, 2000], ids=["small batches", "one batch"])
async def test_a_kept_catalogue_follows_its_owners_changes_to_the_file_it_makes_now(
    library: Library, receiver: Library, tmp_path: Path, limit: int
) -> None:
    home = await indexed_home(library, tmp_path)
    kept(library, receiver)
    await changed(library, home, tmp_path)

    follow(library, receiver, limit)

    assert_as_made_now(library, receiver, tmp_path)
    paths = [row[2] for row in rows(path_of(receiver, library.context.device_id))[3]]
    assert "photos/twenty-four/summer" in paths and "photos/2024" not in paths and "old/deep" not in paths


async def test_a_batch_applied_twice_or_late_changes_nothing_and_one_from_after_the_files_head_is_refused(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    home = await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    await changed(library, home, tmp_path)
    device = library.context.device_id
    small = batches_since(library, head_of(path), 4)
    assert len(small) > 3

    with pytest.raises(CatalogueRefused, match=f"starts after change {small[1].since}.* ask again from {head_of(path)}"):
        apply(receiver, device, small[1])
    before = path.read_bytes()
    apply(receiver, device, small[0])
    apply(receiver, device, small[0])  # twice
    (whole,) = batches_since(library, small[0].since, 5000)  # one batch over what came already and the rest
    apply(receiver, device, whole)
    after = path.read_bytes()
    assert after != before
    for batch in [*small, whole]:  # late: every one of them carries changes the file has, or older ones
        apply(receiver, device, batch)
    assert path.read_bytes() == after
    assert_as_made_now(library, receiver, tmp_path)


async def test_an_apply_cut_off_midway_leaves_the_file_as_it_was(
    library: Library, receiver: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    await changed(library, home, tmp_path)
    before = path.read_bytes()
    (batch,) = batches_since(library, head_of(path), 5000)
    written = catalogue_store_apply._Writer.place
    calls = []

    def cut_off(self: object, *args: object) -> None:
        written(self, *args)  # type: ignore[arg-type]
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C, or anything that stops it, would

    monkeypatch.setattr(catalogue_store_apply._Writer, "place", cut_off)
    with pytest.raises(KeyboardInterrupt):
        apply(receiver, library.context.device_id, batch)
    assert path.read_bytes() == before and not path.with_name(path.name + "-journal").exists()
    monkeypatch.undo()
    apply(receiver, library.context.device_id, batch)
    assert_as_made_now(library, receiver, tmp_path)


async def test_an_entry_moved_out_of_a_folder_deleted_later_survives_batches_cut_between_the_two(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "home")
    (home / "box" / "kept" / "inner").mkdir(parents=True)
    (home / "box" / "kept" / "inner" / "deep.txt").write_text("deep")
    (home / "box" / "kept" / "file.txt").write_text("file")
    await indexed(library, home)
    path = kept(library, receiver)
    (home / "box" / "kept").rename(home / "kept")  # moved out of box, then box deleted
    shutil.rmtree(home / "box")
    await indexed(library, home)
    (home / "kept").rename(home / "kept again")  # its change numbered after box's deletion
    await indexed(library, home)

    follow(library, receiver, 1)  # a batch a change: box's deletion comes before its own move

    assert_as_made_now(library, receiver, tmp_path)
    names = {row[3] for row in rows(path)[2]}
    assert {"kept again", "inner", "deep.txt", "file.txt"} <= names and "box" not in names


def _new(entry_id: int, location: int, parent: int | None, name: str, kind: str = "file") -> CatalogueEntry:
    return CatalogueEntry(entry_id, location, parent, name, kind, None, 1, 0, 1.7e9, False, None)


REFUSED = {  # what the batch carries (from the kept file's ids by name), what the refusal says
    "an entry in a location never sent": (lambda n: [_new(900_001, 77, n["photos"], "x")], "which its device never sent"),
    "an entry in no folder there": (lambda n: [_new(900_001, 1, 800_000, "x")], "is not a folder of its location"),
    "an entry in a file": (lambda n: [_new(900_001, 1, n["winter.jpg"], "x")], "is not a folder of its location"),
    "an entry in a folder of another location": (
        lambda n: [_new(900_001, 1, n["inside"], "x")], "is not a folder of its location"),
    "a folder moved into itself": (
        lambda n: [_new(n["photos"], 1, n["summer"], "photos", "dir")], "moves folder .* into itself"),
    "more entries than this device keeps": (lambda n: [_new(900_001, 1, n["photos"], "x")], "keeps at most"),
}  # fmt: skip


@pytest.mark.parametrize("what", REFUSED)
async def test_a_batch_that_would_break_a_rule_of_a_catalogue_file_is_refused_and_writes_nothing(
    library: Library, receiver: Library, tmp_path: Path, what: str
) -> None:
    await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    with sqlite3.connect(path) as conn:
        names = dict(conn.execute("SELECT name, id FROM entries"))
        (held,) = conn.execute("SELECT count(*) FROM entries").fetchone()
    carried, says = REFUSED[what]
    head = head_of(path)
    batch = CatalogueBatch(library.context.device_id, "owner", head, head + 1, head + 1, entries=carried(names))
    batch = CatalogueBatch.unpack(batch.pack())  # (a batch fine field by field)
    before = path.read_bytes()
    limits = Limits(entries=held) if "keeps" in says else Limits()
    with pytest.raises(CatalogueRefused, match="^a catalogue batch was refused: .*" + says) as refusal:
        apply(receiver, library.context.device_id, batch, limits)
    assert "\n" not in str(refusal.value) and path.read_bytes() == before


async def test_a_batch_of_another_device_or_past_the_locations_kept_is_refused_and_writes_nothing(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    before, head = path.read_bytes(), head_of(path)
    (place,) = batches_since(library, 0, 1)[:1]  # the first location, as a batch carries it
    (loc,) = place.locations
    third = CatalogueBatch(library.context.device_id, "owner", head, head + 1, head + 1,
                           locations=(loc.__class__(99, "/elsewhere", "x", loc.mode, "indexed", 1.0, None, None),))  # fmt: skip
    with pytest.raises(CatalogueRefused, match="keeps at most .* in 2 of one device"):
        apply(receiver, library.context.device_id, third, Limits(locations=2))
    with pytest.raises(CatalogueRefused, match="claims to be the catalogue of"):
        apply(receiver, uuid.uuid4(), third)
    assert path.read_bytes() == before
    stranger = uuid.uuid4()
    with pytest.raises(FileNotFoundError, match=f"no catalogue of {stranger} is kept"):
        apply(receiver, stranger, dataclasses.replace(third, device_id=stranger))
    assert not path_of(receiver, stranger).exists()


async def test_an_entry_taking_the_name_of_one_whose_change_is_still_to_come_detaches_it_till_then(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    device = library.context.device_id
    with sqlite3.connect(path) as conn:
        n = dict(conn.execute("SELECT name, id FROM entries"))

    def batch(head: int, *entries: CatalogueEntry) -> CatalogueBatch:
        return CatalogueBatch.unpack(CatalogueBatch(device, "owner", head, head + 1, head + 1, entries=entries).pack())

    head = head_of(path)
    swapped = (_new(n["winter.jpg"], 1, n["2024"], "summer", "file"),  # a file takes a folder's name (and its tree)
               _new(900_001, 1, n["docs"], ".bashrc"),  # a new file takes the name of one still to move
               _new(n["trailing."], 1, n["docs"], "archive.tar.GZ"),  # two swap names
               _new(n["archive.tar.GZ"], 1, n["docs"], "trailing."))  # fmt: skip
    apply(receiver, device, batch(head, *swapped))
    assert_checked(path, library)
    with sqlite3.connect(path) as conn:
        detached = {name for (name,) in conn.execute("SELECT name FROM entries WHERE parent_id IS NULL AND name != ''")}
    assert detached == {"summer", ".bashrc"}
    apply(receiver, device, batch(head + 1, _new(n["summer"], 1, n["photos"], "summer", "dir"),
                                  _new(n[".bashrc"], 1, n["empty"], ".bashrc")))  # their own changes  # fmt: skip
    assert_checked(path, library)
    with sqlite3.connect(path) as conn:
        paths = {path for (path,) in conn.execute("SELECT path FROM directory_paths")}
        assert conn.execute("SELECT count(*) FROM entries WHERE parent_id IS NULL AND name != ''").fetchone() == (0,)
    assert "photos/summer" in paths and not any(p.startswith("~") for p in paths)


async def test_a_catalogue_whose_apply_was_killed_reads_as_it_was_and_takes_the_batch_again(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    home = await indexed_home(library, tmp_path)
    path = kept(library, receiver)
    await changed(library, home, tmp_path)
    device = library.context.device_id
    with contextlib.closing(connect(receiver, device, SLOT)) as conn:
        before = conn.execute("SELECT * FROM main.entries ORDER BY id").fetchall()
    (batch,) = batches_since(library, head_of(path), 5000)
    child = os.fork()
    if child == 0:  # kill -9 of the process applying, part way through
        try:
            written = catalogue_store_apply._Writer.place

            def killed(self: catalogue_store_apply._Writer, *args: Any) -> None:
                written(self, *args)
                if self.conn.total_changes > 20:  # (as a batch too big for SQLite's cache: pages written to the file)
                    self.conn.execute("PRAGMA cache_size = 10")
                    self.conn.execute("UPDATE entries SET name = name || ' ' || hex(randomblob(500))")
                    os.kill(os.getpid(), signal.SIGKILL)

            catalogue_store_apply._Writer.place = killed  # type: ignore[method-assign]
            apply(receiver, device, batch)
        finally:
            os._exit(1)
    assert os.waitpid(child, 0)[1] == signal.SIGKILL
    assert path.with_name(path.name + "-journal").exists()  # what it had written over, to be rolled back

    with contextlib.closing(connect(receiver, device, SLOT)) as conn:  # a reader first
        assert conn.execute("SELECT * FROM main.entries ORDER BY id").fetchall() == before
    apply(receiver, device, batch)
    assert_as_made_now(library, receiver, tmp_path)
