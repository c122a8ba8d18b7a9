"""Spacedrop between paired devices, and OpenSSH's sftp/scp against the device server, confined by trust."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore.events import DropOffered
from sdcore.net import Network, PermissionDenied, RemoteFS
from sdcore.net.testing import device_network, pair


async def test_drop_lands_in_the_spacedrop_folder(tmp_path: Path) -> None:
    async with (
        device_network(tmp_path / "a", "alpha", auto_accept_drops=True) as a,
        device_network(tmp_path / "b", "beta") as b,
    ):
        await pair(a, b, host_trust="shared")  # Spacedrop works even for a device with shared trust
        photo = tmp_path / "photo.jpg"
        photo.write_bytes(os.urandom(2_500_000))
        note = tmp_path / "note.txt"
        note.write_text("hi")
        assert await b.drop("alpha", [str(photo), str(note)]) == ["photo.jpg", "note.txt"]
        await b.drop("alpha", [str(note)])  # a second drop of the same name does not overwrite
        landed = a.spacedrop_dir
        assert (landed / "photo.jpg").read_bytes() == photo.read_bytes()
        assert sorted(p.name for p in landed.iterdir()) == ["note (1).txt", "note.txt", "photo.jpg"]


async def test_the_receiver_accepts_or_declines(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        f = tmp_path / "f.txt"
        f.write_text("payload")

        async def answer(accept: bool) -> DropOffered:
            with a.bus.subscribe(DropOffered) as offers:
                event = await asyncio.wait_for(offers.__anext__(), 5)
            assert isinstance(event, DropOffered)
            a.answer_drop(event.drop_id, accept)
            return event

        declining = asyncio.create_task(answer(False))
        await asyncio.sleep(0)
        with pytest.raises(Exception, match="alpha declined the files"):
            await b.drop("alpha", [str(f)])
        event = await declining
        assert event.names == ("f.txt",) and event.device_name == "beta" and event.total_bytes == 7
        assert not a.spacedrop_dir.exists()

        accepting = asyncio.create_task(answer(True))
        await asyncio.sleep(0)
        await b.drop("alpha", [str(f)])
        await accepting
        assert (a.spacedrop_dir / "f.txt").read_text() == "payload"


async def test_a_drop_takes_only_the_accepted_names_inside_the_folder(tmp_path: Path) -> None:
    async with (
        device_network(tmp_path / "a", "alpha", auto_accept_drops=True) as a,
        device_network(tmp_path / "b", "beta") as b,
    ):
        await pair(a, b)
        link = b.link("alpha")
        token = await link.call("drop_offer", names=[b"../../escaped.txt"], sizes=[4])
        assert token

        async def one() -> AsyncIterator[bytes]:
            yield b"evil"

        with pytest.raises(PermissionDenied, match="not among the files accepted"):
            await link.call("drop_open", drop=token, name=b"other.txt")
        with pytest.raises(PermissionDenied):
            await link.call("drop_open", drop="drop-999", name=b"../../escaped.txt")
        handle = await link.call("drop_open", drop=token, name=b"../../escaped.txt")
        await RemoteFS(link)._send(handle, one())
        assert (a.spacedrop_dir / "escaped.txt").read_bytes() == b"evil"
        assert not (tmp_path / "escaped.txt").exists()
        with pytest.raises(PermissionDenied):  # each accepted name once
            await link.call("drop_open", drop=token, name=b"../../escaped.txt")


needs_openssh = pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH client not installed")


async def _openssh(
    tool: str, server: Network, client: Network, tmp_path: Path, *args: str
) -> tuple[int, str]:
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {server.public_key}\n")
    opts = [
        "-i", str(client.device.data_dir / "device_key"), "-P", str(server.port),
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-F", "/dev/null",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        tool, *opts, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, out.decode(errors="replace")


@needs_openssh
async def test_openssh_sftp_and_scp_with_full_trust(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b)
        src = tmp_path / "src.bin"
        src.write_bytes(os.urandom(300_000))
        batch = tmp_path / "batch"
        batch.write_text(f"get {src} {tmp_path / 'got.bin'}\nput {src} {tmp_path / 'put.bin'}\n")
        code, out = await _openssh("sftp", a, b, tmp_path, "-b", str(batch), "me@127.0.0.1")
        assert code == 0, out
        assert (tmp_path / "got.bin").read_bytes() == src.read_bytes()
        assert (tmp_path / "put.bin").read_bytes() == src.read_bytes()
        code, out = await _openssh("scp", a, b, tmp_path, f"me@127.0.0.1:{src}", str(tmp_path / "scp.bin"))
        assert code == 0, out
        assert (tmp_path / "scp.bin").read_bytes() == src.read_bytes()


@needs_openssh
async def test_openssh_sftp_is_confined_for_shared_trust(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b, host_trust="shared")
        share = tmp_path / "share"
        share.mkdir()
        (share / "ok.txt").write_text("fine")
        (tmp_path / "private.txt").write_text("private")
        os.symlink(tmp_path / "private.txt", share / "escape")
        a.trust.add_share(str(share))
        ok = tmp_path / "ok-batch"
        ok.write_text(f"get {share / 'ok.txt'} {tmp_path / 'got-ok.txt'}\n")
        code, out = await _openssh("sftp", a, b, tmp_path, "-b", str(ok), "me@127.0.0.1")
        assert code == 0, out
        assert (tmp_path / "got-ok.txt").read_text() == "fine"
        for path in ("/etc/passwd", str(share / ".." / "private.txt"), str(share / "escape")):
            bad = tmp_path / "bad-batch"
            bad.write_text(f"get {path} {tmp_path / 'stolen'}\n")
            code, out = await _openssh("sftp", a, b, tmp_path, "-b", str(bad), "me@127.0.0.1")
            assert code != 0, out
            assert not (tmp_path / "stolen").exists()


@needs_openssh
async def test_openssh_with_an_unpaired_key_is_refused(tmp_path: Path) -> None:
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "c", "mallory") as c:
        batch = tmp_path / "batch"
        batch.write_text("ls /\n")
        code, out = await _openssh("sftp", a, c, tmp_path, "-b", str(batch), "me@127.0.0.1")
        assert code != 0
        assert "Permission denied" in out
