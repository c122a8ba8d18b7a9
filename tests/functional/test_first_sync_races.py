"""A first sync of a member's catalogue (sdcore.sync.service: FirstSync) raced by what forgets what is kept of that
member: the member leaving the library while its file is fetched, checked or put in place. Two real cores on
127.0.0.1 (the `shared` fixture: alpha's "Photos" shared with beta, which pulls by hand)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sdcore import net
from sdcore.core import Core
from sdcore.device import KEY_FILE
from sdcore.errors import SdError
from sdcore.net.testing import pair
from sdcore.net.trust import Peer
from sdcore.sync import catalogue, catalogue_store, service, signing
from sdcore.sync.catalogue import CatalogueBatch
from sdcore.sync.members import Members, forget_departed
from sdcore.sync.service import sync_of
from tests.functional.kept import in_tables, kept_names
from tests.functional.test_catalogue_file import indexed, make_home
from tests.functional.test_catalogue_transport import shared, small_chunks
from tests.functional.test_sync_transport import three_devices

__all__ = ["shared"]


def alpha_leaves(b: Core, a: Core, loop: asyncio.AbstractEventLoop, moment: str) -> None:
    """Alpha leaves beta's "Photos" now (called from a thread of beta's first sync, which waits for it): beta's user
    runs `sd library unshare Photos alpha` (alpha is told), or gamma, another member, removed alpha and told beta only
    (as beta's `sync_unshare` handler does: alpha still answers beta's asks)."""
    if "another member" in moment:
        mine = b.library("Photos")
        Members(mine.folder, mine.id, signing.signer_of(b.data_dir / KEY_FILE)).remove(a.device.id)
        forget_departed(mine)
    else:
        asyncio.run_coroutine_threadsafe(sync_of(b).unshare(b.library("Photos"), "alpha"), loop).result(30)


@pytest.mark.parametrize(
    "moment",
    [
        "fetching",
        "before keep",
        "listable",
        "before its watermark",
        "before the fetch, removed by another member",
        "before keep, removed by another member",
    ],
)
async def test_a_member_unshared_during_its_first_sync_leaves_nothing_kept_and_a_share_again_completes(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, moment: str
) -> None:
    """Beta's user unshares alpha while beta's first sync of alpha's catalogue is at `moment`: the first sync ends with
    one line saying alpha left (no traceback), nothing of alpha is kept or listed on beta, and once beta shares the
    library with alpha again its next pull keeps alpha's whole catalogue."""
    a, b, home = shared
    loop = asyncio.get_running_loop()
    mine = b.library("Photos")
    once: list[str] = []

    def departing(real: Callable[..., Any]) -> Callable[..., Any]:
        def work(*args: Any) -> Any:
            if not once:
                once.append(moment)
                alpha_leaves(b, a, loop, moment)
            return real(*args)

        return work

    if moment == "fetching":  # a part of the file asked for after the unshare: alpha refuses it (beta left its library)
        small_chunks(monkeypatch)
        alpha = net.attach(a)
        real_file = alpha._extensions["sync_catalogue_file"][0]

        async def answer(peer: Peer, library: object, offset: object) -> dict[str, Any]:
            if offset and not once:
                once.append(moment)
                await sync_of(b).unshare(mine, "alpha")
            return await real_file(peer, library, offset)

        alpha.expose("sync_catalogue_file", answer)
    elif moment.startswith("before the fetch"):
        monkeypatch.setattr(catalogue_store, "staging_path", departing(catalogue_store.staging_path))
    elif moment.startswith("before keep"):
        monkeypatch.setattr(catalogue_store, "keep", departing(catalogue_store.keep))
    elif moment == "listable":  # kept and listable, its search index not built yet
        monkeypatch.setattr(service, "adopt_catalogue_file", departing(service.adopt_catalogue_file))
    else:  # kept and searchable
        monkeypatch.setattr(service, "catalogue_file_kept", departing(service.catalogue_file_kept))

    with caplog.at_level(logging.INFO):
        async with asyncio.timeout(30):
            await sync_of(b).pull(str(a.device.id))
    assert once == [moment]
    [job] = [j for j in mine.jobs.list() if j.kind == "sync"]
    assert job.state == "failed" and job.error == "library 'Photos' is no longer shared with alpha here: nothing of its catalogue is kept"
    assert not [r for r in caplog.records if r.exc_info is not None]  # (no "failed unexpectedly", no traceback)
    assert sorted(p.name for p in catalogue_store.path_of(mine, a.device.id).parent.glob(f"{a.device.id}*")) == []
    assert catalogue.catalogue_watermark(mine, a.device.id) == 0 and not catalogue.has_catalogue(mine, a.device.id)
    assert [loc.path for loc in mine.locations.list() if loc.device_id == a.device.id] == []
    assert in_tables(mine, a.device.id) == 0

    monkeypatch.undo()
    await sync_of(b).share(mine, "alpha")
    async with asyncio.timeout(30):
        await sync_of(b).pull(str(a.device.id))
    assert [j.state for j in mine.jobs.list() if j.kind == "sync"] == ["completed"]
    assert "winter.jpg" in kept_names(mine, a.device.id) and catalogue.catalogue_watermark(mine, a.device.id) > 0
    assert [loc.path for loc in mine.locations.list() if loc.device_id == a.device.id] == [str(home)]


