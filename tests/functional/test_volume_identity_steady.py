"""A disk's identity holds on a loaded machine: a blkid that fails or times out once is asked again, and one that
keeps failing neither makes a mounted disk another one nor makes its location look unplugged (the identity last
read while it stays mounted holds); a disk first used while blkid fails is refused rather than given a made-up id.
A real loop-mounted ext4 image, and the real blkid behind a wrapper that fails as many times as told."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from sdcore import volumes
from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from tests.functional.loop_disks import make_disk, uuid_of


class FlakyBlkid:
    """`blkid` first in PATH: it fails (or, `slow`, hangs) the next `fails` times it is run, then is the real one."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        real = shutil.which("blkid")
        if real is None:
            pytest.skip("blkid is needed to read a disk's identity here (no /dev/disk/by-uuid)")
        folder = tmp_path / "bin"
        folder.mkdir()
        self.counter = tmp_path / "blkid-fails"
        self.counter.write_text("0\n")
        self.mode = tmp_path / "blkid-mode"
        self.mode.write_text("fail\n")
        wrapper = folder / "blkid"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"n=$(cat '{self.counter}')\n"
            'if [ "$n" -gt 0 ]; then\n'
            f"  echo $((n - 1)) > '{self.counter}'\n"
            f"  if [ \"$(cat '{self.mode}')\" = slow ]; then exec sleep 3; fi\n"
            "  echo 'blkid: error: /dev/loop0: Resource temporarily unavailable' >&2; exit 4\n"
            "fi\n"
            f'exec {real} "$@"\n'
        )
        wrapper.chmod(0o755)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")

    def fail(self, times: int, *, slow: bool = False) -> None:
        self.mode.write_text("slow\n" if slow else "fail\n")
        self.counter.write_text(f"{times}\n")

    @property
    def fails_left(self) -> int:
        return int(self.counter.read_text())


def _at(point: Path) -> volumes.Volume:
    (found,) = [v for v in volumes.list_volumes() if v.mount_point == str(point)]
    return found


def test_a_blkid_that_fails_or_times_out_once_is_asked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = make_disk(tmp_path / "steady.img", "ext4", "STEADY")
    expected = f"uuid:{uuid_of(disk.image)}"
    blkid = FlakyBlkid(tmp_path, monkeypatch)
    first, second = tmp_path / "first", tmp_path / "second"
    disk.mount(first)
    try:
        blkid.fail(1)  # the first look at this mount: nothing known of it yet
        seen = _at(first)
        assert blkid.fails_left == 0
        assert (seen.id, seen.label) == (expected, "STEADY")
        disk.umount(first)
        disk.mount(second)  # another mount: what was read of the first is forgotten
        monkeypatch.setattr(volumes, "BLKID_TIMEOUT", 1.0)
        blkid.fail(1, slow=True)
        seen = _at(second)
        assert blkid.fails_left == 0
        assert (seen.id, seen.label) == (expected, "STEADY")
    finally:
        disk.umount_all()


async def test_a_blkid_that_keeps_failing_leaves_a_mounted_disk_its_identity_and_its_location_online(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = make_disk(tmp_path / "steady.img", "ext4", "STEADY")
    expected = f"uuid:{uuid_of(disk.image)}"
    blkid = FlakyBlkid(tmp_path, monkeypatch)
    point, other = tmp_path / "usb", tmp_path / "other"
    disk.mount(point)
    try:
        (point / "album").mkdir()
        (point / "album" / "cliff.jpg").write_bytes(b"chalk" * 100)
        async with Core(tmp_path / "data") as core:
            api = Api(core)
            location = await api.library().locations.add(str(point / "album"), mode="shallow", index=True)
            assert location.volume_id == expected
            blkid.fail(1000)  # a machine so loaded that blkid fails every time from now on
            assert (_at(point).id, _at(point).label) == (expected, "STEADY")
            folder = await api.resolve(str(point / "album"))
            assert await api.offline(folder) is None  # not "offline — STEADY": it is mounted
            listed = [e.name async for batch in api.browse(folder, index=True) for e in batch]
            assert listed == ["cliff.jpg"]

            disk.mount(other)  # the same disk mounted a second time: a mount never looked at while blkid worked
            (other / "new").mkdir()
            with pytest.raises(SdError, match="identity of the disk at .* could not be read: blkid failed twice"):
                await api.library().locations.add(str(other / "new"), mode="shallow")
            assert not (other / volumes.ID_FILE).exists()  # no made-up identity written on it
            assert [loc.id for loc in await api.library().locations.list()] == [location.id]
    finally:
        disk.umount_all()


def test_another_disk_given_the_old_ones_mount_id_while_blkid_fails_does_not_inherit_its_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = make_disk(tmp_path / "ours.img", "ext4", "OURS")
    theirs = make_disk(tmp_path / "theirs.img", "ext4", "THEIRS")
    blkid = FlakyBlkid(tmp_path, monkeypatch)
    point, table = tmp_path / "usb", tmp_path / "mountinfo"
    ours.mount(point)
    try:
        seen = _at(point)  # read while blkid works: kept while this mount stays
        assert (seen.id, seen.label) == (f"uuid:{uuid_of(ours.image)}", "OURS")
        (old,) = [line.split(" ") for line in Path(volumes.MOUNTINFO).read_text().splitlines() if line.split(" ")[4] == str(point)]
        ours.umount(point)  # unplugged and another disk plugged in before anyone read the mount table
        theirs.mount(point)
        lines = []
        for line in Path(volumes.MOUNTINFO).read_text().splitlines():
            fields = line.split(" ")
            if fields[4] == str(point):  # as the kernel may have it: the old mount id, the same loop device
                fields[0], fields[2] = old[0], old[2]
                fields[fields.index("-") + 2] = old[old.index("-") + 2]
            lines.append(" ".join(fields))
        table.write_text("\n".join(lines) + "\n")
        blkid.fail(1000)
        (swapped,) = [v for v in volumes.list_volumes(str(table)) if v.mount_point == str(point)]
        assert swapped.id != seen.id and swapped.label != "OURS"
        with pytest.raises(SdError, match="identity of the disk at .* could not be read"):  # as any first use
            volumes.volume_of_mount(str(point), claim=True, mountinfo=str(table))
        assert not (point / volumes.ID_FILE).exists()
    finally:
        ours.umount_all()
        theirs.umount_all()
