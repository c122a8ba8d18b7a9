"""Attacks of a paired device on a real `sd serve` (127.0.0.1): escaping a share by a race, setuid
files, exhausting descriptors and memory; and stock OpenSSH sftp/scp working inside a share."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sdcore.errors import SdError
from sdcore.fs import beneath
from sdcore.net import Network
from sdcore.net.frames import pack_frame
from sdcore.net.rpc_server import MAX_HANDLES
from sdcore.net.testing import device_network, pair
from tests.functional.ssh_support import free_port

SD = Path(sys.executable).parent / "sd"
TRIES = 60


@dataclass
class Served:
    """beta's `sd serve` on 127.0.0.1, sharing `share` with alpha and gamma (both `shared` trust)."""

    tmp: Path
    port: int
    proc: subprocess.Popen[str]
    share: Path

    @property
    def rss(self) -> int:
        """The server's resident memory, in bytes."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    @asynccontextmanager
    async def client(self, who: str = "a") -> AsyncIterator[Network]:
        async with device_network(self.tmp / who, {"a": "alpha", "c": "gamma"}[who], listen=False) as net:
            yield net


async def _pair_all(tmp: Path, port: int) -> None:
    async with (
        device_network(tmp / "a", "alpha", listen=False) as alpha,
        device_network(tmp / "b", "beta", listen=False) as beta,
        device_network(tmp / "c", "gamma", listen=False) as gamma,
    ):
        await beta.start(f"127.0.0.1:{port}")
        await pair(beta, alpha, host_trust="shared")
        await pair(beta, gamma, host_trust="shared")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    asyncio.run(_pair_all(tmp_path, port))
    share = tmp_path / "share"
    share.mkdir()
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg-b")}
    subprocess.run([SD, "--data-dir", str(tmp_path / "b"), "share", "add", str(share)], check=True, env=env)
    proc = subprocess.Popen(
        [SD, "--data-dir", str(tmp_path / "b"), "serve", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    seen = []
    while not seen or not seen[-1].startswith("serving "):
        line = proc.stdout.readline()
        assert line, f"`sd serve` did not start: {''.join(seen)}"
        seen.append(line)
    try:
        yield Served(tmp_path, port, proc, share)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def connect_as(served: Served, who: str = "a", **kw: object) -> Any:  # what `async with` and `await` take
    """An SSH connection to the served device as a paired device (alpha: "a"; its key proven), as a raw client."""
    key = asyncssh.read_private_key(served.tmp / who / "device_key")
    return asyncssh.connect(
        "127.0.0.1", served.port, username="sd", client_keys=[key], known_hosts=None, agent_path=None, config=None, **kw
    )


def _b(p: Path | str) -> bytes:
    return os.fsencode(str(p))


async def _race(
    net: Network,
    method: str,
    paths: list[Path],
    swap_in: Path,
    swap_out: Path,
    device: str = "beta",
    **args: Any,
) -> list[Any]:
    """Send `method` for each path and, right behind them on the same connection, a rename that puts a
    symlink where the paths go through (after they were checked, before they are used); then take it
    away again. The answers to the attempts."""
    link = net.link(device)
    *got, _ = await asyncio.gather(
        *[link.call(method, path=_b(p), **args) for p in paths],
        link.call("rename", src=_b(swap_out), dst=_b(swap_in)),
        return_exceptions=True,
    )
    await link.call("rename", src=_b(swap_in), dst=_b(swap_out))
    return got


def _owner_up_link(served: Served) -> tuple[Path, Path]:
    """The owner's ordinary `docs/old/up -> ../..` (the share itself). The attacker may move `old` up
    to the top of the share, where `old/up` is the share's parent. Returns (where `old` is, where it goes)."""
    (served.share / "docs" / "old").mkdir(parents=True)
    (served.share / "docs" / "old" / "up").symlink_to("../..")
    return served.share / "docs" / "old", served.share / "old"


