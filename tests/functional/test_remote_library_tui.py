"""The explorer of one device (laptop) on the library of a paired one (nas): two real cores over SSH on 127.0.0.1."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tui_support import answer_prompt, explorer, names, own_home, settle, shown_text, wait_for  # noqa: F401

from sdcore import net
from sdcore.api import Api
from sdcore.api.records import DeviceInfo
from sdcore.api.wire import decode, frame, read_frame
from sdcore.core import Core
from sdcore.events import JobProgress
from sdcore.net.testing import pair
from sdcore.sdpath import SdPath
from sdtui.app import SdtuiApp
from sdtui.screens.explorer import ExplorerScreen
from sdtui.screens.jobs import JobsScreen
from sdtui.screens.tag_picker import TagPickerScreen
from sdtui.widgets.jobs_strip import JobsStrip
from sdtui.widgets.pane import Pane
from sdtui.widgets.sidebar import Sidebar


async def nas_with_photos(b: Core, photos: Path) -> None:
    """The nas's library: a location of photos, indexed, a tag, a saved search, and a tag a hostile core made."""
    (photos / "backup").mkdir(parents=True)
    (photos / "harbour.jpg").write_bytes(b"\xff\xd8harbour" * 500)
    (photos / "reef.jpg").write_bytes(b"\xff\xd8reef" * 500)
    library = Api(b).library()
    location = await library.locations.add(SdPath(b.device.id, str(photos)), mode="content", name="Photos [nas]")
    await library.jobs.wait((await library.locations.index(location.id)).id)
    await library.tags["trips"].add(SdPath(b.device.id, str(photos / "reef.jpg")))
    await library.saved.save("harbours", "harbour")
    with b.library().write() as db:  # what no sdtui writes, but a peer's core may send: control characters
        db.execute("INSERT INTO tags (name, created) VALUES (?, 0)", ("evil\x1b[2J[red]x",))


@pytest.fixture
async def laptop_and_nas(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Core, Core]]:
    trust = getattr(request, "param", "full")
    async with Core(tmp_path / "data") as a, Core(tmp_path / "nas") as b:
        a.device.rename("laptop")
        b.device.rename("nas")
        await net.attach(b).start("127.0.0.1:0")
        await pair(net.attach(b), net.attach(a), host_trust=trust)
        yield a, b


async def open_device(pilot, app: SdtuiApp, device_id: object) -> Sidebar:  # type: ignore[no-untyped-def]
    sidebar = app.screen.query_one(Sidebar)
    await wait_for(pilot, lambda: f"dev-{device_id}" in sidebar._places)
    sidebar.focus()
    sidebar.highlighted = sidebar.get_option_index(f"dev-{device_id}")
    await pilot.press("enter")
    return sidebar


@contextlib.asynccontextmanager
async def laptop_on_the_nas(tmp_path: Path, a: Core, b: Core) -> AsyncIterator[tuple[SdtuiApp, Any, Sidebar]]:
    """The nas with its photos; the laptop's explorer (its app, pilot and sidebar) with the nas opened in it."""
    await nas_with_photos(b, tmp_path / "nas-photos")
    (tmp_path / "here").mkdir()
    app = SdtuiApp(str(tmp_path / "here"), core=a, mounts_file=str(tmp_path / "no-mounts"))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        yield app, pilot, await open_device(pilot, app, b.device.id)


def status(app: SdtuiApp) -> str:
    return shown_text(app.screen.query_one("#status"))


