"""`sd serve` (on 127.0.0.1) gives back every descriptor a connection held once it is gone: folders opened
by mistake as files over SFTP, and whatever a client that stopped reading its replies had in flight."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncssh
import pytest
import test_net_attacks_confine
from test_net_attacks_confine import Served, connect_as

from sdcore.net.frames import pack_frame, read_frame
from sdcore.net.rpc_server import MAX_IN_FLIGHT

served = test_net_attacks_confine.served  # beta's real `sd serve`, sharing a folder with alpha


def _open_descriptors(served: Served) -> list[str]:
    fds = Path(f"/proc/{served.proc.pid}/fd")
    names = []
    for fd in fds.iterdir():
        try:
            names.append(os.readlink(fd))
        except OSError:
            pass  # closed while listed
    return names


async def _settled(served: Served, before: list[str], seconds: float = 3.0) -> list[str]:
    """The server's descriptors once back to `before` (or what is open after `seconds`): cleanup is prompt."""
    now = _open_descriptors(served)
    for _ in range(int(seconds / 0.1)):
        if len(now) <= len(before):
            break
        await asyncio.sleep(0.1)
        now = _open_descriptors(served)
    return now


async def _baseline(served: Served) -> list[str]:
    """The server's descriptors with its threads, logs and listening sockets already made."""
    async with connect_as(served) as conn, conn.start_sftp_client() as sftp:
        await sftp.listdir(str(served.share))
    await asyncio.sleep(0.5)
    return _open_descriptors(served)


def _leaked(before: list[str], after: list[str]) -> list[str]:
    return sorted(set(after) - set(before)) or after[len(before) :]


def test_opening_a_shared_folder_as_a_file_over_sftp_leaves_no_descriptor_open(served: Served) -> None:
    (served.share / "d").mkdir()

    async def scenario() -> tuple[list[str], list[str]]:
        before = await _baseline(served)
        async with connect_as(served) as conn, conn.start_sftp_client() as sftp:
            for _ in range(20):
                with pytest.raises(asyncssh.SFTPError):
                    await sftp.open(str(served.share / "d"), "rb")  # a folder: refused
            assert await sftp.listdir(str(served.share)) == [".", "..", "d"]  # the connection still serves
        return before, await _settled(served, before)

    before, after = asyncio.run(scenario())
    assert len(after) <= len(before), f"left open: {_leaked(before, after)}"


def test_a_client_that_stops_reading_and_hangs_up_gets_everything_it_held_freed(served: Served) -> None:
    """The server stops reading once MAX_IN_FLIGHT requests wait for their replies; a client hanging up
    then is noticed all the same, and its open files, listings and writes are closed."""
    (served.share / "big").write_bytes(os.urandom(4 << 20))
    (served.share / "d").mkdir()
    for i in range(50):
        (served.share / "d" / f"f{i}").write_text("x")

    async def scenario() -> tuple[list[str], list[str]]:
        before = await _baseline(served)
        for round_ in range(3):
            async with connect_as(served) as conn:
                writer, _reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
                for i in range(4 * MAX_IN_FLIGHT):  # replies never read: 4 MiB each fill every window
                    method, args = [
                        ("read_open", {"path": os.fsencode(served.share / "big"), "length": 4 << 20}),
                        ("list_open", {"path": os.fsencode(served.share / "d"), "batch_size": 1}),
                        ("write_open", {"path": os.fsencode(served.share / f"w{round_}-{i}")}),
                    ][i % 3]
                    writer.write(pack_frame([i, method, args]))
                await asyncio.sleep(1.0)
                sftp = await conn.start_sftp_client()  # and SFTP files and listings, left open
                for _ in range(10):
                    await sftp.open(str(served.share / "big"), "rb")
                    await sftp._handler.opendir(os.fsencode(served.share / "d"))
                held = len(_open_descriptors(served)) - len(before)
                assert held >= MAX_IN_FLIGHT, f"only {held} open: the flood did not reach the server"
                writes_begun = len(list(served.share.glob(f".w{round_}-*.sdtmp-*")))
                assert writes_begun < 4 * MAX_IN_FLIGHT // 3, "the server read every request: none waits"
                conn.abort()  # hang up, with the server no longer reading (MAX_IN_FLIGHT unanswered)
        return before, await _settled(served, before)

    before, after = asyncio.run(scenario())
    assert len(after) <= len(before), f"left open: {_leaked(before, after)}"
    assert sorted(p.name for p in served.share.iterdir()) == ["big", "d"]  # no temporary file left behind


def test_reads_sent_before_a_close_never_answer_with_another_files_bytes(served: Served) -> None:
    """Reads of a handle queued for worker threads, then its close, then an open of another file (which
    gets the lowest free descriptor number): the reads answer with the first file, never the second."""
    (served.share / "mine").write_bytes(b"m" * (1 << 20))
    (served.share / "other").write_bytes(b"o" * (1 << 20))

    async def scenario() -> list[object]:
        async with connect_as(served) as conn:
            writer, reader, _ = await conn.open_session(subsystem="sd-rpc", encoding=None)
            writer.write(
                pack_frame([1, "read_open", {"path": os.fsencode(served.share / "mine"), "length": 1}])
            )
            [_, ok, (handle, _)] = await read_frame(reader)
            assert ok and handle
            reads = 40  # more than the worker threads: most wait in their queue with the descriptor's number
            for i in range(reads):
                writer.write(pack_frame([10 + i, "read", {"handle": handle, "offset": 0, "length": 1 << 20}]))
            writer.write(pack_frame([2, "read_close", {"handle": handle}]))
            writer.write(
                pack_frame([3, "read_open", {"path": os.fsencode(served.share / "other"), "length": 1}])
            )
            answers = {}
            while len(answers) < reads + 2:
                rid, ok, result = await read_frame(reader)
                answers[rid] = result if ok else "error"
            return [answers[10 + i] for i in range(reads)]

    answers = asyncio.run(scenario())
    assert not [a for a in answers if isinstance(a, bytes) and a.startswith(b"o")], "another file's bytes"
    assert answers == [b"m" * (1 << 20)] * len(answers)  # each read sent before the close is answered
