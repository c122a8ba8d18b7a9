"""The server side of the `sd-rpc` subsystem: requests from a paired device, run against LocalFS."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import blake3

from sdcore.errors import SdError
from sdcore.fs.base import EntryInfo
from sdcore.fs.local import LocalFS, fs_error, scan_batches
from sdcore.net.confine import Confinement
from sdcore.net.frames import (
    FrameWriter,
    NetError,
    PermissionDenied,
    ProtocolError,
    Reader,
    Writer,
    encode_error,
    read_frame,
)
from sdcore.ops.names import free_name

MAX_READ = 4 << 20
MIN_VERIFY_BLOCK = 64 << 10


def pack_entry(e: EntryInfo) -> list[Any]:
    target = os.fsencode(e.link_target) if e.link_target is not None else None
    return [os.fsencode(e.name), e.kind, e.size, e.mtime, e.inode, e.mode, target]


def unpack_entry(v: list[Any]) -> EntryInfo:
    target = os.fsdecode(v[6]) if v[6] is not None else None
    return EntryInfo(os.fsdecode(v[0]), v[1], v[2], v[3], v[4], v[5], target)


@dataclass
class _Write:
    fd: int
    tmp: str
    path: str
    mtime: float | None
    mode: int | None
    written: int = 0
    keep: bool = False  # a resumable write keeps its partial file when the connection drops
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # chunks land in order: no holes


class Revoked(SdError):
    """The device was unpaired while connected."""


# A hook for Spacedrop: (peer id, names, sizes) -> accepted folder, or None when declined.
DropHandler = Callable[[list[str], list[int]], Awaitable[str | None]]


class RpcSession:
    """One `sd-rpc` channel: decodes requests, checks trust and confinement, answers."""

    def __init__(
        self,
        confinement: Confinement,
        still_trusted: Callable[[], bool],
        drop: DropHandler | None = None,
        hello: dict[str, Any] | None = None,
        extensions: dict[str, Callable[..., Awaitable[Any]]] | None = None,
        on_hello: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.fs = LocalFS()
        self.confine = confinement
        self.still_trusted = still_trusted
        self.drop = drop
        self.hello_info = hello or {}
        self.extensions = extensions or {}
        self.on_hello = on_hello
        self._ids = itertools.count(1)
        self._lists: dict[int, Iterator[list[EntryInfo]]] = {}
        self._reads: dict[int, int] = {}
        self._writes: dict[int, _Write] = {}
        self._drops: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._accepted: dict[str, tuple[str, list[str]]] = {}  # drop token -> (folder, names still to come)

    async def serve(self, reader: Reader, writer: Writer) -> None:
        out = FrameWriter(writer)
        try:
            while True:
                try:
                    frame = await read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError, BrokenPipeError):
                    return
                if not (isinstance(frame, list) and len(frame) == 3):
                    raise ProtocolError("malformed request")
                if not self.still_trusted():
                    revoked = Revoked("the other device no longer trusts this one (unpaired): pair again")
                    await out.send([frame[0], False, encode_error(revoked)])
                    return
                task = asyncio.create_task(self._answer(out, *frame))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            for task in list(self._tasks):
                task.cancel()
            self._cleanup()

    async def _answer(self, out: FrameWriter, rid: int, method: str, args: dict[str, Any]) -> None:
        try:
            handler = getattr(self, "rpc_" + str(method), None)
            if handler is None:
                raise ProtocolError(f"unknown request {method!r}")
            result = await handler(**args)
            reply = [rid, True, result]
        except asyncio.CancelledError:
            raise
        except OSError as exc:
            reply = [rid, False, encode_error(fs_error(exc, str(args.get("path", ""))))]
        except TypeError as exc:
            reply = [rid, False, encode_error(ProtocolError(f"bad arguments to {method}: {exc}"))]
        except Exception as exc:
            reply = [rid, False, encode_error(exc)]
        try:
            await out.send(reply)
        except (ConnectionError, BrokenPipeError):
            pass

    def _path(self, path: bytes) -> str:
        if not isinstance(path, bytes):
            raise ProtocolError("paths travel as bytes")
        return self.confine.check(os.fsdecode(path))

    def _cleanup(self) -> None:
        for fd in self._reads.values():
            os.close(fd)
        for w in self._writes.values():
            _abort(w, keep=w.keep)
        self._reads.clear()
        self._writes.clear()
        self._lists.clear()

    # --- requests -------------------------------------------------------------------------

    async def rpc_hello(self, **client: Any) -> dict[str, Any]:
        """Who each side is (names travel here, so a rename reaches paired devices) and what is browsable."""
        if self.on_hello is not None:
            self.on_hello(client)
        return {**self.hello_info, "roots": [os.fsencode(r) for r in self.confine.roots()]}

    async def rpc_ext(self, name: str, args: dict[str, Any]) -> Any:
        """A request the core added with `Network.expose` (search, job control, ...)."""
        handler = self.extensions.get(name)
        if handler is None:
            raise NetError(f"the other device does not offer {name!r} (to this device's trust level)")
        return await handler(**args)

    async def rpc_stat(self, path: bytes) -> list[Any]:
        return pack_entry(await self.fs.stat(self._path(path)))

    async def rpc_list_open(self, path: bytes, batch_size: int = 1000) -> list[Any]:
        """The first batch and a handle for the rest (handle 0: there is no more)."""
        batches = scan_batches(self._path(path), max(1, min(batch_size, 10_000)))
        first = await asyncio.to_thread(next, batches, None)
        if first is None:
            return [0, []]
        handle = next(self._ids)
        self._lists[handle] = batches
        return [handle, [pack_entry(e) for e in first]]

    async def rpc_list_next(self, handle: int) -> list[Any] | None:
        batches = self._lists.get(handle)
        if batches is None:
            return None
        batch = await asyncio.to_thread(next, batches, None)
        if batch is None:
            del self._lists[handle]
            return None
        return [pack_entry(e) for e in batch]

    async def rpc_list_close(self, handle: int) -> None:
        self._lists.pop(handle, None)

    async def rpc_read_open(self, path: bytes, offset: int = 0, length: int = 0) -> list[Any]:
        """[handle, first chunk]: a file read whole by this one request gets handle 0 (already closed)."""
        p = self._path(path)

        def first() -> tuple[int, bytes]:
            fd = os.open(p, os.O_RDONLY)
            try:
                data = os.pread(fd, min(length, MAX_READ), offset) if length else b""
            except BaseException:
                os.close(fd)
                raise
            if length and len(data) < min(length, MAX_READ):
                os.close(fd)
                return -1, data
            return fd, data

        fd, data = await asyncio.to_thread(first)
        if fd < 0:
            return [0, data]
        handle = next(self._ids)
        self._reads[handle] = fd
        return [handle, data]

    async def rpc_read(self, handle: int, offset: int, length: int) -> bytes:
        fd = self._reads[handle]
        return await asyncio.to_thread(os.pread, fd, min(length, MAX_READ), offset)

    async def rpc_read_close(self, handle: int) -> None:
        fd = self._reads.pop(handle, None)
        if fd is not None:
            os.close(fd)

    async def rpc_write_open(self, path: bytes, mtime: float | None = None, mode: int | None = None) -> int:
        return self._open_write(self._path(path), mtime, mode)

    async def rpc_write_file(
        self, path: bytes, data: bytes, mtime: float | None = None, mode: int | None = None
    ) -> int:
        """A whole small file in one request (temp file, fsync, rename)."""
        handle = self._open_write(self._path(path), mtime, mode)
        await self.rpc_write_chunk(handle, 0, data)
        return await self.rpc_write_close(handle)

    def _open_write(self, p: str, mtime: float | None, mode: int | None) -> int:
        directory, name = os.path.split(p)
        handle = next(self._ids)
        tmp = os.path.join(directory, f".{name}.sdtmp-{os.getpid()}-{handle}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._writes[handle] = _Write(fd, tmp, p, mtime, mode)
        return handle

    async def rpc_write_resume(
        self, path: bytes, mtime: float | None = None, mode: int | None = None
    ) -> list[int]:
        """[handle, bytes already there]: continue a write an earlier connection left partial."""
        p = self._path(path)
        tmp = partial_path(p)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)  # read too: write_verify
        handle = next(self._ids)
        self._writes[handle] = _Write(fd, tmp, p, mtime, mode, keep=True)
        return [handle, os.fstat(fd).st_size]

    async def rpc_write_chunk(self, handle: int, offset: int, data: bytes) -> None:
        w = self._writes[handle]
        async with w.lock:
            await asyncio.to_thread(os.pwrite, w.fd, data, offset)
            w.written += len(data)

    async def rpc_write_detach(self, handle: int) -> None:
        """Stop a resumable write and keep what arrived, to resume later."""
        w = self._writes.pop(handle, None)
        if w is not None:
            _abort(w, keep=True)

    async def rpc_write_close(self, handle: int) -> int:
        w = self._writes.pop(handle)
        try:
            await asyncio.to_thread(os.fsync, w.fd)
            size = os.fstat(w.fd).st_size
            os.close(w.fd)
            w.fd = -1
            if w.mode is not None:
                os.chmod(w.tmp, w.mode & 0o7777)
            if w.mtime is not None:
                os.utime(w.tmp, (w.mtime, w.mtime))
            if handle in self._drops:
                w.path = _unique(w.path)
            else:
                self.confine.check(w.path)
            os.rename(w.tmp, w.path)
        except BaseException:
            _abort(w)
            raise
        finally:
            self._drops.pop(handle, None)
        return size

    async def rpc_write_abort(self, handle: int) -> None:
        w = self._writes.pop(handle, None)
        if w is not None:
            _abort(w)

    async def rpc_mkdir(self, path: bytes, parents: bool = False) -> None:
        await self.fs.mkdir(self._path(path), parents)

    async def rpc_rename(self, src: bytes, dst: bytes) -> None:
        await self.fs.rename(self._path(src), self._path(dst))

    async def rpc_delete(self, path: bytes) -> None:
        await self.fs.delete(self._path(path))

    async def rpc_trash(self, path: bytes) -> bytes:
        return os.fsencode(await self.fs.trash(self._path(path)))

    async def rpc_restore(self, key: bytes) -> bytes:
        """Put back an item of this device's trash, only where the peer may write (it names only what the trash holds)."""
        from sdcore.fs import trash

        if not isinstance(key, bytes):
            raise ProtocolError("paths travel as bytes")
        item = await asyncio.to_thread(trash.find, os.fsdecode(key))
        self.confine.check(item.original_path)
        return os.fsencode(await asyncio.to_thread(trash.restore, item))

    async def rpc_cas_id(self, path: bytes) -> str | None:
        return await self.fs.cas_id(self._path(path))

    async def rpc_full_hash(self, path: bytes) -> str:
        return await self.fs.full_hash(self._path(path))

    # --- Spacedrop --------------------------------------------------------------------------

    async def rpc_drop_offer(self, names: list[bytes], sizes: list[int]) -> str | None:
        """Ask the user to accept these files; a token for `drop_open` when accepted, else None."""
        if self.drop is None:
            raise NetError("this device does not accept Spacedrop")
        folder = await self.drop([os.fsdecode(n) for n in names], sizes)
        if folder is None:
            return None
        token = f"drop-{next(self._ids)}"
        self._accepted[token] = (folder, [os.fsdecode(n) for n in names])
        return token

    async def rpc_drop_open(self, drop: str, name: bytes, mtime: float | None = None, mode: int | None = None) -> int:
        """A write handle for one of the accepted files, in the Spacedrop folder (each name once)."""
        folder, expected = self._accepted.get(drop, ("", []))
        wanted = os.fsdecode(name)
        if wanted not in expected:
            raise PermissionDenied(f"{wanted!r} was not among the files accepted in this drop")
        expected.remove(wanted)
        base = os.path.basename(wanted)
        if base in ("", ".", ".."):
            raise PermissionDenied(f"{wanted!r}: not a file name")
        os.makedirs(folder, mode=0o700, exist_ok=True)  # received files are the user's alone until moved
        handle = self._open_write(os.path.join(folder, base), mtime, None if mode is None else int(mode) & 0o777)
        self._drops[handle] = folder
        return handle

    # --- resumed writes ---------------------------------------------------------------------

    async def rpc_write_verify(self, handle: int, block: int, digests: list[bytes]) -> int:
        """Keep of a resumed write only what matches the sender's source; returns where to carry on.

        `digests` are the BLAKE3 of the source's first bytes in blocks of `block` bytes; the partial
        file is cut at its first block that differs, so damaged bytes are sent again, never kept.
        """
        if (
            not isinstance(block, int)
            or not MIN_VERIFY_BLOCK <= block <= MAX_READ
            or not isinstance(digests, list)
        ):
            raise ProtocolError("write_verify wants a block size of 64 KiB to 4 MiB and a list of digests")
        w = self._writes[handle]
        async with w.lock:
            return await asyncio.to_thread(_keep_matching, w.fd, block, digests)


def partial_path(path: str) -> str:
    """Where a resumable write to `path` keeps the bytes that arrived until it is finished."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.sdpart")


def _keep_matching(fd: int, block: int, digests: list[bytes]) -> int:
    """Cut the file open at `fd` after its leading blocks whose BLAKE3 match `digests`, in order; returns its size."""
    kept = 0
    for digest in digests:
        data = os.pread(fd, block, kept)
        if not data or blake3.blake3(data).digest() != digest:
            break
        kept += len(data)
    if kept < os.fstat(fd).st_size:
        os.ftruncate(fd, kept)
    return kept


def _abort(w: _Write, keep: bool = False) -> None:
    if w.fd >= 0:
        os.close(w.fd)
        w.fd = -1
    if keep:
        return
    try:
        os.unlink(w.tmp)
    except OSError:
        pass


def _unique(path: str) -> str:
    """`path`, or `name (1).ext` beside it when that exists already (as the trash names a second one)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, free_name(name, lambda n: os.path.lexists(os.path.join(directory, n))))
