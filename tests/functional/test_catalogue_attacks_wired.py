"""Attacks on another device's catalogue kept as a file and wired into sync (issue 16): alpha, paired with full trust
and sharing "Photos" with beta, sends beta whatever it likes once beta has fetched and kept its catalogue file."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sdcore import net, search, tags
from sdcore.core import Core
from sdcore.index.listing import list_indexed
from sdcore.library import Library
from sdcore.library.damage import uri
from sdcore.library.volume_locations import take_over
from sdcore.net.trust import Peer
from sdcore.sync import catalogue, catalogue_store, protocol
from sdcore.sync.catalogue import CatalogueBatch, CatalogueEntry, CatalogueLocation, CatalogueRefused, ref_of
from sdcore.sync.catalogue_file import make
from sdcore.sync.service import sync_of
from sdcore.volumes import list_volumes
from tests.functional.test_catalogue import alpha, beta, device, index, sd_in
from tests.functional.test_catalogue_transport import shared
from tests.functional.test_volume_hand_over import own, photos_disk, tagged

__all__ = ["alpha", "beta", "shared"]  # (fixtures: alpha's "Photos" shared with beta; two cores not paired)


def kept_location(b: Core, a: Core) -> tuple[int, int, str]:
    """alpha's location as the file beta keeps of it says: (its id, its root's id, its path), alpha's own ids."""
    path = catalogue_store.path_of(b.library("Photos"), a.device.id)
    with contextlib.closing(sqlite3.connect(uri(path, "mode=ro"), uri=True)) as conn:
        row = conn.execute("SELECT id, root_id, path FROM locations").fetchone()
    return int(row[0]), int(row[1]), str(row[2])


def alpha_on(b: Core, a: Core) -> Peer:
    peer = net.attach(b).trust.get(a.device.id)
    assert peer is not None
    return peer


@pytest.mark.parametrize("where", ["entry", "root"])
async def test_a_batch_naming_an_owners_id_past_2_40_is_refused_and_names_no_entry_of_another_slot(
    shared: tuple[Core, Core, Path], where: str
) -> None:
    """An owner's id at or past 1 << 40 would read, once made global (slot << 40 | id), as an entry of another slot:
    listed, it is tagged on another device's entry; searched, no global id numbers it (search fails)."""
    a, b, home = shared
    assert await sync_of(b).pull(str(a.device.id))  # the first sync: alpha's file kept on beta
    mine = b.library("Photos")
    location, root, path = kept_location(b, a)
    since = catalogue.catalogue_watermark(mine, a.device.id)
    evil = (3 << catalogue_store.SLOT_BITS) | 5  # | alpha's slot (1): slot 3's entry 5
    if where == "entry":
        entries = (CatalogueEntry(evil, location, root, "evil.txt", "file", None, 1, 0, 1.7e9, False, None),)
        locations: tuple[CatalogueLocation, ...] = ()
    else:
        entries = ()
        locations = (CatalogueLocation(location, path, "home", "content", "indexed", 1.7e9, 1.7e9, evil),)
    batch = CatalogueBatch(a.device.id, "alpha", since, since + 1, since + 1, locations, entries)
    with pytest.raises(CatalogueRefused, match="past"):
        protocol.catalogue(mine).apply(
            str(a.device.id), batch.pack()
        )  # as beta's pull applies alpha's answer
    assert catalogue.catalogue_watermark(mine, a.device.id) == since  # nothing written
    listed = list_indexed(mine, str(home), a.device.id) or []
    assert listed and "evil.txt" not in {e.name for e in listed}
    assert {ref_of(mine.read(), e.entry_id).device_id for e in listed} == {a.device.id}
    assert [h.name for h in search.run(mine, search.Query("winter"))] == ["winter.jpg", "copy of winter.jpg"]


async def test_an_owner_whose_log_restarts_below_every_file_it_sends_is_fetched_once_again_not_forever(
    shared: tuple[Core, Core, Path],
) -> None:
    """alpha sends its file (head H), then answers beta's ask for changes since H with "restarted": beta forgets the file
    and fetches it again, once; alpha saying so again fails the first sync with one line, not a loop of fetches."""
    a, b, _home = shared
    alpha = net.attach(a)
    real_file = alpha._extensions["sync_catalogue_file"][0]
    fetches: list[int] = []

    async def counted(peer: Peer, library: object, offset: object) -> dict[str, Any]:
        if offset == 0:
            fetches.append(0)
        return await real_file(peer, library, offset)

    async def restarted(peer: Peer, library: object, since: object, limit: object) -> dict[str, Any]:
        batch = CatalogueBatch(a.device.id, "alpha", 0, 0, 0)
        return {"batch": batch.pack(), "up_to": 0, "head": 0, "restart": True}

    alpha.expose("sync_catalogue_file", counted)
    alpha.expose("sync_catalogue", restarted)
    mine = b.library("Photos")
    async with asyncio.timeout(30):
        with contextlib.suppress(Exception):
            await sync_of(b).pull(str(a.device.id))
    assert len(fetches) == 2
    (job,) = [j for j in mine.jobs.list() if j.kind == "sync"]
    assert job.state == "failed" and "restarted" in (job.error or "")


def kept_as_file(owner: Library, receiver: Library) -> None:
    """The owner's catalogue taken by `receiver` as a first sync does (catalogue_transport without the wire): its file
    kept, its locations adopted, the watermark at the file's head."""
    device = owner.context.device_id
    make(owner, catalogue_store.staging_path(receiver, device))
    held = catalogue_store.keep(
        receiver, device, None, lambda: catalogue.adopt_catalogue_file(receiver, device)
    )
    catalogue.catalogue_file_kept(receiver, device, held.head)


