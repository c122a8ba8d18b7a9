"""Real disks (loop-mounted ext4 images) come and go: the core says so at once, the sidebar and `sd volume list`
show them, and a disk is the same volume wherever it is mounted. Needs root and mkfs.ext4; skips otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sdcore.api import Api
from sdcore.core import Core
from sdcore.events import VolumesChanged
from sdcore.volumes import (
    ID_FILE,
    DeviceFacts,
    MountWatcher,
    Volume,
    browsable,
    list_volumes,
    mount_at,
    parse_mountinfo,
    volume_of,
    volume_of_mount,
)
from sdtui.app import SdtuiApp
from sdtui.widgets.sidebar import Sidebar
from tests.functional.loop_disks import Disk, make_disk
from tests.functional.tui_support import own_home, settle, wait_for  # noqa: F401 -- own_home: a fixture

WITHIN = 1.0
"""Seconds in which a mount or unmount must be seen (the issue's promise)."""


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    made = make_disk(tmp_path / "disk.img")
    yield made
    made.umount_all()


def mounted_at(point: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [m.point for m in browsable(parse_mountinfo(f.read())) if m.point == str(point)]


async def test_a_disk_mounted_and_unmounted_is_announced_within_a_second(tmp_path: Path, disk: Disk) -> None:
    point = tmp_path / "media" / "my photos"  # a space: the kernel writes it as \040
    async with Core(tmp_path / "data") as core:
        api = Api(core)
        assert str(point) not in [v.mount_point for v in await api.volumes()]
        with core.bus.subscribe(VolumesChanged) as events:
            disk.mount(point)
            start = time.monotonic()
            assert isinstance(await _next(events), VolumesChanged)
            assert time.monotonic() - start < WITHIN
            volume = next(v for v in await api.volumes() if v.mount_point == str(point))
            assert (volume.fs_type, volume.read_only, volume.system) == ("ext4", False, False)
            assert volume.size > 0 and 0 < volume.free <= volume.size
            disk.umount(point)
            start = time.monotonic()
            await _next(events)
            assert time.monotonic() - start < WITHIN
            assert str(point) not in [v.mount_point for v in await api.volumes()]


async def _next(events: object) -> object:
    import asyncio

    async with asyncio.timeout(WITHIN * 5):  # the time is asserted by the caller; this only ends a hang
        return await events.__anext__()  # type: ignore[attr-defined]


def test_the_same_disk_is_the_same_volume_at_another_mount_point(tmp_path: Path, disk: Disk) -> None:
    first, second = tmp_path / "first", tmp_path / "elsewhere" / "second"
    disk.mount(first)
    facts = DeviceFacts({}, {})  # as where the OS tells no UUID: the id file is what identifies it
    mount = next(
        m for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if m.point == str(first)
    )
    claimed = volume_of(mount, facts, claim=True)
    assert claimed.id.startswith("file:") and (first / ID_FILE).is_file()
    disk.umount(first)
    disk.mount(second)
    mount = next(
        m for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if m.point == str(second)
    )
    assert volume_of(mount, facts, claim=True).id == claimed.id


def test_a_fat_disk_whose_uuid_is_not_read_gets_the_id_file_and_is_the_same_volume_elsewhere(tmp_path: Path) -> None:
    disk = make_disk(tmp_path / "fat.img", "vfat", "USB STICK", megabytes=40)
    first, second = tmp_path / "first", tmp_path / "second"

    def claim(point: Path) -> Volume:
        mount = mount_at(str(point))
        assert mount is not None and str(point) in [v.mount_point for v in list_volumes()]
        if mount.source.startswith("/dev/"):  # the kernel's vfat: blkid reads FAT's serial; as where none is told
            return volume_of(mount, DeviceFacts({}, {}), claim=True)
        volume = volume_of_mount(str(point), claim=True)  # fusefat's mount names no device: no UUID is read
        assert volume is not None
        return volume

    disk.mount(first)
    try:
        claimed = claim(first)
        assert claimed.id.startswith("file:") and (first / ID_FILE).is_file()
        disk.umount(first)
        disk.mount(second)
        assert claim(second).id == claimed.id
    finally:
        disk.umount_all()


def test_a_labelled_disk_is_listed_by_its_label_and_uuid_wherever_it_is_mounted(
    tmp_path: Path, disk: Disk
) -> None:
    if not os.path.isdir("/dev/disk/by-uuid") and shutil.which("blkid") is None:
        pytest.skip("neither udev's /dev/disk/by-uuid nor blkid tells filesystem UUIDs here")
    first, second = tmp_path / "first", tmp_path / "second"
    disk.mount(first)
    there = next(v for v in list_volumes() if v.mount_point == str(first))
    assert there.label == "MY PHOTOS" and there.name == "MY PHOTOS" and there.id.startswith("uuid:")
    assert not (first / ID_FILE).exists()
    disk.umount(first)
    disk.mount(second)
    assert next(v for v in list_volumes() if v.mount_point == str(second)).id == there.id


def test_a_read_only_disk_gets_no_id_file_and_keeps_its_fingerprint(tmp_path: Path, disk: Disk) -> None:
    disk.mount(tmp_path / "ro", "ro")
    mount = next(
        m
        for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        if m.point == str(tmp_path / "ro")
    )
    volume = volume_of(mount, DeviceFacts({}, {}), claim=True)
    assert volume.read_only and volume.id.startswith("fingerprint:")
    assert not (tmp_path / "ro" / ID_FILE).exists()
    disk.umount(tmp_path / "ro")
    disk.mount(tmp_path / "ro again", "ro")
    mount = next(
        m for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text()) if "ro again" in m.point
    )
    assert volume_of(mount, DeviceFacts({}, {})).id == volume.id


def test_the_watcher_stops_when_closed(tmp_path: Path) -> None:
    seen: list[int] = []
    watcher = MountWatcher(lambda: seen.append(1))
    start = time.monotonic()
    watcher.close()
    assert time.monotonic() - start < 2 and not watcher._thread.is_alive()


async def test_the_sidebar_shows_a_disk_within_a_second_of_mount_and_drops_it_on_umount(
    tmp_path: Path, disk: Disk
) -> None:
    point = tmp_path / "usb"
    (tmp_path / "tree").mkdir()
    app = SdtuiApp(str(tmp_path / "tree"), data_dir=tmp_path / "data")  # the real mount table
    async with app.run_test(size=(150, 34)) as pilot:
        await settle(pilot, app)
        sidebar = app.screen.query_one(Sidebar)
        await wait_for(
            pilot, lambda: "vol-/" in sidebar._places
        )  # listed once: the watcher runs from then on
        disk.mount(point)
        start = time.monotonic()
        await wait_for(pilot, lambda: f"vol-{point}" in sidebar._places, timeout=WITHIN * 5)
        assert time.monotonic() - start < WITHIN
        if any(v.label for v in list_volumes() if v.mount_point == str(point)):  # udev or blkid told it
            assert sidebar._places[f"vol-{point}"][0].startswith("MY PHOTOS (")
        disk.umount(point)
        start = time.monotonic()
        await wait_for(pilot, lambda: f"vol-{point}" not in sidebar._places, timeout=WITHIN * 5)
        assert time.monotonic() - start < WITHIN


def test_sd_volume_list_shows_a_mounted_disk(tmp_path: Path, disk: Disk) -> None:
    point = tmp_path / "disk"
    disk.mount(point)
    sd = str(Path(sys.executable).with_name("sd"))
    done = subprocess.run([sd, "--data-dir", str(tmp_path / "data"), "volume", "list", "--json"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = {v["mount_point"]: v for v in json.loads(done.stdout)}
    assert listed[str(point)]["fs_type"] == "ext4" and listed[str(point)]["size"] > 0
    table = subprocess.run([sd, "--data-dir", str(tmp_path / "data"), "volume", "list"],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert str(point) in table.stdout and "ext4" in table.stdout


def test_eject_refuses_while_a_file_is_open_on_the_disk_then_unmounts_it(tmp_path: Path, disk: Disk) -> None:
    point = tmp_path / "usb"
    disk.mount(point)
    sd = [str(Path(sys.executable).with_name("sd")), "--data-dir", str(tmp_path / "data"), "volume", "eject"]
    with open(point / "open while ejecting.txt", "w") as held:
        held.write("unsaved work")
        busy = subprocess.run([*sd, str(point)], capture_output=True, text=True, timeout=60)
        assert busy.returncode != 0 and "in use" in busy.stderr and "Traceback" not in busy.stderr
        assert mounted_at(point) == [str(point)]  # still there: nothing was lost
    done = subprocess.run([*sd, str(point)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "can be unplugged" in done.stdout and mounted_at(point) == []
    disk.mounted.remove(point)


def test_eject_says_what_to_name_and_never_unmounts_the_system(tmp_path: Path, disk: Disk) -> None:
    sd = [str(Path(sys.executable).with_name("sd")), "--data-dir", str(tmp_path / "data"), "volume", "eject"]
    unknown = subprocess.run([*sd, "no such disk"], capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "no mounted volume is named 'no such disk'" in unknown.stderr
    system = subprocess.run([*sd, "/"], capture_output=True, text=True, timeout=60)
    is_a_volume = "/" in [v.mount_point for v in list_volumes()]  # not where / is an overlay (a container)
    assert (
        system.returncode != 0 and ("system volume" if is_a_volume else "no mounted volume") in system.stderr
    )
