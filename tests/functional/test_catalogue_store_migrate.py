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
    files_to_catalogues = MIGRATIONS[35]
    monkeypatch.delitem(MIGRATIONS, 35)  # the code before migration 35 makes the library
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
    monkeypatch.setitem(MIGRATIONS, 35, files_to_catalogues)

    reopened = Library(folder, LibraryContext.this_device_only(old.context.device_id))
    try:
        assert rows(reopened, "PRAGMA user_version") == [(35,)]
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
