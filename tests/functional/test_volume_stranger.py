"""A stranger's disk with the identity of one of ours (a cloned filesystem UUID, a copied .sdvolume file) is not
taken for ours at the cost of our disk's index: a rescan that would drop most of a location's entries waits for a
person, says so (`sd location list`, the explorer's sidebar) with the way to confirm (`sd location rescan ID
--confirm-drop`), and nothing is dropped until then. Real loop-mounted ext4 images (root and mkfs.ext4, else
skipped with the reason)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from sdcore.api import Api
from sdcore.core import Core
from tests.functional.loop_disks import make_disk, uuid_of

WAIT = 30.0
PHOTOS = 150


async def eventually(check, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + WAIT
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_cloned_disk_plugged_in_for_ours_drops_nothing_until_a_person_confirms(tmp_path: Path) -> None:
    """(About 6 s: the whole story, four plug-ins and four `sd` runs, each step depending on the one before.)"""
    ours = make_disk(tmp_path / "ours.img", "ext4", "PHOTOS-2019")
    theirs = make_disk(tmp_path / "theirs.img", "ext4", "PHOTOS-2019", uuid=uuid_of(ours.image))  # a clone
    point = tmp_path / "media" / "usb"
    theirs.mount(point)
    try:
        (point / "2019").mkdir()
        for name in ("their-dog.jpg", "their-cat.jpg", "their-car.jpg"):  # someone else's photos since the clone
            (point / "2019" / name).write_bytes(name.encode())
        theirs.umount(point)
        ours.mount(point)
        (point / "2019").mkdir()
        for i in range(PHOTOS):
            (point / "2019" / f"photo-{i:03}.jpg").write_bytes(b"sea" * (i + 1))
        async with Core(tmp_path / "data") as core:
            api = Api(core, live=True)
            locations = api.library().locations
            location = await locations.add(str(point / "2019"), mode="shallow", index=True)
            shell = await api.resolve(str(point / "2019" / "photo-007.jpg"))
            await api.library().tags["summer"].add(shell)
            watcher = core.watcher(core.library())
            assert watcher is not None
            await asyncio.wait_for(watcher.ready.wait(), WAIT)
            unplugged_at = time.time()
            ours.umount(point)

            async def seen_going() -> bool:
                return ((await locations.get(location.id)).volume_seen or 0) >= unplugged_at

            await eventually(seen_going, "our disk to be noted unplugged")
            theirs.mount(point)  # plugged in where ours was: the same identity, other files

            async def waits_for_a_decision() -> bool:
                return (await locations.get(location.id)).undecided

            await eventually(waits_for_a_decision, "the location to wait for a decision")
            assert [h.name for h in await api.library().search("photo-007")] == ["photo-007.jpg"]
            (summer,) = await api.library().tags.list()
            assert summer.entries == 1  # still on our photo (not shown as a file: it is not on the disk mounted)
            job = await locations.index(location.id)  # a rescan asked for without confirming: refused
            failed = await api.library().jobs.wait(job.id)
            assert failed.state == "failed", failed
            assert f"{PHOTOS} of its {PHOTOS} indexed files and folders are not on the disk" in (failed.error or "")
            assert f"sd location rescan {location.id} --confirm-drop" in (failed.error or "")
            assert len(await api.library().search("photo")) >= 100  # nothing dropped
            assert (await locations.get(location.id)).undecided
            folder = await api.resolve(str(point / "2019"))
            listed = sorted([e.name async for batch in api.browse(folder, index=True) for e in batch])
            assert listed == ["their-car.jpg", "their-cat.jpg", "their-dog.jpg"]  # the disk as it is, not our index

            theirs.umount(point)  # their disk goes back to them, ours comes back: decided again, nothing asked
            await eventually(lambda: _offline(api, point), "their disk to be noted unplugged")
            ours.mount(point)

            async def decided() -> bool:
                return not (await locations.get(location.id)).undecided

            await eventually(decided, "our own disk to end the wait for a decision")
            await asyncio.wait_for(watcher.ready.wait(), WAIT)
            assert len(await api.library().search("photo")) == PHOTOS
            assert [e.name for e in await api.library().tags["summer"].files()] == ["photo-007.jpg"]
            ours.umount(point)
            theirs.mount(point)  # and theirs again, swapped in at once (no look between): the wait for a decision again
            await eventually(waits_for_a_decision, "the location to wait for a decision again")

        sd = [str(Path(sys.executable).with_name("sd")), "--data-dir", str(tmp_path / "data")]
        shown = subprocess.run([*sd, "location", "list"], capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "needs a decision" in shown.stdout
        assert f"`sd location rescan {location.id} --confirm-drop` forgets what is not there" in shown.stdout
        confirmed = subprocess.run([*sd, "location", "rescan", str(location.id), "--confirm-drop"], capture_output=True,
                                   text=True, timeout=120)  # fmt: skip
        assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr
        assert f"{PHOTOS} removed" in confirmed.stdout
        found = subprocess.run([*sd, "search", "their"], capture_output=True, text=True, timeout=120)
        assert found.stdout.count("their-") == 3, found.stdout
        shown = subprocess.run([*sd, "location", "list"], capture_output=True, text=True, timeout=120)
        assert "needs a decision" not in shown.stdout and "indexed" in shown.stdout
    finally:
        ours.umount_all()
        theirs.umount_all()


async def _offline(api: Api, point: Path) -> bool:
    return await api.offline(await api.resolve(str(point / "2019"))) is not None


async def test_our_own_disk_with_a_few_files_deleted_elsewhere_is_rescanned_without_asking(tmp_path: Path) -> None:
    ours = make_disk(tmp_path / "ours.img", "ext4", "PHOTOS-2019")
    point = tmp_path / "usb"
    ours.mount(point)
    try:
        for i in range(PHOTOS):
            (point / f"photo-{i:03}.jpg").write_bytes(b"sea")
        async with Core(tmp_path / "data") as core:
            api = Api(core)
            location = await api.library().locations.add(str(point), mode="shallow", index=True)
            for i in range(40):  # on another machine, 40 of 150 photos were deleted: not most of them
                (point / f"photo-{i:03}.jpg").unlink()
            done = await api.library().jobs.wait((await api.library().locations.index(location.id)).id)
            assert done.state == "completed", done.error
            assert done.result.removed == 40
            assert not (await api.library().locations.get(location.id)).undecided
    finally:
        ours.umount_all()


async def test_no_folder_of_a_location_waiting_for_a_decision_is_rescanned_either(tmp_path: Path) -> None:
    """Only a whole rescan looked at what it would drop: `sd index FOLDER` (one folder of the location, or its top with
    --scope current) dropped the real disk's entries and their tags while the location waited for a person."""
    import shutil

    from sdcore.library.locations import UNCONFIRMED
    from sdcore.sdpath import SdPath

    disk = tmp_path / "disk"
    (disk / "2019").mkdir(parents=True)
    for i in range(PHOTOS):
        (disk / "2019" / f"photo-{i:03}.jpg").write_bytes(b"sea")
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        locations = api.library().locations
        location = await locations.add(str(disk), mode="shallow", index=True)
        core.library().locations.set_state(location.id, UNCONFIRMED)  # as a stranger's disk mounted for ours makes it
        shutil.rmtree(disk / "2019")  # that disk's files where ours were
        (disk / "2019").mkdir()
        (disk / "2019" / "their-dog.jpg").write_bytes(b"dog")
        for scope, below in (("current", disk), ("recursive", disk / "2019"), ("current", None)):
            job = await locations.index(location.id, scope=scope, below=below and SdPath(api.device.id, str(below)))
            record = await api.library().jobs.wait(job.id)
            assert record.state == "failed" and f"sd location rescan {location.id} --confirm-drop" in (record.error or "")
        assert len(await api.library().search("photo")) >= 100  # nothing dropped
        assert (await locations.get(location.id)).undecided