async def test_a_member_cannot_pass_off_files_it_made_up_as_a_folder_of_a_disk_mounted_here_from_its_kept_file(
    alpha: Core,  # noqa: F811
    beta: Core,  # noqa: F811
    tmp_path: Path,
) -> None:
    """As test_volume_hand_over's test of tables: alpha says its 300 made-up files are beta's disk's 'spare' folder
    (which beta never indexed). With alpha's catalogue a file, none of its entries is in beta's tables: the check of
    how many are on the disk must read the file, or it finds none missing and beta takes 'spare' as its own."""
    with photos_disk(tmp_path) as (_disk, media):
        (media / "spare").mkdir()
        (media / "spare" / "real.txt").write_bytes(b"real")
        made_up = tmp_path / "made-up"
        made_up.mkdir()
        for n in range(300):
            (made_up / f"invoice-{n}.pdf").write_bytes(b"%PDF")
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(made_up)))
        kept_as_file(a, b)
        [volume] = [v for v in list_volumes() if v.mount_point == str(media)]
        head = catalogue.catalogue_watermark(b, alpha.device.id)
        honest = catalogue.catalogue_changes(a, 0)
        said = dataclasses.replace(honest.locations[0], volume_id=volume.id, volume_path="spare")
        claim = CatalogueBatch(alpha.device.id, "alpha", head, head + 1, head + 1, (said,))
        catalogue.apply_catalogue(b, alpha.device.id, CatalogueBatch.unpack(claim.pack()))

        assert take_over(b) == []  # 300 of its 301 files are not on the disk: it is not this disk's folder
        assert own(b) == []
        assert [x.path for x in b.locations.list() if x.device_id == alpha.device.id] == [str(made_up)]


async def test_a_location_taken_over_from_a_kept_file_keeps_its_entries_and_the_tags_put_on_them_here(
    alpha: Core,  # noqa: F811
    beta: Core,  # noqa: F811
    tmp_path: Path,
) -> None:
    """alpha's folder of a disk now mounted at beta is taken over by beta (sdcore.library.volume_locations: "keeping
    their entries, and the tags, notes and favourites on them"). alpha's entries are in its kept file, not in beta's
    tables: they are written there as the location is taken, the tag on alpha's beach.jpg moved to beta's row of it
    (taken with none of them, the location could not be indexed: "has no root entry; remove and add it again")."""
    with photos_disk(tmp_path) as (_disk, media):
        (media / "2019").mkdir()
        (media / "2019" / "beach.jpg").write_bytes(b"sand" * 100)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019")))
        kept_as_file(a, b)
        tags.create(b, "summer")
        [beach] = search.run(b, search.Query("beach"))
        tags.assign(b, "summer", [beach.entry_id])
        assert [loc.path for loc in take_over(b)] == [str(media / "2019")]
        assert own(b) == [(str(media / "2019"), 2)]  # its root and beach.jpg, beta's now
        assert tagged(b) == ["beach.jpg"]


async def test_a_location_taken_over_from_a_kept_file_is_searched_and_listed_once_as_this_devices(
    alpha: Core,  # noqa: F811
    beta: Core,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Once beta took over alpha's folder of a disk mounted at beta and indexed it, its files are beta's: alpha's kept
    file, which still holds them until alpha hands the folder over, is not searched for them too."""
    with photos_disk(tmp_path) as (_disk, media):
        (media / "2019").mkdir()
        (media / "2019" / "beach.jpg").write_bytes(b"sand" * 100)
        a, b = alpha.library(), beta.library()
        await index(a, a.locations.add(str(media / "2019")))
        kept_as_file(a, b)
        [taken] = take_over(b)
        await index(b, taken)
        hits = search.run(b, search.Query("beach"))
        assert [(h.path, h.device_id) for h in hits] == [(str(media / "2019" / "beach.jpg"), beta.device.id)]


def test_names_from_a_kept_catalogue_file_are_printed_escaped_by_sd(tmp_path: Path) -> None:
    """alpha's file names (any bytes but '/' and NUL, as its disk allows) read from the file beta keeps of its
    catalogue: `sd ls`, `sd search`, `sd tag show` never hand a terminal escape sequence to beta's terminal."""


    folder = tmp_path / "on-alpha"
    folder.mkdir()
    evil = "\x1b]0;pwned\x07\x1b[2Jevil\u202etxt.exe"
    (folder / evil).write_text("x")

    async def share() -> None:
        async with (
            Core(device(tmp_path / "alpha", "alpha")) as a,
            Core(device(tmp_path / "beta", "beta")) as b,
        ):
            await index(a.library(), a.library().locations.add(str(folder), mode="content"))
            kept_as_file(a.library(), b.library())

    asyncio.run(share())
    run = sd_in(tmp_path / "beta")

    def sd(*args: str) -> str:
        return run(*args)[0]

    sd("tag", "create", "odd")
    shown = [sd("ls", f"alpha:{folder}"), sd("search", "evil")]
    sd("tag", "add", "odd", f"alpha:{folder}/{evil}")
    shown.append(sd("tag", "show", "odd"))
    for out in shown:
        assert "evil" in out and "\x1b" not in out and "\x07" not in out and "\u202e" not in out, out
        assert "\\x1b" in out
