"""The control socket under a flood: silent connections, too many of them, frames that swell once read,
and a system that cannot tell who connects."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import sys
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sdcore import control
from sdcore.api import Api, wire
from sdcore.api import server as api_server
from sdcore.api.client import RemoteApi, attach
from sdcore.api.server import serve
from sdcore.control import Call, ControlServer, peer_uid
from sdcore.core import Core
from sdcore.errors import SdError
from sdcore.sdpath import SdPath
from tests.functional.attach_support import answer_and_peak, raw_session


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ControlServer, RemoteApi]]:
    """A real core served on its control socket, a client attached to it, and a toy command `echo`."""
    async with Core(tmp_path / "data") as core:
        server = ControlServer(core.data_dir)
        serve(server, Api(core))

        async def echo(session: control.Session, **args: object) -> object:
            return args

        server.register("echo", echo)
        await server.start()
        api = await attach(core.data_dir)
        assert api is not None
        try:
            yield server, api
        finally:
            await api.close()
            await server.close()


def _empty_lists(count: int, per_list: int = 100_000) -> bytes:
    """About `count` empty msgpack arrays, in arrays of `per_list`: a byte each on the wire, 64 bytes once read."""
    lists = count // per_list
    inner = b"\xdd" + struct.pack(">I", per_list) + b"\x90" * per_list
    return b"\xdd" + struct.pack(">I", lists) + inner * lists


async def test_a_connection_that_says_nothing_gives_its_place_back(
    served: tuple[ControlServer, RemoteApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    monkeypatch.setattr(control, "FIRST_FRAME", 0.5)
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    await asyncio.sleep(0.1)
    assert len(server._clients) == 2  # the attached client and the silent one
    told = await asyncio.wait_for(control._read(reader), 5)
    assert "nothing asked within" in told["error"]
    assert await reader.read() == b""  # and closed
    await asyncio.sleep(0.05)
    assert len(server._clients) == 1
    writer.close()


async def test_past_the_cap_a_new_connection_is_told_so_and_those_served_go_on(
    served: tuple[ControlServer, RemoteApi], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server, api = served
    monkeypatch.setattr(control, "MAX_CLIENTS", 5)
    held = [await asyncio.open_unix_connection(str(server.path)) for _ in range(4)]  # with `api`: five
    await asyncio.sleep(0.1)
    with pytest.raises(SdError, match="serves 5 connections already: close some"):
        call = await Call.open(server.path.parent, "echo", said="hi")
        async for _ in call.answers():
            pass
    with pytest.raises(SdError, match="refused: the core serves 5 connections already"):
        await attach(server.path.parent)  # a second explorer
    assert (await api.stat(SdPath(api.device.id, str(tmp_path)))).kind == "dir"  # those in keep being served
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    call = await Call.open(server.path.parent, "echo", said="hi")  # a place is free again
    assert [answer async for answer in call.answers()] == [(True, {"said": "hi"})]


async def test_a_first_frame_of_empty_lists_is_refused_before_it_swells(
    served: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    server, api = served
    body = _empty_lists(control.CLIENT_FRAME - 1000)  # 16 MiB: 1 GiB once read
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    tracemalloc.start()
    try:
        writer.write(struct.pack(">I", len(body)) + body)
        told = await asyncio.wait_for(control._read(reader), 30)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too big" in told["error"] and "64 MiB" in told["error"]
    assert peak < 120 << 20, f"{peak >> 20} MiB"
    assert (await api.stat(SdPath(api.device.id, str(tmp_path)))).kind == "dir"
    writer.close()


async def test_a_first_frame_over_16_mib_is_refused_before_it_is_read(served: tuple[ControlServer, RemoteApi]) -> None:
    server, _ = served
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    writer.write(struct.pack(">I", 64 << 20))  # it held 64 MiB for each of up to 128 connections
    told = await asyncio.wait_for(control._read(reader), 5)
    assert told["error"] == f"a frame of {64 << 20} bytes on the control socket (at most {16 << 20})"
    writer.close()


async def test_an_api_request_of_empty_lists_is_refused_before_it_swells_and_the_session_goes_on(
    served: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    server, api = served
    reader, writer = await raw_session(server)
    body = _empty_lists(api_server.MAX_REQUEST - 1000)  # read whole, it took over 1 GiB
    answer, peak = await answer_and_peak(reader, writer, body)
    assert answer["error"][0] == "WireError" and "too big" in answer["error"][1], answer
    assert peak < 120 << 20, f"{peak >> 20} MiB"
    here = SdPath(api.device.id, str(tmp_path))
    writer.write(wire.frame({"id": 2, "chain": [["get", "stat"], ["call", [here], {}]]}))
    answer = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 10))
    assert answer["id"] == 2 and answer["done"].kind == "dir"
    writer.close()


async def test_records_full_of_empty_lists_are_counted_too(
    served: tuple[ControlServer, RemoteApi], tmp_path: Path
) -> None:
    import msgpack

    server, api = served
    reader, writer = await raw_session(server)
    inner = msgpack.ExtType(4, _empty_lists(200_000))  # a tuple, decoded by the ext hook
    body = wire._pack([inner] * 60)  # 12 MiB: 770 MiB once read
    answer, peak = await answer_and_peak(reader, writer, body)
    assert answer["error"][0] == "WireError" and "too big" in answer["error"][1], answer
    assert peak < 120 << 20, f"{peak >> 20} MiB"
    writer.close()


async def test_a_copy_of_a_hundred_thousand_paths_is_read_whole(tmp_path: Path) -> None:
    """What a person may send in one request (F5 on every file of a big folder) is within the budget."""
    from sdcore import unpacking

    device = uuid.uuid4()
    paths = [SdPath(device, f"/home/me/photos/2026/img_{i:06d}.jpg") for i in range(100_000)]
    body = wire.encode({"id": 1, "chain": [["get", "ops"], ["get", "copy"], ["call", [paths, paths[0]], {}]]})
    with unpacking.bounded(api_server.MAX_DECODED) as read:
        assert len(wire.decode(body)["chain"][2][1][0]) == 100_000
    assert read.spent < api_server.MAX_DECODED * 3 // 4, read.spent >> 20


async def test_requests_held_in_flight_count_against_the_clients_cap(
    served: tuple[ControlServer, RemoteApi], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, api = served
    monkeypatch.setattr(api_server, "MAX_QUEUED", 4 << 20)
    reader, writer = await raw_session(server)
    device = api.device.id
    never = SdPath(device, str(tmp_path / "nowhere"))
    paths = [SdPath(device, f"{tmp_path}/some/long/enough/name/{i:06d}") for i in range(10_000)]
    for rid in (1, 2):  # each waits (an events stream holds its arguments) and takes about 3 MiB once read
        events = {"id": rid, "chain": [["get", "events"], ["call", [], {}]], "stream": True, "pad": paths}
        writer.write(wire.frame(events))
    writer.write(wire.frame({"id": 3, "chain": [["get", "stat"], ["call", [never], {}]]}))
    answers = {}
    while len(answers) < 2:
        message = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 10))
        answers[message["id"]] = message
    assert "too much at once" in answers[2]["error"][1], answers[2]
    assert answers[3]["error"][0] == "NotFound"  # a small one still passes
    writer.close()


class _Socket:
    """A socket as getsockopt sees it: it answers with the credentials the kernel would give."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.asked: list[tuple[int, int, int]] = []

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        self.asked.append((level, option, size))
        return self.answer


def test_macos_asks_local_peercred_for_the_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    sock = _Socket(struct.pack("IIh2x16I", 0, 501, 1, *[20] + [0] * 15))  # struct xucred of uid 501
    assert peer_uid(sock) == 501  # type: ignore[arg-type]
    assert sock.asked == [(0, 0x001, 76)]  # SOL_LOCAL, LOCAL_PEERCRED, sizeof(struct xucred)


def test_linux_asks_so_peercred_for_the_uid() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()


async def test_where_nobody_can_tell_who_connects_the_core_serves_nobody(
    served: tuple[ControlServer, RemoteApi], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = served
    reader, writer = await asyncio.open_unix_connection(str(server.path))
    monkeypatch.setattr(sys, "platform", "sunos5")  # neither SO_PEERCRED nor LOCAL_PEERCRED: the check was skipped
    writer.write(struct.pack(">I", 1) + b"\x80")
    told = await asyncio.wait_for(control._read(reader), 5)
    assert "cannot tell on sunos5 which user" in told["error"]
    writer.close()
    with pytest.raises(SdError, match="cannot tell"):
        await attach(server.path.parent)  # nor does a client trust a core it cannot check