def test_a_shared_device_cannot_read_outside_by_a_swapped_symlink(served: Served) -> None:
    (served.tmp / "secret.txt").write_text("the owner's secret")
    home, swapped = _owner_up_link(served)

    async def attack() -> list[Any]:
        answers = []
        async with served.client() as net:
            for _ in range(TRIES):
                attempts = [swapped / "up" / "secret.txt"] * 4
                answers += await _race(net, "read_open", attempts, swapped, home, length=100)
        return answers

    answers = asyncio.run(attack())
    assert [a[1] for a in answers if isinstance(a, list)] == []  # not one byte of it
    assert all("outside the folders" in str(a) or "no such file" in str(a) for a in answers)


def test_a_shared_device_cannot_list_outside_by_a_swapped_symlink(served: Served) -> None:
    (served.tmp / "secret.txt").write_text("the owner's secret")
    home, swapped = _owner_up_link(served)

    async def attack() -> list[Any]:
        answers = []
        async with served.client() as net:
            for _ in range(TRIES):
                answers += await _race(net, "list_open", [swapped / "up"] * 4, swapped, home)
        return answers

    assert [a for a in asyncio.run(attack()) if isinstance(a, list)] == []


@pytest.mark.parametrize("method", ["delete", "trash"])
def test_a_shared_device_cannot_delete_outside_by_a_swapped_symlink(served: Served, method: str) -> None:
    home, swapped = _owner_up_link(served)
    victims = [served.tmp / f"victim-{i}.txt" for i in range(TRIES * 4)]
    for v in victims:
        v.write_text("keep me")

    async def attack() -> None:
        async with served.client() as net:
            for i in range(0, len(victims), 4):
                await _race(net, method, [swapped / "up" / v.name for v in victims[i : i + 4]], swapped, home)

    asyncio.run(attack())
    assert [v.name for v in victims if not v.exists()] == []
    assert (served.share / "docs" / "old" / "up").is_symlink()  # the attacker's renames were allowed


