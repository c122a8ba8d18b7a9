"""The explorer on a shared library: the sidebar lists the devices that hold it, online or offline, with their last sync."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tui_support import (  # noqa: F401 (own_home: autouse)
    app_for,
    explorer,
    make_tree,
    own_home,
    settle,
    shown_text,
    wait_for,
)

from sdcore import net
from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.index.indexer import index_location
from sdcore.net.testing import device_network, pair
from sdcore.sdpath import SdPath
from sdcore.sync.service import sync_of
from sdtui.widgets.inspector import Inspector
from sdtui.widgets.sidebar import Sidebar
from tests.functional.test_net_served import free_port


@asynccontextmanager
async def farbox(tmp_path: Path) -> AsyncIterator[Core]:
    """Another device's core on 127.0.0.1, syncing."""
    async with Core(tmp_path / "far") as far:
        far.device.rename("farbox")
        await net.attach(far).start("127.0.0.1:0")
        await sync_of(far).start()
        yield far


@asynccontextmanager
async def herebox_sharing_with(far: Core, tmp_path: Path) -> AsyncIterator[Core]:
    """The explorer's device, paired with `far`, the library the explorer opens shared with it; its core closes at
    the end of the block (the explorer's own takes over)."""
    async with Core(tmp_path / "data") as here:
        here.device.rename("herebox")
        await net.attach(here).start("127.0.0.1:0")
        await pair(net.attach(far), net.attach(here))
        await sync_of(here).start()
        await sync_of(here).share(here.library(), "farbox")
        yield here


async def farbox_shown_online(pilot, app, far: Core) -> tuple[Sidebar, str]:  # type: ignore[no-untyped-def]
    """Once the explorer's sidebar shows farbox, a device of its shared library, online: the sidebar and its key."""
    await settle(pilot, app)
    sidebar = explorer(app).query_one(Sidebar)
    key = f"libdev-{far.device.id}"
    await wait_for(pilot, lambda: key in sidebar._places and "● online" in sidebar._places[key][0], 30)
    return sidebar, key


async def test_the_sidebar_lists_the_devices_of_a_shared_library_online_then_offline(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with farbox(tmp_path) as far:
        async with herebox_sharing_with(far, tmp_path) as here:  # the library the explorer opens, shared with farbox
            await sync_of(here).pull(str(far.device.id))
        app = app_for(tmp_path, tree)
        async with app.run_test(size=(150, 40)) as pilot:
            sidebar, key = await farbox_shown_online(pilot, app, far)
            label = sidebar._places[key][0]
            assert label.startswith("farbox ") and "synced never" not in label  # the time of the last sync
            await far.network.close()  # type: ignore[union-attr]  # farbox goes away
            await wait_for(pilot, lambda: "○ offline" in sidebar._places[key][0], 30)


async def test_a_note_written_on_another_device_shows_in_the_inspector_at_once(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with Core(tmp_path / "data") as here:  # the explorer's library, indexed, shared with farbox
        here.device.rename("herebox")
        library = here.library()
        await library.jobs.wait(await index_location(library, library.locations.add(str(tree))))
    port = free_port()
    async with farbox(tmp_path) as far:
        async with device_network(tmp_path / "data", "herebox", listen=False) as here_net:
            await here_net.start(f"127.0.0.1:{port}")
            await pair(net.attach(far), here_net)
        app = app_for(tmp_path, tree, listen=f"127.0.0.1:{port}")
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot, app)
            await app.api.library().sharing.share("farbox")
            meta = explorer(app).query_one(Inspector)
            await pilot.press("j", "j")  # alpha.py
            await wait_for(pilot, lambda: "alpha.py" in shown_text(meta))
            alpha = SdPath(app.core.device.id, str(tree / "alpha.py"))
            far_api = Api(far).library((await app.api.library().info()).name)
            async with asyncio.timeout(30):  # farbox has herebox's catalogue: it can write on its files
                while True:
                    try:
                        await far_api.notes.set(alpha, "reviewed on farbox")
                        break
                    except SdError:
                        await asyncio.sleep(0.1)
            await wait_for(pilot, lambda: "reviewed on farbox" in shown_text(meta), 10)


async def test_an_explorer_that_does_not_listen_still_syncs_its_shared_library(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with farbox(tmp_path) as far:
        async with herebox_sharing_with(far, tmp_path) as here:
            shared = far.libraries.open(str(here.library().id))
        await Api(far).library(shared.name).tags.create("made on farbox")  # while no core of herebox runs
        app = app_for(tmp_path, tree)  # plain `sdtui`: no --listen
        async with app.run_test(size=(150, 40)) as pilot:
            await settle(pilot, app)

            async def tags() -> set[str]:
                return {t.name for t in await app.api.library().tags.list()}

            async with asyncio.timeout(30):
                while "made on farbox" not in await tags():
                    await asyncio.sleep(0.1)


async def test_the_inspector_on_a_device_the_library_is_shared_with_shows_the_shared_librarys_note(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    pier = tree / "beta.txt"
    async with farbox(tmp_path) as far:
        own = far.library()  # farbox's own library, which holds a note of its own on the file
        await own.jobs.wait(await index_location(own, own.locations.add(str(tree))))
        await Api(far).library(own.name).notes.set(SdPath(far.device.id, str(pier)), "in farbox's own library")
        async with herebox_sharing_with(far, tmp_path) as here:
            shared = far.libraries.open(str(here.library().id))
            await shared.jobs.wait(await index_location(shared, shared.locations.add(str(tree))))
            await Api(far).library(str(shared.id)).notes.set(SdPath(far.device.id, str(pier)), "in the shared library")
            await sync_of(here).pull(str(far.device.id))
        app = app_for(tmp_path, f"farbox:{tree}")  # farbox online: the pane lists its files live
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(pilot, app)
            await explorer(app).open_device_library(far.device.id)  # as opening farbox in the sidebar does
            assert app.api_for(SdPath(far.device.id, str(pier))) is not app.api  # its core answers for its files
            meta = explorer(app).query_one(Inspector)
            for _ in range(8):
                if "beta.txt" in shown_text(meta):
                    break
                await pilot.press("j")
                await settle(pilot, app)
            await wait_for(pilot, lambda: "in the shared library" in shown_text(meta), 20)
            assert "farbox's own" not in shown_text(meta)


async def test_a_pane_on_a_device_that_goes_away_says_it_is_offline_and_since_when(tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    photos = tmp_path / "far-photos"
    photos.mkdir()
    (photos / "beach.jpg").write_bytes(b"sand")
    async with farbox(tmp_path) as far:
        async with herebox_sharing_with(far, tmp_path) as here:
            shared = far.libraries.open(str(here.library().id))  # farbox's copy of the library shared with it
            await index_location(shared, shared.locations.add(str(photos)))
            await sync_of(here).pull(str(far.device.id))
        app = app_for(tmp_path, tree)
        async with app.run_test(size=(150, 40)) as pilot:
            await farbox_shown_online(pilot, app, far)
            pane = explorer(app).active
            pane.open(SdPath(far.device.id, str(photos)))
            await wait_for(pilot, lambda: [e.name for e in pane.file_list.entries] == ["beach.jpg"], 30)
            assert "offline" not in str(pane.border_title)
            await far.network.close()  # type: ignore[union-attr]  # farbox goes away while the pane shows its folder
            await wait_for(pilot, lambda: "offline, as of" in str(pane.border_title), 30)
            assert str(pane.border_title).startswith(f"farbox:{photos}")
