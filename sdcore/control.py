"""The local control socket: `sd` commands hand network work to the core already running for a data dir."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from sdcore.errors import SdError
from sdcore.net.frames import FrameWriter, decode_error, encode_error, read_frame

SOCKET_NAME = "control.sock"

# A handler gets the request's arguments and a `reply` to send zero or more interim answers;
# what it returns is the final answer.
Handler = Callable[..., Awaitable[Any]]


class ControlServer:
    """Listens on `DATA_DIR/control.sock` (owner-only) and runs registered commands."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / SOCKET_NAME
        self.handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None

    def register(self, command: str, handler: Handler) -> None:
        self.handlers[command] = handler

    async def start(self) -> None:
        if await is_running(self.path.parent):
            raise SdError(f"a core is already running for {self.path.parent}; stop it first (or use it)")
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o077)
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        out = FrameWriter(writer)
        try:
            request = await read_frame(reader)
            handler = self.handlers.get(str(request.get("cmd")))
            if handler is None:
                raise SdError(f"the running core does not know {request.get('cmd')!r}")

            async def reply(data: Any) -> None:
                await out.send({"more": data})

            result = await handler(reply, **request.get("args", {}))
            await out.send({"done": result})
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:
            with contextlib.suppress(ConnectionError):
                await out.send({"error": encode_error(exc)})
        finally:
            writer.close()


async def is_running(data_dir: Path) -> bool:
    """Whether a core is listening on this data dir's control socket."""
    try:
        _, writer = await asyncio.open_unix_connection(str(Path(data_dir) / SOCKET_NAME))
    except OSError:
        return False
    writer.close()
    return True


async def call(data_dir: Path, command: str, **args: Any) -> AsyncIterator[tuple[bool, Any]]:
    """Run `command` in the core running for `data_dir`: yields (final?, answer) pairs; raises its errors."""
    reader, writer = await asyncio.open_unix_connection(str(Path(data_dir) / SOCKET_NAME))
    try:
        await FrameWriter(writer).send({"cmd": command, "args": args})
        while True:
            try:
                frame = await read_frame(reader)
            except asyncio.IncompleteReadError:
                raise SdError("the running core closed the control socket") from None
            if "error" in frame:
                raise decode_error(frame["error"])
            if "done" in frame:
                yield True, frame["done"]
                return
            yield False, frame["more"]
    finally:
        writer.close()
