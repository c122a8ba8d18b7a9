"""Another device's catalogue kept as a file of its own (sdcore.sync.catalogue_store): a real library's catalogue
file, staged, checked and kept by a second library, answers the library's own search and listing SQL as the owner's
database does; the second library's own tags, notes and favourites never reach it (its ids are of another
numbering), those put on it by global ids do; a refused file is deleted and the one kept stays."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import metadata, search, tags
from sdcore.index.listing import CHILDREN_SQL, list_indexed
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.sdpath import SdPath
from sdcore.sync import catalogue_store_apply
from sdcore.sync.catalogue import (
    CatalogueRefused,
    adopt_catalogue_file,
    apply_catalogue,
    catalogue_changes,
    catalogue_file_kept,
    catalogue_watermark,
)
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import (
    connect,
    forget,
    global_id,
    keep,
    kept,
    path_of,
    reader,
    refresh_shared,
    slot_of,
    staging_path,
)
from tests.functional.crafted_catalogues import DEVICE, FILE, tiny
from tests.functional.kept import in_tables, kept_names
from tests.functional.test_catalogue import sync
from tests.functional.test_catalogue_file import indexed, make_home

SLOT = 3


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Library]:
    """A second device's library (its own device id), empty."""
    other = Library(create_folder(tmp_path / "receiver", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    yield other
    other.close()


async def kept_from(owner: Library, receiver: Library, tmp_path: Path) -> sqlite3.Connection:
    """The owner's catalogue, made by it, staged and kept by `receiver`; a connection reading it."""
    await indexed(owner, make_home(tmp_path / "home"))
    device = owner.context.device_id
    make(owner, staging_path(receiver, device))
    held = keep(receiver, device)
    assert held.entries > 15 and path_of(receiver, device).is_file() and not staging_path(receiver, device).exists()
    return connect(receiver, device, SLOT)


QUERIES = [
    search.Query("winter"),
    search.Query("beach"),
    search.Query("photos summer"),
    search.Query("2024"),
    search.Query("*.pdf"),
    search.Query("", ext=("jpg",)),
    search.Query("", kind=("image",)),
    search.Query("", kind=("folder",), sort="name"),
    search.Query("", min_size=10, sort="size"),
    search.Query("e", sort="date", reverse=True),
]


async def test_a_kept_catalogue_answers_the_librarys_own_search_and_listing_as_the_owners_database_does(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    conn = await kept_from(library, receiver, tmp_path)
    places = {loc.id: loc for loc in library.locations.list()}  # the file's locations: the owner's ids
    for query in QUERIES:
        mine = search.run_on(library.read(), library, query, places)
        assert mine, query
        assert search.run_on(conn, receiver, query, places) == mine, query
    own = library.read()
    for (folder,) in own.execute("SELECT entry_id FROM directory_paths"):
        assert conn.execute(CHILDREN_SQL, (folder,)).fetchall() == [
            (*row[:4], None, None, *row[6:9], None, row[10]) for row in own.execute(CHILDREN_SQL, (folder,))
        ]  # (no inode, mode or link's target comes in a catalogue)


async def test_the_receivers_own_tags_notes_and_favourites_never_reach_a_catalogue_those_by_global_ids_do(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    await indexed(receiver, make_home(tmp_path / "receivers-home"))  # its own entries, numbered 1, 2, ... as the owner's
    conn = await kept_from(library, receiver, tmp_path)
    local = [row[0] for row in receiver.read().execute("SELECT id FROM entries WHERE parent_id IS NOT NULL")]
    tags.create(receiver, "local")
    tags.assign(receiver, "local", local)
    metadata.set_favorite(receiver, local)
    for entry in local:
        metadata.set_note(receiver, entry, "a local note")
    places = {loc.id: loc for loc in library.locations.list()}

    def found(**asked: object) -> list[str]:
        return sorted(hit.name for hit in search.run_on(conn, receiver, search.Query(**asked), places))  # type: ignore[arg-type]

    assert found(tags=("local",)) == [] and found(favorites=True) == [] and found(text="local note") == []
    (winter,) = library.read().execute("SELECT id FROM entries WHERE name = 'winter.jpg'").fetchone()
    tags.create(receiver, "seen")
    with receiver.write() as db:  # as tagging another device's file will write it
        tag = db.execute("SELECT id FROM tags WHERE name = 'seen'").fetchone()[0]
        db.execute("INSERT INTO tag_assignments (tag_id, entry_id, created) VALUES (?, ?, 0)", (tag, global_id(SLOT, winter)))
        db.execute("INSERT INTO user_metadata (entry_id, favorite, updated) VALUES (?, 1, 0)", (global_id(SLOT, winter),))
    refresh_shared(conn, SLOT)  # (copied into the connection: `reader` does it when the library changed)
    assert found(tags=("seen",)) == ["winter.jpg"] and found(favorites=True) == ["winter.jpg"]
    assert found(tags=("local",)) == []


async def test_a_refused_file_is_deleted_and_the_kept_catalogue_stays(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    conn = await kept_from(library, receiver, tmp_path)
    device = library.context.device_id
    before = path_of(receiver, device).read_bytes()
    staging_path(receiver, device).write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)  # what a liar sends
    with pytest.raises(CatalogueRefused):
        keep(receiver, device)
    assert not staging_path(receiver, device).exists() and path_of(receiver, device).read_bytes() == before
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] > 15
    conn.close()
    forget(receiver, device)
    assert not path_of(receiver, device).exists()
    with pytest.raises(FileNotFoundError):
        connect(receiver, device, SLOT)


async def test_every_table_of_the_library_naming_an_entry_is_shadowed_on_a_catalogue_connection(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    conn = await kept_from(library, receiver, tmp_path)
    shadowed = {name for (name,) in conn.execute("SELECT name FROM temp.sqlite_schema WHERE type IN ('view', 'table')")}
    assert {"entries", "locations", "content_identities", "user_metadata", "tag_assignments", "file_hashes",
            "media_data", "scan_queue", "entry_places", "catalogue_entries", "catalogue_log"} <= shadowed  # fmt: skip
    for name in shadowed - {"entries", "locations", "content_identities"}:
        if name.startswith("note_index"):  # (the notes' search index: of the library's notes by global ids, none here)
            continue
        assert conn.execute(f'SELECT count(*) FROM "{name}"').fetchone() == (0,), name
    with pytest.raises(sqlite3.OperationalError):  # read-only, the library too
        conn.execute("DELETE FROM lib.tags")
    # a search joins every entry it reads to its note: by an index (through a view of ids less the slot's bits, a scan
    # of the device's notes for each entry: 2,000 notes made a search 6 s)
    plan = conn.execute("EXPLAIN QUERY PLAN SELECT m.note FROM entries e LEFT JOIN user_metadata m ON m.entry_id = e.id"
                        " WHERE e.parent_id = 1").fetchall()  # fmt: skip
    assert any(row[3].startswith("SEARCH m USING") for row in plan), plan


def _kept_in_a_thread(receiver: Library, device: uuid.UUID) -> BaseException | None:
    """What `keep` raised (None: it returned), failing the test if it is still at it after 20 s (on a FIFO it waited for
    a writer forever: this unblocks it so that the test ends)."""
    raised: list[BaseException | None] = []

    def run() -> None:
        try:
            keep(receiver, device)
            raised.append(None)
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        staged = staging_path(receiver, device)
        os.close(os.open(staged, os.O_WRONLY | os.O_NONBLOCK))  # a writer that writes nothing: its reader gets EOF
        thread.join(20)
        pytest.fail("keep waited on a FIFO staged in place of a file")
    return raised[0]


@pytest.mark.parametrize("what", ["symlink", "fifo", "folder"])
async def test_a_staged_name_that_is_not_a_file_is_refused_and_what_it_leads_to_is_left_untouched(
    library: Library, receiver: Library, tmp_path: Path, what: str
) -> None:
    """A link staged to a real catalogue elsewhere was followed, written into (its indexes) and kept as a link; a FIFO
    made keep wait for a writer forever; a folder raised IsADirectoryError from the cleanup, not a refusal."""
    conn = await kept_from(library, receiver, tmp_path)
    device = library.context.device_id
    before = path_of(receiver, device).read_bytes()
    staged = staging_path(receiver, device)
    elsewhere = tmp_path / "elsewhere.db"
    make(library, elsewhere)
    outside = elsewhere.read_bytes()
    {"symlink": lambda: staged.symlink_to(elsewhere), "fifo": lambda: os.mkfifo(staged), "folder": staged.mkdir}[what]()
    raised = await asyncio.to_thread(_kept_in_a_thread, receiver, device)
    assert isinstance(raised, CatalogueRefused) and "not a file" in str(raised), raised
    assert path_of(receiver, device).read_bytes() == before and not path_of(receiver, device).is_symlink()
    assert elsewhere.read_bytes() == outside
    assert not staged.exists() or what == "folder"  # (a folder is not a file to delete: it is left)
    conn.close()


def test_a_catalogue_of_entry_ids_that_global_ids_cannot_number_is_refused(receiver: Library) -> None:
    """An entry of id 1 << 40 (which `check` takes: the batches' ids go to 2**63 - 1) was kept, and could never be
    tagged or noted: its global id is no number of its slot (`slot << 40 | id` would be another slot's)."""
    device = uuid.UUID(DEVICE)
    tiny(staging_path(receiver, device))
    keep(receiver, device)  # a fine one first
    before = path_of(receiver, device).read_bytes()
    far = f"INSERT INTO entries VALUES (1 << 40, 1, 1, 'far', {FILE}, NULL, 0, 0, NULL, 0, NULL)"
    tiny(staging_path(receiver, device), lambda conn: conn.execute(far))
    with pytest.raises(CatalogueRefused, match="entry 1099511627776: its id is past 1,099,511,627,775"):
        keep(receiver, device)
    assert path_of(receiver, device).read_bytes() == before and not staging_path(receiver, device).exists()
    tiny(staging_path(receiver, device), lambda conn: conn.execute(far.replace("1 << 40", "(1 << 40) - 1")))
    assert keep(receiver, device).entries == 6


# -- read paths: search and listings read a kept catalogue in place of the library's own rows of that device ---------


async def synced_then_kept(owner: Library, receiver: Library, tmp_path: Path) -> tuple[Path, int]:
    """The owner's home indexed and synced into `receiver`'s tables as today's sync writes it; then changed on the
    owner (winter.jpg renamed frost.jpg, a new file) and kept by `receiver` as a file: what only the file holds shows
    that the file was read. Returns the home and the owner's slot."""
    home = make_home(tmp_path / "home")
    await indexed(owner, home)
    sync(owner, receiver)
    (home / "photos" / "2024" / "winter.jpg").rename(home / "photos" / "2024" / "frost.jpg")
    (home / "photos" / "roll.txt").write_bytes(b"r" * 700)
    await indexed(owner, home)
    device = owner.context.device_id
    make(owner, staging_path(receiver, device))
    keep(receiver, device)
    slot = slot_of(receiver, device)
    assert slot is not None
    return home, slot


async def test_search_finds_a_kept_catalogues_files_and_the_librarys_own_merged_in_order(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "beach-towel.txt").write_bytes(b"t" * 500)  # sizes between the owner's: the merge interleaves them
    (mine / "Frost-report.txt").write_bytes(b"f" * 9)
    await indexed(receiver, mine)
    home, slot = await synced_then_kept(library, receiver, tmp_path)
    alpha, here = library.context.device_id, receiver.context.device_id

    def found(text: str = "", **asked: Any) -> list[tuple[str, str]]:
        hits = search.run(receiver, search.Query(text, **asked))
        return [("alpha" if hit.device_id == alpha else "here", hit.path) for hit in hits]

    (frost,) = search.run(receiver, search.Query("frost.jpg"))  # only the kept file has it
    owners_id = library.read().execute("SELECT id FROM entries WHERE name = 'frost.jpg'").fetchone()[0]
    assert frost.device_id == alpha and frost.path == str(home / "photos" / "2024" / "frost.jpg")
    assert frost.entry_id == global_id(slot, owners_id)
    assert frost.location_id == receiver.locations.containing(str(home), alpha)[0].id  # type: ignore[index]
    # the library's own (older) rows of alpha, holding 2024/winter.jpg: never read, so nothing comes twice
    assert found("winter") == [("alpha", str(home / "photos" / "copy of winter.jpg"))]
    assert found("frost") == [("alpha", str(home / "photos" / "2024" / "frost.jpg")), ("here", str(mine / "Frost-report.txt"))]
    assert found("beach") == [("alpha", str(home / "photos" / "2024" / "summer" / "Beach.JPG")), ("here", str(mine / "beach-towel.txt"))]

    files = {  # every file of both devices: where -> name, size, id (ties in size go by id, as in one database)
        ("alpha" if hit.device_id == alpha else "here", hit.path): (hit.name, hit.size, hit.entry_id)
        for hit in search.run(receiver, search.Query("", kind=("file",), limit=1000))
    }
    assert ("here", str(mine / "beach-towel.txt")) in files and ("alpha", str(home / "photos" / "roll.txt")) in files
    assert len(files) == 11
    by_size = sorted(files, key=lambda where: (-files[where][1], -files[where][2]))
    assert found(kind=("file",), sort="size", limit=4) == by_size[:4]  # the limit held, both devices in it
    assert {device for device, _ in by_size[:4]} == {"alpha", "here"}
    assert found(kind=("file",), sort="size", reverse=True, limit=3) == by_size[::-1][:3]
    by_name = sorted(files, key=lambda where: files[where][0].lower())
    assert found(kind=("file",), sort="name") == by_name
    frost_id = frost.entry_id
    tags.create(receiver, "seen")
    with receiver.write() as db:  # a tag and a note on alpha's file, as tagging another device's file writes them
        tag = db.execute("SELECT id FROM tags WHERE name = 'seen'").fetchone()[0]
        db.execute("INSERT INTO tag_assignments (tag_id, entry_id, created) VALUES (?, ?, 0)", (tag, frost_id))
        db.execute("INSERT INTO user_metadata (entry_id, note, updated) VALUES (?, 'printed in A4', 0)", (frost_id,))
    assert [h.entry_id for h in search.run(receiver, search.Query("", tags=("seen",)))] == [frost_id]
    assert [h.entry_id for h in search.run(receiver, search.Query("a4"))] == [frost_id]  # (its note, by the next search)
    assert found(kind=("file",), device=str(alpha)) and {d for d, _ in found(kind=("file",), device=str(alpha))} == {"alpha"}
    assert sorted(found(kind=("file",), device=str(here))) == [("here", str(mine / n)) for n in ("Frost-report.txt", "beach-towel.txt")]
    theirs = receiver.locations.containing(str(home), alpha)[0].id  # type: ignore[index]
    assert len(found(kind=("file",), location=theirs)) == 9 and found(text="report", location=theirs) == []


async def test_words_sorted_by_a_column_over_a_kept_catalogue_come_as_one_database_would_give_them(
    library: Library, receiver: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    for i, size in enumerate([500, 9, 404, 404, 0, 100_000, 404]):  # sizes and times beside the owner's, some equal
        (mine / f"note-{i}.txt").write_bytes(b"o" * size)
        os.utime(mine / f"note-{i}.txt", (1e9 + i % 3, 1e9 + i % 3))
    await indexed(receiver, mine)
    await synced_then_kept(library, receiver, tmp_path)
    every = search.run(receiver, search.Query("o", limit=1000))
    assert {h.device_id for h in every} == {library.context.device_id, receiver.context.device_id} and len(every) > 15
    orders = {  # as one database sorts them: by the column, ties by id (the library's own below every global id)
        "size": sorted(every, key=lambda h: (h.size, h.entry_id), reverse=True),
        "date": sorted(every, key=lambda h: (h.mtime is not None, h.mtime or 0.0, h.entry_id), reverse=True),
        "name": sorted(every, key=lambda h: (h.name.lower(), h.entry_id)),
    }
    for budget in (search.WALK_BUDGET, 2):  # each database's walk of the order finding them all, or giving up at once
        monkeypatch.setattr(search, "WALK_BUDGET", budget)
        for sort, expected in orders.items():
            for reverse in (False, True):
                ordered = expected[::-1] if reverse else expected
                for limit in (1, 4, 9, 1000):
                    hits = search.run(receiver, search.Query("o", sort=sort, reverse=reverse, limit=limit))
                    assert [h.entry_id for h in hits] == [h.entry_id for h in ordered[:limit]], (budget, sort, reverse)


async def test_a_word_only_in_a_note_on_a_kept_catalogues_file_is_not_taken_for_a_word_in_no_file(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    await synced_then_kept(library, receiver, tmp_path)
    (frost,) = search.run(receiver, search.Query("frost.jpg"))
    with receiver.write() as db:  # the receiver's note on alpha's file, by its global id (in no index of the file)
        db.execute("INSERT INTO user_metadata (entry_id, note, updated) VALUES (?, 'Printed for grandma', 0)", (frost.entry_id,))
    for sort in ("relevance", "size"):
        assert [h.entry_id for h in search.run(receiver, search.Query("grandma 2024", sort=sort))] == [frost.entry_id]
        assert search.run(receiver, search.Query("grandpa 2024", sort=sort)) == []


async def test_a_kept_catalogues_folder_lists_as_its_owner_lists_it(library: Library, receiver: Library, tmp_path: Path) -> None:
    home, slot = await synced_then_kept(library, receiver, tmp_path)
    alpha = library.context.device_id
    folders = [home, home / "photos", home / "photos" / "2024", home / "docs", home / "empty"]
    for folder in folders:
        own = list_indexed(library, str(folder))
        assert own is not None
        expected = [
            dataclasses.replace(e, directory=SdPath(alpha, str(folder)), inode=0, mode=0, link_target=None,
                                entry_id=global_id(slot, e.entry_id or 0))
            for e in own
        ]  # fmt: skip  (no inode, mode or link target comes in a catalogue)
        assert list_indexed(receiver, str(folder), alpha) == expected, folder
    names = [e.name for e in list_indexed(receiver, str(home / "photos" / "2024"), alpha) or []]
    assert names == ["frost.jpg", "summer"]  # (the library's own rows of alpha still say winter.jpg)
    assert list_indexed(receiver, str(home / "nowhere"), alpha) is None


async def test_a_device_keeps_its_slot_and_no_slot_is_given_twice(library: Library, receiver: Library, tmp_path: Path) -> None:
    await indexed(library, make_home(tmp_path / "home"))
    device, other = library.context.device_id, uuid.uuid4()
    assert slot_of(receiver, device) is None
    make(library, staging_path(receiver, device))
    keep(receiver, device)
    first = slot_of(receiver, device)
    assert first is not None and slot_of(receiver, other, make=True) == first + 1
    forget(receiver, device)
    make(library, staging_path(receiver, device))
    keep(receiver, device)
    assert slot_of(receiver, device) == first  # kept again: the same
    with receiver.write() as db:  # even a slot whose row is gone is never given again
        db.execute("DELETE FROM catalogue_slots WHERE device_id = ?", (str(other),))
    assert slot_of(receiver, uuid.uuid4(), make=True) == first + 2
    with pytest.raises(ValueError):
        slot_of(receiver, receiver.context.device_id, make=True)


async def test_one_connection_a_thread_reads_a_kept_catalogue_until_the_file_is_replaced_or_forgotten(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    await indexed(library, make_home(tmp_path / "home"))
    device = library.context.device_id
    make(library, staging_path(receiver, device))
    keep(receiver, device)
    slot = slot_of(receiver, device)
    assert slot is not None
    first = reader(receiver, device, slot)
    assert first is not None and reader(receiver, device, slot) is first
    make(library, staging_path(receiver, device))
    keep(receiver, device)  # a new file in its place
    second = reader(receiver, device, slot)
    assert second is not None and second is not first and reader(receiver, device, slot) is second
    with pytest.raises(sqlite3.ProgrammingError):  # closed
        first.execute("SELECT 1")
    forget(receiver, device)
    assert reader(receiver, device, slot) is None and kept(receiver) == {}
    with pytest.raises(sqlite3.ProgrammingError):
        second.execute("SELECT 1")


async def test_a_library_of_schema_33_gets_the_slots_table_and_keeps_its_catalogue(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.library.schema import MIGRATIONS

    slots = MIGRATIONS[34]
    monkeypatch.delitem(MIGRATIONS, 34)  # the code before migration 34 makes the library
    for number in [n for n in MIGRATIONS if n > 34]:  # (and reopens it: 35 moves the catalogue out, test_catalogue_store_migrate)
        monkeypatch.delitem(MIGRATIONS, number)
    old = Library(create_folder(tmp_path / "old", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    await indexed(library, make_home(tmp_path / "home"))
    sync(library, old)  # another device's catalogue in its tables, as sync writes it today
    before = [old.read().execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("entries", "catalogue_locations")]
    assert old.read().execute("PRAGMA user_version").fetchone() == (33,)
    folder = old.folder
    old.close()
    monkeypatch.setitem(MIGRATIONS, 34, slots)

    reopened = Library(folder, LibraryContext.this_device_only(uuid.uuid4()))
    try:
        assert reopened.read().execute("PRAGMA user_version").fetchone() == (34,)
        assert [reopened.read().execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in ("entries", "catalogue_locations")] == before
        assert kept(reopened) == {} and slot_of(reopened, library.context.device_id) is None
        assert slot_of(reopened, library.context.device_id, make=True) == 1
    finally:
        reopened.close()


async def test_a_kept_catalogue_whose_search_index_is_not_built_is_searched_by_its_names_never_by_the_librarys_index(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    """An unqualified `search_index` on a catalogue that lacks one named the library's own, by its own ids: a search
    then showed the catalogue's entries of those numbers, whatever their names (a file kept before its index is
    built, as a first sync made listable first keeps it). Its names are read one by one until it is: the same hits
    as once it is indexed."""
    await indexed(receiver, make_home(tmp_path / "receivers-home"))  # its own entries, numbered 1, 2, ... as alpha's
    conn = await kept_from(library, receiver, tmp_path)
    places = {loc.id: loc for loc in library.locations.list()}
    queries = [search.Query(text) for text in ("winter", "beach", "photos", "docs", "photos 2024", "zzzz")] + [
        search.Query("", ext=("jpg",)), search.Query("e", sort="size"), search.Query("winter", sort="name")]
    indexed_hits = [[(h.name, h.entry_id) for h in search.run_on(conn, receiver, q, places)] for q in queries]
    conn.close()
    with contextlib.closing(sqlite3.connect(path_of(receiver, library.context.device_id))) as file:
        for name in ("search_index", "folder_index", "note_index"):
            file.execute(f"DROP TABLE {name}")
    slot = slot_of(receiver, library.context.device_id, make=True)
    with contextlib.closing(connect(receiver, library.context.device_id, slot)) as bare:
        hits = [[(h.name, h.entry_id) for h in search.run_on(bare, receiver, q, places)] for q in queries]
    assert hits == indexed_hits and all(indexed_hits[:5]) and not indexed_hits[5]


async def test_a_kept_catalogue_lists_as_soon_as_it_is_checked_and_is_searched_once_its_index_is_built(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    """A first sync's file is listable before its search index is built (the index alone costs more than the copy
    of the whole database by scp): in place, searched name by name, until keep puts the indexed file in its place."""
    await indexed(library, make_home(tmp_path / "home"))
    device = library.context.device_id
    make(library, staging_path(receiver, device))
    places = {loc.id: loc for loc in library.locations.list()}
    seen: dict[str, Any] = {}

    def listable() -> None:
        with contextlib.closing(connect(receiver, device, slot_of(receiver, device) or 0)) as conn:
            seen["listed"] = conn.execute(CHILDREN_SQL, (1,)).fetchall()
            seen["found"] = search.run_on(conn, receiver, search.Query("winter"), places)
        seen["inode"] = os.stat(path_of(receiver, device)).st_ino

    keep(receiver, device, listable=listable)
    assert {row[0] for row in seen["listed"]} >= {"photos", "docs"}
    assert {hit.name for hit in seen["found"]} == {"winter.jpg", "copy of winter.jpg"}
    with contextlib.closing(connect(receiver, device, slot_of(receiver, device) or 0)) as conn:
        assert {hit.name for hit in search.run_on(conn, receiver, search.Query("winter"), places)} == {
            "winter.jpg", "copy of winter.jpg"}  # fmt: skip
    assert os.stat(path_of(receiver, device)).st_ino != seen["inode"]  # a new file: readers open it anew
    assert sorted(p.name for p in path_of(receiver, device).parent.iterdir()) == [path_of(receiver, device).name]


async def test_a_library_holding_a_catalogue_file_of_this_very_device_searches_this_devices_own_index(
    library: Library, tmp_path: Path
) -> None:
    """A library copied back from a device that kept this device's catalogue (a backup restored with this device's
    data dir) holds `catalogues/THIS.db`: search skipped this device's own, current index for that stale copy."""
    home = make_home(tmp_path / "home")
    await indexed(library, home)
    here = library.context.device_id
    make(library, staging_path(library, here))
    os.replace(staging_path(library, here), path_of(library, here))  # as the copy brings it: what the other device kept of this one, its slot
    with library.write() as db:
        db.execute("INSERT INTO catalogue_slots (device_id) VALUES (?)", (str(here),))
    (home / "photos" / "2024" / "winter.jpg").rename(home / "photos" / "2024" / "frost.jpg")
    await indexed(library, home)
    assert [h.name for h in search.run(library, search.Query("frost"))] == ["frost.jpg"]
    assert [h.name for h in search.run(library, search.Query("winter"))] == ["copy of winter.jpg"]


async def test_a_batch_the_kept_file_took_and_the_library_did_not_is_taken_again_harmlessly(
    library: Library, receiver: Library, tmp_path: Path
) -> None:
    """apply_catalogue commits the batch into the kept file, then the library's locations and watermark: cut off
    between the two (kill -9), the watermark still says the batch is to come, and the same batch again does no harm."""
    home = make_home(tmp_path / "home")
    await indexed(library, home)
    device = library.context.device_id
    make(library, staging_path(receiver, device))
    held = keep(receiver, device)
    adopt_catalogue_file(receiver, device)
    catalogue_file_kept(receiver, device, held.head)
    (home / "photos" / "2024" / "winter.jpg").rename(home / "photos" / "2024" / "frost.jpg")
    await indexed(library, home)
    batch = catalogue_changes(library, held.head, 1000)
    catalogue_store_apply.apply(receiver, device, batch)  # the file took it; the library's transaction was lost
    assert catalogue_watermark(receiver, device) == held.head
    apply_catalogue(receiver, device, batch)  # asked again from the watermark: the same batch
    assert catalogue_watermark(receiver, device) == batch.up_to > held.head
    names = sorted(e.name for e in list_indexed(receiver, str(home / "photos" / "2024"), device) or [])
    assert "frost.jpg" in names and "winter.jpg" not in names
    assert kept_names(receiver, device) >= {"frost.jpg"} and in_tables(receiver, device) == 0
