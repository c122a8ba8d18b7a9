"""A copy from a paired device, carried on after a pause, under attack: a device that lies about what it
reads, and links planted where the partial file lies. What lands is the source or nothing, and only there."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sdcore import ops
from sdcore.core import Core
from sdcore.fs.resumable import partial_path
from sdcore.net.rpc_server import RpcSession
from sdcore.net.testing import device_network, pair
from sdcore.ops import engine
from sdcore.sdpath import SdPath
from tests.functional.ssh_support import paired_core

MiB = 1 << 20


@dataclass
class Copy:
    """A copy of a big file of device alpha into a folder of this device (beta), paused two thirds of the way."""

    core: Core
    source: Path
    here: Path
    job_id: str = ""
    reads: list[int] | None = None  # where each read of the source began

    @property
    def landed(self) -> Path:
        return self.here / self.source.name

    def partial(self) -> Path:
        [name] = [n for n in os.listdir(self.here) if n.endswith(".sdpart")]
        return self.here / name

    async def resume(self) -> Any:
        library = self.core.library()
        await library.jobs.resume(self.job_id)
        return await library.jobs.wait(self.job_id)


@pytest.fixture
async def paused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Copy]:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    async with paired_core(tmp_path) as (core, alpha):
        (tmp_path / "served").mkdir()
        (tmp_path / "here").mkdir()
        source = tmp_path / "served" / "video.mkv"
        source.write_bytes(os.urandom(24 * MiB))
        copy = Copy(core, source, tmp_path / "here", reads=[])
        library = core.library()
        real_read = engine._read

        async def pausing_read(fs: Any, path: str, offset: int = 0) -> AsyncIterator[bytes]:
            assert copy.reads is not None
            copy.reads.append(offset)
            sent = 0
            async for chunk in real_read(fs, path, offset):
                yield chunk
                sent += len(chunk)
                if len(copy.reads) == 1 and sent >= 16 * MiB:
                    library.jobs.pause(copy.job_id)

        monkeypatch.setattr(engine, "_read", pausing_read)
        remote = SdPath(alpha.device.id, str(source))
        copy.job_id = await ops.copy(library, [remote], core.local_path(str(copy.here)))
        assert (await library.jobs.wait(copy.job_id)).state == "paused"
        assert 8 * MiB <= copy.partial().stat().st_size < 24 * MiB
        yield copy


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lie_in_reads(monkeypatch: pytest.MonkeyPatch, lie: Any) -> None:
    """Device alpha answers each read with `lie(offset, data)` instead of the bytes it read."""
    real_read, real_open = RpcSession.rpc_read, RpcSession.rpc_read_open

    async def rpc_read(self: RpcSession, handle: int, offset: int, length: int) -> bytes:
        return lie(offset, await real_read(self, handle, offset, length))  # type: ignore[no-any-return]

    async def rpc_read_open(self: RpcSession, path: bytes, offset: int = 0, length: int = 0) -> list[Any]:
        handle, data = await real_open(self, path, offset, length)
        return [handle, lie(offset, data)]

    monkeypatch.setattr(RpcSession, "rpc_read", rpc_read)
    monkeypatch.setattr(RpcSession, "rpc_read_open", rpc_read_open)


async def test_a_device_that_sends_more_than_asked_gets_nothing_written(
    paused: Copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    lie_in_reads(monkeypatch, lambda offset, data: data + b"\0" * 100 if offset >= 16 * MiB else data)
    record = await paused.resume()
    assert record.state == "failed" and "sent more than it was asked for" in record.error, record.error
    assert not paused.landed.exists()  # it was the source's bytes with 100 more after each chunk: neither


async def test_a_device_that_sends_less_than_asked_mid_file_gets_nothing_written(
    paused: Copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    lie_in_reads(monkeypatch, lambda offset, data: data[:-100] if offset >= 16 * MiB else data)
    record = await paused.resume()
    assert record.state == "failed" and "changed while it was copied" in record.error, record.error
    assert not paused.landed.exists()  # it was a source cut short, called copied


async def test_a_device_whose_file_shrank_while_its_size_stayed_is_told(
    paused: Copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_stat = RpcSession.rpc_stat
    stat = paused.source.stat()
    with paused.source.open("r+b") as f:
        f.truncate(20 * MiB)
    os.utime(paused.source, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    async def rpc_stat(self: RpcSession, path: bytes) -> list[Any]:
        entry = await real_stat(self, path)
        if entry[0] == b"video.mkv":
            entry[2] = 24 * MiB  # the size it had when the copy began
        return entry

    monkeypatch.setattr(RpcSession, "rpc_stat", rpc_stat)
    record = await paused.resume()
    assert record.state == "failed" and "changed while it was copied" in record.error, record.error
    assert not paused.landed.exists()


async def test_a_device_that_reads_one_file_for_the_check_and_another_for_the_rest_is_caught(
    paused: Copy, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert paused.reads is not None

    def lie(offset: int, data: bytes) -> bytes:
        if paused.reads is not None and len(paused.reads) >= 3:  # the reads of the rest, after the check
            return bytes(b ^ 0x5A for b in data)
        return data

    lie_in_reads(monkeypatch, lie)
    record = await paused.resume()
    assert paused.reads[1:] == [0, paused.reads[2]] and paused.reads[2] > 0  # checked, then carried on
    assert record.state == "failed" and "did not match" in record.error, record.error
    assert not paused.landed.exists()  # the kept bytes of one file and the rest of another: neither


async def test_a_file_changed_in_place_with_its_mtime_kept_is_copied_as_it_is_now(paused: Copy) -> None:
    stat = paused.source.stat()
    with paused.source.open("r+b") as f:  # both in the part beta kept and in the rest
        for at in (1 * MiB, 20 * MiB):
            f.seek(at)
            f.write(os.urandom(4096))
    os.utime(paused.source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    record = await paused.resume()
    assert record.state == "completed", record.error
    assert sha256(paused.landed) == sha256(paused.source)


async def test_a_partial_file_replaced_by_a_symlink_is_not_followed_and_the_copy_carries_on(
    paused: Copy, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"mine" * 1000)
    partial = paused.partial()
    partial.unlink()
    partial.symlink_to(precious)  # it failed: "Too many levels of symbolic links", and so on every resume
    record = await paused.resume()
    assert record.state == "completed", record.error
    assert sha256(paused.landed) == sha256(paused.source)
    assert precious.read_bytes() == b"mine" * 1000
    assert not paused.landed.is_symlink() and os.listdir(paused.here) == ["video.mkv"]


async def test_a_partial_file_replaced_by_a_hard_link_to_another_file_leaves_that_file_alone(
    paused: Copy, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"mine" * 1000)
    partial = paused.partial()
    partial.unlink()
    os.link(precious, partial)  # it was carried on: cut to nothing, and the copy written into precious.txt
    record = await paused.resume()
    assert record.state == "completed", record.error
    assert sha256(paused.landed) == sha256(paused.source)
    assert precious.read_bytes() == b"mine" * 1000


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
async def test_a_partial_file_another_user_owns_is_not_carried_on(paused: Copy) -> None:
    partial = paused.partial()
    os.chown(partial, 65534, 65534)
    partial.chmod(0o666)  # another user's file we may write: the finished copy would stay theirs to change
    record = await paused.resume()
    assert record.state == "completed", record.error
    assert paused.landed.stat().st_uid == os.geteuid()
    assert sha256(paused.landed) == sha256(paused.source)


async def test_a_leftover_temp_file_that_is_a_symlink_is_not_written_through(tmp_path: Path) -> None:
    from sdcore.fs.local import LocalFS

    precious = tmp_path / "precious.txt"
    precious.write_bytes(b"mine")
    target = tmp_path / "small.txt"
    (tmp_path / f".small.txt.sdtmp-{os.getpid()}").symlink_to(precious)  # its name is known: the pid

    async def chunks() -> AsyncIterator[bytes]:
        yield b"the copy"

    assert await LocalFS().write_atomic(str(target), chunks()) == 8
    assert target.read_bytes() == b"the copy" and precious.read_bytes() == b"mine"
    assert partial_path(str(target)) not in os.listdir(tmp_path)


async def test_a_partial_file_on_a_device_replaced_by_a_hard_link_leaves_the_linked_file_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other way: this device sends, and on the device that receives someone with a hand in the folder
    put a hard link to another file of that device's user where the partial file lay."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    big = tmp_path / "video.mkv"
    big.write_bytes(os.urandom(24 * MiB))
    precious = tmp_path / "alphas-own.txt"
    precious.write_bytes(b"mine" * 1000)
    async with paired_core(tmp_path) as (core, alpha):
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        library = core.library()
        real_read = engine._read
        job_id, reads = "", 0

        async def pausing_read(fs: Any, path: str, offset: int = 0) -> AsyncIterator[bytes]:
            nonlocal reads
            reads += 1
            sent = 0
            async for chunk in real_read(fs, path, offset):
                yield chunk
                sent += len(chunk)
                if reads == 1 and sent >= 16 * MiB:
                    library.jobs.pause(job_id)

        monkeypatch.setattr(engine, "_read", pausing_read)
        job_id = await ops.copy(library, [core.local_path(str(big))], SdPath(alpha.device.id, str(inbox)))
        assert (await library.jobs.wait(job_id)).state == "paused"
        [partial] = inbox.iterdir()
        partial.unlink()
        os.link(precious, partial)  # it was carried on: cut to nothing, and the copy written into it
        await library.jobs.resume(job_id)
        record = await library.jobs.wait(job_id)
    assert record.state == "completed", record.error
    assert precious.read_bytes() == b"mine" * 1000
    assert sha256(inbox / "video.mkv") == sha256(big)


@pytest.mark.parametrize("name", ["../../outside.txt", "/tmp/sd-absolute.txt", "sub/inner.txt", ".."])
async def test_a_device_that_lists_a_name_that_is_not_one_gets_nothing_written_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "served" / "folder"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("what the lie names, there")
    here = tmp_path / "h1" / "h2"  # the folder lands in h2: ../../outside.txt is h1/outside.txt
    here.mkdir(parents=True)
    real_open = RpcSession.rpc_list_open

    async def rpc_list_open(self: RpcSession, path: bytes, batch_size: int = 1000) -> list[Any]:
        handle, first = await real_open(self, path, batch_size)
        for entry in first or []:
            if entry[0] == b"a.txt":
                entry[0] = os.fsencode(name)
        return [handle, first]

    monkeypatch.setattr(RpcSession, "rpc_list_open", rpc_list_open)
    async with paired_core(tmp_path) as (core, alpha):
        library = core.library()
        job_id = await ops.copy(library, [SdPath(alpha.device.id, str(folder))], core.local_path(str(here)))
        record = await library.jobs.wait(job_id)
    assert record.state == "failed" and "which is not a name" in record.error, record.error
    assert sorted(p.name for p in (tmp_path / "h1").rglob("*")) in (["h2"], ["folder", "h2"])
    assert not Path("/tmp/sd-absolute.txt").exists()


async def test_a_setuid_file_of_a_device_lands_here_without_its_setuid_bit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "served").mkdir()
    (tmp_path / "here").mkdir()
    small, big = tmp_path / "served" / "tool", tmp_path / "served" / "big-tool"
    small.write_bytes(b"#!/bin/sh\n")
    big.write_bytes(os.urandom(engine.RESUMABLE_FROM))
    for tool in (small, big):
        tool.chmod(0o6755)  # a peer's setuid root shell, were beta's core root
    async with paired_core(tmp_path) as (core, alpha):
        library = core.library()
        sources = [SdPath(alpha.device.id, str(tool)) for tool in (small, big)]
        record = await library.jobs.wait(await ops.copy(library, sources, core.local_path(str(tmp_path / "here"))))
    assert record.state == "completed", record.error
    assert {p.name: p.stat().st_mode & 0o7777 for p in (tmp_path / "here").iterdir()} == {
        "tool": 0o755, "big-tool": 0o755,
    }  # fmt: skip


async def test_a_device_that_lists_a_folder_without_end_is_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdcore.fs import base
    from sdcore.fs.base import EntryInfo
    from sdcore.net import remote_fs, rpc_server

    def endless(opener: Any, batch_size: int) -> Any:
        n = 0
        while True:  # a hostile device: a folder whose names never run out
            yield [EntryInfo(f"f{i}", "file", 0, 0.0, i, 0o100644) for i in range(n, n + batch_size)]
            n += batch_size

    monkeypatch.setattr(rpc_server, "_listing", endless)
    monkeypatch.setattr(base, "MAX_LISTED", 5_000)
    async with (
        device_network(tmp_path / "a", "alpha") as alpha,
        device_network(tmp_path / "b", "beta") as beta,
    ):
        await pair(alpha, beta)
        got = 0
        with pytest.raises(remote_fs.ProtocolError, match=r"the other device listed more than 5,000 entries in /srv"):
            async for batch in beta.fs_for(alpha.device.id).list_dir("/srv"):
                got += len(batch)
                if got > 50_000:
                    pytest.fail("the endless listing was taken on and on")
        assert got <= 5_000
