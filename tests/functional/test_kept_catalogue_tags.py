"""Tags, notes and favourites on another device's files whose catalogue is kept here as a file (issue 16, design point
2): the library names them by global ids (sdcore.sync.catalogue_store.global_id), its tables hold none of that
device's entries, and everything that shows or acts on them reads the kept file. Two real cores (laptop and nas)
sharing a library, as test_shared_tagging.py sets them up; the nas's catalogue made by the nas and kept by the
laptop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from tui_support import answer_prompt, explorer, names, settle, shown_text, wait_for

from sdcore import metadata, search, tags
from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import NotFound
from sdcore.library import Library
from sdcore.library.context import LibraryContext
from sdcore.library.library import create_folder
from sdcore.sdpath import SdPath
from sdcore.sync import catalogue_store_apply
from sdcore.sync.catalogue import catalogue_changes, ref_of
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import SLOT_BITS, global_id, keep, path_of, slot_of, staging_path
from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.tag_picker import TagPickerScreen
from sdtui.widgets.inspector import Inspector
from tests.functional import test_shared_tagging
from tests.functional.test_catalogue import device, index, make_photos, sd_in, sync
from tests.functional.test_catalogue_file import indexed, make_home
from tests.functional.test_shared_tagging import status

cores = test_shared_tagging.cores  # (a fixture: laptop and nas sharing a library)


def without_its_entries(here: Library, device: uuid.UUID) -> None:
    """The library's tables as a first sync of a kept catalogue leaves them: the other device's locations (mapped to
    its own ids for them, here the same: the library was copied from it) and none of its entries."""
    with here.write() as db:
        ids = [row[0] for row in db.execute("SELECT id FROM locations WHERE device_id = ?", (str(device),))]
        assert ids
        marks = ",".join("?" * len(ids))
        db.executemany("INSERT OR IGNORE INTO catalogue_locations VALUES (?, ?, ?)", [(i, str(device), i) for i in ids])
        db.execute(f"DELETE FROM directory_paths WHERE location_id IN ({marks})", ids)
        db.execute(f"DELETE FROM entries WHERE location_id IN ({marks})", ids)


def kept_by(here: Library, owner: Library) -> int:
    """The owner's catalogue, made by it, kept by `here` as a file; the owner's slot here."""
    device = owner.context.device_id
    make(owner, staging_path(here, device))
    keep(here, device)
    slot = slot_of(here, device)
    assert slot is not None and path_of(here, device).is_file()
    return slot


def keep_on_laptop(a: Core, b: Core) -> int:
    """The nas's catalogue kept by the laptop, its entries in no table of the laptop's library; the nas's slot."""
    here = a.library("Shared")
    without_its_entries(here, b.device.id)
    return kept_by(here, b.library("Shared"))


def owners_id(owner: Library, name: str) -> int:
    return int(owner.read().execute("SELECT id FROM entries WHERE name = ?", (name,)).fetchone()[0])


def found(library: Library, text: str = "", **asked: object) -> list[str]:
    return [hit.name for hit in search.run(library, search.Query(text, **asked))]  # type: ignore[arg-type]


