"""A first sync's transport of a catalogue file (sdcore.sync.catalogue_transport): two cores on 127.0.0.1, alpha
sharing "Photos" with beta; beta fetches alpha's catalogue file over their SSH channel and keeps it."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import net, search
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.library.library import Library
from sdcore.net.frames import PermissionDenied
from sdcore.net.testing import pair
from sdcore.sync import catalogue_store, catalogue_transport
from sdcore.sync.catalogue_file import CatalogueRefused
from sdcore.sync.catalogue_transport import fetch_catalogue_file
from sdcore.sync.service import sync_of
from tests.functional.test_catalogue_file import indexed, make_home


@pytest.fixture
async def shared(tmp_path: Path) -> AsyncIterator[tuple[Core, Core, Path]]:
    """alpha and beta paired with full trust, their sync services answering but not pulling by themselves; alpha's
    "Photos" (an indexed folder, returned) shared with beta, which has pulled nothing of it yet."""
    async with Core(tmp_path / "a") as a, Core(tmp_path / "b") as b:
        for core, name in ((a, "alpha"), (b, "beta")):
            core.device.rename(name)
            await net.attach(core).start("127.0.0.1:0")
            sync_of(core)  # (answering its requests; not started)
        await pair(net.attach(a), net.attach(b))
        photos = a.libraries.create("Photos")
        home = make_home(tmp_path / "home")
        await indexed(photos, home)
        await sync_of(a).share(photos, "beta")
        yield a, b, home


async def fetch(a: Core, b: Core) -> Any:
    peer = net.attach(b).trust.get(a.device.id)
    assert peer is not None
    return await fetch_catalogue_file(sync_of(b), peer, b.library("Photos"))


def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 4 KiB (alpha's and beta's sides are this process): a file of many parts."""
    monkeypatch.setattr(catalogue_transport, "CHUNK", 4096)
    monkeypatch.setattr(catalogue_transport, "MIN_PART", 4096)


def left_on(a: Core, b: Core) -> tuple[list[str], list[str]]:
    """Files in beta's catalogues folder (but its own catalogue's, made when the library was shared with it), and
    alpha's copies made for an asker."""
    mine, theirs = (core.library("Photos").folder / catalogue_store.FOLDER for core in (b, a))
    kept = sorted(p.name for p in mine.glob("*") if p.name != catalogue_transport.OUTGOING)
    return kept, sorted(p.name for p in theirs.glob("*.copy"))


