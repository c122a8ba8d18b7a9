"""The catalogue: device A's indexed files reach device B as a read-only catalogue B can list, search and find
duplicates in while A is off; A's renames, moves and deletions follow; a peer's lies are refused whole."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sdcore.core import Core
from sdcore.device import load_or_create
from sdcore.errors import SdError
from sdcore.index.indexer import index_location
from sdcore.index.listing import list_indexed
from sdcore.library import Library, Location
from sdcore.sdpath import SdPath
from sdcore.search import Query, run
from sdcore.sync import catalogue
from sdcore.sync.catalogue import (
    CatalogueBatch,
    CatalogueRefused,
    EntryRef,
    apply_catalogue,
    catalogue_changes,
    catalogue_watermark,
    entry_of,
    ref_of,
)


def sd_in(data: Path) -> Callable[..., tuple[str, str]]:
    """`sd --data-dir DATA ARGS…` run in this process (typer's CliRunner): its output and errors, its exit status
    asserted (0; not 0 with ok=False)."""
    from typer.testing import CliRunner

    from sdtui.cli import app

    runner = CliRunner()

    def sd(*args: str, ok: bool = True) -> tuple[str, str]:
        result = runner.invoke(app, ["--data-dir", str(data), *args])
        assert (result.exit_code == 0) == ok, (args, result.stdout, result.stderr, result.exception)
        return result.stdout, result.stderr

    return sd



def device(data: Path, name: str) -> Path:
    """A data dir whose device is called `name`."""
    load_or_create(data)
    info = json.loads((data / "device.json").read_text())
    (data / "device.json").write_text(json.dumps({**info, "name": name}))
    return data


@pytest.fixture
async def alpha(tmp_path: Path) -> AsyncIterator[Core]:
    async with Core(device(tmp_path / "alpha", "alpha")) as core:
        yield core


@pytest.fixture
async def beta(tmp_path: Path) -> AsyncIterator[Core]:
    async with Core(device(tmp_path / "beta", "beta")) as core:
        yield core


async def index(library: Library, loc: Location) -> None:
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


def sync(source: Library, target: Library, limit: int = 2000, batches: int | None = None) -> int:
    """Move `source`'s catalogue into `target` as the transport would: batch after batch from the watermark."""
    sent = 0
    device = source.context.device_id
    while batches is None or sent < batches:
        batch = catalogue_changes(source, catalogue_watermark(target, device), limit)
        apply_catalogue(target, device, CatalogueBatch.unpack(batch.pack()))
        sent += 1
        if batch.complete:
            break
    return sent


def listing(library: Library, device: Core, path: str) -> list[str]:
    """Names in a folder of `device` as `library`'s catalogue of it has them."""
    found = list_indexed(library, path, device.device.id)
    assert found is not None, f"{path} is not in the catalogue"
    return sorted(e.name + ("/" if e.kind == "dir" else "") for e in found)


def make_photos(root: Path) -> Path:
    photos = root / "photos"
    (photos / "2024" / "summer").mkdir(parents=True)
    (photos / "2024" / "summer" / "beach.jpg").write_bytes(b"\xff\xd8\xff" + b"sand" * 100)
    (photos / "2024" / "winter.jpg").write_bytes(b"\xff\xd8\xff" + b"snow" * 100)
    (photos / "notes.txt").write_text("film rolls")
    return photos


async def test_a_device_lists_another_devices_folder_from_its_catalogue(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)

    sync(a, b)

    assert listing(b, alpha, str(photos)) == ["2024/", "notes.txt"]
    assert listing(b, alpha, str(photos / "2024")) == ["summer/", "winter.jpg"]
    assert listing(b, alpha, str(photos / "2024" / "summer")) == ["beach.jpg"]
    (theirs,) = [x for x in b.locations.list() if x.device_id == alpha.device.id]
    assert theirs.path == str(photos) and b.locations.containing(str(photos)) is None  # never one of B's own


async def test_search_finds_the_other_devices_files_under_its_name(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    sync(a, b)

    (hit,) = run(b, Query("beach"))
    assert hit.device_id == alpha.device.id and hit.path == str(photos / "2024" / "summer" / "beach.jpg")


async def test_renames_moves_and_deletions_on_the_owner_reach_the_catalogue(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    sync(a, b)
    beach = entry_of(b.read(), ref_of(a.read(), _id(a, loc, "2024/summer/beach.jpg")))
    assert beach is not None

    os.rename(photos / "2024" / "summer", photos / "holidays")  # a folder moves up and is renamed
    (photos / "notes.txt").unlink()
    (photos / "2024" / "winter.jpg").rename(photos / "2024" / "snow.jpg")
    await index(a, loc)
    sync(a, b)

    assert listing(b, alpha, str(photos)) == ["2024/", "holidays/"]
    assert listing(b, alpha, str(photos / "2024")) == ["snow.jpg"]
    assert listing(b, alpha, str(photos / "holidays")) == ["beach.jpg"]
    assert entry_of(b.read(), ref_of(a.read(), _id(a, loc, "holidays/beach.jpg"))) == beach  # the same row: tags stay
    (hit,) = run(b, Query("beach"))
    assert hit.path == str(photos / "holidays" / "beach.jpg")
    assert not run(b, Query("notes"))


def _as_the_owner_names_it(library: Library) -> list[tuple]:
    """Every catalogue entry with what this device keeps of it, its ids the owner's (comparable across devices)."""
    return library.read().execute(
        "SELECT c.origin_id, pc.origin_id, e.name, e.extension, e.kind, e.object_kind, e.size, e.files, e.mtime,"
        " e.hidden, i.cas_id, d.path, l.path FROM entries e JOIN catalogue_entries c ON c.entry_id = e.id"
        " LEFT JOIN catalogue_entries pc ON pc.entry_id = e.parent_id LEFT JOIN content_identities i ON i.id = e.content_id"
        " LEFT JOIN directory_paths d ON d.entry_id = e.id JOIN locations l ON l.id = e.location_id ORDER BY c.origin_id"
    ).fetchall()


async def test_new_entries_written_in_bulk_are_what_writing_them_one_at_a_time_makes(
    alpha: Core, beta: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of entries new to the receiver is written by a few statements (`_Writer.new_entries`): the same rows,
    paths, content ids, extensions and search hits as one entry at a time, in a first sync and after it (new files in
    folders it has, a new file at a name an entry still holds until its own change comes in a later batch)."""
    tree = tmp_path / "on-alpha" / "tree"
    names = ["Été.JPG", ".hidden", "archive.tar.GZ", "noext", "trailing.", "..dots.txt", "ΣΠ.ΤΧΤ", "a b.c d"]
    for folder in ("x", "x/y", "x/y/z", "w"):
        (tree / folder).mkdir(parents=True)
        for name in names:
            (tree / folder / name).write_text(f"{folder}/{name}")
    (tree / "x" / "same.bin").write_bytes(b"same")
    (tree / "w" / "same.bin").write_bytes(b"same")
    a = alpha.library()
    loc = a.locations.add(str(tree))
    await index(a, loc)
    async with Core(device(tmp_path / "gamma", "gamma")) as gamma:
        bulk, one_by_one = beta.library(), gamma.library()

        def both(limit: int) -> None:
            sync(a, bulk, limit=limit)
            with monkeypatch.context() as m:
                m.setattr(catalogue._Writer, "new_entries", lambda self, entries: False)
                sync(a, one_by_one, limit=limit)

        both(7)  # folders and their files in several batches
        assert _as_the_owner_names_it(bulk) == _as_the_owner_names_it(one_by_one)
        files = [row for row in _as_the_owner_names_it(bulk) if row[4] == "file"]
        assert len(files) == len(names) * 4 + 2 and {(row[2], row[3]) for row in files} >= {
            ("Été.JPG", "jpg"), (".hidden", ""), ("archive.tar.GZ", "gz"), ("noext", ""), ("trailing.", ""),
            ("..dots.txt", "txt"), ("ΣΠ.ΤΧΤ", "τχτ"), ("a b.c d", "c d"),
        }  # fmt: skip
        assert [h.path for h in run(bulk, Query("été"))] == [h.path for h in run(one_by_one, Query("été"))] != []

        (tree / "x" / "noext").rename(tree / "x" / "moved")  # its entry leaves the name, a new file takes it
        (tree / "x" / "noext").write_text("new")
        (tree / "x" / "y" / "new").mkdir()
        (tree / "x" / "y" / "new" / "inside.txt").write_text("inside")
        await index(a, loc)
        (tree / "x" / "moved").write_text("changed")  # the moved entry's change now comes after the new file
        await index(a, loc)
        both(1)
        assert _as_the_owner_names_it(bulk) == _as_the_owner_names_it(one_by_one)
        assert listing(bulk, alpha, str(tree / "x")) == sorted([*names, "moved", "same.bin", "y/"])
        assert listing(bulk, alpha, str(tree / "x" / "y" / "new")) == ["inside.txt"]


async def test_a_batch_whose_folder_comes_after_its_entry_is_refused_whole(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    packed = catalogue_changes(a, 0).pack()
    summer = next(i for i, e in enumerate(packed[7]) if e[3] == "summer")
    packed[7].append(packed[7].pop(summer))  # the folder after the file in it

    with pytest.raises(CatalogueRefused, match="beach.jpg|folder .* is not a folder"):
        apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(packed))
    assert _catalogue_rows(b) == ([], [])


async def test_a_batch_that_brings_one_entry_twice_keeps_the_later(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    packed = catalogue_changes(a, 0).pack()
    notes = next(e for e in packed[7] if e[3] == "notes.txt")
    packed[7].append([*notes[:3], "renamed.txt", *notes[4:]])

    apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(packed))
    assert listing(b, alpha, str(photos)) == ["2024/", "renamed.txt"]


async def test_applying_a_batch_twice_changes_nothing(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    batch = catalogue_changes(a, 0)
    apply_catalogue(b, alpha.device.id, batch)
    before = _catalogue_rows(b)
    apply_catalogue(b, alpha.device.id, batch)
    assert _catalogue_rows(b) == before
    assert catalogue_watermark(b, alpha.device.id) == batch.up_to


async def test_a_batch_that_arrives_after_a_newer_one_changes_nothing(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    old = catalogue_changes(a, 0)
    (photos / "notes.txt").rename(photos / "diary.txt")
    await index(a, loc)
    sync(a, b)
    apply_catalogue(b, alpha.device.id, old)  # a retry of the first batch, late
    assert listing(b, alpha, str(photos)) == ["2024/", "diary.txt"]


async def test_an_interrupted_first_sync_resumes_from_the_watermark(alpha: Core, beta: Core, tmp_path: Path) -> None:
    tree = tmp_path / "on-alpha" / "tree"
    for d in range(20):
        (tree / f"d{d:02}").mkdir(parents=True)
        for f in range(10):
            (tree / f"d{d:02}" / f"f{f}.txt").write_text(f"{d}-{f}")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(tree))
    await index(a, loc)

    assert sync(a, b, limit=25, batches=4) == 4  # cut off after four batches
    assert 0 < catalogue_watermark(b, alpha.device.id) < catalogue_changes(a, 0, 1).head
    sync(a, b, limit=25)  # picks up where it stopped

    assert listing(b, alpha, str(tree)) == [f"d{d:02}/" for d in range(20)]
    for d in range(20):
        assert listing(b, alpha, str(tree / f"d{d:02}")) == [f"f{f}.txt" for f in range(10)]
    assert _count(b, alpha) == _count(a, alpha)


def _index_names(library: Library) -> set[str]:
    rows = library.read().execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'")
    return {name for (name,) in rows}


def make_tree(root: Path) -> Path:
    """20 folders of 10 files, each file's size its number (0 to 199 bytes)."""
    for d in range(20):
        (root / f"d{d:02}").mkdir(parents=True)
        for f in range(10):
            (root / f"d{d:02}" / f"f{f}.txt").write_text("x" * (d * 10 + f))
    return root


async def test_a_big_first_sync_cut_off_by_a_crash_has_its_indexes_again_when_the_library_opens(
    alpha: Core, beta: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "BULK_LOAD_MIN", 0)  # 200 entries make a bulk load, as 20,000 do
    tree = make_tree(tmp_path / "on-alpha" / "tree")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(tree)))
    indexes = _index_names(b)

    sync(a, b, limit=25, batches=3)  # it brings more than B holds: written as a bulk load, without some indexes
    assert _index_names(b) < indexes
    b.close()  # the process holding B dies here, mid first sync
    again = Library(b.folder, b.context)  # the next process to open it

    assert _index_names(again) == indexes
    sync(a, again, limit=25)  # the first sync resumes where it was cut
    assert _count(again, alpha) == _count(a, alpha)
    (hit,) = run(again, Query("f7", min_size=197))
    assert hit.path == str(tree / "d19" / "f7.txt")
    biggest = run(again, Query(ext=("txt",), sort="size", limit=3, device=str(alpha.device.id)))
    assert [h.path for h in biggest] == [str(tree / "d19" / f"f{f}.txt") for f in (9, 8, 7)]
    again.close()


async def test_a_first_sync_bringing_two_files_of_one_name_into_a_folder_is_refused_whole(
    alpha: Core, beta: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalogue, "BULK_LOAD_MIN", 0)
    tree = make_tree(tmp_path / "on-alpha" / "tree")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(tree)))
    sync(a, b, limit=25, batches=2)  # d00's folder came already
    before, watermark = _catalogue_rows(b), catalogue_watermark(b, alpha.device.id)
    packed = catalogue_changes(a, watermark, 25).pack()
    files = [e for e in packed[7] if e[4] == "file"]
    files[-1][2:4] = files[0][2:4]  # the last file claims the folder and name of the first
    assert files[0][2] == files[-1][2]

    with pytest.raises(CatalogueRefused, match="contradicts itself"):
        apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(packed))
    assert _catalogue_rows(b) == before
    assert catalogue_watermark(b, alpha.device.id) == watermark


