"""Schema migration 35 (issue 16): a library whose own tables hold another device's entries, as sync wrote them before
catalogues were kept as files, keeps only that device's locations; its entries go, and the tags, notes and favourites
set on them are held by global id, so that they show again on the device's file once it is kept."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sdcore import metadata, search, tags
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.library.schema import MIGRATIONS
from sdcore.sync.catalogue import catalogue_watermark
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import global_id, keep, slot_of, staging_path
from tests.functional.test_catalogue import sync
from tests.functional.test_catalogue_file import indexed, make_home


def rows(library: Library, sql: str, *args: object) -> list[tuple]:
    return library.read().execute(sql, args).fetchall()


async def test_a_library_of_schema_34_holding_a_devices_entries_keeps_their_tags_and_notes_by_global_id(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    later = {n: step for n, step in MIGRATIONS.items() if n >= 35}
    for number in later:  # the code before migration 35 makes the library
        monkeypatch.delitem(MIGRATIONS, number)
    old = Library(create_folder(tmp_path / "old", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    mine = make_home(tmp_path / "mine")  # its own files: the same contents as alpha's
    await indexed(old, mine)
    home = make_home(tmp_path / "home")
    await indexed(library, home)
    alpha = library.context.device_id
    sync(library, old)  # alpha's catalogue in its tables, as sync wrote it
    (theirs,) = rows(old, "SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id"
                          " WHERE l.device_id = ? AND e.name = 'winter.jpg'", str(alpha))[0]  # fmt: skip
    (own,) = rows(old, "SELECT e.id FROM entries e JOIN locations l ON l.id = e.location_id"
                       " WHERE l.device_id = ? AND e.name = 'winter.jpg'", str(old.context.device_id))[0]  # fmt: skip
    tags.create(old, "seen")
    tags.assign(old, "seen", [theirs, own])
    metadata.set_note(old, theirs, "printed in A4")
    metadata.set_favorite(old, [theirs])
    (owners_id,) = rows(library, "SELECT id FROM entries WHERE name = 'winter.jpg' AND parent_id IN"
                                 " (SELECT entry_id FROM directory_paths WHERE path = 'photos/2024')")[0]  # fmt: skip
    places = rows(old, "SELECT * FROM locations ORDER BY id")
    mapped = rows(old, "SELECT * FROM catalogue_locations")
    assert mapped and catalogue_watermark(old, alpha) > 0 and rows(old, "PRAGMA user_version") == [(34,)]
    own_before = rows(old, "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?",
                      str(old.context.device_id))  # fmt: skip
    folder = old.folder
    old.close()
    for number, step in later.items():
        monkeypatch.setitem(MIGRATIONS, number, step)

    reopened = Library(folder, LibraryContext.this_device_only(old.context.device_id))
    try:
        assert rows(reopened, "PRAGMA user_version") == [(max(MIGRATIONS),)]
        slot = slot_of(reopened, alpha)
        assert slot is not None
        at = global_id(slot, owners_id)
        # alpha's entries gone from the library's tables, its locations and their mapping kept, its watermark 0
        assert rows(reopened, "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?",
                    str(alpha)) == [(0,)]  # fmt: skip
        assert rows(reopened, "SELECT count(*) FROM catalogue_entries") == [(0,)]
        assert rows(reopened, "SELECT count(*) FROM directory_paths WHERE entry_id NOT IN (SELECT id FROM entries)") == [(0,)]
        assert rows(reopened, "SELECT count(*) FROM content_identities c WHERE NOT EXISTS"
                              " (SELECT 1 FROM entries e WHERE e.content_id = c.id)") == [(0,)]  # fmt: skip
        assert [r[:7] for r in rows(reopened, "SELECT * FROM locations ORDER BY id")] == [r[:7] for r in places]
        assert rows(reopened, "SELECT * FROM catalogue_locations") == mapped
        assert catalogue_watermark(reopened, alpha) == 0
        assert rows(reopened, "SELECT count(*) FROM entries e JOIN locations l ON l.id = e.location_id WHERE l.device_id = ?",
                    str(old.context.device_id)) == own_before  # fmt: skip
        # the tag, note and favourite on alpha's file: held by its global id; those on this device's own, as they were
        assert sorted(rows(reopened, "SELECT entry_id FROM tag_assignments")) == sorted([(own,), (at,)])
        assert rows(reopened, "SELECT entry_id, note, favorite FROM user_metadata") == [(at, "printed in A4", 1)]
        assert rows(reopened, "SELECT rowid FROM note_index") == [(at,)]
        assert rows(reopened, "SELECT count(*) FROM detached") == [(0,)]

        make(library, staging_path(reopened, alpha))  # the next sync: alpha's file kept
        keep(reopened, alpha)
        tagged = search.run(reopened, search.Query("", tags=("seen",)))
        assert sorted((h.device_id == alpha, h.entry_id) for h in tagged) == [(False, own), (True, at)]
        assert [(h.entry_id, h.path) for h in search.run(reopened, search.Query("a4"))] == [
            (at, str(home / "photos" / "2024" / "winter.jpg"))
        ]
        assert [h.entry_id for h in search.run(reopened, search.Query("", favorites=True))] == [at]
    finally:
        reopened.close()


async def test_a_repaired_library_keeps_other_devices_slots_and_the_tags_and_notes_on_their_files(tmp_path: Path) -> None:
    """A repair salvaged tags and notes by each entry's row or place here: those on another device's entries (global
    ids, no row here) were lost, and so were the devices' slots (the next kept file given slot 1 again: the tags of one
    device's files shown on another's) and which location is whose (its files found by no search)."""
    from sdcore.core import Core
    from tests.functional.test_catalogue_store_dupes import drop_entries_of, kept_after_sync
    from tests.functional.test_library_damage import _index_and_tag, overwrite_pages

    data, docs = tmp_path / "data", tmp_path / "docs"
    for d in range(12):  # (pages enough to damage some)
        (docs / f"d{d}").mkdir(parents=True)
        for f in range(50):
            (docs / f"d{d}" / f"file{f}.txt").write_text(f"folder {d} file {f}\n")
    await _index_and_tag(data, docs)
    owner = Library(create_folder(tmp_path / "owner", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    home = make_home(tmp_path / "home")
    await indexed(owner, home)
    alpha = owner.context.device_id
    (owners_id,) = rows(owner, "SELECT id FROM entries WHERE name = 'Beach.JPG'")[0]
    async with Core(data) as core:
        library = core.library()
        slot_of(library, uuid.uuid4(), make=True)  # a slot given to a device whose row is lost below
        slot = kept_after_sync(owner, library)
        drop_entries_of(library, alpha)
        at = global_id(slot, owners_id)
        with library.write() as db:  # as tagging and noting another device's file write them
            (work,) = db.execute("SELECT id FROM tags WHERE name = 'work'").fetchone()
            db.execute("INSERT INTO tag_assignments (tag_id, entry_id, created) VALUES (?, ?, 0)", (work, at))
            db.execute("INSERT INTO user_metadata (entry_id, note, updated) VALUES (?, 'on the beach', 0)", (at,))
            db.execute("DELETE FROM catalogue_slots WHERE slot = ?", (slot - 1,))
        folder = library.folder
    owner.close()
    overwrite_pages(folder / "database.db", "entries")

    async with Core(data) as core:
        await core.libraries.repair("My Library", on_step=lambda step: None)
        library = core.library()
        assert slot_of(library, alpha) == slot and slot_of(library, uuid.uuid4(), make=True) == slot + 1
        tagged = search.run(library, search.Query("", tags=("work",)))
        assert [h.path for h in tagged if h.device_id == alpha] == [str(home / "photos" / "2024" / "summer" / "Beach.JPG")]
        assert len(tagged) == 3  # and this device's two, put back by their paths
        assert [(h.entry_id, h.device_id) for h in search.run(library, search.Query("beach"))] == [(at, alpha)]
        assert rows(library, "SELECT entry_id, note FROM user_metadata WHERE entry_id = ?", at) == [(at, "on the beach")]


async def test_sd_library_migrate_adopts_the_copied_devices_locations_and_leaves_a_kept_catalogue_that_devices(
    library: Library, tmp_path: Path
) -> None:
    """A library folder copied from a device (`library`'s) that keeps another's catalogue as a file: migrating it here
    adopts the copied device's own locations; the kept catalogue stays that other device's, listed and searched
    from its file (never adopted: it is streamed by sync), its tags by global id on it."""
    import shutil

    from sdcore.index.listing import list_indexed
    from sdcore.library.adopt import migrate
    from tests.functional.test_catalogue_store_dupes import drop_entries_of, kept_after_sync

    beta = Library(create_folder(tmp_path / "beta", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    betas = make_home(tmp_path / "betas-home")
    await indexed(beta, betas)
    kept_after_sync(beta, library)
    drop_entries_of(library, beta.context.device_id)
    theirs = tmp_path / "alphas-docs"
    theirs.mkdir()
    (theirs / "plan.txt").write_text("alpha's plan")
    await indexed(library, theirs)
    beta_id = beta.context.device_id
    beta.close()
    copied = tmp_path / "copied" / "Shared.sdlibrary"
    shutil.copytree(library.folder, copied, ignore=shutil.ignore_patterns(".lock"))
    here = uuid.uuid4()
    opened = Library(copied, LibraryContext.this_device_only(here))
    try:
        done = await migrate(opened)
        assert [loc.path for loc in done.adopted] == [str(theirs)] and not done.not_indexed
        assert {(h.device_id, h.name) for h in search.run(opened, search.Query("plan"))} == {(here, "plan.txt")}
        beach = search.run(opened, search.Query("beach"))
        assert [(h.device_id, h.path) for h in beach] == [(beta_id, str(betas / "photos" / "2024" / "summer" / "Beach.JPG"))]
        assert beach[0].entry_id >> 40 == slot_of(opened, beta_id)
        assert {e.name for e in list_indexed(opened, str(betas / "photos"), beta_id) or []} == {"2024", "copy of winter.jpg"}
        assert [loc.device_id for loc in opened.locations.list() if loc.path == str(betas)] == [beta_id]
    finally:
        opened.close()
