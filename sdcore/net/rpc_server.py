"""The server side of the `sd-rpc` subsystem: requests from a paired device, run against LocalFS."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import itertools
import os
import stat
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sdcore.errors import SdError
from sdcore.fs import held, trash
from sdcore.fs.base import EntryInfo, FsError
from sdcore.fs.beneath import delete_at, lexists_at
from sdcore.fs.local import as_sd_error, fs_error, scan_batches, stat_entry
from sdcore.fs.newfile import write_new_files
from sdcore.fs.noreplace import rename_noreplace
from sdcore.fs.resumable import keep_matching, open_kept, partial_path
from sdcore.index import cas
from sdcore.net.confine import MODE_BITS, Confinement
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
from sdcore.sdpath import display
from sdcore.sshlib import asyncssh
from sdcore.volumes import limits_at

MAX_READ = 4 << 20
MIN_VERIFY_BLOCK = 64 << 10
MAX_HANDLES = 256  # files and listings one connection may hold open
MAX_DEVICE_HANDLES = 4 * MAX_HANDLES  # ... and one device over all its connections and channels
DEVICE_THREADS = 3
"""Worker threads one device's heavy requests (hashing, deleting, trashing, finding what to restore: as long as the
peer likes) may keep busy at once, over all its connections (asyncio's default executor has the cpu count + 4: a
device hashing huge files must leave threads to the other devices and this one's own work). Reads, writes and
listings are not held to it: a copy of many small files waits on fsyncs side by side."""
SERVER_THREADS = max(DEVICE_THREADS + 1, min(32, (os.cpu_count() or 1) + 4) // 2)
"""... and all devices' heavy requests together: about half of asyncio's default executor (two devices at their share
took every thread of a server of 2 cores), the rest for every other request and the server's own work; one more than
a device's share, so that one device never holds them all."""
MAX_IN_FLIGHT = 64  # requests read but not yet answered: beyond it the server stops reading
MAX_HELD = 64 << 20  # bytes of chunks those requests carry or ask for, likewise
MAX_NEW_FILES = 256  # files one write_files request may carry
MAX_MTIME = 1 << 62  # seconds either side of 1970 a file's time from a peer may be (time_t holds 2**63; NaN fails too)
_BULK = ("read", "read_open", "write_chunk", "write_file", "write_files")
_T = TypeVar("_T")


def pack_entry(e: EntryInfo) -> list[Any]:
    target = os.fsencode(e.link_target) if e.link_target is not None else None
    return [os.fsencode(e.name), e.kind, e.size, e.mtime, e.inode, e.mode, target]


def unpack_entry(v: list[Any]) -> EntryInfo:
    target = os.fsdecode(v[6]) if v[6] is not None else None
    return EntryInfo(os.fsdecode(v[0]), v[1], v[2], v[3], v[4], v[5], target)


@dataclass
class _Write:
    fd: int
    dir_fd: int  # the folder, held open: the file is renamed into place there, whatever its path became
    tmp: str  # names in dir_fd
    name: str
    path: str  # as the peer named it, for messages
    mtime: float | None
    mode: int | None
    written: int = 0
    keep: bool = False  # a resumable write keeps its partial file when the connection drops
    limit: int | None = None  # a Spacedrop file: the size offered, which the person accepted
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # chunks land in order: no holes


class Revoked(SdError):
    """The device was unpaired while connected."""


class TooManyOpen(NetError):
    """A connection asked to hold more files and listings open than one connection may."""


class DeviceHandles:
    """The files and listings one device holds open, and the worker threads busy with its requests, over all its
    connections and channels (each channel has its own cap; a device opening channel after channel must not
    multiply it)."""

    def __init__(self, server_threads: asyncio.Semaphore | None = None) -> None:
        self.holders: weakref.WeakSet[Any] = weakref.WeakSet()  # sessions with an `open_handles`
        self.threads = asyncio.Semaphore(DEVICE_THREADS)
        self.server_threads = server_threads or asyncio.Semaphore(SERVER_THREADS)  # (one for all devices: Network's)

    async def start(self, fn: Callable[..., _T], *args: Any) -> asyncio.Future[_T]:
        """`fn(*args)` started in a worker thread once fewer than DEVICE_THREADS are busy for this device, and fewer
        than SERVER_THREADS for all. Its places are given back when the thread ends, not when the request is
        cancelled: the thread runs on, so a device that drops its connection mid-request cannot keep more threads
        busy that way."""
        await self.threads.acquire()
        try:
            await self.server_threads.acquire()
        except BaseException:
            self.threads.release()
            raise
        fut = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        fut.add_done_callback(self._ended)
        return fut

    async def run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await (await self.start(fn, *args))

    def _ended(self, fut: asyncio.Future[Any]) -> None:
        self.server_threads.release()
        self.threads.release()
        if not fut.cancelled():
            fut.exception()  # retrieved: a request cancelled meanwhile no longer awaits it

    def check(self) -> None:
        if sum(h.open_handles for h in list(self.holders)) >= MAX_DEVICE_HANDLES:
            raise TooManyOpen(
                f"your device holds {MAX_DEVICE_HANDLES} files and listings open over its connections, "
                "as many as one may: close some before opening more"
            )


# A hook for Spacedrop: (names, sizes) -> accepted folder, or None when declined.
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
        device: DeviceHandles | None = None,
    ) -> None:
        self.confine = confinement
        self.still_trusted = still_trusted
        self.drop = drop
        self.hello_info = hello or {}
        self.extensions = extensions or {}
        self.on_hello = on_hello
        self._ids = itertools.count(1)
        self._lists: dict[int, Iterator[list[EntryInfo]]] = {}  # each holds its folder open
        self._reads: dict[int, int] = {}
        self._writes: dict[int, _Write] = {}
        self._drops: dict[int, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._threads: set[asyncio.Future[Any]] = set()  # worker threads using the descriptors below
        self._gone = threading.Event()  # the peer left (or the server stops): long work for it stops
        # drop token -> (folder, (name, size offered) of the files still to come)
        self._accepted: dict[str, tuple[str, list[tuple[str, int]]]] = {}
        self._held = 0  # bytes the requests in flight carry or asked for
        self._opening = 0  # handles being opened right now
        self._room = asyncio.Event()
        self._device = device or DeviceHandles()
        self._device.holders.add(self)

    async def serve(self, reader: Reader, writer: Writer) -> None:
        out = FrameWriter(writer)
        try:
            while True:
                await self._wait_for_room()
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
                held = _weight(frame)
                self._held += held
                task = asyncio.create_task(self._answer(out, *frame))
                self._tasks.add(task)
                task.add_done_callback(lambda t, held=held: self._answered(t, held))  # type: ignore[misc]
        finally:
            self._gone.set()
            for task in list(self._tasks):
                task.cancel()
            self._close_when_idle(self._cleanup)

    async def _wait_for_room(self) -> None:
        """Read no more requests while too many are unanswered (a peer that never reads the replies
        cannot make the server hold more and more of them)."""
        while len(self._tasks) >= MAX_IN_FLIGHT or (self._tasks and self._held > MAX_HELD):
            self._room.clear()
            await self._room.wait()

    def _answered(self, task: asyncio.Task[None], held: int) -> None:
        self._tasks.discard(task)
        self._held -= held
        self._room.set()

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
            path = args.get("path", b"")
            reply = [
                rid,
                False,
                encode_error(fs_error(exc, os.fsdecode(path) if isinstance(path, bytes) else "")),
            ]
        except TypeError as exc:
            reply = [rid, False, encode_error(ProtocolError(f"bad arguments to {method}: {exc}"))]
        except Exception as exc:
            reply = [rid, False, encode_error(exc)]
        del args  # a chunk written is not kept while the reply waits for a peer that does not read
        try:
            await out.send(reply)
        except (ConnectionError, asyncssh.Error):
            pass  # the peer is gone: `serve` ends and frees what it held

    def _path(self, path: bytes) -> str:
        if not isinstance(path, bytes):
            raise ProtocolError("paths travel as bytes")
        return self.confine.check(os.fsdecode(path))

    @property
    def open_handles(self) -> int:
        return len(self._reads) + len(self._writes) + len(self._lists) + self._opening

    def _room_for_handle(self) -> None:
        if self.open_handles >= MAX_HANDLES:
            raise TooManyOpen(
                f"this connection holds {MAX_HANDLES} files and listings open, as many as one may: "
                "close some before opening more"
            )
        self._device.check()

    @contextlib.contextmanager
    def _opening_handle(self) -> Iterator[None]:
        """Hold a place among the handles while one is being opened in a worker thread."""
        self._room_for_handle()
        self._opening += 1
        try:
            yield
        finally:
            self._opening -= 1

    async def _heavy(self, fn: Callable[..., _T], *args: Any) -> _T:
        """`fn(*args)`, work whose length the peer chooses (hashing, deleting, trashing a tree), in a worker thread
        within this device's share of them (DeviceHandles.start)."""
        return await asyncio.shield(await self._device.start(fn, *args))

    async def _in_thread(self, fn: Callable[..., _T], *args: Any, heavy: bool = False) -> _T:
        """`fn(*args)` in a worker thread (`heavy`: as `_heavy`), on descriptors this session holds: one closed
        meanwhile (by a close request, or because the peer left and this request was cancelled) is closed only once
        the thread is done with it, never under it (its number could be another file's by then)."""
        work = self._device.run(fn, *args) if heavy else asyncio.to_thread(fn, *args)
        fut = asyncio.ensure_future(work)  # counted from now, while it may still wait for a thread
        self._threads.add(fut)
        fut.add_done_callback(self._threads.discard)
        return await asyncio.shield(fut)

    def _close_when_idle(self, close: Callable[[], object]) -> None:
        """`close()` now, or as soon as the worker threads using this session's descriptors are done."""
        if not self._threads:
            close()
            return
        asyncio.gather(*self._threads, return_exceptions=True).add_done_callback(lambda _: close())

    def _cleanup(self) -> None:
        for fd in self._reads.values():
            held.close(fd)
        for w in self._writes.values():
            _abort(w, keep=w.keep)
        for listing in self._lists.values():
            listing.close()  # type: ignore[attr-defined]  # a generator: closes its folder
        self._reads.clear()
        self._writes.clear()
        self._lists.clear()

    def _regular_file(self, path: str, flags: int = 0) -> int:
        """A descriptor of the regular file at `path`; never opens (or hangs on) a FIFO or device."""
        fd = self.confine.open(path, os.O_RDONLY | os.O_NONBLOCK | flags)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FsError(f"{display(path)}: not a regular file")
        return fd

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
        p = self._path(path)

        def lstat() -> EntryInfo:
            with self.confine.parent(p, changes=False) as (fd, name):
                entry = stat_entry(name, fd)
            return dataclasses.replace(entry, name=os.path.basename(p) or "/") if name == "." else entry

        return pack_entry(await asyncio.to_thread(lstat))

    async def rpc_list_open(self, path: bytes, batch_size: int = 1000) -> list[Any]:
        """The first batch and a handle for the rest (handle 0: there is no more)."""
        p = self._path(path)
        self._room_for_handle()
        batches = _listing(lambda: self.confine.open(p, os.O_RDONLY | os.O_DIRECTORY), batch_size)
        handle = next(self._ids)
        self._lists[handle] = batches  # from the start: whatever becomes of this request, it is closed
        try:
            first = await self._in_thread(next, batches, None)
        except Exception:
            await self.rpc_list_close(handle)
            raise
        if first is None:
            await self.rpc_list_close(handle)
            return [0, []]
        return [handle, [pack_entry(e) for e in first]]

    async def rpc_list_next(self, handle: int) -> list[Any] | None:
        batches = self._lists.get(handle)
        if batches is None:
            return None
        batch = await self._in_thread(next, batches, None)
        if batch is None:
            await self.rpc_list_close(handle)
            return None
        return [pack_entry(e) for e in batch]

    async def rpc_list_close(self, handle: int) -> None:
        batches = self._lists.pop(handle, None)
        if batches is not None:
            self._close_when_idle(batches.close)  # type: ignore[attr-defined]  # a generator: closes its folder

    async def rpc_read_open(self, path: bytes, offset: int = 0, length: int = 0) -> list[Any]:
        """[handle, first chunk]: a file read whole by this one request gets handle 0 (already closed)."""
        p = self._path(path)

        def first() -> tuple[int, bytes]:
            fd = self._regular_file(p)
            try:
                data = os.pread(fd, min(length, MAX_READ), offset) if length else b""
            except BaseException:
                held.close(fd)
                raise
            if length and len(data) < min(length, MAX_READ):
                held.close(fd)  # the database of a library open here, read by a peer, keeps its locks
                return -1, data
            return fd, data

        with self._opening_handle():
            fd, data = await _open_in_thread(first, lambda got: got[0])
            if fd < 0:
                return [0, data]
            handle = next(self._ids)
            self._reads[handle] = fd
        return [handle, data]

    async def rpc_read(self, handle: int, offset: int, length: int) -> bytes:
        fd = self._reads[handle]
        return await self._in_thread(os.pread, fd, min(length, MAX_READ), offset)

    async def rpc_read_close(self, handle: int) -> None:
        fd = self._reads.pop(handle, None)
        if fd is not None:
            self._close_when_idle(lambda: held.close(fd))

    async def rpc_write_open(self, path: bytes, mtime: float | None = None, mode: int | None = None) -> int:
        p = self._path(path)
        return self._open_write(*self.confine.locate(p), p, mtime, mode)

    async def rpc_write_file(
        self, path: bytes, data: bytes, mtime: float | None = None, mode: int | None = None
    ) -> int:
        """A whole small file in one request (temp file, fsync, rename)."""
        p = self._path(path)
        handle = self._open_write(*self.confine.locate(p), p, mtime, mode)
        await self.rpc_write_chunk(handle, 0, data)
        return await self.rpc_write_close(handle)

    def _open_write(
        self, dir_fd: int, name: str, path: str, mtime: float | None, mode: int | None, resume: bool = False
    ) -> int:
        """A write handle for `name` in the open folder `dir_fd` (which the handle now owns)."""
        try:
            self._room_for_handle()
            if name == ".":
                raise IsADirectoryError(21, "Is a directory")
            handle = next(self._ids)
            tmp = partial_path(name) if resume else f".{name}.sdtmp-{os.getpid()}-{handle}"
            # a resumed write is read too (write_verify checks what it kept)
            kept = open_kept(tmp, dir_fd) if resume else None
            flags = (os.O_RDWR if resume else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            fd = kept if kept is not None else os.open(tmp, flags, 0o600, dir_fd=dir_fd)
        except BaseException:
            os.close(dir_fd)
            raise
        masked = mode & MODE_BITS if mode is not None else None
        self._writes[handle] = _Write(fd, dir_fd, tmp, name, path, mtime, masked, keep=resume)
        return handle

    async def rpc_write_resume(
        self, path: bytes, mtime: float | None = None, mode: int | None = None
    ) -> list[int]:
        """[handle, bytes already there]: continue a write an earlier connection left partial."""
        p = self._path(path)
        handle = self._open_write(*self.confine.locate(p), p, mtime, mode, resume=True)
        return [handle, os.fstat(self._writes[handle].fd).st_size]

    async def rpc_write_files(self, files: list[Any]) -> list[list[Any]]:
        """Several whole small new files (path, bytes, mtime, mode) in one request, each synced before it is linked
        at its path, never replacing a file there: for each, [True, its size] or [False, the error]. (A peer older
        than this request writes each file with `write_file` and `rename`.)"""
        if not (
            isinstance(files, list) and len(files) <= MAX_NEW_FILES
            and all(
                isinstance(f, list) and len(f) == 4 and isinstance(f[0], bytes) and isinstance(f[1], bytes)
                and (f[2] is None or isinstance(f[2], int | float) and -MAX_MTIME < f[2] < MAX_MTIME)
                and (f[3] is None or isinstance(f[3], int))
                for f in files
            )
        ):  # fmt: skip
            raise ProtocolError(
                f"write_files wants at most {MAX_NEW_FILES} files, each [path, bytes, mtime, mode] (mtime: seconds "
                "since 1970, a finite number); nothing was written"
            )
        new = [(os.fsdecode(f[0]), f[1], f[2], None if f[3] is None else f[3] & MODE_BITS) for f in files]

        def locate(path: str) -> tuple[int, str]:
            return self.confine.locate(self.confine.check(path))

        done = await self._in_thread(write_new_files, new, locate, heavy=True)  # (as long as the peer likes)
        return [[True, r] if isinstance(r, int) else [False, encode_error(as_sd_error(r, f[0]))]
                for r, f in zip(done, new, strict=True)]  # fmt: skip

    @contextlib.asynccontextmanager
    async def _write(self, handle: int) -> AsyncIterator[_Write]:
        """The open write `handle`, its chunks before in order; still open once it is its turn."""
        w = self._writes[handle]
        async with w.lock:
            if self._writes.get(handle) is not w:
                raise KeyError(handle)  # closed or aborted while this request waited
            yield w

    async def rpc_write_chunk(self, handle: int, offset: int, data: bytes) -> None:
        async with self._write(handle) as w:
            if w.limit is not None and offset + len(data) > w.limit:
                raise PermissionDenied(
                    f"{display(w.name)}: more than the {w.limit} bytes offered for it in this drop"
                )
            await self._in_thread(os.pwrite, w.fd, data, offset)
            w.written += len(data)

    async def rpc_write_detach(self, handle: int) -> None:
        """Stop a resumable write and keep what arrived, to resume later."""
        w = self._writes.pop(handle, None)
        if w is not None:
            async with w.lock:  # chunks already being written land first: once detached, the kept part is still
                pass
            self._close_when_idle(lambda: _abort(w, keep=True))

    async def rpc_write_close(self, handle: int) -> int:
        async with self._write(handle) as w:
            del self._writes[handle]  # from here on the worker thread finishes it, whatever becomes of us
            return await self._in_thread(_finish, w, self._drops.pop(handle, None) is not None)

    async def rpc_write_abort(self, handle: int) -> None:
        w = self._writes.pop(handle, None)
        if w is not None:
            self._close_when_idle(lambda: _abort(w))

    async def rpc_mkdir(self, path: bytes, parents: bool = False) -> None:
        p = self._path(path)

        def mkdir() -> None:
            if parents:
                self.confine.makedirs(p)
                return
            with self.confine.parent(p) as (fd, name):
                os.mkdir(name, dir_fd=fd)

        await asyncio.to_thread(mkdir)

    async def rpc_rename(self, src: bytes, dst: bytes) -> None:
        s, d = self._path(src), self._path(dst)

        def rename() -> None:
            with self._movable(s) as (src_fd, src_name), self.confine.parent(d) as (dst_fd, dst_name):
                try:
                    rename_noreplace(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
                except OSError as exc:
                    raise fs_error(exc, d if exc.errno == errno.EEXIST else s) from None

        await asyncio.to_thread(rename)

    async def rpc_delete(self, path: bytes) -> None:
        p = self._path(path)

        def delete() -> None:
            with self._movable(p) as (fd, name):
                delete_at(fd, name)

        await self._heavy(delete)

    async def rpc_trash(self, path: bytes) -> bytes:
        p = self._path(path)

        def to_trash() -> str:
            with self._movable(p) as (fd, name):
                return trash.trash_at(fd, name, p, self.confine.keep_out)

        return os.fsencode(await self._heavy(to_trash))

    @contextlib.contextmanager
    def _movable(self, path: str) -> Iterator[tuple[int, str]]:
        """`Confinement.parent` of something to delete or move away, which a share itself is not."""
        with self.confine.parent(path) as (fd, name):
            if name == ".":
                raise PermissionDenied(
                    f"{display(path)}: a shared folder itself cannot be deleted or moved from another "
                    "device (what it holds can)"
                )
            yield fd, name

    async def rpc_restore(self, key: bytes) -> bytes:
        """Put back an item of this device's trash, only where the peer may write (it names only what the trash holds)."""
        if not isinstance(key, bytes):
            raise ProtocolError("paths travel as bytes")
        item = await self._heavy(trash.find, os.fsdecode(key))  # (it reads every item of the trash)
        target = self.confine.check(item.original_path)
        if not self.confine.confined:
            return os.fsencode(await self._heavy(trash.restore, item))

        def restore() -> str:
            self.confine.makedirs(os.path.dirname(target))
            with self.confine.parent(target) as (fd, name):
                return trash.restore_at(item, fd, name, target, self.confine.keep_out)

        return os.fsencode(await self._heavy(restore))

    async def rpc_cas_id(self, path: bytes) -> str | None:
        p = self._path(path)

        def cas_id() -> str | None:
            fd = self._regular_file(p, os.O_NOFOLLOW)
            try:
                return cas.cas_id_of_fd(fd, os.fstat(fd).st_size)
            finally:
                held.close(fd)

        return await self._heavy(cas_id)

    async def rpc_full_hash(self, path: bytes) -> str:
        p = self._path(path)

        def full_hash() -> str:
            fd = self._regular_file(p)
            try:
                return cas.full_hash(fd, self._gone)
            finally:
                held.close(fd)

        return await self._heavy(full_hash)

    async def rpc_limits(self, path: bytes) -> list[Any] | None:
        """What the filesystem holding `path` cannot hold (FAT's 4 GiB, DOS names), as this device's mount table
        tells it: a copy from the other device refuses what would not fit before writing."""
        held = await asyncio.to_thread(limits_at, self._path(path))
        return None if held is None else [held.name, held.max_file, held.dos_names]

    # --- Spacedrop --------------------------------------------------------------------------

    async def rpc_drop_offer(self, names: list[bytes], sizes: list[int]) -> str | None:
        """Ask the user to accept these files; a token for `drop_open` when accepted, else None."""
        if self.drop is None:
            raise NetError("this device does not accept Spacedrop")
        if not (
            isinstance(names, list)
            and isinstance(sizes, list)
            and len(names) == len(sizes)
            and all(isinstance(n, bytes) for n in names)
            and all(isinstance(s, int) and s >= 0 for s in sizes)
        ):
            raise ProtocolError("drop_offer wants a name (bytes) and a size (0 or more) for each file")
        folder = await self.drop([os.fsdecode(n) for n in names], sizes)
        if folder is None:
            return None
        token = f"drop-{next(self._ids)}"
        self._accepted[token] = (folder, [(os.fsdecode(n), s) for n, s in zip(names, sizes, strict=True)])
        return token

    async def rpc_drop_open(
        self, drop: str, name: bytes, mtime: float | None = None, mode: int | None = None
    ) -> int:
        """A write handle for one of the accepted files, in the Spacedrop folder (each name once)."""
        folder, expected = self._accepted.get(drop, ("", []))
        wanted = os.fsdecode(name)
        size = next((s for n, s in expected if n == wanted), None)
        if size is None:
            raise PermissionDenied(f"{wanted!r} was not among the files accepted in this drop")
        expected.remove((wanted, size))
        base = os.path.basename(wanted)
        if base in ("", ".", ".."):
            raise PermissionDenied(f"{wanted!r}: not a file name")
        os.makedirs(folder, mode=0o700, exist_ok=True)  # received files are the user's alone until moved
        dir_fd = self.confine.own_folder(folder)
        handle = self._open_write(
            dir_fd, base, os.path.join(folder, base), mtime, None if mode is None else int(mode) & 0o777
        )
        self._drops[handle] = folder
        self._writes[handle].limit = size
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
        async with self._write(handle) as w:
            return await self._in_thread(keep_matching, w.fd, block, digests, heavy=True)


def _finish(w: _Write, unique: bool) -> int:
    """Put a finished write in place (its size); a Spacedrop file beside one of the same name when `unique`."""
    try:
        os.fsync(w.fd)
        if w.mode is not None:
            os.fchmod(w.fd, w.mode)
        if w.mtime is not None:
            os.utime(w.fd, (w.mtime, w.mtime))
        size = os.fstat(w.fd).st_size
        os.close(w.fd)
        w.fd = -1
        if unique:
            w.name = _unique(w.dir_fd, w.name)
        os.rename(w.tmp, w.name, src_dir_fd=w.dir_fd, dst_dir_fd=w.dir_fd)
    except BaseException:
        _abort(w)
        raise
    _abort(w, keep=True)  # closes the folder
    return size


def _abort(w: _Write, keep: bool = False) -> None:
    """Close a write's file and folder; remove its temporary file unless it is to be kept."""
    if w.fd >= 0:
        os.close(w.fd)
        w.fd = -1
    if w.dir_fd < 0:
        return
    if not keep:
        try:
            os.unlink(w.tmp, dir_fd=w.dir_fd)
        except OSError:
            pass
    os.close(w.dir_fd)
    w.dir_fd = -1


async def _open_in_thread(opener: Callable[[], _T], fd_of: Callable[[_T], int]) -> _T:
    """`opener()` in a worker thread; if the request is cancelled meanwhile (its peer left), the
    descriptor it opens is closed when it arrives instead of being lost."""
    fut = asyncio.ensure_future(asyncio.to_thread(opener))
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:

        def close_late(done: asyncio.Future[_T]) -> None:
            if not done.cancelled() and done.exception() is None and fd_of(done.result()) >= 0:
                held.close(fd_of(done.result()))

        fut.add_done_callback(close_late)
        raise


def _listing(opener: Callable[[], int], batch_size: int) -> Iterator[list[EntryInfo]]:
    """The batches of the folder `opener()` opens on the first `next` (in the worker thread that runs it,
    so a listing never started holds nothing), closed when they end or the listing is closed."""
    fd = opener()
    try:
        yield from scan_batches(fd, max(1, min(batch_size, 10_000)))
    finally:
        os.close(fd)


def _weight(frame: list[Any]) -> int:
    """The bytes a request carries or asks for, held until it is answered."""
    args = frame[2] if isinstance(frame[2], dict) else {}
    if frame[1] not in _BULK:
        return 0
    data = args.get("data")
    length = args.get("length")
    files = args.get("files")
    if isinstance(files, list):  # write_files
        return sum(len(f[1]) for f in files if isinstance(f, list) and len(f) > 1 and isinstance(f[1], bytes))
    return (len(data) if isinstance(data, bytes) else 0) + (
        min(max(length, 0), MAX_READ) if isinstance(length, int) else 0  # never less than nothing
    )


def _unique(dir_fd: int, name: str) -> str:
    """`name`, or `name (1).ext` beside it in the open folder `dir_fd` when that exists already (as the trash names a second one)."""
    return free_name(name, lambda n: lexists_at(dir_fd, n))
