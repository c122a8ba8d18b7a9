"""A hostile paired device's `write_files` (many small new files in one request) on a real `sd serve` (127.0.0.1):
odd names and values, a folder swapped for a link by a second connection, descriptors held, a disk full mid-request."""

from __future__ import annotations

import asyncio
import os
import resource
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_net_attacks_confine
from msgpack import unpackb
from test_net_attacks_confine import Served, _b, connect_as

from sdcore.errors import SdError
from sdcore.net.frames import pack_frame
from sdcore.net.rpc_server import MAX_NEW_FILES

served = test_net_attacks_confine.served  # beta's real `sd serve`, sharing a folder with alpha and gamma


async def _write_files(served: Served, files: list[list[Any]], who: str = "a") -> list[Any]:
    async with served.client(who) as net:
        return list(await net.link("beta").call("write_files", files=files))


def test_names_a_peer_may_send_are_refused_in_one_line_each_and_the_rest_written(served: Served) -> None:
    share = served.share
    (share / "sub").mkdir()
    names = [
        b"relative/name.txt",
        b"",
        _b(share / "nul\0.txt"),
        _b(share) + b"/.",
        _b(share) + b"/sub/",
        _b(share / "sub") + b"/\xff\xfe not utf-8.txt",
        _b(share / ("n" * 300)),
        _b(share) + b"/d" * 2500 + b"/deep.txt",
        _b(share.parent / "outside.txt"),
        _b(share) + b"/../outside.txt",
    ]
    told = asyncio.run(_write_files(served, [[n, b"x", None, None] for n in names]))
    said = [(ok, r if ok else r["type"]) for ok, r in told]
    assert said == [
        (False, "PermissionDenied"), (False, "PermissionDenied"), (False, "PermissionDenied"), (False, "FsError"),
        (False, "AlreadyExists"), (True, 1), (False, "FsError"), (False, "FsError"), (False, "PermissionDenied"),
        (False, "PermissionDenied"),
    ]  # fmt: skip
    assert os.listdir(share / "sub") == [os.fsdecode(b"\xff\xfe not utf-8.txt")]
    assert not (share.parent / "outside.txt").exists()
    assert told[2][1]["message"].endswith("nul\\x00.txt: holds a NUL byte, which no file name can")
    assert "shorten it by 45" in told[6][1]["message"]
    for ok, r in told:
        assert ok or ("\n" not in r["message"] and len(r["message"]) < 400), r


def test_times_no_file_can_have_fail_the_whole_request_before_anything_is_written(served: Served) -> None:
    """NaN, infinite or huge times (which utime refuses) failed the request after the files before them were linked:
    the peer was told nothing was written, and a second try met its own files (AlreadyExists)."""
    share = served.share
    for odd in (float("nan"), float("inf"), -float("inf"), 1e30, 2**63, -(2**63)):
        with pytest.raises(SdError, match="mtime: seconds since 1970, a finite number.*nothing was written"):
            asyncio.run(_write_files(served, [[_b(share / "before.txt"), b"x", None, None],
                                              [_b(share / "odd.txt"), b"x", odd, None]]))  # fmt: skip
        assert os.listdir(share) == []


def test_times_and_modes_a_file_may_have(served: Served) -> None:
    share = served.share
    files = [  # (name, mtime, mode) -> (mode, mtime) it gets
        ("old.txt", -86_400, 0o644), ("future.txt", 4_102_444_800.5, 0o600), ("none.txt", None, None),
        ("setid.txt", 1.0, 0o7755), ("negative.txt", 1.0, -1), ("huge.txt", 1.0, (1 << 63) | 0o640),
    ]  # fmt: skip
    told = asyncio.run(_write_files(served, [[_b(share / n), b"x", t, m] for n, t, m in files]))
    assert told == [[True, 1]] * len(files)
    got = {n: (stat.S_IMODE((share / n).stat().st_mode), (share / n).stat().st_mtime) for n, _, _ in files}
    assert got["old.txt"] == (0o644, -86_400)
    assert got["future.txt"] == (0o600, 4_102_444_800.5)
    assert got["none.txt"][0] == 0o600  # as write_file makes it: only the owner's until told otherwise
    assert got["setid.txt"] == (0o755, 1.0)  # no setuid, setgid or sticky bit from a peer
    assert got["negative.txt"] == (0o777, 1.0)
    assert got["huge.txt"] == (0o640, 1.0)


def _open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_one_request_naming_256_folders_holds_one_at_a_time(served: Served) -> None:
    """Each folder a request wrote to was held open until the request ended: 256 descriptors a request, and 3 such
    requests at once per device. With the server left 64 descriptors, files past about the 60th failed (EMFILE)."""
    folders = [served.share / f"d{i:03}" for i in range(MAX_NEW_FILES)]
    for folder in folders:
        folder.mkdir()
    pid = served.proc.pid

    async def write() -> list[Any]:
        async with served.client() as net:
            link = net.link("beta")
            await link.call("stat", path=_b(served.share))  # connected before the server is short of descriptors
            limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (_open_descriptors(pid) + 64, limits[1]))
            try:
                return list(await link.call("write_files", files=[[_b(f / "x.txt"), b"x", None, None] for f in folders]))
            finally:
                resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)

    told = asyncio.run(write())
    assert [r for r in told if r != [True, 1]] == []
    assert all((f / "x.txt").read_bytes() == b"x" for f in folders)