async def test_a_member_fetches_the_owners_catalogue_file_and_searches_its_files_there(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, home = shared
    monkeypatch.setattr(catalogue_transport, "FRESH", 0.5)
    (home / "photos" / "2024" / "winter.jpg").rename(home / "photos" / "2024" / "frost.jpg")
    await indexed(a.library("Photos"), home)
    assert await sync_of(b).pull(str(a.device.id))  # a first sync: the file fetched and kept
    receiver = b.library("Photos")
    assert catalogue_store.kept(receiver).keys() == {a.device.id}
    (frost,) = search.run(receiver, search.Query("frost.jpg"))
    assert frost.device_id == a.device.id and frost.path == str(home / "photos" / "2024" / "frost.jpg")
    assert search.run(receiver, search.Query("winter.jpg"))[0].name == "copy of winter.jpg"
    await asyncio.sleep(1.0)  # (alpha keeps the copy FRESH seconds, for an ask from 0 again)
    assert left_on(a, b) == ([f"{a.device.id}.db"], [])  # nothing staged here, no copy left there


async def test_a_library_not_shared_is_refused_as_one_that_does_not_exist(shared: tuple[Core, Core, Path]) -> None:
    a, b, _home = shared
    secret = a.libraries.create("Secret")
    for library in (secret.id, uuid.uuid4()):
        with pytest.raises(PermissionDenied, match=f"^no library {library} is shared with beta here$"):
            await net.attach(b).call(str(a.device.id), "sync_catalogue_file", library=str(library), offset=0)
    assert not (secret.folder / catalogue_store.FOLDER).exists()  # nothing made of it either


@pytest.mark.parametrize("cut", ["cancelled", "gone"])
async def test_a_fetch_cut_off_midway_leaves_nothing_and_the_next_fetch_keeps_the_file(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch, cut: str
) -> None:
    a, b, _home = shared
    small_chunks(monkeypatch)
    service = sync_of(b)
    real_ext, calls, reached = service._ext, [], asyncio.Event()

    async def third_cut(device: object, request: str, **args: Any) -> Any:
        calls.append(args["offset"])
        if len(calls) == 3:
            reached.set()
            if cut == "gone":
                raise ConnectionResetError("alpha went away")
            await asyncio.Event().wait()  # (cancelled there)
        return await real_ext(device, request, **args)

    monkeypatch.setattr(service, "_ext", third_cut)
    fetching = asyncio.create_task(fetch(a, b))
    await reached.wait()
    if cut == "cancelled":
        fetching.cancel()
    with pytest.raises(asyncio.CancelledError if cut == "cancelled" else ConnectionResetError):
        await fetching
    assert calls == [0, 4096, 8192]
    staged, copies = left_on(a, b)
    assert staged == [] and len(copies) == 1  # the copy made for beta waits for it (10 minutes)
    monkeypatch.setattr(service, "_ext", real_ext)
    assert (await fetch(a, b)).device_id == a.device.id  # from 0 again, from the copy made for beta
    assert left_on(a, b) == ([f"{a.device.id}.db"], copies)  # (kept FRESH seconds)


async def test_an_answer_whose_file_changes_midway_is_refused_and_nothing_is_kept(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _home = shared
    small_chunks(monkeypatch)
    real_answer = catalogue_transport.Outgoing.answer

    async def grown(self: Any, library: Library, asker: str, offset: int) -> dict[str, Any]:
        answer = await real_answer(self, library, asker, offset)
        return {**answer, "size": answer["size"] + 4096} if offset else answer  # a liar, or a file refreshed

    monkeypatch.setattr(catalogue_transport.Outgoing, "answer", grown)
    with pytest.raises(CatalogueRefused, match="the catalogue file changed while it was sent"):
        await fetch(a, b)
    assert left_on(a, b)[0] == []


async def test_an_owners_catalogue_file_found_broken_is_made_anew_at_the_next_ask(
    shared: tuple[Core, Core, Path],
) -> None:
    a, b, _home = shared
    await fetch(a, b)
    kept = a.library("Photos").folder / catalogue_store.FOLDER / catalogue_transport.OUTGOING
    kept.write_bytes(b"SQLite format 3\x00" + b"\x07" * 9000)  # a disk's bad day
    assert (await fetch(a, b)).entries > 15


async def test_a_copy_an_asker_left_is_deleted_after_it_stays_idle(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _home = shared
    small_chunks(monkeypatch)
    monkeypatch.setattr(catalogue_transport, "IDLE", 1.0)
    alpha = str(a.device.id)
    answer = await net.attach(b).call(alpha, "sync_catalogue_file", library=str(a.library("Photos").id), offset=0)
    assert len(answer["data"]) == 4096 < answer["size"]
    assert len(left_on(a, b)[1]) == 1
    await asyncio.sleep(2.0)
    assert left_on(a, b)[1] == []
    with pytest.raises(SdError, match="asked from offset 0 first"):  # its copy gone, the asker starts again
        await net.attach(b).call(alpha, "sync_catalogue_file", library=str(a.library("Photos").id), offset=4096)


async def test_asks_from_0_whose_asker_hangs_up_make_one_copy_at_a_time_and_leave_none_behind(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A member that asks from 0 and drops its connection while the copy is made, again and again: its request is
    cancelled there, but the copy's thread runs on. Another copy of the library is not made beside it (one refresh of
    the kept file at a time), and the copies made are the asker's (deleted when it asks again or stays idle), none
    left on disk with no one to delete them."""
    a, b, _home = shared
    real_copy, making, most, started = catalogue_transport._frozen_copy, [0], [0], threading.Event()

    def slow_copy(library: Library, live: set[Path]) -> Any:
        making[0] += 1
        most[0] = max(most[0], making[0])
        started.set()
        time.sleep(0.3)
        try:
            return real_copy(library, live)
        finally:
            making[0] -= 1

    monkeypatch.setattr(catalogue_transport, "_frozen_copy", slow_copy)
    link, library = net.attach(b).link(a.device.id), str(a.library("Photos").id)
    for _ in range(3):
        started.clear()
        asking = asyncio.ensure_future(link.call("ext", name="sync_catalogue_file", args={"library": library, "offset": 0}))
        for _ in range(100):  # (until a copy is being made: a new one, or the last one still)
            if started.is_set() or (making[0] and _ > 10):
                break
            await asyncio.sleep(0.01)
        await link.close()  # (alpha's session ends: the request is cancelled there)
        with pytest.raises(SdError):
            await asking
    while making[0]:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)
    assert most[0] == 1
    copies = left_on(a, b)[1]
    assert len(copies) == 1  # the last one made, beta's (asked from 0 again, it answers)
    assert (await fetch(a, b)).device_id == a.device.id
    assert left_on(a, b) == ([f"{a.device.id}.db"], copies)


async def test_an_owner_that_sends_its_file_a_few_bytes_at_a_time_is_refused_at_once(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lying owner answering each ask with one byte would keep the receiver asking (a round trip, a thread's write)
    once a byte, up to the largest file it keeps: gigabytes of round trips."""
    a, b, _home = shared
    small_chunks(monkeypatch)  # (alpha's copy kept while beta asks on)
    real_answer, asked = catalogue_transport.Outgoing.answer, []

    async def dribble(self: Any, library: Library, asker: str, offset: int) -> dict[str, Any]:
        asked.append(offset)
        if len(asked) > 50:
            raise ValueError("beta asked on and on")
        answer = await real_answer(self, library, asker, offset)
        return {**answer, "data": answer["data"][:1]}

    monkeypatch.setattr(catalogue_transport.Outgoing, "answer", dribble)
    with pytest.raises(CatalogueRefused, match=r"file.s part at 0 \(1 bytes\) is shorter than "):
        await fetch(a, b)
    assert len(asked) <= 2 and left_on(a, b)[0] == []


async def test_an_asker_asking_from_0_in_a_loop_has_one_copy_made_a_minute(
    shared: tuple[Core, Core, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each copy is the whole file written again (tens of MB for 200,000 entries): a member asking from 0 and for the
    last part, again and again, had one made at each ask, for a request of a few bytes."""
    a, b, _home = shared
    real_copy, made = catalogue_transport._frozen_copy, []

    def counted(library: Library, live: set[Path]) -> Any:
        made.append(library.id)
        return real_copy(library, live)

    monkeypatch.setattr(catalogue_transport, "_frozen_copy", counted)
    small_chunks(monkeypatch)
    alpha, library = str(a.device.id), str(a.library("Photos").id)
    for _ in range(5):
        size = (await net.attach(b).call(alpha, "sync_catalogue_file", library=library, offset=0))["size"]
        await net.attach(b).call(alpha, "sync_catalogue_file", library=library, offset=size - 1)
    assert len(made) == 1 and len(left_on(a, b)[1]) == 1
    assert (await fetch(a, b)).device_id == a.device.id


async def test_the_owner_makes_its_catalogue_file_when_it_shares_and_when_sync_starts_so_a_first_ask_only_refreshes_it(
    shared: tuple[Core, Core, Path],
) -> None:
    a, b, _home = shared
    outgoing = a.library("Photos").folder / catalogue_store.FOLDER / catalogue_transport.OUTGOING
    async with asyncio.timeout(10):
        while not outgoing.is_file():  # made in the background when alpha shared it
            await asyncio.sleep(0.02)
    made = outgoing.stat().st_ino
    await fetch(a, b)
    assert outgoing.stat().st_ino == made  # refreshed in place at the ask, not made again

    outgoing.unlink()
    await sync_of(a).start()  # a shared library lacking its file gets it when the service starts
    async with asyncio.timeout(10):
        while not outgoing.is_file():
            await asyncio.sleep(0.02)