async def test_a_file_of_a_kept_catalogue_is_tagged_noted_and_favourited_by_path_and_shows_everywhere(
    cores: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = cores
    slot = keep_on_laptop(a, b)
    here, there = a.library("Shared"), b.library("Shared")
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    laptop = Api(a).library("Shared")
    assert await laptop.tags["trips"].add(harbour) == 1  # the path found in the kept file: no call to the nas
    await laptop.notes.set(harbour, "the old harbour")
    assert await laptop.favourites.set(harbour) == 1
    theirs = global_id(slot, owners_id(there, "harbour.jpg"))
    assert [t.entry_id for t in tags.entries(here, "trips")] == [theirs]  # by its global id
    assert metadata.note(here, theirs) == "the old harbour" and metadata.favorites(here) == [theirs]

    [tagged] = await laptop.tags["trips"].files()  # `sd tag show trips`
    assert (tagged.path, tagged.name, tagged.entry_id) == (harbour, "harbour.jpg", theirs)
    assert [(f.path.path, f.tag) for f in await laptop.tags["trips"].tagged()] == [(harbour.path, "trips")]
    assert [e.path for e in await laptop.favourites.list()] == [harbour]  # `sd fav`
    assert await laptop.notes.get(harbour) == "the old harbour"  # `sd note PATH`
    assert [v.text for v in await laptop.notes.history(harbour)] == ["the old harbour"]  # `--history`
    assert [(c.tag, c.added) for c in await laptop.tags.history(harbour)] == [("trips", True)]  # `sd tag history`
    details = await laptop.entries.details(harbour)  # the inspector
    assert details is not None and details.entry_id == theirs and details.kind == "file"
    assert (details.tags, details.favourite, details.note) == (("trips",), True, "the old harbour")
    assert found(here, tags=("trips",)) == ["harbour.jpg"] and found(here, favorites=True) == ["harbour.jpg"]
    assert found(here, "old harbour") == ["harbour.jpg"]  # its note

    there.sync.apply(here.sync.ops_since(there.sync.watermarks(), 1000))  # what a pull does: the nas's own entry
    nas = Api(b).library("Shared")
    assert [e.name for e in await nas.tags["trips"].files()] == ["harbour.jpg"]
    assert await nas.notes.get(harbour) == "the old harbour"
    assert [e.name for e in await nas.favourites.list()] == ["harbour.jpg"]
    assert here.sync.digest() == there.sync.digest()

    assert await laptop.tags["trips"].remove(harbour) == 1  # and taken off, here and there
    await laptop.notes.set(harbour, None)
    assert await laptop.tags["trips"].files() == [] and found(here, tags=("trips",)) == [] and found(here, "old harbour") == []
    there.sync.apply(here.sync.ops_since(there.sync.watermarks(), 1000))
    assert await nas.tags["trips"].files() == [] and await nas.notes.get(harbour) is None


async def test_the_nas_tagging_its_own_file_lands_here_by_global_id_even_before_its_file_is_kept(
    cores: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = cores
    here, there = a.library("Shared"), b.library("Shared")
    without_its_entries(here, b.device.id)  # its file not kept yet either: the ops wait
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    nas = Api(b).library("Shared")
    await nas.tags["boats"].add(harbour)
    await nas.notes.set(harbour, "moored")
    here.sync.apply(there.sync.ops_since(here.sync.watermarks(), 1000))
    assert tags.entries(here, "boats") == [] and found(here, "moored") == []  # held, shown nowhere yet
    slot = kept_by(here, there)  # given its slot: what waited shows
    theirs = global_id(slot, owners_id(there, "harbour.jpg"))
    assert [t.entry_id for t in tags.entries(here, "boats")] == [theirs]
    assert metadata.note(here, theirs) == "moored"
    assert found(here, tags=("boats",)) == ["harbour.jpg"] and found(here, "moored") == ["harbour.jpg"]

    await nas.tags["sails"].add(harbour)  # and once it is kept: at once
    here.sync.apply(there.sync.ops_since(here.sync.watermarks(), 1000))
    assert [t.entry_id for t in tags.entries(here, "sails")] == [theirs]
    assert await Api(a).library("Shared").notes.get(harbour) == "moored"


async def test_a_rename_on_the_nas_keeps_the_tag_set_here(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    slot = keep_on_laptop(a, b)
    here, there = a.library("Shared"), b.library("Shared")
    photos = tmp_path / "nas-photos"
    laptop = Api(a).library("Shared")
    await laptop.tags["trips"].add(SdPath(b.device.id, str(photos / "harbour.jpg")))
    (photos / "harbour.jpg").rename(photos / "port.jpg")
    nas = Api(b).library("Shared")
    [location] = await nas.locations.list()
    await nas.jobs.wait((await nas.locations.index(location.id)).id)
    with contextlib.closing(sqlite3.connect(path_of(here, b.device.id))) as conn:
        since = int(conn.execute("SELECT head FROM catalogue").fetchone()[0])
    batch = catalogue_changes(there, since, 1000)
    assert batch.complete
    catalogue_store_apply.apply(here, b.device.id, batch)  # the nas's batch into the kept file
    [tagged] = await laptop.tags["trips"].files()
    assert (tagged.name, tagged.entry_id) == ("port.jpg", global_id(slot, owners_id(there, "port.jpg")))
    assert found(here, tags=("trips",)) == ["port.jpg"]
    assert await laptop.tags["trips"].add(SdPath(b.device.id, str(photos / "port.jpg"))) == 0  # the same entry


async def test_a_tag_on_content_reaches_the_copies_in_a_kept_catalogue(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    slot = keep_on_laptop(a, b)
    here, there = a.library("Shared"), b.library("Shared")
    mine = tmp_path / "laptop-photos"
    mine.mkdir()
    (mine / "harbour copy.jpg").write_bytes((tmp_path / "nas-photos" / "harbour.jpg").read_bytes())
    laptop = Api(a).library("Shared")
    await laptop.locations.add(str(mine), mode="content", index=True)
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    assert await laptop.tags["same"].add(SdPath(a.device.id, str(mine / "harbour copy.jpg")), content=True) == 1
    theirs = global_id(slot, owners_id(there, "harbour.jpg"))
    assert theirs in {t.entry_id for t in tags.entries(here, "same")}  # the nas's copy, by its cas_id in the file
    assert sorted(e.name for e in await laptop.tags["same"].files()) == ["harbour copy.jpg", "harbour.jpg"]
    assert sorted(found(here, tags=("same",))) == ["harbour copy.jpg", "harbour.jpg"]
    details = await laptop.entries.details(harbour)
    assert details is not None and details.tags == ("same",)
    assert await laptop.tags["again"].add(harbour, content=True) == 1  # its content read from the kept file
    assert sorted(e.name for e in await laptop.tags["again"].files()) == ["harbour copy.jpg", "harbour.jpg"]
    assert ("again", True, True) in [(c.tag, c.added, c.content) for c in await laptop.tags.history(harbour)]


async def test_equal_ids_of_two_devices_never_mix_and_crafted_ids_reach_no_entry(
    library: Library, tmp_path: Path
) -> None:
    """Two owners whose entries have the same ids (each numbers its own), kept by one receiver: a tag or note on
    one's entry never shows on the other's; an op naming an owner's id past 2**40 (it would be another slot's global
    id), or this device's entry by another's global id, lands on nothing, and the merge goes on."""
    home = make_home(tmp_path / "home")
    other = Library(create_folder(tmp_path / "other", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    receiver = Library(create_folder(tmp_path / "receiver", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    try:
        await indexed(library, home)
        await indexed(other, home)  # the same folder: the same ids, names and paths
        winter = owners_id(library, "winter.jpg")
        assert owners_id(other, "winter.jpg") == winter
        first, second = kept_by(receiver, library), kept_by(receiver, other)
        assert first != second
        one, two = library.context.device_id, other.context.device_id
        tags.create(library, "mine")
        tags.assign(library, "mine", [winter])  # the first owner tags its own winter.jpg
        metadata.set_note(other, winter, "the other's")  # the second notes its own
        receiver.sync.apply(library.sync.ops_since({}, 1000) + other.sync.ops_since({}, 1000))
        assert [t.entry_id for t in tags.entries(receiver, "mine")] == [global_id(first, winter)]
        assert metadata.note(receiver, global_id(second, winter)) == "the other's"
        assert metadata.note(receiver, global_id(first, winter)) is None
        assert ref_of(receiver.read(), global_id(second, winter)).device_id == two

        with library.write() as db:  # the first owner, lying: its entry id past 2**40, and this device's entry
            high = (second ^ first) << SLOT_BITS | winter  # its slot | these bits = the second's slot
            library.sync.record(db, "note", target=f"e:{one}:{high}", value="crafted")
            library.sync.record(db, "note", target=f"e:{one}:{1 << 59 | winter}", value="crafted")
            library.sync.record(db, "note", target=f"e:{receiver.context.device_id}:{global_id(second, winter)}", value="crafted")
            library.sync.record(db, "note", target=f"e:{one}:{winter}", value="kept")  # after them: still merged
        assert receiver.sync.apply(library.sync.ops_since(receiver.sync.watermarks(), 1000)) == 4
        assert metadata.note(receiver, global_id(second, winter)) == "the other's"
        assert metadata.note(receiver, global_id(first, winter)) == "kept"
        assert receiver.read().execute("SELECT count(*) FROM user_metadata WHERE note = 'crafted'").fetchone() == (0,)
        with pytest.raises(NotFound):
            ref_of(receiver.read(), global_id(second + 5, winter))  # a slot no device has
    finally:
        other.close()
        receiver.close()


async def test_t_and_n_on_a_pane_of_the_nas_tag_and_note_its_file_by_global_id(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    slot = keep_on_laptop(a, b)
    here, there = a.library("Shared"), b.library("Shared")
    photos = tmp_path / "nas-photos"
    a.save_settings(default_library=str(here.id))
    (tmp_path / "here").mkdir()
    app = SdtuiApp(str(tmp_path / "here"), core=a, mounts_file=str(tmp_path / "no-mounts"))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        screen.active.open(SdPath(b.device.id, str(photos)))
        await wait_for(pilot, lambda: names(screen.active) == ["harbour.jpg"])
        await pilot.press("home", "t")
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"keepers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in status(app))
        theirs = global_id(slot, owners_id(there, "harbour.jpg"))
        assert [t.entry_id for t in tags.entries(here, "keepers")] == [theirs]
        await answer_prompt(pilot, app, "n", "first light")
        await wait_for(pilot, lambda: "note saved" in status(app))
        assert metadata.note(here, theirs) == "first light"
        await pilot.press("asterisk")
        await wait_for(pilot, lambda: metadata.favorites(here) == [theirs])
        meta = screen.query_one(Inspector)  # what the library knows of it, from the kept file and the shared data
        await wait_for(pilot, lambda: all(s in shown_text(meta) for s in ("keepers", "first light", "★")), 20)


def test_from_the_shell_an_offline_devices_file_in_its_kept_catalogue_is_tagged_noted_and_listed(tmp_path: Path) -> None:


    photos = make_photos(tmp_path / "on-alpha")
    beach = f"alpha:{photos}/2024/summer/beach.jpg"

    async def share() -> None:
        async with Core(device(tmp_path / "alpha", "alpha")) as alpha, Core(device(tmp_path / "beta", "beta")) as beta:
            a, b = alpha.library(), beta.library()
            await index(a, a.locations.add(str(photos), mode="content"))
            sync(a, b)  # alpha's locations in beta's tables, then its entries only in the file beta keeps
            without_its_entries(b, alpha.device.id)
            kept_by(b, a)

    asyncio.run(share())
    run = sd_in(tmp_path / "beta")

    def sd(*args: str) -> str:
        return run(*args)[0]

    sd("tag", "create", "trips")
    sd("tag", "add", "trips", beach)  # alpha is not running: its kept catalogue answers
    sd("note", beach, "the long beach")
    sd("fav", beach)
    assert f"alpha:{photos}/2024/summer/beach.jpg" in sd("tag", "show", "trips")
    assert sd("note", beach).strip() == "the long beach"
    assert "the long beach" in sd("note", beach, "--history")
    assert "trips" in sd("tag", "history", beach)
    assert sd("fav").split() == [f"alpha:{photos}/2024/summer/beach.jpg"]
    assert [h["name"] for h in json.loads(sd("search", "long beach", "--json"))] == ["beach.jpg"]
    assert [h["name"] for h in json.loads(sd("search", "--tag", "trips", "--json"))] == ["beach.jpg"]


async def test_a_tag_put_while_the_catalogue_was_in_the_librarys_tables_moves_to_the_global_id_once_it_is_kept(
    library: Library, tmp_path: Path
) -> None:
    receiver = Library(create_folder(tmp_path / "receiver", "Shared"), LibraryContext.this_device_only(uuid.uuid4()))
    try:
        await indexed(library, make_home(tmp_path / "home"))
        sync(library, receiver)  # as sync wrote other devices' catalogues until now: into the library's tables
        (held,) = receiver.read().execute("SELECT id FROM entries WHERE name = 'winter.jpg'").fetchone()
        tags.create(receiver, "cold")
        tags.assign(receiver, "cold", [held])
        metadata.set_note(receiver, held, "january")
        slot = kept_by(receiver, library)
        theirs = global_id(slot, owners_id(library, "winter.jpg"))
        assert [t.entry_id for t in tags.entries(receiver, "cold")] == [theirs]  # once, by its global id
        assert metadata.note(receiver, theirs) == "january" and metadata.note(receiver, held) is None
        assert found(receiver, tags=("cold",)) == ["winter.jpg"] and found(receiver, "january") == ["winter.jpg"]
    finally:
        receiver.close()
