"""A pane on a disk follows the disk, told by the core's events (no polling): unplugged, it lists the folder from
the index, titled "offline — LABEL, last seen DATE"; plugged in again at another mount point, it follows its location
there and lists the disk as it is now. A pane browsing a disk that is no location lists its empty mount point once the
disk is out. Real loop-mounted ext4 images (root and mkfs.ext4, else skipped with the reason)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from sdtui.app import SdtuiApp
from tests.functional.loop_disks import make_disk
from tests.functional.tui_support import explorer, names, own_home, settle, wait_for  # noqa: F401 -- own_home


async def test_a_pane_on_a_disk_lists_the_index_when_it_goes_and_the_disk_when_it_comes_back(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "photos.img", "ext4", "PHOTOS-2019")
    stick = make_disk(tmp_path / "stick.img", "ext4", "STICK")
    first, second, loose = tmp_path / "media" / "first", tmp_path / "media" / "second", tmp_path / "media" / "stick"
    disk.mount(first)
    stick.mount(loose)
    (first / "2019").mkdir()
    for name in ("beach.jpg", "harbour.jpg"):
        (first / "2019" / name).write_bytes(name.encode())
    (loose / "notes.txt").write_text("a disk that is no location")
    (tmp_path / "home").mkdir()
    app = SdtuiApp(str(tmp_path / "home"), data_dir=tmp_path / "data")  # the real mount table
    try:
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            await app.api.library().locations.add(str(first / "2019"), mode="shallow", index=True)
            left, right = explorer(app).active, explorer(app).inactive
            left.open(app.core.local_path(str(first / "2019")))
            right.open(app.core.local_path(str(loose)))
            await wait_for(pilot, lambda: set(names(left)) == {"beach.jpg", "harbour.jpg"})
            await wait_for(pilot, lambda: "notes.txt" in names(right))
            await settle(pilot, app)

            disk.umount(first)  # unplugged: the pane says so and lists what the index knows
            stick.umount(loose)
            await wait_for(pilot, lambda: "offline — PHOTOS-2019, last seen" in str(left.border_title))
            await wait_for(pilot, lambda: "notes.txt" not in names(right))  # its empty mount point
            await settle(pilot, app)
            assert set(names(left)) == {"beach.jpg", "harbour.jpg"}

            photo = tmp_path / "lighthouse.jpg"  # meanwhile, on another machine, a photo is added to the disk
            photo.write_bytes(b"light")
            subprocess.run(["debugfs", "-w", "-R", f"write {photo} /2019/lighthouse.jpg", str(disk.image)],
                           check=True, capture_output=True)  # fmt: skip
            disk.mount(second)  # plugged in again, somewhere else: the pane follows it and lists it live
            await wait_for(pilot, lambda: left.path is not None and left.path.path == str(second / "2019"))
            await wait_for(pilot, lambda: "lighthouse.jpg" in names(left))
            assert "offline" not in str(left.border_title)
            assert set(names(left)) == {"beach.jpg", "harbour.jpg", "lighthouse.jpg"}
    finally:
        disk.umount_all()
        stick.umount_all()


async def test_the_explorer_says_when_a_disks_location_waits_for_a_decision(tmp_path: Path) -> None:
    from textual.widgets import Static

    from sdtui.widgets.sidebar import Sidebar
    from tests.functional.loop_disks import uuid_of

    ours = make_disk(tmp_path / "ours.img", "ext4", "PHOTOS-2019")
    theirs = make_disk(tmp_path / "theirs.img", "ext4", "PHOTOS-2019", uuid=uuid_of(ours.image))  # a clone
    point = tmp_path / "usb"
    theirs.mount(point)
    (point / "their-dog.jpg").write_bytes(b"woof")
    theirs.umount(point)
    ours.mount(point)
    for i in range(120):
        (point / f"photo-{i:03}.jpg").write_bytes(b"sea")
    (tmp_path / "home").mkdir()
    app = SdtuiApp(str(tmp_path / "home"), data_dir=tmp_path / "data")
    try:
        async with app.run_test(size=(150, 34)) as pilot:
            await settle(pilot, app)
            location = await app.api.library().locations.add(str(point), mode="shallow", index=True)
            pane = explorer(app).active
            pane.open(app.core.local_path(str(point)))
            await wait_for(pilot, lambda: len(names(pane)) >= 120)
            ours.umount(point)
            await wait_for(pilot, lambda: "offline — PHOTOS-2019" in str(pane.border_title))
            theirs.mount(point)  # a stranger's disk taken for ours: its files are listed, the title asks
            await wait_for(pilot, lambda: "another disk?" in str(pane.border_title))
            status = str(app.screen.query_one("#status", Static).render())
            assert f"same disk? `sd location rescan {location.id} --confirm-drop`" in status
            await wait_for(pilot, lambda: "their-dog.jpg" in names(pane))
            sidebar = app.screen.query_one(Sidebar)
            await wait_for(pilot, lambda: "another disk?" in sidebar._places.get(f"loc-{location.id}", ("",))[0])
    finally:
        ours.umount_all()
        theirs.umount_all()
