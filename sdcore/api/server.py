"""The core API served on the control socket: each client's requests replayed on the in-process Api, streams pushed."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from sdcore import unpacking
from sdcore.api import wire
from sdcore.control import ControlServer
from sdcore.errors import SdError
from sdcore.events import DropOffered

log = logging.getLogger(__name__)

COMMAND = "api"
"""The control socket command that turns its connection into an API session."""
PROTOCOL = 1
MAX_REQUEST = 16 << 20
"""The largest request frame a client may send."""
MAX_DECODED = 64 << 20
"""What one request may take once read, estimated (a frame of empty lists is 64 times its size; a copy of
100,000 paths, a 6 MiB frame, is counted 38 MiB)."""
MAX_IN_FLIGHT = 256
"""Requests (streams included) one client may have running at once."""
MAX_STREAMS = 64
"""Streams (events, watches, listings) one client may hold open at once."""
MAX_QUEUED = 64 << 20
"""Bytes queued for a client that does not read them: past this it is dropped (a stream waits long before).
The requests it has in flight count too (what they took once read): past it, a new one is refused."""
STREAM_QUEUED = 1 << 20
"""A stream waits while more than this is queued for its client (an events stream coalesces meanwhile)."""

FACADE = "sdcore.api"
"""The package whose classes make the facade: only what they define can be walked from a socket."""
_NOT_FACADE = ("sdcore.api.wire", "sdcore.api.server", "sdcore.api.client")


class Refused(SdError):
    """A step of a request that the API does not offer (private, or not part of the facade)."""


wire.register(Refused)


def serve(control: ControlServer, api: Any) -> None:
    """Serve `api` (the in-process Api) to clients of the control socket."""
    asked: dict[str, set[_Session]] = {}  # a Spacedrop's drop id: the clients its question was sent to

    async def session(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, library: object = None, **_: Any
    ) -> None:
        chosen = await api._for_client(library)  # its --library, else the default library now
        control.attached += 1
        client = _Session(chosen, reader, writer, asked)
        try:
            await client.run()
        finally:
            control.attached -= 1
            for drop_id in client.asked:
                askers = asked.get(drop_id, set())
                askers.discard(client)
                if not askers:
                    asked.pop(drop_id, None)
                    if control.on_unasked is not None:  # nobody attached that was asked is left to answer
                        control.on_unasked(drop_id)

    control.register_connection(COMMAND, session)


async def serve_stream(api: Any, reader: Any, writer: Any, transport: Any) -> None:
    """Serve `api` to one client over any stream pair until it goes away (an SSH channel: `sd-api`), with the
    control socket's caps. `transport` is what holds the bytes queued for the client (get_write_buffer_size,
    set_write_buffer_limits, abort): the writer's transport, or an SSH channel."""
    await _Session(api, reader, writer, {}, transport).run()


class _Session:
    """One attached client: its requests in flight, the streams it holds, what is queued for it."""

    def __init__(
        self, api: Any, reader: Any, writer: Any, asked: dict[str, set[_Session]], transport: Any = None
    ) -> None:
        self._api, self._reader, self._writer = api, reader, writer
        self._transport = transport if transport is not None else writer.transport
        self._asked_all = asked
        self.asked: set[str] = set()
        """The Spacedrops whose question this client was sent (by drop id)."""
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._streams = 0
        self._held = 0
        """What the requests in flight took once read (estimated)."""
        self._transport.set_write_buffer_limits(high=STREAM_QUEUED)

    async def run(self) -> None:
        try:
            self._send({"hello": {"device": self._api.device, "protocol": PROTOCOL, "pid": os.getpid()}})
            while not self._writer.is_closing():
                try:
                    body = await wire.read_frame(self._reader, MAX_REQUEST)
                except wire.FrameTooLarge as exc:  # the rest of the stream cannot be read as frames
                    self._send({"id": None, "error": wire.error_of(exc)})
                    return
                try:
                    with unpacking.bounded(MAX_DECODED) as read:
                        message = wire.decode(body)
                    del body
                    self._dispatch(message, read.spent)
                except SdError as exc:  # a malformed frame: said, and the session goes on
                    self._send({"id": None, "error": wire.error_of(exc)})
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for task in self._tasks.values():
                task.cancel()
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
            self._writer.close()

    def _dispatch(self, message: Any, held: int) -> None:
        if isinstance(message, dict) and "cancel" in message:
            task = self._tasks.get(message["cancel"]) if isinstance(message["cancel"], int) else None
            if task is not None:
                task.cancel()
            return
        if not isinstance(message, dict):
            raise wire.WireError("a request is {'id': INT, 'chain': [STEP...], 'stream': BOOL}")
        rid, chain, stream = message.get("id"), message.get("chain"), bool(message.get("stream"))
        if not isinstance(rid, int) or not isinstance(chain, list):
            raise wire.WireError("a request is {'id': INT, 'chain': [STEP...], 'stream': BOOL}")
        if rid in self._tasks:
            raise wire.WireError(f"request {rid} is in flight already")
        if len(self._tasks) >= MAX_IN_FLIGHT or (stream and self._streams >= MAX_STREAMS):
            what = f"{MAX_STREAMS} streams" if stream else f"{MAX_IN_FLIGHT} requests"
            self._send({"id": rid, "error": wire.error_of(SdError(f"too many at once: a client holds at most {what}"))})
            return
        queued = self._transport.get_write_buffer_size()
        if self._tasks and self._held + held + queued > MAX_QUEUED:
            too_much = SdError(
                f"too much at once: requests in flight and answers not read take {(self._held + queued) >> 20} MiB"
                f" (at most {MAX_QUEUED >> 20}); wait for their answers"
            )
            self._send({"id": rid, "error": wire.error_of(too_much)})
            return
        self._streams += stream
        self._held += held
        task = self._tasks[rid] = asyncio.ensure_future(self._answer(rid, chain, stream))
        task.add_done_callback(lambda _: self._finished(rid, stream, held))

    def _finished(self, rid: int, stream: bool, held: int) -> None:
        self._streams -= stream
        self._held -= held
        self._tasks.pop(rid, None)

    async def _answer(self, rid: int, chain: list[Any], stream: bool) -> None:
        try:
            target = _replay(self._api, chain)
            if stream:
                if not hasattr(target, "__aiter__"):
                    if inspect.iscoroutine(target):
                        target.close()
                    raise Refused(f"{_named(chain)} is not a stream: await it")
                async with _closing(target) as items:
                    async for item in items:
                        if type(item) is DropOffered:
                            self.asked.add(item.drop_id)
                            self._asked_all.setdefault(item.drop_id, set()).add(self)
                        self._send({"id": rid, "more": item})
                        await self._writer.drain()  # waits while its client is behind; the core never does
                value = None
            elif inspect.isawaitable(target):
                value = await target
            elif hasattr(target, "__aiter__"):
                raise Refused(f"{_named(chain)} is a stream: iterate it with async for")
            else:
                value = target
            self._send({"id": rid, "done": value})
        except asyncio.CancelledError:
            raise  # the client canceled it, or went away: nothing to tell it
        except Exception as exc:
            if self._writer.is_closing():
                return  # nobody to tell
            if not isinstance(exc, SdError):
                log.exception("core API request %s failed", _named(chain))
            self._send({"id": rid, "error": wire.error_of(exc)})

    def _send(self, message: Any) -> None:
        """Queue a message for the client; a client that lets too much pile up is dropped."""
        if self._writer.is_closing():
            raise ConnectionResetError("the client went away")
        try:
            data = wire.frame(message)
        except TypeError as exc:  # a result the facade should not return: said to the client, logged here
            log.error("core API answer cannot be sent: %s", exc)
            data = wire.frame({"id": message.get("id"), "error": ["SdError", f"the core cannot send its answer: {exc}"]})
        self._writer.write(data)
        if self._transport.get_write_buffer_size() > MAX_QUEUED:
            log.warning("core API client dropped: it let %d bytes pile up", MAX_QUEUED)
            self._transport.abort()


