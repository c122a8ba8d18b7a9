"""A copy onto a disk is told what the disk cannot take before a byte is written: FAT32's 4 GiB, names FAT cannot
hold, a read-only mount; and a disk a job uses is not ejected under it. Real loop-mounted images (root and mkfs,
else skipped with the reason); where the kernel has no vfat, the FAT image is mounted through FUSE by fusefat."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.ops import localcopy
from tests.functional.loop_disks import Disk, make_disk


@pytest.fixture(scope="module")
def fat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where a FAT32 disk is mounted, one for the module (each test writes in a folder of its own on it)."""
    root = tmp_path_factory.mktemp("fat")
    disk = make_disk(root / "fat.img", "vfat", "USB STICK", megabytes=40)
    disk.mount(root / "usb")
    yield root / "usb"
    disk.umount_all()


@pytest.fixture(scope="module")
def usb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Disk, Path]]:
    """One real ext4 disk for the module, mounted."""
    root = tmp_path_factory.mktemp("usb")
    disk = make_disk(root / "usb.img", "ext4", "BACKUP")
    disk.mount(root / "usb")
    yield disk, root / "usb"
    disk.umount_all()


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with Core(tmp_path / "data") as core:
        yield Api(core)


async def copy(api: Api, sources: list[Path], destination: Path, **options: Any) -> Any:
    """Copy as `sd cp` does, and wait: the finished job."""
    paths = [await api.resolve(str(s)) for s in sources]
    job = await api.ops.copy(paths, await api.resolve(str(destination)), **options)
    return await api.library().jobs.wait(job.id)


async def test_a_5_gib_file_onto_fat32_fails_at_once_and_writes_nothing(
    tmp_path: Path, fat: Path, api: Api
) -> None:
    film = tmp_path / "holiday.mkv"
    with open(film, "wb") as f:
        f.truncate(5 << 30)  # sparse: no 5 GiB is read or written
    target = fat / "big"
    target.mkdir()
    start = time.monotonic()
    record = await copy(api, [film], target)
    assert record.state == "failed" and "FAT32 holds files up to 4 GiB" in record.error
    assert "holiday.mkv (5.0 GiB)" in record.error
    assert time.monotonic() - start < 10  # refused from the plan, not after writing 4 GiB
    assert os.listdir(target) == []  # not even a temporary file


def _tree_with_names_fat_refuses(root: Path) -> Path:
    tree = root / "notes"
    (tree / "drafts").mkdir(parents=True)
    for name in ("ok.txt", "a:b.txt", "why?.md", "trailing.", "README", "readme", "drafts/x|y.txt"):
        (tree / name).write_text(name)
    return tree


async def test_names_fat_cannot_hold_are_listed_up_front_and_nothing_is_written(
    tmp_path: Path, fat: Path, api: Api
) -> None:
    tree = _tree_with_names_fat_refuses(tmp_path)
    target = fat / "refused"
    target.mkdir()
    destination = await api.resolve(str(target))
    listed = await api.ops.unfit_names([await api.resolve(str(tree))], destination)
    assert sorted(listed) == sorted([
        "notes/a:b.txt", "notes/why?.md", "notes/trailing.", "notes/readme (clashes with README)",
        "notes/drafts/x|y.txt",
    ])  # fmt: skip
    record = await copy(api, [tree], target)
    assert record.state == "failed"
    for name in ("a:b.txt", "why?.md", "trailing.", "readme (clashes with README)", "x|y.txt"):
        assert name in record.error
    assert "--unfit-names rename" in record.error and "FAT32" in record.error
    assert os.listdir(target) == []


async def test_names_fat_cannot_hold_are_renamed_or_skipped_as_asked(
    tmp_path: Path, fat: Path, api: Api
) -> None:
    tree = _tree_with_names_fat_refuses(tmp_path)
    renamed, skipped = fat / "renamed", fat / "skipped"
    renamed.mkdir()
    skipped.mkdir()
    record = await copy(api, [tree], renamed, unfit_names="rename")
    assert record.state == "completed", record.error
    landed = renamed / "notes"
    assert sorted(os.listdir(landed)) == sorted(
        ["ok.txt", "a_b.txt", "why_.md", "trailing", "README", "readme (1)", "drafts"]
    )
    assert (landed / "a_b.txt").read_text() == "a:b.txt" and (landed / "readme (1)").read_text() == "readme"
    assert (landed / "drafts" / "x_y.txt").read_text() == "drafts/x|y.txt"
    record = await copy(api, [tree], skipped, unfit_names="skip")
    assert record.state == "completed", record.error
    assert sorted(os.listdir(skipped / "notes")) == ["README", "drafts", "ok.txt"]
    assert os.listdir(skipped / "notes" / "drafts") == []