def test_a_folder_swapped_for_a_link_out_by_a_second_connection_gets_nothing_outside(served: Served) -> None:
    """alpha writes 3 x 256 files into share/d while gamma, on its own connection, swaps d for a link to a folder
    outside the share and back, again and again: each file is in the share's real folder or refused."""
    outside = served.tmp / "outside"
    outside.mkdir()
    real, parked, link = served.share / "d", served.share / "d.real", served.share / "out"
    real.mkdir()
    link.symlink_to(outside)
    done = asyncio.Event()

    async def swap() -> int:
        async with served.client("c") as net:
            beta, swaps = net.link("beta"), 0
            while not done.is_set():
                await beta.call("rename", src=_b(real), dst=_b(parked))
                await beta.call("rename", src=_b(link), dst=_b(real))
                await asyncio.sleep(0)
                await beta.call("rename", src=_b(real), dst=_b(link))
                await beta.call("rename", src=_b(parked), dst=_b(real))
                swaps += 1
            return swaps

    async def write() -> list[Any]:
        told = []
        async with served.client() as net:
            beta = net.link("beta")
            for round_ in range(3):
                files = [[_b(real / f"{round_}-{i}.txt"), b"x", None, None] for i in range(MAX_NEW_FILES)]
                told += await beta.call("write_files", files=files)
        done.set()
        return told

    async def race() -> tuple[list[Any], int]:
        swapper = asyncio.create_task(swap())
        told = await write()
        return told, await swapper

    told, swaps = asyncio.run(race())
    assert swaps > 0
    assert os.listdir(outside) == []
    assert sum(1 for ok, _ in told if ok) == len(os.listdir(real))
    refused = {r["type"] for ok, r in told if not ok}
    assert refused <= {"PermissionDenied", "NotFound"}, told


def _tmpfs_share(served: Served, size: str) -> Iterator[Path]:
    """The share on a tmpfs of `size` (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs these as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(served.share)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield served.share
    finally:
        subprocess.run(["umount", "-l", str(served.share)], check=False)


@pytest.fixture
def full_share(served: Served) -> Iterator[Path]:
    yield from _tmpfs_share(served, "1m")


@pytest.fixture
def memory_share(served: Served) -> Iterator[Path]:
    """On a tmpfs: a flood of writes costs no disk."""
    yield from _tmpfs_share(served, "256m")


def test_a_disk_full_at_the_third_file_leaves_two_whole_files_and_says_so(served: Served, full_share: Path) -> None:
    big = b"b" * (400 << 10)
    names = ["1.bin", "2.bin", "3.bin", "small.txt"]
    told = asyncio.run(_write_files(served, [[_b(full_share / n), big if n != "small.txt" else b"s", None, None] for n in names]))
    assert told[:2] == [[True, len(big)]] * 2 and told[3] == [True, 1]
    assert told[2][1] == {"type": "FsError", "message": f"{full_share / '3.bin'}: no space left on the device"}
    assert sorted(os.listdir(full_share)) == ["1.bin", "2.bin", "small.txt"]  # nothing of the third left behind
    assert (full_share / "2.bin").read_bytes() == big


def test_a_device_flooding_write_files_leaves_another_device_served(served: Served) -> None:
    """alpha sends 24 requests of 256 files at once (each file synced: seconds of work); gamma's listing and its own
    write_files are answered meanwhile (alpha holds at most its 3 worker threads of the server's heavy ones)."""
    for who in "ab":
        (served.share / who).mkdir()

    async def flood() -> list[float]:
        async with served.client("a") as alpha, served.client("c") as gamma:
            a, c = alpha.link("beta"), gamma.link("beta")
            await c.call("stat", path=_b(served.share))
            requests = [
                a.call("write_files", files=[[_b(served.share / "a" / f"{r}-{i}"), b"x", None, None] for i in range(256)])
                for r in range(24)
            ]
            flooding = asyncio.ensure_future(asyncio.gather(*requests))
            waits = []
            for i in range(3):
                await asyncio.sleep(0.1)
                started = time.monotonic()
                await c.call("list_open", path=_b(served.share), batch_size=10)
                assert await c.call("write_files", files=[[_b(served.share / "b" / f"{i}"), b"c", None, None]]) == [
                    [True, 1]
                ]
                waits.append(time.monotonic() - started)
                if i == 0:  # gamma was answered while alpha's requests were still at work (not after them)
                    assert not flooding.done()
            told = await flooding
            assert all(r == [True, 1] for t in told for r in t)
            return waits

    waits = asyncio.run(flood())
    assert max(waits) < 10, waits
    assert len(os.listdir(served.share / "a")) == 24 * 256


def test_refused_files_bytes_do_not_outlive_their_request(served: Served, memory_share: Path) -> None:
    """10 requests of 60 MiB, one after another on one channel, each file refused (its name taken) after it was
    written: each error's traceback held the request's frames, all its bytes among them, in a cycle only the garbage
    collector frees (seldom: big bytes do not count towards a collection). beta grew by 364 MiB for 6 such requests,
    all of them kept; now by about two requests' worth (the one held and the next being read)."""
    for i in range(30):
        (memory_share / f"f{i}").write_text("taken")
    data = b"x" * (2 << 20)
    frame = pack_frame([1, "write_files", {"files": [[_b(memory_share / f"f{i}"), data, None, None] for i in range(30)]}])

    async def flood() -> int:
        async with connect_as(served) as conn:
            before = peak = served.rss
            writer, reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
            for _ in range(10):
                writer.write(frame)
            for _ in range(10):
                told = unpackb(await reader.readexactly(int.from_bytes(await reader.readexactly(4), "big")))
                assert [ok for ok, _ in told[2]] == [False] * 30  # every name taken
                peak = max(peak, served.rss)
            return peak - before

    grown = asyncio.run(flood())
    assert grown < 300 << 20, f"the server grew by {grown >> 20} MiB"
    assert sorted(os.listdir(memory_share)) == sorted(f"f{i}" for i in range(30))  # nothing replaced, nothing left
