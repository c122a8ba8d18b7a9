"""What the inspector, the tags and the favourites show of another device's entries once its catalogue is a file kept
here (issue 16): the copies of a content across the library's own entries and the kept files, and nothing of a device
forgotten (its kept file deleted), until its file is kept again; and a location of a kept catalogue (its entries in
the file, no root entry in the library's tables) taken over with its disk or adopted by `sd library migrate`: given
its root and indexed here. Real cores, real catalogue files, real loop-mounted ext4 disks."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from sdcore import metadata, search, tags
from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.listing import list_indexed
from sdcore.library import Library
from sdcore.library.adopt import migrate
from sdcore.library.entries import entry_at
from sdcore.library.volume_locations import take_over
from sdcore.sdpath import SdPath
from sdcore.sync import catalogue, catalogue_store, signing
from sdcore.sync.catalogue_store import global_id
from sdcore.sync.members import Members
from sdcore.volumes import list_volumes
from tests.functional import test_kept_catalogue_tags
from tests.functional.kept import kept_names
from tests.functional.test_catalogue import alpha, beta, device, index, make_photos, sync  # noqa: F401 -- fixtures
from tests.functional.test_catalogue_store_dupes import drop_entries_of
from tests.functional.test_kept_catalogue_tags import keep_on_laptop, kept_by, owners_id
from tests.functional.test_volume_hand_over import own, photos_disk

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


def entries_only_in_its_file(here: Library, owner: Library) -> None:
    """`owner`'s catalogue synced into `here` (its locations), then kept as a file and its entries gone from `here`'s
    tables, its locations' roots unset: as schema migration 35 and a first sync of a kept catalogue leave them. Each
    is a member of the other's library, as devices sharing a library are."""
    for one, other in ((here, owner), (owner, here)):
        assert one.context.key_file is not None
        Members(one.folder, one.id, signing.signer_of(one.context.key_file)).add(other.context.device_id, "member")
    sync(owner, here)
    kept_by(here, owner)
    drop_entries_of(here, owner.context.device_id)
    with here.write() as db:
        db.execute("UPDATE locations SET root_id = NULL WHERE device_id = ?", (str(owner.context.device_id),))


