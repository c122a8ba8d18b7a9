"""Tagging a paired device's files in a library shared with it: two real cores on 127.0.0.1 (laptop and nas)."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tui_support import answer_prompt, explorer, names, settle, shown_text, wait_for

from sdcore import net, tags
from sdcore.api import Api, NotInLibrary
from sdcore.core import Core
from sdcore.net.testing import pair
from sdcore.sdpath import SdPath
from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.tag_picker import TagPickerScreen


@pytest.fixture
async def cores(tmp_path: Path) -> AsyncIterator[tuple[Core, Core]]:
    """Laptop (a) and nas (b), trusting each other fully; the nas's library "Shared" (its photos indexed) is
    copied into the laptop's data dir, as sharing it leaves it: one library, the nas's files in its catalogue."""
    photos = tmp_path / "nas-photos"
    photos.mkdir()
    (photos / "harbour.jpg").write_bytes(b"\xff\xd8 harbour")
    async with Core(tmp_path / "a") as a, Core(tmp_path / "b") as b:
        a.device.rename("laptop")
        b.device.rename("nas")
        a.library()  # the laptop's own default library, "My Library", not shared
        shared = b.libraries.create("Shared")
        await Api(b).library("Shared").locations.add(str(photos), mode="content", index=True)
        copy = tmp_path / "a" / "libraries" / shared.folder.name
        shutil.copytree(shared.folder, copy, ignore=shutil.ignore_patterns(".lock", "database.db*"))
        with sqlite3.connect(copy / "database.db") as to:
            shared.read().backup(to)
        await net.attach(b).start("127.0.0.1:0")
        await pair(net.attach(b), net.attach(a), host_trust="full")
        yield a, b


def status(app: SdtuiApp) -> str:
    return shown_text(app.screen.query_one("#status"))


async def test_a_file_of_the_nas_in_the_catalogue_is_tagged_here_and_the_tag_reaches_the_nas(
    cores: tuple[Core, Core], tmp_path: Path
) -> None:
    a, b = cores
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    laptop = Api(a).library("Shared")
    assert await laptop.tags["trips"].add(harbour) == 1  # from the catalogue: no call to the nas
    [listed] = await laptop.tags["trips"].files()
    assert (listed.path, listed.name) == (harbour, "harbour.jpg")  # on the nas
    await laptop.notes.set(harbour, "the old harbour")
    here, there = a.library("Shared"), b.library("Shared")
    there.sync.apply(here.sync.ops_since(there.sync.watermarks(), 1000))  # what a pull does
    nas = Api(b).library("Shared")
    assert [e.name for e in await nas.tags["trips"].files()] == ["harbour.jpg"]
    assert await nas.notes.get(SdPath(b.device.id, harbour.path)) == "the old harbour"
    assert here.sync.digest() == there.sync.digest()


async def test_a_file_of_the_nas_not_indexed_yet_is_indexed_and_noted_there(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    (tmp_path / "nas-photos" / "new.jpg").write_bytes(b"\xff\xd8 new")
    new = SdPath(b.device.id, str(tmp_path / "nas-photos" / "new.jpg"))
    laptop = Api(a).library("Shared")
    await laptop.notes.set(new, "just taken")
    assert await laptop.tags["fresh"].add(new) == 1
    assert await laptop.favourites.toggle(new) is True
    nas = Api(b).library("Shared")  # done on the nas, by the nas: its own ops, which reach the laptop by sync
    assert await nas.notes.get(new) == "just taken"
    assert [e.name for e in await nas.tags["fresh"].files()] == ["new.jpg"]
    assert [e.name for e in await nas.favourites.list()] == ["new.jpg"]
    here, there = a.library("Shared"), b.library("Shared")
    assert {op.origin for op in there.sync.ops_since({}, 100)} == {str(b.device.id)}
    assert here.sync.apply(there.sync.ops_since(here.sync.watermarks(), 1000)) > 0
    # each asked the nas's core on a session of its own, closed after (it allows a few at once: a long-running
    # explorer that kept them found the nas "offline" after a few dozen)
    sessions = lambda: sum(len(c._sessions) for c in net.attach(b)._incoming)  # noqa: E731
    deadline = time.monotonic() + 10
    while sessions() > 1:  # (the laptop's RPC session stays)
        assert time.monotonic() < deadline, f"{sessions()} sessions open on the nas"
        await asyncio.sleep(0.05)


async def test_a_library_not_shared_with_the_nas_says_so_and_what_to_type(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    harbour = SdPath(b.device.id, str(tmp_path / "nas-photos" / "harbour.jpg"))
    with pytest.raises(NotInLibrary) as refused:
        await Api(a).library().tags["trips"].add(harbour)
    message = str(refused.value)
    assert "nas:" in message and "is not shared with nas" in message
    assert "`sd library share 'My Library' nas` shares it" in message
    assert await Api(b).library("Shared").tags.list() == []  # nothing was written there


async def test_t_and_n_in_a_pane_on_the_nas_write_in_the_shared_library(cores: tuple[Core, Core], tmp_path: Path) -> None:
    a, b = cores
    photos = tmp_path / "nas-photos"
    (photos / "new.jpg").write_bytes(b"\xff\xd8 new")  # not in the laptop's catalogue of the nas
    a.save_settings(default_library=str(a.library("Shared").id))
    (tmp_path / "here").mkdir()
    app = SdtuiApp(str(tmp_path / "here"), core=a, mounts_file=str(tmp_path / "no-mounts"))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        screen.active.open(SdPath(b.device.id, str(photos)))
        await wait_for(pilot, lambda: names(screen.active) == ["harbour.jpg", "new.jpg"])
        await pilot.press("home", "t")  # harbour.jpg: in the catalogue
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"keepers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in status(app))
        here = a.library("Shared")
        [tagged] = tags.entries(here, "keepers")
        assert here.sync.target_of(here.read(), tagged.entry_id).startswith(f"e:{b.device.id}:")  # the nas's entry
        await pilot.press("j")  # new.jpg: the nas indexes it and writes the note, in its copy of the library
        await answer_prompt(pilot, app, "n", "first light")
        await wait_for(pilot, lambda: "note saved" in status(app))
        assert await Api(b).library("Shared").notes.get(SdPath(b.device.id, str(photos / "new.jpg"))) == "first light"