@contextlib.asynccontextmanager
async def _closing(items: Any) -> AsyncIterator[Any]:
    """Iterate `items` and close it however the iteration ends (a subscription ends with its stream)."""
    try:
        yield items
    finally:
        close = getattr(items, "aclose", None)
        if close is not None:
            await close()
        elif callable(getattr(items, "close", None)):
            items.close()


def _replay(api: Any, chain: list[Any]) -> Any:
    """Walk the request's steps from `api`, refusing any step the facade does not offer."""
    target, method = api, False
    for step in chain:
        if not isinstance(step, list) or not step:
            raise wire.WireError(f"a malformed step {step!r:.80}")
        kind, owner = step[0], type(target)
        if kind == "get" and len(step) == 2 and isinstance(step[1], str):
            if step[1].startswith("_") or not _offered(owner):
                raise Refused(f"the core API offers no {step[1]!r:.80} on {owner.__name__}")
            if step[1] in _offered(owner):
                target = getattr(target, step[1])
            else:  # an attribute the handle set itself: only another handle or plain data
                value = getattr(target, "__dict__", {}).get(step[1], _NOTHING)
                if not (_offered(type(value)) or type(value) in _PLAIN or wire._classes.get(type(value).__name__)):
                    raise Refused(f"the core API offers no {step[1]!r:.80} on {owner.__name__}")
                target = value
            method = inspect.ismethod(target)
        elif kind == "item" and len(step) == 2:
            if "__getitem__" not in _offered(owner):
                raise Refused(f"the core API offers no [...] on {owner.__name__}")
            target, method = target[step[1]], False
        elif kind == "call" and len(step) == 3 and isinstance(step[1], list) and isinstance(step[2], dict):
            if not method:
                raise Refused(f"{_named(chain)}: only methods of the core API can be called")
            if not all(isinstance(k, str) and not k.startswith("_") for k in step[2]):
                raise wire.WireError("keyword arguments are named by text")
            target, method = target(*step[1], **step[2]), False
        else:
            raise wire.WireError(f"a malformed step {step!r:.80}")
    return target


_offers: dict[type, frozenset[str]] = {}
_NOTHING = object()
_PLAIN = (str, bytes, int, float, bool, type(None))


def _offered(cls: type) -> frozenset[str]:
    """What a facade class offers: the public methods, properties and fields of its classes in sdcore.api."""
    offered = _offers.get(cls)
    if offered is None:
        names: set[str] = set()
        if _in_facade(cls) and wire._classes.get(cls.__name__) is not cls:  # a record travels whole
            for klass in cls.__mro__:
                if _in_facade(klass):
                    names.update(n for n in vars(klass) if not n.startswith("_") or n == "__getitem__")
                    names.update(n for n in getattr(klass, "__annotations__", {}) if not n.startswith("_"))
        offered = _offers[cls] = frozenset(names)
    return offered


def _in_facade(cls: type) -> bool:
    module = cls.__module__
    return (module == FACADE or module.startswith(FACADE + ".")) and module not in _NOT_FACADE


def _named(chain: list[Any]) -> str:
    """A request's steps as the call site reads (`api.library(...).tags.list()`), for messages."""
    text = "api"
    for step in chain:
        if isinstance(step, list) and step:
            text += {"get": f".{step[1] if len(step) > 1 else ''}", "item": "[...]", "call": "(...)"}.get(
                str(step[0]), "?"
            )
    return text[:120]
