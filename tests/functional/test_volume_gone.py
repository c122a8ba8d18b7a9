"""A disk pulled out in the middle of a copy onto it (`umount -l`): the job fails saying the volume went away,
nothing half-written lies under a final name, resuming before the disk is back refuses, and resuming once it is
back finishes the copy byte for byte. Real images, ext4 and FAT32 (loop-mounted, or FAT through fusefat where the
kernel has no vfat; root and mkfs, else skipped with the reason)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.ops import localcopy
from sdcore.ops.names import TEMP_PREFIX
from tests.functional.loop_disks import make_disk

FILES = 2_000
PULLED_AT = 700
"""The file being copied when the disk is pulled out."""


def _files(root: Path) -> dict[str, bytes]:
    """Each file under `root` (its path inside it) and what it holds."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.timeout(300)  # through fusefat ~10 ms a file (CPU), far more on a loaded machine
@pytest.mark.parametrize(
    ("fs", "per_folder"),
    # fusefat slows with a folder's size (100 files into a folder of 300: 25 s; into an empty one: 1 s): FAT's
    # 2,000 files are in folders of 50
    [("ext4", FILES), ("vfat", 50)],
)
async def test_a_disk_pulled_out_mid_copy_fails_the_job_cleanly_and_resume_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fs: str, per_folder: int
) -> None:
    disk = make_disk(tmp_path / "usb.img", fs, "BACKUP", megabytes=40)  # room for 2,000 files
    point = tmp_path / "usb"
    disk.mount(point)
    try:
        photos = tmp_path / "photos"
        for n in range(FILES):
            folder = photos if per_folder == FILES else photos / f"{n // per_folder:02}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{n:04}.jpg").write_bytes(os.urandom(n % 3000 + 1))
        calls, reached, pulled = 0, threading.Event(), threading.Event()
        real = localcopy.copy_file

        def copy_file(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            if calls == PULLED_AT:  # in the copy's worker thread: the disk goes while this file is written
                reached.set()
                pulled.wait(60)
            return real(*args, **kwargs)

        monkeypatch.setattr(localcopy, "copy_file", copy_file)
        async with Core(tmp_path / "data") as core:
            api = Api(core)
            jobs = api.library().jobs
            job = await api.ops.copy([await api.resolve(str(photos))], await api.resolve(str(point)))
            deadline = time.monotonic() + 60
            while not reached.is_set():
                assert time.monotonic() < deadline, "the copy never reached the pulled file"
                await asyncio.sleep(0.02)
            disk.umount(point, lazy=True)
            pulled.set()
            record = await jobs.wait(job.id)
            assert record.state == "failed" and record.error.startswith("the volume went away"), record.error
            assert f"sd job resume {job.id}" in record.error
            assert not (point / "photos").exists()  # the empty folder the disk was mounted on got nothing
            await jobs.resume(job.id)  # too soon: the disk is still out
            record = await jobs.wait(job.id)
            assert record.state == "failed" and "is not mounted: plug the disk in" in record.error
            assert os.listdir(point) == []  # nothing copied into the folder the disk is mounted on

            disk.mount(point)
            landed, wanted = point / "photos", _files(photos)
            there = _files(landed)
            assert 0 < len(there) < FILES
            for name, data in there.items():  # whatever has a final name is whole; no temporary file was left behind
                assert not os.path.basename(name).startswith(TEMP_PREFIX)
                assert data == wanted[name]

            await jobs.resume(job.id)
            record = await jobs.wait(job.id)
            assert record.state == "completed", record.error
        assert _files(landed) == wanted
    finally:
        disk.umount_all()

