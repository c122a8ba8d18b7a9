"""Another device's catalogue kept as a file of its own (sdcore.sync.catalogue_store): a real library's catalogue
file, staged, checked and kept by a second library, answers the library's own search and listing SQL as the owner's
database does; the second library's own tags, notes and favourites never reach it (its ids are of another
numbering), those put on it by global ids do; a refused file is deleted and the one kept stays."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore import metadata, search, tags
from sdcore.index.listing import CHILDREN_SQL
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.sync.catalogue import CatalogueRefused
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import connect, forget, global_id, keep, path_of, staging_path
from tests.functional.crafted_catalogues import DEVICE, FILE, tiny
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
    shadowed = {name for (name,) in conn.execute("SELECT name FROM temp.sqlite_schema WHERE type = 'view'")}
    assert {"entries", "locations", "content_identities", "user_metadata", "tag_assignments", "file_hashes",
            "media_data", "scan_queue", "entry_places", "catalogue_entries", "catalogue_log"} <= shadowed  # fmt: skip
    for name in shadowed - {"entries", "locations", "content_identities"}:
        assert conn.execute(f'SELECT count(*) FROM "{name}"').fetchone() == (0,), name
    with pytest.raises(sqlite3.OperationalError):  # read-only, the library too
        conn.execute("DELETE FROM lib.tags")


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
    far = f"INSERT INTO entries VALUES (1 << 40, 1, 1, 'far', {FILE}, NULL, 0, 0, NULL, 0, NULL)"
    tiny(staging_path(receiver, device), lambda conn: conn.execute(far))
    with pytest.raises(CatalogueRefused, match="entry 1099511627776: its id is past 1,099,511,627,775"):
        keep(receiver, device)
    assert not path_of(receiver, device).exists() and not staging_path(receiver, device).exists()
    tiny(staging_path(receiver, device), lambda conn: conn.execute(far.replace("1 << 40", "(1 << 40) - 1")))
    assert keep(receiver, device).entries == 6
