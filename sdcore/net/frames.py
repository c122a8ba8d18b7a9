"""Length-prefixed msgpack frames over an SSH channel, and errors carried across it."""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Protocol

import msgpack

from sdcore import unpacking
from sdcore.errors import AlreadyExists, NotFound, SdError
from sdcore.fs.base import AccessDenied, FsError
from sdcore.sdpath import display

MAX_FRAME = 64 << 20
MAX_DECODED = 128 << 20
"""What one frame may take once read: a peer's frame of empty lists would take 64 times its size."""
_LEN = struct.Struct(">I")


class NetError(SdError):
    """A network operation failed; the message says what to check."""


class PermissionDenied(SdError):
    """The other device refused: the path is outside what this device's trust level allows."""


class DeviceUnreachable(NetError):
    """A paired device could not be reached or the connection dropped."""


class NotTrusted(NetError):
    """The other device refused our key, or presented a host key other than the one paired."""


class ProtocolError(NetError):
    """The other side sent something that is not our protocol."""


ERROR_TYPES: dict[str, type[SdError]] = {
    "NotFound": NotFound,
    "AlreadyExists": AlreadyExists,
    "FsError": FsError,
    "AccessDenied": AccessDenied,
    "PermissionDenied": PermissionDenied,
    "NetError": NetError,
}


def encode_error(exc: BaseException) -> dict[str, str]:
    for name, cls in ERROR_TYPES.items():
        if type(exc) is cls:
            return {"type": name, "message": str(exc)}
    if isinstance(exc, PermissionDenied):
        return {"type": "PermissionDenied", "message": str(exc)}
    if isinstance(exc, SdError):
        return {"type": "SdError", "message": str(exc)}
    return {"type": "NetError", "message": f"the other device failed: {type(exc).__name__}: {exc}"}


def decode_error(data: Any, device: str) -> SdError:
    """The error the other device (named `device`, as its paths are written: `beta:/srv`) sent: one that begins with a
    path of that device names it so (`beta:/srv/a: no such file or directory`), not as a path of this one."""
    if not isinstance(data, dict):
        return ProtocolError(f"malformed error from the other device: {data!r}")
    cls = ERROR_TYPES.get(str(data.get("type")), SdError)
    message = display(str(data.get("message", "")))  # the other device wrote it: it may drive a terminal
    return cls(f"{device}:{message}" if message.startswith("/") else message)


class Reader(Protocol):
    async def readexactly(self, n: int) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


async def read_frame(reader: Reader, limit: int | None = None) -> Any:
    """The next frame of at most `limit` bytes (MAX_FRAME); raises asyncio.IncompleteReadError at the end of the stream."""
    limit = MAX_FRAME if limit is None else limit
    (size,) = _LEN.unpack(await reader.readexactly(4))
    if size > limit:
        raise ProtocolError(f"frame of {size} bytes is larger than the limit")
    try:
        return unpacking.unpackb(await reader.readexactly(size), 2 * limit, raw=False, use_list=True)
    except unpacking.Overspent as exc:
        raise ProtocolError(f"a frame too big: {exc}") from None


def pack_frame(obj: Any) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(body)) + body


class FrameWriter:
    """Writes whole frames from many tasks, one at a time, waiting for the channel's window."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._lock = asyncio.Lock()

    async def send(self, obj: Any) -> None:
        body = msgpack.packb(obj, use_bin_type=True)
        async with self._lock:
            self._writer.write(_LEN.pack(len(body)))
            self._writer.write(body)  # not concatenated: a 4 MiB chunk is copied once less
            await self._writer.drain()
