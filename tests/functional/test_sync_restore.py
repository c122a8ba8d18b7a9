"""A device whose shared library is restored from a backup, then makes more changes than it lost before the others
ask again: its numbers go on past what the others saw (a high-water mark kept in its data dir, outside the library),
they load its catalogue again, its own tags made after the backup come back to it, and nothing is dropped."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdcore import net
from sdcore.api import Api
from sdcore.core import Core
from sdcore.index.indexer import index_location
from sdcore.net.testing import pair
from sdcore.sdpath import SdPath
from sdcore.sync.service import sync_of
from tests.functional.kept import kept_names
from tests.functional.ssh_support import free_port


async def eventually(check: Callable[[], Any], within: float, what: str) -> None:
    started = time.monotonic()
    while not await asyncio.to_thread(check):
        assert time.monotonic() - started < within, f"not within {within} s: {what}"
        await asyncio.sleep(0.05)


async def start(data: Path, name: str, port: int) -> Core:
    core = Core(data)
    core.device.rename(name)
    await net.attach(core).start(f"127.0.0.1:{port}")
    return core


async def index(core: Core, folder: Path) -> None:
    library = core.library("Photos")
    found = [loc for loc in library.locations.list() if loc.path == str(folder)]
    loc = found[0] if found else library.locations.add(str(folder))
    record = await library.jobs.wait(await index_location(library, loc))
    assert record.state == "completed", record.error


async def test_a_library_restored_from_a_backup_that_then_changes_more_than_it_lost_converges_losing_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port, port_b = free_port(), free_port()
    folder = tmp_path / "alpha-photos"
    folder.mkdir()
    (folder / "kept.txt").write_text("in the backup")
    a = await start(tmp_path / "a", "alpha", port)
    b = await start(tmp_path / "b", "beta", port_b)
    try:
        await pair(net.attach(a), net.attach(b))
        for core in (a, b):
            await sync_of(core).start()
        photos = a.libraries.create("Photos")
        await sync_of(a).share(photos, "beta")
        await index(a, folder)
        kept = SdPath(a.device.id, str(folder / "kept.txt"))
        await Api(a).library("Photos").tags["before"].add(kept)
        alpha = str(a.device.id)

        def catalogue_on_beta() -> list[str]:
            return sorted(kept_names(b.library("Photos"), a.device.id))

        def own_on_alpha(core: Core) -> list[str]:
            return sorted(name for (name,) in core.library("Photos").read().execute(
                "SELECT e.name FROM entries e JOIN locations l ON l.id = e.location_id"
                " WHERE l.device_id = ? AND e.name != ''", (alpha,),
            ))  # fmt: skip

        def same_shared_data() -> bool:
            return bool(a.library("Photos").sync.digest() == b.library("Photos").sync.digest())

        await eventually(lambda: catalogue_on_beta() == ["kept.txt"] and same_shared_data(), 15, "the first sync")

        # the backup: alpha's library folder, copied while alpha is off
        await a.close()
        backup = tmp_path / "backup.sdlibrary"
        shutil.copytree(photos.folder, backup)
        a = await start(tmp_path / "a", "alpha", port)
        await sync_of(a).start()

        # after the backup: two files and two tags, which beta gets
        for name in ("lost-1.txt", "lost-2.txt"):
            (folder / name).write_text("made after the backup")
        await index(a, folder)
        lost = [SdPath(a.device.id, str(folder / n)) for n in ("lost-1.txt", "lost-2.txt")]
        await Api(a).library("Photos").tags["after-backup"].add(*lost)
        await Api(a).library("Photos").notes.set(kept, "written after the backup")
        await eventually(lambda: len(catalogue_on_beta()) == 3 and same_shared_data(), 15, "the later changes on beta")
        highest_id = a.library("Photos").read().execute("SELECT max(id) FROM entries").fetchone()[0]
        await a.close()

        # alpha's disk dies: the library comes back from the backup, and the later files are gone with the disk
        folder_of = photos.folder
        shutil.rmtree(folder_of)
        shutil.copytree(backup, folder_of)
        for name in ("lost-1.txt", "lost-2.txt"):
            (folder / name).unlink()
        await net.attach(b).close()  # beta is away while alpha changes more than it lost
        a = Core(tmp_path / "a")
        with caplog.at_level(logging.WARNING, logger="sdcore.sync.highwater"):
            for n in range(4):
                (folder / f"new-{n}.txt").write_text("made after the restore")
            await index(a, folder)
        assert any("restored from a backup" in r.getMessage() for r in caplog.records)
        assert a.library("Photos").restored is not None
        new = [SdPath(a.device.id, str(folder / f"new-{n}.txt")) for n in range(4)]
        await Api(a).library("Photos").tags["after-restore"].add(*new)
        await Api(a).library("Photos").tags["more"].add(*new)
        new_ids = [i for (i,) in a.library("Photos").read().execute("SELECT id FROM entries WHERE name LIKE 'new-%'")]
        assert min(new_ids) > highest_id  # no id the others saw is given again
        await a.close()

        # both back: they converge, and nothing alpha made is dropped anywhere
        a = await start(tmp_path / "a", "alpha", port)
        await net.attach(b).start(f"127.0.0.1:{port_b}")
        await sync_of(a).start()
        sync_of(b)._puller(alpha).set()
        sync_of(a)._puller(str(b.device.id)).set()
        want = ["kept.txt", *(f"new-{n}.txt" for n in range(4))]
        await eventually(lambda: catalogue_on_beta() == want == own_on_alpha(a), 20, "beta holding alpha's files as they are")
        await eventually(same_shared_data, 20, "the same tags and notes on both")
        for core in (a, b):
            lib = Api(core).library("Photos")
            assert sorted(t.name for t in await lib.tags.list()) == ["after-backup", "after-restore", "before", "more"]
            assert await lib.notes.get(kept) == "written after the backup"  # made on alpha, lost there, back from beta
            assert len(await lib.tags["after-restore"].files()) == 4, core.device.name
    finally:
        for core in (a, b):
            await core.close()
