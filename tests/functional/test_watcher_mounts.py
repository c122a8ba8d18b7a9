"""The watcher and filesystems unmounted inside a watched location (sdcore.index.watcher, sdcore.inotify: IN_UNMOUNT):
a disk mounted in a folder of a location that is not on a disk itself, unmounted (at once, or lazily while busy).
Real loop-mounted ext4 images (root and mkfs.ext4, else skipped with the reason)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from tests.functional.loop_disks import make_disk

WAIT = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("lazy", [False, True], ids=["umount", "umount -l while busy"])
async def test_a_disk_unmounted_from_a_folder_of_a_watched_location_leaves_the_folder_as_it_is_now_and_watched(
    tmp_path: Path, lazy: bool
) -> None:
    """A folder location `home` (no disk of its own) with a disk mounted on its folder `home/usb`: once the disk is
    unmounted, `home/usb` is the empty folder below it again. The watcher says so (the disk's files are no longer
    listed or found, the rest of `home` is kept) and keeps watching `home/usb` (a file made there is found)."""
    disk = make_disk(tmp_path / "usb.img", "ext4", "USB")
    home = tmp_path / "home"
    (home / "usb").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    disk.mount(home / "usb")
    try:
        for n in range(5):
            (home / "usb" / f"photo-{n}.jpg").write_bytes(b"sea")
        async with Core(tmp_path / "data") as core:
            api = Api(core, live=True)
            library = api.library()
            await library.locations.add(str(home), index=True)
            watcher = core.watcher(core.library())
            assert watcher is not None
            await asyncio.wait_for(watcher.ready.wait(), WAIT)
            assert len(await library.search("photo")) == 5
            if lazy:  # detached at once; the kernel unmounts it (and says so) once the file open on it is closed
                with open(home / "usb" / "photo-0.jpg", "rb"):
                    disk.umount(home / "usb", lazy=True)
            else:
                disk.umount(home / "usb")

            async def gone() -> bool:
                return not await library.search("photo")

            await eventually(gone, "the unmounted disk's files to go from the index")
            (home / "usb" / "below.txt").write_text("on the folder below the mount point")

            async def seen() -> bool:
                return [h.name for h in await library.search("below")] == ["below.txt"]

            await eventually(seen, "a file made in the folder left by the disk to be indexed")
            assert [h.name for h in await library.search("notes")] == ["notes.txt"]
    finally:
        disk.umount_all()