async def test_a_peers_batch_for_another_device_is_refused_and_writes_nothing(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    batch = catalogue_changes(a, 0)
    stranger = beta.device.id  # claims to be B's own catalogue
    with pytest.raises(CatalogueRefused, match="claims"):
        apply_catalogue(b, stranger, batch)
    assert _catalogue_rows(b) == ([], [])


async def test_a_peer_cannot_make_this_device_hold_more_than_the_cap_of_its_catalogue(
    alpha: Core, beta: Core, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    monkeypatch.setattr(catalogue, "MAX_HELD", 3)  # alpha's six entries are over it
    with pytest.raises(CatalogueRefused, match="keeps at most 3 entries of one device's catalogue"):
        sync(a, b)
    assert _catalogue_rows(b) == ([], [])


async def test_a_peer_cannot_make_this_device_hold_more_than_the_cap_of_its_locations(
    alpha: Core, beta: Core, tmp_path: Path
) -> None:
    from sdcore.library.volume_locations import take_over

    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(make_photos(tmp_path / "on-alpha"))))
    honest = catalogue_changes(a, 0)

    def batch(n: int) -> CatalogueBatch:  # alpha's n-th batch: 1,000 made-up locations, no entries (none counted)
        said = [dataclasses.replace(honest.locations[0], id=n * 1000 + i, path=f"/made-up/{n}/{i}", root_id=None,
                                    volume_id=f"uuid:{n}-{i}", volume_path="") for i in range(1, 1001)]  # fmt: skip
        return dataclasses.replace(honest, since=n, up_to=n + 1, head=n + 1, locations=tuple(said), entries=[])

    took = []
    for n in range(catalogue.MAX_HELD_LOCATIONS // 1000):
        apply_catalogue(b, alpha.device.id, batch(n))
        if n in (0, catalogue.MAX_HELD_LOCATIONS // 1000 - 1):
            started = time.process_time()
            take_over(b)  # what each batch that moves a location costs (the explorer lists them all, too)
            took.append(time.process_time() - started)
    print(f"take_over with 1,000 and {catalogue.MAX_HELD_LOCATIONS:,} of alpha's locations: {took[0]:.3f}, {took[1]:.3f} s CPU")
    with pytest.raises(CatalogueRefused, match=f"keeps at most {catalogue.MAX_HELD_LOCATIONS:,} locations of one device's catalogue, and it would hold 11,000"):
        apply_catalogue(b, alpha.device.id, batch(catalogue.MAX_HELD_LOCATIONS // 1000))
    apply_catalogue(b, alpha.device.id, batch(catalogue.MAX_HELD_LOCATIONS // 1000 - 1))  # known ones: said again
    assert len(b.locations.list()) == catalogue.MAX_HELD_LOCATIONS


async def test_migrate_leaves_a_synced_devices_catalogue_as_that_devices_mapping_and_all(
    alpha: Core, beta: Core, tmp_path: Path
) -> None:
    """A location streamed by a device the library is shared with stays its own even where its folder exists here
    (as alpha's does on beta in this test: one machine): its rows and the mapping of their ids stay as they are."""
    from sdcore.library.adopt import adopt

    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    sync(a, b)
    before = _catalogue_rows(b)
    done = adopt(b)
    assert done.adopted == [] and before[0] and _catalogue_rows(b) == before
    assert {loc.device_id for loc in b.locations.list()} == {alpha.device.id}


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("name", "../../etc", "not a file name"),
        ("name", "a/b", "not a file name"),
        ("name", "nul\0here", "not a file name"),
        ("name", "..", "not a file name"),
        ("size", 1 << 62, "not a size"),
        ("size", -1, "not a size"),
        ("kind", "door", "kind is unknown"),
        ("cas_id", "not hex!", "not a content id"),
        ("mtime", float("nan"), "not a time"),
        ("mtime", 1 << 70, "not a time"),
        ("id", True, "not an id"),
        ("parent_id", "1", "folder is not an id"),
        ("hidden", 1, "hidden flag is not a flag"),
        ("object_kind", ["image"], "object kind is unknown"),
        ("kind", {"file": 1}, "kind is unknown"),
    ],
)
async def test_a_peers_lying_entry_is_refused(alpha: Core, tmp_path: Path, field: str, value: object, why: str) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a = alpha.library()
    await index(a, a.locations.add(str(photos)))
    packed = catalogue_changes(a, 0).pack()
    columns = ["id", "location_id", "parent_id", "name", "kind", "object_kind", "size", "files", "mtime", "hidden", "cas_id"]
    victim = next(e for e in packed[7] if e[4] == "file")
    victim[columns.index(field)] = value
    with pytest.raises(CatalogueRefused, match=why):
        CatalogueBatch.unpack(packed)


async def test_a_peers_batch_with_a_missing_folder_or_a_loop_writes_nothing(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    sync(a, b)
    before = _catalogue_rows(b)
    watermark = catalogue_watermark(b, alpha.device.id)
    packed = catalogue_changes(a, 0).pack()
    packed[3] = packed[4] = packed[5] = watermark  # a batch after what B has
    dirs = {e[3]: e for e in packed[7] if e[4] == "dir"}

    orphan = list(dirs["summer"])
    orphan[2] = 999_999  # a folder its device never sent
    packed[7] = [orphan]
    with pytest.raises(CatalogueRefused, match="not a folder"):
        apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(packed))

    loop = list(dirs["2024"])
    loop[2] = dirs["summer"][0]  # 2024 moved into its own subfolder
    packed[7] = [loop]
    with pytest.raises(CatalogueRefused, match="into itself"):
        apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(packed))

    assert _catalogue_rows(b) == before
    assert catalogue_watermark(b, alpha.device.id) == watermark


async def test_a_batch_that_skips_changes_is_refused(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    late = catalogue_changes(a, 3)
    with pytest.raises(CatalogueRefused, match="ask again from 0"):
        apply_catalogue(b, alpha.device.id, late)


async def test_refs_name_the_owner_and_its_id(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    sync(a, b)
    on_a = _id(a, loc, "notes.txt")
    ref = ref_of(a.read(), on_a)
    assert ref == EntryRef(alpha.device.id, on_a)
    on_b = entry_of(b.read(), ref)
    assert on_b is not None and ref_of(b.read(), on_b) == ref
    assert entry_of(b.read(), EntryRef(alpha.device.id, 10**9)) is None


async def test_another_devices_location_is_never_indexed_here(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    sync(a, b)
    (theirs,) = b.locations.list()
    with pytest.raises(SdError, match="only alpha indexes or changes it"):
        await index_location(b, theirs)
    for change in (lambda: b.locations.remove(theirs.id), lambda: b.locations.set_mode(theirs.id, "deep"),
                   lambda: b.locations.set_ignore(theirs.id, ["*.jpg"])):  # fmt: skip
        with pytest.raises(SdError, match="only alpha indexes or changes it"):
            change()
    assert b.locations.list() == [theirs]


def _id(library: Library, loc: Location, rel: str) -> int:
    from sdcore.library.entries import entry_at

    return entry_at(library, os.path.join(loc.path, rel))


def _catalogue_rows(library: Library) -> tuple[list[tuple], list[tuple]]:
    conn = library.read()
    entries = conn.execute(
        "SELECT e.id, e.parent_id, e.name, e.kind, e.size, e.mtime, c.origin_id FROM entries e"
        " JOIN catalogue_entries c ON c.entry_id = e.id ORDER BY e.id"
    ).fetchall()
    paths = conn.execute("SELECT * FROM directory_paths ORDER BY entry_id").fetchall()
    return entries, paths


def _count(library: Library, owner: Core) -> int:
    conn: sqlite3.Connection = library.read()
    return int(conn.execute(
        "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?",
        (str(owner.device.id),),
    ).fetchone()[0])


# -- from the shell, while the other device is off ---------------------------------------------------------


def test_from_the_shell_an_offline_devices_files_are_listed_searched_and_not_changed(tmp_path: Path) -> None:


    photos = make_photos(tmp_path / "on-alpha")
    (tmp_path / "on-beta").mkdir()
    (tmp_path / "on-beta" / "beach-copy.jpg").write_bytes((photos / "2024" / "summer" / "beach.jpg").read_bytes())

    async def share() -> None:
        async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "beta", "beta")) as beta:
            a, b = alpha.library(), beta.library()
            await index(a, a.locations.add(str(photos)))
            await index(b, b.locations.add(str(tmp_path / "on-beta")))
            sync(a, b)

    asyncio.run(share())
    sd = sd_in(tmp_path / "beta")

    out, _ = sd("ls", f"alpha:{photos}")  # alpha is not running: its catalogue answers
    assert "offline, as of" in out.splitlines()[0] and "read-only" in out.splitlines()[0]
    assert "2024/" in out and "notes.txt" in out
    out, _ = sd("ls", f"alpha:{photos}/2024/summer", "--json")
    assert [e["name"] for e in json.loads(out)] == ["beach.jpg"]

    out, _ = sd("search", "beach")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert "alpha (offline)" in rows["beach.jpg"] and "alpha" not in rows["beach-copy.jpg"]
    out, _ = sd("search", "beach", "--device", "alpha", "--json")
    found = json.loads(out)
    assert [(h["name"], h["device"], h["online"]) for h in found] == [("beach.jpg", "alpha", False)]

    _, err = sd("rm", f"alpha:{photos}/notes.txt", ok=False)
    assert "alpha is offline: its files can be listed and searched from the catalogue (as of" in err
    assert "not changed" in err
    for refused in (
        ("cp", str(tmp_path / "on-beta" / "beach-copy.jpg"), f"alpha:{photos}"),
        ("mv", f"alpha:{photos}/notes.txt", str(tmp_path / "on-beta")),
        ("rename", f"alpha:{photos}/notes.txt", "old-notes.txt"),
        ("mkdir", f"alpha:{photos}/new"),
    ):
        _, err = sd(*refused, ok=False)
        assert err.startswith("error: alpha is offline: its files can be listed and searched"), (refused, err)
    assert (photos / "notes.txt").exists() and not (photos / "new").exists()

    out, _ = sd("location", "list")
    assert f"alpha:{photos}" in out and str(tmp_path / "on-beta") in out

    out, _ = sd("dupes", "--devices")
    assert "same sampled id (device offline)" in out
    assert f"alpha (offline): {photos}/2024/summer/beach.jpg" in out
    assert str(tmp_path / "on-beta" / "beach-copy.jpg") in out


async def test_the_watcher_never_follows_another_devices_folder(alpha: Core, beta: Core, tmp_path: Path) -> None:
    photos = make_photos(tmp_path / "on-alpha")  # the same machine: the folder exists here too
    mine = tmp_path / "on-beta"
    mine.mkdir()
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    await index(b, b.locations.add(str(mine)))
    sync(a, b)
    await beta.go_live(b)
    watcher = beta.watcher(b)
    assert watcher is not None
    await asyncio.wait_for(watcher.ready.wait(), 30)

    (photos / "new-on-alpha.jpg").write_bytes(b"x")
    (mine / "new-on-beta.txt").write_text("y")
    deadline = time.monotonic() + 30
    while "new-on-beta.txt" not in {e.name for e in list_indexed(b, str(mine)) or []}:
        assert time.monotonic() < deadline, "the watcher never indexed beta's own new file"
        await asyncio.sleep(0.05)
    assert listing(b, alpha, str(photos)) == ["2024/", "notes.txt"]  # alpha's folder: alpha's to index


async def test_a_local_index_tells_the_sync_that_this_devices_catalogue_changed(alpha: Core, tmp_path: Path) -> None:
    from sdcore.events import CatalogueChanged

    photos = make_photos(tmp_path / "on-alpha")
    a = alpha.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    head = catalogue_changes(a, 0).head  # the library is shared from now on
    with alpha.bus.subscribe(CatalogueChanged) as events:
        (photos / "more.txt").write_text("more")
        await index(a, loc)
        event = await asyncio.wait_for(events.__anext__(), 10)
    assert event == CatalogueChanged(a.id, alpha.device.id)
    batch = catalogue_changes(a, head)
    assert "more.txt" in {e.name for e in batch.entries} and batch.since == head


def test_rescanning_another_devices_location_from_the_shell_says_where_to_run_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sdtui.cli import app

    photos = make_photos(tmp_path / "on-alpha")

    async def share() -> None:
        async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "beta", "beta")) as beta:
            a = alpha.library()
            await index(a, a.locations.add(str(photos), name="photos"))
            sync(a, beta.library())

    asyncio.run(share())
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "beta"), "location", "rescan", "photos"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: location 'photos' is on alpha, not this device: only alpha indexes or")


async def test_a_tag_given_on_the_owner_shows_once_its_file_reaches_the_catalogue(alpha: Core, beta: Core, tmp_path: Path) -> None:
    from sdcore import tags

    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    tags.create(a, "summer")
    tags.assign(a, "summer", [_id(a, loc, "2024/summer/beach.jpg")])
    b.sync.apply(a.sync.ops_since(b.sync.watermarks()))  # the tag comes first: B has no such file yet
    assert tags.entries(b, "summer") == []

    sync(a, b)

    beach = entry_of(b.read(), ref_of(a.read(), _id(a, loc, "2024/summer/beach.jpg")))
    assert beach is not None and [t.tag for t in tags.of(b, beach)] == ["summer"]


async def test_an_offline_devices_places_are_its_locations_from_the_catalogue(alpha: Core, beta: Core, tmp_path: Path) -> None:
    from sdcore.api import Api

    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(photos)))
    sync(a, b)
    api = Api(beta)
    (place,) = await api.devices.places(alpha.device.id)
    assert place.path.path == str(photos) and place.is_dir
    offline = await api.offline(place.path)
    assert offline is not None and offline.device.name == "alpha" and offline.describe().startswith("offline, as of 20")
    listed = [e.name async for batch in api.browse(place.path) for e in batch]
    assert sorted(listed) == ["2024", "notes.txt"]
    with pytest.raises(SdError, match="not in the catalogue of alpha, which is offline"):
        [e async for e in api.browse(SdPath(alpha.device.id, "/etc"))]


