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
