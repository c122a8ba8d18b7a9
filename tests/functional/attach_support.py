"""What the tests of an attached front end share: a core served on its control socket with a client attached,
a raw session on that socket for hostile frames, and `sd serve` in a process of its own."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

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