async def test_a_core_closed_mid_keep_keeps_no_watermark_and_its_next_pull_completes_the_first_sync(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C on beta's `sd serve` (its core closing) while the file fetched from alpha is being kept: the keep on its
    thread ends (the close waits for it), the first sync is interrupted (no watermark, no traceback); beta started
    again resumes it and keeps alpha's whole catalogue."""
    async with Core(tmp_path / "a") as a:
        b = Core(tmp_path / "b")
        for core, name in ((a, "alpha"), (b, "beta")):
            core.device.rename(name)
            await net.attach(core).start("127.0.0.1:0")
            sync_of(core)
        await pair(net.attach(a), net.attach(b))
        photos = a.libraries.create("Photos")
        home = make_home(tmp_path / "home")
        await indexed(photos, home)
        await sync_of(a).share(photos, "beta")
        loop = asyncio.get_running_loop()
        closing: list[concurrent.futures.Future[None]] = []
        real_adopt = service.adopt_catalogue_file

        def adopt_as_beta_closes(*args: Any) -> None:
            closing.append(asyncio.run_coroutine_threadsafe(b.close(), loop))
            while not sync_of(b).closed:  # (its close then waits for this thread)
                time.sleep(0.01)
            real_adopt(*args)

        service.adopt_catalogue_file = adopt_as_beta_closes  # type: ignore[assignment]
        try:
            with caplog.at_level(logging.INFO), contextlib.suppress(SdError):
                async with asyncio.timeout(30):
                    await sync_of(b).pull(str(a.device.id))
            await asyncio.wrap_future(closing[0])
        finally:
            service.adopt_catalogue_file = real_adopt  # type: ignore[assignment]
        assert not [r for r in caplog.records if r.exc_info is not None]

        async with Core(tmp_path / "b") as b:
            await net.attach(b).start("127.0.0.1:0")
            mine = b.library("Photos")
            assert [j.state for j in mine.jobs.list() if j.kind == "sync"] == ["interrupted"]
            assert catalogue.catalogue_watermark(mine, a.device.id) == 0
            async with asyncio.timeout(30):
                await sync_of(b).pull(str(a.device.id))
            assert [j.state for j in mine.jobs.list() if j.kind == "sync"] == ["completed"]
            assert "winter.jpg" in kept_names(mine, a.device.id) and catalogue.catalogue_watermark(mine, a.device.id) > 0
            assert sorted(p.name for p in catalogue_store.path_of(mine, a.device.id).parent.glob(f"{a.device.id}*")) == [
                f"{a.device.id}.db"
            ]


async def test_a_device_unshared_by_the_owner_during_a_pull_keeps_its_copy_of_the_owners_catalogue(
    shared: tuple[Core, Core, Path],
) -> None:
    """Alpha's user unshares beta (beta is told it left: it keeps its copy of the library, the catalogues it holds
    too) while beta pulls alpha's later changes: alpha refuses the ask, and beta keeps alpha's catalogue as it was (the
    departure of a member, which forgets it, is not beta's own leaving)."""
    a, b, home = shared
    photos = a.library("Photos")
    alpha = net.attach(a)
    real_changes = alpha._extensions["sync_catalogue"][0]
    unsharing: list[bool] = []

    async def unsharing_first(peer: Peer, library: object, since: object, limit: object) -> dict[str, Any]:
        if unsharing:
            await sync_of(a).unshare(photos, "beta")
        return await real_changes(peer, library, since, limit)

    alpha.expose("sync_catalogue", unsharing_first)  # (before beta connects: a connection keeps the handlers it met)
    await sync_of(b).pull(str(a.device.id))  # the first sync
    mine = b.library("Photos")
    held = kept_names(mine, a.device.id)
    assert "winter.jpg" in held
    (home / "later.txt").write_text("after the first sync")
    await indexed(photos, home)
    unsharing.append(True)
    with pytest.raises(SdError, match="no library .* is shared with beta here"):
        await sync_of(b).pull(str(a.device.id))
    assert kept_names(mine, a.device.id) == held and catalogue.catalogue_watermark(mine, a.device.id) > 0


@pytest.mark.parametrize("stop", ["cancel", "pause"])
@pytest.mark.parametrize("moment", ["fetching", "keeping"])
async def test_a_first_sync_canceled_or_paused_anywhere_keeps_all_or_nothing_and_the_next_pull_completes(
    shared: tuple[Core, Core, Path],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    stop: str,
    moment: str,
) -> None:
    """The user cancels or pauses beta's first sync of alpha while a part of the file is fetched, or while the file is
    kept (on a thread, where no pause takes effect): the job stops (or, asked too late, completes) with no traceback;
    beta holds alpha's whole catalogue with its watermark, or nothing of it; the next pull completes it."""
    a, b, home = shared
    mine = b.library("Photos")
    loop = asyncio.get_running_loop()

    def asked() -> None:
        [job] = [j for j in mine.jobs.list() if j.kind == "sync"]
        getattr(mine.jobs, stop)(job.id)

    if moment == "fetching":
        small_chunks(monkeypatch)
        alpha = net.attach(a)
        real_file = alpha._extensions["sync_catalogue_file"][0]

        async def answer(peer: Peer, library: object, offset: object) -> dict[str, Any]:
            if offset:
                asked()
            return await real_file(peer, library, offset)

        alpha.expose("sync_catalogue_file", answer)
    else:
        real_keep = catalogue_store.keep

        def keep(*args: Any) -> Any:
            asyncio.run_coroutine_threadsafe(asyncio.to_thread(asked), loop).result(30)
            return real_keep(*args)

        monkeypatch.setattr(catalogue_store, "keep", keep)
    with caplog.at_level(logging.INFO):
        async with asyncio.timeout(30):
            await sync_of(b).pull(str(a.device.id))
    assert not [r for r in caplog.records if r.exc_info is not None]
    [job] = [j for j in mine.jobs.list() if j.kind == "sync"]
    assert job.state in ("canceled" if stop == "cancel" else "paused", "completed")
    kept = sorted(p.name for p in catalogue_store.path_of(mine, a.device.id).parent.glob(f"{a.device.id}*"))
    watermark = catalogue.catalogue_watermark(mine, a.device.id)
    assert (kept, watermark > 0) in (([], False), ([f"{a.device.id}.db"], True))
    assert in_tables(mine, a.device.id) == 0

    monkeypatch.undo()
    if job.state == "paused":
        await mine.jobs.resume(job.id)
        await mine.jobs.wait(job.id)
    async with asyncio.timeout(30):
        await sync_of(b).pull(str(a.device.id))
    assert "completed" in [j.state for j in mine.jobs.list() if j.kind == "sync"]  # (a canceled one is not resumed)
    assert "winter.jpg" in kept_names(mine, a.device.id) and catalogue.catalogue_watermark(mine, a.device.id) > 0
    assert [loc.path for loc in mine.locations.list() if loc.device_id == a.device.id] == [str(home)]


async def test_an_owner_whose_log_restarts_at_every_ask_and_that_says_changed_at_once_is_not_fetched_again_and_again(
    tmp_path: Path,
) -> None:
    """alpha answers every ask for changes with "restarted" and tells beta its library changed as soon as beta's sync
    of it failed: beta's puller, woken at once each time, fetched alpha's whole file twice a pull, without end (a
    check and an index of the file each time). Within a few seconds beta fetches it twice, no more."""
    async with three_devices(tmp_path, [(0, 1)]) as (a, b, _c):
        alpha = net.attach(a)
        real_file = alpha._extensions["sync_catalogue_file"][0]
        fetches: list[float] = []

        async def counted(peer: Peer, library: object, offset: object) -> dict[str, Any]:
            if offset == 0:
                fetches.append(time.monotonic())
            return await real_file(peer, library, offset)

        async def restarted(peer: Peer, library: object, since: object, limit: object) -> dict[str, Any]:
            asyncio.get_running_loop().call_later(0.1, sync_of(a)._changed, photos.id)  # "changed": beta pulls again
            batch = CatalogueBatch(a.device.id, "alpha", 0, 0, 0)
            return {"batch": batch.pack(), "up_to": 0, "head": 0, "restart": True}

        alpha.expose("sync_catalogue_file", counted)
        alpha.expose("sync_catalogue", restarted)
        photos = a.libraries.create("Photos")
        await indexed(photos, make_home(tmp_path / "home"))
        await sync_of(a).share(photos, "beta")
        await asyncio.sleep(5)
        assert len(fetches) == 2
