"""A copy to a paired device's FAT disk is told what that disk cannot take before a byte is sent, as a copy to a FAT
disk here is: the other device tells its destination's limits from its own mount table. Two devices paired over real
SSH on 127.0.0.1; the other device's folder is one its mount table says is vfat (this kernel may have no vfat)."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import ops, volumes
from sdcore.api import Api
from sdcore.core import Core
from sdcore.sdpath import SdPath
from tests.functional.ssh_support import paired_core


@pytest.fixture
async def fat_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Core, SdPath, Path]]:
    """A core on device beta paired with device alpha, whose folder `usb` is a FAT32 disk by alpha's mount table."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    usb = tmp_path / "alpha-usb"
    usb.mkdir()
    table = tmp_path / "mountinfo"  # both devices run in this process: the table is alpha's as much as beta's
    table.write_text(f"{Path(volumes.MOUNTINFO).read_text()}999 1 0:99 / {usb} rw,relatime - vfat /dev/loop999 rw\n")
    monkeypatch.setattr(volumes, "MOUNTINFO", str(table))
    async with paired_core(tmp_path) as (core, alpha):
        yield core, SdPath(alpha.device.id, str(usb)), usb


async def test_a_5_gib_file_to_a_paired_devices_fat_disk_fails_at_once_and_sends_nothing(
    fat_there: tuple[Core, SdPath, Path], tmp_path: Path
) -> None:
    core, remote, usb = fat_there
    film = tmp_path / "holiday.mkv"
    with open(film, "wb") as f:
        f.truncate(5 << 30)  # sparse: no 5 GiB is read or sent
    library = core.library()
    start = time.monotonic()
    record = await library.jobs.wait(await ops.copy(library, [core.local_path(str(film))], remote))
    assert record.state == "failed" and "FAT32 holds files up to 4 GiB" in (record.error or "")
    assert "holiday.mkv (5.0 GiB)" in (record.error or "")
    assert time.monotonic() - start < 10  # refused from the plan, not after sending 4 GiB
    assert os.listdir(usb) == []


async def test_names_a_paired_devices_fat_disk_cannot_hold_are_listed_first_then_renamed_as_asked(
    fat_there: tuple[Core, SdPath, Path], tmp_path: Path
) -> None:
    core, remote, usb = fat_there
    tree = tmp_path / "notes"
    (tree / "drafts").mkdir(parents=True)
    for name in ("ok.txt", "a:b.txt", "README", "readme", "drafts/x|y.txt"):
        (tree / name).write_text(name)
    api = Api(core)
    source = core.local_path(str(tree))
    assert sorted(await api.ops.unfit_names([source], remote)) == sorted(
        ["notes/a:b.txt", "notes/readme (clashes with README)", "notes/drafts/x|y.txt"]
    )  # what the F5 dialog asks about, before anything is written
    library = core.library()
    record = await library.jobs.wait(await ops.copy(library, [source], remote))
    assert record.state == "failed" and "FAT32" in (record.error or "") and "--unfit-names rename" in (record.error or "")
    for name in ("a:b.txt", "readme (clashes with README)", "x|y.txt"):
        assert name in (record.error or "")
    assert os.listdir(usb) == []
    record = await library.jobs.wait(await ops.copy(library, [source], remote, unfit_names="rename"))
    assert record.state == "completed", record.error
    assert sorted(os.listdir(usb / "notes")) == ["README", "a_b.txt", "drafts", "ok.txt", "readme (1)"]
    assert (usb / "notes" / "drafts" / "x_y.txt").read_text() == "drafts/x|y.txt"


async def test_a_copy_of_many_files_asks_the_paired_device_its_folders_limits_once(
    fat_there: tuple[Core, SdPath, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan asked the other device once per file copied (an RPC each, 200 files: 200 more round trips)."""
    from sdcore.net.remote_fs import RemoteFS

    core, remote, usb = fat_there
    files = tmp_path / "many"
    files.mkdir()
    for i in range(200):
        (files / f"f{i:03}.txt").write_text(str(i))
    asked: list[str] = []
    told = RemoteFS.limits

    async def counted(self: RemoteFS, path: str) -> object:
        asked.append(path)
        return await told(self, path)

    monkeypatch.setattr(RemoteFS, "limits", counted)
    library = core.library()
    sources = [core.local_path(str(files / f"f{i:03}.txt")) for i in range(200)]
    record = await library.jobs.wait(await ops.copy(library, sources, remote))
    assert record.state == "completed", record.error
    assert len(os.listdir(usb)) == 200
    assert asked == [str(usb)] * 2  # the plan's, and the job's (once a run)
