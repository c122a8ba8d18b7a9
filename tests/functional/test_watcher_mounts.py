"""The watcher and filesystems unmounted inside a watched location (sdcore.index.watcher, sdcore.inotify: IN_UNMOUNT):
a disk mounted in a folder of a location that is not on a disk itself, unmounted (at once, or lazily while busy).
Real loop-mounted ext4 images (root and mkfs.ext4, else skipped with the reason)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.index import watcher as watcher_module
from tests.functional.loop_disks import make_disk

WAIT = 30.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("lazy", [False, True], ids=["umount", "umount -l while busy"])
async def test_a_disk_unmounted_from_a_folder_of_a_watched_location_leaves_the_folder_as_it_is_now_and_watched(
    tmp_path: Path, lazy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder location `home` (no disk of its own) with a disk mounted on its folder `home/usb`: once the disk is
    unmounted, `home/usb` is the empty folder below it again. The watcher says so (the disk's files are no longer
    listed or found, the rest of `home` is kept) and keeps watching `home/usb` (a file made there is found), without
    indexing all of `home` again (as it does when the disk `home` is on is unmounted: another may be there now)."""
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
            caught_up: list[object] = []
            real_catch_up = watcher_module.catch_up

            async def counted(*args: object) -> object:
                caught_up.append(args)
                return await real_catch_up(*args)  # type: ignore[arg-type]

            monkeypatch.setattr(watcher_module, "catch_up", counted)
            # (lazily: detached from `home/usb` at once, unmounted, and said so by inotify, only once the file is closed)
            with open(home / "usb" / "photo-0.jpg", "rb") if lazy else contextlib.nullcontext():
                disk.umount(home / "usb", lazy=lazy)

                async def gone() -> bool:
                    return not await library.search("photo")

                await eventually(gone, "the unmounted disk's files to go from the index")
                (home / "usb" / "below.txt").write_text("on the folder below the mount point")

                async def seen() -> bool:
                    return [h.name for h in await library.search("below")] == ["below.txt"]

                await eventually(seen, "a file made in the folder left by the disk to be indexed")
                assert [h.name for h in await library.search("notes")] == ["notes.txt"]
            await watcher.restart()  # (the kernel's word of the lazy unmount came after the last one)
            await asyncio.wait_for(watcher.ready.wait(), WAIT)
            assert caught_up == []
    finally:
        disk.umount_all()


async def test_a_folder_bind_mounted_in_a_watched_location_unmounted_and_mounted_again_is_indexed_as_it_is_now(
    tmp_path: Path,
) -> None:
    """As a disk, but a bind mount (`mount --bind elsewhere home/usb`): its unmount unmounts no filesystem (the kernel
    says nothing through inotify: `elsewhere` is still mounted where it was), only the mount table changes; nor does
    mounting it again."""
    if os.geteuid() != 0:
        pytest.skip("a bind mount needs root (CI runs as root)")
    elsewhere, home = tmp_path / "elsewhere", tmp_path / "home"
    elsewhere.mkdir()
    (home / "usb").mkdir(parents=True)
    for n in range(5):
        (elsewhere / f"photo-{n}.jpg").write_bytes(b"sea")
    subprocess.run(["mount", "--bind", str(elsewhere), str(home / "usb")], check=True)
    try:
        async with Core(tmp_path / "data") as core:
            api = Api(core, live=True)
            library = api.library()
            await api.volumes()  # (the mount table followed from here on, as the explorer does)
            await library.locations.add(str(home), index=True)
            watcher = core.watcher(core.library())
            assert watcher is not None
            await asyncio.wait_for(watcher.ready.wait(), WAIT)
            assert len(await library.search("photo")) == 5
            subprocess.run(["umount", str(home / "usb")], check=True)

            async def gone() -> bool:
                return not await library.search("photo")

            await eventually(gone, "the bind mount's files to go from the index")
            subprocess.run(["mount", "--bind", str(elsewhere), str(home / "usb")], check=True)  # (and back: no event)

            async def back() -> bool:
                return len(await library.search("photo")) == 5

            await eventually(back, "the files of the folder mounted again to be found")
            (elsewhere / "later.jpg").write_bytes(b"sea")  # seen where it is mounted too: watched there again

            async def later() -> bool:
                return [h.path.path for h in await library.search("later")] == [str(home / "usb" / "later.jpg")]

            await eventually(later, "a file made in the folder mounted again to be found")
    finally:
        subprocess.run(["umount", str(home / "usb")], check=False, capture_output=True)
