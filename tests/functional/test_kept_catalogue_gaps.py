"""What the inspector, the tags and the favourites show of another device's entries once its catalogue is a file kept
here (issue 16): the copies of a content across the library's own entries and the kept files, and nothing of a device
forgotten (its kept file deleted), until its file is kept again. Two real cores (laptop and nas) as
test_kept_catalogue_tags.py sets them up."""

from __future__ import annotations

from pathlib import Path

from sdcore import metadata, tags
from sdcore.api import Api
from sdcore.core import Core
from sdcore.sdpath import SdPath
from sdcore.sync import catalogue, catalogue_store
from sdcore.sync.catalogue_store import global_id
from tests.functional import test_kept_catalogue_tags
from tests.functional.test_kept_catalogue_tags import keep_on_laptop, kept_by, owners_id

cores = test_kept_catalogue_tags.cores  # (a fixture: laptop and nas sharing a library)


async def test_the_inspector_lists_the_copies_of_a_content_held_in_a_kept_catalogue_both_ways(
    cores: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = cores
    keep_on_laptop(a, b)
    with a.library("Shared").write() as db:  # its name, as a first sync writes it
        db.execute("INSERT INTO devices (id, name) VALUES (?, 'nas')", (str(b.device.id),))
    mine = tmp_path / "laptop-photos"
    mine.mkdir()
    nas_harbour = tmp_path / "nas-photos" / "harbour.jpg"
    (mine / "harbour copy.jpg").write_bytes(nas_harbour.read_bytes())
    (mine / "harbour again.jpg").write_bytes(nas_harbour.read_bytes())
    (mine / "other.jpg").write_bytes(b"\xff\xd8 not the harbour")
    laptop = Api(a).library("Shared")
    await laptop.locations.add(str(mine), mode="content", index=True)

    theirs = await laptop.entries.details(SdPath(b.device.id, str(nas_harbour)))  # the nas's file, from its kept file
    assert theirs is not None and theirs.same_content == (str(mine / "harbour again.jpg"), str(mine / "harbour copy.jpg"))
    here = await laptop.entries.details(SdPath(a.device.id, str(mine / "harbour copy.jpg")))  # one of the laptop's own
    assert here is not None and here.same_content == (str(mine / "harbour again.jpg"), f"nas:{nas_harbour}")
    other = await laptop.entries.details(SdPath(a.device.id, str(mine / "other.jpg")))
    assert other is not None and other.same_content == ()


async def test_a_forgotten_devices_tags_notes_and_favourites_show_nowhere_until_its_file_is_kept_again(
    cores: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = cores
    slot = keep_on_laptop(a, b)
    here, there = a.library("Shared"), b.library("Shared")
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    laptop = Api(a).library("Shared")
    await laptop.tags["trips"].add(harbour)
    await laptop.favourites.set(harbour)
    await laptop.notes.set(harbour, "the old harbour")
    theirs = global_id(slot, owners_id(there, "harbour.jpg"))

    def trips() -> int:
        return next(t.entries for t in tags.list(here) if t.name == "trips")

    assert trips() == 1 and metadata.favorites(here) == [theirs]
    catalogue.forget_catalogue(here, b.device.id)  # the nas unshared: as sdcore.sync.members.forget_departed does
    catalogue_store.forget(here, b.device.id)
    assert trips() == 0  # `sd tag list`
    assert tags.entries(here, "trips") == [] and await laptop.tags["trips"].files() == []  # `sd tag show trips`
    assert metadata.favorites(here) == [] and await laptop.favourites.list() == []  # `sd fav`

    assert kept_by(here, there) == slot  # it rejoins: its file kept again, under the slot it had
    assert trips() == 1 and [t.entry_id for t in tags.entries(here, "trips")] == [theirs]
    assert metadata.favorites(here) == [theirs] and metadata.note(here, theirs) == "the old harbour"