async def test_files_and_folders_with_modes_fat_cannot_keep_are_copied_onto_it(
    tmp_path: Path, fat: Path, api: Api
) -> None:
    card = tmp_path / "DCIM"  # as from a camera card or a Windows share: everyone may write everything
    card.mkdir()
    (card / "IMG_0001.JPG").write_bytes(b"\xff\xd8 a photo")
    os.chmod(card / "IMG_0001.JPG", 0o777)
    os.chmod(card, 0o777)
    target = fat / "modes"
    target.mkdir()
    record = await copy(api, [card], target)
    assert record.state == "completed", record.error
    assert (target / "DCIM" / "IMG_0001.JPG").read_bytes() == b"\xff\xd8 a photo"


async def test_a_read_only_mount_says_so_at_the_first_write(
    tmp_path: Path, usb: tuple[Disk, Path], api: Api
) -> None:
    disk, point = usb
    (tmp_path / "letter.txt").write_text("dear disk")
    disk.remount(point, "ro")
    try:
        record = await copy(api, [tmp_path / "letter.txt"], point)
        assert record.state == "failed" and "mounted read-only" in record.error
        assert "remount it read-write" in record.error
        with pytest.raises(SdError, match="read-only"):
            job = await api.ops.start_mkdir(await api.resolve(str(point / "new folder")))
            done = await api.library().jobs.wait(job.id)
            raise SdError(done.error or "made")
    finally:
        disk.remount(point, "rw")
    assert not (point / "letter.txt").exists() and not (point / "new folder").exists()


async def test_eject_refuses_while_a_copy_onto_the_disk_runs(
    tmp_path: Path, usb: tuple[Disk, Path], api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = usb[1]
    (tmp_path / "photo.jpg").write_bytes(b"\xff" * 1000)
    target = point / "busy"
    target.mkdir()
    held, started = threading.Event(), threading.Event()
    real = localcopy.copy_file

    def held_copy(*args: Any, **kwargs: Any) -> Any:
        started.set()
        held.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(localcopy, "copy_file", held_copy)
    job = await api.ops.copy([await api.resolve(str(tmp_path / "photo.jpg"))], await api.resolve(str(target)))
    try:
        deadline = time.monotonic() + 30
        while not started.is_set():
            assert time.monotonic() < deadline, "the copy never began"
            await _pause()
        with pytest.raises(SdError, match=r"is in use by a job \(copy photo.jpg\)"):
            await api.eject(str(point))
        assert os.path.ismount(point)
    finally:
        held.set()
    assert (await api.library().jobs.wait(job.id)).state == "completed"


async def _pause() -> None:
    import asyncio

    await asyncio.sleep(0.02)


async def test_f5_onto_fat_asks_to_rename_or_skip_the_names_it_cannot_hold_before_copying(
    tmp_path: Path, fat: Path
) -> None:
    from sdtui.app import SdtuiApp
    from sdtui.screens.choice import ChoiceScreen
    from tests.functional.tui_support import settle, wait_for

    folder = tmp_path / "to copy"
    folder.mkdir()
    (folder / "q&a: march.txt").write_text("answers")
    target = fat / "from the explorer"
    target.mkdir()
    app = SdtuiApp(str(folder), other=str(target), data_dir=tmp_path / "data")
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot, app)
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        assert "q&a: march.txt" in app.screen.question and "FAT" in app.screen.question
        assert os.listdir(target) == []  # asked before anything is written
        await pilot.press("r")
        await wait_for(pilot, lambda: os.listdir(target) == ["q&a_ march.txt"])
    assert (target / "q&a_ march.txt").read_text() == "answers"


async def test_an_exfat_disk_mounted_through_fuse_lists_the_names_it_cannot_hold_before_the_copy(
    tmp_path: Path, api: Api
) -> None:
    disk = make_disk(tmp_path / "exfat.img", "exfat", "CAMERA", megabytes=40)
    point = tmp_path / "camera"
    disk.mount(point)  # exfat-fuse's mount says only `fuseblk`: what the device holds tells it is exFAT
    try:
        tree = _tree_with_names_fat_refuses(tmp_path)
        record = await copy(api, [tree], point)
        assert record.state == "failed" and "exFAT" in record.error
        for name in ("a:b.txt", "why?.md", "trailing.", "readme (clashes with README)", "x|y.txt"):
            assert name in record.error
        assert not (point / "notes").exists()
    finally:
        disk.umount_all()
