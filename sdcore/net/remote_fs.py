"""RemoteFS: the filesystem interface of a paired device, over its `sd-rpc` channel."""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import Any, Protocol

from sdcore.errors import NotFound, SdError
from sdcore.fs import base
from sdcore.fs.base import EntryInfo, NewFile, Reread, Source
from sdcore.fs.resumable import KEPT_BLOCK, block_digests, partial_path
from sdcore.net.frames import ProtocolError, decode_error
from sdcore.net.rpc_server import unpack_entry
from sdcore.sdpath import display
from sdcore.volumes import Limits

REMOTE_CHUNK = 4 << 20  # bytes per read request: fewer, larger frames go faster over SSH
READ_AHEAD = 3  # read requests in flight
WRITE_AHEAD = 8  # write requests in flight


class Caller(Protocol):
    def call(self, method: str, **args: Any) -> Awaitable[Any]: ...


def _b(path: str) -> bytes:
    return os.fsencode(path)


class RemoteFS:
    """A paired device's files through the same async interface as LocalFS."""

    def __init__(self, link: Caller, chunk_size: int = REMOTE_CHUNK) -> None:
        self.link = link
        self.chunk_size = chunk_size
        self.old_peer = False  # the other device has no write_files: small files go one by one

    async def roots(self) -> list[str]:
        """The folders this device may browse there: `/` for full trust, else its shares."""
        hello = await self.link.call("hello")
        return [os.fsdecode(r) for r in hello["roots"]]

    async def list_dir(self, path: str, batch_size: int = 1000) -> AsyncIterator[list[EntryInfo]]:
        handle, first = await self.link.call("list_open", path=_b(path), batch_size=batch_size)
        if not handle:
            if first:
                yield _named(first, path)
            return
        try:
            nxt = asyncio.ensure_future(self.link.call("list_next", handle=handle))
            listed = len(first)
            yield _named(first, path)
            while True:
                batch = await nxt
                if batch is None:
                    handle = 0
                    return
                listed += len(batch)
                if listed > base.MAX_LISTED:
                    raise ProtocolError(base.too_many_listed(path))
                nxt = asyncio.ensure_future(self.link.call("list_next", handle=handle))
                yield _named(batch, path)
        finally:
            if handle:
                nxt.cancel()
                try:
                    await self.link.call("list_close", handle=handle)
                except Exception:
                    pass

    async def stat(self, path: str) -> EntryInfo:
        return unpack_entry(await self.link.call("stat", path=_b(path)))

    async def open_read(self, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        size = self.chunk_size
        handle, first = await self.link.call("read_open", path=_b(path), offset=offset, length=size)
        _as_asked(first, size, path)
        if first:
            yield first
        if not handle:
            return
        inflight: deque[asyncio.Future[Any]] = deque()
        pos = offset + len(first)
        try:
            while True:
                while len(inflight) < READ_AHEAD:
                    inflight.append(
                        asyncio.ensure_future(self.link.call("read", handle=handle, offset=pos, length=size))
                    )
                    pos += size
                chunk = _as_asked(await inflight.popleft(), size, path)
                if chunk:
                    yield chunk
                if len(chunk) < size:
                    return
        finally:
            _drop(inflight)
            try:
                await self.link.call("read_close", handle=handle)
            except Exception:
                pass

    async def write_atomic(
        self, path: str, chunks: AsyncIterable[bytes], *, mtime: float | None = None, mode: int | None = None
    ) -> int:
        it = aiter(chunks)
        head = await anext(it, b"")
        second = await anext(it, None) if len(head) <= self.chunk_size else None
        if second is None and len(head) <= self.chunk_size:  # the whole file in one request
            written: int = await self.link.call(
                "write_file", path=_b(path), data=head, mtime=mtime, mode=mode
            )
            return written
        rest = _prepend([head] if second is None else [head, second], it)
        handle = await self.link.call("write_open", path=_b(path), mtime=mtime, mode=mode)
        return await self._send(handle, rest)

    async def write_new_files(self, files: list[NewFile]) -> list[int | SdError] | None:
        """As FileSystem.write_new_files, in one request; None when the other device is older than that request."""
        if self.old_peer:
            return None
        try:
            told = await self.link.call("write_files", files=[[_b(p), data, m, mode] for p, data, m, mode in files])
        except SdError as exc:
            if not _unknown_request(exc):
                raise
            self.old_peer = True
            return None
        if not isinstance(told, list) or len(told) != len(files):
            raise ProtocolError("the other device answered write_files with another count of files; copy them again")
        device = getattr(self.link, "name", "the other device")
        results: list[int | SdError] = []
        for r in told:
            if isinstance(r, list) and len(r) == 2 and r[0] is True and isinstance(r[1], int):
                results.append(r[1])
            elif isinstance(r, list) and len(r) == 2 and r[0] is False:
                results.append(decode_error(r[1], device))
            else:
                raise ProtocolError(f"the other device answered write_files with {r!r}"[:200])
        return results

    async def write_resumable(
        self, path: str, source: Source, *, mtime: float | None = None, mode: int | None = None,
        reread: Reread | None = None,
    ) -> int:
        """As FileSystem.write_resumable: the partial file stays on the other device, which checks its kept blocks
        against the digests sent from here."""
        handle, have = await self.link.call("write_resume", path=_b(path), mtime=mtime, mode=mode)
        if have:
            try:
                digests = await block_digests(reread(), have) if reread is not None else []
                have = await self.link.call("write_verify", handle=handle, block=KEPT_BLOCK, digests=digests)
            except BaseException:
                await self._quietly("write_detach", handle)
                raise
        return await self._send(handle, source(have), start=have, on_error="write_detach")

    async def discard_resumable(self, path: str) -> None:
        """Delete what a resumable write to `path` left there (the next one starts from the first byte)."""
        try:
            await self.link.call("delete", path=_b(partial_path(path)))
        except NotFound:
            pass

    async def _send(
        self, handle: int, chunks: AsyncIterable[bytes], start: int = 0, on_error: str = "write_abort"
    ) -> int:
        inflight: deque[asyncio.Future[Any]] = deque()
        offset = start
        try:
            async for chunk in chunks:
                for piece in _pieces(chunk, self.chunk_size):
                    if len(inflight) >= WRITE_AHEAD:
                        await inflight.popleft()
                    inflight.append(
                        asyncio.ensure_future(
                            self.link.call("write_chunk", handle=handle, offset=offset, data=piece)
                        )
                    )
                    offset += len(piece)
            while inflight:
                await inflight.popleft()
            written: int = await self.link.call("write_close", handle=handle)
            return written
        except BaseException:
            _drop(inflight)
            await self._quietly(on_error, handle)
            raise

    async def _quietly(self, method: str, handle: int) -> None:
        """End a write handle after a failure (the connection may be gone already)."""
        try:
            await self.link.call(method, handle=handle)
        except Exception:
            pass

    async def mkdir(self, path: str, parents: bool = False) -> None:
        await self.link.call("mkdir", path=_b(path), parents=parents)

    async def rename(self, src: str, dst: str) -> None:
        await self.link.call("rename", src=_b(src), dst=_b(dst))

    async def trash(self, path: str) -> str:
        return os.fsdecode(await self.link.call("trash", path=_b(path)))

    async def restore(self, key: str) -> str:
        return os.fsdecode(await self.link.call("restore", key=_b(key)))

    async def delete(self, path: str) -> None:
        await self.link.call("delete", path=_b(path))

    async def cas_id(self, path: str) -> str | None:
        result: str | None = await self.link.call("cas_id", path=_b(path))
        return result

    async def full_hash(self, path: str) -> str:
        result: str = await self.link.call("full_hash", path=_b(path))
        return result

    async def limits(self, path: str) -> Limits | None:
        """What the filesystem holding `path` there cannot hold (FAT's 4 GiB, DOS names), as the other device tells
        it from its own mount table; None when nothing, or when the other device is too old to tell."""
        try:
            told = await self.link.call("limits", path=_b(path))
        except SdError as exc:
            if _unknown_request(exc):
                return None
            raise
        if told is None:
            return None
        if (
            not isinstance(told, list) or len(told) != 3 or not isinstance(told[0], str)
            or not (told[1] is None or isinstance(told[1], int) and told[1] > 0) or not isinstance(told[2], bool)
        ):  # fmt: skip
            raise ProtocolError(f"the other device told limits of {display(path)} that are none: {told!r}"[:300])
        return Limits(display(told[0][:40]), told[1], told[2])


def _unknown_request(exc: SdError) -> bool:
    """Whether the other device said it has no such request (older than it; the error travels as a plain SdError)."""
    return str(exc).startswith("unknown request ")


def _named(batch: list[Any], directory: str) -> list[EntryInfo]:
    """A batch of a listing from the other device; a name that is not one (`..`, `a/b`) would lead a copy out of
    the folder it writes to, and is refused."""
    entries = [unpack_entry(e) for e in batch]
    for e in entries:
        if e.name in ("", ".", "..") or "/" in e.name or "\0" in e.name:
            raise ProtocolError(
                f"{display(directory)}: the other device listed {display(e.name)!r}, which is not a name; nothing "
                "was taken from that listing"
            )
    return entries


def _as_asked(chunk: bytes, size: int, path: str) -> bytes:
    """A chunk read from the other device, refused if longer than asked: its bytes would overlap the next one's."""
    if not isinstance(chunk, bytes) or len(chunk) > size:
        raise ProtocolError(f"{display(path)}: the other device sent more than it was asked for; copy it again")
    return chunk


def _drop(inflight: deque[asyncio.Future[Any]]) -> None:
    """Cancel requests still in flight; those that failed already (the connection dropped) are not logged."""
    for fut in inflight:
        if fut.done():
            if not fut.cancelled():
                fut.exception()
        else:
            fut.cancel()


def _pieces(chunk: bytes, size: int) -> list[bytes]:
    if len(chunk) <= size:
        return [chunk]
    view = memoryview(chunk)
    return [bytes(view[i : i + size]) for i in range(0, len(chunk), size)]


async def _prepend(first: list[bytes], rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    async for chunk in rest:
        yield chunk
