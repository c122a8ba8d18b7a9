"""A location on a disk follows the disk: unplugged, its files stay listed and searchable from the index, marked
"offline — LABEL, last seen DATE", and operations on them say to plug the disk in; plugged in at another mount
point, it is the same location (same entries, tags kept) and a rescan finds what changed meanwhile. A real
loop-mounted ext4 image (root and mkfs.ext4, else skipped with the reason)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from tests.functional.loop_disks import make_disk

WAIT = 30.0


async def eventually(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_location_on_a_disk_goes_offline_when_unplugged_and_follows_it_to_another_mount_point(
    tmp_path: Path,
) -> None:
    disk = make_disk(tmp_path / "photos.img", "ext4", "PHOTOS-2019")
    first, second = tmp_path / "media" / "first", tmp_path / "media" / "second"
    disk.mount(first)
    try:
        (first / "2019").mkdir()
        (first / "2019" / "beach.jpg").write_bytes(b"sand" * 100)
        (first / "2019" / "harbour.jpg").write_bytes(b"boats" * 100)
        (first / "2019" / "rocks").mkdir()
        (first / "2019" / "rocks" / "stone.jpg").write_bytes(b"grey" * 100)
        async with Core(tmp_path / "data") as core:
            api = Api(core, live=True)
            locations = api.library().locations
            location = await locations.add(str(first / "2019"), mode="content", index=True)
            assert location.volume_id and location.volume_path == "2019"
            beach = await api.resolve(str(first / "2019" / "beach.jpg"))
            await api.library().tags["summer"].add(beach)
            before = (await api.library().entries.at(beach)).entry_id

            watcher = core.watcher(core.library())
            assert watcher is not None
            await asyncio.wait_for(watcher.ready.wait(), WAIT)  # its folders are watched as the disk goes
            unplugged_at = time.time()
            disk.umount(first)  # unplugged

            async def last_seen_when_unplugged() -> bool:
                return ((await locations.get(location.id)).volume_seen or 0) >= unplugged_at

            await eventually(last_seen_when_unplugged, "the disk to be last seen as it was unplugged")
            await asyncio.sleep(1.0)  # what the watcher makes of it (nothing: an unplugged disk is no change)
            folder = await api.resolve(str(first / "2019"))
            offline = await api.offline(folder)
            assert offline is not None, await api.library().locations.list()
            assert offline.describe().startswith("offline — PHOTOS-2019, last seen 20"), offline
            listed = [e.name async for batch in api.browse(folder, index=True) for e in batch]
            assert sorted(listed) == ["beach.jpg", "harbour.jpg", "rocks"]  # from the index: the mount point is empty
            rocks = [e.name async for batch in api.browse(folder.child("rocks"), index=True) for e in batch]
            assert rocks == ["stone.jpg"]
            hits = await api.library().search("harbour")
            assert [h.name for h in hits] == ["harbour.jpg"]
            with pytest.raises(SdError, match="PHOTOS-2019, which is not plugged in.*plug the disk in"):
                await api.ops.copy([beach], await api.resolve(str(tmp_path)))
            with pytest.raises(SdError, match="plug the disk in"):
                await api.ops.start_delete([beach])
            job = await locations.index(location.id)
            failed = await api.library().jobs.wait(job.id)
            assert failed.state == "failed" and "not plugged in" in (failed.error or "")
            again = [e.name async for batch in api.browse(folder, index=True) for e in batch]
            assert sorted(again) == sorted(listed)  # nothing was forgotten by the refused rescan

            photo = tmp_path / "lighthouse.jpg"  # meanwhile, on another machine, a photo is added to the disk
            photo.write_bytes(b"light" * 100)
            subprocess.run(["debugfs", "-w", "-R", f"write {photo} /2019/lighthouse.jpg", str(disk.image)],
                           check=True, capture_output=True)  # fmt: skip
            disk.mount(second)  # plugged in again, mounted somewhere else
            await eventually(lambda: _path_is(api, location.id, str(second / "2019")), "the location to follow")
            moved = await locations.get(location.id)
            assert (moved.volume_id, moved.volume_path) == (location.volume_id, "2019")
            new_beach = await api.resolve(str(second / "2019" / "beach.jpg"))
            assert (await api.library().entries.at(new_beach)).entry_id == before  # the same entry: not indexed anew
            assert [e.name for e in await api.library().tags["summer"].files()] == ["beach.jpg"]
            assert await api.offline(await api.resolve(str(second / "2019"))) is None

            async def lighthouse_found() -> bool:
                return [h.name for h in await api.library().search("lighthouse")] == ["lighthouse.jpg"]

            await eventually(lighthouse_found, "the rescan to find the photo added meanwhile")
    finally:
        disk.umount_all()


async def _path_is(api: Api, location_id: int, path: str) -> bool:
    return (await api.library().locations.get(location_id)).path == path


def test_sd_ls_lists_an_unplugged_disks_folder_from_the_index_marked_offline(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "photos.img", "ext4", "PHOTOS-2019")
    point = tmp_path / "usb"
    disk.mount(point)
    try:
        (point / "trip.jpg").write_bytes(b"road" * 100)
        sd = [str(Path(sys.executable).with_name("sd")), "--data-dir", str(tmp_path / "data")]
        added = subprocess.run([*sd, "location", "add", str(point), "--mode", "shallow"], capture_output=True,
                               text=True, timeout=120)  # fmt: skip
        assert added.returncode == 0, added.stderr
        disk.umount(point)
        listed = subprocess.run([*sd, "ls", str(point)], capture_output=True, text=True, timeout=120)
        assert listed.returncode == 0, listed.stderr
        assert "offline — PHOTOS-2019, last seen" in listed.stdout and "trip.jpg" in listed.stdout
        listed = subprocess.run([*sd, "location", "list"], capture_output=True, text=True, timeout=120)
        assert "offline — PHOTOS-2019, last seen" in listed.stdout, listed.stderr
        found = subprocess.run([*sd, "search", "trip"], capture_output=True, text=True, timeout=120)
        assert found.returncode == 0 and "trip.jpg" in found.stdout, found.stderr
        assert "(offline — PHOTOS-2019, last seen" in found.stdout
    finally:
        disk.umount_all()
