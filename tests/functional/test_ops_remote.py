"""The same copy and move code between two paired devices over real SSH (RemoteFS instead of LocalFS)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.events import JobProgress
from sdcore.net.rpc_server import RpcSession
from sdcore.ops.localcopy import hash_file
from sdcore.sdpath import SdPath
from tests.functional.copy_support import PausedCopy
from tests.functional.ssh_support import paired_core


@pytest.fixture
async def two_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Core, SdPath]]:
    """A core on device beta whose network is paired with device alpha; and alpha's folder as an SdPath."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    async with paired_core(tmp_path) as (core, alpha):
        (tmp_path / "alpha-files").mkdir()
        yield core, SdPath(alpha.device.id, str(tmp_path / "alpha-files"))


async def test_a_tree_is_copied_to_and_from_a_paired_device(
    two_devices: tuple[Core, SdPath], tmp_path: Path
) -> None:
    core, remote = two_devices
    library = core.library()
    src = tmp_path / "local"
    (src / "sub").mkdir(parents=True)
    (src / "big.bin").write_bytes(os.urandom(3_000_000))
    (src / "sub" / "note.txt").write_text("note")
    os.utime(src / "big.bin", (1_500_000_000, 1_500_000_000))
    os.symlink("big.bin", src / "link")
    record = await library.jobs.wait(
        await ops.copy(library, [core.local_path(str(src))], remote, verify=True)
    )
    assert record.state == "completed", record.error
    assert list(record.result.unsupported) == [
        str(src / "link")
    ]  # no symlink across devices yet: said, not hidden
    there = tmp_path / "alpha-files" / "local"
    assert hash_file(str(there / "big.bin")) == hash_file(str(src / "big.bin"))
    assert (there / "sub" / "note.txt").read_text() == "note"
    assert (there / "big.bin").stat().st_mtime == 1_500_000_000
    assert not [n for n in os.listdir(there) if n.startswith(".")]  # no temporary file left

    record = await library.jobs.wait(await ops.copy(library, [core.local_path(str(src))], remote))
    assert record.state == "failed" and "exist at the destination" in record.error

    back = tmp_path / "back"
    record = await library.jobs.wait(
        await ops.move(library, [remote.child("local")], core.local_path(str(back)))
    )
    assert record.state == "completed", record.error
    assert hash_file(str(back / "big.bin")) == hash_file(str(src / "big.bin"))
    assert (back / "sub" / "note.txt").read_text() == "note"
    assert not there.exists()  # moved: verified here, then deleted there


async def test_a_paused_copy_to_a_device_carries_on_from_the_bytes_it_sent(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    core, remote = two_devices
    library = core.library()
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(24 << 20))
    paused = PausedCopy(monkeypatch, library, after=6 << 20)  # the user pauses a quarter of the way
    job_id = await paused.start([core.local_path(str(big))], remote)
    offsets = paused.offsets
    assert library.jobs.get(job_id).done >= 6 << 20  # shows what it sent, not 0 B
    assert not (tmp_path / "alpha-files" / "video.mkv").exists()
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert hash_file(str(tmp_path / "alpha-files" / "video.mkv")) == hash_file(str(big))
    assert record.result.bytes == record.done == 24 << 20  # the bytes sent before the pause count once
    assert offsets[0] == 0 and offsets[-1] > 0  # the second run asked only for the missing bytes
    assert sorted(os.listdir(tmp_path / "alpha-files")) == ["video.mkv"]


async def test_a_paused_copy_to_a_device_that_is_canceled_leaves_nothing_there(
    two_devices: tuple[Core, SdPath], tmp_path: Path
) -> None:
    from sdcore.events import JobProgress

    core, remote = two_devices
    library = core.library()
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(32 << 20))
    with core.bus.subscribe(JobProgress) as events:
        job_id = await ops.copy(library, [core.local_path(str(big))], remote)
        async for event in events:
            if event.job_id == job_id and event.done >= 4 << 20:
                library.jobs.pause(job_id)  # the user pauses part of the way, then changes their mind
                break
    assert (await library.jobs.wait(job_id)).state == "paused"
    assert os.listdir(tmp_path / "alpha-files")  # what was sent so far is kept there for a resume
    library.jobs.cancel(job_id)
    assert (await library.jobs.wait(job_id)).state == "canceled"
    assert os.listdir(tmp_path / "alpha-files") == []  # canceled: the partial file went too