async def test_the_descriptor_walk_holds_against_the_same_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the kernel has no openat2, the server walks the path itself: the same attack fails."""
    monkeypatch.setattr(beneath, "_have_openat2", False)
    share = tmp_path / "share"
    (share / "docs" / "old").mkdir(parents=True)
    (share / "docs" / "old" / "up").symlink_to("../..")
    (tmp_path / "secret.txt").write_text("the owner's secret")
    async with device_network(tmp_path / "a", "alpha") as a, device_network(tmp_path / "b", "beta") as b:
        await pair(a, b, host_trust="shared")
        a.trust.add_share(str(share))
        answers = []
        for _ in range(TRIES):
            attempts = [share / "old" / "up" / "secret.txt"] * 4
            answers += await _race(
                b, "read_open", attempts, share / "old", share / "docs" / "old", "alpha", length=100
            )
            answers += await _race(
                b, "list_open", [share / "old" / "up"] * 4, share / "old", share / "docs" / "old", "alpha"
            )
    assert [a for a in answers if isinstance(a, list)] == []
    assert all("outside the folders" in str(a) or "no such file" in str(a) for a in answers)


def test_a_shared_device_can_still_follow_links_that_stay_in_the_share(served: Served) -> None:
    (served.share / "docs").mkdir()
    (served.share / "docs" / "a.txt").write_text("inside")
    (served.share / "docs" / "here").symlink_to(".")
    (served.share / "to-docs").symlink_to("docs/here")

    async def use() -> None:
        async with served.client() as net:
            fs = net.fs_for("beta")
            assert (
                b"".join([c async for c in fs.open_read(str(served.share / "to-docs" / "a.txt"))])
                == b"inside"
            )
            names = {
                e.name
                for batch in [b async for b in fs.list_dir(str(served.share / "to-docs"))]
                for e in batch
            }
            assert names == {"a.txt", "here"}
            await fs.mkdir(str(served.share / "to-docs" / "new" / "deeper"), parents=True)
            await fs.delete(str(served.share / "to-docs"))  # the link itself, not what it leads to

    asyncio.run(use())
    assert (served.share / "docs" / "new" / "deeper").is_dir()
    assert not (served.share / "to-docs").exists() and (served.share / "docs" / "a.txt").exists()


def test_a_shared_peer_writing_a_setuid_file_gets_plain_permissions(served: Served) -> None:
    async def write() -> None:
        async with served.client() as net:
            link = net.link("beta")
            await link.call("write_file", path=_b(served.share / "tool"), data=b"#!/bin/sh\n", mode=0o104755)
            handle = await link.call("write_open", path=_b(served.share / "big"), mode=0o6777)
            await link.call("write_chunk", handle=handle, offset=0, data=b"x" * 10)
            await link.call("write_close", handle=handle)

    asyncio.run(write())
    assert stat.S_IMODE((served.share / "tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((served.share / "big").stat().st_mode) == 0o777


def test_a_shared_peer_writing_many_files_at_once_stays_in_the_share_and_replaces_nothing(served: Served) -> None:
    outside = served.tmp / "outside"
    outside.mkdir()
    (outside / "victim.txt").write_text("the owner's")
    (served.share / "taken.txt").write_text("the owner's file")
    (served.share / "link.txt").symlink_to(outside / "planted.txt")  # a name that leads out of the share

    async def write() -> list[Any]:
        async with served.client() as net:
            link = net.link("beta")
            told = await link.call("write_files", files=[
                [_b(served.share / "new.txt"), b"fine", 1_600_000_000, 0o104755],
                [_b(outside / "victim.txt"), b"overwritten", None, None],
                [_b(served.share / ".." / "outside" / "evil.txt"), b"escaped", None, None],
                [_b(served.share / "taken.txt"), b"replaced", None, None],
                [_b(served.share / "link.txt"), b"through the link", None, None],
                [_b(served.share), b"the share itself", None, None],
            ])  # fmt: skip
            for malformed in (
                [[_b(served.share / "n"), "not bytes", None, None]],
                [[_b(served.share / f"n{i}"), b"", None, None] for i in range(257)],
                "not a list",
            ):
                with pytest.raises(SdError, match="write_files wants"):
                    await link.call("write_files", files=malformed)
            return list(told)

    told = asyncio.run(write())
    assert told[0] == [True, 4]
    assert [(ok, error["type"]) for ok, error in told[1:]] == [
        (False, "PermissionDenied"), (False, "PermissionDenied"), (False, "AlreadyExists"), (False, "AlreadyExists"),
        (False, "FsError"),
    ]  # fmt: skip
    new = (served.share / "new.txt").stat()
    assert (stat.S_IMODE(new.st_mode), new.st_mtime) == (0o755, 1_600_000_000)  # no setuid from a peer
    assert (outside / "victim.txt").read_text() == "the owner's"
    assert sorted(os.listdir(outside)) == ["victim.txt"]  # nothing written through the link or by '..'
    assert (served.share / "taken.txt").read_text() == "the owner's file"
    assert sorted(os.listdir(served.share)) == ["link.txt", "new.txt", "taken.txt"]  # nothing else, no temp file


@asynccontextmanager
async def _sftp(served: Served, who: str = "a") -> AsyncIterator[asyncssh.SFTPClient]:
    async with connect_as(served, who) as conn, conn.start_sftp_client() as sftp:
        yield sftp


def test_sftp_chmod_and_open_modes_lose_setuid_and_owners_never_change(served: Served) -> None:
    async def attack() -> None:
        async with _sftp(served) as sftp:
            target = str(served.share / "tool")
            async with sftp.open(target, "wb", attrs=asyncssh.SFTPAttrs(permissions=0o4755)) as f:
                await f.write(b"#!/bin/sh\n")
            assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
            await sftp.chmod(target, 0o6755)
            assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
            await sftp.mkdir(str(served.share / "d"), asyncssh.SFTPAttrs(permissions=0o1777))
            assert not os.stat(served.share / "d").st_mode & 0o7000
            with pytest.raises(asyncssh.SFTPPermissionDenied, match="owner"):
                await sftp.chown(target, 12345, 12345)

    asyncio.run(attack())


def test_sftp_cannot_escape_by_symlinks_it_makes_or_finds(served: Served) -> None:
    (served.tmp / "secret.txt").write_text("the owner's secret")
    home, swapped = _owner_up_link(served)

    async def attack() -> None:
        async with _sftp(served) as sftp:
            for target in ("../secret.txt", str(served.tmp / "secret.txt"), "docs/../../secret.txt"):
                with pytest.raises(asyncssh.SFTPPermissionDenied):
                    await sftp.symlink(target, str(served.share / "mine"))
            await sftp.symlink("docs", str(served.share / "ok-link"))  # one that stays inside is fine
            await sftp.rename(str(home), str(swapped))  # the owner's `../..` link now leads out of the share
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.open(str(swapped / "up" / "secret.txt"))
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.listdir(str(swapped / "up"))
            with pytest.raises(asyncssh.SFTPPermissionDenied):
                await sftp.remove(str(swapped / "up" / "secret.txt"))
            assert (await sftp.lstat(str(swapped / "up"))).type == asyncssh.FILEXFER_TYPE_SYMLINK

    asyncio.run(attack())
    assert (served.tmp / "secret.txt").exists()
    assert os.readlink(served.share / "ok-link") == "docs"


def test_one_client_cannot_take_every_descriptor_of_the_server(served: Served) -> None:
    (served.share / "f.txt").write_text("x")
    (served.share / "d").mkdir()

    async def flood() -> None:
        async with served.client() as net:
            link = net.link("beta")
            results = []
            for start in range(0, 20_000, 1000):  # a thousand requests pipelined at a time
                batch = [link.call("read_open", path=_b(served.share / "f.txt")) for _ in range(1000)]
                results += await asyncio.gather(*batch, return_exceptions=True)
                if start == 0:
                    with pytest.raises(SdError, match=f"holds {MAX_HANDLES} files and listings open"):
                        await link.call("list_open", path=_b(served.share), batch_size=1)
            opened = [r for r in results if isinstance(r, list)]
            refused = [r for r in results if not isinstance(r, list)]
            assert len(opened) == MAX_HANDLES and len(refused) == 20_000 - MAX_HANDLES
            assert "close some before opening more" in str(refused[0])
            async with served.client("c") as other:  # another device is served all along
                names = [
                    e.name
                    for b in [b async for b in other.fs_for("beta").list_dir(str(served.share))]
                    for e in b
                ]
                assert sorted(names) == ["d", "f.txt"]
            await link.call("read_close", handle=opened[0][0])  # a handle closed is one more to open
            assert isinstance(await link.call("read_open", path=_b(served.share / "f.txt")), list)

    asyncio.run(flood())


def test_pipelined_requests_whose_replies_are_never_read_do_not_grow_the_server(served: Served) -> None:
    for i in range(40):
        (served.share / f"file-with-a-long-name-{i:04d}.txt").write_text("x")

    async def flood() -> int:
        async with connect_as(served) as conn:
            writer, reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
            frame = pack_frame([1, "list_open", {"path": _b(served.share), "batch_size": 1000}])
            for _ in range(200):  # a warm-up read in full: the server's worker threads are there before
                writer.write(frame)
            for _ in range(200):
                await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big"))
            await asyncio.sleep(1)
            before = served.rss
            for i in range(15_000):
                writer.write(frame)
                if i % 500 == 0:
                    await asyncio.sleep(0)  # let it go out; the client never reads a reply
            await asyncio.sleep(5)
            grown = served.rss - before
            assert served.proc.poll() is None
            return grown

    grown = asyncio.run(flood())
    assert grown < 8 << 20, f"the server grew by {grown / 2**20:.1f} MiB"


needs_openssh = pytest.mark.skipif(shutil.which("sftp") is None, reason="OpenSSH client not installed")


async def _openssh(served: Served, tool: str, *args: str) -> tuple[int, str]:
    known = served.tmp / "known_hosts"
    host_key = asyncssh.read_private_key(served.tmp / "b" / "device_key").export_public_key().decode()
    known.write_text(f"[127.0.0.1]:{served.port} {host_key.strip()}\n")
    opts = [
        "-i", str(served.tmp / "a" / "device_key"), "-P", str(served.port),
        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes", "-F", "/dev/null",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        tool, *opts, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(errors="replace")


@needs_openssh
def test_openssh_sftp_lists_every_folder_of_a_share_and_removes_an_outward_link(served: Served) -> None:
    share = served.share
    (share / "sub" / "deeper").mkdir(parents=True)
    (share / "sub" / "a.txt").write_text("a")
    (served.tmp / "private.txt").write_text("private")
    (share / "escape").symlink_to(served.tmp / "private.txt")
    batch = served.tmp / "batch"
    batch.write_text(
        f"ls {share}\nls -la {share}/sub\ncd {share}/sub/deeper\nls\ncd ..\nls -l\nrm {share}/escape\n"
    )

    code, out = asyncio.run(_openssh(served, "sftp", "-b", str(batch), "me@127.0.0.1"))
    assert code == 0, out
    assert "a.txt" in out and "deeper" in out
    assert not (share / "escape").is_symlink()  # the link is gone
    assert (served.tmp / "private.txt").read_text() == "private"  # not what it pointed to


@needs_openssh
@pytest.mark.parametrize("mode", [["-O"], []], ids=["scp-protocol", "sftp-protocol"])
def test_openssh_scp_copies_folders_in_and_out_of_a_share(served: Served, mode: list[str]) -> None:
    share = served.share
    (share / "album" / "2024").mkdir(parents=True)
    (share / "album" / "2024" / "p.jpg").write_bytes(os.urandom(70_000))
    (share / "album" / "note.txt").write_text("hi")
    os.chmod(share / "album" / "note.txt", 0o640)
    got = served.tmp / "got"

    code, out = asyncio.run(_openssh(served, "scp", *mode, "-r", f"me@127.0.0.1:{share}/album", str(got)))
    assert code == 0, out
    assert (got / "2024" / "p.jpg").read_bytes() == (share / "album" / "2024" / "p.jpg").read_bytes()
    assert (got / "note.txt").read_text() == "hi"

    setuid = got / "2024" / "run"
    setuid.write_text("#!/bin/sh\n")
    os.chmod(setuid, 0o4755)
    code, out = asyncio.run(_openssh(served, "scp", *mode, "-rp", str(got), f"me@127.0.0.1:{share}/back"))
    assert code == 0, out
    assert (share / "back" / "2024" / "p.jpg").read_bytes() == (
        share / "album" / "2024" / "p.jpg"
    ).read_bytes()
    assert stat.S_IMODE((share / "back" / "2024" / "run").stat().st_mode) == 0o755

    code, out = asyncio.run(_openssh(served, "scp", *mode, "-r", str(got), f"me@127.0.0.1:{served.tmp}/out"))
    assert code != 0, out
    assert not (served.tmp / "out").exists()


def test_sftp_handles_are_capped_per_connection_and_others_are_served(served: Served) -> None:
    (served.share / "f.txt").write_text("x")

    async def flood() -> None:
        async with _sftp(served) as sftp:
            files = []
            with pytest.raises(asyncssh.SFTPFailure, match=f"holds {MAX_HANDLES} files and folders open"):
                for _ in range(MAX_HANDLES + 50):
                    files.append(await sftp.open(str(served.share / "f.txt")))
            assert len(files) == MAX_HANDLES
            with pytest.raises(asyncssh.SFTPFailure, match="close some first"):
                await sftp.listdir(str(served.share))
            async with _sftp(served, "c") as other:  # another device is served all along
                assert "f.txt" in await other.listdir(str(served.share))
            await files.pop().close()
            assert "f.txt" in await sftp.listdir(str(served.share))  # a listing ended is closed too
            assert "f.txt" in await sftp.listdir(str(served.share))

    asyncio.run(flood())


async def raw_sftp(conn: asyncssh.SSHClientConnection) -> tuple[Any, Callable[[], Awaitable[bytes]]]:
    """An sftp channel spoken by hand, past its INIT: (writer, a reader of the next reply packet)."""
    writer, reader, _ = await conn.open_session(subsystem="sftp", encoding=None)

    async def reply() -> bytes:
        return await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big"))

    writer.write(_sftp_packet(1, _u32(3)))  # INIT, version 3
    await reply()
    return writer, reply


def _sftp_packet(kind: int, *fields: bytes) -> bytes:
    body = bytes([kind]) + b"".join(fields)
    return len(body).to_bytes(4, "big") + body


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _string(b: bytes) -> bytes:
    return _u32(len(b)) + b


def test_sftp_reads_whose_replies_are_never_read_do_not_grow_the_server(served: Served) -> None:
    (served.share / "big.bin").write_bytes(os.urandom(32768))

    async def flood() -> int:
        async with connect_as(served) as conn:
            writer, reply = await raw_sftp(conn)
            writer.write(
                _sftp_packet(3, _u32(1), _string(_b(served.share / "big.bin")), _u32(1), _u32(0))
            )  # OPEN
            handle = (await reply())[5:]
            await asyncio.sleep(1)
            before = served.rss
            read = _sftp_packet(5, _u32(2), handle, (0).to_bytes(8, "big"), _u32(32768))
            for i in range(3000):  # 96 MiB of answers, never read
                writer.write(read)
                if i % 100 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(5)
            assert served.proc.poll() is None
            return served.rss - before

    grown = asyncio.run(flood())
    assert grown < 8 << 20, f"the server grew by {grown / 2**20:.1f} MiB"


def test_a_client_that_hangs_up_mid_flood_leaves_no_descriptor_open(served: Served) -> None:
    (served.share / "f.txt").write_text("x")
    (served.share / "d").mkdir()
    fds = Path(f"/proc/{served.proc.pid}/fd")

    async def flood() -> None:
        key = asyncssh.read_private_key(served.tmp / "a" / "device_key")
        for _ in range(5):
            async with asyncssh.connect(
                "127.0.0.1",
                served.port,
                username="sd",
                client_keys=[key],
                known_hosts=None,
                agent_path=None,
                config=None,
            ) as conn:
                writer, _reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
                for i in range(300):
                    method, path = ("read_open", "f.txt") if i % 2 else ("list_open", "d")
                    writer.write(pack_frame([i, method, {"path": _b(served.share / path)}]))
                await asyncio.sleep(0.05)  # some answered, some opening in worker threads: then hang up

    async def settle(before: int) -> int:
        for _ in range(50):
            if len(list(fds.iterdir())) <= before:
                break
            await asyncio.sleep(0.1)
        return len(list(fds.iterdir()))

    async def scenario() -> tuple[int, int]:
        async with served.client() as net:  # the server's own threads and sockets exist before counting
            await net.link("beta").call("stat", path=_b(served.share))
        await asyncio.sleep(0.5)
        before = len(list(fds.iterdir()))
        await flood()
        return before, await settle(before)

    before, after = asyncio.run(scenario())
    assert after <= before, f"{after - before} descriptors left open"


def test_an_sftp_rename_keeps_a_file_at_the_new_name_unless_told_to_replace_it(served: Served) -> None:
    (served.share / "draft.txt").write_text("draft")
    (served.share / "final.txt").write_text("the owner's final")

    async def rename() -> None:
        async with _sftp(served) as sftp:
            with pytest.raises(asyncssh.SFTPError, match="File already exists"):  # SFTP v3 says it as a failure
                await sftp.rename(str(served.share / "draft.txt"), str(served.share / "final.txt"))
            assert (served.share / "final.txt").read_text() == "the owner's final"
            await sftp.posix_rename(str(served.share / "draft.txt"), str(served.share / "final.txt"))

    asyncio.run(rename())
    assert (served.share / "final.txt").read_text() == "draft" and not (served.share / "draft.txt").exists()
