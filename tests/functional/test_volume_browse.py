"""Quick browse: a disk plugged in shows in the sidebar, opens in a pane at once from there, and one key indexes
it (shallow or content, as asked), after which it is catalogued by its identity: unplugged, a pane lists it from
the index, titled "offline — LABEL, last seen DATE". A real loop-mounted ext4 image
(root and mkfs.ext4, else skipped with the reason)."""

from __future__ import annotations

import time
from pathlib import Path

from sdtui.app import SdtuiApp
from sdtui.screens.choice import ChoiceScreen
from sdtui.widgets.sidebar import Sidebar
from tests.functional.loop_disks import make_disk
from tests.functional.tui_support import explorer, names, own_home, settle, wait_for  # noqa: F401 -- own_home


async def test_a_disk_plugged_in_opens_from_the_sidebar_and_one_key_indexes_it(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "usb.img", "ext4", "HOLIDAYS")
    point = tmp_path / "usb"
    (tmp_path / "home").mkdir()
    app = SdtuiApp(str(tmp_path / "home"), data_dir=tmp_path / "data")  # the real mount table
    try:
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            sidebar = app.screen.query_one(Sidebar)
            await wait_for(pilot, lambda: any(k.startswith("vol-") for k in sidebar._places))  # watched from now on
            disk.mount(point)
            (point / "sea.jpg").write_bytes(b"waves" * 50)
            (point / "hills.jpg").write_bytes(b"green" * 50)
            await wait_for(pilot, lambda: f"vol-{point}" in sidebar._places)
            await pilot.press("b")
            sidebar.highlighted = sidebar.get_option_index(f"vol-{point}")
            await pilot.press("enter")
            pane = explorer(app).active
            await wait_for(pilot, lambda: pane.path is not None and pane.path.path == str(point))
            await settle(pilot, app)
            assert {"sea.jpg", "hills.jpg"} <= set(names(pane))  # browsed at once: nothing indexed yet
            assert await app.api.library().locations.list() == []

            pane.file_list.focus()
            await pilot.press("I")
            await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
            await pilot.press("c")  # content mode
            locations = app.api.library().locations

            async def indexed() -> bool:
                found = [loc for loc in await locations.list() if loc.path == str(point)]
                return bool(found) and found[0].last_scanned is not None

            deadline = time.monotonic() + 60
            while not await indexed():
                assert time.monotonic() < deadline, "the disk was not indexed"
                await pilot.pause(0.05)
            (location,) = await locations.list()
            assert location.mode == "content"
            assert location.volume_id is not None and location.volume_path == ""  # catalogued by identity
            hits = await app.api.library().search("hills")
            assert [h.name for h in hits] == ["hills.jpg"]

            async def jobs_done() -> bool:
                return not await app.api.library().jobs.list(states=("queued", "running"))

            while not await jobs_done():
                assert time.monotonic() < deadline, "the index job did not end"
                await pilot.pause(0.05)
            pane.open(app.core.local_path(str(tmp_path / "home")))
            await settle(pilot, app)
            disk.umount(point, lazy=True)  # unplugged: opened again, the pane lists the disk from the index
            pane.open(app.core.local_path(str(point)))
            await wait_for(pilot, lambda: "offline — HOLIDAYS, last seen" in str(pane.border_title))
            await settle(pilot, app)
            assert {"sea.jpg", "hills.jpg"} <= set(names(pane))
    finally:
        disk.umount_all()