async def test_a_folder_shown_from_the_catalogue_hears_its_changes(alpha: Core, beta: Core, tmp_path: Path) -> None:
    from sdcore.events import EntriesChanged

    photos = make_photos(tmp_path / "on-alpha")
    a, b = alpha.library(), beta.library()
    loc = a.locations.add(str(photos))
    await index(a, loc)
    sync(a, b)
    (photos / "2024" / "winter.jpg").rename(photos / "2024" / "frost.jpg")
    await index(a, loc)
    with beta.bus.subscribe(EntriesChanged) as events:
        sync(a, b)
        heard = set()
        while (event := events.get_nowait()) is not None:
            heard.add((event.device_id, event.directory))
    assert (alpha.device.id, str(photos / "2024")) in heard


async def test_a_paired_device_that_is_switched_off_is_listed_from_its_catalogue(tmp_path: Path) -> None:
    from sdcore.api import Api
    from sdcore.net.testing import device_network, pair

    async with (
        device_network(tmp_path / "alpha", "alpha") as far,
        device_network(tmp_path / "beta", "beta", listen=False) as here,
    ):
        await pair(far, here)  # then alpha's server stops: alpha is off
    photos = make_photos(tmp_path / "on-alpha")
    async with Core(tmp_path / "alpha") as alpha, Core(tmp_path / "beta") as beta:
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(photos)))
        sync(a, b)
    async with Core(tmp_path / "beta") as beta:
        api = Api(beta)
        where = await api.resolve(f"alpha:{photos}")
        started = time.monotonic()
        offline = await api.offline(where)
        assert offline is not None and offline.device.name == "alpha"
        assert sorted([e.name async for batch in api.browse(where) for e in batch]) == ["2024", "notes.txt"]
        assert time.monotonic() - started < 30  # refused at once on 127.0.0.1: no wait for a timeout
        with pytest.raises(SdError, match="alpha is offline"):
            await api.ops.trash([where.child("notes.txt")])
