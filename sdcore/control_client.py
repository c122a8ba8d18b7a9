"""A command handed to the core behind the control socket, from a process that runs no event loop.

`sd`'s client side (sdtui.cli.forward) sends its command and relays the answers: importing asyncio (and the ssl it
brings) would cost it more CPU than everything else it does. The protocol is sdcore.control's (`Call` there is the
same for code inside an event loop): 4-byte big-endian length, then a msgpack frame.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from pathlib import Path
from typing import Any

import msgpack

from sdcore.errors import SdError

CORE_STOPPED = (
    "the core that ran this command (`sd serve` or sdtui) stopped before it finished; `sd job list` shows any job it "
    "began, which a core resumes when it starts"
)

SOCKET_NAME = "control.sock"
MAX_FRAME = 64 << 20
"""The largest frame a peer may send (a forwarded command's output chunk is 1 MiB)."""
LENGTH = struct.Struct(">I")
TEXT_ERRORS = "surrogatepass"  # a name that is not UTF-8 (a lone surrogate from os.fsdecode) crosses
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)  # <asm/socket.h> on Linux
_XUCRED = struct.Struct("II")  # the head of struct xucred (macOS, BSD): cr_version, cr_uid
XUCRED_SIZE = 76  # the whole struct: version, uid, ngroups, 16 groups
SOL_LOCAL, LOCAL_PEERCRED = 0, 0x001  # <sys/un.h> on macOS and the BSDs


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket: SO_PEERCRED (Linux), LOCAL_PEERCRED (macOS, BSD).

    Raises SdError where the system offers neither: nobody is served on the word of a file mode alone.
    """
    if sys.platform.startswith("linux"):
        _, uid, _ = _CREDENTIALS.unpack(sock.getsockopt(socket.SOL_SOCKET, SO_PEERCRED, _CREDENTIALS.size))
        return int(uid)
    if sys.platform.startswith(("darwin", "freebsd", "dragonfly")):
        _, uid = _XUCRED.unpack_from(sock.getsockopt(SOL_LOCAL, LOCAL_PEERCRED, XUCRED_SIZE))
        return int(uid)
    raise SdError(
        f"sd cannot tell on {sys.platform} which user is at the other end of the control socket, so it serves "
        "nobody there: run one sd or sdtui at a time on a data dir"
    )


def refuse_other_users(sock: socket.socket, path: Path) -> None:
    """Raise SdError unless the core at the other end of `sock` runs as this user: a client trusts no socket another
    user planted."""
    uid = peer_uid(sock)
    if uid != os.getuid():
        raise SdError(
            f"refused: {path} is served by uid {uid}, not by you (uid {os.getuid()}); "
            "use a data dir only you can write to"
        )


def frame(message: Any) -> bytes:
    body = msgpack.packb(message, use_bin_type=True, unicode_errors=TEXT_ERRORS)
    return LENGTH.pack(len(body)) + body


def unframe(data: bytes) -> Any:
    """A frame's message (its body, after the length); SdError when it is not msgpack."""
    try:
        return msgpack.unpackb(data, raw=False, unicode_errors=TEXT_ERRORS)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise SdError(f"a malformed frame on the control socket: {exc}") from None


class BlockingCall:
    """A command running in the core behind a control socket: read its answers one by one, `tell` it things.

    `fileno()` lets a caller wait for the next answer with select, beside other things (Ctrl-C, a line typed).
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    @classmethod
    def open(cls, data_dir: Path, command: str, **args: Any) -> BlockingCall:
        """Send `command`; raises OSError when no core listens on the data dir (none runs, or it died), SdError
        when another user's process does."""
        path = Path(data_dir) / SOCKET_NAME
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            refuse_other_users(sock, path)
            sock.sendall(frame({"cmd": command, "args": args}))
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def fileno(self) -> int:
        return self._sock.fileno()

    def tell(self, message: Any) -> None:
        try:
            self._sock.sendall(frame(message))
        except ConnectionError:
            pass

    def answer(self) -> tuple[bool, Any]:
        """The next (final?, answer), waiting for it; raises the command's error as SdError."""
        try:
            (size,) = LENGTH.unpack(self._exactly(4))
            if size > MAX_FRAME:
                raise SdError(f"a frame of {size} bytes on the control socket (at most {MAX_FRAME})")
            message = unframe(self._exactly(size))
        except (EOFError, ConnectionError):
            raise SdError(CORE_STOPPED) from None
        if not isinstance(message, dict):
            raise SdError("a malformed frame on the control socket: a map expected")
        if "error" in message:
            raise SdError(str(message["error"]))
        if "done" in message:
            return True, message["done"]
        return False, message["more"]

    def _exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._sock.recv(min(size - len(data), 1 << 20))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def close(self) -> None:
        self._sock.close()
