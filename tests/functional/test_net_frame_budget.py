"""A paired device's frame that would swell once read: refused before it does, and the server serves on."""

from __future__ import annotations

import asyncio
import struct
import time
from typing import Any

import test_net_attacks_confine as confine
from test_net_attacks_confine import Served, _b, connect_as

from sdcore.net.frames import pack_frame

served = confine.served  # beta's `sd serve` sharing a folder with alpha and gamma (shared trust)


def _empty_lists(count: int, per_list: int = 100_000) -> bytes:
    """About `count` empty msgpack arrays, in arrays of `per_list`: a byte each on the wire, 64 bytes once read."""
    inner = b"\xdd" + struct.pack(">I", per_list) + b"\x90" * per_list
    return b"\xdd" + struct.pack(">I", count // per_list) + inner * (count // per_list)


def test_a_frame_of_empty_lists_from_a_shared_device_neither_swells_nor_stalls_the_server(served: Served) -> None:
    async def stat(reader: Any, writer: Any) -> float:
        started = time.monotonic()
        writer.write(pack_frame([1, "stat", {"path": _b(served.share)}]))
        size = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), 120), "big")
        assert b"share" in await reader.readexactly(size)
        return time.monotonic() - started

    async def attack() -> tuple[int, float]:
        async with connect_as(served, "a") as alpha, connect_as(served, "c") as gamma:
            writer, reader, _ = await alpha.open_session(subsystem="sd-rpc", encoding=None)
            other = await gamma.open_session(subsystem="sd-rpc", encoding=None)
            await stat(other[1], other[0])
            before = served.rss
            body = _empty_lists(32 << 20)  # 32 MiB: 2 GiB once read, and most of a minute of the server's loop
            writer.write(struct.pack(">I", len(body)) + body)
            judged = asyncio.ensure_future(reader.read())  # the server drops alpha once it has read the frame
            grown, waited = 0, 0.0
            while not judged.done():
                waited = max(waited, await stat(other[1], other[0]))  # gamma, meanwhile
                grown = max(grown, served.rss - before)
                await asyncio.wait({judged}, timeout=0.1)
            assert served.proc.poll() is None
            return grown, waited

    grown, waited = asyncio.run(asyncio.wait_for(attack(), 240))
    assert waited < 5, f"gamma waited {waited:.0f} s for one stat"
    assert grown < 400 << 20, f"the server grew by {grown >> 20} MiB"