async def test_a_kept_catalogues_location_on_a_disk_plugged_in_here_is_taken_over_and_indexed_here(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    with photos_disk(tmp_path) as (disk, media):
        (media / "2019").mkdir()
        (media / "2019" / "boats").mkdir()
        for name in ("beach.jpg", "harbour.jpg", "boats/sloop.jpg"):
            (media / "2019" / name).write_bytes(name.encode() * 50)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019"), mode="content"))
        entries_only_in_its_file(b, a)

        def at(rel: str, device: uuid.UUID) -> int:
            return entry_at(b, str(media / "2019" / rel), device)

        for name in ("sea", "trip", "rigs"):
            tags.create(b, name)
        tags.assign(b, "sea", [at("harbour.jpg", alpha.device.id)], content=True)  # by global ids, in the file
        tags.assign(b, "trip", [at("boats/sloop.jpg", alpha.device.id)])
        tags.assign(b, "rigs", [at("boats", alpha.device.id)])
        metadata.set_note(b, at("boats/sloop.jpg", alpha.device.id), "the blue one")
        metadata.set_favorite(b, [at("beach.jpg", alpha.device.id)])

        [taken] = take_over(b)  # the disk is plugged in here: the location is beta's
        await index(b, taken)
        assert own(b) == [(str(media / "2019"), 5)]  # its root, a folder and three files, indexed here
        hits = search.run(b, search.Query("harbour"))  # once: beta's own, no longer alpha's from the file
        assert [(h.device_id, h.path) for h in hits] == [(beta.device.id, str(media / "2019" / "harbour.jpg"))]
        mine = beta.device.id
        assert [t.entry_id for t in tags.entries(b, "sea")] == [at("harbour.jpg", mine)]  # on its content: beta's copy
        assert [t.entry_id for t in tags.entries(b, "trip")] == [at("boats/sloop.jpg", mine)]  # and on the same files
        assert [t.entry_id for t in tags.entries(b, "rigs")] == [at("boats", mine)]
        assert metadata.note(b, at("boats/sloop.jpg", mine)) == "the blue one"
        assert metadata.favorites(b) == [at("beach.jpg", mine)]
        assert search.run(b, search.Query("blue one"))[0].path == str(media / "2019" / "boats" / "sloop.jpg")
        assert [t.name for t in tags.list(b)] == ["rigs", "sea", "trip"] and all(t.entries + t.contents == 1 for t in tags.list(b))


async def test_a_made_up_claim_on_a_kept_catalogues_location_is_still_refused(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """take_over's check that the disk holds most of the location's files reads them from the kept file."""
    with photos_disk(tmp_path) as (disk, media):
        made_up = tmp_path / "made-up" / "2019"
        made_up.mkdir(parents=True)
        for n in range(300):
            (made_up / f"{n}.txt").write_text(str(n))
        a, b = alpha.library(), beta.library()
        loc = a.locations.add(str(made_up))
        await index(a, loc)
        [volume] = [v for v in list_volumes() if v.mount_point == str(media)]
        with a.write() as db:  # alpha says its folder is on the disk mounted at beta's
            db.execute("UPDATE locations SET volume_id = ?, volume_path = '2019' WHERE id = ?", (volume.id, loc.id))
        (media / "2019").mkdir()
        (media / "2019" / "0.txt").write_text("0")
        entries_only_in_its_file(b, a)
        assert take_over(b) == [] and own(b) == []  # 300 of its 301 files are not on the disk


async def test_sd_library_migrate_gives_a_location_whose_entries_are_in_a_kept_file_its_root_and_indexes_it(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """A location of another device the library holds without its root entry (its entries were in the file) and not
    streamed by sync (mapped by no catalogue location): migrating adopts it where its folder is here."""
    folder = make_photos(tmp_path / "shared-disk")
    a, b = alpha.library(), beta.library()
    await index(a, a.locations.add(str(folder)))
    entries_only_in_its_file(b, a)
    with b.write() as db:
        db.execute("DELETE FROM catalogue_locations WHERE device_id = ?", (str(alpha.device.id),))
    done = await migrate(b)
    assert [loc.path for loc in done.adopted] == [str(folder)] and done.not_indexed == []
    hits = search.run(b, search.Query("beach"))
    assert [(h.device_id, h.path) for h in hits] == [(beta.device.id, str(folder / "2024" / "summer" / "beach.jpg"))]


async def test_after_a_take_over_the_owners_copy_of_the_disk_in_its_kept_file_is_read_nowhere(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """A disk indexed by alpha and plugged into beta is beta's: its files are listed, searched and counted once, as
    beta's, though alpha's kept file still holds them (until alpha hears of it): duplicates across devices, the
    inspector's same content, search, `alpha:` listings and tags on content read only alpha's other files."""
    with photos_disk(tmp_path) as (disk, media):
        (media / "2019").mkdir()
        for name in ("beach.jpg", "harbour.jpg"):
            (media / "2019" / name).write_bytes(name.encode() * 50)
        home = tmp_path / "alpha-home"  # and on alpha's own disk, a copy of the harbour
        home.mkdir()
        (home / "harbour copy.jpg").write_bytes(b"harbour.jpg" * 50)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019"), mode="content"))
        await index(a, a.locations.add(str(home), mode="content"))
        entries_only_in_its_file(b, a)
        tags.create(b, "sea")
        tags.assign(b, "sea", [entry_at(b, str(home / "harbour copy.jpg"), alpha.device.id)], content=True)

        [taken] = take_over(b)
        await index(b, taken)
        assert kept_names(b, alpha.device.id) >= {"beach.jpg", "harbour.jpg"}  # alpha's copy is still in its file
        disk_harbour, copy = str(media / "2019" / "harbour.jpg"), str(home / "harbour copy.jpg")
        library = Api(beta).library()
        [group] = await library.duplicates_across_devices()  # (the beach is on one device: beta's)
        assert [(c.device_id, c.path) for c in group.copies] == sorted(
            [(alpha.device.id, copy), (beta.device.id, disk_harbour)], key=lambda c: (str(c[0]), c[1])
        )
        details = await library.entries.details(SdPath(beta.device.id, disk_harbour))
        assert details is not None and details.same_content == (f"alpha:{copy}",)
        hits = search.run(b, search.Query("harbour"))
        assert sorted((h.device_id == beta.device.id, h.path) for h in hits) == [(False, copy), (True, disk_harbour)]
        assert list_indexed(b, str(media / "2019"), alpha.device.id) is None  # `sd ls alpha:/…/2019`: not alpha's
        assert sorted(t.entry_id for t in tags.entries(b, "sea")) == sorted(  # the content tag: each copy once
            [entry_at(b, copy, alpha.device.id), entry_at(b, disk_harbour, beta.device.id)]
        )


async def test_a_tag_note_or_favourite_on_the_owners_id_of_a_file_taken_over_reaches_it_here_and_converges(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """A disk indexed by alpha is beta's now; alpha, not told yet, tags, notes and favourites files of it by its own
    ids (as a third device would, or alpha's log replayed): on beta they land on the same files, beta's, and every
    device holding the same ops holds the same shared data (each op once: replayed, nothing more is made). An op on
    alpha's other files (not on the disk) stays on them: an owner's id reaches only the entry it named."""
    with photos_disk(tmp_path) as (disk, media):
        (media / "2019" / "boats").mkdir(parents=True)
        for name in ("beach.jpg", "harbour.jpg", "boats/sloop.jpg"):
            (media / "2019" / name).write_bytes(name.encode() * 50)
        home = tmp_path / "alpha-home"
        home.mkdir()
        (home / "cat.jpg").write_bytes(b"meow" * 50)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019"), mode="content"))
        await index(a, a.locations.add(str(home), mode="content"))
        entries_only_in_its_file(b, a)
        [taken] = take_over(b)
        await index(b, taken)

        def on_alpha(path: Path) -> int:
            return entry_at(a, str(path))

        for name in ("trip", "pets"):
            tags.create(a, name)
        tags.assign(a, "trip", [on_alpha(media / "2019" / "boats" / "sloop.jpg")])
        tags.assign(a, "pets", [on_alpha(home / "cat.jpg")])
        with a.write() as db:  # alpha's id of a file taken over, said of another device: that device's file, not this one
            a.sync.record(db, "note", target=f"e:{uuid.uuid4()}:{on_alpha(media / '2019' / 'beach.jpg')}", value="liar")
        metadata.set_note(a, on_alpha(media / "2019" / "harbour.jpg"), "low tide")
        metadata.set_favorite(a, [on_alpha(media / "2019" / "beach.jpg")])
        b.sync.apply(a.sync.ops_since(b.sync.watermarks(), 1000))  # what beta's pull of alpha's ops does

        def betas(rel: str) -> int:
            return entry_at(b, str(media / "2019" / rel), beta.device.id)

        library = Api(beta).library()
        assert [t.entry_id for t in tags.entries(b, "trip")] == [betas("boats/sloop.jpg")]  # `sd tag show trip`
        assert [(f.path.device_id, f.path.path) for f in await library.tags["trip"].files()] == [
            (beta.device.id, str(media / "2019" / "boats" / "sloop.jpg"))
        ]
        assert metadata.note(b, betas("harbour.jpg")) == "low tide"  # `sd note`
        assert metadata.note(b, betas("beach.jpg")) is None
        assert metadata.favorites(b) == [betas("beach.jpg")]  # `sd fav`
        assert {t.name: t.entries for t in tags.list(b)} == {"trip": 1, "pets": 1}  # `sd tag list`: each file once
        assert [t.entry_id for t in tags.entries(b, "pets")] == [entry_at(b, str(home / "cat.jpg"), alpha.device.id)]

        made = len(b.sync.ops_since({}, 10_000))
        assert b.sync.apply(a.sync.ops_since({}, 1000)) == 0 and len(b.sync.ops_since({}, 10_000)) == made  # replayed
        a.sync.apply(b.sync.ops_since(a.sync.watermarks(), 1000))
        async with Core(device(tmp_path / "gamma", "gamma")) as gamma:  # a third device, told by each in turn
            c = gamma.library()
            c.sync.apply(b.sync.ops_since({}, 1000))
            c.sync.apply(a.sync.ops_since({}, 1000))
            assert a.sync.digest() == b.sync.digest() == c.sync.digest()


async def test_a_late_removal_by_the_owners_id_takes_the_tag_off_here_and_a_late_note_loses_to_a_later_one_here(
    alpha: Core, beta: Core, tmp_path: Path  # noqa: F811
) -> None:
    """Tagged and noted on alpha before its disk went to beta (beta shows them on its files since the take over);
    then alpha, not told, takes the tag off and writes the note again, while beta's user writes it later still: the
    tag comes off beta's file, and the note is beta's later one (the earlier stays in its history)."""
    with photos_disk(tmp_path) as (disk, media):
        (media / "2019").mkdir()
        for name in ("beach.jpg", "harbour.jpg"):
            (media / "2019" / name).write_bytes(name.encode() * 50)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019"), mode="content"))
        harbour, beach = (entry_at(a, str(media / "2019" / name)) for name in ("harbour.jpg", "beach.jpg"))
        tags.create(a, "sea")
        tags.assign(a, "sea", [harbour])
        metadata.set_note(a, beach, "first")
        entries_only_in_its_file(b, a)
        b.sync.apply(a.sync.ops_since(b.sync.watermarks(), 1000))  # on alpha's files, by their global ids
        [taken] = take_over(b)
        await index(b, taken)
        betas_harbour, betas_beach = (entry_at(b, str(media / "2019" / n), beta.device.id) for n in ("harbour.jpg", "beach.jpg"))
        assert [t.entry_id for t in tags.entries(b, "sea")] == [betas_harbour] and metadata.note(b, betas_beach) == "first"

        tags.remove(a, "sea", [harbour])
        metadata.set_note(a, beach, "second")
        time.sleep(0.01)  # (a later millisecond: beta's note is the later one)
        metadata.set_note(b, betas_beach, "third")
        b.sync.apply(a.sync.ops_since(b.sync.watermarks(), 1000))
        assert tags.entries(b, "sea") == [] and {t.name: t.entries for t in tags.list(b)} == {"sea": 0}
        assert metadata.note(b, betas_beach) == "third"
        assert [v.value for v in metadata.note_history(b, betas_beach)] == ["first", "third"]
        assert [v.value for v in b.sync.history(f"note:e:{alpha.device.id}:{beach}")] == ["first", "second"]
        a.sync.apply(b.sync.ops_since(a.sync.watermarks(), 1000))
        assert a.sync.digest() == b.sync.digest()
