"""The control socket: while a core runs for a data dir, other processes hand it their work there."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack

from sdcore import unpacking
from sdcore.control_client import (
    CORE_STOPPED,
    LENGTH,
    MAX_FRAME,
    SOCKET_NAME,
    TEXT_ERRORS,
    peer_uid,
    refuse_other_users,
)
from sdcore.errors import CoreRunning, SdError

CLIENT_FRAME = 16 << 20
"""The largest frame a client may send (a command's arguments, a line of its input)."""
MAX_DECODED = 64 << 20
"""What one frame from a client may take once read (a frame of empty lists is 64 times its size)."""
MAX_CLIENTS = 128
"""Connections served at once (commands, attached front ends): past it, a new one is told so and closed."""
FIRST_FRAME = 10.0
"""Seconds a new connection has to say what it wants: one that says nothing gives its place back."""
GRACE = 0.25
"""Seconds a closing core gives the commands and clients it serves to finish what they were saying."""
_LEN, _TEXT = LENGTH, TEXT_ERRORS

# A handler gets the Session and the request's arguments; what it returns is the final answer.
Handler = Callable[..., Awaitable[Any]]
# A connection handler takes the connection over after its first frame: (reader, writer, **arguments).
ConnectionHandler = Callable[..., Awaitable[None]]


async def _read(reader: asyncio.StreamReader, from_client: bool = False) -> Any:
    """The next frame; a client's is smaller, and read under a budget of the objects built from it."""
    (size,) = _LEN.unpack(await reader.readexactly(4))
    limit = CLIENT_FRAME if from_client else MAX_FRAME
    if size > limit:
        raise SdError(f"a frame of {size} bytes on the control socket (at most {limit})")
    data = await reader.readexactly(size)
    try:
        if from_client:
            return unpacking.unpackb(data, MAX_DECODED, raw=False, unicode_errors=_TEXT)
        return msgpack.unpackb(data, raw=False, unicode_errors=_TEXT)
    except unpacking.Overspent as exc:
        raise SdError(f"a frame too big on the control socket: {exc}") from None
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise SdError(f"a malformed frame on the control socket: {exc}") from None


def _peer(writer: asyncio.StreamWriter) -> int:
    sock = writer.get_extra_info("socket")
    if sock is None:
        raise SdError("the control socket's connection has no socket to ask who is at its other end")
    return peer_uid(sock)


def check_core(writer: asyncio.StreamWriter, path: Path) -> None:
    """Raise unless the core at the other end runs as this user: a client trusts no socket another user planted."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is None:
            raise SdError("the control socket's connection has no socket to ask who is at its other end")
        refuse_other_users(sock, path)
    except SdError:
        writer.close()
        raise


async def _send(writer: asyncio.StreamWriter, message: Any) -> None:
    body = msgpack.packb(message, use_bin_type=True, unicode_errors=_TEXT)
    writer.write(_LEN.pack(len(body)) + body)
    await writer.drain()


class Session:
    """One client of the control socket as its handler sees it: answers go out, messages come in."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self.on_message: Callable[[Any], None] | None = None
        """Called with each message the client sends while its request runs (e.g. a Ctrl-C)."""
        self.holds_core = False
        """Whether its core, closing, should let it finish (a command's work) rather than end it (a monitor)."""

    async def send(self, answer: Any) -> None:
        """An interim answer (the handler's return value is the final one)."""
        await _send(self._writer, {"more": answer})


class ControlServer:
    """Listens on `DATA_DIR/control.sock` (owner-only) and runs registered commands.

    A request's work is canceled when its client goes away or the server closes.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / SOCKET_NAME
        self.handlers: dict[str, Handler] = {}
        self.connection_handlers: dict[str, ConnectionHandler] = {}
        self._server: asyncio.AbstractServer | None = None
        self._lock: int | None = None
        self._clients: dict[asyncio.Task[Any], Session] = {}
        self.finish_commands = False
        """Whether closing waits for the commands it carries out (a foreground `sd` that hosted others' commands)."""
        self.on_finishing: Callable[[int], None] | None = None
        """Told how many commands closing waits for."""
        self.attached = 0
        """API clients attached now (an explorer there can answer what the core asks, e.g. a Spacedrop)."""
        self.on_unasked: Callable[[str], None] | None = None
        """Told of a Spacedrop (its drop id) once every attached client that was asked it has gone, answered or not:
        a core with nobody else to ask answers for them (the sender need not wait for the timeout)."""

    def register(self, command: str, handler: Handler) -> None:
        self.handlers[command] = handler

    def register_connection(self, command: str, handler: ConnectionHandler) -> None:
        """`command` turns its connection into a session of its own, run by `handler(reader, writer, **args)`."""
        self.connection_handlers[command] = handler

    async def start(self) -> None:
        running = CoreRunning(f"a core is already running for {self.path.parent}; stop it first (or use it)")
        lock = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:  # the claim, held on the data dir while serving: checking the socket first is a race
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise running from None
        try:
            if await is_running(self.path.parent):  # a core of a version that did not take the lock
                raise running
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left by a core that died
            self._server = await asyncio.start_unix_server(self._client, sock=_owner_only_socket(self.path))
        except BaseException:
            os.close(lock)
            raise
        self._lock = lock

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()  # from now on `sd` runs commands itself (waiting for the library if need be)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            finishing = [task for task, session in self._clients.items() if session.holds_core]
            if finishing and self.finish_commands:
                if self.on_finishing is not None:
                    self.on_finishing(len(finishing))
                await asyncio.wait(finishing)
            if self._clients:  # commands carried out here say their last words (a monitor: "copy completed")
                await asyncio.wait(list(self._clients), timeout=GRACE)
            for task in list(self._clients):
                task.cancel()
            await self._server.wait_closed()
            self._server = None
        if self._lock is not None:
            os.close(self._lock)  # releases the claim: another process may serve the core now
            self._lock = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        session = Session(writer)
        try:
            if len(self._clients) >= MAX_CLIENTS:
                raise SdError(f"the core serves {MAX_CLIENTS} connections already: close some and try again")
            self._clients[task] = session
            uid = _peer(writer)
            if uid != os.getuid():  # besides the 0600 socket in the owner-only data dir
                raise SdError(f"refused: uid {uid} does not own this core (uid {os.getuid()} does)")
            try:
                request = await asyncio.wait_for(_read(reader, from_client=True), FIRST_FRAME)
            except TimeoutError:
                raise SdError(f"nothing asked within {FIRST_FRAME:.0f} s of connecting") from None
            if not isinstance(request, dict) or not isinstance(request.get("args", {}), dict):
                raise SdError("a malformed request on the control socket: {'cmd': NAME, 'args': {...}} expected")
            args = {str(k): v for k, v in request.get("args", {}).items()}
            takes_over = self.connection_handlers.get(str(request.get("cmd")))
            if takes_over is not None:
                await takes_over(reader, writer, **args)
                return
            handler = self.handlers.get(str(request.get("cmd")))
            if handler is None:
                raise SdError(f"the running core does not know {request.get('cmd')!r}")
            work = asyncio.ensure_future(handler(session, **args))
            listener = asyncio.ensure_future(_listen(reader, session))
            try:
                await asyncio.wait({work, listener}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                listener.cancel()
                if not work.done():  # the client went away, or the server closes
                    work.cancel()
            if work.cancelled() or not work.done():
                return
            await _send(writer, {"done": work.result()})
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            pass  # the core closes: end quietly (asyncio 3.11 logs a traceback for a cancelled connection task)
        except Exception as exc:
            message = str(exc) if isinstance(exc, SdError) else f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(ConnectionError):
                await _send(writer, {"error": message})
        finally:
            self._clients.pop(task, None)
            writer.close()


async def _listen(reader: asyncio.StreamReader, session: Session) -> None:
    """Hand the client's messages to the session until the client goes away."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            message = await _read(reader, from_client=True)
            if session.on_message is not None:
                session.on_message(message)


async def is_running(data_dir: Path) -> bool:
    """Whether a core is listening on this data dir's control socket."""
    try:
        _, writer = await asyncio.open_unix_connection(str(Path(data_dir) / SOCKET_NAME))
    except OSError:
        return False
    writer.close()
    return True


class Call:
    """A command running in the core behind a control socket: iterate its answers, `tell` it things."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, data_dir: Path, command: str, **args: Any) -> Call:
        """Send `command`; raises OSError when no core listens on the data dir (none runs, or it died), SdError
        when another user's process does."""
        reader, writer = await asyncio.open_unix_connection(str(Path(data_dir) / SOCKET_NAME))
        check_core(writer, Path(data_dir) / SOCKET_NAME)
        await _send(writer, {"cmd": command, "args": args})
        return cls(reader, writer)

    async def tell(self, message: Any) -> None:
        with contextlib.suppress(ConnectionError):
            await _send(self._writer, message)

    async def answers(self) -> AsyncIterator[tuple[bool, Any]]:
        """(final?, answer) pairs; raises the command's error as SdError."""
        while True:
            try:
                frame = await _read(self._reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                raise SdError(CORE_STOPPED) from None
            if "error" in frame:
                raise SdError(str(frame["error"]))
            if "done" in frame:
                yield True, frame["done"]
                return
            yield False, frame["more"]

    def close(self) -> None:
        self._writer.close()


def _owner_only_socket(path: Path) -> socket.socket:
    """A Unix socket bound at `path` that is owner-only from the moment the name exists: bound under a temporary
    name, chmod-ed, then renamed into place. (No umask: it is the process's, and a file another thread made
    meanwhile would lose its group and other bits.) The claim on the data dir keeps the temporary name ours."""
    temp = path.with_name(".control.tmp")  # no longer than the socket's own name: sun_path holds 108 bytes
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # left by a core that died here
        sock.bind(str(temp))
        os.chmod(temp, 0o600)
        os.rename(temp, path)
    except BaseException:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise
    return sock
