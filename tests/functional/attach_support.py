"""What the tests of an attached front end share: a core served on its control socket with a client attached,
a raw session on that socket for hostile frames, and `sd serve` in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sdcore.api import Api, wire
from sdcore.api.client import RemoteApi, attach
from sdcore.api.server import COMMAND, serve
from sdcore.control import ControlServer
from sdcore.core import Core

SD = str(Path(sys.executable).parent / "sd")


@contextlib.asynccontextmanager
async def attached(core: Core, library: str | None = None) -> AsyncIterator[tuple[ControlServer, RemoteApi]]:
    """`core`'s API served on its control socket, and a client attached to it (`library`: the one it names)."""
    control = ControlServer(core.data_dir)
    serve(control, Api(core))
    await control.start()
    try:
        api = await attach(core.data_dir, library=library)
        assert api is not None
        try:
            yield control, api
        finally:
            await api.close()
    finally:
        await control.close()


async def raw_session(control: ControlServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the control socket made an API session by hand (its hello read), to send any bytes."""
    reader, writer = await asyncio.open_unix_connection(str(control.path))
    writer.write(wire.frame({"cmd": COMMAND, "args": {}}))
    assert "hello" in wire.decode(await wire.read_frame(reader, 1 << 20))
    return reader, writer


async def answer_and_peak(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
) -> tuple[Any, int]:
    """The answer to one frame of `body` sent as it is, and the most memory Python held until it came."""
    tracemalloc.start()
    try:
        writer.write(struct.pack(">I", len(body)) + body)
        answer = wire.decode(await asyncio.wait_for(wire.read_frame(reader, 1 << 20), 30))
        return answer, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def sd_serve(data_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`sd serve` on `data_dir`, in a process of its own, on a free port of 127.0.0.1, once it listens."""
    server = subprocess.Popen(
        [SD, "--data-dir", str(data_dir), "serve", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert server.stdout is not None
    line = server.stdout.readline()
    assert line.startswith("serving "), line + (server.stderr.read() if server.stderr else "")
    return server