async def test_a_paused_copy_from_a_device_carries_on_from_the_bytes_it_received(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    core, remote = two_devices
    library = core.library()
    big = tmp_path / "alpha-files" / "video.mkv"
    big.write_bytes(os.urandom(24 << 20))
    here = tmp_path / "downloads"
    here.mkdir()
    paused = PausedCopy(monkeypatch, library, after=6 << 20)  # the user pauses a quarter of the way
    job_id = await paused.start([remote.child("video.mkv")], core.local_path(str(here)))
    offsets = paused.offsets
    [partial] = os.listdir(here)  # what arrived so far is kept here for a resume
    assert partial.endswith(".sdpart") and (here / partial).stat().st_size >= 6 << 20
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert hash_file(str(here / "video.mkv")) == hash_file(str(big))
    assert record.result.bytes == record.done == 24 << 20  # the bytes received before the pause count once
    assert offsets[0] == 0 and offsets[-1] >= 6 << 20  # the second run asked only for the missing bytes
    assert os.listdir(here) == ["video.mkv"]


async def test_a_paused_copy_from_a_device_that_is_canceled_leaves_nothing_here(
    two_devices: tuple[Core, SdPath], tmp_path: Path
) -> None:
    from sdcore.events import JobProgress

    core, remote = two_devices
    library = core.library()
    (tmp_path / "alpha-files" / "video.mkv").write_bytes(os.urandom(32 << 20))
    here = tmp_path / "downloads"
    here.mkdir()
    with core.bus.subscribe(JobProgress) as events:
        job_id = await ops.copy(library, [remote.child("video.mkv")], core.local_path(str(here)))
        async for event in events:
            if event.job_id == job_id and event.done >= 4 << 20:
                library.jobs.pause(job_id)
                break
    assert (await library.jobs.wait(job_id)).state == "paused"
    assert os.listdir(here)
    library.jobs.cancel(job_id)
    assert (await library.jobs.wait(job_id)).state == "canceled"
    assert os.listdir(here) == []


def _small_tree(root: Path, files: int) -> dict[str, bytes]:
    """`files` small files of random bytes in two folders, each with its own mtime and a mode of its own for some."""
    made = {}
    for i in range(files):
        path = root / f"d{i % 2}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1 + i * 37 % 9000))
        os.utime(path, (1_600_000_000 + i, 1_600_000_000 + i))
        if i % 10 == 0:
            path.chmod(0o640)
        made[str(path.relative_to(root))] = path.read_bytes()
    return made


def _same_tree(there: Path, made: dict[str, bytes], src: Path) -> None:
    found = sorted(str(p.relative_to(there)) for p in there.rglob("*") if not p.is_dir())
    assert found == sorted(made)  # every file, and nothing else (no temporary file)
    for rel, data in made.items():
        assert (there / rel).read_bytes() == data
        assert (there / rel).stat().st_mtime == (src / rel).stat().st_mtime
        assert (there / rel).stat().st_mode == (src / rel).stat().st_mode


async def test_small_files_go_to_a_device_many_to_a_request_and_come_back(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, remote = two_devices
    library = core.library()
    src = tmp_path / "notes"
    made = _small_tree(src, 150)
    requests = []
    real = RpcSession.rpc_write_files

    async def counted(self: RpcSession, files: list[Any]) -> list[list[Any]]:
        requests.append(len(files))
        return await real(self, files)

    monkeypatch.setattr(RpcSession, "rpc_write_files", counted)
    record = await library.jobs.wait(await ops.copy(library, [core.local_path(str(src))], remote))
    assert record.state == "completed", record.error
    assert record.result.files == 150
    _same_tree(tmp_path / "alpha-files" / "notes", made, src)
    assert sum(requests) == 150 and len(requests) <= 4  # a request for each folder's 75 files (64 at most in one)

    back = tmp_path / "back"  # and from the device to here: read there, written here many at once
    record = await library.jobs.wait(await ops.copy(library, [remote.child("notes")], core.local_path(str(back))))
    assert record.state == "completed", record.error
    _same_tree(back, made, src)


async def test_small_files_reach_an_older_device_one_by_one(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, remote = two_devices
    library = core.library()
    monkeypatch.delattr(RpcSession, "rpc_write_files")  # a device from before write_files: "unknown request"
    monkeypatch.delattr(RpcSession, "rpc_limits")  # ... and before limits
    src = tmp_path / "notes"
    made = _small_tree(src, 20)
    record = await library.jobs.wait(await ops.copy(library, [core.local_path(str(src))], remote))
    assert record.state == "completed", record.error
    assert record.result.files == 20
    _same_tree(tmp_path / "alpha-files" / "notes", made, src)


async def test_a_copy_of_small_files_to_a_device_paused_midway_resumes_counting_each_once(
    two_devices: tuple[Core, SdPath], tmp_path: Path
) -> None:
    core, remote = two_devices
    library = core.library()
    src = tmp_path / "notes"
    made = _small_tree(src, 600)
    total = sum(len(data) for data in made.values())
    with core.bus.subscribe(JobProgress) as events:
        job_id = await ops.copy(library, [core.local_path(str(src))], remote)
        async for event in events:  # the user pauses a quarter of the way
            if event.job_id == job_id and event.done >= total // 4:
                library.jobs.pause(job_id)
                break
    assert (await library.jobs.wait(job_id)).state == "paused"
    there = tmp_path / "alpha-files" / "notes"
    present = [p for p in there.rglob("*") if not p.is_dir()]
    assert 0 < len(present) < len(made)
    assert all(p.read_bytes() == made[str(p.relative_to(there))] for p in present)  # whole, and nothing else
    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert (record.result.files, record.result.bytes) == (len(made), total)
    _same_tree(there, made, src)