async def test_the_laptop_browses_tags_searches_and_copies_in_the_nas_library(
    tmp_path: Path, laptop_and_nas: tuple[Core, Core]
) -> None:
    a, b = laptop_and_nas
    photos = tmp_path / "nas-photos"
    async with laptop_on_the_nas(tmp_path, a, b) as (app, pilot, sidebar):

        # its library in the sidebar: its location, tags and saved searches, what its core sent shown escaped
        await wait_for(pilot, lambda: "remote-tag:trips" in sidebar._places)
        prompts = [str(sidebar.get_option_at_index(i).prompt) for i in range(sidebar.option_count)]
        assert "[b]nas: locations[/b]" in prompts and "[b]nas: saved searches[/b]" in prompts
        assert sidebar._places["remote-tag:trips"][0] == "#trips (1)"
        assert "remote-saved:harbours" in sidebar._places
        assert not any("\x1b" in p for p in prompts)
        assert any("evil\\x1b\\[2J\\[red]x" in p for p in prompts), prompts  # escaped, and not markup
        assert any("Photos \\[nas]" in p for p in prompts)
        [evil] = [k for k in sidebar._places if k.startswith("remote-tag:evil")]
        await wait_for(pilot, lambda: "nas: places" in status(app))  # the pane shows its places, and has the focus
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index(evil)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "contains a control character" in status(app))  # the nas refuses that name
        assert status(app).strip() == "'evil\\x1b[2J[red]x' contains a control character; tag names are plain text"

        # a location of the nas lists its files; t tags one there: the nas's database has it
        [location] = [k for k in sidebar._places if k.startswith("remote-loc-")]
        sidebar.focus()
        sidebar.highlighted = sidebar.get_option_index(location)
        await pilot.press("enter")
        await settle(pilot, app)
        screen = explorer(app)
        assert names(screen.active) == ["backup", "harbour.jpg", "reef.jpg"]
        await pilot.press("j", "t")  # harbour.jpg
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"keepers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in status(app))
        assert [e.name for e in await Api(b).library().tags["keepers"].files()] == ["harbour.jpg"]
        assert await Api(a).library().tags.list() == []  # not the laptop's

        # ctrl+f in a pane on the nas searches the nas's index
        await answer_prompt(pilot, app, "ctrl+f", "reef")
        await wait_for(pilot, lambda: names(screen.active) == [f"nas:{photos}/reef.jpg"])
        assert "search of nas: reef" in status(app)
        await answer_prompt(pilot, app, "ctrl+s", "reefs")  # saved where it ran: in the nas's library
        await wait_for(pilot, lambda: "saved the search as “reefs” in the library of nas" in status(app))
        assert [s.name for s in await Api(b).library().saved.list()] == ["harbours", "reefs"]
        assert await Api(a).library().saved.list() == []
        await wait_for(pilot, lambda: "remote-saved:reefs" in sidebar._places)

        # F5 between two folders of the nas: the nas's core copies, the jobs screen says so
        await pilot.press("left_square_bracket")  # back to the location
        await settle(pilot, app)
        screen.inactive.open(SdPath(b.device.id, str(photos / "backup")))
        await settle(pilot, app)
        await pilot.press("home", "j", "f5")  # harbour.jpg
        # the start's "(job …)" line, or already the end's (a one-file copy may finish before the test looks)
        await wait_for(pilot, lambda: "(job " in status(app) or "copied harbour.jpg" in status(app))
        await wait_for(pilot, lambda: (photos / "backup" / "harbour.jpg").exists())
        await wait_for(pilot, lambda: names(screen.inactive) == ["harbour.jpg"])  # the nas's core said it changed
        [copy] = [j for j in await Api(b).library().jobs.list() if j.kind == "copy"]
        assert [j for j in await Api(a).library().jobs.list() if j.kind == "copy"] == []
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, JobsScreen))
        jobs = app.screen
        assert isinstance(jobs, JobsScreen)
        await wait_for(pilot, lambda: copy.id in jobs.records and jobs.records[copy.id].state == "completed")
        table = jobs.query_one("DataTable")
        assert str(table.get_cell(copy.id, "device")) == "nas"  # type: ignore[attr-defined]


async def test_a_lost_nas_leaves_the_sidebar_and_the_explorer_says_so(
    tmp_path: Path, laptop_and_nas: tuple[Core, Core]
) -> None:
    a, b = laptop_and_nas
    async with laptop_on_the_nas(tmp_path, a, b) as (app, pilot, sidebar):
        await wait_for(pilot, lambda: "remote-tag:trips" in sidebar._places)
        started = time.monotonic()
        await b.network.close()  # type: ignore[union-attr]  # the nas goes away
        await wait_for(pilot, lambda: "the core of nas stopped" in status(app), timeout=2)
        await wait_for(pilot, lambda: not any(k.startswith("remote-") for k in sidebar._places), timeout=2)
        assert time.monotonic() - started < 2
        assert b.device.id not in app.device_apis


@pytest.mark.parametrize("laptop_and_nas", ["shared"], indirect=True)
async def test_a_nas_that_shares_files_only_keeps_the_browse_only_view(
    tmp_path: Path, laptop_and_nas: tuple[Core, Core]
) -> None:
    a, b = laptop_and_nas
    async with laptop_on_the_nas(tmp_path, a, b) as (app, pilot, sidebar):
        await wait_for(pilot, lambda: b.device.id in explorer(app).browse_only)
        await wait_for(pilot, lambda: "nas: places (0)" in status(app) or "places" in status(app))
        assert not any(k.startswith("remote-") for k in sidebar._places)
        assert app.device_apis == {}


