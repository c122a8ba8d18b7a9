"""A device that leaves a shared library (unshared by a member's user, here or on another member) has its catalogue
file deleted on every member that kept it (sdcore.sync.members -> catalogue_store.forget_in); its slot stays and is
never given again; `members.forget_departed` drops the rest of its catalogue (locations, watermark): nothing lists it.
Three real cores on 127.0.0.1, syncing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.sync import catalogue
from sdcore.sync.catalogue_file import make
from sdcore.sync.catalogue_store import keep, kept, path_of, slot_of, staging_path
from sdcore.sync.members import forget_departed
from sdcore.sync.service import sync_of
from tests.functional.test_sync_restore import eventually
from tests.functional.test_sync_transport import digest, three_devices


@pytest.fixture
async def devices(tmp_path: Path) -> AsyncIterator[tuple[Core, Core, Core]]:
    async with three_devices(tmp_path, [(0, 1), (0, 2), (1, 2)]) as cores:
        yield cores


async def test_a_device_unshared_has_its_kept_catalogue_deleted_on_every_member_and_keeps_its_slot(
    devices: tuple[Core, Core, Core], tmp_path: Path
) -> None:
    a, b, c = devices
    photos = a.libraries.create("Photos")
    await sync_of(a).share(photos, "beta")
    await sync_of(a).share(photos, "gamma")
    await eventually(lambda: digest(a) == digest(b) == digest(c), 10, "the first sync")
    theirs = c.library("Photos")
    folder = tmp_path / "gamma-docs"
    folder.mkdir()
    (folder / "report.txt").write_text("gamma's")
    await theirs.jobs.wait(await index_location(theirs, theirs.locations.add(str(folder))))
    gamma = c.device.id
    for core in (a, b):  # gamma's locations in their tables (today's sync writes them; a first sync will too)
        await eventually(lambda core=core: catalogue.has_catalogue(core.library("Photos"), gamma), 10, "gamma's catalogue")
    slots = {}
    for core in (a, b):  # gamma's catalogue kept as a file by alpha and beta (as a first sync keeps it)
        library = core.library("Photos")
        make(theirs, staging_path(library, gamma))
        keep(library, gamma)
        slots[core] = slot_of(library, gamma)
        assert gamma in kept(library)
    make(b.library("Photos"), staging_path(a.library("Photos"), b.device.id))
    keep(a.library("Photos"), b.device.id)  # (and beta's by alpha: it stays)

    await sync_of(a).unshare(photos, "gamma")
    for core in (a, b):  # alpha, and beta told by alpha
        library = core.library("Photos")
        await eventually(lambda library=library: not path_of(library, gamma).exists(), 5, "gamma's file deleted")
        assert gamma not in kept(library) and slot_of(library, gamma) == slots[core]
        assert sorted(d.name for d in sync_of(core).devices(library)) == ["alpha", "beta"]
    assert b.device.id in kept(a.library("Photos"))
    assert [p.name for p in path_of(a.library("Photos"), gamma).parent.glob("*-*-*-*-*.db*")] == [f"{b.device.id}.db"]
    assert set(kept(c.library("Photos"))) == {a.device.id, b.device.id}  # gamma keeps its copy, as a library of its own

    # gamma's locations and watermark went too (the sync service forgets a departed member's catalogue once its list
    # changed), so the explorer's places and `library.devices()` no longer show it
    for core in (a, b):
        library = core.library("Photos")
        await eventually(lambda library=library: not catalogue.has_catalogue(library, gamma), 5, "gamma's locations gone")
        assert catalogue.catalogue_watermark(library, gamma) == 0
        assert gamma not in [d.id for d in await Api(core).library("Photos").devices()]
        assert {loc.device_id for loc in library.locations.list()} <= {a.device.id, b.device.id}
        assert forget_departed(library) == [] and slot_of(library, gamma) == slots[core]
    assert forget_departed(c.library("Photos")) == []  # gamma left: it keeps its copy, the others' catalogues too
