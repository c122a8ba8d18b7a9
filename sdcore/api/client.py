"""The core API of another process: `await attach(data_dir)` gives a proxy with the same surface as the Api."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdcore.api import wire
from sdcore.api.server import COMMAND
from sdcore.control import SOCKET_NAME, check_core
from sdcore.errors import SdError
from sdcore.sdpath import display

MAX_ANSWER = 1 << 30
"""The largest answer frame taken from the core (a search of every file of a big library fits)."""
HELLO_TIMEOUT = 5.0


class Disconnected(SdError):
    """The process that serves the core went away while this one used it."""


wire.register(Disconnected)


async def attach(data_dir: str | Path, library: str | None = None) -> RemoteApi | None:
    """The core API served for `data_dir` by the process that runs its core; None when no core runs there,
    SdError when another user's process listens there.

    `library`: the library `api.library()` names (name or id; None: the serving core's default one).
    """
    path = Path(data_dir).expanduser() / SOCKET_NAME
    if not path.exists():
        return None
    try:
        reader, writer = await asyncio.open_unix_connection(str(path))
    except OSError:  # a socket left by a core that died
        return None
    try:
        check_core(writer, path)
        writer.write(wire.frame({"cmd": COMMAND, "args": {"library": library}}))
        return await over(reader, writer, f"the core running for {path.parent}", library)
    except (TimeoutError, OSError, asyncio.IncompleteReadError):
        writer.close()
        return None
    except BaseException:  # cancelled (a caller's timeout) or an unreadable hello: the socket goes too
        writer.close()
        raise


async def over(
    reader: Any,
    writer: Any,
    core: str,
    library: str | None = None,
    limits: Limits | None = None,
    ended: str = "its process exited",
) -> RemoteApi:
    """The core API served at the other end of a stream pair (the control socket, an SSH channel), once it said
    hello; `core` names that core in errors ("the core running for DIR"), `ended` why it is lost when the stream
    ends. TimeoutError, OSError or
    IncompleteReadError when no hello comes; SdError when something else does."""
    limits = limits or Limits()
    hello = wire.decode(await asyncio.wait_for(wire.read_frame(reader, limits.answer), HELLO_TIMEOUT))
    said = hello.get("hello") if isinstance(hello, dict) else None
    if not isinstance(said, dict) or "device" not in said:
        writer.close()
        error = hello.get("error") if isinstance(hello, dict) else None
        if isinstance(error, str):  # e.g. it serves as many connections as it takes
            raise SdError(f"{core} refused: {display(error) if limits.peers else error}")
        raise SdError(f"{core} does not serve the core API: {hello!r:.200}")
    return RemoteApi(_Connection(reader, writer, core, limits, ended), said["device"], library)


@dataclass(frozen=True)
class Limits:
    """What a client takes from the core it uses: a core of another device is held to less (it may be hostile)."""

    answer: int = MAX_ANSWER
    """The largest answer frame."""
    unread: int | None = None
    """Bytes one stream may hold unread before it is ended (None: no limit, a core of this device's)."""
    peers: bool = False
    """Whether another device's core answers: the text of its errors is escaped (it may drive a terminal)."""


REMOTE_LIMITS = Limits(answer=64 << 20, unread=256 << 20, peers=True)
"""What this device takes from another device's core (a listing's batch is ~100 KB, an events stream coalesces)."""


class _Connection:
    """One socket to the core, multiplexed: answers go to the request that asked, by id."""

    def __init__(self, reader: Any, writer: Any, core: str, limits: Limits, ended: str) -> None:
        self._writer = writer
        self._ended = ended
        self._core = core
        self._limits = limits
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._streams: dict[int, _Queue] = {}
        self.lost: SdError | None = None
        self.gone = asyncio.Event()
        self._reading = asyncio.ensure_future(self._read(reader))

    async def _read(self, reader: Any) -> None:
        reason = self._ended
        try:
            while True:
                body = await wire.read_frame(reader, self._limits.answer)
                message = wire.decode(body)
                rid = message.get("id") if isinstance(message, dict) else None
                if rid in self._pending:
                    future = self._pending.pop(rid)
                    if future.done():
                        continue
                    if "error" in message:
                        future.set_exception(wire.raise_error(message["error"], self._limits.peers))
                    else:
                        future.set_result(message.get("done"))
                elif rid in self._streams:
                    queue = self._streams[rid]
                    if "more" in message:
                        queue.put(message["more"], len(body))
                        if self._limits.unread is not None and queue.unread > self._limits.unread:
                            self.cancel(rid)  # it sends faster than this side reads, without end
                            queue.end(SdError(f"{self._core} sent more than {self._limits.unread >> 20} MiB unread"))
                    else:
                        del self._streams[rid]
                        queue.end(wire.raise_error(message["error"], self._limits.peers) if "error" in message else None)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except SdError as exc:
            reason = f"it sent what this one cannot read: {exc}"
        except Exception as exc:  # an SSH channel's own (the link to another device dropped)
            reason = str(exc) or type(exc).__name__
        except asyncio.CancelledError:
            reason = "this one let go of it"
            raise
        finally:
            self._lose(reason)

    def _lose(self, reason: str) -> None:
        if self.lost is not None:
            return
        self.lost = Disconnected(f"{self._core} stopped ({reason})")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(self.lost)
        for queue in self._streams.values():
            queue.end(self.lost)
        self._pending.clear()
        self._streams.clear()
        self._writer.close()
        self.gone.set()

    def _send(self, message: Any) -> None:
        if self.lost is not None:
            raise self.lost
        self._writer.write(wire.frame(message))

    async def call(self, chain: list[Any]) -> Any:
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._send({"id": rid, "chain": chain})
        self._pending[rid] = future
        try:
            return await future
        except asyncio.CancelledError:
            self.cancel(rid)
            raise

    def stream(self, chain: list[Any]) -> _Stream:
        rid = next(self._ids)
        queue = _Queue()
        self._send({"id": rid, "chain": chain, "stream": True})
        self._streams[rid] = queue
        return _Stream(self, rid, queue)

    def cancel(self, rid: int) -> None:
        """Stop a request on the server (its answer, if one comes, is dropped)."""
        self._pending.pop(rid, None)
        if self._streams.pop(rid, None) is not None or self.lost is None:
            with contextlib.suppress(SdError, RuntimeError):  # RuntimeError: the loop is closed
                self._send({"cancel": rid})

    def close(self) -> None:
        self._reading.cancel()


class _Queue:
    """What a stream received and its consumer has not taken yet; a newer progress event replaces a queued one."""

    def __init__(self) -> None:
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._seq = 0
        self._ready = asyncio.Event()
        self.ended = False
        self.error: SdError | None = None
        self.unread = 0
        """Bytes (as they came) of the items not taken yet."""

    def put(self, item: Any, size: int = 0) -> None:
        coalesce = getattr(item, "coalesce_key", None)
        key = coalesce() if callable(coalesce) else None
        if key is None:
            self._seq += 1
            key = ("seq", self._seq)
        replaced = self._items.get(key)
        self.unread += size - (replaced[1] if replaced else 0)
        self._items[key] = item, size
        self._ready.set()

    def end(self, error: SdError | None) -> None:
        self.ended, self.error = True, error
        self._ready.set()

    async def get(self) -> Any:
        while not self._items:
            if self.ended:
                if self.error is not None:
                    raise self.error
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        item, size = self._items.popitem(last=False)[1]
        self.unread -= size
        return item


class _Stream:
    """An async iterator over a stream of the core; leaving it (break, aclose, garbage) cancels it there."""

    def __init__(self, connection: _Connection, rid: int, queue: _Queue) -> None:
        self._connection, self._rid, self._queue = connection, rid, queue
        self._open = True

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self._queue.get()
        except (StopAsyncIteration, SdError):
            self._open = False
            raise

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._connection.cancel(self._rid)

    def __del__(self) -> None:
        if self._open:
            self.close()

    async def __aenter__(self) -> _Stream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class Chain:
    """A path into the core API, recorded without I/O: awaiting it asks for one answer, `async for` for a stream."""

    __slots__ = ("_connection", "_steps", "_stream")

    def __init__(self, connection: _Connection, steps: tuple[list[Any], ...] = ()) -> None:
        self._connection, self._steps = connection, steps
        self._stream: _Stream | None = None

    def __getattr__(self, name: str) -> Chain:
        if name.startswith("_"):
            raise AttributeError(name)
        return Chain(self._connection, (*self._steps, ["get", name]))

    def __getitem__(self, key: Any) -> Chain:
        return Chain(self._connection, (*self._steps, ["item", key]))

    def __call__(self, *args: Any, **kwargs: Any) -> Chain:
        return Chain(self._connection, (*self._steps, ["call", list(args), kwargs]))

    def __await__(self) -> Any:
        return self._connection.call(list(self._steps)).__await__()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._opened()

    async def __anext__(self) -> Any:
        """A stream used as the async generator it is in-process (`anext(api.watch(path))`)."""
        return await self._opened().__anext__()

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()

    def _opened(self) -> _Stream:
        """The stream this chain names, asked for once (iterating it again goes on where it was, as a generator)."""
        if self._stream is None:
            self._stream = self._connection.stream(list(self._steps))
        return self._stream

    def __repr__(self) -> str:
        return f"<core API {''.join(str(s[1]) if s[0] == 'get' else '(...)' for s in self._steps)}>"


class RemoteApi(Chain):
    """The Api of the process that runs the core, over its control socket (the same surface as in-process)."""

    __slots__ = ("_library", "device")

    def __init__(self, connection: _Connection, device: Any, library: str | None = None) -> None:
        super().__init__(connection)
        self.device = device
        """This device (the core's), learnt in the hello."""
        self._library = library

    def library(self, name: str | None = None) -> Chain:
        """A library by name or id (None: the one `attach` was given, else the serving core's default one)."""
        return Chain(self._connection, (["get", "library"], ["call", [name or self._library], {}]))

    @property
    def ops(self) -> Chain:
        """File operations as jobs of the library `attach` was given (else of the serving core's default one)."""
        return self.library().ops if self._library else Chain(self._connection, (["get", "ops"],))

    @property
    def lost(self) -> SdError | None:
        """Why the connection to the core ended (None while it lasts)."""
        return self._connection.lost

    async def wait_lost(self) -> SdError:
        """Wait until the connection to the core ends (the serving process exited, or `close()`); says why."""
        await self._connection.gone.wait()
        assert self._connection.lost is not None
        return self._connection.lost

    async def close(self) -> None:
        self._connection.close()
        await self._connection.gone.wait()
