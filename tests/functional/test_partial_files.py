"""The partial files a resumable copy keeps: checked before they are carried on, removed once not needed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.library.library import Library
from sdcore.net import Network
from sdcore.net.remote_fs import KEPT_BLOCK
from sdcore.net.testing import device_network, pair
from sdcore.ops import localcopy, transfer
from sdcore.ops.names import is_temp
from sdcore.sdpath import SdPath
from tests.functional.copy_support import PausedBigFile, PausedCopy
from tests.functional.ssh_support import paired_core

MiB = 1 << 20
SD = Path(sys.executable).parent / "sd"


@pytest.fixture
async def two_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Core, SdPath]]:
    """A core on device beta whose network is paired with device alpha; and alpha's inbox as an SdPath."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    async with paired_core(tmp_path) as (core, alpha):
        (tmp_path / "inbox").mkdir()
        yield core, SdPath(alpha.device.id, str(tmp_path / "inbox"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def flip(path: Path, offset: int, count: int = 17) -> None:
    """Overwrite `count` bytes of a file in place with different ones, as a bad disk or a meddler would."""
    with path.open("r+b") as f:
        f.seek(offset)
        old = f.read(count)
        f.seek(offset)
        f.write(bytes(b ^ 0xFF for b in old))


@pytest.mark.parametrize("damage", ["none", "overwritten", "grown"])
async def test_a_partial_file_on_a_device_is_checked_and_sent_again_from_the_damage(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    core, remote = two_devices
    library = core.library()
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(24 * MiB))
    paused = PausedCopy(monkeypatch, library, after=16 * MiB)  # the user pauses two thirds of the way
    job_id = await paused.start([core.local_path(str(big))], remote)
    offsets = paused.offsets  # where each read of the source began
    [partial] = (tmp_path / "inbox").iterdir()
    kept = partial.stat().st_size
    assert partial.name.endswith(".sdpart") and 6 * MiB < kept < 24 * MiB
    carry_on_at = kept
    if damage == "overwritten":
        flip(partial, 5 * MiB + 3)  # 17 bytes in the second block of what alpha kept
        carry_on_at = KEPT_BLOCK
    elif damage == "grown":
        with partial.open("ab") as f:  # the rest of the source, and then bytes it does not have
            f.write(big.read_bytes()[kept:] + b"extra")
        carry_on_at = 24 * MiB  # all of it matches: cut to the source's size, nothing is sent again

    await library.jobs.resume(job_id)
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert sha256(tmp_path / "inbox" / "video.mkv") == sha256(big)  # byte-identical
    assert offsets[1:] == [0, carry_on_at]  # read once to check what was kept, then sent from there
    assert record.result.bytes == 24 * MiB
    assert os.listdir(tmp_path / "inbox") == ["video.mkv"]


async def test_a_damaged_partial_local_copy_is_copied_again_from_the_damage(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = PausedBigFile(monkeypatch, library, tmp_path)
    await copy.start(core.local_path(str(tmp_path / "dst")))
    [partial] = (tmp_path / "dst").iterdir()
    assert is_temp(partial.name) and partial.stat().st_size >= 19 * MiB
    flip(partial, 9 * MiB + 5)  # in the third block of what was kept
    record = await copy.resume()
    assert sha256(tmp_path / "dst" / "disk.img") == sha256(copy.src / "disk.img")
    assert copy.starts == [0, 2 * localcopy.KEPT_BLOCK]  # copied again from the damaged block on
    assert record.result.bytes == 40 * MiB
    assert os.listdir(tmp_path / "dst") == ["disk.img"]


async def test_a_paused_local_copy_that_is_canceled_leaves_no_partial_file(
    core: Core,
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "disk.img").write_bytes(os.urandom(24 * MiB))
    monkeypatch.setattr(localcopy, "RANGE_CHUNK", MiB)
    real = os.copy_file_range
    job_id = ""

    def pausing(sfd: int, dfd: int, count: int) -> int:
        library.jobs.pause(job_id)
        return real(sfd, dfd, count)

    monkeypatch.setattr(os, "copy_file_range", pausing)
    job_id = await ops.copy(library, [core.local_path(str(src))], core.local_path(str(tmp_path / "dst")))
    assert (await library.jobs.wait(job_id)).state == "paused"
    assert [p for p in os.listdir(tmp_path / "dst") if is_temp(p)]  # kept for a resume
    library.jobs.cancel(job_id)
    assert (await library.jobs.wait(job_id)).state == "canceled"
    assert os.listdir(tmp_path / "dst") == []


async def test_a_copy_stopped_for_a_week_gives_up_its_partial_file_when_another_copy_starts(
    two_devices: tuple[Core, SdPath], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    core, remote = two_devices
    library = core.library()
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(16 * MiB))
    job_id = await PausedCopy(monkeypatch, library).start([core.local_path(str(big))], remote)
    [partial] = (tmp_path / "inbox").iterdir()
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.txt").write_text("b")

    record = await library.jobs.wait(
        await ops.copy(library, [core.local_path(str(tmp_path / "a.txt"))], remote)
    )
    assert record.state == "completed", record.error
    await transfer.discard_stale_partials(library)
    assert partial.exists()  # paused a moment ago: kept for the resume

    with library.write() as db:  # the user forgets the paused copy for eight days
        db.execute("UPDATE jobs SET updated = updated - 8 * 86400 WHERE id = ?", (job_id,))
    record = await library.jobs.wait(
        await ops.copy(library, [core.local_path(str(tmp_path / "b.txt"))], remote)
    )
    assert record.state == "completed", record.error
    for _ in range(200):
        if not partial.exists():
            break
        await asyncio.sleep(0.05)
    assert not partial.exists()  # swept, in the background of the new copy

    await library.jobs.resume(job_id)  # the forgotten copy still carries on, from the first byte
    record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert sha256(tmp_path / "inbox" / "video.mkv") == sha256(big)
    assert sorted(os.listdir(tmp_path / "inbox")) == ["a.txt", "b.txt", "video.mkv"]


async def test_a_copy_canceled_while_the_device_is_off_has_its_partial_file_swept_once_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(16 * MiB))
    (tmp_path / "note.txt").write_text("later")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with (
        device_network(tmp_path / "a", "alpha") as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta)
        port = alpha.port
        async with Core(tmp_path / "b") as core:
            core.network = beta
            library = core.library()
            remote = SdPath(alpha.device.id, str(inbox))
            job_id = await PausedCopy(monkeypatch, library).start([core.local_path(str(big))], remote)
            [partial] = inbox.iterdir()

            await alpha.close()  # alpha goes off; the user cancels the copy meanwhile
            library.jobs.cancel(job_id)
            assert (await library.jobs.wait(job_id)).state == "canceled"
            assert partial.exists()

            back = Network(alpha.device, alpha.bus)
            await back.start(f"127.0.0.1:{port}")
            try:
                note = core.local_path(str(tmp_path / "note.txt"))
                record = await library.jobs.wait(await ops.copy(library, [note], remote))
                assert record.state == "completed", record.error
                for _ in range(200):
                    if not partial.exists():
                        break
                    await asyncio.sleep(0.05)
                assert os.listdir(inbox) == ["note.txt"]  # the canceled copy's partial file went
            finally:
                await back.close()


def test_sd_job_resume_sends_again_what_was_damaged_in_the_partial_file_of_a_served_device(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def pair_with_beta() -> None:
        async with (
            device_network(tmp_path / "a", "alpha", listen=False) as alpha,
            device_network(tmp_path / "b", "beta", listen=False) as beta,
        ):
            await beta.start(f"127.0.0.1:{port}")
            await pair(beta, alpha)

    asyncio.run(pair_with_beta())
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    server = subprocess.Popen(
        [str(SD), "--data-dir", str(tmp_path / "b"), "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        while not (line := server.stdout.readline()).startswith("serving ") and line:
            pass
        big = tmp_path / "film.mkv"
        with big.open("wb") as f:
            for _ in range(10):
                f.write(os.urandom(16 * MiB))
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        copy = subprocess.Popen(
            [str(SD), "--data-dir", str(tmp_path / "a"), "cp", str(big), f"beta:{inbox}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and copy.poll() is None:
            partials = [p for p in inbox.iterdir() if p.name.endswith(".sdpart")]
            if partials and partials[0].stat().st_size >= 16 * MiB:
                copy.send_signal(signal.SIGINT)  # the user presses Ctrl-C: the copy pauses
                break
            time.sleep(0.005)
        _, err = copy.communicate(timeout=60)
        paused = re.search(r"job (\w+) paused", err)
        assert paused, err
        [partial] = inbox.iterdir()
        assert partial.stat().st_size > 6 * MiB
        flip(partial, 5 * MiB + 3)  # 17 bytes of what beta kept are damaged

        resumed = subprocess.run(
            [str(SD), "--data-dir", str(tmp_path / "a"), "job", "resume", paused.group(1)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert resumed.returncode == 0 and "completed" in resumed.stdout, resumed.stderr + resumed.stdout
        assert sha256(inbox / "film.mkv") == sha256(big)  # byte-identical
        assert os.listdir(inbox) == ["film.mkv"]
    finally:
        server.terminate()
        server.wait(10)
