"""The client side of the `sd-rpc` subsystem: concurrent requests over one channel, matched by id."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from sdcore.net.frames import DeviceUnreachable, FrameWriter, Reader, Writer, decode_error, read_frame


class NotSent(DeviceUnreachable):
    """The request never left: the connection was found closed (safe to retry on a new one)."""


class RpcClient:
    """Sends requests and resolves each one's future when its answer arrives."""

    def __init__(
        self,
        reader: Reader,
        writer: Writer,
        name: str = "device",
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self._out = FrameWriter(writer)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._on_lost = on_lost
        self.closed: str | None = None
        self._task = asyncio.create_task(self._read_loop(reader))

    async def _read_loop(self, reader: Reader) -> None:
        reason = "the connection closed"
        try:
            while True:
                rid, ok, result = await read_frame(reader)
                fut = self._pending.pop(rid, None)
                if fut is None or fut.done():
                    continue
                if ok:
                    fut.set_result(result)
                else:
                    fut.set_exception(decode_error(result, self.name))
        except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
            pass
        except asyncio.CancelledError:
            reason = "closed"
        except Exception as exc:
            reason = f"protocol error: {exc}"
        self._lost(reason)

    def _lost(self, reason: str) -> None:
        if self.closed is not None:
            return
        self.closed = reason
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DeviceUnreachable(f"lost the connection to {self.name}: {reason}"))
        self._pending.clear()
        if self._on_lost is not None:
            self._on_lost(reason)

    async def call(self, method: str, **args: Any) -> Any:
        if self.closed is not None:
            raise DeviceUnreachable(f"not connected to {self.name}: {self.closed}")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._out.send([rid, method, args])
        except Exception as exc:
            self._pending.pop(rid, None)
            self._lost(str(exc))
            raise NotSent(f"lost the connection to {self.name}: {exc}") from None
        return await fut

    async def close(self) -> None:
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