async def test_a_hostile_nas_core_cannot_wedge_the_explorer(tmp_path: Path, laptop_and_nas: tuple[Core, Core]) -> None:
    """The nas's core answers every request with 400 KB of nonsense, and floods its events with job progress whose
    fields are not numbers and whose name is an escape sequence: the explorer says so and goes on."""
    a, b = laptop_and_nas
    hello = frame({"hello": {"device": DeviceInfo(b.device.id, "nas"), "protocol": 1, "pid": 1}})

    async def hostile(reader: Any, writer: Any, channel: Any) -> None:
        writer.write(hello)
        while True:
            message = decode(await read_frame(reader, 1 << 20))
            if "cancel" in message:
                continue
            if message.get("stream"):
                for i in range(2000):
                    odd = JobProgress(f"job{i}", "copy\x1b[2J", "lots", None)  # type: ignore[arg-type]
                    writer.write(frame({"id": message["id"], "more": odd}))
            else:
                writer.write(frame({"id": message["id"], "done": "odd " * 100_000}))
            await writer.drain()

    net.attach(b).api_server = hostile
    here = tmp_path / "here"
    here.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (here / name).write_text(name)
    app = SdtuiApp(str(here), core=a, mounts_file=str(tmp_path / "no-mounts"))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        sidebar = await open_device(pilot, app, b.device.id)
        said = lambda: [n.message for n in app._notifications if n.message.startswith("nas: its core sent")]  # noqa: E731
        await wait_for(pilot, lambda: len(said()) == 2)
        assert sorted(said()) == [
            "nas: its core sent events this explorer cannot read; its jobs are not shown",
            "nas: its core sent what this explorer cannot read; its library is not shown",
        ]
        assert not any(k.startswith("remote-") for k in sidebar._places)
        screen = explorer(app)  # and it goes on: back from the nas's places to the files here, the cursor moves
        await wait_for(pilot, lambda: names(screen.active) == ["nas:/"])
        screen.active.file_list.focus()
        await pilot.press("left_square_bracket")
        await settle(pilot, app)
        await pilot.press("home", "j", "j")
        await wait_for(pilot, lambda: screen.active.file_list.current is not None
                       and screen.active.file_list.current.name == "c.txt")
        assert "\x1b" not in shown_text(screen.query_one(JobsStrip))


async def test_u_on_the_laptop_undoes_a_move_and_a_tag_the_nas_core_did(
    tmp_path: Path, laptop_and_nas: tuple[Core, Core]
) -> None:
    from sdtui.screens.confirm import ConfirmScreen

    a, b = laptop_and_nas
    photos = tmp_path / "nas-photos"
    async with laptop_on_the_nas(tmp_path, a, b) as (app, pilot, sidebar):
        await wait_for(pilot, lambda: any(k.startswith("remote-loc-") for k in sidebar._places))
        screen = explorer(app)
        screen.active.open(SdPath(b.device.id, str(photos)))
        screen.inactive.open(SdPath(b.device.id, str(photos / "backup")))
        await settle(pilot, app)
        screen.active.file_list.focus()
        await pilot.press("home", "j", "f6")  # harbour.jpg into backup/: the nas's core moves it
        await wait_for(pilot, lambda: (photos / "backup" / "harbour.jpg").exists() and not (photos / "harbour.jpg").exists())
        await wait_for(pilot, lambda: "moved harbour.jpg" in status(app))

        await pilot.press("j", "t")  # reef.jpg, tagged in the nas's library
        await wait_for(pilot, lambda: isinstance(app.screen, TagPickerScreen))
        await pilot.press(*"keepers", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExplorerScreen) and "tagged" in status(app))
        assert [e.name for e in await Api(b).library().tags["keepers"].files()] == ["reef.jpg"]

        await pilot.press("u")  # the tag first (the newest), taken off on the nas
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "Undo “tag reef.jpg “keepers” on nas”?" in shown_text(app.screen.query_one(".confirm--question"))
        await pilot.press("y")
        await wait_for(pilot, lambda: "undone: tag reef.jpg" in status(app))
        assert "keepers" not in [t.name for t in await Api(b).library().tags.list()]  # made by the step: gone with it

        await pilot.press("u")  # then the move: the nas's core moves it back
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        asked = shown_text(app.screen.query_one(".confirm--question"))  # wrapped: a long path
        assert "".join(asked.split()) == "".join(f"Undo “move harbour.jpg to {photos}/backup on nas”?".split())
        await pilot.press("y")
        await wait_for(pilot, lambda: "undone: move harbour.jpg" in status(app))
        assert (photos / "harbour.jpg").exists() and not (photos / "backup" / "harbour.jpg").exists()
        assert await Api(a).undo.list() == []
        assert [s.what for s in await Api(b).undo.list()] == ["tag reef.jpg “trips”"]  # the nas's own, before


async def test_a_pane_on_the_nas_opened_before_its_library_follows_its_changes_once_the_library_is_open(
    tmp_path: Path, laptop_and_nas: tuple[Core, Core]
) -> None:
    a, b = laptop_and_nas
    photos = tmp_path / "nas-photos"
    await nas_with_photos(b, photos)
    app = SdtuiApp(f"nas:{photos}", other=f"nas:{photos / 'backup'}", core=a,
                   mounts_file=str(tmp_path / "no-mounts"))  # fmt: skip
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot, app)
        screen = explorer(app)
        right = screen.query_one("#right", Pane)
        assert right.path == SdPath(b.device.id, str(photos / "backup")) and names(right) == []
        await open_device(pilot, app, b.device.id)  # the active pane shows its places; the other stays on backup/
        await wait_for(pilot, lambda: b.device.id in screen.following)
        await Api(b).ops.mkdir(SdPath(b.device.id, str(photos / "backup" / "2025")))  # made by the nas's core
        await wait_for(pilot, lambda: names(right) == ["2025"])
